/*
 * crm_validate: email normalisation, UUIDs, UTF-8 and free text.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_validate.h"


static void check_validate_email_ok(const char *in, const char *want);
static void check_validate_email_bad(const char *in, size_t len);
static Suite *check_validate_suite(void);


static void
check_validate_email_ok(const char *in, const char *want)
{
    char         out[CRM_EMAIL_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_email_normalize(crm_str_c(in), "email", out, &err)
                  == CRM_OK, "rejected \"%s\"", in);
    ck_assert_str_eq(out, want);
}


static void
check_validate_email_bad(const char *in, size_t len)
{
    char         out[CRM_EMAIL_MAX + 1];
    crm_error_t  err;

    ck_assert_msg(crm_email_normalize((crm_str_t) { in, len }, "email", out,
                                      &err) == CRM_E_INVALID,
                  "accepted \"%.*s\"", (int) len, in);
    crm_check_error(&err, CRM_E_INVALID, "email",
                    "must be a valid email address");
}

#define check_validate_email_bad_c(s)  check_validate_email_bad(s, strlen(s))


START_TEST(test_validate_email_normalises)
{
    check_validate_email_ok("ana@example.com", "ana@example.com");
    check_validate_email_ok("  Ana.Maria@Example.COM \t\r\n",
                            "ana.maria@example.com");
    check_validate_email_ok("\vX+tag@Sub.Example.co.uk\f",
                            "x+tag@sub.example.co.uk");
    check_validate_email_ok("o'brien_{x}|y~z@mail-1.example.io",
                            "o'brien_{x}|y~z@mail-1.example.io");
    check_validate_email_ok("a@b.cd", "a@b.cd");
    check_validate_email_ok("1@2.xn", "1@2.xn");
}
END_TEST


START_TEST(test_validate_email_rejects)
{
    char    buf[512], padded[520];
    size_t  i;

    check_validate_email_bad_c("");
    check_validate_email_bad_c("   ");
    check_validate_email_bad_c("ana.example.com");
    check_validate_email_bad_c("ana@@example.com");
    check_validate_email_bad_c("ana@b@example.com");
    check_validate_email_bad_c("@example.com");
    check_validate_email_bad_c("ana@");
    check_validate_email_bad_c(".ana@example.com");
    check_validate_email_bad_c("ana.@example.com");
    check_validate_email_bad_c("an..a@example.com");
    check_validate_email_bad_c("ana@example..com");
    check_validate_email_bad_c("ana@.example.com");
    check_validate_email_bad_c("ana@example.com.");
    check_validate_email_bad_c("ana@localhost");
    check_validate_email_bad_c("ana@example.c");
    check_validate_email_bad_c("ana@example.c0m");
    check_validate_email_bad_c("ana@10.0.0.1");
    check_validate_email_bad_c("ana@-example.com");
    check_validate_email_bad_c("ana@example-.com");
    check_validate_email_bad_c("ana@exa_mple.com");
    check_validate_email_bad_c("ana maria@example.com");
    check_validate_email_bad_c("\"ana\"@example.com");
    check_validate_email_bad_c("ana(x)@example.com");
    check_validate_email_bad_c("ana@[127.0.0.1]");
    check_validate_email_bad_c("an\xc3\xa1@example.com");
    check_validate_email_bad_c("ana@ex\xc3\xa1mple.com");
    check_validate_email_bad_c("ana\x01@example.com");
    check_validate_email_bad_c("ana@example.com\x7f");
    check_validate_email_bad_c("ana\r\n@example.com");
    check_validate_email_bad("ana\0@example.com", 16);
    check_validate_email_bad("ana@example.com\0", 16);

    /* a local part of 64 is fine, of 65 is not */
    memset(buf, 'l', 64);
    strcpy(buf + 64, "@example.com");
    check_validate_email_ok(buf, buf);

    memset(buf, 'l', 65);
    strcpy(buf + 65, "@example.com");
    check_validate_email_bad_c(buf);

    /* a label of 63 is fine, of 64 is not */
    strcpy(buf, "a@");
    memset(buf + 2, 'd', 63);
    strcpy(buf + 65, ".com");
    check_validate_email_ok(buf, buf);

    memset(buf + 2, 'd', 64);
    strcpy(buf + 66, ".com");
    check_validate_email_bad_c(buf);

    /* 254 characters in all is the limit; 255 is over */
    strcpy(buf, "a@");

    for (i = 0; i < 22; i++) {
        memcpy(buf + 2 + i * 11, "abcdefghij.", 11);
    }

    strcpy(buf + 2 + 22 * 11, "abcdef.com");
    ck_assert_uint_eq(strlen(buf), 254);
    check_validate_email_ok(buf, buf);

    /* white space around does not count towards the limit */
    snprintf(padded, sizeof(padded), " \t%s\r\n ", buf);
    check_validate_email_ok(padded, buf);

    strcpy(buf + 2 + 22 * 11, "abcdefg.com");
    ck_assert_uint_eq(strlen(buf), 255);
    check_validate_email_bad_c(buf);
}
END_TEST


START_TEST(test_validate_uuid)
{
    ck_assert(crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5f")));
    ck_assert(crm_uuid_valid(crm_str_lit(
        "6F1C2A8E-9D3B-4C5A-8E7F-0A1B2C3D4E5F")));
    ck_assert(crm_uuid_valid(crm_str_lit(
        "00000000-0000-0000-0000-000000000000")));

    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0A1B2C3D4E5F")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e9d3b4c5a8e7f0a1b2c3d4e5f")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "{6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5f}")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5fa")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5g")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a_8e7f-0a1b2c3d4e5f")));
    ck_assert(!crm_uuid_valid(crm_str_lit(
        "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5\0")));
    ck_assert(!crm_uuid_valid(crm_str_lit("")));
}
END_TEST


START_TEST(test_validate_utf8_length)
{
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("")), 0);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("abc")), 3);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xc3\xa9t\xc3\xa9")), 3);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xe2\x82\xac")), 1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xf0\x9f\x98\x80!")), 2);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xf4\x8f\xbf\xbf")), 1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xed\x9f\xbf")), 1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("a\0b")), 3);

    /* overlong forms of '/', NUL and U+FFFF */
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xc0\xaf")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xc0\x80")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xe0\x80\xaf")),
                      (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xf0\x8f\xbf\xbf")),
                      (size_t) -1);

    /* surrogates, and beyond U+10FFFF */
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xed\xa0\x80")),
                      (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xed\xbf\xbf")),
                      (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xf4\x90\x80\x80")),
                      (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xf8\x88\x80\x80\x80")),
                      (size_t) -1);

    /* stray continuation, truncated sequences, invalid bytes */
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\x80")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("a\xc3")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xe2\x82")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xe2\x82x")),
                      (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xff")), (size_t) -1);
    ck_assert_uint_eq(crm_utf8_length(crm_str_lit("\xfe")), (size_t) -1);

    /* the length bounds the read: a valid prefix of a longer buffer */
    ck_assert_uint_eq(crm_utf8_length((crm_str_t) { "\xc3\xa9", 1 }),
                      (size_t) -1);
}
END_TEST


START_TEST(test_validate_text_check)
{
    crm_error_t  err;

    ck_assert_int_eq(crm_text_check(crm_str_lit("Ana"), "name", 1, 3, 0,
                                    &err), CRM_OK);
    ck_assert_int_eq(crm_text_check(crm_str_lit("\xc3\xa9\xc3\xa9\xc3\xa9"),
                                    "name", 1, 3, 0, &err), CRM_OK);

    ck_assert_int_eq(crm_text_check(crm_str_lit("Anna"), "name", 1, 3, 0,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must be between 1 and 3 characters");

    ck_assert_int_eq(crm_text_check(crm_str_lit("abcdefg"), "password", 8,
                                    0, 0, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "password",
                    "must be at least 8 characters");

    ck_assert_int_eq(crm_text_check(crm_str_lit("abcd"), "code", 0, 3, 0,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "code",
                    "must be at most 3 characters");

    ck_assert_int_eq(crm_text_check(crm_str_lit("ab"), "currency", 3, 3, 0,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "currency",
                    "must be exactly 3 characters");

    ck_assert_int_eq(crm_text_check(crm_str_lit(""), "q", 1, 0, 0, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "q", "must not be empty");

    ck_assert_int_eq(crm_text_check(crm_str_lit(""), "q", 0, 0, 0, &err),
                     CRM_OK);

    /* control characters */
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\nb"), "name", 0, 0, 0,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must not contain control characters");

    ck_assert_int_eq(crm_text_check(crm_str_lit("a\nb\tc"), "notes", 0, 0,
                                    1, &err), CRM_OK);
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\r\nb"), "notes", 0, 0, 1,
                                    &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\0b"), "notes", 0, 0, 1,
                                    &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_text_check(crm_str_lit("\x1b[31m"), "notes", 0, 0,
                                    1, &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\x7f"), "name", 0, 0, 0,
                                    &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\xc2\x9b"), "name", 0, 0,
                                    0, &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\xc2\xa0"), "name", 0, 0,
                                    0, &err), CRM_OK);

    /* invalid UTF-8 */
    ck_assert_int_eq(crm_text_check(crm_str_lit("a\xff"), "name", 0, 0, 0,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name", "must be valid UTF-8");
}
END_TEST


START_TEST(test_validate_text_printable)
{
    char  out[8];

    ck_assert_uint_eq(crm_text_printable(crm_str_lit("ab c"), out,
                                         sizeof(out)), 4);
    ck_assert_str_eq(out, "ab c");

    /* control bytes, DEL and every non-ASCII byte become '?' */
    ck_assert_uint_eq(crm_text_printable(crm_str_lit("a\n\x7f\xc3\xa9"),
                                         out, sizeof(out)), 5);
    ck_assert_str_eq(out, "a????");

    /* cut to the buffer, always terminated */
    ck_assert_uint_eq(crm_text_printable(crm_str_lit("0123456789"), out,
                                         sizeof(out)), 7);
    ck_assert_str_eq(out, "0123456");
}
END_TEST


static Suite *
check_validate_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("validate", &tc);

    tcase_add_test(tc, test_validate_email_normalises);
    tcase_add_test(tc, test_validate_email_rejects);
    tcase_add_test(tc, test_validate_uuid);
    tcase_add_test(tc, test_validate_utf8_length);
    tcase_add_test(tc, test_validate_text_check);
    tcase_add_test(tc, test_validate_text_printable);

    return s;
}


CRM_CHECK_MAIN(check_validate_suite)
