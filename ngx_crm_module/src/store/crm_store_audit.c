/*
 * The audit log.
 */

#include <stdio.h>
#include <stdlib.h>

#include "crm_store_audit.h"


static const crm_stmt_t  crm_audit_insert = {
    "audit_insert",
    "INSERT INTO crm.audit_log (actor_id, action, object_type, object_id,"
    " details) VALUES ($1, $2, $3, $4, $5::jsonb)",
    5
};


/*
 * The filters are few and selective, guarded by "IS NULL OR"; the cursor,
 * which decides how much of the index a page walks, is a statement of its
 * own.
 */
#define CRM_AUDIT_LIST(after)                                                 \
    "SELECT id, actor_id, action, object_type, object_id, details::text, "    \
    CRM_SQL_RFC3339("created_at") ", " CRM_SQL_EPOCH_US("created_at")         \
    " FROM crm.audit_log"                                                     \
    " WHERE ($1::uuid IS NULL OR actor_id = $1::uuid)"                        \
    " AND ($2::text IS NULL OR action = $2)"                                  \
    " AND ($3::text IS NULL OR object_type = $3)"                             \
    " AND ($4::text IS NULL OR object_id = $4)" after                         \
    " ORDER BY id DESC LIMIT $5::int"

static const crm_stmt_t  crm_audit_first_page = {
    "audit_first_page", CRM_AUDIT_LIST(""), 5
};

static const crm_stmt_t  crm_audit_next_page = {
    "audit_next_page", CRM_AUDIT_LIST(" AND id < $6::bigint"), 6
};


crm_status_e
crm_store_audit_list(crm_db_t *db, const crm_audit_filter_t *filter,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         limit[16];
    const char  *params[6];

    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = filter->actor_id;
    params[1] = filter->action;
    params[2] = filter->object_type;
    params[3] = filter->object_id;
    params[4] = limit;
    params[5] = page->cursor.id;

    return crm_db_query(db, page->has_cursor ? &crm_audit_next_page
                                             : &crm_audit_first_page,
                        params, out, err);
}


void
crm_audit_row(const crm_rows_t *rows, size_t i, crm_audit_row_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->actor_id = crm_rows_value(rows, i, 1);
    out->action = crm_rows_value(rows, i, 2);
    out->object_type = crm_rows_value(rows, i, 3);
    out->object_id = crm_rows_value(rows, i, 4);
    out->details = crm_rows_value(rows, i, 5);
    out->created_at = crm_rows_value(rows, i, 6);
    out->created_us = strtoll(crm_rows_value(rows, i, 7), NULL, 10);
}


crm_status_e
crm_store_audit(crm_db_t *db, const crm_audit_entry_t *entry,
    crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[5];

    params[0] = entry->actor_id;
    params[1] = entry->action;
    params[2] = entry->object_type;
    params[3] = entry->object_id;
    params[4] = entry->details ? entry->details : "{}";

    rc = crm_db_exec(db, &crm_audit_insert, params, &res, err);
    PQclear(res);

    return rc;
}
