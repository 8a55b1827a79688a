/*
 * Klaviyo (https://developers.klaviyo.com, revision below): a private API
 * key in "Authorization: Klaviyo-API-Key <key>", a "revision" header on
 * every call, JSON:API bodies.  A key is validated by reading the account
 * it belongs to (GET /api/accounts, scope accounts:read).
 *
 *   get_contact     GET  /api/profiles?filter=equals(external_id,"<lead>")
 *   upsert_contact  POST /api/profile-import     (profiles:write)
 *   send_event      POST /api/events             (events:write)
 *
 * A lead's profile carries the lead id as its external_id, so a lead
 * without an email or phone still has one; the event's unique_id is the
 * event's id, so Klaviyo keeps one event however often it is sent.
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
static crm_status_e crm_klaviyo_get_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_klaviyo_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_klaviyo_send_event(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static int crm_klaviyo_properties(yajl_gen g, const crm_contact_t *c);
static crm_status_e crm_klaviyo_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static crm_status_e crm_klaviyo_profile_id(crm_provider_op_t *op,
    const crm_http_response_t *res, int list, crm_error_t *err);


static const crm_json_field_t  crm_klaviyo_fields[] = {
    { .name = "api_key", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_KLAVIYO_KEY_MAX,
      .offset = offsetof(crm_klaviyo_body_t, api_key) },
};


const crm_provider_t  crm_provider_klaviyo = {
    .type = "klaviyo",
    .name = "Klaviyo",
    /* profile-import allows 750 a minute, events 3,500 (steady) */
    .rate = 10,
    .parse = crm_klaviyo_parse,
    .validate = crm_klaviyo_validate,
    .get_contact = crm_klaviyo_get_contact,
    .upsert_contact = crm_klaviyo_upsert_contact,
    .send_event = crm_klaviyo_send_event
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


static crm_status_e
crm_klaviyo_get_contact(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    char  path[256];

    if (res == NULL) {
        *step = CRM_OP_MORE;

        /* a canonical UUID: nothing in it needs escaping but the filter */
        snprintf(path, sizeof(path),
                 "/api/profiles?filter=equals%%28external_id%%2C%%22%.36s"
                 "%%22%%29", op->contact->lead_id);

        return crm_klaviyo_request(op, "GET", path, err);
    }

    *step = CRM_OP_DONE;

    if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
        return crm_klaviyo_failed(op, res, err);
    }

    return crm_klaviyo_profile_id(op, res, 1, err);
}


/*
 * {"data": {"type": "profile", "attributes": {...}}}: every field the lead
 * lacks is sent as null, which Klaviyo clears
 */
static crm_status_e
crm_klaviyo_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    yajl_gen              g;
    const char           *first, *last;
    crm_status_e          rc;
    const crm_contact_t  *c;

    c = op->contact;

    if (res != NULL) {
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED
            || (res->status != 200 && res->status != 201))
        {
            return crm_klaviyo_failed(op, res, err);
        }

        return crm_klaviyo_profile_id(op, res, 0, err);
    }

    *step = CRM_OP_MORE;

    rc = crm_klaviyo_request(op, "POST", "/api/profile-import", err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (crm_provider_split_name(op, c->name, &first, &last) != 0) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "data") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "type", "profile") != 0
        || crm_json_gen_key(g, "attributes") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "external_id", c->lead_id) != 0
        || crm_json_gen_kv_str(g, "email", c->email) != 0
        || crm_json_gen_kv_str(g, "phone_number", c->phone) != 0
        || crm_json_gen_kv_str(g, "first_name", first != NULL ? first : last)
           != 0
        || crm_json_gen_kv_str(g, "last_name", first != NULL ? last : NULL)
           != 0
        || crm_json_gen_kv_str(g, "organization", c->company) != 0
        || crm_json_gen_key(g, "properties") != 0
        || crm_klaviyo_properties(g, c) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, "application/vnd.api+json", err);
}


/*
 * {"data": {"type": "event", "attributes": {"properties", "metric",
 * "profile", "time", "value", "value_currency", "unique_id"}}}: 202
 */
static crm_status_e
crm_klaviyo_send_event(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    int                   n;
    char                  value[32];
    yajl_gen              g;
    crm_status_e          rc;
    const crm_event_t    *e;
    const crm_contact_t  *c;

    c = op->contact;
    e = op->event;

    if (res != NULL) {
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED || res->status != 202) {
            return crm_klaviyo_failed(op, res, err);
        }

        return CRM_OK;
    }

    *step = CRM_OP_MORE;

    rc = crm_klaviyo_request(op, "POST", "/api/events", err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "data") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "type", "event") != 0
        || crm_json_gen_key(g, "attributes") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "properties") != 0
        || crm_klaviyo_properties(g, c) != 0
        || crm_json_gen_key(g, "metric") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "data") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "type", "metric") != 0
        || crm_json_gen_key(g, "attributes") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "name", e->name) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "profile") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "data") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "type", "profile") != 0
        || crm_json_gen_key(g, "attributes") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "external_id", c->lead_id) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "time", e->time) != 0
        || crm_json_gen_kv_str(g, "unique_id", e->id) != 0)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (e->value_cents >= 0) {
        /* the amount as written, not through a double */
        n = snprintf(value, sizeof(value), "%lld.%02lld",
                     (long long) (e->value_cents / 100),
                     (long long) (e->value_cents % 100));

        if (crm_json_gen_key(g, "value") != 0
            || yajl_gen_number(g, value, (size_t) n) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "value_currency", e->currency) != 0)
        {
            yajl_gen_free(g);
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }
    }

    if (yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, "application/vnd.api+json", err);
}


/* the lead as the profile's and the event's custom properties */
static int
crm_klaviyo_properties(yajl_gen g, const crm_contact_t *c)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "lead_id", c->lead_id) != 0
        || crm_json_gen_kv_str(g, "stage", c->stage) != 0
        || crm_json_gen_kv_str(g, "substage", c->substage) != 0
        || crm_json_gen_kv_int(g, "score", c->score) != 0
        || crm_json_gen_kv_str(g, "shop_domain", c->shop_domain) != 0
        || crm_json_gen_kv_str(g, "source", c->source) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


/* what a 4xx said: {"errors": [{"code", "detail"}]} */
static crm_status_e
crm_klaviyo_failed(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    char          said[240];
    yajl_val      root, errors, first;
    const char   *code, *detail;

    static const char  *errors_path[] = { "errors", NULL };
    static const char  *code_path[] = { "code", NULL };
    static const char  *detail_path[] = { "detail", NULL };

    said[0] = '\0';
    root = NULL;

    if (res->outcome == CRM_HTTP_ANSWERED && res->status >= 400
        && res->status < 500)
    {
        root = crm_provider_json(res);
        errors = root != NULL ? yajl_tree_get(root, errors_path,
                                              yajl_t_array)
                              : NULL;
        first = errors != NULL && errors->u.array.len > 0
                ? errors->u.array.values[0] : NULL;
        code = first != NULL ? crm_provider_string(first, code_path) : NULL;
        detail = first != NULL ? crm_provider_string(first, detail_path)
                               : NULL;

        if (code != NULL || detail != NULL) {
            snprintf(said, sizeof(said), "%.40s%s%.190s",
                     code != NULL ? code : "",
                     code != NULL && detail != NULL ? ": " : "",
                     detail != NULL ? detail : "");
        }
    }

    yajl_tree_free(root);

    return crm_provider_write_failed(op, res, said[0] ? said : NULL, err);
}


/* data.id of a profile (list: data[0].id, none found is no contact) */
static crm_status_e
crm_klaviyo_profile_id(crm_provider_op_t *op, const crm_http_response_t *res,
    int list, crm_error_t *err)
{
    yajl_val     root, data;
    const char  *id;

    static const char  *data_path[] = { "data", NULL };
    static const char  *id_path[] = { "id", NULL };

    root = crm_provider_json(res);
    if (root == NULL) {
        return crm_provider_failed(op, res, err);
    }

    data = yajl_tree_get(root, data_path,
                         list ? yajl_t_array : yajl_t_object);
    if (data == NULL) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Klaviyo gave an answer that cannot be read "
                             "(no profile)");
    }

    if (list) {
        data = data->u.array.len > 0 ? data->u.array.values[0] : NULL;
    }

    id = data != NULL ? crm_provider_string(data, id_path) : NULL;
    op->contact_id = id != NULL
                     ? crm_arena_strdup(op->arena, crm_str_c(id)) : NULL;

    yajl_tree_free(root);

    if (id != NULL && op->contact_id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (!list && id == NULL) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Klaviyo gave an answer that cannot be read "
                             "(no profile id)");
    }

    return CRM_OK;
}
