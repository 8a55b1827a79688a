/*
 * Salesforce: a user name, password and security token through the
 * partner SOAP API's login() (the only password flow Salesforce offers;
 * it is retired with API 65.0, so this client pins 59.0), then the REST
 * API at the instance login() names, with the session as a bearer token.
 *
 *   validate   POST <login_url>/services/Soap/u/59.0  login()
 *              GET  <instance>/services/data/v59.0/   the session works
 *
 * and then, at <instance>/services/data/v59.0:
 *
 *   get_contact     GET   /sobjects/Lead/<external_id_field>/<lead id>,
 *                   or    /query?q=SELECT Id FROM Lead WHERE Email = ...
 *   upsert_contact  PATCH /sobjects/Lead/<external_id_field>/<lead id>,
 *                   or    PATCH /sobjects/Lead/<Id> of the lead found,
 *                   or    POST /sobjects/Lead
 *   send_event      POST  /sobjects/Task (or PATCH /sobjects/Task/
 *                         <task_external_id_field>/<event id>): a
 *                         completed Task on the Lead
 *
 * With external_id_field, the lead's own id keys its Salesforce Lead, so
 * a retry or a changed email never makes a second one; without it, the
 * Lead is found by email.  Likewise task_external_id_field makes a resent
 * event the same Task; without it an event whose answer was lost may be
 * recorded twice.  A Lead needs LastName and Company: a lead without a
 * company gives its shop domain, or "[not provided]", as Salesforce's own
 * Web-to-Lead does.
 *
 * The answer to login() is XML, read with libxml2 with the network and
 * entity expansion off; a SOAP fault names why (INVALID_LOGIN and the
 * other login faults are refused credentials; anything else is the
 * provider failing).  Hosts: login_url is Salesforce's production or
 * sandbox login host or a My Domain, and the instance login() returns
 * must be a Salesforce host too; an address of the operator's allow list
 * (a local stand-in) is let through for either.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "crm_json.h"
#include "crm_provider.h"
#include "crm_url.h"
#include "crm_validate.h"


#define CRM_SALESFORCE_API       "59.0"
#define CRM_SALESFORCE_LOGIN     "https://login.salesforce.com"
#define CRM_SALESFORCE_PARTNER   "urn:partner.soap.sforce.com"
#define CRM_SALESFORCE_USER_MAX  80
#define CRM_SALESFORCE_PASS_MAX  128
#define CRM_SALESFORCE_TOKEN_MAX 64
#define CRM_SALESFORCE_REST      "/services/data/v" CRM_SALESFORCE_API


/* where a write operation stands (op->step) */
enum {
    CRM_SF_START = 0,
    CRM_SF_FOUND,           /* the answer to a find */
    CRM_SF_PATCHED_KNOWN,   /* ... to an update of the Lead named to us */
    CRM_SF_PATCHED,         /* ... to an update of the Lead found */
    CRM_SF_WRITTEN          /* ... to a create or upsert: an id */
};


typedef struct {
    crm_json_value_t  username;
    crm_json_value_t  password;
    crm_json_value_t  security_token;
} crm_salesforce_body_t;


typedef struct {
    crm_json_value_t  login_url;
    crm_json_value_t  external_id_field;
    crm_json_value_t  task_external_id_field;
} crm_salesforce_settings_t;


typedef struct {
    const char  *username;
    const char  *password;          /* with the security token appended */
    const char  *login_url;         /* no trailing slash */
    const char  *external_id_field; /* NULL: find leads by email */
    const char  *task_external_id_field;    /* NULL: tasks are created */
    const char  *session;           /* from login(), never stored */
    const char  *instance;          /* https://<instance host> */
} crm_salesforce_creds_t;


static crm_status_e crm_salesforce_parse(crm_provider_op_t *op,
    yajl_val credentials, yajl_val settings, crm_error_t *err);
static crm_status_e crm_salesforce_validate(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_salesforce_login(crm_provider_op_t *op,
    crm_error_t *err);
static crm_status_e crm_salesforce_logged_in(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static int crm_salesforce_has_session(crm_provider_op_t *op);
static crm_status_e crm_salesforce_authorize(crm_provider_op_t *op,
    crm_error_t *err);
static char *crm_salesforce_session_save(crm_provider_op_t *op);
static int crm_salesforce_session_load(crm_provider_op_t *op,
    const char *saved);
static crm_status_e crm_salesforce_rest(crm_provider_op_t *op,
    const char *method, const char *path, crm_error_t *err);
static crm_status_e crm_salesforce_get_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_salesforce_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_salesforce_send_event(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_salesforce_find(crm_provider_op_t *op,
    crm_op_step_e *step, crm_error_t *err);
static crm_status_e crm_salesforce_find_or_create(crm_provider_op_t *op,
    crm_error_t *err);
static crm_status_e crm_salesforce_found(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static crm_status_e crm_salesforce_lead(crm_provider_op_t *op,
    const char *method, const char *path, crm_error_t *err);
static crm_status_e crm_salesforce_record_id(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static crm_status_e crm_salesforce_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);
static crm_status_e crm_salesforce_field_name(crm_str_t name,
    const char *field, crm_error_t *err);
static crm_status_e crm_salesforce_host_check(crm_provider_op_t *op,
    crm_str_t url, int login, const char *field, crm_error_t *err);
static int crm_salesforce_host_ok(crm_str_t host, int login);
static int crm_salesforce_token_text(const char *s);
static int crm_salesforce_allowed_literal(crm_provider_op_t *op,
    const char *host);
static char *crm_salesforce_escape(crm_provider_op_t *op, const char *s);
static xmlNodePtr crm_salesforce_child(xmlNodePtr parent, const char *name);
static const char *crm_salesforce_text(crm_provider_op_t *op,
    xmlNodePtr parent, const char *name);
static xmlNodePtr crm_salesforce_xml_find(xmlNodePtr node,
    const char *name);


static const crm_json_field_t  crm_salesforce_fields[] = {
    { .name = "username", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_SALESFORCE_USER_MAX,
      .offset = offsetof(crm_salesforce_body_t, username) },
    { .name = "password", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_SALESFORCE_PASS_MAX,
      .offset = offsetof(crm_salesforce_body_t, password) },
    { .name = "security_token", .kind = CRM_JSON_STRING,
      .max_len = CRM_SALESFORCE_TOKEN_MAX,
      .offset = offsetof(crm_salesforce_body_t, security_token) },
};

static const crm_json_field_t  crm_salesforce_setting_fields[] = {
    { .name = "login_url", .kind = CRM_JSON_STRING,
      .min_len = 1, .max_len = 256,
      .offset = offsetof(crm_salesforce_settings_t, login_url) },
    { .name = "external_id_field", .kind = CRM_JSON_STRING,
      .min_len = 4, .max_len = 43,
      .offset = offsetof(crm_salesforce_settings_t, external_id_field) },
    { .name = "task_external_id_field", .kind = CRM_JSON_STRING,
      .min_len = 4, .max_len = 43,
      .offset = offsetof(crm_salesforce_settings_t,
                         task_external_id_field) },
};

/* login() faults that mean the credentials, not Salesforce, are wrong */
static const char *const  crm_salesforce_refusals[] = {
    "INVALID_LOGIN", "LOGIN_MUST_USE_SECURITY_TOKEN", "PASSWORD_LOCKOUT",
    "INVALID_CROSS_REFERENCE_KEY", "LOGIN_DURING_RESTRICTED_DOMAIN",
    "LOGIN_DURING_RESTRICTED_TIME", "INACTIVE_OWNER_OR_USER",
    "API_DISABLED_FOR_ORG", "INSUFFICIENT_ACCESS", NULL
};


const crm_provider_t  crm_provider_salesforce = {
    .type = "salesforce",
    .name = "Salesforce",
    /* a daily allocation, and 25 long requests at once */
    .rate = 5,
    .parse = crm_salesforce_parse,
    .validate = crm_salesforce_validate,
    .get_contact = crm_salesforce_get_contact,
    .upsert_contact = crm_salesforce_upsert_contact,
    .send_event = crm_salesforce_send_event,
    .has_session = crm_salesforce_has_session,
    .login = crm_salesforce_login,
    .logged_in = crm_salesforce_logged_in,
    .authorize = crm_salesforce_authorize,
    .session_save = crm_salesforce_session_save,
    .session_load = crm_salesforce_session_load
};


static crm_status_e
crm_salesforce_parse(crm_provider_op_t *op, yajl_val credentials,
    yajl_val settings, crm_error_t *err)
{
    size_t                      n;
    char                       *password;
    crm_str_t                   url;
    crm_status_e                rc;
    crm_salesforce_body_t       body;
    crm_salesforce_creds_t     *creds;
    crm_salesforce_settings_t   set;

    memset(&body, 0, sizeof(body));
    memset(&set, 0, sizeof(set));

    rc = crm_json_decode_table(credentials, crm_salesforce_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_provider_settings_table(settings, crm_salesforce_setting_fields,
                                     &set, err);
    if (rc != CRM_OK) {
        return rc;
    }

    creds = crm_arena_alloc(op->arena, sizeof(crm_salesforce_creds_t));
    n = body.password.str.len + body.security_token.str.len;
    password = crm_arena_alloc(op->arena, n + 1);

    if (creds == NULL || password == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    memcpy(password, body.password.str.data, body.password.str.len);
    memcpy(password + body.password.str.len, body.security_token.str.data,
           body.security_token.str.len);

    creds->password = password;
    creds->username = crm_arena_strdup(op->arena, body.username.str);

    url = set.login_url.present ? set.login_url.str
                                : crm_str_lit(CRM_SALESFORCE_LOGIN);

    while (url.len > 0 && url.data[url.len - 1] == '/') {
        url.len--;
    }

    rc = crm_salesforce_host_check(op, url, 1, "settings.login_url", err);
    if (rc != CRM_OK) {
        return rc;
    }

    creds->login_url = crm_arena_strdup(op->arena, url);

    if (set.external_id_field.present) {
        rc = crm_salesforce_field_name(set.external_id_field.str,
                                       "settings.external_id_field", err);
        if (rc != CRM_OK) {
            return rc;
        }

        creds->external_id_field = crm_arena_strdup(op->arena,
                                                    set.external_id_field.str);
    }

    if (set.task_external_id_field.present) {
        rc = crm_salesforce_field_name(set.task_external_id_field.str,
                                       "settings.task_external_id_field",
                                       err);
        if (rc != CRM_OK) {
            return rc;
        }

        creds->task_external_id_field =
            crm_arena_strdup(op->arena, set.task_external_id_field.str);
    }

    if (creds->username == NULL || creds->login_url == NULL
        || (set.external_id_field.present && creds->external_id_field == NULL)
        || (set.task_external_id_field.present
            && creds->task_external_id_field == NULL))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    op->creds = creds;

    return CRM_OK;
}


/* a custom field's API name ("Gateway_Lead_Id__c"): it goes into paths */
static crm_status_e
crm_salesforce_field_name(crm_str_t name, const char *field,
    crm_error_t *err)
{
    size_t  i;

    for (i = 0; i < name.len; i++) {
        if (!((name.data[i] >= 'a' && name.data[i] <= 'z')
              || (name.data[i] >= 'A' && name.data[i] <= 'Z')
              || (name.data[i] >= '0' && name.data[i] <= '9' && i > 0)
              || (name.data[i] == '_' && i > 0)))
        {
            break;
        }
    }

    if (i < name.len || name.len < 4
        || memcmp(name.data + name.len - 3, "__c", 3) != 0)
    {
        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be a custom field's API name, such as "
                             "Gateway_Lead_Id__c");
    }

    return CRM_OK;
}


/*
 * https and a Salesforce host (for login: the login hosts and My Domains
 * only); or, for a local stand-in, an address literal of the allow list
 * (plain http included)
 */
static crm_status_e
crm_salesforce_host_check(crm_provider_op_t *op, crm_str_t url, int login,
    const char *field, crm_error_t *err)
{
    char  host[CRM_URL_HOST_MAX];

    if (crm_url_check_target(url) != NULL
        || memchr(url.data, '?', url.len) != NULL
        || memchr(url.data, '#', url.len) != NULL)
    {
        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be an absolute https URL");
    }

    (void) crm_url_host(url, host);

    if (crm_salesforce_allowed_literal(op, host)) {
        return CRM_OK;
    }

    if (url.len < 8 || strncasecmp(url.data, "https://", 8) != 0
        || !crm_salesforce_host_ok((crm_str_t) { host, strlen(host) }, login))
    {
        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be https://login.salesforce.com, "
                             "https://test.salesforce.com or a My Domain "
                             "(https://<name>.my.salesforce.com)");
    }

    return CRM_OK;
}


/* an address literal ("127.0.0.1", "[::1]") in the operator's allow list */
static int
crm_salesforce_allowed_literal(crm_provider_op_t *op, const char *host)
{
    struct sockaddr_storage  ss;

    return op->conf->allow != NULL && crm_addr_parse(host, &ss)
           && crm_cidr_list_match(op->conf->allow, (struct sockaddr *) &ss);
}


/*
 * login: Salesforce's login hosts and My Domains, as the contract names them;
 * otherwise (the instance login() returns) any Salesforce host.  Sites
 * under force.com serve their customers' content, so never a login.
 */
static int
crm_salesforce_host_ok(crm_str_t host, int login)
{
    static const char *const  suffixes[] = {
        ".my.salesforce.com", ".salesforce.com", ".force.com", NULL
    };
    size_t  i, n;

    if (crm_str_eq(host, "login.salesforce.com")
        || crm_str_eq(host, "test.salesforce.com"))
    {
        return 1;
    }

    for (i = 0; suffixes[i] != NULL && (i == 0 || !login); i++) {
        n = strlen(suffixes[i]);

        if (host.len > n
            && memcmp(host.data + host.len - n, suffixes[i], n) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static crm_status_e
crm_salesforce_validate(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    crm_status_e  rc;

    *step = CRM_OP_MORE;

    switch (op->step++) {

    case 0:
        return crm_salesforce_login(op, err);

    case 1:
        rc = crm_salesforce_logged_in(op, res, err);
        if (rc != CRM_OK) {
            *step = CRM_OP_DONE;
            return rc;
        }

        return crm_salesforce_rest(op, "GET", "/", err);

    default:
        *step = CRM_OP_DONE;

        if (res->outcome == CRM_HTTP_ANSWERED && res->status == 401) {
            return crm_error_set(err, CRM_E_INVALID, "credentials",
                                 "Salesforce refused the session its "
                                 "login gave");
        }

        if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
            return crm_provider_failed(op, res, err);
        }

        return CRM_OK;
    }
}


static crm_status_e
crm_salesforce_login(crm_provider_op_t *op, crm_error_t *err)
{
    char                    *body, *user, *pass;
    size_t                   n;
    crm_status_e             rc;
    crm_salesforce_creds_t  *creds;

    static const char  fmt[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        "<env:Envelope xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
        " xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\""
        " xmlns:urn=\"" CRM_SALESFORCE_PARTNER "\">"
        "<env:Header><urn:CallOptions><urn:client>crm-gateway</urn:client>"
        "</urn:CallOptions></env:Header>"
        "<env:Body><n1:login xmlns:n1=\"" CRM_SALESFORCE_PARTNER "\">"
        "<n1:username>%s</n1:username><n1:password>%s</n1:password>"
        "</n1:login></env:Body></env:Envelope>";

    creds = op->creds;

    user = crm_salesforce_escape(op, creds->username);
    pass = crm_salesforce_escape(op, creds->password);
    if (user == NULL || pass == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    n = sizeof(fmt) + strlen(user) + strlen(pass);
    body = crm_arena_alloc(op->arena, n);
    if (body == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    snprintf(body, n, fmt, user, pass);

    {
        char  url[512];

        snprintf(url, sizeof(url), "%s/services/Soap/u/" CRM_SALESFORCE_API,
                 creds->login_url);

        rc = crm_provider_request(op, "POST", url, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    op->req.body = body;
    op->req.body_len = strlen(body);

    if (crm_http_request_header(&op->req, op->arena, "Content-Type",
                                "text/xml; charset=UTF-8") != 0
        || crm_http_request_header(&op->req, op->arena, "SOAPAction",
                                   "login") != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


/*
 * a session id goes into a header: 1 to 256 visible ASCII characters, as
 * Salesforce's are, or the answer is not one we read
 */
static int
crm_salesforce_token_text(const char *s)
{
    size_t  n;

    for (n = 0; s[n] != '\0'; n++) {
        if (s[n] <= ' ' || s[n] > '~' || n == 256) {
            return 0;
        }
    }

    return n > 0;
}


/* the five characters XML escapes in text; NULL on ENOMEM */
static char *
crm_salesforce_escape(crm_provider_op_t *op, const char *s)
{
    char        *out, *p;
    const char  *r;

    out = crm_arena_alloc(op->arena, strlen(s) * 6 + 1);
    if (out == NULL) {
        return NULL;
    }

    for (p = out; *s != '\0'; s++) {
        switch (*s) {
        case '&':  r = "&amp;"; break;
        case '<':  r = "&lt;"; break;
        case '>':  r = "&gt;"; break;
        case '"':  r = "&quot;"; break;
        case '\'': r = "&apos;"; break;
        default:   *p++ = *s; continue;
        }

        p = stpcpy(p, r);
    }

    *p = '\0';

    return out;
}


static crm_status_e
crm_salesforce_logged_in(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err)
{
    size_t                   i;
    xmlDocPtr                doc;
    xmlNodePtr               result, info, fault;
    const char              *server, *session, *code, *user_id, *org_id;
    const char              *user_name;
    crm_status_e             rc;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;

    if (res->outcome != CRM_HTTP_ANSWERED
        || (res->status != 200 && res->status != 500) || res->body == NULL)
    {
        return crm_provider_failed(op, res, err);
    }

    /* no network, no DTD, no entity expansion: the body is untrusted */
    doc = xmlReadMemory(res->body, (int) res->len, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR
                        | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        return crm_provider_failed(op, res, err);
    }

    rc = CRM_OK;
    fault = crm_salesforce_xml_find(xmlDocGetRootElement(doc), "Fault");

    if (fault != NULL) {
        code = crm_salesforce_text(op, fault, "exceptionCode");
        if (code == NULL) {
            code = crm_salesforce_text(op, fault, "faultcode");
        }

        if (code != NULL && strncmp(code, "sf:", 3) == 0) {
            code += 3;
        }

        for (i = 0; code != NULL && crm_salesforce_refusals[i] != NULL; i++) {
            if (strcmp(code, crm_salesforce_refusals[i]) == 0) {
                rc = crm_error_set(err, CRM_E_INVALID, "credentials",
                                   "Salesforce refused the login (%s)",
                                   code);
                goto done;
            }
        }

        rc = crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                           "Salesforce failed the login (%.64s)",
                           code != NULL ? code : "unknown fault");
        goto done;
    }

    result = crm_salesforce_xml_find(xmlDocGetRootElement(doc), "result");
    info = result != NULL ? crm_salesforce_child(result, "userInfo") : NULL;

    server = result != NULL ? crm_salesforce_text(op, result, "serverUrl")
                            : NULL;
    session = result != NULL ? crm_salesforce_text(op, result, "sessionId")
                             : NULL;
    user_id = result != NULL ? crm_salesforce_text(op, result, "userId")
                             : NULL;
    org_id = info != NULL ? crm_salesforce_text(op, info, "organizationId")
                          : NULL;
    user_name = info != NULL ? crm_salesforce_text(op, info, "userName")
                             : NULL;

    if (res->status != 200 || server == NULL || session == NULL
        || user_id == NULL || !crm_salesforce_token_text(session))
    {
        rc = crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                           "Salesforce gave an answer that cannot be read "
                           "(HTTP %u)", res->status);
        goto done;
    }

    /* the instance: scheme and host of serverUrl, which must be theirs */
    {
        char   *instance;
        size_t  n;

        instance = crm_arena_strdup(op->arena, crm_str_c(server));
        if (instance == NULL) {
            rc = crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
            goto done;
        }

        n = strlen(instance);
        if (n > 8) {
            char  *slash = strchr(instance + 8, '/');

            if (slash != NULL) {
                *slash = '\0';
            }
        }

        rc = crm_salesforce_host_check(op, crm_str_c(instance), 0,
                                       "credentials", err);
        if (rc != CRM_OK) {
            rc = crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                               "Salesforce's login named an instance "
                               "that is not a Salesforce host");
            goto done;
        }

        creds->instance = instance;
    }

    creds->session = session;

    if (crm_provider_account(op, "user_id", user_id, err) != CRM_OK
        || crm_provider_account(op, "org_id", org_id, err) != CRM_OK
        || crm_provider_account(op, "user_name", user_name, err) != CRM_OK
        || crm_provider_account(op, "instance_url", creds->instance, err)
           != CRM_OK)
    {
        rc = err->code;
    }

done:

    xmlFreeDoc(doc);

    return rc;
}


/* the first element named name (any namespace) at or below node */
static xmlNodePtr
crm_salesforce_xml_find(xmlNodePtr node, const char *name)
{
    xmlNodePtr  n, found;

    for (n = node; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (xmlStrcmp(n->name, (const xmlChar *) name) == 0) {
            return n;
        }

        found = crm_salesforce_xml_find(n->children, name);
        if (found != NULL) {
            return found;
        }
    }

    return NULL;
}


static xmlNodePtr
crm_salesforce_child(xmlNodePtr parent, const char *name)
{
    xmlNodePtr  n;

    for (n = parent->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE
            && xmlStrcmp(n->name, (const xmlChar *) name) == 0)
        {
            return n;
        }
    }

    return NULL;
}


/* the text of a child element, copied into the arena; NULL if none */
static const char *
crm_salesforce_text(crm_provider_op_t *op, xmlNodePtr parent,
    const char *name)
{
    char        *copy;
    xmlChar     *text;
    xmlNodePtr   n;

    n = crm_salesforce_xml_find(parent->children, name);
    if (n == NULL) {
        return NULL;
    }

    text = xmlNodeGetContent(n);
    if (text == NULL) {
        return NULL;
    }

    copy = crm_arena_strdup(op->arena, crm_str_c((const char *) text));
    xmlFree(text);

    return copy;
}


static int
crm_salesforce_has_session(crm_provider_op_t *op)
{
    crm_salesforce_creds_t  *creds = op->creds;

    return creds->session != NULL;
}


static crm_status_e
crm_salesforce_authorize(crm_provider_op_t *op, crm_error_t *err)
{
    char                     auth[sizeof("Bearer ") + 256];
    crm_salesforce_creds_t  *creds;

    creds = op->creds;

    snprintf(auth, sizeof(auth), "Bearer %s", creds->session);

    if (crm_http_request_set_header(&op->req, op->arena, "Authorization",
                                    auth) != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


/* "<instance>\n<session id>" */
static char *
crm_salesforce_session_save(crm_provider_op_t *op)
{
    crm_salesforce_creds_t  *creds = op->creds;

    return crm_provider_session_pack(creds->instance, creds->session);
}


static int
crm_salesforce_session_load(crm_provider_op_t *op, const char *saved)
{
    const char              *instance, *session;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;

    if (crm_provider_session_unpack(op, saved, &instance, &session) != 0
        || !crm_salesforce_token_text(session))
    {
        return -1;
    }

    creds->instance = instance;
    creds->session = session;

    return 0;
}


/* a REST request at the instance: path under /services/data/v59.0 */
static crm_status_e
crm_salesforce_rest(crm_provider_op_t *op, const char *method,
    const char *path, crm_error_t *err)
{
    char                     url[1024];
    crm_status_e             rc;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;

    if ((size_t) snprintf(url, sizeof(url), "%s" CRM_SALESFORCE_REST "%s",
                          creds->instance, path)
        >= sizeof(url))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "URL too long");
    }

    rc = crm_provider_request(op, method, url, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (crm_http_request_header(&op->req, op->arena, "Accept",
                                "application/json") != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_salesforce_authorize(op, err);
}


static crm_status_e
crm_salesforce_get_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    crm_status_e  rc;

    if (crm_provider_session(op, &res, step, &rc, err)) {
        return rc;
    }

    if (res == NULL) {
        op->contact_id = NULL;
        return crm_salesforce_find(op, step, err);
    }

    *step = CRM_OP_DONE;

    return crm_salesforce_found(op, res, err);
}


static crm_status_e
crm_salesforce_upsert_contact(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    char                     path[256];
    crm_status_e             rc;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;

    if (crm_provider_session(op, &res, step, &rc, err)) {
        return rc;
    }

    *step = CRM_OP_MORE;

    if (res == NULL) {

        if (creds->external_id_field != NULL) {
            op->step = CRM_SF_WRITTEN;
            snprintf(path, sizeof(path), "/sobjects/Lead/%s/%.36s",
                     creds->external_id_field, op->contact->lead_id);
            return crm_salesforce_lead(op, "PATCH", path, err);
        }

        if (op->contact_id != NULL) {
            op->step = CRM_SF_PATCHED_KNOWN;
            snprintf(path, sizeof(path), "/sobjects/Lead/%.18s",
                     op->contact_id);
            return crm_salesforce_lead(op, "PATCH", path, err);
        }

        return crm_salesforce_find_or_create(op, err);
    }

    switch (op->step) {

    case CRM_SF_PATCHED_KNOWN:
        if (res->outcome == CRM_HTTP_ANSWERED && res->status == 404) {
            /* merged or deleted at Salesforce: find it, or make it anew */
            op->contact_id = NULL;
            return crm_salesforce_find_or_create(op, err);
        }

        /* fall through */

    case CRM_SF_PATCHED:
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED || res->status != 204) {
            return crm_salesforce_failed(op, res, err);
        }

        return CRM_OK;

    case CRM_SF_FOUND:
        rc = crm_salesforce_found(op, res, err);
        if (rc != CRM_OK) {
            *step = CRM_OP_DONE;
            return rc;
        }

        if (op->contact_id == NULL) {
            op->step = CRM_SF_WRITTEN;
            return crm_salesforce_lead(op, "POST", "/sobjects/Lead", err);
        }

        op->step = CRM_SF_PATCHED;
        snprintf(path, sizeof(path), "/sobjects/Lead/%.18s", op->contact_id);

        return crm_salesforce_lead(op, "PATCH", path, err);

    default:
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED
            || (res->status != 200 && res->status != 201))
        {
            return crm_salesforce_failed(op, res, err);
        }

        return crm_salesforce_record_id(op, res, err);
    }
}


/* by email when the lead has one, else a new Lead */
static crm_status_e
crm_salesforce_find_or_create(crm_provider_op_t *op, crm_error_t *err)
{
    crm_op_step_e  step;

    if (op->contact->email != NULL) {
        return crm_salesforce_find(op, &step, err);
    }

    op->step = CRM_SF_WRITTEN;

    return crm_salesforce_lead(op, "POST", "/sobjects/Lead", err);
}


/*
 * The Lead by its external id, or the first by email; *step CRM_OP_DONE
 * (and no request) when the lead has neither
 */
static crm_status_e
crm_salesforce_find(crm_provider_op_t *op, crm_op_step_e *step,
    crm_error_t *err)
{
    char                    *q, *literal, *p;
    const char              *e;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;
    op->step = CRM_SF_FOUND;
    *step = CRM_OP_MORE;

    if (creds->external_id_field != NULL) {
        char  path[256];

        snprintf(path, sizeof(path), "/sobjects/Lead/%s/%.36s?fields=Id",
                 creds->external_id_field, op->contact->lead_id);

        return crm_salesforce_rest(op, "GET", path, err);
    }

    if (op->contact->email == NULL) {
        *step = CRM_OP_DONE;
        return CRM_OK;
    }

    /* a SOQL literal: a backslash before ' and \ */
    literal = crm_arena_alloc(op->arena, 2 * strlen(op->contact->email) + 1);
    if (literal == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    for (p = literal, e = op->contact->email; *e != '\0'; e++) {
        if (*e == '\'' || *e == '\\') {
            *p++ = '\\';
        }

        *p++ = *e;
    }

    *p = '\0';

    q = crm_arena_alloc(op->arena, strlen(literal) + 64);
    if (q == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    sprintf(q, "SELECT Id FROM Lead WHERE Email = '%s' LIMIT 1", literal);

    q = crm_provider_query_escape(op, q);
    p = q != NULL ? crm_arena_alloc(op->arena, strlen(q) + 8) : NULL;
    if (p == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    sprintf(p, "/query?q=%s", q);

    return crm_salesforce_rest(op, "GET", p, err);
}


/* the answer to a find: op->contact_id, or NULL when there is none */
static crm_status_e
crm_salesforce_found(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    yajl_val                 root, records, first;
    const char              *id;
    crm_salesforce_creds_t  *creds;

    static const char  *records_path[] = { "records", NULL };
    static const char  *id_path[] = { "Id", NULL };

    creds = op->creds;
    op->contact_id = NULL;

    if (creds->external_id_field != NULL && res->outcome == CRM_HTTP_ANSWERED
        && res->status == 404)
    {
        return CRM_OK;
    }

    if (res->outcome != CRM_HTTP_ANSWERED || res->status != 200) {
        return crm_salesforce_failed(op, res, err);
    }

    root = crm_provider_json(res);
    if (root == NULL) {
        return crm_provider_failed(op, res, err);
    }

    if (creds->external_id_field != NULL) {
        first = root;

    } else {
        records = yajl_tree_get(root, records_path, yajl_t_array);
        first = records != NULL && records->u.array.len > 0
                ? records->u.array.values[0] : NULL;

        if (records == NULL) {
            yajl_tree_free(root);
            return crm_provider_failed(op, res, err);
        }
    }

    id = first != NULL ? crm_provider_string(first, id_path) : NULL;

    if (id != NULL) {
        op->contact_id = crm_arena_strdup(op->arena, crm_str_c(id));
    }

    yajl_tree_free(root);

    if (id != NULL && op->contact_id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (first != NULL && id == NULL) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Salesforce gave an answer that cannot be read "
                             "(a Lead without an Id)");
    }

    return CRM_OK;
}


/*
 * A Lead's fields from the lead, as a REST request's body: what the lead
 * lacks is null (which clears it), what Salesforce's columns cannot hold
 * is cut to their length (an email longer than Email's 80 is left out)
 */
static crm_status_e
crm_salesforce_lead(crm_provider_op_t *op, const char *method,
    const char *path, crm_error_t *err)
{
    char                  description[320];
    yajl_gen              g;
    const char           *first, *last, *company, *source;
    crm_status_e          rc;
    const crm_contact_t  *c;

    c = op->contact;

    rc = crm_salesforce_rest(op, method, path, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (crm_provider_split_name(op, c->name, &first, &last) != 0) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    company = c->company != NULL && c->company[0] != '\0' ? c->company
              : c->shop_domain != NULL ? c->shop_domain : "[not provided]";

    /* LeadSource's standard picklist values, which a restricted one keeps */
    source = strcmp(c->source, "affiliate") == 0 ? "Partner Referral"
             : strcmp(c->source, "webhook") == 0 ? "Web" : "Other";

    snprintf(description, sizeof(description),
             "crm-gateway lead %s: %s / %s, score %lld", c->lead_id,
             c->stage, c->substage, (long long) c->score);

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "FirstName",
                               crm_provider_clip(op, first, 40)) != 0
        || crm_json_gen_kv_str(g, "LastName", crm_provider_clip(op, last, 80))
           != 0
        || crm_json_gen_kv_str(g, "Company",
                               crm_provider_clip(op, company, 255)) != 0
        || crm_json_gen_kv_str(g, "Email",
                               c->email != NULL
                               && crm_utf8_length(crm_str_c(c->email)) <= 80
                               ? c->email : NULL) != 0
        || crm_json_gen_kv_str(g, "Phone", c->phone) != 0
        || crm_json_gen_kv_str(g, "Website", c->shop_domain) != 0
        || crm_json_gen_kv_str(g, "LeadSource", source) != 0
        || crm_json_gen_kv_str(g, "Description", description) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, "application/json", err);
}


/* {"id": "00Q...", "success": true, ...} of a create or an upsert */
static crm_status_e
crm_salesforce_record_id(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err)
{
    yajl_val     root;
    const char  *id;

    static const char  *id_path[] = { "id", NULL };

    root = crm_provider_json(res);
    id = root != NULL ? crm_provider_string(root, id_path) : NULL;

    if (id == NULL) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Salesforce gave an answer that cannot be read "
                             "(no record id, HTTP %u)", res->status);
    }

    op->contact_id = crm_arena_strdup(op->arena, crm_str_c(id));

    yajl_tree_free(root);

    if (op->contact_id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


/* a completed Task on the Lead, one per event */
static crm_status_e
crm_salesforce_send_event(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err)
{
    char                     path[256], date[11], description[512];
    yajl_gen                 g;
    crm_status_e             rc;
    const crm_event_t       *e;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;
    e = op->event;

    if (crm_provider_session(op, &res, step, &rc, err)) {
        return rc;
    }

    if (res != NULL) {
        *step = CRM_OP_DONE;

        if (res->outcome != CRM_HTTP_ANSWERED
            || (res->status != 200 && res->status != 201))
        {
            return crm_salesforce_failed(op, res, err);
        }

        return CRM_OK;
    }

    *step = CRM_OP_MORE;

    if (op->contact_id == NULL) {
        *step = CRM_OP_DONE;
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "an event without its Lead");
    }

    if (creds->task_external_id_field != NULL) {
        snprintf(path, sizeof(path), "/sobjects/Task/%s/%.36s",
                 creds->task_external_id_field, e->id);
        rc = crm_salesforce_rest(op, "PATCH", path, err);

    } else {
        rc = crm_salesforce_rest(op, "POST", "/sobjects/Task", err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    snprintf(date, sizeof(date), "%.10s", e->time);
    crm_provider_event_text(op, description, sizeof(description));

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "Subject", e->name) != 0
        || crm_json_gen_kv_str(g, "WhoId", op->contact_id) != 0
        || crm_json_gen_kv_str(g, "Status", "Completed") != 0
        || crm_json_gen_kv_str(g, "TaskSubtype", "Task") != 0
        || crm_json_gen_kv_str(g, "ActivityDate", date) != 0
        || crm_json_gen_kv_str(g, "Description", description) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_provider_json_body(op, g, "application/json", err);
}


/*
 * What a REST error said: [{"message", "errorCode"}].  A daily request
 * limit (403 REQUEST_LIMIT_EXCEEDED) passes, so it is retried; several
 * Leads with one external id (300) will not pass by themselves.
 */
static crm_status_e
crm_salesforce_failed(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    char          said[240];
    yajl_val      root, first;
    const char   *code, *message;

    static const char  *code_path[] = { "errorCode", NULL };
    static const char  *message_path[] = { "message", NULL };

    if (res->outcome == CRM_HTTP_ANSWERED && res->status == 300) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "Salesforce has several records with this "
                             "external id");
    }

    said[0] = '\0';
    code = NULL;
    root = NULL;

    if (res->outcome == CRM_HTTP_ANSWERED && res->status >= 400
        && res->status < 500 && res->body != NULL)
    {
        crm_json_limits_t  limits = { CRM_HTTP_BODY_MAX, 32 };

        if (crm_json_parse(res->body, res->len, &limits, &root, err)
            != CRM_OK)
        {
            root = NULL;
        }

        first = root != NULL && YAJL_IS_ARRAY(root)
                && root->u.array.len > 0 ? root->u.array.values[0] : NULL;
        code = first != NULL ? crm_provider_string(first, code_path) : NULL;
        message = first != NULL ? crm_provider_string(first, message_path)
                                : NULL;

        if (code != NULL || message != NULL) {
            snprintf(said, sizeof(said), "%.40s%s%.190s",
                     code != NULL ? code : "",
                     code != NULL && message != NULL ? ": " : "",
                     message != NULL ? message : "");
        }
    }

    if (code != NULL && strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "Salesforce's API request limit is used up");
    }

    yajl_tree_free(root);

    return crm_provider_write_failed(op, res, said[0] ? said : NULL, err);
}
