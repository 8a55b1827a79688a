/*
 * crm_day: dates and RFC 3339 times to UTC days and back, across leap
 * years, offsets that change the day, and what is not a date.
 */

#include <stdio.h>
#include <string.h>

#include "crm_check.h"
#include "crm_day.h"


static int64_t check_day(const char *s);
static Suite *check_day_suite(void);


static int64_t
check_day(const char *s)
{
    int64_t  day;

    ck_assert_msg(crm_day_parse(crm_str_c(s), &day) == 0, "refused \"%s\"",
                  s);

    return day;
}


START_TEST(test_day_dates)
{
    char  out[CRM_DAY_LEN + 1];

    ck_assert_int_eq(check_day("1970-01-01"), 0);
    ck_assert_int_eq(check_day("2000-02-29"), 11016);
    ck_assert_int_eq(check_day("2026-12-05"), 20792);
    ck_assert_int_eq(check_day("1969-12-31"), -1);

    crm_day_format(20792, out);
    ck_assert_str_eq(out, "2026-12-05");
    crm_day_format(11016, out);
    ck_assert_str_eq(out, "2000-02-29");
    crm_day_format(-1, out);
    ck_assert_str_eq(out, "1969-12-31");
    crm_day_format(check_day("2024-03-01") - 1, out);
    ck_assert_str_eq(out, "2024-02-29");
    crm_day_format(check_day("2100-03-01") - 1, out);
    ck_assert_str_eq(out, "2100-02-28");
}
END_TEST


START_TEST(test_day_times)
{
    int64_t  d;

    d = check_day("2026-12-05");

    ck_assert_int_eq(check_day("2026-12-05T00:00:00Z"), d);
    ck_assert_int_eq(check_day("2026-12-05T23:59:59.999999z"), d);
    ck_assert_int_eq(check_day("2026-12-05t12:00:00+00:00"), d);

    /* the offset moves the instant across midnight UTC, both ways */
    ck_assert_int_eq(check_day("2026-12-05T23:30:00-02:00"), d + 1);
    ck_assert_int_eq(check_day("2026-12-05T01:00:00+02:00"), d - 1);

    /* a query string decodes the offset's "+" to a space */
    ck_assert_int_eq(check_day("2026-12-05T01:00:00 02:00"), d - 1);
    ck_assert_int_eq(check_day("1970-01-01T00:30:00+01:00"), -1);
}
END_TEST


START_TEST(test_day_refused)
{
    size_t   i;
    int64_t  day;

    static const char *const  bad[] = {
        "", "2026-12", "2026-12-5", "2026/12/05", "2026-13-01",
        "2026-00-10", "2026-02-29", "2100-02-29", "2026-04-31",
        "0000-01-01", "2026-12-05T", "2026-12-05T10:00:00",
        "2026-12-05T24:00:00Z", "2026-12-05T10:60:00Z",
        "2026-12-05T10:00:00.Z", "2026-12-05T10:00:00+2:00",
        "2026-12-05T10:00:00+02:0", "2026-12-05T10:00:00+24:00",
        "2026-12-05X", "2026-12-05 10:00:00Z", "tomorrow", "+2026-12-05"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(crm_day_parse(crm_str_c(bad[i]), &day) == -1,
                      "accepted \"%s\"", bad[i]);
    }
}
END_TEST


static Suite *
check_day_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("day", &tc);

    tcase_add_test(tc, test_day_dates);
    tcase_add_test(tc, test_day_times);
    tcase_add_test(tc, test_day_refused);

    return s;
}


CRM_CHECK_MAIN(check_day_suite)
