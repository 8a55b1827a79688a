/*
 * crm_origin: the canonical form of an origin, what is not one, and
 * which origins an allowed origin or a pattern lets through.
 */

#include <string.h>

#include "crm_check.h"
#include "crm_origin.h"


static crm_origin_t check_origin(const char *s, int allow_pattern);
static Suite *check_origin_suite(void);


static crm_origin_t
check_origin(const char *s, int allow_pattern)
{
    crm_origin_t  o;

    ck_assert_msg(crm_origin_parse(crm_str_c(s), allow_pattern, &o) == 0,
                  "refused \"%s\"", s);

    return o;
}


START_TEST(test_origin_canonical)
{
    static const char *const  cases[][2] = {
        { "https://app.example", "https://app.example" },
        { "HTTPS://App.Example", "https://app.example" },
        { "https://app.example:443", "https://app.example" },
        { "http://app.example:80", "http://app.example" },
        { "http://app.example:443", "http://app.example:443" },
        { "https://app.example:8443", "https://app.example:8443" },
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
        { "https://xn--bcher-kva.example", "https://xn--bcher-kva.example" },
        { "https://*.Example.com", "https://.example.com" },
        { "https://*.example.com:443", "https://.example.com" },
        { "https://*.example.com:8443", "https://.example.com:8443" }
    };

    size_t        i;
    crm_origin_t  o;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o = check_origin(cases[i][0], 1);
        ck_assert_str_eq(o.text, cases[i][1]);
        ck_assert_uint_eq(o.len, strlen(cases[i][1]));
        ck_assert_int_eq(o.pattern, cases[i][0][8] == '*');
    }
}
END_TEST


START_TEST(test_origin_refused)
{
    static const char *const  bad[] = {
        "", "null", "*", "app.example", "ftp://app.example", "https://",
        "http://", "https:/app.example", "https://app.example/",
        "https://app.example/path", "https://app.example?x=1",
        "https://app.example#f", "https://user@app.example",
        "https://app.example:", "https://app.example:0",
        "https://app.example:65536", "https://app.example:99999",
        "https://app.example:443x", "https://app.example:-1",
        "https://.app.example", "https://app.example.",
        "https://app..example", "https://app example",
        "https://[::1]", "https://*.", "https://*", "https://a.*.example",
        "https://*.*.example"
    };

    size_t        i;
    crm_origin_t  o;
    char          big[CRM_ORIGIN_MAX + 16];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(crm_origin_parse(crm_str_c(bad[i]), 1, &o) == -1,
                      "accepted \"%s\"", bad[i]);
    }

    /* a pattern only where one may be */
    ck_assert_int_eq(crm_origin_parse(crm_str_c("https://*.example.com"), 0,
                                      &o), -1);

    memcpy(big, "https://", 8);
    memset(big + 8, 'a', sizeof(big) - 9);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(crm_origin_parse(crm_str_c(big), 1, &o), -1);
}
END_TEST


START_TEST(test_origin_matches)
{
    static const struct {
        const char  *allowed;
        const char  *origin;
        int          matches;
    } cases[] = {
        { "https://app.example", "https://app.example", 1 },
        { "https://app.example", "https://APP.example:443", 1 },
        { "https://app.example", "http://app.example", 0 },
        { "https://app.example", "https://app.example:8443", 0 },
        { "https://app.example", "https://app.example.evil", 0 },
        { "https://app.example", "https://xapp.example", 0 },
        { "https://*.example.com", "https://a.example.com", 1 },
        { "https://*.example.com", "https://a.b.example.com", 1 },
        { "https://*.example.com", "https://example.com", 0 },
        { "https://*.example.com", "https://evil-example.com", 0 },
        { "https://*.example.com", "https://aexample.com", 0 },
        { "https://*.example.com", "https://a.example.com.evil.org", 0 },
        { "https://*.example.com", "http://a.example.com", 0 },
        { "https://*.example.com", "https://a.example.com:8443", 0 },
        { "https://*.example.com:8443", "https://a.example.com:8443", 1 },
        { "https://*.example.com:8443", "https://a.example.com", 0 }
    };

    size_t        i;
    crm_origin_t  allowed, origin;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        allowed = check_origin(cases[i].allowed, 1);
        origin = check_origin(cases[i].origin, 0);
        ck_assert_msg(crm_origin_matches(&allowed, &origin)
                      == cases[i].matches, "%s against %s: %d expected",
                      cases[i].origin, cases[i].allowed, cases[i].matches);
    }

    /* a pattern is never an origin */
    allowed = check_origin("https://*.example.com", 1);
    ck_assert_int_eq(crm_origin_matches(&allowed, &allowed), 0);
}
END_TEST


static Suite *
check_origin_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("origin", &tc);

    tcase_add_test(tc, test_origin_canonical);
    tcase_add_test(tc, test_origin_refused);
    tcase_add_test(tc, test_origin_matches);

    return s;
}


CRM_CHECK_MAIN(check_origin_suite)
