/*
 * crm_etag: entity tags and If-Match (RFC 9110, strong comparison).
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_etag.h"


static Suite *check_etag_suite(void);


static int
check_etag_versions(const char *header, char *out)
{
    return crm_if_match_versions(crm_str_c(header), out);
}


START_TEST(test_etag_format)
{
    char  tag[CRM_ETAG_MAX];

    crm_etag_format(1, tag);
    ck_assert_str_eq(tag, "\"1\"");

    crm_etag_format(2147483647, tag);
    ck_assert_str_eq(tag, "\"2147483647\"");
}
END_TEST


START_TEST(test_etag_if_match)
{
    char  out[CRM_IF_MATCH_MAX];

    /* no condition */
    ck_assert_int_eq(check_etag_versions("", out), 0);
    ck_assert_int_eq(check_etag_versions("  ", out), 0);
    ck_assert_int_eq(check_etag_versions("*", out), 0);
    ck_assert_int_eq(check_etag_versions(" * ", out), 0);

    ck_assert_int_eq(check_etag_versions("\"3\"", out), 1);
    ck_assert_str_eq(out, "{3}");

    ck_assert_int_eq(check_etag_versions("\"3\", \"5\",\"12\"", out), 1);
    ck_assert_str_eq(out, "{3,5,12}");

    /* weak tags never match; neither do tags we never send */
    ck_assert_int_eq(check_etag_versions("W/\"3\"", out), 1);
    ck_assert_str_eq(out, "{}");
    ck_assert_int_eq(check_etag_versions("W/\"3\", \"4\"", out), 1);
    ck_assert_str_eq(out, "{4}");
    ck_assert_int_eq(check_etag_versions("\"abc\", \"03\", \"\"", out), 1);
    ck_assert_str_eq(out, "{}");
    ck_assert_int_eq(check_etag_versions("\"1234567890\"", out), 1);
    ck_assert_str_eq(out, "{}");

    /* malformed: what was read before the damage still counts */
    ck_assert_int_eq(check_etag_versions("3", out), 1);
    ck_assert_str_eq(out, "{}");
    ck_assert_int_eq(check_etag_versions("\"7", out), 1);
    ck_assert_str_eq(out, "{}");
    ck_assert_int_eq(check_etag_versions("\"7\" junk", out), 1);
    ck_assert_str_eq(out, "{7}");
    ck_assert_int_eq(check_etag_versions("*, \"2\"", out), 1);
    ck_assert_str_eq(out, "{}");
}
END_TEST


START_TEST(test_etag_if_match_many)
{
    int   i;
    char  header[1024], out[CRM_IF_MATCH_MAX];

    header[0] = '\0';

    for (i = 0; i < 40; i++) {
        snprintf(header + strlen(header), sizeof(header) - strlen(header),
                 "%s\"%d\"", i ? ", " : "", 100000000 + i);
    }

    /* only the first 16 are honoured, and the literal fits */
    ck_assert_int_eq(check_etag_versions(header, out), 1);
    ck_assert_uint_lt(strlen(out), CRM_IF_MATCH_MAX);
    ck_assert(strstr(out, "100000015") != NULL);
    ck_assert(strstr(out, "100000016") == NULL);
}
END_TEST


static Suite *
check_etag_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("etag", &tc);

    tcase_add_test(tc, test_etag_format);
    tcase_add_test(tc, test_etag_if_match);
    tcase_add_test(tc, test_etag_if_match_many);

    return s;
}


CRM_CHECK_MAIN(check_etag_suite)
