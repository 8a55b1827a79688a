/*
 * Creatio: the merchant's own instance (instance_url), a cookie session
 * from AuthService.svc/Login, then OData 4 with the session's cookies and
 * its BPMCSRF value as a header (Creatio's CSRF check since 7.10).
 *
 *   validate   POST <instance>/ServiceModel/AuthService.svc/Login
 *              GET  <instance><odata_path>/Contact?$top=1&$select=Id
 *
 * and then, under <instance><odata_path>:
 *
 *   get_contact     GET   Contact(<lead id>), else the first Contact
 *                         with the lead's Email
 *   upsert_contact  PATCH Contact(<Id>) of the one found, or POST
 *                         Contact with the lead's id as its Id
 *   send_event      POST  Activity with the event's id as its Id (a
 *                         resent event first asks for Activity(<id>))
 *
 * Creatio takes a client's primary key on insert, so the lead's and the
 * event's own UUIDs key what the gateway makes there: a retry finds what
 * an earlier attempt made instead of making it twice.
 *
 * The instance is a URL the user supplies: it must be https, its host may
 * not be a local name (localhost, *.local, *.internal), and the outbound
 * layer lets it connect only to a public address (or to the operator's
 * allow list, plain http included, for local stand-ins), at every call.
 * Login answers 200 for wrong credentials too, with a non-zero "Code".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crm_json.h"
#include "crm_provider.h"
#include "crm_url.h"


#define CRM_CREATIO_TEXT_MAX    250
#define CRM_CREATIO_ODATA       "/0/odata"
#define CRM_CREATIO_COOKIE_MAX  8192
#define CRM_CREATIO_JSON                                                     \
    "application/json; charset=utf-8; IEEE754Compatible=true"


/* where a write operation stands (op->step) */
enum {
    CRM_CREATIO_START = 0,
    CRM_CREATIO_BY_ID,          /* the answer to GET Contact(<id>) */
    CRM_CREATIO_BY_EMAIL,       /* ... to the find by Email */
    CRM_CREATIO_WRITTEN,        /* ... to the PATCH or POST of it */
    CRM_CREATIO_EVENT_ASKED,    /* ... to GET Activity(<id>) */
    CRM_CREATIO_EVENT_MADE      /* ... to POST Activity */
};


typedef struct {
    crm_json_value_t  instance_url;
    crm_json_value_t  username;
    crm_json_value_t  password;
} crm_creatio_body_t;


typedef struct {
    crm_json_value_t  odata_path;
} crm_creatio_settings_t;


typedef struct {
    const char  *instance;          /* no trailing slash */
    const char  *username;
    const char  *password;
    const char  *odata;             /* "/0/odata" */
    char        *cookies;           /* "a=1; b=2", from the login */
    const char  *csrf;              /* the BPMCSRF cookie's value */
} crm_creatio_creds_t;


static crm_status_e crm_creatio_parse(crm_provider_op_t *op,
    yajl_val credentials, yajl_val settings, crm_error_t *err);
static crm_status_e crm_creatio_validate(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_creatio_login(crm_provider_op_t *op,
    crm_error_t *err);
static crm_status_e crm_creatio_logged_in(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static crm_status_e crm_creatio_session(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static int crm_creatio_has_session(crm_provider_op_t *op);
static crm_status_e crm_creatio_authorize(crm_provider_op_t *op,
    crm_error_t *err);
static char *crm_creatio_session_save(crm_provider_op_t *op);
static int crm_creatio_session_load(crm_provider_op_t *op,
    const char *saved);
static crm_status_e crm_creatio_odata(crm_provider_op_t *op,
    const char *method, const char *path, crm_error_t *err);
static crm_status_e crm_creatio_get_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_creatio_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_creatio_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, int upsert,
    crm_error_t *err);
static crm_status_e crm_creatio_write_contact(crm_provider_op_t *op,
    crm_error_t *err);
static crm_status_e crm_creatio_send_event(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_creatio_activity(crm_provider_op_t *op,
    crm_error_t *err);
static crm_status_e crm_creatio_found(crm_provider_op_t *op,
    const crm_http_response_t *res, int list, crm_error_t *err);
static int crm_creatio_guid(const char *s);
static crm_status_e crm_creatio_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);


static const crm_json_field_t  crm_creatio_fields[] = {
    { .name = "instance_url", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = 256,
      .offset = offsetof(crm_creatio_body_t, instance_url) },
    { .name = "username", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_CREATIO_TEXT_MAX,
      .offset = offsetof(crm_creatio_body_t, username) },
    { .name = "password", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_CREATIO_TEXT_MAX,
      .offset = offsetof(crm_creatio_body_t, password) },
};

static const crm_json_field_t  crm_creatio_setting_fields[] = {
    { .name = "odata_path", .kind = CRM_JSON_STRING, .min_len = 1,
      .max_len = 64, .offset = offsetof(crm_creatio_settings_t, odata_path) },
};


const crm_provider_t  crm_provider_creatio = {
    .type = "creatio",
    .name = "Creatio",
    /* no documented limit: the merchant's own server */
    .rate = 10,
    .parse = crm_creatio_parse,
    .validate = crm_creatio_validate,
    .get_contact = crm_creatio_get_contact,
    .upsert_contact = crm_creatio_upsert_contact,
    .send_event = crm_creatio_send_event,
    .has_session = crm_creatio_has_session,
    .login = crm_creatio_login,
    .logged_in = crm_creatio_logged_in,
    .authorize = crm_creatio_authorize,
    .session_save = crm_creatio_session_save,
    .session_load = crm_creatio_session_load
};


static crm_status_e
crm_creatio_parse(crm_provider_op_t *op, yajl_val credentials,
    yajl_val settings, crm_error_t *err)
{
    char                     host[CRM_URL_HOST_MAX];
    size_t                   i;
    crm_str_t                url, path;
    crm_status_e             rc;
    crm_creatio_body_t       body;
    crm_creatio_creds_t     *creds;
    crm_creatio_settings_t   set;

    memset(&body, 0, sizeof(body));
    memset(&set, 0, sizeof(set));

    rc = crm_json_decode_table(credentials, crm_creatio_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_provider_settings_table(settings, crm_creatio_setting_fields, &set,
                                     err);
    if (rc != CRM_OK) {
        return rc;
    }

    url = body.instance_url.str;

    while (url.len > 0 && url.data[url.len - 1] == '/') {
        url.len--;
    }

    /* http is let through the outbound layer only to the allow list */
    if (crm_url_check_target(url) != NULL
        || memchr(url.data, '?', url.len) != NULL
        || memchr(url.data, '#', url.len) != NULL
        || (strncasecmp(url.data, "https://", 8) != 0
            && (op->conf->allow == NULL
                || strncasecmp(url.data, "http://", 7) != 0)))
    {
        return crm_error_set(err, CRM_E_INVALID, "instance_url",
                             "must be an absolute https URL without a "
                             "query");
    }

    (void) crm_url_host(url, host);

    if (crm_addr_name_refused(crm_str_c(host))) {
        return crm_error_set(err, CRM_E_INVALID, "instance_url",
                             "must name a public host, not \"%.64s\"",
                             host);
    }

    path = set.odata_path.present ? set.odata_path.str
                                  : crm_str_lit(CRM_CREATIO_ODATA);

    while (path.len > 1 && path.data[path.len - 1] == '/') {
        path.len--;
    }

    for (i = 0; i < path.len; i++) {
        if (!((path.data[i] >= 'a' && path.data[i] <= 'z')
              || (path.data[i] >= 'A' && path.data[i] <= 'Z')
              || (path.data[i] >= '0' && path.data[i] <= '9')
              || path.data[i] == '/' || path.data[i] == '_'
              || path.data[i] == '-'))
        {
            break;
        }
    }

    if (path.data[0] != '/' || i < path.len || path.len < 2) {
        return crm_error_set(err, CRM_E_INVALID, "settings.odata_path",
                             "must be a path such as /0/odata");
    }

    creds = crm_arena_alloc(op->arena, sizeof(crm_creatio_creds_t));
    if (creds == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    creds->instance = crm_arena_strdup(op->arena, url);
    creds->username = crm_arena_strdup(op->arena, body.username.str);
    creds->password = crm_arena_strdup(op->arena, body.password.str);
    creds->odata = crm_arena_strdup(op->arena, path);

    if (creds->instance == NULL || creds->username == NULL
        || creds->password == NULL || creds->odata == NULL)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    op->creds = creds;

    return CRM_OK;
}


static crm_status_e
crm_creatio_validate(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    crm_status_e          rc;
    crm_creatio_creds_t  *creds;

    creds = op->creds;
    *step = CRM_OP_MORE;

    /* the user's URL led where calls may not go: the user's to fix */
    if (res != NULL && res->outcome == CRM_HTTP_REFUSED) {
        *step = CRM_OP_DONE;
        return crm_error_set(err, CRM_E_INVALID, "instance_url",
                             "may not be called: %s", res->error);
    }

    switch (op->step++) {

    case 0:
        return crm_creatio_login(op, err);

    case 1:
        rc = crm_creatio_logged_in(op, res, err);
        if (rc != CRM_OK) {
            *step = CRM_OP_DONE;
            return rc;
        }

        return crm_creatio_odata(op, "GET", "/Contact?$top=1&$select=Id",
                                 err);

    default:
        *step = CRM_OP_DONE;

        if (res->outcome == CRM_HTTP_ANSWERED
            && (res->status == 401 || res->status == 403))
        {
            return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                                 "Creatio refused the session its login "
                                 "gave (HTTP %u)", res->status);
        }

        if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
            return crm_provider_failed(op, res, err);
        }

        if (crm_provider_account(op, "instance_url", creds->instance, err)
            != CRM_OK
            || crm_provider_account(op, "user_name", creds->username, err)
               != CRM_OK)
        {
            return err->code;
        }

        return CRM_OK;
    }
}


static crm_status_e
crm_creatio_login(crm_provider_op_t *op, crm_error_t *err)
{
    char                  url[512];
    char                 *body;
    size_t                len;
    yajl_gen              g;
    crm_status_e          rc;
    crm_creatio_creds_t  *creds;

    creds = op->creds;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "UserName", creds->username) != 0
        || crm_json_gen_kv_str(g, "UserPassword", creds->password) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    /* finish frees g, whatever it returns */
    if (crm_json_gen_finish(g, &body, &len) != CRM_OK) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    snprintf(url, sizeof(url), "%s/ServiceModel/AuthService.svc/Login",
             creds->instance);

    rc = crm_provider_request(op, "POST", url, err);
    if (rc == CRM_OK) {
        op->req.body = crm_arena_strdup(op->arena, (crm_str_t) { body, len });
        op->req.body_len = len;

        if (op->req.body == NULL
            || crm_http_request_header(&op->req, op->arena, "Content-Type",
                                       "application/json; charset=utf-8")
               != 0
            || crm_http_request_header(&op->req, op->arena,
                                       "ForceUseSession", "true") != 0)
        {
            rc = crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }
    }

    free(body);

    return rc;
}


static crm_status_e
crm_creatio_logged_in(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    yajl_val  root, code, message;

    static const char  *code_path[] = { "Code", NULL };
    static const char  *message_path[] = { "Message", NULL };

    if (res->outcome == CRM_HTTP_ANSWERED
        && (res->status == 401 || res->status == 403))
    {
        return crm_error_set(err, CRM_E_INVALID, "credentials",
                             "Creatio refused the login (HTTP %u)",
                             res->status);
    }

    if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
        return crm_provider_failed(op, res, err);
    }

    root = crm_provider_json(res);
    code = root != NULL ? yajl_tree_get(root, code_path, yajl_t_number)
                        : NULL;

    if (code == NULL || !YAJL_IS_INTEGER(code)) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Creatio gave an answer that cannot be read "
                             "(HTTP %u)", res->status);
    }

    if (YAJL_GET_INTEGER(code) != 0) {
        message = yajl_tree_get(root, message_path, yajl_t_string);
        crm_error_set(err, CRM_E_INVALID, "credentials",
                      "Creatio refused the login%s%.120s",
                      message != NULL && message->u.string[0] ? ": " : "",
                      message != NULL ? message->u.string : "");
        yajl_tree_free(root);
        return err->code;
    }

    yajl_tree_free(root);

    return crm_creatio_session(op, res, err);
}


/* the login's cookies as one Cookie header, and BPMCSRF's value apart */
static crm_status_e
crm_creatio_session(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    char                     *p, *end;
    size_t                    n;
    const char               *v, *semi;
    crm_creatio_creds_t      *creds;
    const crm_http_header_t  *h;

    creds = op->creds;

    /* a new login's session replaces all of the old one's */
    creds->csrf = NULL;
    creds->cookies = crm_arena_alloc(op->arena, CRM_CREATIO_COOKIE_MAX);
    if (creds->cookies == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    p = creds->cookies;
    end = p + CRM_CREATIO_COOKIE_MAX - 1;

    for (h = res->headers; h != NULL; h = h->next) {
        if (strcasecmp(h->name, "Set-Cookie") != 0) {
            continue;
        }

        v = h->value;
        semi = strchr(v, ';');
        n = semi != NULL ? (size_t) (semi - v) : strlen(v);

        if (n == 0 || memchr(v, '=', n) == NULL
            || (size_t) (end - p) < n + 2)
        {
            continue;
        }

        if (p != creds->cookies) {
            *p++ = ';';
            *p++ = ' ';
        }

        if (n > 8 && strncmp(v, "BPMCSRF=", 8) == 0) {
            creds->csrf = crm_arena_strdup(op->arena,
                                           (crm_str_t) { v + 8, n - 8 });
        }

        memcpy(p, v, n);
        p += n;
    }

    *p = '\0';

    if (creds->csrf == NULL || p == creds->cookies) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Creatio's login set no session (no BPMCSRF "
                             "cookie)");
    }

    return CRM_OK;
}


static int
crm_creatio_has_session(crm_provider_op_t *op)
{
    crm_creatio_creds_t  *creds = op->creds;

    return creds->csrf != NULL;
}


static crm_status_e
crm_creatio_authorize(crm_provider_op_t *op, crm_error_t *err)
{
    crm_creatio_creds_t  *creds;

    creds = op->creds;

    if (crm_http_request_set_header(&op->req, op->arena, "Cookie",
                                    creds->cookies) != 0
        || crm_http_request_set_header(&op->req, op->arena, "BPMCSRF",
                                       creds->csrf) != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


/* "<BPMCSRF value>\n<cookies>" */
static char *
crm_creatio_session_save(crm_provider_op_t *op)
{
    crm_creatio_creds_t  *creds = op->creds;

    return crm_provider_session_pack(creds->csrf, creds->cookies);
}


static int
crm_creatio_session_load(crm_provider_op_t *op, const char *saved)
{
    const char           *csrf, *cookies;
    crm_creatio_creds_t  *creds;

    creds = op->creds;

    if (crm_provider_session_unpack(op, saved, &csrf, &cookies) != 0
        || strlen(cookies) >= CRM_CREATIO_COOKIE_MAX)
    {
        return -1;
    }

    creds->csrf = csrf;
    creds->cookies = (char *) cookies;

    return 0;
}


/* an OData request with the session: path under the OData root */
static crm_status_e
crm_creatio_odata(crm_provider_op_t *op, const char *method,
    const char *path, crm_error_t *err)
{
    char                  url[1024];
    crm_status_e          rc;
    crm_creatio_creds_t  *creds;

    creds = op->creds;

    if ((size_t) snprintf(url, sizeof(url), "%s%s%s", creds->instance,
                          creds->odata, path)
        >= sizeof(url))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "URL too long");
    }

    rc = crm_provider_request(op, method, url, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (crm_http_request_header(&op->req, op->arena, "Accept",
                                "application/json") != 0
        || crm_http_request_header(&op->req, op->arena, "ForceUseSession",
                                   "true") != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_creatio_authorize(op, err);
}


static crm_status_e
crm_creatio_get_contact(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    return crm_creatio_contact(op, res, step, 0, err);
}


static crm_status_e
crm_creatio_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    return crm_creatio_contact(op, res, step, 1, err);
}


/*
 * Finds the Contact: by the Id known or the lead's own, else by Email;
 * then, to upsert, updates it or makes it
 */
static crm_status_e
crm_creatio_contact(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, int upsert, crm_error_t *err)
{
    char                 path[128], *email, *p, *q;
    const char          *e;
    crm_status_e         rc;

    if (crm_provider_session(op, &res, step, &rc, err)) {
        return rc;
    }

    *step = CRM_OP_MORE;

    if (res == NULL) {
        op->step = CRM_CREATIO_BY_ID;

        snprintf(path, sizeof(path), "/Contact(%.36s)?$select=Id",
                 op->contact_id != NULL && crm_creatio_guid(op->contact_id)
                 ? op->contact_id : op->contact->lead_id);

        return crm_creatio_odata(op, "GET", path, err);
    }

    switch (op->step) {

    case CRM_CREATIO_BY_ID:
        if (res->outcome != CRM_HTTP_ANSWERED || res->status != 404) {
            rc = crm_creatio_found(op, res, 0, err);
            break;
        }

        op->contact_id = NULL;

        if (op->contact->email == NULL) {
            rc = CRM_OK;
            break;
        }

        /* an OData literal doubles its quotes */
        email = crm_arena_alloc(op->arena, 2 * strlen(op->contact->email) + 1);
        if (email == NULL) {
            *step = CRM_OP_DONE;
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        for (p = email, e = op->contact->email; *e != '\0'; e++) {
            if (*e == '\'') {
                *p++ = '\'';
            }

            *p++ = *e;
        }

        *p = '\0';

        q = crm_arena_alloc(op->arena, strlen(email) + 32);
        if (q == NULL) {
            *step = CRM_OP_DONE;
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        sprintf(q, "Email eq '%s'", email);

        q = crm_provider_query_escape(op, q);
        p = q != NULL ? crm_arena_alloc(op->arena, strlen(q) + 48) : NULL;
        if (p == NULL) {
            *step = CRM_OP_DONE;
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        sprintf(p, "/Contact?$filter=%s&$select=Id&$top=1", q);

        op->step = CRM_CREATIO_BY_EMAIL;

        return crm_creatio_odata(op, "GET", p, err);

    case CRM_CREATIO_BY_EMAIL:
        rc = crm_creatio_found(op, res, 1, err);
        break;

    default:
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED
            || (res->status != 201 && res->status != 204))
        {
            return crm_creatio_failed(op, res, err);
        }

        if (op->contact_id == NULL) {
            op->contact_id = op->contact->lead_id;
        }

        return CRM_OK;
    }

    if (rc != CRM_OK || !upsert) {
        *step = CRM_OP_DONE;
        return rc;
    }

    op->step = CRM_CREATIO_WRITTEN;

    return crm_creatio_write_contact(op, err);
}


/*
 * PATCH Contact(<Id>) when found, else POST Contact with the lead's id:
 * Name, Email, MobilePhone, "" where the lead has none (Creatio's text
 * columns hold no null)
 */
static crm_status_e
crm_creatio_write_contact(crm_provider_op_t *op, crm_error_t *err)
{
    char                  path[64];
    yajl_gen              g;
    crm_status_e          rc;
    const crm_contact_t  *c;

    c = op->contact;

    if (op->contact_id != NULL) {
        snprintf(path, sizeof(path), "/Contact(%.36s)", op->contact_id);
        rc = crm_creatio_odata(op, "PATCH", path, err);

    } else {
        rc = crm_creatio_odata(op, "POST", "/Contact", err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || (op->contact_id == NULL
            && crm_json_gen_kv_str(g, "Id", c->lead_id) != 0)
        || crm_json_gen_kv_str(g, "Name",
                               crm_provider_clip(op, c->name,
                                                 CRM_CREATIO_TEXT_MAX)) != 0
        || crm_json_gen_kv_str(g, "Email",
                               c->email != NULL
                               ? crm_provider_clip(op, c->email,
                                                   CRM_CREATIO_TEXT_MAX)
                               : "") != 0
        || crm_json_gen_kv_str(g, "MobilePhone",
                               c->phone != NULL ? c->phone : "") != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, CRM_CREATIO_JSON, err);
}


static crm_status_e
crm_creatio_send_event(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_op_step_e *step, crm_error_t *err)
{
    char          path[64];
    crm_status_e  rc;

    if (crm_provider_session(op, &res, step, &rc, err)) {
        return rc;
    }

    *step = CRM_OP_MORE;

    if (res == NULL) {
        if (op->contact_id == NULL || !crm_creatio_guid(op->contact_id)) {
            *step = CRM_OP_DONE;
            return crm_error_set(err, CRM_E_INTERNAL, NULL,
                                 "an event without its Contact");
        }

        if (!op->event->resent) {
            op->step = CRM_CREATIO_EVENT_MADE;
            return crm_creatio_activity(op, err);
        }

        op->step = CRM_CREATIO_EVENT_ASKED;
        snprintf(path, sizeof(path), "/Activity(%.36s)?$select=Id",
                 op->event->id);

        return crm_creatio_odata(op, "GET", path, err);
    }

    if (op->step == CRM_CREATIO_EVENT_ASKED
        && res->outcome == CRM_HTTP_ANSWERED && res->status == 404)
    {
        op->step = CRM_CREATIO_EVENT_MADE;
        return crm_creatio_activity(op, err);
    }

    *step = CRM_OP_DONE;

    if (res->outcome != CRM_HTTP_ANSWERED
        || res->status != (op->step == CRM_CREATIO_EVENT_ASKED ? 200 : 201))
    {
        return crm_creatio_failed(op, res, err);
    }

    return CRM_OK;
}


/* POST Activity: Title, StartDate, DueDate, ContactId, Notes */
static crm_status_e
crm_creatio_activity(crm_provider_op_t *op, crm_error_t *err)
{
    char                  notes[512];
    yajl_gen              g;
    crm_status_e          rc;
    const crm_event_t    *e;

    e = op->event;

    rc = crm_creatio_odata(op, "POST", "/Activity", err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_provider_event_text(op, notes, sizeof(notes));

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "Id", e->id) != 0
        || crm_json_gen_kv_str(g, "Title", e->name) != 0
        || crm_json_gen_kv_str(g, "StartDate", e->time) != 0
        || crm_json_gen_kv_str(g, "DueDate", e->time) != 0
        || crm_json_gen_kv_str(g, "ContactId", op->contact_id) != 0
        || crm_json_gen_kv_str(g, "Notes", notes) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, CRM_CREATIO_JSON, err);
}


/* a Contact's Id: the object's own, or the first of "value" (list) */
static crm_status_e
crm_creatio_found(crm_provider_op_t *op, const crm_http_response_t *res,
    int list, crm_error_t *err)
{
    yajl_val     root, value, first;
    const char  *id;

    static const char  *value_path[] = { "value", NULL };
    static const char  *id_path[] = { "Id", NULL };

    op->contact_id = NULL;

    if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
        return crm_creatio_failed(op, res, err);
    }

    root = crm_provider_json(res);
    if (root == NULL) {
        return crm_provider_failed(op, res, err);
    }

    first = root;

    if (list) {
        value = yajl_tree_get(root, value_path, yajl_t_array);
        first = value != NULL && value->u.array.len > 0
                ? value->u.array.values[0] : NULL;

        if (value == NULL) {
            yajl_tree_free(root);
            return crm_provider_failed(op, res, err);
        }
    }

    id = first != NULL ? crm_provider_string(first, id_path) : NULL;

    if (first != NULL && (id == NULL || !crm_creatio_guid(id))) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Creatio gave an answer that cannot be read "
                             "(a Contact without an Id)");
    }

    if (id != NULL) {
        op->contact_id = crm_arena_strdup(op->arena, crm_str_c(id));
    }

    yajl_tree_free(root);

    if (id != NULL && op->contact_id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


/* 8-4-4-4-12 hex digits: an Id that may go into a path */
static int
crm_creatio_guid(const char *s)
{
    size_t  i;

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (!((s[i] >= '0' && s[i] <= '9')
                     || (s[i] >= 'a' && s[i] <= 'f')
                     || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return s[36] == '\0';
}


/* what an OData error said: {"error": {"code", "message"}} */
static crm_status_e
crm_creatio_failed(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    char         said[240];
    yajl_val     root;
    const char  *message;

    static const char  *message_path[] = { "error", "message", NULL };

    said[0] = '\0';
    root = NULL;

    if (res->outcome == CRM_HTTP_ANSWERED && res->status >= 400
        && res->status < 500)
    {
        root = crm_provider_json(res);
        message = root != NULL ? crm_provider_string(root, message_path)
                               : NULL;

        if (message != NULL) {
            snprintf(said, sizeof(said), "%.200s", message);
        }
    }

    yajl_tree_free(root);

    return crm_provider_write_failed(op, res, said[0] ? said : NULL, err);
}
