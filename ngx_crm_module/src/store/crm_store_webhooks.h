/*
 * Webhook events in PostgreSQL (schema/009-webhooks-performance.sql): one
 * row per (source, source event id), so a repeat inserts nothing however
 * concurrently it arrives.
 */

#ifndef CRM_STORE_WEBHOOKS_H
#define CRM_STORE_WEBHOOKS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_ids.h"
#include "crm_page.h"
#include "crm_validate.h"


/* an event as stored; NULL leaves a column NULL */
typedef struct {
    const char  *source;
    const char  *source_event_id;
    const char  *type;
    const char  *email;                 /* normalised */
    const char  *phone;
    const char  *shop_domain;
    const char  *external_id;
    const char  *invalid;               /* a JSON object */
    const char  *detail;                /* what could not be done */
    const char  *payload;               /* the raw body, JSON */
} crm_webhook_new_t;


/* the live lead an event's identifiers name (crm_store_webhook_match) */
typedef struct {
    char         id[CRM_UUID_LEN + 1];
    char         owner_id[CRM_UUID_LEN + 1];
    int          affiliate;             /* attributed to a link */
    int          by_shop;               /* matched by the shop's domain */
    char         stage[64];
    char         substage[96];
} crm_webhook_lead_t;


typedef struct {
    const char  *id;
    const char  *source;
    const char  *source_event_id;
    const char  *type;
    const char  *status;
    const char  *lead_id;
    const char  *email;
    const char  *phone;
    const char  *shop_domain;
    const char  *external_id;
    const char  *invalid;               /* a JSON object */
    const char  *action;
    const char  *conversion_id;
    const char  *detail;
    const char  *received_at;           /* RFC 3339 */
    int64_t      received_us;           /* for cursors */
} crm_webhook_row_t;


typedef struct {
    const char  *source;                /* NULL: any */
    const char  *status;
    const char  *type;
} crm_webhook_filter_t;


/*
 * In one statement, the lead the identifiers match by shop domain, then
 * email, then phone (NULL: not sent; among several, one attributed to a
 * link, then the most recently updated), and the event attached to it,
 * unless its (source, source event id) is taken: then *created is 0 and
 * id is the first event's after the insert has waited for it, with its
 * lead's id in lead->id ("" when unmatched).  id needs CRM_UUID_LEN + 1;
 * lead->id is "" when nothing matched.
 */
crm_status_e crm_store_webhook_insert(crm_db_t *db,
    const crm_webhook_new_t *in, char *id, crm_webhook_lead_t *lead,
    int *created, crm_error_t *err);

/* what the event did beyond being stored: NULL leaves a column NULL */
crm_status_e crm_store_webhook_outcome(crm_db_t *db, const char *id,
    const char *action, const char *conversion_id, const char *detail,
    crm_error_t *err);

/* up to page->limit + 1 events, newest first, after the cursor */
crm_status_e crm_store_webhooks_list(crm_db_t *db,
    const crm_webhook_filter_t *filter, const crm_page_t *page,
    crm_rows_t *out, crm_error_t *err);

/* up to page->limit + 1 events of a lead, oldest first, after the cursor */
crm_status_e crm_store_webhooks_of_lead(crm_db_t *db, const char *lead_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err);

void crm_webhook_row(const crm_rows_t *rows, size_t i, crm_webhook_row_t *out);

#endif /* CRM_STORE_WEBHOOKS_H */
