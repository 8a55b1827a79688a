/*
 * The CRM providers' step machines, driven without a network: credentials
 * and settings parsed, the requests each step builds, and what every kind
 * of answer (hand-made responses, as the outbound glue would record them)
 * turns into: an account, a refusal of the credentials, or the provider
 * failing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "crm_check.h"
#include "crm_provider.h"


#define CHECK_PROVIDER_KLAVIYO_URL  "https://a.klaviyo.com"

#define CHECK_PROVIDER_KLAVIYO_KEY  "{\"api_key\":\"pk_0123456789abcdef\"}"

#define CHECK_PROVIDER_KLAVIYO_OK                                            \
    "{\"data\":[{\"type\":\"account\",\"id\":\"AbC123\",\"attributes\":"      \
    "{\"contact_information\":{\"organization_name\":\"Mock Shop Inc\"},"     \
    "\"timezone\":\"America/New_York\",\"preferred_currency\":\"USD\"}}]}"

#define CHECK_PROVIDER_SF_CREDS                                              \
    "{\"username\":\"u@example.com\",\"password\":\"pw\","                    \
    "\"security_token\":\"TOK\"}"

#define CHECK_PROVIDER_SF_DECL                                               \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

#define CHECK_PROVIDER_SF_OPEN                                               \
    "<soapenv:Envelope"                                                       \
    " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""            \
    " xmlns=\"urn:partner.soap.sforce.com\""                                  \
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"               \
    "<soapenv:Body><loginResponse><result>"                                   \
    "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"

#define CHECK_PROVIDER_SF_CLOSE                                              \
    "<userId>0055e000001MockAA</userId>"                                      \
    "<userInfo><organizationId>00D5e000000MockEAA</organizationId>"           \
    "<userName>u@example.com</userName>"                                      \
    "<sessionSecondsValid>7200</sessionSecondsValid></userInfo>"              \
    "</result></loginResponse></soapenv:Body></soapenv:Envelope>"

#define CHECK_PROVIDER_SF_SERVER                                             \
    "https://na1.salesforce.com/services/Soap/u/59.0/00D5e000000Mock"

#define CHECK_PROVIDER_CREATIO_CREDS                                         \
    "{\"instance_url\":\"https://acme.creatio.com/\","                        \
    "\"username\":\"Supervisor\",\"password\":\"pw\"}"

#define CHECK_PROVIDER_CREATIO_OK                                            \
    "{\"Code\":0,\"Message\":\"\",\"Exception\":null,"                        \
    "\"PasswordChangeUrl\":null,\"RedirectUrl\":null}"

#define check_contains(s, part)                                              \
    do {                                                                      \
        const char  *s_ = (s);                                                \
        ck_assert_ptr_nonnull(s_);                                            \
        ck_assert_msg(strstr(s_, (part)) != NULL, "\"%s\" lacks \"%s\"",      \
                      s_, (part));                                            \
    } while (0)


/* one operation and all it needs, on the test's stack */
typedef struct {
    crm_arena_t          arena;
    crm_cidr_list_t      allow;
    crm_provider_conf_t  conf;
    crm_provider_op_t    op;
    crm_error_t          err;
    crm_op_step_e        step;
} check_op_t;


static yajl_val check_provider_json(const char *text);
static crm_status_e check_provider_parse(check_op_t *t, const char *type,
    const char *credentials, const char *settings, int allow);
static void check_provider_refused(const char *type, const char *credentials,
    const char *settings, int allow, const char *field);
static void check_provider_start(check_op_t *t, const char *type,
    const char *credentials, const char *settings, int allow);
static crm_status_e check_provider_answer(check_op_t *t,
    crm_http_outcome_e outcome, unsigned status, const char *body,
    const char *const *headers);
static const char *check_provider_header(const crm_provider_op_t *op,
    const char *name);
static void check_provider_account(const crm_provider_op_t *op,
    const char *name, const char *value);
static void check_provider_done(check_op_t *t);
static crm_status_e check_provider_klaviyo(check_op_t *t,
    crm_http_outcome_e outcome, unsigned status, const char *body,
    const char *const *headers);
static crm_status_e check_provider_sf_login(check_op_t *t,
    const char *doctype, const char *server, const char *session);
static crm_status_e check_provider_sf_fault(check_op_t *t, const char *code);
static void check_provider_sf_xxe(const char *path, const char *secret);
static void check_provider_creatio_login(check_op_t *t);
static Suite *check_provider_suite(void);


static const char *const  check_provider_cookies[] = {
    "Set-Cookie: BPMLOADER=ldr1; path=/; HttpOnly\r\n",
    "Set-Cookie: .ASPXAUTH=auth2; path=/; HttpOnly\r\n",
    "Content-Type: application/json; charset=utf-8\r\n",
    "Set-Cookie: BPMCSRF=abc; path=/\r\n",
    "Set-Cookie: UserName=83|117; path=/\r\n",
    NULL
};


static yajl_val
check_provider_json(const char *text)
{
    yajl_val           root;
    crm_error_t        err;
    crm_json_limits_t  limits = { 65536, 16 };

    if (text == NULL) {
        return NULL;
    }

    ck_assert_int_eq(crm_json_parse(text, strlen(text), &limits, &root,
                                    &err), CRM_OK);

    return root;
}


static crm_status_e
check_provider_parse(check_op_t *t, const char *type, const char *credentials,
    const char *settings, int allow)
{
    yajl_val      creds, set;
    crm_status_e  rc;

    memset(t, 0, sizeof(check_op_t));

    if (allow) {
        ck_assert_ptr_null(crm_cidr_list_add(&t->allow,
                                             crm_str_lit("127.0.0.0/8")));
        t->conf.allow = &t->allow;
    }

    t->conf.klaviyo_url = CHECK_PROVIDER_KLAVIYO_URL;

    t->op.provider = crm_provider_find(crm_str_c(type));
    ck_assert_ptr_nonnull(t->op.provider);
    t->op.conf = &t->conf;
    t->op.arena = &t->arena;

    creds = check_provider_json(credentials);
    set = check_provider_json(settings);

    rc = t->op.provider->parse(&t->op, creds, set, &t->err);

    yajl_tree_free(creds);
    yajl_tree_free(set);

    return rc;
}


static void
check_provider_refused(const char *type, const char *credentials,
    const char *settings, int allow, const char *field)
{
    check_op_t  t;

    ck_assert_msg(check_provider_parse(&t, type, credentials, settings, allow)
                  == CRM_E_INVALID, "%s %s accepted", credentials,
                  settings != NULL ? settings : "");
    ck_assert_int_eq(t.err.code, CRM_E_INVALID);
    ck_assert_msg(strcmp(t.err.field, field) == 0, "%s %s: field \"%s\"",
                  credentials, settings != NULL ? settings : "",
                  t.err.field);

    check_provider_done(&t);
}


/* parsed, and the first request asked for */
static void
check_provider_start(check_op_t *t, const char *type,
    const char *credentials, const char *settings, int allow)
{
    ck_assert_int_eq(check_provider_parse(t, type, credentials, settings,
                                          allow), CRM_OK);

    t->step = CRM_OP_DONE;
    ck_assert_int_eq(t->op.provider->validate(&t->op, NULL, &t->step,
                                              &t->err), CRM_OK);
    ck_assert_int_eq(t->step, CRM_OP_MORE);
}


/* hands a response to the operation: headers are lines, NULL-terminated */
static crm_status_e
check_provider_answer(check_op_t *t, crm_http_outcome_e outcome,
    unsigned status, const char *body, const char *const *headers)
{
    crm_status_e         rc;
    crm_http_response_t  res;

    memset(&res, 0, sizeof(res));
    memset(&t->err, 0, sizeof(crm_error_t));

    res.outcome = outcome;
    res.status = status;

    if (outcome != CRM_HTTP_ANSWERED) {
        snprintf(res.error, sizeof(res.error), "the test said so");
    }

    if (body != NULL) {
        res.body = strdup(body);
        ck_assert_ptr_nonnull(res.body);
        res.len = strlen(body);
    }

    for ( /* void */ ; headers != NULL && *headers != NULL; headers++) {
        ck_assert_int_eq(crm_http_response_header_line(&res, *headers,
                                                       strlen(*headers)), 0);
    }

    rc = t->op.provider->validate(&t->op, &res, &t->step, &t->err);

    crm_http_response_clear(&res);

    return rc;
}


static const char *
check_provider_header(const crm_provider_op_t *op, const char *name)
{
    const crm_http_header_t  *h;

    for (h = op->req.headers; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            return h->value;
        }
    }

    return NULL;
}


/* the account has the member, with the value (NULL: null) */
static void
check_provider_account(const crm_provider_op_t *op, const char *name,
    const char *value)
{
    const crm_provider_field_t  *f;

    for (f = op->account; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            break;
        }
    }

    ck_assert_msg(f != NULL, "no \"%s\" in the account", name);

    if (value == NULL) {
        ck_assert_ptr_null(f->value);

    } else {
        ck_assert_ptr_nonnull(f->value);
        ck_assert_str_eq(f->value, value);
    }
}


static void
check_provider_done(check_op_t *t)
{
    crm_arena_free(&t->arena);
}


/* a whole Klaviyo validation with one answer */
static crm_status_e
check_provider_klaviyo(check_op_t *t, crm_http_outcome_e outcome,
    unsigned status, const char *body, const char *const *headers)
{
    crm_status_e  rc;

    check_provider_start(t, "klaviyo", CHECK_PROVIDER_KLAVIYO_KEY, NULL, 0);

    rc = check_provider_answer(t, outcome, status, body, headers);
    ck_assert_int_eq(t->step, CRM_OP_DONE);

    return rc;
}


START_TEST(test_provider_find)
{
    ck_assert_str_eq(crm_provider_find(crm_str_lit("klaviyo"))->name,
                     "Klaviyo");
    ck_assert_str_eq(crm_provider_find(crm_str_lit("salesforce"))->name,
                     "Salesforce");
    ck_assert_str_eq(crm_provider_find(crm_str_lit("creatio"))->name,
                     "Creatio");
    ck_assert_ptr_null(crm_provider_find(crm_str_lit("hubspot")));
    ck_assert_ptr_null(crm_provider_find(crm_str_lit("Klaviyo")));
}
END_TEST


START_TEST(test_provider_klaviyo_parse)
{
    check_provider_refused("klaviyo", "{}", NULL, 0, "api_key");
    check_provider_refused("klaviyo", "{\"api_key\":\"\"}", NULL, 0,
                           "api_key");
    check_provider_refused("klaviyo", "{\"api_key\":7}", NULL, 0, "api_key");
    check_provider_refused("klaviyo", "{\"api_key\":\"pk_1\",\"x\":\"1\"}",
                           NULL, 0, "x");
    check_provider_refused("klaviyo", "{\"api_key\":\"pk_1 2\"}", NULL, 0,
                           "api_key");
    check_provider_refused("klaviyo", "{\"api_key\":\"pk_1\\r\\nX: 1\"}",
                           NULL, 0, "api_key");
    check_provider_refused("klaviyo", "{\"api_key\":\"pk_\\u00e9\"}", NULL,
                           0, "api_key");
    check_provider_refused("klaviyo", CHECK_PROVIDER_KLAVIYO_KEY,
                           "{\"region\":\"eu\"}", 0, "settings");
}
END_TEST


START_TEST(test_provider_klaviyo_request)
{
    size_t       i;
    check_op_t   t;
    const char  *rev;

    check_provider_start(&t, "klaviyo", CHECK_PROVIDER_KLAVIYO_KEY, "{}", 0);

    ck_assert_str_eq(t.op.req.method, "GET");
    ck_assert_str_eq(t.op.req.url, "https://a.klaviyo.com/api/accounts");
    ck_assert_str_eq(t.op.req.provider, "Klaviyo");
    ck_assert_ptr_null(t.op.req.body);
    ck_assert_str_eq(check_provider_header(&t.op, "Authorization"),
                     "Klaviyo-API-Key pk_0123456789abcdef");
    ck_assert_str_eq(check_provider_header(&t.op, "Accept"),
                     "application/vnd.api+json");

    rev = check_provider_header(&t.op, "revision");
    ck_assert_ptr_nonnull(rev);
    ck_assert_uint_eq(strlen(rev), 10);

    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            ck_assert_int_eq(rev[i], '-');

        } else {
            ck_assert_msg(rev[i] >= '0' && rev[i] <= '9', "revision %s", rev);
        }
    }

    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_klaviyo_account)
{
    check_op_t  t;

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                                            CHECK_PROVIDER_KLAVIYO_OK, NULL),
                     CRM_OK);
    check_provider_account(&t.op, "id", "AbC123");
    check_provider_account(&t.op, "name", "Mock Shop Inc");
    check_provider_account(&t.op, "preferred_currency", "USD");
    check_provider_account(&t.op, "timezone", "America/New_York");
    check_provider_done(&t);

    /* attributes missing: the members are there, null */
    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                         "{\"data\":[{\"type\":\"account\",\"id\":\"X1\"}]}",
                         NULL),
                     CRM_OK);
    check_provider_account(&t.op, "id", "X1");
    check_provider_account(&t.op, "name", NULL);
    check_provider_account(&t.op, "timezone", NULL);
    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_klaviyo_refused)
{
    check_op_t  t;

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 401,
                                            "{\"errors\":[]}", NULL),
                     CRM_E_INVALID);
    ck_assert_str_eq(t.err.field, "api_key");
    check_contains(t.err.message, "401");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 403,
                                            NULL, NULL),
                     CRM_E_INVALID);
    ck_assert_str_eq(t.err.field, "api_key");
    check_contains(t.err.message, "accounts:read");
    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_klaviyo_failed)
{
    check_op_t  t;

    static const char *const  retry[] = {
        "HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 7\r\n", NULL
    };

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                                            "{\"data\":[]}", NULL),
                     CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "no account");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                                            "{\"data\":[{\"id\":5}]}", NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 429,
                                            "{}", retry),
                     CRM_E_BAD_GATEWAY);
    ck_assert_uint_eq(t.err.retry_after, 7);
    check_contains(t.err.message, "rate");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 500,
                                            "{\"secret\":\"s3\"}", NULL),
                     CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "HTTP 500");
    ck_assert_ptr_null(strstr(t.err.message, "s3"));
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 302,
                                            NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "redirect");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_TIMED_OUT, 0,
                                            NULL, NULL),
                     CRM_E_GATEWAY_TIMEOUT);
    check_contains(t.err.message, "Klaviyo");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_TOO_LARGE, 0,
                                            NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "more than 1 MiB");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_REFUSED, 0,
                                            NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_UNREACHABLE, 0,
                                            NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "cannot be reached");
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                                            "<html>", NULL),
                     CRM_E_BAD_GATEWAY);
    ck_assert_ptr_null(strstr(t.err.message, "<html>"));
    check_provider_done(&t);

    ck_assert_int_eq(check_provider_klaviyo(&t, CRM_HTTP_ANSWERED, 200,
                                            "[]", NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_salesforce_parse)
{
    size_t      i;
    char        set[256];
    check_op_t  t;

    static const char *const  good[] = {
        "https://login.salesforce.com", "https://test.salesforce.com/",
        "https://acme.my.salesforce.com", NULL
    };

    static const char *const  bad[] = {
        "http://login.salesforce.com", "https://evil.example",
        "https://login.salesforce.com.evil.example", "https://x.force.com",
        "https://acme.salesforce.com", "https://10.0.0.1",
        "https://127.0.0.1", "https://login.salesforce.com/?a=1",
        "https://u@login.salesforce.com", "login.salesforce.com", NULL
    };

    /* the default login host */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_str_eq(t.op.req.url,
                     "https://login.salesforce.com/services/Soap/u/59.0");
    check_provider_done(&t);

    for (i = 0; good[i] != NULL; i++) {
        snprintf(set, sizeof(set), "{\"login_url\":\"%s\"}", good[i]);
        ck_assert_msg(check_provider_parse(&t, "salesforce",
                                           CHECK_PROVIDER_SF_CREDS, set, 0)
                      == CRM_OK, "%s: %s", good[i], t.err.message);
        check_provider_done(&t);
    }

    for (i = 0; bad[i] != NULL; i++) {
        snprintf(set, sizeof(set), "{\"login_url\":\"%s\"}", bad[i]);
        check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS, set, 0,
                               "settings.login_url");
    }

    /* a local stand-in, through the allow list only */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS,
                         "{\"login_url\":\"http://127.0.0.1:8080\"}", 1);
    ck_assert_str_eq(t.op.req.url,
                     "http://127.0.0.1:8080/services/Soap/u/59.0");
    check_provider_done(&t);

    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"login_url\":\"http://127.0.0.1:8080\"}", 0,
                           "settings.login_url");
    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"login_url\":\"http://10.0.0.1\"}", 1,
                           "settings.login_url");

    ck_assert_int_eq(check_provider_parse(&t, "salesforce",
                         CHECK_PROVIDER_SF_CREDS,
                         "{\"external_id_field\":\"Shop_Domain__c\"}", 0),
                     CRM_OK);
    check_provider_done(&t);

    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"external_id_field\":\"Shop_Domain\"}", 0,
                           "settings.external_id_field");
    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"external_id_field\":\"1abc__c\"}", 0,
                           "settings.external_id_field");
    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"external_id_field\":\"a;b__c\"}", 0,
                           "settings.external_id_field");
    check_provider_refused("salesforce", CHECK_PROVIDER_SF_CREDS,
                           "{\"sandbox\":\"yes\"}", 0, "settings.sandbox");

    check_provider_refused("salesforce", "{\"password\":\"pw\"}", NULL, 0,
                           "username");
    check_provider_refused("salesforce", "{\"username\":\"u\"}", NULL, 0,
                           "password");
}
END_TEST


START_TEST(test_provider_salesforce_login_request)
{
    check_op_t  t;

    check_provider_start(&t, "salesforce",
                         "{\"username\":\"u&s<e>r@example.com\","
                         "\"password\":\"p&<>\\\"'w\","
                         "\"security_token\":\"T&K\"}", NULL, 0);

    ck_assert_str_eq(t.op.req.method, "POST");
    ck_assert_str_eq(t.op.req.url,
                     "https://login.salesforce.com/services/Soap/u/59.0");
    ck_assert_str_eq(check_provider_header(&t.op, "SOAPAction"), "login");
    check_contains(check_provider_header(&t.op, "Content-Type"), "text/xml");
    ck_assert_ptr_null(check_provider_header(&t.op, "Authorization"));

    ck_assert_ptr_nonnull(t.op.req.body);
    ck_assert_uint_eq(t.op.req.body_len, strlen(t.op.req.body));
    check_contains(t.op.req.body, "urn:partner.soap.sforce.com");
    check_contains(t.op.req.body,
                   ":username>u&amp;s&lt;e&gt;r@example.com</");
    check_contains(t.op.req.body,
                   ":password>p&amp;&lt;&gt;&quot;&apos;wT&amp;K</");
    ck_assert_ptr_null(strstr(t.op.req.body, "p&<"));

    check_provider_done(&t);
}
END_TEST


static crm_status_e
check_provider_sf_login(check_op_t *t, const char *doctype,
    const char *server, const char *session)
{
    char  body[4096];

    snprintf(body, sizeof(body),
             CHECK_PROVIDER_SF_DECL "%s" CHECK_PROVIDER_SF_OPEN
             "<metadataServerUrl>%s</metadataServerUrl>"
             "<serverUrl>%s</serverUrl><sessionId>%s</sessionId>"
             CHECK_PROVIDER_SF_CLOSE,
             doctype, server, server, session);

    return check_provider_answer(t, CRM_HTTP_ANSWERED, 200, body, NULL);
}


static crm_status_e
check_provider_sf_fault(check_op_t *t, const char *code)
{
    char  body[2048];

    snprintf(body, sizeof(body),
             CHECK_PROVIDER_SF_DECL "<soapenv:Envelope"
             " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
             " xmlns:sf=\"urn:fault.partner.soap.sforce.com\""
             " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
             "<soapenv:Body><soapenv:Fault>"
             "<faultcode>sf:%s</faultcode>"
             "<faultstring>%s: it went wrong</faultstring>"
             "<detail><sf:LoginFault xsi:type=\"sf:LoginFault\">"
             "<sf:exceptionCode>%s</sf:exceptionCode>"
             "<sf:exceptionMessage>it went wrong</sf:exceptionMessage>"
             "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
             "</soapenv:Envelope>",
             code, code, code);

    return check_provider_answer(t, CRM_HTTP_ANSWERED, 500, body, NULL);
}


START_TEST(test_provider_salesforce_validate)
{
    check_op_t  t;

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);

    ck_assert_int_eq(check_provider_sf_login(&t, "", CHECK_PROVIDER_SF_SERVER,
                                             "00D!SESSION"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    ck_assert_str_eq(t.op.req.method, "GET");
    ck_assert_str_eq(t.op.req.url,
                     "https://na1.salesforce.com/services/data/v59.0/");
    ck_assert_str_eq(check_provider_header(&t.op, "Authorization"),
                     "Bearer 00D!SESSION");
    ck_assert_ptr_null(t.op.req.body);

    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "{\"sobjects\":\"/x\"}", NULL),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_account(&t.op, "user_id", "0055e000001MockAA");
    check_provider_account(&t.op, "org_id", "00D5e000000MockEAA");
    check_provider_account(&t.op, "user_name", "u@example.com");
    check_provider_account(&t.op, "instance_url",
                           "https://na1.salesforce.com");
    check_provider_done(&t);

    /* the session refused by the REST API */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "", CHECK_PROVIDER_SF_SERVER,
                                             "00D!SESSION"),
                     CRM_OK);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 401,
                                           "[]", NULL),
                     CRM_E_INVALID);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);

    /* and the REST API failing */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "", CHECK_PROVIDER_SF_SERVER,
                                             "00D!SESSION"),
                     CRM_OK);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_TIMED_OUT, 0, NULL,
                                           NULL),
                     CRM_E_GATEWAY_TIMEOUT);
    check_provider_done(&t);

    /* a local stand-in: its own address as the instance */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS,
                         "{\"login_url\":\"http://127.0.0.1:8080/\"}", 1);
    ck_assert_int_eq(check_provider_sf_login(&t, "",
                         "http://127.0.0.1:8080/services/Soap/u/59.0/00D",
                         "S1"),
                     CRM_OK);
    ck_assert_str_eq(t.op.req.url,
                     "http://127.0.0.1:8080/services/data/v59.0/");
    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_salesforce_faults)
{
    size_t      i;
    check_op_t  t;

    static const char *const  refusals[] = {
        "INVALID_LOGIN", "LOGIN_MUST_USE_SECURITY_TOKEN", NULL
    };

    for (i = 0; refusals[i] != NULL; i++) {
        check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL,
                             0);
        ck_assert_int_eq(check_provider_sf_fault(&t, refusals[i]),
                         CRM_E_INVALID);
        ck_assert_int_eq(t.step, CRM_OP_DONE);
        ck_assert_str_eq(t.err.field, "credentials");
        check_contains(t.err.message, refusals[i]);
        check_provider_done(&t);
    }

    /* a session id that would add a header line is not one */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "",
                         "https://na1.salesforce.com/services/Soap/u/59.0/x",
                         "A&#13;&#10;X-Evil: 1"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_fault(&t, "UNSUPPORTED_API_VERSION"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_contains(t.err.message, "UNSUPPORTED_API_VERSION");
    check_provider_done(&t);

    /* the instance login() names must be Salesforce's */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "",
                         "https://evil.example/services/Soap/u/59.0/00D",
                         "00D!SESSION"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_contains(t.err.message, "not a Salesforce host");
    check_provider_done(&t);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "",
                         "http://na1.salesforce.com/services/Soap/u/59.0/00D",
                         "00D!SESSION"),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    /* the allow list does not let a private address through without it */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_sf_login(&t, "",
                         "https://127.0.0.1/services/Soap/u/59.0/00D",
                         "00D!SESSION"),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    /* malformed XML, not XML, and XML without a login result */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                         "<soapenv:Envelope><result><sessionId>x",
                         NULL),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "{\"json\":true}", NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "<a><b/></a>", NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    /* a 500 that is no fault, and a login not answered */
    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 500,
                                           "oops", NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_TIMED_OUT, 0, NULL,
                                           NULL),
                     CRM_E_GATEWAY_TIMEOUT);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);
}
END_TEST


/* an external entity in sessionId: its file must never be read into it */
static void
check_provider_sf_xxe(const char *path, const char *secret)
{
    char                         doctype[512];
    check_op_t                   t;
    crm_status_e                 rc;
    const char                  *auth;
    const crm_provider_field_t  *f;

    snprintf(doctype, sizeof(doctype),
             "<!DOCTYPE x [<!ENTITY e SYSTEM \"file://%s\">]>", path);

    check_provider_start(&t, "salesforce", CHECK_PROVIDER_SF_CREDS, NULL, 0);

    rc = check_provider_sf_login(&t, doctype, CHECK_PROVIDER_SF_SERVER,
                                 "S&e;X");

    if (rc == CRM_OK) {
        auth = check_provider_header(&t.op, "Authorization");
        ck_assert_ptr_nonnull(auth);
        ck_assert_msg(strstr(auth, secret) == NULL, "read %s: %s", path,
                      auth);
        ck_assert_str_eq(auth, "Bearer SX");

    } else {
        ck_assert_int_eq(rc, CRM_E_BAD_GATEWAY);
    }

    for (f = t.op.account; f != NULL; f = f->next) {
        ck_assert_msg(f->value == NULL || strstr(f->value, secret) == NULL,
                      "read %s into %s", path, f->name);
    }

    ck_assert_ptr_null(strstr(t.err.message, secret));

    check_provider_done(&t);
}


START_TEST(test_provider_salesforce_xxe)
{
    int      fd;
    char     path[] = "/tmp/check_provider_XXXXXX";
    char     host[256];
    size_t   n;
    FILE    *f;

    static const char  secret[] = "XXE-SECRET-7f3a91";

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, secret, sizeof(secret) - 1),
                     (ssize_t) sizeof(secret) - 1);
    close(fd);

    check_provider_sf_xxe(path, secret);

    unlink(path);

    f = fopen("/etc/hostname", "r");
    if (f != NULL) {
        n = fread(host, 1, sizeof(host) - 1, f);
        fclose(f);

        host[n] = '\0';

        while (n > 0 && (host[n - 1] == '\n' || host[n - 1] == '\r')) {
            host[--n] = '\0';
        }

        if (n > 0) {
            check_provider_sf_xxe("/etc/hostname", host);
        }
    }
}
END_TEST


START_TEST(test_provider_creatio_parse)
{
    size_t      i;
    char        creds[512];
    check_op_t  t;

    static const char *const  bad[] = {
        "http://acme.creatio.com", "https://acme.creatio.com/?a=1",
        "https://acme.creatio.com/#x", "ftp://acme.creatio.com",
        "https://localhost", "https://x.localhost", "https://printer.local",
        "https://crm.corp.internal", "https://crm.corp.internal.:8443",
        "https://u@acme.creatio.com", "acme.creatio.com", NULL
    };

    for (i = 0; bad[i] != NULL; i++) {
        snprintf(creds, sizeof(creds),
                 "{\"instance_url\":\"%s\",\"username\":\"u\","
                 "\"password\":\"p\"}", bad[i]);
        check_provider_refused("creatio", creds, NULL, 0, "instance_url");
    }

    /* plain http to a stand-in, with the allow list */
    check_provider_start(&t, "creatio",
                         "{\"instance_url\":\"http://127.0.0.1:5000\","
                         "\"username\":\"u\",\"password\":\"p\"}", NULL, 1);
    ck_assert_str_eq(t.op.req.url,
                     "http://127.0.0.1:5000/ServiceModel/AuthService.svc/"
                     "Login");
    check_provider_done(&t);

    check_provider_refused("creatio",
                           "{\"instance_url\":\"http://localhost:5000\","
                           "\"username\":\"u\",\"password\":\"p\"}", NULL, 1,
                           "instance_url");

    ck_assert_int_eq(check_provider_parse(&t, "creatio",
                                          CHECK_PROVIDER_CREATIO_CREDS,
                                          "{\"odata_path\":\"/odata\"}", 0),
                     CRM_OK);
    check_provider_done(&t);

    check_provider_refused("creatio", CHECK_PROVIDER_CREATIO_CREDS,
                           "{\"odata_path\":\"../x\"}", 0,
                           "settings.odata_path");
    check_provider_refused("creatio", CHECK_PROVIDER_CREATIO_CREDS,
                           "{\"odata_path\":\"0/odata\"}", 0,
                           "settings.odata_path");
    check_provider_refused("creatio", CHECK_PROVIDER_CREATIO_CREDS,
                           "{\"odata_path\":\"/0/odata?x=1\"}", 0,
                           "settings.odata_path");
    check_provider_refused("creatio", CHECK_PROVIDER_CREATIO_CREDS,
                           "{\"odata_path\":\"/\"}", 0,
                           "settings.odata_path");
    check_provider_refused("creatio", CHECK_PROVIDER_CREATIO_CREDS,
                           "{\"version\":\"8\"}", 0, "settings.version");
    check_provider_refused("creatio",
                           "{\"instance_url\":\"https://a.example\","
                           "\"username\":\"u\"}", NULL, 0, "password");
}
END_TEST


START_TEST(test_provider_creatio_login_request)
{
    yajl_val     body;
    check_op_t   t;
    const char  *user_path[] = { "UserName", NULL };
    const char  *pass_path[] = { "UserPassword", NULL };

    check_provider_start(&t, "creatio",
                         "{\"instance_url\":\"https://acme.creatio.com/\","
                         "\"username\":\"Super \\\"visor\\\"\","
                         "\"password\":\"p\\\"a\\\\s\\\\\\\"s\"}", NULL, 0);

    ck_assert_str_eq(t.op.req.method, "POST");
    ck_assert_str_eq(t.op.req.url,
                     "https://acme.creatio.com/ServiceModel/AuthService.svc/"
                     "Login");
    ck_assert_str_eq(check_provider_header(&t.op, "Content-Type"),
                     "application/json; charset=utf-8");
    ck_assert_str_eq(check_provider_header(&t.op, "ForceUseSession"),
                     "true");
    ck_assert_ptr_null(check_provider_header(&t.op, "Cookie"));

    ck_assert_ptr_nonnull(t.op.req.body);
    ck_assert_uint_eq(t.op.req.body_len, strlen(t.op.req.body));

    body = check_provider_json(t.op.req.body);
    ck_assert_ptr_nonnull(body);
    ck_assert_uint_eq(body->u.object.len, 2);
    ck_assert_str_eq(crm_provider_string(body, user_path),
                     "Super \"visor\"");
    ck_assert_str_eq(crm_provider_string(body, pass_path),
                     "p\"a\\s\\\"s");
    yajl_tree_free(body);

    check_provider_done(&t);
}
END_TEST


/* started and logged in with the usual cookies */
static void
check_provider_creatio_login(check_op_t *t)
{
    ck_assert_int_eq(check_provider_answer(t, CRM_HTTP_ANSWERED, 200,
                                           CHECK_PROVIDER_CREATIO_OK,
                                           check_provider_cookies),
                     CRM_OK);
    ck_assert_int_eq(t->step, CRM_OP_MORE);
}


START_TEST(test_provider_creatio_validate)
{
    check_op_t  t;

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    check_provider_creatio_login(&t);

    ck_assert_str_eq(t.op.req.method, "GET");
    ck_assert_str_eq(t.op.req.url,
                     "https://acme.creatio.com/0/odata/Contact"
                     "?$top=1&$select=Id");
    ck_assert_str_eq(check_provider_header(&t.op, "Cookie"),
                     "BPMLOADER=ldr1; .ASPXAUTH=auth2; BPMCSRF=abc; "
                     "UserName=83|117");
    ck_assert_str_eq(check_provider_header(&t.op, "BPMCSRF"), "abc");
    ck_assert_str_eq(check_provider_header(&t.op, "ForceUseSession"),
                     "true");
    ck_assert_ptr_null(t.op.req.body);
    ck_assert_ptr_null(t.op.account);

    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "{\"value\":[]}", NULL),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_account(&t.op, "instance_url", "https://acme.creatio.com");
    check_provider_account(&t.op, "user_name", "Supervisor");
    check_provider_done(&t);

    /* another OData path */
    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS,
                         "{\"odata_path\":\"/odata\"}", 0);
    check_provider_creatio_login(&t);
    ck_assert_str_eq(t.op.req.url,
                     "https://acme.creatio.com/odata/Contact"
                     "?$top=1&$select=Id");

    /* the session refused: Creatio's fault, not the user's */
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 401,
                                           NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    check_provider_creatio_login(&t);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 503,
                                           NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);
}
END_TEST


START_TEST(test_provider_creatio_refused)
{
    check_op_t  t;

    static const char *const  csrf_only[] = {
        "Set-Cookie: BPMCSRF=abc\r\n", NULL
    };

    static const char *const  no_csrf[] = {
        "Set-Cookie: BPMLOADER=ldr1; path=/\r\n",
        "Set-Cookie: .ASPXAUTH=auth2; path=/\r\n",
        "Set-Cookie: BPMCSRF=; path=/\r\n", NULL
    };

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                         "{\"Code\":1,\"Message\":"
                         "\"Invalid username or password.\"}",
                         check_provider_cookies),
                     CRM_E_INVALID);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.err.field, "credentials");
    check_contains(t.err.message, "Invalid username or password.");
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           CHECK_PROVIDER_CREATIO_OK,
                                           no_csrf),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_contains(t.err.message, "BPMCSRF");
    check_provider_done(&t);

    /* the CSRF cookie alone is a session too */
    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           CHECK_PROVIDER_CREATIO_OK,
                                           csrf_only),
                     CRM_OK);
    ck_assert_str_eq(check_provider_header(&t.op, "Cookie"), "BPMCSRF=abc");
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "<html>login</html>",
                                           check_provider_cookies),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 200,
                                           "{\"Code\":\"0\"}",
                                           check_provider_cookies),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 401,
                                           NULL, NULL),
                     CRM_E_INVALID);
    ck_assert_str_eq(t.err.field, "credentials");
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_ANSWERED, 500,
                                           NULL, NULL),
                     CRM_E_BAD_GATEWAY);
    check_provider_done(&t);

    /* an address that may not be called, at either step: the user's URL */
    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_REFUSED, 0, NULL,
                                           NULL),
                     CRM_E_INVALID);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.err.field, "instance_url");
    check_contains(t.err.message, "the test said so");
    check_provider_done(&t);

    check_provider_start(&t, "creatio", CHECK_PROVIDER_CREATIO_CREDS, NULL,
                         0);
    check_provider_creatio_login(&t);
    ck_assert_int_eq(check_provider_answer(&t, CRM_HTTP_REFUSED, 0, NULL,
                                           NULL),
                     CRM_E_INVALID);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.err.field, "instance_url");
    check_provider_done(&t);
}
END_TEST


static Suite *
check_provider_suite(void)
{
    Suite  *s;
    TCase  *tc;

    /* before any fork, in the main thread */
    crm_provider_init();

    s = crm_check_suite("provider", &tc);

    tcase_add_test(tc, test_provider_find);
    tcase_add_test(tc, test_provider_klaviyo_parse);
    tcase_add_test(tc, test_provider_klaviyo_request);
    tcase_add_test(tc, test_provider_klaviyo_account);
    tcase_add_test(tc, test_provider_klaviyo_refused);
    tcase_add_test(tc, test_provider_klaviyo_failed);
    tcase_add_test(tc, test_provider_salesforce_parse);
    tcase_add_test(tc, test_provider_salesforce_login_request);
    tcase_add_test(tc, test_provider_salesforce_validate);
    tcase_add_test(tc, test_provider_salesforce_faults);
    tcase_add_test(tc, test_provider_salesforce_xxe);
    tcase_add_test(tc, test_provider_creatio_parse);
    tcase_add_test(tc, test_provider_creatio_login_request);
    tcase_add_test(tc, test_provider_creatio_validate);
    tcase_add_test(tc, test_provider_creatio_refused);

    return s;
}


CRM_CHECK_MAIN(check_provider_suite)
