/*
 * Webhook events; see crm_store_webhooks.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_webhooks.h"


#define CRM_WEBHOOK_COLS                                                      \
    "id, source, source_event_id, type, status, lead_id, email, phone,"       \
    " shop_domain, external_id, invalid::text, action, conversion_id,"        \
    " detail, " CRM_SQL_RFC3339("received_at") ", "                           \
    CRM_SQL_EPOCH_US("received_at")


static crm_status_e crm_store_webhook_first(crm_db_t *db,
    const crm_webhook_new_t *in, char *id, char *lead_id, crm_error_t *err);


/*
 * One statement: the lead the identifiers match (one probe per
 * identifier, each on its partial index; the first kind that matches
 * wins) and the event, unless its id is taken; the lead's details come
 * back for what the event does to it
 */
static const crm_stmt_t  crm_webhook_insert_stmt = {
    "webhook_insert",
    "WITH m AS (SELECT id, owner_id, affiliate_link_id IS NOT NULL AS aff,"
    "  stage, substage, k"
    "  FROM (SELECT 1 AS k, * FROM crm.leads"
    "        WHERE shop_domain = $1 AND deleted_at IS NULL"
    "        UNION ALL SELECT 2, * FROM crm.leads"
    "        WHERE email = $2 AND deleted_at IS NULL"
    "        UNION ALL SELECT 3, * FROM crm.leads"
    "        WHERE phone = $3 AND deleted_at IS NULL) l"
    "  ORDER BY k, affiliate_link_id IS NOT NULL DESC, updated_at DESC,"
    "  id DESC LIMIT 1),"
    " ins AS (INSERT INTO crm.webhook_events (source, source_event_id, type,"
    "  status, lead_id, email, phone, shop_domain, external_id, invalid,"
    "  detail, payload)"
    "  SELECT $4, $5, $6,"
    "  CASE WHEN m.id IS NULL THEN 'unmatched' ELSE 'attributed' END,"
    "  m.id, $2, $3, $1, $7, $8::jsonb, $9, $10::jsonb"
    "  FROM (SELECT) one LEFT JOIN m ON true"
    "  ON CONFLICT (source, source_event_id) DO NOTHING"
    "  RETURNING id, lead_id)"
    " SELECT ins.id, m.id, m.owner_id, m.aff, m.stage, m.substage, m.k"
    " FROM ins LEFT JOIN m ON true",
    10
};

static const crm_stmt_t  crm_webhook_first_stmt = {
    "webhook_first",
    "SELECT id, lead_id FROM crm.webhook_events"
    " WHERE source = $1 AND source_event_id = $2",
    2
};

static const crm_stmt_t  crm_webhook_outcome_stmt = {
    "webhook_outcome",
    "UPDATE crm.webhook_events SET action = $2, conversion_id = $3,"
    " detail = $4 WHERE id = $1",
    4
};

static const crm_stmt_t  crm_webhooks_list_stmt = {
    "webhooks_list",
    "SELECT " CRM_WEBHOOK_COLS " FROM crm.webhook_events"
    " WHERE ($1::text IS NULL OR source = $1)"
    " AND ($2::text IS NULL OR status = $2)"
    " AND ($3::text IS NULL OR type = $3)"
    " AND ($4::bigint IS NULL OR (received_at, id) < ("
    CRM_SQL_FROM_EPOCH_US("$4") ", $5::uuid))"
    " ORDER BY received_at DESC, id DESC LIMIT $6",
    6
};

static const crm_stmt_t  crm_webhooks_of_lead_stmt = {
    "webhooks_of_lead",
    "SELECT " CRM_WEBHOOK_COLS " FROM crm.webhook_events"
    " WHERE lead_id = $1"
    " AND ($2::bigint IS NULL OR (received_at, id) > ("
    CRM_SQL_FROM_EPOCH_US("$2") ", $3::uuid))"
    " ORDER BY received_at, id LIMIT $4",
    4
};


crm_status_e
crm_store_webhook_insert(crm_db_t *db, const crm_webhook_new_t *in, char *id,
    crm_webhook_lead_t *lead, int *created, crm_error_t *err)
{
    const char    *params[10], *v;
    crm_rows_t     rows;
    crm_status_e   rc;

    params[0] = in->shop_domain;
    params[1] = in->email;
    params[2] = in->phone;
    params[3] = in->source;
    params[4] = in->source_event_id;
    params[5] = in->type;
    params[6] = in->external_id;
    params[7] = in->invalid;
    params[8] = in->detail;
    params[9] = in->payload;

    memset(lead, 0, sizeof(crm_webhook_lead_t));

    rc = crm_db_query(db, &crm_webhook_insert_stmt, params, &rows, err);

    /*
     * JSON that yajl reads and PostgreSQL's jsonb refuses (an unpaired
     * surrogate escape): the sender's to fix, not a retry
     */
    if (rc != CRM_OK && strcmp(err->sqlstate, "22P02") == 0) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "the body holds a value PostgreSQL cannot "
                             "store as JSON (an unpaired surrogate)");
    }

    if (rc != CRM_OK) {
        return rc;
    }

    *created = rows.n > 0;

    if (!*created) {
        crm_rows_free(&rows);
        return crm_store_webhook_first(db, in, id, lead->id, err);
    }

    snprintf(id, CRM_UUID_LEN + 1, "%s", crm_rows_value(&rows, 0, 0));

    v = crm_rows_value(&rows, 0, 1);

    if (v != NULL) {
        snprintf(lead->id, sizeof(lead->id), "%s", v);
        snprintf(lead->owner_id, sizeof(lead->owner_id), "%s",
                 crm_rows_value(&rows, 0, 2));
        lead->affiliate = crm_rows_value(&rows, 0, 3)[0] == 't';
        snprintf(lead->stage, sizeof(lead->stage), "%s",
                 crm_rows_value(&rows, 0, 4));
        snprintf(lead->substage, sizeof(lead->substage), "%s",
                 crm_rows_value(&rows, 0, 5));
        lead->by_shop = strcmp(crm_rows_value(&rows, 0, 6), "1") == 0;
    }

    crm_rows_free(&rows);

    return CRM_OK;
}


static crm_status_e
crm_store_webhook_first(crm_db_t *db, const crm_webhook_new_t *in, char *id,
    char *lead_id, crm_error_t *err)
{
    const char    *params[2], *lead;
    crm_rows_t     rows;
    crm_status_e   rc;

    params[0] = in->source;
    params[1] = in->source_event_id;

    rc = crm_db_query(db, &crm_webhook_first_stmt, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_CONFLICT, NULL,
                             "a concurrent delivery of this event did not "
                             "complete; retry");
    }

    lead = crm_rows_value(&rows, 0, 1);

    snprintf(id, CRM_UUID_LEN + 1, "%s", crm_rows_value(&rows, 0, 0));
    snprintf(lead_id, CRM_UUID_LEN + 1, "%s", lead != NULL ? lead : "");

    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_webhook_outcome(crm_db_t *db, const char *id, const char *action,
    const char *conversion_id, const char *detail, crm_error_t *err)
{
    PGresult      *res;
    const char    *params[4];
    crm_status_e   rc;

    params[0] = id;
    params[1] = action;
    params[2] = conversion_id;
    params[3] = detail;

    rc = crm_db_exec(db, &crm_webhook_outcome_stmt, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_webhooks_list(crm_db_t *db, const crm_webhook_filter_t *filter,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         ts[24], limit[16];
    const char  *params[6];

    snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = filter->source;
    params[1] = filter->status;
    params[2] = filter->type;
    params[3] = page->has_cursor ? ts : NULL;
    params[4] = page->has_cursor ? page->cursor.id : NULL;
    params[5] = limit;

    return crm_db_query(db, &crm_webhooks_list_stmt, params, out, err);
}


crm_status_e
crm_store_webhooks_of_lead(crm_db_t *db, const char *lead_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         ts[24], limit[16];
    const char  *params[4];

    snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = lead_id;
    params[1] = page->has_cursor ? ts : NULL;
    params[2] = page->has_cursor ? page->cursor.id : NULL;
    params[3] = limit;

    return crm_db_query(db, &crm_webhooks_of_lead_stmt, params, out, err);
}


void
crm_webhook_row(const crm_rows_t *rows, size_t i, crm_webhook_row_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->source = crm_rows_value(rows, i, 1);
    out->source_event_id = crm_rows_value(rows, i, 2);
    out->type = crm_rows_value(rows, i, 3);
    out->status = crm_rows_value(rows, i, 4);
    out->lead_id = crm_rows_value(rows, i, 5);
    out->email = crm_rows_value(rows, i, 6);
    out->phone = crm_rows_value(rows, i, 7);
    out->shop_domain = crm_rows_value(rows, i, 8);
    out->external_id = crm_rows_value(rows, i, 9);
    out->invalid = crm_rows_value(rows, i, 10);
    out->action = crm_rows_value(rows, i, 11);
    out->conversion_id = crm_rows_value(rows, i, 12);
    out->detail = crm_rows_value(rows, i, 13);
    out->received_at = crm_rows_value(rows, i, 14);
    out->received_us = strtoll(crm_rows_value(rows, i, 15), NULL, 10);
}
