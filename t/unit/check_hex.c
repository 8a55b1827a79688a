/*
 * Hexadecimal: both directions, both cases in, lower case out, and every
 * malformed input refused.
 */

#include "crm_check.h"
#include "crm_hex.h"


START_TEST(test_hex_round_trip)
{
    char           out[9];
    unsigned char  b[4];

    static const unsigned char  bytes[4] = { 0x00, 0x9f, 0xa0, 0xff };

    crm_hex_encode(bytes, 4, out);
    ck_assert_str_eq(out, "009fa0ff");

    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009fa0ff"), b, 4), 0);
    ck_assert_int_eq(memcmp(b, bytes, 4), 0);
    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009FA0Ff"), b, 4), 0);
    ck_assert_int_eq(memcmp(b, bytes, 4), 0);

    crm_hex_encode(bytes, 0, out);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(crm_hex_decode(crm_str_lit(""), b, 0), 0);
}
END_TEST


START_TEST(test_hex_refused)
{
    unsigned char  b[4];

    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009fa0f"), b, 4), -1);
    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009fa0fff"), b, 4), -1);
    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009fa0fg"), b, 4), -1);
    ck_assert_int_eq(crm_hex_decode(crm_str_lit("009fa0f "), b, 4), -1);
    ck_assert_int_eq(crm_hex_decode(crm_str_lit("0x9fa0ff"), b, 4), -1);
    ck_assert_int_eq(crm_hex_decode((crm_str_t) { "00\0fa0ff", 8 }, b, 4),
                     -1);
}
END_TEST


static Suite *
check_hex_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("hex", &tc);

    tcase_add_test(tc, test_hex_round_trip);
    tcase_add_test(tc, test_hex_refused);

    return s;
}


CRM_CHECK_MAIN(check_hex_suite)
