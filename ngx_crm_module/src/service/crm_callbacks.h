/*
 * Signed callbacks from the shops' side: an app installed, an order
 * placed.
 *
 *   POST /callbacks/install       attribute a shop to a link, once
 *   POST /callbacks/conversion    record an order once, pay its commission
 *
 * The signature is checked over the raw body before it is parsed
 * (crm_call_set_body()).  Each callback is one transaction, and a repeat
 * of it - the same shop and link or the same event id for an install, the
 * same order id for a conversion - however often and however
 * concurrently, changes nothing and answers 200 with created false and
 * the ids of the first.  That holds through the database's unique keys,
 * not through anything a worker remembers.
 *
 * A disabled link still attributes: its clicks happened while it was
 * active, and the shop's installs and orders arrive later.
 */

#ifndef CRM_CALLBACKS_H
#define CRM_CALLBACKS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_callbacks_install;
extern const crm_endpoint_t  crm_callbacks_conversion;

#endif /* CRM_CALLBACKS_H */
