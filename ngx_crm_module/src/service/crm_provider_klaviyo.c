/*
 * Klaviyo (https://developers.klaviyo.com, revision below): a private API
 * key in "Authorization: Klaviyo-API-Key <key>", a "revision" header on
 * every call, JSON:API bodies.  A key is validated by reading the account
 * it belongs to (GET /api/accounts, scope accounts:read).
 */

#include <stdio.h>
#include <string.h>

#include "crm_json.h"
#include "crm_provider.h"


/*
 * the API revision this client speaks: Klaviyo retires a revision two
 * years after its release (calls then answer 410), so this moves with it
 */
#define CRM_KLAVIYO_REVISION  "2026-10-15"
#define CRM_KLAVIYO_KEY_MAX   128


typedef struct {
    crm_json_value_t  api_key;
} crm_klaviyo_body_t;


typedef struct {
    const char  *api_key;
    const char  *authorization;
} crm_klaviyo_creds_t;


static crm_status_e crm_klaviyo_parse(crm_provider_op_t *op,
    yajl_val credentials, yajl_val settings, crm_error_t *err);
static crm_status_e crm_klaviyo_validate(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_klaviyo_request(crm_provider_op_t *op,
    const char *method, const char *path, crm_error_t *err);
static crm_status_e crm_klaviyo_account(crm_provider_op_t *op,
    yajl_val root, crm_error_t *err);


static const crm_json_field_t  crm_klaviyo_fields[] = {
    { .name = "api_key", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_KLAVIYO_KEY_MAX,
      .offset = offsetof(crm_klaviyo_body_t, api_key) },
};


const crm_provider_t  crm_provider_klaviyo = {
    .type = "klaviyo",
    .name = "Klaviyo",
    .parse = crm_klaviyo_parse,
    .validate = crm_klaviyo_validate
};


static crm_status_e
crm_klaviyo_parse(crm_provider_op_t *op, yajl_val credentials,
    yajl_val settings, crm_error_t *err)
{
    size_t                i;
    char                 *auth;
    crm_status_e          rc;
    crm_klaviyo_body_t    body;
    crm_klaviyo_creds_t  *creds;

    if (settings != NULL && YAJL_IS_OBJECT(settings)
        && settings->u.object.len > 0)
    {
        return crm_error_set(err, CRM_E_INVALID, "settings",
                             "Klaviyo takes no settings (\"%.64s\" given)",
                             settings->u.object.keys[0]);
    }

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(credentials, crm_klaviyo_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* a key goes into a header: visible ASCII only */
    for (i = 0; i < body.api_key.str.len; i++) {
        if (body.api_key.str.data[i] <= ' ' || body.api_key.str.data[i] > '~')
        {
            return crm_error_set(err, CRM_E_INVALID, "api_key",
                                 "must be a Klaviyo private API key");
        }
    }

    creds = crm_arena_alloc(op->arena, sizeof(crm_klaviyo_creds_t));
    auth = crm_arena_alloc(op->arena, body.api_key.str.len
                                      + sizeof("Klaviyo-API-Key "));
    if (creds == NULL || auth == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    memcpy(auth, "Klaviyo-API-Key ", sizeof("Klaviyo-API-Key ") - 1);
    memcpy(auth + sizeof("Klaviyo-API-Key ") - 1, body.api_key.str.data,
           body.api_key.str.len);

    creds->api_key = auth + sizeof("Klaviyo-API-Key ") - 1;
    creds->authorization = auth;
    op->creds = creds;

    return CRM_OK;
}


static crm_status_e
crm_klaviyo_request(crm_provider_op_t *op, const char *method,
    const char *path, crm_error_t *err)
{
    char                  url[1024];
    crm_status_e          rc;
    crm_klaviyo_creds_t  *creds;

    creds = op->creds;

    if ((size_t) snprintf(url, sizeof(url), "%s%s", op->conf->klaviyo_url,
                          path)
        >= sizeof(url))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "URL too long");
    }

    rc = crm_provider_request(op, method, url, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (crm_http_request_header(&op->req, op->arena, "Authorization",
                                creds->authorization) != 0
        || crm_http_request_header(&op->req, op->arena, "revision",
                                   CRM_KLAVIYO_REVISION) != 0
        || crm_http_request_header(&op->req, op->arena, "Accept",
                                   "application/vnd.api+json") != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


static crm_status_e
crm_klaviyo_validate(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    yajl_val      root;
    crm_status_e  rc;

    if (res == NULL) {
        *step = CRM_OP_MORE;
        return crm_klaviyo_request(op, "GET", "/api/accounts", err);
    }

    *step = CRM_OP_DONE;

    if (res->outcome == CRM_HTTP_ANSWERED
        && (res->status == 401 || res->status == 403))
    {
        return crm_error_set(err, CRM_E_INVALID, "api_key",
                             "Klaviyo refused the key (HTTP %u)%s",
                             res->status,
                             res->status == 403
                             ? ": it lacks the accounts:read scope" : "");
    }

    if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
        return crm_provider_failed(op, res, err);
    }

    root = crm_provider_json(res);
    if (root == NULL) {
        return crm_provider_failed(op, res, err);
    }

    rc = crm_klaviyo_account(op, root, err);

    yajl_tree_free(root);

    return rc;
}


/* {"data": [{"type": "account", "id": .., "attributes": {..}}]} */
static crm_status_e
crm_klaviyo_account(crm_provider_op_t *op, yajl_val root, crm_error_t *err)
{
    yajl_val      data, first;
    const char   *id;

    static const char  *data_path[] = { "data", NULL };
    static const char  *id_path[] = { "id", NULL };
    static const char  *name_path[] = {
        "attributes", "contact_information", "organization_name", NULL
    };
    static const char  *currency_path[] = {
        "attributes", "preferred_currency", NULL
    };
    static const char  *timezone_path[] = { "attributes", "timezone", NULL };

    data = yajl_tree_get(root, data_path, yajl_t_array);
    first = data != NULL && data->u.array.len > 0 ? data->u.array.values[0]
                                                  : NULL;
    id = first != NULL ? crm_provider_string(first, id_path) : NULL;

    if (id == NULL) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Klaviyo gave an answer that cannot be read "
                             "(no account)");
    }

    if (crm_provider_account(op, "id", id, err) != CRM_OK
        || crm_provider_account(op, "name",
                                crm_provider_string(first, name_path), err)
           != CRM_OK
        || crm_provider_account(op, "preferred_currency",
                                crm_provider_string(first, currency_path),
                                err) != CRM_OK
        || crm_provider_account(op, "timezone",
                                crm_provider_string(first, timezone_path),
                                err) != CRM_OK)
    {
        return err->code;
    }

    return CRM_OK;
}
