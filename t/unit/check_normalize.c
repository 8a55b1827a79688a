/*
 * crm_normalize: phone numbers to E.164, shop domains to a bare host,
 * currency codes to upper case; the header's examples first.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_normalize.h"


static void check_phone_ok(const char *in, const char *want);
static void check_phone_bad(const char *in, size_t len);
static void check_domain_ok(const char *in, const char *want);
static void check_domain_bad(const char *in, size_t len);
static void check_currency_ok(const char *in, const char *want);
static void check_currency_bad(const char *in, size_t len);
static Suite *check_normalize_suite(void);


#define check_phone_bad_c(s)     check_phone_bad(s, strlen(s))
#define check_domain_bad_c(s)    check_domain_bad(s, strlen(s))
#define check_currency_bad_c(s)  check_currency_bad(s, strlen(s))


static void
check_phone_ok(const char *in, const char *want)
{
    char         out[CRM_PHONE_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_phone_normalize(crm_str_c(in), "phone", out, &err)
                  == CRM_OK, "rejected \"%s\"", in);
    ck_assert_str_eq(out, want);
}


static void
check_phone_bad(const char *in, size_t len)
{
    char         out[CRM_PHONE_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_phone_normalize((crm_str_t) { in, len }, "phone", out,
                                      &err) == CRM_E_INVALID,
                  "accepted \"%.*s\" as \"%s\"", (int) len, in, out);
    crm_check_error(&err, CRM_E_INVALID, "phone",
                    "must be a phone number in international format "
                    "(+ and country code)");
    ck_assert_str_eq(out, "");
}


static void
check_domain_ok(const char *in, const char *want)
{
    char         out[CRM_DOMAIN_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_domain_normalize(crm_str_c(in), "shop_domain", out,
                                       &err) == CRM_OK,
                  "rejected \"%s\"", in);
    ck_assert_str_eq(out, want);
}


static void
check_domain_bad(const char *in, size_t len)
{
    char         out[CRM_DOMAIN_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_domain_normalize((crm_str_t) { in, len },
                                       "shop_domain", out, &err)
                  == CRM_E_INVALID,
                  "accepted \"%.*s\" as \"%s\"", (int) len, in, out);
    crm_check_error(&err, CRM_E_INVALID, "shop_domain",
                    "must be a domain name such as shop.example.com");
    ck_assert_str_eq(out, "");
}


static void
check_currency_ok(const char *in, const char *want)
{
    char         out[CRM_CURRENCY_LEN + 1];
    crm_error_t  err;

    ck_assert_msg(crm_currency_normalize(crm_str_c(in), "currency", out,
                                         &err) == CRM_OK,
                  "rejected \"%s\"", in);
    ck_assert_str_eq(out, want);
}


static void
check_currency_bad(const char *in, size_t len)
{
    char         out[CRM_CURRENCY_LEN + 1];
    crm_error_t  err;

    ck_assert_msg(crm_currency_normalize((crm_str_t) { in, len }, "currency",
                                         out, &err) == CRM_E_INVALID,
                  "accepted \"%.*s\"", (int) len, in);
    crm_check_error(&err, CRM_E_INVALID, "currency",
                    "must be a three-letter currency code such as USD");
}


START_TEST(test_phone_normalises)
{
    /* the header's examples */
    check_phone_ok("+1 (415) 555-2671", "+14155552671");
    check_phone_ok("+44 20 7946 0958", "+442079460958");
    check_phone_ok("0044 20 7946 0958", "+442079460958");
    check_phone_ok("+1.415.555.2671", "+14155552671");

    check_phone_ok("+14155552671", "+14155552671");
    check_phone_ok("+49/30/901820", "+4930901820");
    check_phone_ok("+33 1-23-45-67-89", "+33123456789");
    check_phone_ok("+44 (0) 20 7946 0958", "+442079460958");
    check_phone_ok("+49 (0)30 901820", "+4930901820");
    check_phone_ok("+44 (020) 7946 0958", "+4402079460958");
    check_phone_ok("+(1) 415 555 2671", "+14155552671");
    check_phone_ok("  +1 415 555 2671  ", "+14155552671");
    check_phone_ok("+ 1 415 555 2671", "+14155552671");
    check_phone_ok("001-415-555-2671", "+14155552671");

    /* 8 and 15 digits are the bounds */
    check_phone_ok("+12345678", "+12345678");
    check_phone_ok("+123456789012345", "+123456789012345");
}
END_TEST


START_TEST(test_phone_rejects)
{
    /* national numbers: no country code to add without guessing */
    check_phone_bad_c("415 555 2671");
    check_phone_bad_c("(415) 555-2671");
    check_phone_bad_c("020 7946 0958");
    check_phone_bad_c("0 044 20 7946 0958");

    /* too short, too long */
    check_phone_bad_c("+1234567");
    check_phone_bad_c("+1234567890123456");
    check_phone_bad_c("0012345678901234567");
    check_phone_bad_c("+");
    check_phone_bad_c("00");
    check_phone_bad_c("");
    check_phone_bad_c("   ");

    /* no country code starts with 0 */
    check_phone_bad_c("+0 415 555 2671");
    check_phone_bad_c("000 415 555 2671");

    /* letters, extensions and anything else */
    check_phone_bad_c("+1 415 CALL NOW");
    check_phone_bad_c("+1 800 FLOWERS");
    check_phone_bad_c("+1 415 555 2671 ext 12");
    check_phone_bad_c("+1 415 555 2671 x12");
    check_phone_bad_c("+1 415 555 2671;ext=12");
    check_phone_bad_c("+1 415 555 2671#12");
    check_phone_bad_c("+1,415,555,2671");
    check_phone_bad_c("++1 415 555 2671");
    check_phone_bad_c("+1 415 +555 2671");
    check_phone_bad_c("+1\t415 555 2671");
    check_phone_bad_c("+1 415 555 2671\n");
    check_phone_bad_c("tel:+14155552671");
    check_phone_bad_c("+\xef\xbc\x91 415 555 2671");
    check_phone_bad("+1 415 555 2671\0", 16);
    check_phone_bad("+1 415\0 555 2671", 16);

    /* one pair of parentheses, closed, around something */
    check_phone_bad_c("+1 (415) (555) 2671");
    check_phone_bad_c("+1 (415 555 2671");
    check_phone_bad_c("+1 415) 555 2671");
    check_phone_bad_c("+1 () 415 555 2671");
    check_phone_bad_c("+1 ((415)) 555 2671");
    check_phone_bad_c("(+1) 415 555 2671");
    check_phone_bad_c("+(0) 415 555 2671");
    check_phone_bad_c("+44 (0) (0) 20 7946 0958");

    /* the length bounds the read */
    check_phone_bad((const char *) "+14155552671", 8);
}
END_TEST


START_TEST(test_domain_normalises)
{
    char    buf[300], want[300];
    size_t  i;

    /* the header's example */
    check_domain_ok("https://Foo.myshopify.com/admin", "foo.myshopify.com");

    check_domain_ok("foo.myshopify.com", "foo.myshopify.com");
    check_domain_ok("FOO.MyShopify.COM", "foo.myshopify.com");
    check_domain_ok("http://shop.example.com", "shop.example.com");
    check_domain_ok("HTTPS://shop.example.com/", "shop.example.com");
    check_domain_ok("HtTp://shop.example.com", "shop.example.com");
    check_domain_ok("shop.example.com:8443", "shop.example.com");
    check_domain_ok("https://shop.example.com:443/products/a?b=c#d",
                    "shop.example.com");
    check_domain_ok("shop.example.com?ref=x", "shop.example.com");
    check_domain_ok("shop.example.com#top", "shop.example.com");
    check_domain_ok("shop.example.com.", "shop.example.com");
    check_domain_ok("https://shop.example.com./", "shop.example.com");
    check_domain_ok("shop.example.com.:443", "shop.example.com");
    check_domain_ok("my-shop-2.example.co.uk", "my-shop-2.example.co.uk");
    check_domain_ok("123.example.com", "123.example.com");
    check_domain_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
    check_domain_ok("shop.xn--p1ai", "shop.xn--p1ai");
    check_domain_ok("shop.XN--P1AI", "shop.xn--p1ai");
    check_domain_ok("a.io", "a.io");

    /* a label of 63 */
    memset(buf, 'a', 63);
    strcpy(buf + 63, ".com");
    check_domain_ok(buf, buf);

    /* 253 in all, and again with the trailing dot that is dropped */
    memset(buf, 'a', 249);

    for (i = 63; i < 249; i += 64) {
        buf[i] = '.';
    }

    strcpy(buf + 249, ".com");
    ck_assert_uint_eq(strlen(buf), 253);
    check_domain_ok(buf, buf);

    memcpy(want, buf, 254);
    strcpy(buf + 253, ".");
    check_domain_ok(buf, want);
}
END_TEST


START_TEST(test_domain_rejects)
{
    char    buf[300];
    size_t  i;

    /* IP addresses */
    check_domain_bad_c("1.2.3.4");
    check_domain_bad_c("http://1.2.3.4/admin");
    check_domain_bad_c("10.0.0.1:8080");
    check_domain_bad_c("0x7f.1");
    check_domain_bad_c("[::1]");
    check_domain_bad_c("http://[2001:db8::1]/");

    /* user-info */
    check_domain_bad_c("user@shop.example.com");
    check_domain_bad_c("https://user:pass@shop.example.com/");
    check_domain_bad_c("https://shop.example.com@evil.example/");

    /* not two labels, or empty ones */
    check_domain_bad_c("localhost");
    check_domain_bad_c("http://localhost/");
    check_domain_bad_c("");
    check_domain_bad_c("https://");
    check_domain_bad_c("https:///admin");
    check_domain_bad_c(".example.com");
    check_domain_bad_c("shop..example.com");
    check_domain_bad_c("shop.example.com..");
    check_domain_bad_c(".");

    /* labels: letters, digits, inner hyphens */
    check_domain_bad_c("-bad-.com");
    check_domain_bad_c("bad-.example.com");
    check_domain_bad_c("-bad.example.com");
    check_domain_bad_c("sh_op.example.com");
    check_domain_bad_c("shop example.com");
    check_domain_bad_c(" shop.example.com");
    check_domain_bad_c("shop.example.com ");
    check_domain_bad_c("b\xc3\xbc" "cher.example");
    check_domain_bad_c("shop.example.com\\@evil.example");
    check_domain_bad("shop.example.com\0", 17);
    check_domain_bad("shop\0.example.com", 17);

    /* the top label: alphabetic of 2+, or punycode */
    check_domain_bad_c("shop.c");
    check_domain_bad_c("shop.c0m");
    check_domain_bad_c("shop.123");
    check_domain_bad_c("shop.xn--");
    check_domain_bad_c("shop.co-m");

    /* schemes other than http(s), and ports that are not ports */
    check_domain_bad_c("ftp://shop.example.com");
    check_domain_bad_c("javascript:alert(1)");
    check_domain_bad_c("//shop.example.com");
    check_domain_bad_c("shop.example.com:");
    check_domain_bad_c("shop.example.com:https");
    check_domain_bad_c("shop.example.com:123456");
    check_domain_bad_c("shop.example.com:80:80");

    /* a label of 64 */
    memset(buf, 'a', 64);
    strcpy(buf + 64, ".com");
    check_domain_bad_c(buf);

    /* 254 in all */
    memset(buf, 'a', 250);
    for (i = 63; i < 250; i += 64) {
        buf[i] = '.';
    }
    strcpy(buf + 250, ".com");
    ck_assert_uint_eq(strlen(buf), 254);
    check_domain_bad_c(buf);
}
END_TEST


START_TEST(test_currency)
{
    check_currency_ok("usd", "USD");
    check_currency_ok("USD", "USD");
    check_currency_ok("eUr", "EUR");

    check_currency_bad_c("US");
    check_currency_bad_c("usd1");
    check_currency_bad_c("\xe2\x82\xac" "UR");
    check_currency_bad_c("\xe2\x82\xac");
    check_currency_bad_c("");
    check_currency_bad_c("U5D");
    check_currency_bad_c("US ");
    check_currency_bad_c(" USD");
    check_currency_bad_c("U-D");
    check_currency_bad_c("@SD");
    check_currency_bad_c("[SD");
    check_currency_bad("US\0", 3);
}
END_TEST


static Suite *
check_normalize_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("normalize", &tc);

    tcase_add_test(tc, test_phone_normalises);
    tcase_add_test(tc, test_phone_rejects);
    tcase_add_test(tc, test_domain_normalises);
    tcase_add_test(tc, test_domain_rejects);
    tcase_add_test(tc, test_currency);

    return s;
}


CRM_CHECK_MAIN(check_normalize_suite)
