/*
 * The audit log as admins read it: filtered by actor, action or object,
 * newest first, paginated by the entries' identity.
 */

#include <stdio.h>
#include <string.h>

#include "crm_audit.h"
#include "crm_form.h"
#include "crm_page.h"
#include "crm_store_audit.h"
#include "crm_verify.h"


#define CRM_AUDIT_TEXT_MAX  128


typedef struct {
    crm_audit_filter_t  filter;
    crm_page_t          page;
} crm_audit_query_t;


static crm_status_e crm_audit_list_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_audit_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_audit_param(crm_call_t *call, const char *name,
    const char **out, crm_error_t *err);
static int crm_audit_render(yajl_gen g, const crm_audit_row_t *row);
static int crm_audit_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at);


static const char *const  crm_audit_params[] = {
    "actor_id", "action", "object_type", "object_id", "limit", "cursor",
    NULL
};


const crm_endpoint_t  crm_audit_list = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_audit_list_parse,
    .run = crm_audit_list_run
};


/* an optional text filter: printable, at most CRM_AUDIT_TEXT_MAX bytes */
static crm_status_e
crm_audit_param(crm_call_t *call, const char *name, const char **out,
    crm_error_t *err)
{
    crm_status_e  rc;

    rc = crm_call_query_text(call, name, CRM_AUDIT_TEXT_MAX, out, err);

    /* ids are stored in their canonical form: an upper-case one finds it */
    if (rc == CRM_OK && *out != NULL
        && (strcmp(name, "actor_id") == 0 || strcmp(name, "object_id") == 0))
    {
        (void) crm_uuid_canonical(crm_str_c(*out), (char *) *out);
    }

    return rc;
}


static crm_status_e
crm_audit_list_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_audit_query_t  *query;

    rc = crm_form_check_names(call->query, crm_audit_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    query = crm_arena_alloc(&call->arena, sizeof(crm_audit_query_t));
    if (query == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    call->input = query;

    if ((rc = crm_audit_param(call, "actor_id", &query->filter.actor_id, err))
        != CRM_OK
        || (rc = crm_audit_param(call, "action", &query->filter.action, err))
           != CRM_OK
        || (rc = crm_audit_param(call, "object_type",
                                 &query->filter.object_type, err)) != CRM_OK
        || (rc = crm_audit_param(call, "object_id", &query->filter.object_id,
                                 err)) != CRM_OK)
    {
        return rc;
    }

    if (query->filter.actor_id != NULL
        && !crm_uuid_valid(crm_str_c(query->filter.actor_id)))
    {
        return crm_error_set(err, CRM_E_INVALID, "actor_id",
                             "must be an account id");
    }

    return crm_page_parse(call->query, CRM_PAGE_NUMERIC, &query->page, err);
}


static int
crm_audit_render(yajl_gen g, const crm_audit_row_t *row)
{
    int                 rc;
    yajl_val            details;
    crm_error_t         err;
    crm_json_limits_t   limits = { 1024 * 1024, 32 };

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", row->id) != 0
        || crm_json_gen_kv_str(g, "actor_id", row->actor_id) != 0
        || crm_json_gen_kv_str(g, "action", row->action) != 0
        || crm_json_gen_kv_str(g, "object_type", row->object_type) != 0
        || crm_json_gen_kv_str(g, "object_id", row->object_id) != 0
        || crm_json_gen_key(g, "details") != 0)
    {
        return -1;
    }

    /* details is jsonb written by the services: valid, small, shallow */
    if (crm_json_parse(row->details, strlen(row->details), &limits, &details,
                       &err) != CRM_OK)
    {
        return -1;
    }

    rc = crm_json_gen_value(g, details);
    yajl_tree_free(details);

    if (rc != 0
        || crm_json_gen_kv_str(g, "created_at", row->created_at) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


static int
crm_audit_item(crm_call_t *call, yajl_gen g, const void *rows, size_t i,
    crm_cursor_t *at)
{
    crm_audit_row_t  row;

    (void) call;

    crm_audit_row(rows, i, &row);

    at->ts_us = row.created_us;
    snprintf(at->id, sizeof(at->id), "%s", row.id);

    return crm_audit_render(g, &row);
}


static crm_status_e
crm_audit_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_audit_query_t  *query;

    query = call->input;

    rc = crm_store_audit_list(db, &query->filter, &query->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, query->page.limit,
                             crm_audit_item, err);
    crm_rows_free(&rows);

    return rc;
}
