/*
 * Accounts as the API shows them, and their administration by admins.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crm_accounts.h"
#include "crm_page.h"
#include "crm_store_audit.h"
#include "crm_store_links.h"
#include "crm_verify.h"


typedef struct {
    crm_json_value_t  role;
    crm_json_value_t  is_active;
} crm_accounts_update_body_t;


typedef struct {
    const char       *id;
    crm_role_e        role;         /* CRM_ROLE_NONE: unchanged */
    int               is_active;    /* -1: unchanged */
} crm_accounts_update_in_t;


static crm_status_e crm_accounts_list_parse(crm_call_t *call,
    crm_error_t *err);
static int crm_accounts_item(crm_call_t *call, yajl_gen g,
    const void *rows, size_t i, crm_cursor_t *at);
static crm_status_e crm_accounts_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_accounts_update_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_accounts_links_changed(crm_db_t *db,
    crm_call_t *call, const char *account_id, crm_error_t *err);
static crm_status_e crm_accounts_update_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);


static const crm_json_field_t  crm_accounts_update_fields[] = {
    { .name = "role", .kind = CRM_JSON_STRING, .min_len = 1, .max_len = 16,
      .offset = offsetof(crm_accounts_update_body_t, role) },
    { .name = "is_active", .kind = CRM_JSON_BOOL,
      .offset = offsetof(crm_accounts_update_body_t, is_active) },
};


const crm_endpoint_t  crm_accounts_list = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_accounts_list_parse,
    .run = crm_accounts_list_run
};

const crm_endpoint_t  crm_accounts_update = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_JSON,
    .parse = crm_accounts_update_parse,
    .run = crm_accounts_update_run
};


int
crm_account_render(yajl_gen g, const crm_account_t *acct)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", acct->id) != 0
        || crm_json_gen_kv_str(g, "email", acct->email[0] != '\0'
                                           ? acct->email : NULL) != 0
        || crm_json_gen_kv_str(g, "full_name", acct->full_name) != 0
        || crm_json_gen_kv_str(g, "role", crm_role_name(acct->role)) != 0
        || crm_json_gen_kv_bool(g, "is_active", acct->is_active) != 0
        || crm_json_gen_kv_str(g, "created_at", acct->created_at) != 0
        || crm_json_gen_kv_str(g, "display_name", acct->display_name) != 0
        || crm_json_gen_kv_str(g, "company", acct->company) != 0
        || crm_json_gen_kv_str(g, "phone", acct->phone[0] != '\0'
                                           ? acct->phone : NULL) != 0)
    {
        return -1;
    }

    /* a merchant: signed in by an identity provider's user */
    if (acct->idp_issuer[0] != '\0'
        && (crm_json_gen_kv_str(g, "merchant_id", acct->id) != 0
            || crm_json_gen_key(g, "identity") != 0
            || yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "issuer", acct->idp_issuer) != 0
            || crm_json_gen_kv_str(g, "subject", acct->idp_subject) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok))
    {
        return -1;
    }

    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}


crm_status_e
crm_accounts_make_admin(crm_db_t *db, const char *email,
    const char *password, const crm_argon2_params_t *argon2,
    crm_account_t *out, int *created, crm_error_t *err)
{
    char                hash[CRM_PASSWORD_HASH_SIZE];
    char                normalized[CRM_EMAIL_MAX + 1];
    crm_status_e        rc;
    crm_audit_entry_t   audit;

    rc = crm_email_normalize(crm_str_c(email), "email", normalized, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_text_check(crm_str_c(password), "password", CRM_PASSWORD_MIN,
                        CRM_PASSWORD_MAX, 0, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_password_hash(password, strlen(password), argon2, hash,
                           sizeof(hash), err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_account_make_admin(db, normalized, hash, out, created,
                                      err);
    if (rc != CRM_OK) {
        goto failed;
    }

    audit.actor_id = NULL;
    audit.action = *created ? "account.create_admin" : "account.promote";
    audit.object_type = "account";
    audit.object_id = out->id;
    audit.details = "{\"role\":\"admin\",\"is_active\":true}";

    rc = crm_store_audit(db, &audit, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    return crm_db_commit(db, err);

failed:

    crm_db_rollback(db);

    return rc;
}


crm_status_e
crm_account_reply(crm_call_t *call, unsigned status,
    const crm_account_t *acct, crm_error_t *err)
{
    yajl_gen  g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (crm_account_render(g, acct) != 0) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, status, g, err);
}


static crm_status_e
crm_accounts_list_parse(crm_call_t *call, crm_error_t *err)
{
    crm_page_t  *page;

    page = crm_arena_alloc(&call->arena, sizeof(crm_page_t));
    if (page == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    call->input = page;

    return crm_page_parse(call->query, CRM_PAGE_UUID, page, err);
}


static int
crm_accounts_item(crm_call_t *call, yajl_gen g, const void *rows, size_t i,
    crm_cursor_t *at)
{
    const crm_account_t  *acct;

    (void) call;

    acct = &((const crm_account_t *) rows)[i];

    at->ts_us = acct->created_us;
    memcpy(at->id, acct->id, sizeof(at->id));

    return crm_account_render(g, acct);
}


static crm_status_e
crm_accounts_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    size_t          n;
    crm_page_t     *page;
    crm_status_e    rc;
    crm_account_t  *accts;

    page = call->input;

    accts = crm_arena_alloc(&call->arena,
                            (page->limit + 1) * sizeof(crm_account_t));
    if (accts == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = crm_store_accounts_page(db, page, accts, &n, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_call_reply_page(call, accts, n, page->limit, crm_accounts_item,
                               err);
}


static crm_status_e
crm_accounts_update_parse(crm_call_t *call, crm_error_t *err)
{
    char                         id[CRM_UUID_LEN + 1];
    crm_status_e                 rc;
    crm_accounts_update_in_t    *in;
    crm_accounts_update_body_t   body;

    /* not a UUID cannot name an account: the same 404 as a missing one */
    if (!crm_uuid_canonical(call->match.params[0], id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_accounts_update_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!body.role.present && !body.is_active.present) {
        return crm_error_set(err, CRM_E_INVALID, "body",
                             "must set role or is_active");
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_accounts_update_in_t));
    if (in == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    in->id = crm_arena_strdup(&call->arena, crm_str_c(id));
    if (in->id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    in->role = CRM_ROLE_NONE;
    in->is_active = body.is_active.present ? body.is_active.boolean : -1;

    if (body.role.present) {
        in->role = crm_role_parse(body.role.str.data, body.role.str.len);
        if (in->role == CRM_ROLE_NONE) {
            return crm_error_set(err, CRM_E_INVALID, "role",
                                 "must be one of admin, member, merchant");
        }
    }

    call->input = in;

    return CRM_OK;
}


static crm_status_e
crm_accounts_update_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                         found;
    char                        details[64];
    crm_status_e                rc;
    crm_account_t               acct;
    crm_audit_entry_t           audit;
    crm_accounts_update_in_t   *in;

    in = call->input;

    /* an admin who demotes or deactivates itself may lock everyone out */
    if (strcmp(in->id, call->caller->id) == 0
        && ((in->role != CRM_ROLE_NONE && in->role != CRM_ROLE_ADMIN)
            || in->is_active == 0))
    {
        return crm_error_set(err, CRM_E_CONFLICT, NULL,
                             "an admin cannot demote or deactivate itself");
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_account_update(db, in->id, in->role, in->is_active,
                                  &acct, &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    snprintf(details, sizeof(details), "{\"role\":\"%s\",\"is_active\":%s}",
             crm_role_name(acct.role), acct.is_active ? "true" : "false");

    audit.actor_id = call->caller->id;
    audit.action = "account.update";
    audit.object_type = "account";
    audit.object_id = acct.id;
    audit.details = details;

    rc = crm_store_audit(db, &audit, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (in->is_active >= 0) {
        rc = crm_accounts_links_changed(db, call, acct.id, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_account_reply(call, 200, &acct, err);
}


/*
 * An account's links redirect only while it is active: each is recorded
 * as changed, so that this host's redirect cache drops them at once once
 * the change is committed.
 */
static crm_status_e
crm_accounts_links_changed(crm_db_t *db, crm_call_t *call,
    const char *account_id, crm_error_t *err)
{
    size_t         i;
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_store_links_of_owner(db, account_id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    for (i = 0; i < rows.n && rc == CRM_OK; i++) {
        rc = crm_call_changed(call, CRM_CHANGED_LINK,
                              crm_rows_value(&rows, i, 0), err);
    }

    crm_rows_free(&rows);

    return rc;
}
