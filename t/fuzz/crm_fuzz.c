/*
 * libFuzzer target for every core parser that reads client input.  The
 * first byte picks the parser, the rest is its input; ASan and UBSan turn
 * any memory or arithmetic error into a failure.  "./build.sh test" runs
 * it for a bounded time from the seeds in t/fuzz/seeds.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crm_base64.h"
#include "crm_bot.h"
#include "crm_day.h"
#include "crm_form.h"
#include "crm_ids.h"
#include "crm_json.h"
#include "crm_jwk.h"
#include "crm_jwt.h"
#include "crm_origin.h"
#include "crm_page.h"
#include "crm_router.h"
#include "crm_sig.h"
#include "crm_url.h"
#include "crm_validate.h"


typedef struct {
    crm_json_value_t  name;
    crm_json_value_t  active;
    crm_json_value_t  count;
    crm_json_value_t  notes;
} crm_fuzz_body_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void crm_fuzz_json(crm_str_t in);
static void crm_fuzz_jwt(crm_str_t in);
static void crm_fuzz_form(crm_str_t in);
static void crm_fuzz_text(crm_str_t in);
static void crm_fuzz_route(crm_str_t in);
static void crm_fuzz_url(crm_str_t in);
static void crm_fuzz_ids(crm_str_t in);
static void crm_fuzz_sig(crm_str_t in);
static void crm_fuzz_jwk(crm_str_t in);
static void crm_fuzz_origin(crm_str_t in);


static const crm_json_field_t  crm_fuzz_fields[] = {
    { .name = "name", .kind = CRM_JSON_STRING, .required = 1, .min_len = 1,
      .max_len = 200, .offset = offsetof(crm_fuzz_body_t, name) },
    { .name = "active", .kind = CRM_JSON_BOOL,
      .offset = offsetof(crm_fuzz_body_t, active) },
    { .name = "count", .kind = CRM_JSON_INT, .nullable = 1, .min_num = 0,
      .max_num = 1000, .offset = offsetof(crm_fuzz_body_t, count) },
    { .name = "notes", .kind = CRM_JSON_STRING, .multiline = 1,
      .max_len = 2000, .offset = offsetof(crm_fuzz_body_t, notes) },
};

static const crm_route_t  crm_fuzz_routes[] = {
    { CRM_M_GET, "/auth/me", NULL },
    { CRM_M_POST, "/leads/", NULL },
    { CRM_M_GET, "/leads/{id}/history", NULL },
    { CRM_M_PUT, "/leads/{id}/stage", NULL },
    { CRM_M_PATCH, "/admin/users/{id}", NULL },
};

static const unsigned char  crm_fuzz_key[] =
    "0123456789abcdef0123456789abcdef";

/* the key of the sig seed, so that the fuzzer starts from a valid MAC */
static const unsigned char  crm_fuzz_sig_key[] = "whsec_test";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_str_t  in;

    if (size == 0) {
        return 0;
    }

    in.data = (const char *) data + 1;
    in.len = size - 1;

    switch (data[0] % 10) {

    case 0:
        crm_fuzz_json(in);
        break;

    case 1:
        crm_fuzz_jwt(in);
        break;

    case 2:
        crm_fuzz_form(in);
        break;

    case 3:
        crm_fuzz_text(in);
        break;

    case 4:
        crm_fuzz_route(in);
        break;

    case 5:
        crm_fuzz_url(in);
        break;

    case 6:
        crm_fuzz_ids(in);
        break;

    case 7:
        crm_fuzz_sig(in);
        break;

    case 9:
        crm_fuzz_jwk(in);
        break;

    default:
        (void) crm_bot_user_agent(in);
        crm_fuzz_origin(in);
        break;
    }

    return 0;
}


static void
crm_fuzz_json(crm_str_t in)
{
    yajl_val           root;
    crm_error_t        err;
    crm_fuzz_body_t    body;
    crm_json_limits_t  limits = { 64 * 1024, 32 };

    if (crm_json_parse(in.data, in.len, &limits, &root, &err) != CRM_OK) {
        return;
    }

    memset(&body, 0, sizeof(body));
    (void) crm_json_decode_table(root, crm_fuzz_fields, &body, &err);

    yajl_tree_free(root);
}


static void
crm_fuzz_jwt(crm_str_t in)
{
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    char               alg[8];
    crm_jwt_verify_t   v = {
        .key = crm_fuzz_key, .key_len = sizeof(crm_fuzz_key) - 1,
        .issuer = "crm-gateway", .audience = "crm-api",
        .now = 1795236119, .leeway = 30
    };

    (void) crm_jwt_verify_hs256(in.data, in.len, &v, &claims, &err);

    /* an ID token's path: the header, its kid, no key to find */
    crm_jwt_header_alg(in.data, in.len, alg, sizeof(alg));
    v.identity = 1;
    (void) crm_jwt_verify_rs256(in.data, in.len, &v, &claims, &err);
}


static void
crm_fuzz_jwk(crm_str_t in)
{
    crm_error_t     err;
    crm_jwk_set_t  *set;

    if (crm_jwk_set_parse(in.data, in.len, &set, &err) == CRM_OK) {
        crm_jwk_set_free(set);
    }
}


static void
crm_fuzz_form(crm_str_t in)
{
    int          found;
    char         value[64];
    crm_page_t   page;
    crm_error_t  err;

    static const char *const  names[] = {
        "username", "password", "limit", "cursor", NULL
    };

    (void) crm_form_check_names(in, names, &err);
    (void) crm_form_get(in, "username", value, sizeof(value), &found, &err);
    (void) crm_page_parse(in, in.len & 1, &page, &err);
}


static void
crm_fuzz_text(crm_str_t in)
{
    char           email[CRM_EMAIL_MAX + 1], printable[64];
    size_t         len;
    crm_error_t    err;
    crm_cursor_t   cursor;
    unsigned char  raw[256];

    (void) crm_email_normalize(in, "email", email, &err);
    (void) crm_text_check(in, "name", 1, 200, 0, &err);
    (void) crm_uuid_valid(in);
    (void) crm_utf8_length(in);
    (void) crm_text_printable(in, printable, sizeof(printable));
    (void) crm_cursor_decode(in, &cursor, &err);

    if (in.len <= sizeof(raw) * 4 / 3) {
        (void) crm_base64url_decode(in.data, in.len, raw, &len);
    }
}


static void
crm_fuzz_route(crm_str_t in)
{
    char                buf[128];
    unsigned            allowed;
    crm_route_match_t   match;
    const crm_route_t  *route;

    (void) crm_router_match(crm_fuzz_routes,
                            sizeof(crm_fuzz_routes)
                            / sizeof(crm_fuzz_routes[0]),
                            CRM_M_GET, in, &route, &match, &allowed);
    (void) crm_router_allow_header(in.len & 0x3f, buf, sizeof(buf));
}


/* a target that passes the check must fit the size the header promises */
static void
crm_fuzz_url(crm_str_t in)
{
    char    out[crm_url_redirect_size(CRM_URL_MAX)];
    size_t  n;

    static const char  link[] = "0123456789Ok";
    static const char  click[] = "0123456789Ok1r31eqAbCdEfGh";

    if (crm_url_check_target(in) != NULL) {
        return;
    }

    n = crm_url_redirect(in, link, click, out, sizeof(out));

    if (n == 0 || n >= crm_url_redirect_size(in.len) || out[n] != '\0') {
        abort();
    }

    /* too small a buffer is refused, never overrun */
    if (crm_url_redirect(in, link, click, out, n) != 0) {
        abort();
    }
}


/* what parses comes back the same through the generator */
static void
crm_fuzz_ids(crm_str_t in)
{
    char     link[CRM_LINK_ID_LEN + 1], click[CRM_CLICK_ID_LEN + 1];
    char     again[CRM_LINK_ID_LEN + 1];
    int64_t  ts, ts_again;

    static const crm_link_key_t  key = {
        (const unsigned char *) "the fuzzer's link id key, 32 bytes", 34
    };

    (void) crm_link_id_valid(&key, in.data, in.len);

    if (!crm_click_id_parse(&key, in.data, in.len, link, &ts)) {
        return;
    }

    if (!crm_link_id_valid(&key, link, CRM_LINK_ID_LEN)
        || crm_click_id_generate(link, ts, click) != 0
        || !crm_click_id_parse(&key, click, CRM_CLICK_ID_LEN, again,
                               &ts_again)
        || strcmp(link, again) != 0 || ts != ts_again
        || memcmp(click, in.data, CRM_LINK_ID_LEN + 6) != 0)
    {
        abort();
    }
}


/*
 * The header up to the first newline, the body after it: a callback's
 * signature, a Standard Webhooks signature list and timestamp, a Shopify
 * HMAC, a day; and the whole input as a secret file of each scheme
 */
static void
crm_fuzz_sig(crm_str_t in)
{
    int64_t                day;
    const char            *nl;
    crm_str_t              header, body;
    crm_error_t            err;
    crm_webhook_source_t   src;

    nl = memchr(in.data, '\n', in.len);

    header.data = in.data;
    header.len = (nl != NULL) ? (size_t) (nl - in.data) : in.len;

    body.data = (nl != NULL) ? nl + 1 : in.data + in.len;
    body.len = in.len - header.len - (nl != NULL);

    (void) crm_sig_verify(crm_fuzz_sig_key, sizeof(crm_fuzz_sig_key) - 1,
                          header, body, 1700000000, CRM_SIG_TOLERANCE, &err);

    (void) crm_day_parse(header, &day);

    if (crm_webhook_source_init(&src, crm_str_lit("fuzz"),
                                crm_str_lit("standard"),
                                crm_str_lit("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La"
                                            "LaSw"), &err) == CRM_OK)
    {
        (void) crm_webhook_verify_standard(&src, crm_str_lit("msg_1"),
                                           header, header, body, 1700000000,
                                           CRM_SIG_TOLERANCE, &err);
        (void) crm_webhook_verify_standard(&src, header,
                                           crm_str_lit("1700000000"), body,
                                           body, 1700000000,
                                           CRM_SIG_TOLERANCE, &err);
    }

    if (crm_webhook_source_init(&src, crm_str_lit("fuzz"),
                                crm_str_lit("shopify"),
                                crm_str_lit("0123456789abcdef"), &err)
        == CRM_OK)
    {
        (void) crm_webhook_verify_shopify(&src, header, body, &err);
    }

    (void) crm_webhook_source_init(&src, crm_str_lit("fuzz"),
                                   crm_str_lit("standard"), in, &err);
    (void) crm_webhook_source_init(&src, crm_str_lit("fuzz"),
                                   crm_str_lit("shopify"), in, &err);
}


/* an origin, as a configuration names it and as a browser sends it */
static void
crm_fuzz_origin(crm_str_t in)
{
    crm_origin_t  o, fixed, pattern;

    if (crm_origin_parse(crm_str_c("https://app.example.com"), 0, &fixed) != 0
        || crm_origin_parse(crm_str_c("https://*.example.com"), 1, &pattern)
           != 0)
    {
        abort();
    }

    if (crm_origin_parse(in, 1, &o) == 0) {
        (void) crm_origin_matches(&o, &fixed);
    }

    if (crm_origin_parse(in, 0, &o) == 0) {
        (void) crm_origin_matches(&fixed, &o);
        (void) crm_origin_matches(&pattern, &o);

        /* canonical is a fixed point */
        if (crm_origin_parse((crm_str_t) { o.text, o.len }, 0, &fixed) != 0
            || fixed.len != o.len || memcmp(fixed.text, o.text, o.len) != 0)
        {
            abort();
        }
    }
}
