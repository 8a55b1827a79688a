/*
 * crm_click: a click as one COPY text line, exactly, with client text cut
 * and made safe, and the line count of a batch.
 */

#include "crm_click.h"
#include "crm_check.h"
#include "crm_ids.h"


static Suite *check_click_suite(void);


static const char  check_click_id[] = "0123456789AB1r31eq00000000";


START_TEST(test_click_line_exact)
{
    char         out[CRM_CLICK_LINE_MAX];
    size_t       n;
    crm_click_t  c;

    memset(&c, 0, sizeof(crm_click_t));
    c.click_id = check_click_id;
    c.at_us = 1700000000123456LL;
    c.shop = crm_str_lit("foo.myshopify.com");
    c.ip = crm_str_lit("127.0.0.1");
    c.user_agent = crm_str_lit("Mozilla/5.0");
    c.referer = crm_str_lit("https://ref.example/x");
    c.head = 1;

    n = crm_click_line(&c, out);
    out[n] = '\0';

    ck_assert_str_eq(out, "0123456789AB1r31eq00000000\t0123456789AB\t"
                          "2023-11-14 22:13:20.123456+00\t"
                          "foo.myshopify.com\t127.0.0.1\tMozilla/5.0\t"
                          "https://ref.example/x\tf\tt\n");
    ck_assert_uint_eq(crm_click_count((crm_str_t) { out, n }), 1);
}
END_TEST


START_TEST(test_click_line_null_shop_and_bot)
{
    char         out[CRM_CLICK_LINE_MAX];
    size_t       n;
    crm_click_t  c;

    memset(&c, 0, sizeof(crm_click_t));
    c.click_id = check_click_id;
    c.at_us = 1000000;
    c.ip = crm_str_lit("::1");
    c.bot = 1;

    n = crm_click_line(&c, out);
    out[n] = '\0';

    ck_assert_str_eq(out, "0123456789AB1r31eq00000000\t0123456789AB\t"
                          "1970-01-01 00:00:01.000000+00\t\\N\t::1\t\t\t"
                          "t\tf\n");
}
END_TEST


/* a tab, a newline or a backslash from a client cannot break the line */
START_TEST(test_click_line_escapes)
{
    char         out[CRM_CLICK_LINE_MAX];
    size_t       n;
    crm_click_t  c;

    memset(&c, 0, sizeof(crm_click_t));
    c.click_id = check_click_id;
    c.at_us = 1700000000000000LL;
    c.ip = crm_str_lit("127.0.0.1");
    c.user_agent = crm_str_lit("a\tb\nc\\d\xc3\xa9\x01");
    c.referer = crm_str_lit("\\N");

    n = crm_click_line(&c, out);
    out[n] = '\0';

    ck_assert_str_eq(out, "0123456789AB1r31eq00000000\t0123456789AB\t"
                          "2023-11-14 22:13:20.000000+00\t\\N\t127.0.0.1\t"
                          "a?b?c\\\\d???\t\\\\N\tf\tf\n");
    ck_assert_uint_eq(crm_click_count((crm_str_t) { out, n }), 1);
}
END_TEST


/* the longest client text, every byte escaped, still fits */
START_TEST(test_click_line_limits)
{
    char         ua[CRM_CLICK_UA_MAX * 2], ref[CRM_CLICK_REFERER_MAX * 2];
    char         ip[CRM_CLICK_IP_MAX * 2], shop[300];
    char         out[CRM_CLICK_LINE_MAX];
    size_t       n;
    crm_click_t  c;

    memset(ua, '\\', sizeof(ua));
    memset(ref, '\\', sizeof(ref));
    memset(ip, '\\', sizeof(ip));
    memset(shop, 'a', sizeof(shop));

    memset(&c, 0, sizeof(crm_click_t));
    c.click_id = check_click_id;
    c.at_us = 1700000000000000LL;
    c.shop = (crm_str_t) { shop, sizeof(shop) };
    c.ip = (crm_str_t) { ip, sizeof(ip) };
    c.user_agent = (crm_str_t) { ua, sizeof(ua) };
    c.referer = (crm_str_t) { ref, sizeof(ref) };

    n = crm_click_line(&c, out);

    ck_assert_uint_gt(n, 2 * (CRM_CLICK_UA_MAX + CRM_CLICK_REFERER_MAX));
    ck_assert_uint_lt(n, CRM_CLICK_LINE_MAX);
    ck_assert_int_eq(out[n - 1], '\n');
    ck_assert_uint_eq(crm_click_count((crm_str_t) { out, n }), 1);
}
END_TEST


START_TEST(test_click_line_refused)
{
    char         out[CRM_CLICK_LINE_MAX];
    crm_click_t  c;

    memset(&c, 0, sizeof(crm_click_t));
    c.at_us = 1700000000000000LL;

    ck_assert_uint_eq(crm_click_line(&c, out), 0);

    c.click_id = "short";
    ck_assert_uint_eq(crm_click_line(&c, out), 0);

    c.click_id = check_click_id;
    c.at_us = -1;
    ck_assert_uint_eq(crm_click_line(&c, out), 0);
}
END_TEST


START_TEST(test_click_count)
{
    ck_assert_uint_eq(crm_click_count(crm_str_lit("")), 0);
    ck_assert_uint_eq(crm_click_count(crm_str_lit("a\nb\nc\n")), 3);
    ck_assert_uint_eq(crm_click_count(crm_str_lit("a\nb")), 1);
}
END_TEST


static Suite *
check_click_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("click", &tc);

    tcase_add_test(tc, test_click_line_exact);
    tcase_add_test(tc, test_click_line_null_shop_and_bot);
    tcase_add_test(tc, test_click_line_escapes);
    tcase_add_test(tc, test_click_line_limits);
    tcase_add_test(tc, test_click_line_refused);
    tcase_add_test(tc, test_click_count);

    return s;
}


CRM_CHECK_MAIN(check_click_suite)
