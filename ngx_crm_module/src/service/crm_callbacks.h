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
#include "crm_normalize.h"
#include "crm_store_attributions.h"


extern const crm_endpoint_t  crm_callbacks_install;
extern const crm_endpoint_t  crm_callbacks_conversion;


/* an order to record, from a conversion callback or a shop's webhook */
typedef struct {
    char         link_id[CRM_LINK_ID_LEN + 1];      /* "" when not named */
    const char  *click_id;                          /* NULL when not sent */
    char         shop_domain[CRM_DOMAIN_MAX + 1];   /* or "" */
    const char  *order_id;
    int64_t      amount_cents;
    char         currency[CRM_CURRENCY_LEN + 1];
} crm_conversion_in_t;


/*
 * Records the order in the caller's open transaction: *created is 0 when
 * the order was there already (its conversion in *conv, nothing paid
 * again).  Otherwise the conversion of the link named (or of the shop's
 * latest attribution) and its commission.  CRM_E_NOT_FOUND (no such link,
 * no attribution for the shop) and CRM_E_INVALID (currency) leave the
 * transaction usable; other failures do not.
 */
crm_status_e crm_callbacks_convert(crm_db_t *db, const crm_conversion_in_t *in,
    crm_conversion_t *conv, int *created, crm_error_t *err);

#endif /* CRM_CALLBACKS_H */
