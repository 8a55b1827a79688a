/*
 * CRM integrations: POST /crm/validate, POST /crm/connect, GET /crm/list,
 * GET /crm/{type}/status, DELETE /crm/{type}/disconnect,
 * GET /crm/{type}/logs and POST /crm/{type}/retry.
 *
 * validate and connect talk to the provider from the event loop (the
 * endpoint's outbound step, one request at a time, no thread waiting),
 * then run once on the pool: the attempt's sync log row, and for connect
 * the sealed credentials, in one transaction.  A provider's verdict is
 * kept for the run rather than failing the call, so that refused and
 * failed attempts are logged too.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_form.h"
#include "crm_hex.h"
#include "crm_integrations.h"
#include "crm_provider.h"
#include "crm_seal.h"
#include "crm_store_audit.h"
#include "crm_store_integrations.h"
#include "crm_store_sync.h"
#include "crm_verify.h"


/* sealed credentials are small: a key, or a user name and a password */
#define CRM_CREDENTIALS_MAX  4096


typedef struct {
    crm_json_value_t  crm_type;
    crm_json_value_t  credentials;
    crm_json_value_t  settings;
} crm_integration_body_t;


/* /crm/{type}/...: the type, and for the log its page */
typedef struct {
    const char  *type;
    crm_page_t   page;
} crm_integration_path_t;


/* a validate or connect call, from its parse to its run */
typedef struct {
    const crm_provider_t  *provider;
    crm_provider_op_t      op;
    char                  *credentials;     /* as JSON, to seal */
    size_t                 credentials_len;
    char                  *settings;        /* as JSON */
    crm_status_e           verdict;         /* the provider's */
    crm_error_t            verdict_err;
} crm_integration_in_t;


static crm_status_e crm_integrations_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_integrations_outbound(crm_call_t *call,
    const crm_http_response_t *res, crm_http_request_t **req,
    crm_error_t *err);
static crm_status_e crm_integrations_validate_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_connect_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_log_attempt(crm_db_t *db,
    crm_call_t *call, const char *operation, crm_error_t *err);
static crm_status_e crm_integrations_refused(crm_call_t *call,
    crm_error_t *err);
static void crm_integrations_field(const char *field, char *out,
    size_t size);
static crm_status_e crm_integrations_type_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_integrations_logs_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_integrations_list_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_status_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_disconnect_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_retry_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_integrations_audit_commit(crm_db_t *db,
    crm_call_t *call, const char *action, crm_error_t *err);
static crm_status_e crm_integrations_logs_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static int crm_integrations_render(yajl_gen g, const crm_rows_t *rows,
    size_t i, int counts);
static int crm_integrations_account(yajl_gen g, const crm_provider_op_t *op);
static char *crm_integrations_json(crm_call_t *call, yajl_val v,
    size_t *len);
static int crm_integrations_log_item(crm_call_t *call, yajl_gen g,
    const void *rows, size_t i, crm_cursor_t *at);


static const crm_json_field_t  crm_integration_fields[] = {
    { .name = "crm_type", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = 32,
      .offset = offsetof(crm_integration_body_t, crm_type) },
    { .name = "credentials", .kind = CRM_JSON_OBJECT, .required = 1,
      .offset = offsetof(crm_integration_body_t, credentials) },
    { .name = "settings", .kind = CRM_JSON_OBJECT, .nullable = 1,
      .offset = offsetof(crm_integration_body_t, settings) },
};

static const char *const  crm_integrations_log_params[] = {
    "limit", "cursor", NULL
};

/* the CRM types, as paths name them (docs/openapi.json) */
static const char *const  crm_integration_types[] = {
    "klaviyo", "salesforce", "creatio", NULL
};


const crm_endpoint_t  crm_integrations_validate = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_integrations_parse,
    .outbound = crm_integrations_outbound,
    .run = crm_integrations_validate_run
};

const crm_endpoint_t  crm_integrations_connect = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_integrations_parse,
    .outbound = crm_integrations_outbound,
    .run = crm_integrations_connect_run
};

const crm_endpoint_t  crm_integrations_list = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .run = crm_integrations_list_run
};

const crm_endpoint_t  crm_integrations_status = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_integrations_type_parse,
    .run = crm_integrations_status_run
};

const crm_endpoint_t  crm_integrations_disconnect = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_integrations_type_parse,
    .run = crm_integrations_disconnect_run
};

const crm_endpoint_t  crm_integrations_retry = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_integrations_type_parse,
    .run = crm_integrations_retry_run
};

const crm_endpoint_t  crm_integrations_logs = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_integrations_logs_parse,
    .run = crm_integrations_logs_run
};


static crm_status_e
crm_integrations_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e             rc;
    crm_integration_in_t    *in;
    crm_integration_body_t   body;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_integration_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_integration_in_t));
    if (in == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    in->provider = crm_provider_find(body.crm_type.str);

    if (in->provider == NULL) {
        return crm_error_set(err, CRM_E_INVALID, "crm_type",
                             "must be one of klaviyo, salesforce, creatio");
    }

    in->op.provider = in->provider;
    in->op.conf = &call->conf->providers;
    in->op.arena = &call->arena;

    rc = in->provider->parse(&in->op, body.credentials.obj,
                             body.settings.null ? NULL : body.settings.obj,
                             err);
    if (rc != CRM_OK) {
        /* the provider names its own fields: say where they are */
        if (rc == CRM_E_INVALID && err->field[0] != '\0'
            && strlen(err->field) < sizeof(err->field) - 12)
        {
            char  field[sizeof(err->field)];

            crm_integrations_field(err->field, field, sizeof(field));
            memcpy(err->field, field, sizeof(field));
        }

        return rc;
    }

    in->credentials = crm_integrations_json(call, body.credentials.obj,
                                            &in->credentials_len);
    in->settings = body.settings.present && !body.settings.null
                   ? crm_integrations_json(call, body.settings.obj, NULL)
                   : "{}";

    if (in->credentials == NULL || in->settings == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (in->credentials_len > CRM_CREDENTIALS_MAX) {
        return crm_error_set(err, CRM_E_INVALID, "credentials",
                             "must be at most %d bytes as JSON",
                             CRM_CREDENTIALS_MAX);
    }

    call->input = in;

    return CRM_OK;
}


/*
 * A provider names its own fields ("api_key"): the request has them under
 * "credentials." (settings already say "settings.")
 */
static void
crm_integrations_field(const char *field, char *out, size_t size)
{
    snprintf(out, size, "%s%s",
             strcmp(field, "credentials") == 0
             || strncmp(field, "credentials.", 12) == 0
             || strncmp(field, "settings", 8) == 0 ? "" : "credentials.",
             field);
}


/* a parsed value as JSON text in the arena; NULL on ENOMEM */
static char *
crm_integrations_json(crm_call_t *call, yajl_val v, size_t *len)
{
    char      *text, *copy;
    size_t     n;
    yajl_gen   g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return NULL;
    }

    if (crm_json_gen_value(g, v) != 0) {
        yajl_gen_free(g);
        return NULL;
    }

    if (crm_json_gen_finish(g, &text, &n) != CRM_OK) {
        return NULL;
    }

    copy = crm_arena_strdup(&call->arena, (crm_str_t) { text, n });
    free(text);

    if (len != NULL) {
        *len = n;
    }

    return copy;
}


static crm_status_e
crm_integrations_outbound(crm_call_t *call, const crm_http_response_t *res,
    crm_http_request_t **req, crm_error_t *err)
{
    crm_status_e           rc;
    crm_op_step_e          step;
    crm_integration_in_t  *in;

    (void) err;

    in = call->input;
    *req = NULL;

    if (res != NULL) {
        in->op.http_status = res->outcome == CRM_HTTP_ANSWERED
                             ? res->status : 0;
        in->op.duration_ms += res->duration_ms;
    }

    rc = in->provider->validate(&in->op, res, &step, &in->verdict_err);

    in->verdict = rc;

    if (rc == CRM_OK && step == CRM_OP_MORE) {
        *req = &in->op.req;
    }

    return CRM_OK;
}


static crm_status_e
crm_integrations_log_attempt(crm_db_t *db, crm_call_t *call,
    const char *operation, crm_error_t *err)
{
    crm_sync_log_entry_t   e;
    crm_integration_in_t  *in;

    in = call->input;

    memset(&e, 0, sizeof(e));
    e.account_id = call->caller->id;
    e.crm_type = in->provider->type;
    e.operation = operation;
    e.outcome = in->verdict == CRM_OK ? "ok"
                : in->verdict == CRM_E_INVALID ? "refused"
                : in->verdict == CRM_E_GATEWAY_TIMEOUT ? "timeout"
                : "failed";
    e.http_status = in->op.http_status;
    e.duration_ms = in->op.duration_ms;
    e.attempt = 1;
    e.error = in->verdict == CRM_OK ? NULL : in->verdict_err.message;

    return crm_store_sync_log(db, &e, err);
}


/* 422 {valid: false, ...}: a problem document that says so */
static crm_status_e
crm_integrations_refused(crm_call_t *call, crm_error_t *err)
{
    char                   field[sizeof(err->field) + 16];
    yajl_gen               g;
    const char            *f;
    crm_integration_in_t  *in;

    in = call->input;
    f = in->verdict_err.field;

    crm_integrations_field(f[0] != '\0' ? f : "credentials", field,
                           sizeof(field));

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "type", "about:blank") != 0
        || crm_json_gen_kv_str(g, "title", "Unprocessable Content") != 0
        || crm_json_gen_kv_int(g, "status", 422) != 0
        || crm_json_gen_kv_str(g, "detail", in->verdict_err.message) != 0
        || crm_json_gen_kv_bool(g, "valid", 0) != 0
        || crm_json_gen_key(g, "errors") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "field", field) != 0
        || crm_json_gen_kv_str(g, "message", in->verdict_err.message) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_array_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (crm_call_reply_json(call, 422, g, err) != CRM_OK) {
        return err->code;
    }

    call->reply.content_type = "application/problem+json";

    return CRM_OK;
}


static int
crm_integrations_account(yajl_gen g, const crm_provider_op_t *op)
{
    const crm_provider_field_t  *f;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
        return -1;
    }

    for (f = op->account; f != NULL; f = f->next) {
        if (crm_json_gen_kv_str(g, f->name, f->value) != 0) {
            return -1;
        }
    }

    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}


static crm_status_e
crm_integrations_validate_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err)
{
    yajl_gen               g;
    crm_status_e           rc;
    crm_integration_in_t  *in;

    in = call->input;

    rc = crm_integrations_log_attempt(db, call, "validate", err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (in->verdict == CRM_E_INVALID) {
        return crm_integrations_refused(call, err);
    }

    if (in->verdict != CRM_OK) {
        *err = in->verdict_err;
        return err->code;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_bool(g, "valid", 1) != 0
        || crm_json_gen_kv_str(g, "crm_type", in->provider->type) != 0
        || crm_json_gen_key(g, "account") != 0
        || crm_integrations_account(g, &in->op) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, 200, g, err);
}


/*
 * The attempt's log row, then (when the provider took the credentials)
 * the sealed credentials and the audit row, in one transaction: a
 * connection is never stored without its log, nor logged as made without
 * being stored
 */
static crm_status_e
crm_integrations_connect_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err)
{
    int                     replaced;
    char                    aad[128];
    char                   *hex, *account_text, *account_json;
    size_t                  sealed_len, account_len;
    yajl_gen                g;
    crm_rows_t              rows;
    const char             *key_id;
    crm_status_e            rc;
    unsigned char          *sealed;
    crm_audit_entry_t       audit;
    crm_integration_new_t   new;
    crm_integration_in_t   *in;

    in = call->input;

    if (call->conf->seal == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "no credentials key is configured");
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_integrations_log_attempt(db, call, "connect", err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (in->verdict != CRM_OK) {
        rc = crm_db_commit(db, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (in->verdict == CRM_E_INVALID) {
            return crm_integrations_refused(call, err);
        }

        *err = in->verdict_err;
        return err->code;
    }

    /* the row it belongs to: copied to another account or type, it fails */
    snprintf(aad, sizeof(aad), "%s/%s", call->caller->id, in->provider->type);

    sealed = crm_arena_alloc(&call->arena,
                             in->credentials_len + CRM_SEAL_OVERHEAD);
    hex = crm_arena_alloc(&call->arena,
                          2 * (in->credentials_len + CRM_SEAL_OVERHEAD) + 1);
    if (sealed == NULL || hex == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = crm_seal(call->conf->seal, aad, strlen(aad), in->credentials,
                  in->credentials_len, sealed, &sealed_len, &key_id, err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_hex_encode(sealed, sealed_len, hex);

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (crm_integrations_account(g, &in->op) != 0) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    /* finish frees g, whatever it returns */
    if (crm_json_gen_finish(g, &account_text, &account_len) != CRM_OK) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    account_json = crm_arena_strdup(&call->arena,
                                    (crm_str_t) { account_text,
                                                  account_len });
    free(account_text);

    if (account_json == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    new.account_id = call->caller->id;
    new.crm_type = in->provider->type;
    new.key_id = key_id;
    new.sealed_hex = hex;
    new.settings = in->settings;
    new.account = account_json;

    rc = crm_store_integration_connect(db, &new, &rows, &replaced, err);
    if (rc != CRM_OK) {
        return rc;
    }

    audit.actor_id = call->caller->id;
    audit.action = replaced ? "integration.replace" : "integration.connect";
    audit.object_type = "integration";
    audit.object_id = in->provider->type;
    audit.details = "{}";

    rc = crm_store_audit(db, &audit, err);
    if (rc == CRM_OK) {
        rc = crm_db_commit(db, err);
    }

    if (rc != CRM_OK) {
        crm_rows_free(&rows);
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "crm_type", crm_rows_value(&rows, 0, 0))
           != 0
        || crm_json_gen_kv_str(g, "status", crm_rows_value(&rows, 0, 1)) != 0
        || crm_json_gen_kv_str(g, "connected_at",
                               crm_rows_value(&rows, 0, 2)) != 0
        || crm_json_gen_key(g, "account") != 0
        || crm_integrations_account(g, &in->op) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        crm_rows_free(&rows);
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    crm_rows_free(&rows);

    return crm_call_reply_json(call, replaced ? 200 : 201, g, err);
}


/* /crm/{type}/...: a known CRM type, or 404 */
static crm_status_e
crm_integrations_type_parse(crm_call_t *call, crm_error_t *err)
{
    size_t                   i;
    crm_integration_path_t  *path;

    for (i = 0; crm_integration_types[i] != NULL; i++) {
        if (crm_str_eq(call->match.params[0], crm_integration_types[i])) {
            break;
        }
    }

    if (crm_integration_types[i] == NULL) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such CRM type");
    }

    path = crm_arena_alloc(&call->arena, sizeof(crm_integration_path_t));
    if (path == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    path->type = crm_integration_types[i];
    call->input = path;

    return CRM_OK;
}


static crm_status_e
crm_integrations_logs_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e             rc;
    crm_integration_path_t  *path;

    rc = crm_integrations_type_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_form_check_names(call->query, crm_integrations_log_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    path = call->input;

    return crm_page_parse(call->query, CRM_PAGE_NUMERIC, &path->page, err);
}


/* {crm_type, status, connected_at, last_sync_at, last_error[, counts]} */
static int
crm_integrations_render(yajl_gen g, const crm_rows_t *rows, size_t i,
    int counts)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "crm_type", crm_rows_value(rows, i, 0))
           != 0
        || crm_json_gen_kv_str(g, "status", crm_rows_value(rows, i, 1)) != 0
        || crm_json_gen_kv_str(g, "connected_at", crm_rows_value(rows, i, 2))
           != 0
        || crm_json_gen_kv_str(g, "last_sync_at", crm_rows_value(rows, i, 3))
           != 0
        || crm_json_gen_kv_str(g, "last_error", crm_rows_value(rows, i, 4))
           != 0)
    {
        return -1;
    }

    if (counts
        && (crm_json_gen_key(g, "counts") != 0
            || yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_int(g, "pending",
                   strtoll(crm_rows_value(rows, i, 5), NULL, 10)) != 0
            || crm_json_gen_kv_int(g, "ok",
                   strtoll(crm_rows_value(rows, i, 6), NULL, 10)) != 0
            || crm_json_gen_kv_int(g, "failed",
                   strtoll(crm_rows_value(rows, i, 7), NULL, 10)) != 0
            || crm_json_gen_kv_int(g, "dead",
                   strtoll(crm_rows_value(rows, i, 8), NULL, 10)) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok))
    {
        return -1;
    }

    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}


static crm_status_e
crm_integrations_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    size_t         i;
    yajl_gen       g;
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_store_integrations_list(db, call->caller->id, NULL, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = yajl_gen_map_open(g) == yajl_gen_status_ok
         && crm_json_gen_key(g, "items") == 0
         && yajl_gen_array_open(g) == yajl_gen_status_ok
         ? CRM_OK : CRM_E_INTERNAL;

    for (i = 0; rc == CRM_OK && i < rows.n; i++) {
        if (crm_integrations_render(g, &rows, i, 0) != 0) {
            rc = CRM_E_INTERNAL;
        }
    }

    crm_rows_free(&rows);

    if (rc != CRM_OK || yajl_gen_array_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, 200, g, err);
}


static crm_status_e
crm_integrations_status_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err)
{
    yajl_gen       g;
    crm_rows_t     rows;
    crm_status_e   rc;

    const crm_integration_path_t  *path = call->input;

    rc = crm_store_integrations_list(db, call->caller->id, path->type, &rows,
                                     err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "%s is not connected", path->type);
    }

    g = crm_json_gen_new();
    if (g == NULL || crm_integrations_render(g, &rows, 0, 1) != 0) {
        crm_rows_free(&rows);

        if (g != NULL) {
            yajl_gen_free(g);
        }

        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    crm_rows_free(&rows);

    return crm_call_reply_json(call, 200, g, err);
}


static crm_status_e
crm_integrations_disconnect_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err)
{
    int                 found;
    yajl_gen            g;
    crm_status_e        rc;

    const crm_integration_path_t  *path = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_integration_disconnect(db, call->caller->id, path->type,
                                          &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "%s is not connected", path->type);
    }

    rc = crm_integrations_audit_commit(db, call, "integration.disconnect", err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "crm_type", path->type) != 0
        || crm_json_gen_kv_str(g, "status", "disconnected") != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, 200, g, err);
}


/* the change's audit row (on the path's type), and the commit */
static crm_status_e
crm_integrations_audit_commit(crm_db_t *db, crm_call_t *call,
    const char *action, crm_error_t *err)
{
    crm_status_e        rc;
    crm_audit_entry_t   audit;

    const crm_integration_path_t  *path = call->input;

    audit.actor_id = call->caller->id;
    audit.action = action;
    audit.object_type = "integration";
    audit.object_id = path->type;
    audit.details = "{}";

    rc = crm_store_audit(db, &audit, err);

    return rc == CRM_OK ? crm_db_commit(db, err) : rc;
}


/* the dead jobs back in the queue, in one transaction with the audit row */
static crm_status_e
crm_integrations_retry_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int64_t             requeued;
    yajl_gen            g;
    crm_rows_t          rows;
    crm_status_e        rc;

    const crm_integration_path_t  *path = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_integrations_list(db, call->caller->id, path->type, &rows,
                                     err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "%s is not connected", path->type);
    }

    crm_rows_free(&rows);

    rc = crm_store_sync_retry(db, call->caller->id, path->type, &requeued,
                              err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_integrations_audit_commit(db, call, "integration.retry", err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "crm_type", path->type) != 0
        || crm_json_gen_kv_int(g, "requeued", requeued) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, 202, g, err);
}


static int
crm_integrations_log_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at)
{
    const char        *status;
    const crm_rows_t  *r = rows;

    (void) call;

    snprintf(at->id, sizeof(at->id), "%s", crm_rows_value(r, i, 0));
    status = crm_rows_value(r, i, 5);

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", crm_rows_value(r, i, 0)) != 0
        || crm_json_gen_kv_str(g, "operation", crm_rows_value(r, i, 1)) != 0
        || crm_json_gen_kv_str(g, "entity", crm_rows_value(r, i, 2)) != 0
        || crm_json_gen_kv_str(g, "entity_id", crm_rows_value(r, i, 3)) != 0
        || crm_json_gen_kv_str(g, "outcome", crm_rows_value(r, i, 4)) != 0
        || (status != NULL
            ? crm_json_gen_kv_int(g, "http_status",
                                  strtoll(status, NULL, 10))
            : crm_json_gen_kv_str(g, "http_status", NULL)) != 0
        || crm_json_gen_kv_int(g, "duration_ms",
                               strtoll(crm_rows_value(r, i, 6), NULL, 10))
           != 0
        || crm_json_gen_kv_int(g, "attempt",
                               strtoll(crm_rows_value(r, i, 7), NULL, 10))
           != 0
        || crm_json_gen_kv_str(g, "error", crm_rows_value(r, i, 8)) != 0
        || crm_json_gen_kv_str(g, "created_at", crm_rows_value(r, i, 9)) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


static crm_status_e
crm_integrations_logs_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int            known;
    crm_rows_t     rows;
    crm_status_e   rc;

    const crm_integration_path_t  *path = call->input;

    rc = crm_store_integration_known(db, call->caller->id, path->type,
                                     &known, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!known) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "%s was never connected", path->type);
    }

    rc = crm_store_sync_log_page(db, call->caller->id, path->type,
                                 &path->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, path->page.limit,
                             crm_integrations_log_item, err);
    crm_rows_free(&rows);

    return rc;
}
