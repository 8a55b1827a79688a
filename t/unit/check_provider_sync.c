/*
 * The CRM providers' write operations (get_contact, upsert_contact,
 * send_event), driven without a network: the requests each step builds
 * (method, URL, the headers that matter, the JSON body), what each kind
 * of answer turns into (a contact id, done, or the error the sync queue
 * acts on), and the session providers' log-in before an operation's first
 * call and once more when a call says the session expired.  Also the
 * helpers the providers build their requests with: clip, split_name,
 * query_escape and crm_http_request_set_header().
 */

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "crm_check.h"
#include "crm_provider.h"


#define CHECK_SYNC_LEAD        "0b7c6a52-3f5e-4a8e-9d61-2c4f1b7e9a10"
#define CHECK_SYNC_EVENT       "5d0e8f3a-9b1c-4c2d-8e7f-a6b5c4d3e2f1"

#define CHECK_SYNC_KLAVIYO     "https://a.klaviyo.com"
#define CHECK_SYNC_KLAVIYO_KEY "{\"api_key\":\"pk_0123456789abcdef\"}"
#define CHECK_SYNC_PROFILE     "01JD5Y8ZQK3M4N5P6R7S8T9V0W"

#define CHECK_SYNC_SF_CREDS                                                  \
    "{\"username\":\"u@example.com\",\"password\":\"pw\","                    \
    "\"security_token\":\"TOK\"}"

#define CHECK_SYNC_SF_LOGIN                                                  \
    "https://login.salesforce.com/services/Soap/u/59.0"

#define CHECK_SYNC_SF_SERVER                                                 \
    "https://na1.salesforce.com/services/Soap/u/59.0/00D5e000000Mock"

#define CHECK_SYNC_SF_REST     "https://na1.salesforce.com/services/data/v59.0"
#define CHECK_SYNC_SF_SESSION1 "00D5e000000Mock!AQ4AQFirstSession.x1"
#define CHECK_SYNC_SF_SESSION2 "00D5e000000Mock!AQ4AQOtherSession.y2"
#define CHECK_SYNC_SF_LEAD     "00Q5e00000AbCdEAAZ"
#define CHECK_SYNC_SF_FOUND    "00Q5e00000FoUnDAAZ"
#define CHECK_SYNC_SF_EXTERNAL "{\"external_id_field\":\"Gateway_Lead_Id__c\"}"

/* a login() answer: serverUrl, sessionId */
#define CHECK_SYNC_SF_ANSWER                                                 \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                              \
    "<soapenv:Envelope"                                                       \
    " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""            \
    " xmlns=\"urn:partner.soap.sforce.com\">"                                 \
    "<soapenv:Body><loginResponse><result>"                                   \
    "<passwordExpired>false</passwordExpired>"                                \
    "<serverUrl>%s</serverUrl><sessionId>%s</sessionId>"                      \
    "<userId>0055e000001MockAA</userId><userInfo>"                            \
    "<organizationId>00D5e000000MockEAA</organizationId>"                     \
    "<userName>u@example.com</userName></userInfo>"                           \
    "</result></loginResponse></soapenv:Body></soapenv:Envelope>"

/* a login() fault: its code, twice */
#define CHECK_SYNC_SF_FAULT                                                  \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                              \
    "<soapenv:Envelope"                                                       \
    " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""            \
    " xmlns:sf=\"urn:fault.partner.soap.sforce.com\">"                        \
    "<soapenv:Body><soapenv:Fault><faultcode>sf:%s</faultcode>"               \
    "<faultstring>refused</faultstring><detail><sf:LoginFault>"               \
    "<sf:exceptionCode>%s</sf:exceptionCode>"                                 \
    "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"                \
    "</soapenv:Envelope>"

#define CHECK_SYNC_CREATIO_CREDS                                             \
    "{\"instance_url\":\"https://acme.creatio.com/\","                        \
    "\"username\":\"Supervisor\",\"password\":\"pw\"}"

#define CHECK_SYNC_CREATIO_LOGIN                                             \
    "https://acme.creatio.com/ServiceModel/AuthService.svc/Login"

#define CHECK_SYNC_CREATIO_OK                                                \
    "{\"Code\":0,\"Message\":\"\",\"Exception\":null}"

#define CHECK_SYNC_ODATA       "https://acme.creatio.com/0/odata"
#define CHECK_SYNC_CONTACT     "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"

#define check_contains(s, part)                                              \
    do {                                                                      \
        const char  *s_ = (s);                                                \
        ck_assert_ptr_nonnull(s_);                                            \
        ck_assert_msg(strstr(s_, (part)) != NULL, "\"%s\" lacks \"%s\"",      \
                      s_, (part));                                            \
    } while (0)


/* one operation and all it needs, on the test's stack */
typedef struct {
    crm_arena_t           arena;
    crm_cidr_list_t       allow;
    crm_provider_conf_t   conf;
    crm_provider_op_t     op;
    crm_provider_step_pt  run;          /* the operation driven */
    crm_error_t           err;
    crm_op_step_e         step;
} check_sync_t;


/* an answer that ends the operation with an error */
typedef struct {
    crm_http_outcome_e  outcome;
    unsigned            status;
    const char         *body;
    const char *const  *headers;
    crm_status_e        code;
    unsigned            retry_after;
    const char         *said;           /* in the message, or NULL */
} check_sync_failure_t;


static yajl_val check_sync_json(const char *text);
static void check_sync_start(check_sync_t *t, const char *type,
    const char *credentials, const char *settings, int allow);
static void check_sync_begin(check_sync_t *t, crm_provider_step_pt run);
static crm_status_e check_sync_answer(check_sync_t *t,
    crm_http_outcome_e outcome, unsigned status, const char *body,
    const char *const *headers);
static crm_status_e check_sync_reply(check_sync_t *t, unsigned status,
    const char *body);
static void check_sync_failed(check_sync_t *t,
    const check_sync_failure_t *f);
static void check_sync_request(const check_sync_t *t, const char *method,
    const char *url);
static const char *check_sync_header(const check_sync_t *t,
    const char *name);
static size_t check_sync_headers(const check_sync_t *t, const char *name);
static yajl_val check_sync_body(const check_sync_t *t);
static yajl_val check_sync_get(yajl_val root, const char *path);
static void check_sync_str(yajl_val root, const char *path,
    const char *value);
static void check_sync_int(yajl_val root, const char *path,
    long long value);
static void check_sync_done(check_sync_t *t);
static void check_sync_op(check_sync_t *t);
static crm_status_e check_sync_sf_login(check_sync_t *t, const char *server,
    const char *session);
static crm_status_e check_sync_sf_fault(check_sync_t *t, const char *code);
static void check_sync_sf_logged_in(check_sync_t *t,
    crm_provider_step_pt run);
static yajl_val check_sync_sf_lead(check_sync_t *t,
    const crm_contact_t *lead);
static void check_sync_sf_event_failed(const check_sync_failure_t *f);
static crm_status_e check_sync_creatio_login(check_sync_t *t,
    const char *const *cookies);
static void check_sync_creatio_logged_in(check_sync_t *t,
    crm_provider_step_pt run);
static void check_sync_creatio_patch(check_sync_t *t);
static Suite *check_provider_sync_suite(void);


static const crm_contact_t  check_sync_lead = {
    .lead_id = CHECK_SYNC_LEAD,
    .name = "Ada Lovelace King",
    .email = "ada@example.com",
    .phone = "+442071234567",
    .company = "Analytical Engines Ltd",
    .shop_domain = "engines.example",
    .source = "affiliate",
    .stage = "demo",
    .substage = "demo_scheduled",
    .score = 40
};

static const crm_event_t  check_sync_event = {
    .id = CHECK_SYNC_EVENT,
    .name = "Lead Created",
    .time = "2026-12-05T10:00:00Z",
    .value_cents = -1,
    .currency = "USD"
};

static const char *const  check_sync_cookies1[] = {
    "HTTP/1.1 200 OK\r\n",
    "Set-Cookie: BPMLOADER=ldr1; path=/; HttpOnly\r\n",
    "Set-Cookie: .ASPXAUTH=auth1; path=/; HttpOnly\r\n",
    "Content-Type: application/json; charset=utf-8\r\n",
    "Set-Cookie: BPMCSRF=csrf1; path=/\r\n",
    "Set-Cookie: UserName=83|117; path=/\r\n",
    NULL
};

static const char *const  check_sync_cookies2[] = {
    "Set-Cookie: BPMLOADER=ldr2; path=/; HttpOnly\r\n",
    "Set-Cookie: .ASPXAUTH=auth2; path=/; HttpOnly\r\n",
    "Set-Cookie: BPMCSRF=csrf2; path=/\r\n",
    NULL
};

/* a login that sets a session but no BPMCSRF cookie */
static const char *const  check_sync_cookies_no_csrf[] = {
    "Set-Cookie: BPMLOADER=ldr3; path=/; HttpOnly\r\n",
    "Set-Cookie: .ASPXAUTH=auth3; path=/; HttpOnly\r\n",
    NULL
};

static const char *const  check_sync_retry7[] = {
    "HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 7\r\n", NULL
};

static const char *const  check_sync_retry30[] = {
    "HTTP/1.1 503 Service Unavailable\r\n", "Retry-After: 30\r\n", NULL
};


static yajl_val
check_sync_json(const char *text)
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


/* credentials and settings parsed; the lead and the event set */
static void
check_sync_start(check_sync_t *t, const char *type, const char *credentials,
    const char *settings, int allow)
{
    yajl_val  creds, set;

    memset(t, 0, sizeof(check_sync_t));

    if (allow) {
        ck_assert_ptr_null(crm_cidr_list_add(&t->allow,
                                             crm_str_lit("127.0.0.0/8")));
        t->conf.allow = &t->allow;
    }

    t->conf.klaviyo_url = CHECK_SYNC_KLAVIYO;

    t->op.provider = crm_provider_find(crm_str_c(type));
    ck_assert_ptr_nonnull(t->op.provider);
    t->op.conf = &t->conf;
    t->op.arena = &t->arena;
    t->op.contact = &check_sync_lead;
    t->op.event = &check_sync_event;

    creds = check_sync_json(credentials);
    set = check_sync_json(settings);

    ck_assert_int_eq(t->op.provider->parse(&t->op, creds, set, &t->err),
                     CRM_OK);

    yajl_tree_free(creds);
    yajl_tree_free(set);
}


/* the operation's first request asked for */
static void
check_sync_begin(check_sync_t *t, crm_provider_step_pt run)
{
    t->run = run;
    t->step = CRM_OP_DONE;

    ck_assert_int_eq(run(&t->op, NULL, &t->step, &t->err), CRM_OK);
    ck_assert_int_eq(t->step, CRM_OP_MORE);
}


/* hands op->req's answer to the operation: header lines, NULL-ended */
static crm_status_e
check_sync_answer(check_sync_t *t, crm_http_outcome_e outcome,
    unsigned status, const char *body, const char *const *headers)
{
    crm_status_e         rc;
    crm_http_response_t  res;

    ck_assert_int_eq(t->step, CRM_OP_MORE);

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

    rc = t->run(&t->op, &res, &t->step, &t->err);

    crm_http_response_clear(&res);

    return rc;
}


static crm_status_e
check_sync_reply(check_sync_t *t, unsigned status, const char *body)
{
    return check_sync_answer(t, CRM_HTTP_ANSWERED, status, body, NULL);
}


static void
check_sync_failed(check_sync_t *t, const check_sync_failure_t *f)
{
    crm_status_e  rc;

    rc = check_sync_answer(t, f->outcome, f->status, f->body, f->headers);

    ck_assert_msg(rc == f->code, "%s, HTTP %u: %d (%s)",
                  t->op.provider->name, f->status, rc, t->err.message);
    ck_assert_int_eq(t->err.code, f->code);
    ck_assert_int_eq(t->step, CRM_OP_DONE);
    ck_assert_uint_eq(t->err.retry_after, f->retry_after);
    ck_assert_str_eq(t->err.field, "");
    check_contains(t->err.message, t->op.provider->name);

    if (f->said != NULL) {
        check_contains(t->err.message, f->said);
    }
}


static void
check_sync_request(const check_sync_t *t, const char *method,
    const char *url)
{
    ck_assert_ptr_nonnull(t->op.req.method);
    ck_assert_str_eq(t->op.req.method, method);
    ck_assert_ptr_nonnull(t->op.req.url);
    ck_assert_str_eq(t->op.req.url, url);
    ck_assert_str_eq(t->op.req.provider, t->op.provider->name);
}


static const char *
check_sync_header(const check_sync_t *t, const char *name)
{
    const crm_http_header_t  *h;

    for (h = t->op.req.headers; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            return h->value;
        }
    }

    return NULL;
}


/* how many headers op->req has of the name, in any case */
static size_t
check_sync_headers(const check_sync_t *t, const char *name)
{
    size_t                    n;
    const crm_http_header_t  *h;

    n = 0;

    for (h = t->op.req.headers; h != NULL; h = h->next) {
        if (strcasecmp(h->name, name) == 0) {
            n++;
        }
    }

    return n;
}


/* op->req's body as a JSON object; the caller frees it */
static yajl_val
check_sync_body(const check_sync_t *t)
{
    yajl_val  root;

    ck_assert_ptr_nonnull(t->op.req.body);
    ck_assert_uint_eq(t->op.req.body_len, strlen(t->op.req.body));

    root = check_sync_json(t->op.req.body);
    ck_assert_msg(YAJL_IS_OBJECT(root), "%s", t->op.req.body);

    return root;
}


/* the member at a dotted path ("data.attributes.email"), or NULL */
static yajl_val
check_sync_get(yajl_val root, const char *path)
{
    char        *key, *save;
    char         copy[128];
    size_t       n;
    const char  *keys[8];

    ck_assert_uint_lt(strlen(path), sizeof(copy));
    strcpy(copy, path);

    n = 0;

    for (key = strtok_r(copy, ".", &save); key != NULL;
         key = strtok_r(NULL, ".", &save))
    {
        ck_assert_uint_lt(n, 7);
        keys[n++] = key;
    }

    keys[n] = NULL;

    return yajl_tree_get(root, keys, yajl_t_any);
}


/* a string member with the value, or null (value NULL) */
static void
check_sync_str(yajl_val root, const char *path, const char *value)
{
    yajl_val  v;

    v = check_sync_get(root, path);
    ck_assert_msg(v != NULL, "no \"%s\" in the body", path);

    if (value == NULL) {
        ck_assert_msg(YAJL_IS_NULL(v), "\"%s\" is not null", path);
        return;
    }

    ck_assert_msg(YAJL_IS_STRING(v), "\"%s\" is not a string", path);
    ck_assert_str_eq(v->u.string, value);
}


static void
check_sync_int(yajl_val root, const char *path, long long value)
{
    yajl_val  v;

    v = check_sync_get(root, path);
    ck_assert_msg(v != NULL && YAJL_IS_INTEGER(v), "no integer \"%s\"",
                  path);
    ck_assert_int_eq(YAJL_GET_INTEGER(v), value);
}


static void
check_sync_done(check_sync_t *t)
{
    crm_arena_free(&t->arena);
}


/* an operation without a provider, for the shared helpers */
static void
check_sync_op(check_sync_t *t)
{
    memset(t, 0, sizeof(check_sync_t));

    t->op.arena = &t->arena;
}


static crm_status_e
check_sync_sf_login(check_sync_t *t, const char *server, const char *session)
{
    char  body[2048];

    snprintf(body, sizeof(body), CHECK_SYNC_SF_ANSWER, server, session);

    return check_sync_reply(t, 200, body);
}


static crm_status_e
check_sync_sf_fault(check_sync_t *t, const char *code)
{
    char  body[2048];

    snprintf(body, sizeof(body), CHECK_SYNC_SF_FAULT, code, code);

    return check_sync_reply(t, 500, body);
}


/* the operation begun: its login asked for, and answered */
static void
check_sync_sf_logged_in(check_sync_t *t, crm_provider_step_pt run)
{
    check_sync_begin(t, run);

    check_sync_request(t, "POST", CHECK_SYNC_SF_LOGIN);
    ck_assert_str_eq(check_sync_header(t, "SOAPAction"), "login");
    ck_assert_ptr_null(check_sync_header(t, "Authorization"));

    ck_assert_int_eq(check_sync_sf_login(t, CHECK_SYNC_SF_SERVER,
                                         CHECK_SYNC_SF_SESSION1), CRM_OK);
}


/* the Lead an upsert of a known Lead sends for lead: JSON, to free */
static yajl_val
check_sync_sf_lead(check_sync_t *t, const crm_contact_t *lead)
{
    check_sync_start(t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t->op.contact = lead;
    t->op.contact_id = CHECK_SYNC_SF_LEAD;

    check_sync_sf_logged_in(t, t->op.provider->upsert_contact);
    ck_assert_int_eq(t->step, CRM_OP_MORE);
    check_sync_request(t, "PATCH",
                       CHECK_SYNC_SF_REST "/sobjects/Lead/"
                       CHECK_SYNC_SF_LEAD);

    return check_sync_body(t);
}


/* a Task's answer that fails the event */
static void
check_sync_sf_event_failed(const check_sync_failure_t *f)
{
    check_sync_t  t;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->send_event);

    check_sync_failed(&t, f);

    ck_assert_ptr_null(strstr(t.err.message, CHECK_SYNC_SF_SESSION1));
    ck_assert_ptr_null(strstr(t.err.message, "Bearer"));

    check_sync_done(&t);
}


static crm_status_e
check_sync_creatio_login(check_sync_t *t, const char *const *cookies)
{
    return check_sync_answer(t, CRM_HTTP_ANSWERED, 200,
                             CHECK_SYNC_CREATIO_OK, cookies);
}


/* the operation begun: its login asked for, and answered */
static void
check_sync_creatio_logged_in(check_sync_t *t, crm_provider_step_pt run)
{
    check_sync_begin(t, run);

    check_sync_request(t, "POST", CHECK_SYNC_CREATIO_LOGIN);
    ck_assert_ptr_null(check_sync_header(t, "Cookie"));
    ck_assert_ptr_null(check_sync_header(t, "BPMCSRF"));

    ck_assert_int_eq(check_sync_creatio_login(t, check_sync_cookies1),
                     CRM_OK);
}


/* an upsert that found the lead's own Contact, and updates it */
static void
check_sync_creatio_patch(check_sync_t *t)
{
    check_sync_start(t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(t, t->op.provider->upsert_contact);

    ck_assert_int_eq(check_sync_reply(t, 200,
                                      "{\"Id\":\"" CHECK_SYNC_LEAD "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t->step, CRM_OP_MORE);
    check_sync_request(t, "PATCH",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_LEAD ")");
}


START_TEST(test_sync_clip)
{
    check_sync_t  t;
    const char   *s;

    check_sync_op(&t);

    ck_assert_ptr_null(crm_provider_clip(&t.op, NULL, 5));

    /* short enough: the text itself, not a copy */
    s = "Ada";
    ck_assert_ptr_eq(crm_provider_clip(&t.op, s, 3), s);
    ck_assert_str_eq(crm_provider_clip(&t.op, "Lovelace", 4), "Love");
    ck_assert_str_eq(crm_provider_clip(&t.op, "Lovelace", 0), "");

    /* "é" is one character of two bytes */
    s = "Zoé";
    ck_assert_uint_eq(strlen(s), 4);
    ck_assert_ptr_eq(crm_provider_clip(&t.op, s, 3), s);
    ck_assert_str_eq(crm_provider_clip(&t.op, "éléphant", 3), "élé");
    ck_assert_str_eq(crm_provider_clip(&t.op, "Zoé Ångström", 5), "Zoé Å");

    /* a cut falls between sequences, never inside one */
    ck_assert_str_eq(crm_provider_clip(&t.op, "aé", 1), "a");
    ck_assert_str_eq(crm_provider_clip(&t.op, "é", 0), "");
    ck_assert_str_eq(crm_provider_clip(&t.op, "€uro", 1), "€");
    ck_assert_str_eq(crm_provider_clip(&t.op, "😀😀", 1), "😀");
    ck_assert_uint_eq(strlen(crm_provider_clip(&t.op, "😀😀", 1)), 4);

    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_split_name)
{
    const char   *first, *last;
    check_sync_t  t;

    check_sync_op(&t);

    ck_assert_int_eq(crm_provider_split_name(&t.op, "Ada Lovelace King",
                                             &first, &last), 0);
    ck_assert_str_eq(first, "Ada");
    ck_assert_str_eq(last, "Lovelace King");

    /* one word: a last name only */
    ck_assert_int_eq(crm_provider_split_name(&t.op, "Ada", &first, &last),
                     0);
    ck_assert_ptr_null(first);
    ck_assert_str_eq(last, "Ada");

    /* one word and trailing spaces: still a last name only */
    ck_assert_int_eq(crm_provider_split_name(&t.op, "Ada  ", &first, &last),
                     0);
    ck_assert_ptr_null(first);
    ck_assert_str_eq(last, "Ada");

    ck_assert_int_eq(crm_provider_split_name(&t.op, "  Ada   Lovelace",
                                             &first, &last), 0);
    ck_assert_str_eq(first, "Ada");
    ck_assert_str_eq(last, "Lovelace");

    ck_assert_int_eq(crm_provider_split_name(&t.op, "Zoé Ångström",
                                             &first, &last), 0);
    ck_assert_str_eq(first, "Zoé");
    ck_assert_str_eq(last, "Ångström");

    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_query_escape)
{
    check_sync_t  t;

    check_sync_op(&t);

    ck_assert_str_eq(crm_provider_query_escape(&t.op,
                                               "equals(external_id,\"x\")"),
                     "equals%28external_id%2C%22x%22%29");
    ck_assert_str_eq(crm_provider_query_escape(&t.op, "AZaz09-._~"),
                     "AZaz09-._~");
    ck_assert_str_eq(crm_provider_query_escape(&t.op,
                                               "o'b+1@x.example /&=?#%"),
                     "o%27b%2B1%40x.example%20%2F%26%3D%3F%23%25");
    ck_assert_str_eq(crm_provider_query_escape(&t.op, "é\\"), "%C3%A9%5C");
    ck_assert_str_eq(crm_provider_query_escape(&t.op, ""), "");

    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_set_header)
{
    check_sync_t              t;
    crm_http_request_t        req;
    const crm_http_header_t  *h;

    check_sync_op(&t);
    memset(&req, 0, sizeof(req));

    ck_assert_int_eq(crm_http_request_header(&req, &t.arena, "Accept",
                                             "application/json"), 0);
    ck_assert_int_eq(crm_http_request_header(&req, &t.arena, "Authorization",
                                             "Bearer old"), 0);

    /* replaced in place, whatever the case of the name */
    ck_assert_int_eq(crm_http_request_set_header(&req, &t.arena,
                                                 "authorization",
                                                 "Bearer new"), 0);

    h = req.headers;
    ck_assert_str_eq(h->name, "Accept");
    ck_assert_str_eq(h->value, "application/json");
    h = h->next;
    ck_assert_str_eq(h->name, "Authorization");
    ck_assert_str_eq(h->value, "Bearer new");
    ck_assert_ptr_null(h->next);
    ck_assert_ptr_eq(req.last, h);

    /* else added, last */
    ck_assert_int_eq(crm_http_request_set_header(&req, &t.arena, "BPMCSRF",
                                                 "csrf1"), 0);
    h = h->next;
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h->name, "BPMCSRF");
    ck_assert_str_eq(h->value, "csrf1");
    ck_assert_ptr_null(h->next);
    ck_assert_ptr_eq(req.last, h);

    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_klaviyo_upsert_request)
{
    yajl_val       body;
    check_sync_t   t;
    crm_contact_t  lead;

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    check_sync_begin(&t, t.op.provider->upsert_contact);

    check_sync_request(&t, "POST", CHECK_SYNC_KLAVIYO "/api/profile-import");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Klaviyo-API-Key pk_0123456789abcdef");
    ck_assert_ptr_nonnull(check_sync_header(&t, "revision"));
    ck_assert_str_eq(check_sync_header(&t, "Accept"),
                     "application/vnd.api+json");
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/vnd.api+json");

    body = check_sync_body(&t);
    check_sync_str(body, "data.type", "profile");
    check_sync_str(body, "data.attributes.external_id", CHECK_SYNC_LEAD);
    check_sync_str(body, "data.attributes.email", "ada@example.com");
    check_sync_str(body, "data.attributes.phone_number", "+442071234567");
    check_sync_str(body, "data.attributes.first_name", "Ada");
    check_sync_str(body, "data.attributes.last_name", "Lovelace King");
    check_sync_str(body, "data.attributes.organization",
                   "Analytical Engines Ltd");
    check_sync_str(body, "data.attributes.properties.lead_id",
                   CHECK_SYNC_LEAD);
    check_sync_str(body, "data.attributes.properties.stage", "demo");
    check_sync_str(body, "data.attributes.properties.substage",
                   "demo_scheduled");
    check_sync_int(body, "data.attributes.properties.score", 40);
    check_sync_str(body, "data.attributes.properties.shop_domain",
                   "engines.example");
    check_sync_str(body, "data.attributes.properties.source", "affiliate");
    ck_assert_ptr_null(check_sync_get(body, "data.id"));
    yajl_tree_free(body);
    check_sync_done(&t);

    /* what the lead lacks is null, which clears it at Klaviyo */
    lead = check_sync_lead;
    lead.name = "Ada";
    lead.email = NULL;
    lead.phone = NULL;
    lead.company = NULL;

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    t.op.contact = &lead;
    check_sync_begin(&t, t.op.provider->upsert_contact);

    body = check_sync_body(&t);
    check_sync_str(body, "data.attributes.external_id", CHECK_SYNC_LEAD);
    check_sync_str(body, "data.attributes.email", NULL);
    check_sync_str(body, "data.attributes.phone_number", NULL);
    check_sync_str(body, "data.attributes.first_name", "Ada");
    check_sync_str(body, "data.attributes.last_name", NULL);
    check_sync_str(body, "data.attributes.organization", NULL);
    check_sync_str(body, "data.attributes.properties.shop_domain",
                   "engines.example");
    yajl_tree_free(body);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_klaviyo_upsert_answer)
{
    size_t        i;
    check_sync_t  t;

    static const unsigned  statuses[] = { 201, 200 };

    /* created, or updated: the profile's id either way */
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
        check_sync_begin(&t, t.op.provider->upsert_contact);

        ck_assert_int_eq(check_sync_reply(&t, statuses[i],
                             "{\"data\":{\"type\":\"profile\","
                             "\"id\":\"" CHECK_SYNC_PROFILE "\","
                             "\"attributes\":{\"email\":\"ada@example.com\"}"
                             "}}"),
                         CRM_OK);
        ck_assert_int_eq(t.step, CRM_OP_DONE);
        ck_assert_ptr_nonnull(t.op.contact_id);
        ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_PROFILE);
        check_sync_done(&t);
    }
}
END_TEST


START_TEST(test_sync_klaviyo_upsert_failed)
{
    size_t        i;
    check_sync_t  t;

    static const check_sync_failure_t  failures[] = {
        { CRM_HTTP_ANSWERED, 400,
          "{\"errors\":[{\"id\":\"e1\",\"status\":400,\"code\":\"invalid\","
          "\"title\":\"Invalid input.\",\"detail\":\"Invalid email address"
          "\",\"source\":{\"pointer\":\"/data/attributes/email\"}}]}",
          NULL, CRM_E_INVALID, 0, "(HTTP 400): invalid: Invalid email" },
        { CRM_HTTP_ANSWERED, 409,
          "{\"errors\":[{\"code\":\"duplicate_profile\"}]}", NULL,
          CRM_E_INVALID, 0, "duplicate_profile" },
        { CRM_HTTP_ANSWERED, 400, "<html>", NULL, CRM_E_INVALID, 0,
          "HTTP 400" },
        { CRM_HTTP_ANSWERED, 401,
          "{\"errors\":[{\"code\":\"not_authenticated\"}]}", NULL,
          CRM_E_UNAUTHORIZED, 0, "HTTP 401" },
        { CRM_HTTP_ANSWERED, 403,
          "{\"errors\":[{\"code\":\"permission_denied\"}]}", NULL,
          CRM_E_UNAUTHORIZED, 0, "HTTP 403" },
        { CRM_HTTP_ANSWERED, 429, "{\"errors\":[{\"code\":\"throttled\"}]}",
          check_sync_retry7, CRM_E_BAD_GATEWAY, 7, NULL },
        { CRM_HTTP_ANSWERED, 503, NULL, check_sync_retry30,
          CRM_E_BAD_GATEWAY, 30, "503" },
        { CRM_HTTP_ANSWERED, 408, NULL, NULL, CRM_E_BAD_GATEWAY, 0, NULL },
        { CRM_HTTP_ANSWERED, 500, "{\"secret\":\"s3\"}", NULL,
          CRM_E_BAD_GATEWAY, 0, "HTTP 500" },
        { CRM_HTTP_TIMED_OUT, 0, NULL, NULL, CRM_E_GATEWAY_TIMEOUT, 0,
          NULL },
        { CRM_HTTP_UNREACHABLE, 0, NULL, NULL, CRM_E_BAD_GATEWAY, 0, NULL },
        { CRM_HTTP_ANSWERED, 200, "<html>garbage", NULL, CRM_E_BAD_GATEWAY,
          0, NULL },
        { CRM_HTTP_ANSWERED, 201, "{\"data\":{\"type\":\"profile\"}}", NULL,
          CRM_E_BAD_GATEWAY, 0, "no profile id" },
        { CRM_HTTP_ANSWERED, 204, NULL, NULL, CRM_E_BAD_GATEWAY, 0, NULL }
    };

    for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
        check_sync_begin(&t, t.op.provider->upsert_contact);
        check_sync_failed(&t, &failures[i]);
        ck_assert_ptr_null(t.op.contact_id);
        ck_assert_ptr_null(strstr(t.err.message, "s3"));
        ck_assert_ptr_null(strstr(t.err.message, "<html>"));
        check_sync_done(&t);
    }
}
END_TEST


START_TEST(test_sync_klaviyo_event)
{
    char          part[64];
    size_t        i;
    yajl_val      body;
    crm_event_t   event;
    check_sync_t  t;

    static const struct {
        int64_t      cents;
        const char  *written;
    } values[] = {
        { 1250, "12.50" }, { 5, "0.05" }, { 0, "0.00" },
        { 123456789, "1234567.89" }
    };

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    t.op.contact_id = CHECK_SYNC_PROFILE;
    check_sync_begin(&t, t.op.provider->send_event);

    check_sync_request(&t, "POST", CHECK_SYNC_KLAVIYO "/api/events");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Klaviyo-API-Key pk_0123456789abcdef");
    ck_assert_ptr_nonnull(check_sync_header(&t, "revision"));
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/vnd.api+json");

    body = check_sync_body(&t);
    check_sync_str(body, "data.type", "event");
    check_sync_str(body, "data.attributes.metric.data.type", "metric");
    check_sync_str(body, "data.attributes.metric.data.attributes.name",
                   "Lead Created");
    check_sync_str(body, "data.attributes.profile.data.type", "profile");
    check_sync_str(body,
                   "data.attributes.profile.data.attributes.external_id",
                   CHECK_SYNC_LEAD);
    check_sync_str(body, "data.attributes.unique_id", CHECK_SYNC_EVENT);
    check_sync_str(body, "data.attributes.time", "2026-12-05T10:00:00Z");
    check_sync_str(body, "data.attributes.properties.lead_id",
                   CHECK_SYNC_LEAD);
    check_sync_str(body, "data.attributes.properties.stage", "demo");
    check_sync_int(body, "data.attributes.properties.score", 40);

    /* no amount: no value at all */
    ck_assert_ptr_null(check_sync_get(body, "data.attributes.value"));
    ck_assert_ptr_null(check_sync_get(body,
                                      "data.attributes.value_currency"));
    ck_assert_ptr_null(strstr(t.op.req.body, "\"value"));
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 202, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_PROFILE);
    check_sync_done(&t);

    /* an amount: written as it is, never through a double */
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        event = check_sync_event;
        event.value_cents = values[i].cents;

        check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
        t.op.event = &event;
        check_sync_begin(&t, t.op.provider->send_event);

        snprintf(part, sizeof(part), "\"value\":%s,", values[i].written);
        check_contains(t.op.req.body, part);

        body = check_sync_body(&t);
        check_sync_str(body, "data.attributes.value_currency", "USD");
        ck_assert(YAJL_IS_NUMBER(check_sync_get(body,
                                                "data.attributes.value")));
        yajl_tree_free(body);

        ck_assert_int_eq(check_sync_reply(&t, 202, ""), CRM_OK);
        ck_assert_int_eq(t.step, CRM_OP_DONE);
        check_sync_done(&t);
    }
}
END_TEST


START_TEST(test_sync_klaviyo_event_failed)
{
    size_t        i;
    check_sync_t  t;

    static const check_sync_failure_t  failures[] = {
        { CRM_HTTP_ANSWERED, 400,
          "{\"errors\":[{\"code\":\"invalid\",\"detail\":\"'time' is not "
          "a valid datetime\"}]}", NULL, CRM_E_INVALID, 0,
          "invalid: 'time' is not a valid datetime" },
        { CRM_HTTP_ANSWERED, 403, NULL, NULL, CRM_E_UNAUTHORIZED, 0,
          NULL },
        { CRM_HTTP_ANSWERED, 429, NULL, check_sync_retry7,
          CRM_E_BAD_GATEWAY, 7, NULL },
        { CRM_HTTP_ANSWERED, 200, "{}", NULL, CRM_E_BAD_GATEWAY, 0, NULL },
        { CRM_HTTP_TIMED_OUT, 0, NULL, NULL, CRM_E_GATEWAY_TIMEOUT, 0,
          NULL }
    };

    for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
        check_sync_begin(&t, t.op.provider->send_event);
        check_sync_failed(&t, &failures[i]);
        check_sync_done(&t);
    }
}
END_TEST


START_TEST(test_sync_klaviyo_get_contact)
{
    check_sync_t  t;

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    check_sync_begin(&t, t.op.provider->get_contact);

    check_sync_request(&t, "GET",
                       CHECK_SYNC_KLAVIYO "/api/profiles?filter=equals%28"
                       "external_id%2C%22" CHECK_SYNC_LEAD "%22%29");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Klaviyo-API-Key pk_0123456789abcdef");
    ck_assert_ptr_nonnull(check_sync_header(&t, "revision"));
    ck_assert_ptr_null(t.op.req.body);
    ck_assert_ptr_null(check_sync_header(&t, "Content-Type"));

    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"data\":[{\"type\":\"profile\","
                                      "\"id\":\"" CHECK_SYNC_PROFILE "\"}],"
                                      "\"links\":{\"next\":null}}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_PROFILE);
    check_sync_done(&t);

    /* none: no contact, even where one was known */
    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    t.op.contact_id = CHECK_SYNC_PROFILE;
    check_sync_begin(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"data\":[]}"), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    check_sync_begin(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"data\":{}}"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    check_sync_start(&t, "klaviyo", CHECK_SYNC_KLAVIYO_KEY, NULL, 0);
    check_sync_begin(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_upsert_create)
{
    yajl_val       body;
    check_sync_t   t;
    crm_contact_t  lead;

    lead = check_sync_lead;
    lead.email = "o'brien@example.com";

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact = &lead;

    /* no session yet: login() first */
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    /* then the Lead by email, a SOQL literal with its quote escaped */
    check_sync_request(&t, "GET",
                       CHECK_SYNC_SF_REST "/query?q=SELECT%20Id%20FROM%20"
                       "Lead%20WHERE%20Email%20%3D%20%27o%5C%27brien%40"
                       "example.com%27%20LIMIT%201");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_str_eq(check_sync_header(&t, "Accept"), "application/json");
    ck_assert_ptr_null(t.op.req.body);

    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"totalSize\":0,\"done\":true,"
                                      "\"records\":[]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    ck_assert_ptr_null(t.op.contact_id);

    /* none: a new Lead */
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Lead");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_uint_eq(check_sync_headers(&t, "Authorization"), 1);
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/json");

    body = check_sync_body(&t);
    check_sync_str(body, "FirstName", "Ada");
    check_sync_str(body, "LastName", "Lovelace King");
    check_sync_str(body, "Company", "Analytical Engines Ltd");
    check_sync_str(body, "Email", "o'brien@example.com");
    check_sync_str(body, "Phone", "+442071234567");
    check_sync_str(body, "Website", "engines.example");
    check_sync_str(body, "LeadSource", "Partner Referral");
    check_contains(check_sync_get(body, "Description")->u.string,
                   CHECK_SYNC_LEAD);
    ck_assert_ptr_null(check_sync_get(body, "Id"));
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"" CHECK_SYNC_SF_LEAD "\","
                                      "\"success\":true,\"errors\":[]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_upsert_found)
{
    yajl_val      body;
    check_sync_t  t;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_SF_REST "/query?q=SELECT%20Id%20FROM%20"
                       "Lead%20WHERE%20Email%20%3D%20%27ada%40example.com"
                       "%27%20LIMIT%201");

    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"totalSize\":1,\"done\":true,"
                                      "\"records\":[{\"attributes\":"
                                      "{\"type\":\"Lead\"},"
                                      "\"Id\":\"" CHECK_SYNC_SF_FOUND "\"}]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    /* found: that Lead updated */
    check_sync_request(&t, "PATCH",
                       CHECK_SYNC_SF_REST "/sobjects/Lead/"
                       CHECK_SYNC_SF_FOUND);
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/json");

    body = check_sync_body(&t);
    check_sync_str(body, "LastName", "Lovelace King");
    check_sync_str(body, "Email", "ada@example.com");
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_FOUND);
    check_sync_done(&t);

    /* a record without an Id is no answer */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"records\":[{}]}"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_upsert_known)
{
    check_sync_t   t;
    crm_contact_t  lead;

    /* a Lead named to us: updated without a find */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "PATCH",
                       CHECK_SYNC_SF_REST "/sobjects/Lead/"
                       CHECK_SYNC_SF_LEAD);

    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
    check_sync_done(&t);

    /* gone at Salesforce (merged, deleted): found by email, or made */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);

    ck_assert_int_eq(check_sync_reply(&t, 404,
                                      "[{\"errorCode\":\"NOT_FOUND\","
                                      "\"message\":\"not found\"}]"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_SF_REST "/query?q=SELECT%20Id%20FROM%20"
                       "Lead%20WHERE%20Email%20%3D%20%27ada%40example.com"
                       "%27%20LIMIT%201");

    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"records\":[]}"), CRM_OK);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Lead");

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"" CHECK_SYNC_SF_FOUND "\","
                                      "\"success\":true}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_FOUND);
    check_sync_done(&t);

    /* ... and a lead without an email is made at once */
    lead = check_sync_lead;
    lead.email = NULL;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact = &lead;
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);

    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Lead");
    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"" CHECK_SYNC_SF_FOUND "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_FOUND);
    check_sync_done(&t);

    /* as is one without an email nor a Lead named */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact = &lead;
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Lead");
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_upsert_external)
{
    size_t        i;
    yajl_val      body;
    check_sync_t  t;

    static const unsigned  statuses[] = { 201, 200 };

    /* the lead's own id keys the Lead: no find, even with a Lead known */
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                         CHECK_SYNC_SF_EXTERNAL, 0);
        t.op.contact_id = i == 0 ? NULL : CHECK_SYNC_SF_FOUND;
        check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);

        check_sync_request(&t, "PATCH",
                           CHECK_SYNC_SF_REST "/sobjects/Lead/"
                           "Gateway_Lead_Id__c/" CHECK_SYNC_LEAD);
        ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                         "Bearer " CHECK_SYNC_SF_SESSION1);
        ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                         "application/json");

        body = check_sync_body(&t);
        check_sync_str(body, "LastName", "Lovelace King");
        check_sync_str(body, "Company", "Analytical Engines Ltd");
        ck_assert_ptr_null(check_sync_get(body, "Gateway_Lead_Id__c"));
        yajl_tree_free(body);

        ck_assert_int_eq(check_sync_reply(&t, statuses[i],
                                          "{\"id\":\"" CHECK_SYNC_SF_LEAD
                                          "\",\"success\":true,"
                                          "\"errors\":[],\"created\":"
                                          "true}"),
                         CRM_OK);
        ck_assert_int_eq(t.step, CRM_OP_DONE);
        ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
        check_sync_done(&t);
    }

    /* several Leads with the lead's id: no retry will help */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                     CHECK_SYNC_SF_EXTERNAL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 300,
                                      "[\"/services/data/v59.0/sobjects/"
                                      "Lead/00Q1\",\"/services/data/v59.0/"
                                      "sobjects/Lead/00Q2\"]"),
                     CRM_E_INVALID);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    /* an answer without the record's id */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                     CHECK_SYNC_SF_EXTERNAL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 201, "{\"success\":true}"),
                     CRM_E_BAD_GATEWAY);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_lead_fields)
{
    char          *p;
    char           email[96], name[128], first[96];
    size_t         i;
    yajl_val       body;
    check_sync_t   t;
    crm_contact_t  lead;

    static const struct {
        const char  *source;
        const char  *lead_source;
    } sources[] = {
        { "affiliate", "Partner Referral" }, { "webhook", "Web" },
        { "manual", "Other" }, { "api", "Other" }
    };

    for (i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        lead = check_sync_lead;
        lead.source = sources[i].source;

        body = check_sync_sf_lead(&t, &lead);
        check_sync_str(body, "LeadSource", sources[i].lead_source);
        yajl_tree_free(body);
        check_sync_done(&t);
    }

    /* Company: the shop's domain, else what Web-to-Lead writes */
    lead = check_sync_lead;
    lead.company = NULL;
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "Company", "engines.example");
    yajl_tree_free(body);
    check_sync_done(&t);

    lead.company = "";
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "Company", "engines.example");
    yajl_tree_free(body);
    check_sync_done(&t);

    lead.company = NULL;
    lead.shop_domain = NULL;
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "Company", "[not provided]");
    check_sync_str(body, "Website", NULL);
    yajl_tree_free(body);
    check_sync_done(&t);

    /* a one-word name is LastName only; what the lead lacks is null */
    lead = check_sync_lead;
    lead.name = "Ada";
    lead.email = NULL;
    lead.phone = NULL;
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "FirstName", NULL);
    check_sync_str(body, "LastName", "Ada");
    check_sync_str(body, "Email", NULL);
    check_sync_str(body, "Phone", NULL);
    yajl_tree_free(body);
    check_sync_done(&t);

    /* FirstName holds 40 characters: 45 "É" cut between sequences */
    for (p = name, i = 0; i < 45; i++) {
        p = stpcpy(p, "É");
    }

    strcpy(p, " King");
    memcpy(first, name, 80);
    first[80] = '\0';

    lead = check_sync_lead;
    lead.name = name;
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "FirstName", first);
    check_sync_str(body, "LastName", "King");
    yajl_tree_free(body);
    check_sync_done(&t);

    /* Email holds 80: a longer one is left out, 80 is kept */
    memset(email, 'a', 68);
    strcpy(email + 68, "@example.com");
    ck_assert_uint_eq(strlen(email), 80);

    lead = check_sync_lead;
    lead.email = email;
    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "Email", email);
    yajl_tree_free(body);
    check_sync_done(&t);

    memset(email, 'a', 69);
    strcpy(email + 69, "@example.com");
    ck_assert_uint_eq(strlen(email), 81);

    body = check_sync_sf_lead(&t, &lead);
    check_sync_str(body, "Email", NULL);
    check_sync_str(body, "LastName", "Lovelace King");
    yajl_tree_free(body);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_get_contact)
{
    check_sync_t   t;
    crm_contact_t  lead;

    /* by email: the first Lead, or none (even where one was known) */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_SF_REST "/query?q=SELECT%20Id%20FROM%20"
                       "Lead%20WHERE%20Email%20%3D%20%27ada%40example.com"
                       "%27%20LIMIT%201");
    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"records\":[{\"Id\":\""
                                      CHECK_SYNC_SF_FOUND "\"}]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_FOUND);
    check_sync_done(&t);

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"records\":[]}"), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    /* neither an email nor an external id: nothing to look for */
    lead = check_sync_lead;
    lead.email = NULL;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact = &lead;
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    /* by the external id: 404 is none */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                     CHECK_SYNC_SF_EXTERNAL, 0);
    t.op.contact = &lead;
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_SF_REST "/sobjects/Lead/Gateway_Lead_Id__c/"
                       CHECK_SYNC_LEAD "?fields=Id");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_int_eq(check_sync_reply(&t, 404,
                                      "[{\"errorCode\":\"NOT_FOUND\"}]"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                     CHECK_SYNC_SF_EXTERNAL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"attributes\":{\"type\":\"Lead\"},"
                                      "\"Id\":\"" CHECK_SYNC_SF_LEAD "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
    check_sync_done(&t);

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"done\":true}"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_session_expired)
{
    char          url[512], sent[2048];
    check_sync_t  t;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);

    snprintf(url, sizeof(url), "%s", t.op.req.url);
    snprintf(sent, sizeof(sent), "%s", t.op.req.body);

    /* the session expired: login() again ... */
    ck_assert_int_eq(check_sync_reply(&t, 401,
                                      "[{\"message\":\"Session expired or "
                                      "invalid\",\"errorCode\":"
                                      "\"INVALID_SESSION_ID\"}]"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_LOGIN);
    ck_assert_ptr_null(check_sync_header(&t, "Authorization"));

    /* ... then the same request, with the new session */
    ck_assert_int_eq(check_sync_sf_login(&t, CHECK_SYNC_SF_SERVER,
                                         CHECK_SYNC_SF_SESSION2), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "PATCH", url);
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION2);
    ck_assert_uint_eq(check_sync_headers(&t, "Authorization"), 1);
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/json");
    ck_assert_ptr_nonnull(t.op.req.body);
    ck_assert_str_eq(t.op.req.body, sent);
    ck_assert_uint_eq(t.op.req.body_len, strlen(sent));

    /*
     * once only: the session a login just gave refused too is the
     * provider failing (the login took the credentials), tried later
     */
    ck_assert_int_eq(check_sync_reply(&t, 401,
                                      "[{\"message\":\"Session expired or "
                                      "invalid\",\"errorCode\":"
                                      "\"INVALID_SESSION_ID\"}]"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_int_eq(t.err.code, CRM_E_BAD_GATEWAY);
    check_contains(t.err.message, "refused the session its login gave");
    ck_assert_ptr_null(strstr(t.err.message, CHECK_SYNC_SF_SESSION1));
    ck_assert_ptr_null(strstr(t.err.message, CHECK_SYNC_SF_SESSION2));
    check_sync_done(&t);

    /* in a find, and the rest of the operation then uses the new one */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    snprintf(url, sizeof(url), "%s", t.op.req.url);

    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_LOGIN);
    ck_assert_int_eq(check_sync_sf_login(&t, CHECK_SYNC_SF_SERVER,
                                         CHECK_SYNC_SF_SESSION2), CRM_OK);
    check_sync_request(&t, "GET", url);
    ck_assert_ptr_null(t.op.req.body);
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION2);

    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"records\":[]}"), CRM_OK);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Lead");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION2);

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"" CHECK_SYNC_SF_LEAD "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_login_refused)
{
    check_sync_t  t;

    /* refused credentials are the integration's, not the data's */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_begin(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_LOGIN);

    ck_assert_int_eq(check_sync_sf_fault(&t, "INVALID_LOGIN"),
                     CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_int_eq(t.err.code, CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(t.err.field, "");
    check_contains(t.err.message, "INVALID_LOGIN");
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    /* and so in the log-in again */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->send_event);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Task");

    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_LOGIN);
    ck_assert_int_eq(check_sync_sf_fault(&t, "PASSWORD_LOCKOUT"),
                     CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.err.field, "");
    check_sync_done(&t);

    /* Salesforce failing the login is not the credentials */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_begin(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_sf_fault(&t, "SERVER_UNAVAILABLE"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_begin(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_answer(&t, CRM_HTTP_TIMED_OUT, 0, NULL,
                                       NULL),
                     CRM_E_GATEWAY_TIMEOUT);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_event)
{
    size_t        i;
    yajl_val      body;
    crm_event_t   event;
    check_sync_t  t;
    const char   *description;

    static const unsigned  statuses[] = { 201, 200 };

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_sf_logged_in(&t, t.op.provider->send_event);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Task");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_str_eq(check_sync_header(&t, "Content-Type"),
                     "application/json");

    body = check_sync_body(&t);
    check_sync_str(body, "Subject", "Lead Created");
    check_sync_str(body, "WhoId", CHECK_SYNC_SF_LEAD);
    check_sync_str(body, "Status", "Completed");
    check_sync_str(body, "TaskSubtype", "Task");
    check_sync_str(body, "ActivityDate", "2026-12-05");
    description = check_sync_get(body, "Description")->u.string;
    check_contains(description, CHECK_SYNC_EVENT);
    check_contains(description, CHECK_SYNC_LEAD);
    ck_assert_ptr_null(strstr(description, "amount"));
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"00T5e00000XyZwVAAR\","
                                      "\"success\":true,\"errors\":[]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_SF_LEAD);
    check_sync_done(&t);

    /* an amount, in the Task's description */
    event = check_sync_event;
    event.value_cents = 1250;

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    t.op.event = &event;
    check_sync_sf_logged_in(&t, t.op.provider->send_event);
    body = check_sync_body(&t);
    check_contains(check_sync_get(body, "Description")->u.string,
                   "12.50 USD");
    yajl_tree_free(body);
    check_sync_done(&t);

    /* the event's id keys the Task: created or updated */
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                         "{\"task_external_id_field\":"
                         "\"Gateway_Event_Id__c\"}", 0);
        t.op.contact_id = CHECK_SYNC_SF_LEAD;
        check_sync_sf_logged_in(&t, t.op.provider->send_event);

        check_sync_request(&t, "PATCH",
                           CHECK_SYNC_SF_REST "/sobjects/Task/"
                           "Gateway_Event_Id__c/" CHECK_SYNC_EVENT);
        ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                         "Bearer " CHECK_SYNC_SF_SESSION1);

        body = check_sync_body(&t);
        check_sync_str(body, "Subject", "Lead Created");
        check_sync_str(body, "WhoId", CHECK_SYNC_SF_LEAD);
        ck_assert_ptr_null(check_sync_get(body, "Gateway_Event_Id__c"));
        yajl_tree_free(body);

        ck_assert_int_eq(check_sync_reply(&t, statuses[i],
                                          "{\"id\":\"00T5e00000XyZwVAAR\","
                                          "\"success\":true,\"created\":"
                                          "false}"),
                         CRM_OK);
        ck_assert_int_eq(t.step, CRM_OP_DONE);
        check_sync_done(&t);
    }
}
END_TEST


START_TEST(test_sync_sf_event_failed)
{
    size_t  i;

    static const check_sync_failure_t  failures[] = {
        { CRM_HTTP_ANSWERED, 403,
          "[{\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\",\"message\":"
          "\"TotalRequests Limit exceeded.\"}]", NULL,
          CRM_E_BAD_GATEWAY, 0, "limit" },
        { CRM_HTTP_ANSWERED, 400,
          "[{\"errorCode\":\"REQUIRED_FIELD_MISSING\",\"message\":"
          "\"Required fields are missing: [Subject]\",\"fields\":"
          "[\"Subject\"]}]", NULL, CRM_E_INVALID, 0,
          "(HTTP 400): REQUIRED_FIELD_MISSING: Required fields are missing: "
          "[Subject]" },
        { CRM_HTTP_ANSWERED, 400, "<html>Bad Request</html>", NULL,
          CRM_E_INVALID, 0, "HTTP 400" },
        { CRM_HTTP_ANSWERED, 404,
          "[{\"errorCode\":\"NOT_FOUND\",\"message\":\"The requested "
          "resource does not exist\"}]", NULL, CRM_E_INVALID, 0,
          "NOT_FOUND" },
        { CRM_HTTP_ANSWERED, 403,
          "[{\"errorCode\":\"INSUFFICIENT_ACCESS\",\"message\":\"no\"}]",
          NULL, CRM_E_UNAUTHORIZED, 0, "INSUFFICIENT_ACCESS" },
        { CRM_HTTP_ANSWERED, 300, "[]", NULL, CRM_E_INVALID, 0, NULL },
        { CRM_HTTP_ANSWERED, 429, NULL, check_sync_retry7,
          CRM_E_BAD_GATEWAY, 7, NULL },
        { CRM_HTTP_ANSWERED, 503, NULL, check_sync_retry30,
          CRM_E_BAD_GATEWAY, 30, NULL },
        { CRM_HTTP_ANSWERED, 500,
          "[{\"errorCode\":\"UNKNOWN_EXCEPTION\"}]", NULL,
          CRM_E_BAD_GATEWAY, 0, "HTTP 500" },
        { CRM_HTTP_ANSWERED, 204, NULL, NULL, CRM_E_BAD_GATEWAY, 0, NULL },
        { CRM_HTTP_TIMED_OUT, 0, NULL, NULL, CRM_E_GATEWAY_TIMEOUT, 0,
          NULL },
        { CRM_HTTP_REFUSED, 0, NULL, NULL, CRM_E_UNAUTHORIZED, 0,
          "the test said so" }
    };

    for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        check_sync_sf_event_failed(&failures[i]);
    }
}
END_TEST


START_TEST(test_sync_sf_reuse)
{
    char         *saved;
    check_sync_t  t;

    /* the operations that follow on the op use its session */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    check_sync_sf_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"records\":[]}"), CRM_OK);
    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"id\":\"" CHECK_SYNC_SF_FOUND "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);

    check_sync_begin(&t, t.op.provider->send_event);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Task");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    ck_assert_ptr_nonnull(strstr(t.op.req.body,
                                 "\"WhoId\":\"" CHECK_SYNC_SF_FOUND "\""));
    ck_assert_int_eq(check_sync_reply(&t, 201, "{\"id\":\"00T1\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);

    /* and a new op of the same credentials, given the saved session */
    saved = t.op.provider->session_save(&t.op);
    ck_assert_ptr_nonnull(saved);
    check_sync_done(&t);

    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS, NULL, 0);
    ck_assert_int_eq(t.op.provider->session_load(&t.op, "no newline"), -1);
    ck_assert_int_eq(t.op.provider->has_session(&t.op), 0);
    ck_assert_int_eq(t.op.provider->session_load(&t.op, saved), 0);
    explicit_bzero(saved, strlen(saved));
    free(saved);

    t.op.contact_id = CHECK_SYNC_SF_FOUND;
    check_sync_begin(&t, t.op.provider->send_event);
    check_sync_request(&t, "POST", CHECK_SYNC_SF_REST "/sobjects/Task");
    ck_assert_str_eq(check_sync_header(&t, "Authorization"),
                     "Bearer " CHECK_SYNC_SF_SESSION1);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_sf_stand_in)
{
    check_sync_t  t;

    /* a local stand-in, through the allow list, is its own instance */
    check_sync_start(&t, "salesforce", CHECK_SYNC_SF_CREDS,
                     "{\"login_url\":\"http://127.0.0.1:8080/\"}", 1);
    t.op.contact_id = CHECK_SYNC_SF_LEAD;
    check_sync_begin(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "POST",
                       "http://127.0.0.1:8080/services/Soap/u/59.0");

    ck_assert_int_eq(check_sync_sf_login(&t,
                         "http://127.0.0.1:8080/services/Soap/u/59.0/00D",
                         CHECK_SYNC_SF_SESSION1),
                     CRM_OK);
    check_sync_request(&t, "PATCH",
                       "http://127.0.0.1:8080/services/data/v59.0/"
                       "sobjects/Lead/" CHECK_SYNC_SF_LEAD);
    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_upsert_create)
{
    yajl_val       body;
    check_sync_t   t;
    crm_contact_t  lead;

    lead = check_sync_lead;
    lead.email = "x'y@example.com";

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact = &lead;

    /* no session yet: the login first */
    check_sync_begin(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "POST", CHECK_SYNC_CREATIO_LOGIN);
    ck_assert_ptr_null(check_sync_header(&t, "Cookie"));

    ck_assert_int_eq(check_sync_creatio_login(&t, check_sync_cookies1),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    /* the Contact the lead's own id keys */
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_LEAD ")"
                       "?$select=Id");
    ck_assert_str_eq(check_sync_header(&t, "Cookie"),
                     "BPMLOADER=ldr1; .ASPXAUTH=auth1; BPMCSRF=csrf1; "
                     "UserName=83|117");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");
    ck_assert_str_eq(check_sync_header(&t, "ForceUseSession"), "true");
    ck_assert_str_eq(check_sync_header(&t, "Accept"), "application/json");
    ck_assert_ptr_null(t.op.req.body);

    ck_assert_int_eq(check_sync_reply(&t, 404,
                                      "{\"error\":{\"code\":\"\","
                                      "\"message\":\"Not found\"}}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    /* none: by Email, an OData literal with its quote doubled */
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact?$filter=Email%20eq%20%27x"
                       "%27%27y%40example.com%27&$select=Id&$top=1");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");
    ck_assert_ptr_null(t.op.req.body);

    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"@odata.context\":\"https://acme."
                                      "creatio.com/0/odata/$metadata#"
                                      "Contact(Id)\",\"value\":[]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    /* none either: a new Contact with the lead's id */
    check_sync_request(&t, "POST", CHECK_SYNC_ODATA "/Contact");
    check_contains(check_sync_header(&t, "Content-Type"), "application/json");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");
    ck_assert_ptr_nonnull(check_sync_header(&t, "Cookie"));

    body = check_sync_body(&t);
    check_sync_str(body, "Id", CHECK_SYNC_LEAD);
    check_sync_str(body, "Name", "Ada Lovelace King");
    check_sync_str(body, "Email", "x'y@example.com");
    check_sync_str(body, "MobilePhone", "+442071234567");
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"Id\":\"" CHECK_SYNC_LEAD "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_LEAD);
    check_sync_done(&t);

    /* a lead without an email or a phone: made at once, with "" */
    lead = check_sync_lead;
    lead.email = NULL;
    lead.phone = NULL;

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact = &lead;
    check_sync_creatio_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);

    check_sync_request(&t, "POST", CHECK_SYNC_ODATA "/Contact");
    body = check_sync_body(&t);
    check_sync_str(body, "Id", CHECK_SYNC_LEAD);
    check_sync_str(body, "Email", "");
    check_sync_str(body, "MobilePhone", "");
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_LEAD);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_upsert_found)
{
    yajl_val      body;
    check_sync_t  t;

    /* by the lead's id: updated, the Id not sent again */
    check_sync_creatio_patch(&t);
    check_contains(check_sync_header(&t, "Content-Type"), "application/json");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");

    body = check_sync_body(&t);
    ck_assert_ptr_null(check_sync_get(body, "Id"));
    check_sync_str(body, "Name", "Ada Lovelace King");
    check_sync_str(body, "Email", "ada@example.com");
    check_sync_str(body, "MobilePhone", "+442071234567");
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_LEAD);
    check_sync_done(&t);

    /* by Email: that Contact updated */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact?$filter=Email%20eq%20%27ada"
                       "%40example.com%27&$select=Id&$top=1");
    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"value\":[{\"Id\":\""
                                      CHECK_SYNC_CONTACT "\"}]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "PATCH",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_CONTACT ")");
    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_CONTACT);
    check_sync_done(&t);

    /* a Contact known by its Id is asked for by it */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_CONTACT;
    check_sync_creatio_logged_in(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_CONTACT ")"
                       "?$select=Id");
    check_sync_done(&t);

    /* ... but an id that is no GUID never goes into the path */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = "1)?$x=(";
    check_sync_creatio_logged_in(&t, t.op.provider->upsert_contact);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_LEAD ")"
                       "?$select=Id");
    check_sync_done(&t);

    /* a Contact whose Id is no GUID is no answer */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"Id\":\"../x\"}"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_get_contact)
{
    check_sync_t   t;
    crm_contact_t  lead;

    /* found by the lead's id: done, nothing written */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Contact(" CHECK_SYNC_LEAD ")"
                       "?$select=Id");
    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"Id\":\"" CHECK_SYNC_LEAD "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_LEAD);
    check_sync_done(&t);

    /* by Email: found, or not */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    ck_assert_str_eq(t.op.req.method, "GET");
    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"value\":[{\"Id\":\""
                                      CHECK_SYNC_CONTACT "\"}]}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_CONTACT);
    check_sync_done(&t);

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"value\":[]}"), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    /* no email: none after the first */
    lead = check_sync_lead;
    lead.email = NULL;

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact = &lead;
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(t.op.contact_id);
    check_sync_done(&t);

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    ck_assert_int_eq(check_sync_reply(&t, 200, "{\"odata\":1}"),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_event)
{
    yajl_val      body;
    crm_event_t   event;
    check_sync_t  t;
    const char   *notes;

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_CONTACT;
    check_sync_creatio_logged_in(&t, t.op.provider->send_event);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    check_sync_request(&t, "POST", CHECK_SYNC_ODATA "/Activity");
    check_contains(check_sync_header(&t, "Content-Type"), "application/json");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");
    ck_assert_ptr_nonnull(check_sync_header(&t, "Cookie"));

    body = check_sync_body(&t);
    check_sync_str(body, "Id", CHECK_SYNC_EVENT);
    check_sync_str(body, "Title", "Lead Created");
    check_sync_str(body, "StartDate", "2026-12-05T10:00:00Z");
    check_sync_str(body, "DueDate", "2026-12-05T10:00:00Z");
    check_sync_str(body, "ContactId", CHECK_SYNC_CONTACT);
    notes = check_sync_get(body, "Notes")->u.string;
    check_contains(notes, CHECK_SYNC_EVENT);
    check_contains(notes, CHECK_SYNC_LEAD);
    ck_assert_ptr_null(strstr(notes, "amount"));
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201,
                                      "{\"Id\":\"" CHECK_SYNC_EVENT "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    /* resent: asked for first, and not made twice */
    event = check_sync_event;
    event.resent = 1;
    event.value_cents = 1250;

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_CONTACT;
    t.op.event = &event;
    check_sync_creatio_logged_in(&t, t.op.provider->send_event);
    check_sync_request(&t, "GET",
                       CHECK_SYNC_ODATA "/Activity(" CHECK_SYNC_EVENT ")"
                       "?$select=Id");
    ck_assert_ptr_null(t.op.req.body);
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf1");

    ck_assert_int_eq(check_sync_reply(&t, 200,
                                      "{\"Id\":\"" CHECK_SYNC_EVENT "\"}"),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_CONTACT;
    t.op.event = &event;
    check_sync_creatio_logged_in(&t, t.op.provider->send_event);
    ck_assert_int_eq(check_sync_reply(&t, 404, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);

    check_sync_request(&t, "POST", CHECK_SYNC_ODATA "/Activity");
    body = check_sync_body(&t);
    check_sync_str(body, "Id", CHECK_SYNC_EVENT);
    check_contains(check_sync_get(body, "Notes")->u.string, "12.50 USD");
    yajl_tree_free(body);

    ck_assert_int_eq(check_sync_reply(&t, 201, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_session_expired)
{
    char          url[512], sent[2048];
    check_sync_t  t;

    check_sync_creatio_patch(&t);
    snprintf(url, sizeof(url), "%s", t.op.req.url);
    snprintf(sent, sizeof(sent), "%s", t.op.req.body);

    /* the session expired: logged in again ... */
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "POST", CHECK_SYNC_CREATIO_LOGIN);
    ck_assert_ptr_null(check_sync_header(&t, "Cookie"));
    ck_assert_ptr_null(check_sync_header(&t, "BPMCSRF"));

    /* ... and the same request again, with the new session */
    ck_assert_int_eq(check_sync_creatio_login(&t, check_sync_cookies2),
                     CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_MORE);
    check_sync_request(&t, "PATCH", url);
    ck_assert_str_eq(check_sync_header(&t, "Cookie"),
                     "BPMLOADER=ldr2; .ASPXAUTH=auth2; BPMCSRF=csrf2");
    ck_assert_str_eq(check_sync_header(&t, "BPMCSRF"), "csrf2");
    ck_assert_uint_eq(check_sync_headers(&t, "Cookie"), 1);
    ck_assert_uint_eq(check_sync_headers(&t, "BPMCSRF"), 1);
    ck_assert_ptr_nonnull(t.op.req.body);
    ck_assert_str_eq(t.op.req.body, sent);
    check_contains(check_sync_header(&t, "Content-Type"), "application/json");

    ck_assert_int_eq(check_sync_reply(&t, 204, NULL), CRM_OK);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.op.contact_id, CHECK_SYNC_LEAD);
    check_sync_done(&t);

    /* once only: then the provider is failing, not the credentials */
    check_sync_creatio_patch(&t);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    ck_assert_int_eq(check_sync_creatio_login(&t, check_sync_cookies2),
                     CRM_OK);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_ptr_null(strstr(t.err.message, "csrf"));
    ck_assert_ptr_null(strstr(t.err.message, "auth2"));
    check_sync_done(&t);

    /* the login itself refused */
    check_sync_creatio_patch(&t);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    ck_assert_int_eq(check_sync_answer(&t, CRM_HTTP_ANSWERED, 200,
                                       "{\"Code\":1,\"Message\":"
                                       "\"Invalid username or password.\"}",
                                       check_sync_cookies2),
                     CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    ck_assert_str_eq(t.err.field, "");
    check_contains(t.err.message, "Invalid username or password.");
    check_sync_done(&t);

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_begin(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    /* a new login without BPMCSRF: the old session's value is not kept */
    check_sync_creatio_patch(&t);
    ck_assert_int_eq(check_sync_reply(&t, 401, NULL), CRM_OK);
    ck_assert_int_eq(check_sync_answer(&t, CRM_HTTP_ANSWERED, 200,
                                       "{\"Code\":0}",
                                       check_sync_cookies_no_csrf),
                     CRM_E_BAD_GATEWAY);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);

    /* an instance where calls may not go, at the login: the user's */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_begin(&t, t.op.provider->upsert_contact);
    ck_assert_int_eq(check_sync_answer(&t, CRM_HTTP_REFUSED, 0, NULL, NULL),
                     CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(t.step, CRM_OP_DONE);
    check_sync_done(&t);
}
END_TEST


START_TEST(test_sync_creatio_failed)
{
    size_t        i;
    check_sync_t  t;

    static const check_sync_failure_t  failures[] = {
        { CRM_HTTP_ANSWERED, 400,
          "{\"error\":{\"code\":\"\",\"message\":\"The property 'X' does "
          "not exist\"}}", NULL, CRM_E_INVALID, 0,
          "(HTTP 400): The property 'X' does not exist" },
        { CRM_HTTP_ANSWERED, 400, "Bad Request", NULL, CRM_E_INVALID, 0,
          "HTTP 400" },
        { CRM_HTTP_ANSWERED, 403, NULL, NULL, CRM_E_UNAUTHORIZED, 0,
          "HTTP 403" },
        { CRM_HTTP_REFUSED, 0, NULL, NULL, CRM_E_UNAUTHORIZED, 0,
          "the test said so" },
        { CRM_HTTP_ANSWERED, 429, NULL, check_sync_retry7,
          CRM_E_BAD_GATEWAY, 7, NULL },
        { CRM_HTTP_ANSWERED, 503, NULL, check_sync_retry30,
          CRM_E_BAD_GATEWAY, 30, NULL },
        { CRM_HTTP_ANSWERED, 500,
          "{\"error\":{\"message\":\"s3cret stack\"}}", NULL,
          CRM_E_BAD_GATEWAY, 0, "HTTP 500" },
        { CRM_HTTP_ANSWERED, 200, "{}", NULL, CRM_E_BAD_GATEWAY, 0, NULL },
        { CRM_HTTP_TIMED_OUT, 0, NULL, NULL, CRM_E_GATEWAY_TIMEOUT, 0,
          NULL },
        { CRM_HTTP_FAILED, 0, NULL, NULL, CRM_E_BAD_GATEWAY, 0, NULL }
    };

    /* at the update */
    for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        check_sync_creatio_patch(&t);
        check_sync_failed(&t, &failures[i]);
        ck_assert_ptr_null(strstr(t.err.message, "s3cret"));
        ck_assert_ptr_null(strstr(t.err.message, "csrf1"));
        check_sync_done(&t);
    }

    /* at the find */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    check_sync_failed(&t, &failures[3]);
    check_sync_done(&t);

    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    check_sync_creatio_logged_in(&t, t.op.provider->get_contact);
    check_sync_failed(&t, &failures[5]);
    check_sync_done(&t);

    /* at the event */
    check_sync_start(&t, "creatio", CHECK_SYNC_CREATIO_CREDS, NULL, 0);
    t.op.contact_id = CHECK_SYNC_CONTACT;
    check_sync_creatio_logged_in(&t, t.op.provider->send_event);
    check_sync_failed(&t, &failures[0]);
    check_sync_done(&t);
}
END_TEST


static Suite *
check_provider_sync_suite(void)
{
    Suite  *s;
    TCase  *tc;

    /* before any fork, in the main thread */
    crm_provider_init();

    s = crm_check_suite("provider_sync", &tc);

    tcase_add_test(tc, test_sync_clip);
    tcase_add_test(tc, test_sync_split_name);
    tcase_add_test(tc, test_sync_query_escape);
    tcase_add_test(tc, test_sync_set_header);
    tcase_add_test(tc, test_sync_klaviyo_upsert_request);
    tcase_add_test(tc, test_sync_klaviyo_upsert_answer);
    tcase_add_test(tc, test_sync_klaviyo_upsert_failed);
    tcase_add_test(tc, test_sync_klaviyo_event);
    tcase_add_test(tc, test_sync_klaviyo_event_failed);
    tcase_add_test(tc, test_sync_klaviyo_get_contact);
    tcase_add_test(tc, test_sync_sf_upsert_create);
    tcase_add_test(tc, test_sync_sf_upsert_found);
    tcase_add_test(tc, test_sync_sf_upsert_known);
    tcase_add_test(tc, test_sync_sf_upsert_external);
    tcase_add_test(tc, test_sync_sf_lead_fields);
    tcase_add_test(tc, test_sync_sf_get_contact);
    tcase_add_test(tc, test_sync_sf_session_expired);
    tcase_add_test(tc, test_sync_sf_login_refused);
    tcase_add_test(tc, test_sync_sf_event);
    tcase_add_test(tc, test_sync_sf_event_failed);
    tcase_add_test(tc, test_sync_sf_reuse);
    tcase_add_test(tc, test_sync_sf_stand_in);
    tcase_add_test(tc, test_sync_creatio_upsert_create);
    tcase_add_test(tc, test_sync_creatio_upsert_found);
    tcase_add_test(tc, test_sync_creatio_get_contact);
    tcase_add_test(tc, test_sync_creatio_event);
    tcase_add_test(tc, test_sync_creatio_session_expired);
    tcase_add_test(tc, test_sync_creatio_failed);

    return s;
}


CRM_CHECK_MAIN(check_provider_sync_suite)
