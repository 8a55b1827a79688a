/*
 * crm_url: which redirect targets are stored, and the Location built from
 * one with our ids in its query.
 */

#include "crm_check.h"
#include "crm_url.h"


#define CHECK_URL_LINK   "0123456789Ok"
#define CHECK_URL_CLICK  "0123456789Ok1r31eqAbCdEfGh"
#define CHECK_URL_IDS    "ref=" CHECK_URL_LINK "&click_id=" CHECK_URL_CLICK


static void check_url_ok(const char *target);
static void check_url_bad(const char *target, size_t len, const char *why);
static void check_url_redirect(const char *target, const char *want);
static Suite *check_url_suite(void);


#define check_url_bad_c(s, why)  check_url_bad(s, strlen(s), why)

#define CHECK_URL_ABSOLUTE   "must be an absolute http or https URL"
#define CHECK_URL_USER       "must not contain user information"
#define CHECK_URL_CHARS                                                       \
    "must not contain spaces, control characters or backslashes"
#define CHECK_URL_ASCII      "must be ASCII, other characters percent-encoded"
#define CHECK_URL_HOST       "must have a valid host name or IP address"
#define CHECK_URL_PORT       "must have a port between 1 and 65535"


static void
check_url_ok(const char *target)
{
    const char  *why;

    why = crm_url_check_target(crm_str_c(target));

    ck_assert_msg(why == NULL, "refused \"%s\": %s", target, why);
}


static void
check_url_bad(const char *target, size_t len, const char *why)
{
    const char  *got;

    got = crm_url_check_target((crm_str_t) { target, len });

    ck_assert_msg(got != NULL, "accepted \"%.*s\"", (int) len, target);
    ck_assert_msg(strcmp(got, why) == 0, "\"%.*s\": \"%s\", not \"%s\"",
                  (int) len, target, got, why);
}


static void
check_url_redirect(const char *target, const char *want)
{
    char    out[crm_url_redirect_size(CRM_URL_MAX)];
    size_t  n;

    n = crm_url_redirect(crm_str_c(target), CHECK_URL_LINK, CHECK_URL_CLICK,
                         out, sizeof(out));

    ck_assert_msg(n == strlen(want), "\"%s\": %zu bytes, not %zu",
                  target, n, strlen(want));
    ck_assert_str_eq(out, want);
    ck_assert_uint_lt(n, crm_url_redirect_size(strlen(target)));
}


START_TEST(test_url_accepts)
{
    check_url_ok("https://example.com");
    check_url_ok("http://example.com/");
    check_url_ok("https://shop.example.co.uk/p/1?a=1&b=%20x#frag");
    check_url_ok("HTTPS://Example.COM/Path");
    check_url_ok("HtTp://example.com");
    check_url_ok("https://example.com:1/");
    check_url_ok("https://example.com:65535");
    check_url_ok("https://example.com:8443?x");
    check_url_ok("https://example.com#top");
    check_url_ok("https://xn--80ak6aa92e.com/");
    check_url_ok("https://[::1]:8443/p");
    check_url_ok("https://[2001:db8::7]/");
    check_url_ok("https://[::ffff:192.0.2.1]");
    check_url_ok("http://1.2.3.4/");
    check_url_ok("http://0.0.0.0");
    check_url_ok("http://255.255.255.255:80/");
    check_url_ok("https://example.com/a@b/~c?d=@e#f@g");
    check_url_ok("https://example.com/%E2%82%AC");
}
END_TEST


START_TEST(test_url_refuses_scheme)
{
    check_url_bad_c("javascript:alert(1)", CHECK_URL_ABSOLUTE);
    check_url_bad_c("//evil.com", CHECK_URL_ABSOLUTE);
    check_url_bad_c("/path", CHECK_URL_ABSOLUTE);
    check_url_bad_c("http:/x", CHECK_URL_ABSOLUTE);
    check_url_bad_c("http:x", CHECK_URL_ABSOLUTE);
    check_url_bad_c("ftp://x", CHECK_URL_ABSOLUTE);
    check_url_bad_c("data:text/html,x", CHECK_URL_ABSOLUTE);
    check_url_bad_c("httpx://example.com", CHECK_URL_ABSOLUTE);
    check_url_bad_c("example.com", CHECK_URL_ABSOLUTE);
    check_url_bad_c("https:", CHECK_URL_ABSOLUTE);
    check_url_bad_c("", "must not be empty");
}
END_TEST


START_TEST(test_url_refuses_characters)
{
    check_url_bad_c("https://user@host/", CHECK_URL_USER);
    check_url_bad_c("https://user:pw@example.com/", CHECK_URL_USER);
    check_url_bad_c("https://@example.com", CHECK_URL_USER);
    check_url_bad_c("https://host\\@evil", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com\\evil.com", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/\r\nSet-Cookie: x=1", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/\n", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/a b", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/a\tb", CHECK_URL_CHARS);
    check_url_bad_c(" https://example.com", CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/\x7f", CHECK_URL_CHARS);
    check_url_bad("https://example.com/\0x", 22, CHECK_URL_CHARS);
    check_url_bad_c("https://example.com/caf\xc3\xa9", CHECK_URL_ASCII);
    check_url_bad_c("https://ex\xc3\xa1mple.com", CHECK_URL_ASCII);
}
END_TEST


START_TEST(test_url_refuses_host)
{
    check_url_bad_c("http://", CHECK_URL_HOST);
    check_url_bad_c("https:///path", CHECK_URL_HOST);
    check_url_bad_c("https://?q", CHECK_URL_HOST);
    check_url_bad_c("https://:443/", CHECK_URL_HOST);
    check_url_bad_c("https://exa_mple.com", CHECK_URL_HOST);
    check_url_bad_c("https://localhost/", CHECK_URL_HOST);
    check_url_bad_c("https://example.com./", CHECK_URL_HOST);
    check_url_bad_c("https://-example.com", CHECK_URL_HOST);
    check_url_bad_c("https://example..com", CHECK_URL_HOST);
    check_url_bad_c("https://example.c", CHECK_URL_HOST);
    check_url_bad_c("http://1.2.3.256/", CHECK_URL_HOST);
    check_url_bad_c("http://1.2.3/", CHECK_URL_HOST);
    check_url_bad_c("http://1.2.3.4.5/", CHECK_URL_HOST);
    check_url_bad_c("http://1.2.3.04/", CHECK_URL_HOST);
    check_url_bad_c("http://01.2.3.4/", CHECK_URL_HOST);
    check_url_bad_c("http://1.2..4/", CHECK_URL_HOST);
    check_url_bad_c("http://1.2.3.4./", CHECK_URL_HOST);
    check_url_bad_c("http://1234.2.3.4/", CHECK_URL_HOST);
    check_url_bad_c("http://0x7f.0.0.1/", CHECK_URL_HOST);
    check_url_bad_c("http://2130706433/", CHECK_URL_HOST);
    check_url_bad_c("https://[::1", CHECK_URL_HOST);
    check_url_bad_c("https://[]/", CHECK_URL_HOST);
    check_url_bad_c("https://[::g]/", CHECK_URL_HOST);
    check_url_bad_c("https://[1.2.3.4]/", CHECK_URL_HOST);
    check_url_bad_c("https://[fe80::1%25eth0]/", CHECK_URL_HOST);
    check_url_bad_c("https://[::1]x/", CHECK_URL_HOST);
    check_url_bad_c("https://[::1]]/", CHECK_URL_HOST);
    check_url_bad_c("https://::1/", CHECK_URL_HOST);
    check_url_bad_c("https://ex[ample.com/", CHECK_URL_HOST);
}
END_TEST


START_TEST(test_url_refuses_port)
{
    check_url_bad_c("https://example.com:0/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:65536/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:99999/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:100000/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:080/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:8a/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:-1/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:+80/", CHECK_URL_PORT);
    check_url_bad_c("https://example.com:80:80/", CHECK_URL_PORT);
    check_url_bad_c("https://[::1]:0/", CHECK_URL_PORT);
    check_url_bad_c("https://[::1]:/", CHECK_URL_PORT);
    check_url_bad_c("http://1.2.3.4:65536", CHECK_URL_PORT);
}
END_TEST


START_TEST(test_url_length)
{
    char    url[CRM_URL_MAX + 2];
    size_t  prefix;

    prefix = sizeof("https://example.com/") - 1;

    memcpy(url, "https://example.com/", prefix);
    memset(url + prefix, 'a', sizeof(url) - prefix);

    url[CRM_URL_MAX] = '\0';
    check_url_ok(url);

    url[CRM_URL_MAX] = 'a';
    url[CRM_URL_MAX + 1] = '\0';
    check_url_bad_c(url, "must be at most 2048 characters");
}
END_TEST


START_TEST(test_url_redirect_query)
{
    check_url_redirect("https://s.example/p?a=1#top",
                       "https://s.example/p?a=1&" CHECK_URL_IDS "#top");
    check_url_redirect("https://s.example",
                       "https://s.example?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p",
                       "https://s.example/p?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?",
                       "https://s.example/p?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?a=1&",
                       "https://s.example/p?a=1&" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?&&a=1&&b&&",
                       "https://s.example/p?a=1&b&" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?&",
                       "https://s.example/p?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?a=1&b=%26x&c=",
                       "https://s.example/p?a=1&b=%26x&c=&" CHECK_URL_IDS);
}
END_TEST


START_TEST(test_url_redirect_drops_ours)
{
    check_url_redirect("https://s.example/p?ref=evil&click_id=x",
                       "https://s.example/p?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?ref&click_id",
                       "https://s.example/p?" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?ref=&click_id=#f",
                       "https://s.example/p?" CHECK_URL_IDS "#f");
    check_url_redirect("https://s.example/p?a=1&ref=x&b=2&click_id=y&c=3",
                       "https://s.example/p?a=1&b=2&c=3&" CHECK_URL_IDS);

    /* only those exact names */
    check_url_redirect("https://s.example/p?refx=1&xref=2&Ref=3&ref_id=4"
                       "&click_idx=5&click=6&ref%3D=7",
                       "https://s.example/p?refx=1&xref=2&Ref=3&ref_id=4"
                       "&click_idx=5&click=6&ref%3D=7&" CHECK_URL_IDS);
    check_url_redirect("https://s.example/p?a=ref&b=click_id",
                       "https://s.example/p?a=ref&b=click_id&"
                       CHECK_URL_IDS);
}
END_TEST


START_TEST(test_url_redirect_fragment)
{
    /* the fragment starts at the first "#", whatever follows */
    check_url_redirect("https://s.example/p#a?b=1",
                       "https://s.example/p?" CHECK_URL_IDS "#a?b=1");
    check_url_redirect("https://s.example/p?x=1#a?ref=2&c#d",
                       "https://s.example/p?x=1&" CHECK_URL_IDS
                       "#a?ref=2&c#d");
    check_url_redirect("https://s.example/p#",
                       "https://s.example/p?" CHECK_URL_IDS "#");
    check_url_redirect("https://s.example/p?#",
                       "https://s.example/p?" CHECK_URL_IDS "#");
    check_url_redirect("https://s.example?ref=1#",
                       "https://s.example?" CHECK_URL_IDS "#");

    /* a second "?" is part of the query */
    check_url_redirect("https://s.example/p?a=?b&ref=1",
                       "https://s.example/p?a=?b&" CHECK_URL_IDS);
}
END_TEST


START_TEST(test_url_redirect_fits)
{
    char         out[256];
    size_t       n, len, need;
    const char  *target;

    /* the size macro is reached exactly, less the NUL's spare byte */
    target = "https://s.example/p?a=1";
    len = strlen(target);
    need = strlen(target) + 1 + strlen(CHECK_URL_IDS) + 1;
    ck_assert_uint_eq(need, crm_url_redirect_size(len));

    target = "https://s.example/p";
    len = strlen(target);
    ck_assert_uint_eq(len + 1 + strlen(CHECK_URL_IDS) + 1,
                      crm_url_redirect_size(len));

    /* exactly enough, then one byte short */
    target = "https://s.example/p?a=1#f";
    len = strlen(target);
    need = len + 1 + strlen(CHECK_URL_IDS) + 1;

    n = crm_url_redirect(crm_str_c(target), CHECK_URL_LINK, CHECK_URL_CLICK,
                         out, need);
    ck_assert_uint_eq(n, need - 1);
    ck_assert_str_eq(out, "https://s.example/p?a=1&" CHECK_URL_IDS "#f");

    memset(out, 'x', sizeof(out));
    n = crm_url_redirect(crm_str_c(target), CHECK_URL_LINK, CHECK_URL_CLICK,
                         out, need - 1);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(out, "");

    n = crm_url_redirect(crm_str_c(target), CHECK_URL_LINK, CHECK_URL_CLICK,
                         out, 0);
    ck_assert_uint_eq(n, 0);

    n = crm_url_redirect(crm_str_c(target), CHECK_URL_LINK, CHECK_URL_CLICK,
                         out, 10);
    ck_assert_uint_eq(n, 0);
}
END_TEST


static Suite *
check_url_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("url", &tc);

    tcase_add_test(tc, test_url_accepts);
    tcase_add_test(tc, test_url_refuses_scheme);
    tcase_add_test(tc, test_url_refuses_characters);
    tcase_add_test(tc, test_url_refuses_host);
    tcase_add_test(tc, test_url_refuses_port);
    tcase_add_test(tc, test_url_length);
    tcase_add_test(tc, test_url_redirect_query);
    tcase_add_test(tc, test_url_redirect_drops_ours);
    tcase_add_test(tc, test_url_redirect_fragment);
    tcase_add_test(tc, test_url_redirect_fits);

    return s;
}


CRM_CHECK_MAIN(check_url_suite)
