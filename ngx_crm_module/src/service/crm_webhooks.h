/*
 * Webhooks from other systems (docs/openapi.json, tag "Webhooks"):
 *
 *   POST /integrations/webhooks/{source}   one signed event of a source
 *   GET  /integrations/events              admin: the events, filtered
 *   GET  /leads/{id}/events                the events attributed to a lead
 *
 * The signature of the source's scheme is checked over the raw body in
 * the event loop (crm_verify_webhook) before anything else; then, in one
 * transaction, the event is stored once per (source, event id) with its
 * identifiers normalised, attached to the lead they match, and acted on:
 * a Shopify orders/create naming a link is a conversion exactly as the
 * conversion callback records it, an app/uninstalled moves the shop's
 * affiliate lead to the pipeline's churn substage.
 */

#ifndef CRM_WEBHOOKS_H
#define CRM_WEBHOOKS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_webhooks_receive;
extern const crm_endpoint_t  crm_webhooks_list;
extern const crm_endpoint_t  crm_webhooks_of_lead;

#endif /* CRM_WEBHOOKS_H */
