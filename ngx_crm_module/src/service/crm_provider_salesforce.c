/*
 * Salesforce: a user name, password and security token through the
 * partner SOAP API's login() (the only password flow Salesforce offers;
 * it is retired with API 65.0, so this client pins 59.0), then the REST
 * API at the instance login() names, with the session as a bearer token.
 *
 *   validate   POST <login_url>/services/Soap/u/59.0  login()
 *              GET  <instance>/services/data/v59.0/   the session works
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
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "crm_json.h"
#include "crm_provider.h"
#include "crm_url.h"


#define CRM_SALESFORCE_API       "59.0"
#define CRM_SALESFORCE_LOGIN     "https://login.salesforce.com"
#define CRM_SALESFORCE_PARTNER   "urn:partner.soap.sforce.com"
#define CRM_SALESFORCE_USER_MAX  80
#define CRM_SALESFORCE_PASS_MAX  128
#define CRM_SALESFORCE_TOKEN_MAX 64


typedef struct {
    crm_json_value_t  username;
    crm_json_value_t  password;
    crm_json_value_t  security_token;
} crm_salesforce_body_t;


typedef struct {
    crm_json_value_t  login_url;
    crm_json_value_t  external_id_field;
} crm_salesforce_settings_t;


typedef struct {
    const char  *username;
    const char  *password;          /* with the security token appended */
    const char  *login_url;         /* no trailing slash */
    const char  *external_id_field; /* NULL: find leads by email */
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
static xmlNodePtr crm_salesforce_find(xmlNodePtr node, const char *name);


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
    .parse = crm_salesforce_parse,
    .validate = crm_salesforce_validate
};


static crm_status_e
crm_salesforce_parse(crm_provider_op_t *op, yajl_val credentials,
    yajl_val settings, crm_error_t *err)
{
    size_t                      i, n;
    char                       *password;
    crm_str_t                   url, ext;
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
        ext = set.external_id_field.str;

        /* a custom field's API name: it goes into REST paths */
        for (i = 0; i < ext.len; i++) {
            if (!((ext.data[i] >= 'a' && ext.data[i] <= 'z')
                  || (ext.data[i] >= 'A' && ext.data[i] <= 'Z')
                  || (ext.data[i] >= '0' && ext.data[i] <= '9' && i > 0)
                  || (ext.data[i] == '_' && i > 0)))
            {
                break;
            }
        }

        if (i < ext.len || ext.len < 4
            || memcmp(ext.data + ext.len - 3, "__c", 3) != 0)
        {
            return crm_error_set(err, CRM_E_INVALID,
                                 "settings.external_id_field",
                                 "must be a custom field's API name, "
                                 "such as Shop_Domain__c");
        }

        creds->external_id_field = crm_arena_strdup(op->arena, ext);
    }

    if (creds->username == NULL || creds->login_url == NULL
        || (set.external_id_field.present && creds->external_id_field == NULL))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    op->creds = creds;

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
 * login: Salesforce's login hosts and My Domains, as API.md names them;
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
    char                     url[512];
    char                     auth[sizeof("Bearer ") + 256];
    crm_status_e             rc;
    crm_salesforce_creds_t  *creds;

    creds = op->creds;
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

        snprintf(url, sizeof(url), "%s/services/data/v" CRM_SALESFORCE_API
                 "/", creds->instance);
        snprintf(auth, sizeof(auth), "Bearer %s", creds->session);

        rc = crm_provider_request(op, "GET", url, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (crm_http_request_header(&op->req, op->arena, "Authorization",
                                    auth) != 0
            || crm_http_request_header(&op->req, op->arena, "Accept",
                                       "application/json") != 0)
        {
            return crm_error_set(err, CRM_E_INTERNAL, NULL,
                                 "out of memory");
        }

        return CRM_OK;

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
    fault = crm_salesforce_find(xmlDocGetRootElement(doc), "Fault");

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

    result = crm_salesforce_find(xmlDocGetRootElement(doc), "result");
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
crm_salesforce_find(xmlNodePtr node, const char *name)
{
    xmlNodePtr  n, found;

    for (n = node; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (xmlStrcmp(n->name, (const xmlChar *) name) == 0) {
            return n;
        }

        found = crm_salesforce_find(n->children, name);
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

    n = crm_salesforce_find(parent->children, name);
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
