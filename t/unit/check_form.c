/*
 * crm_form: urlencoded lookups and the allowed-names check.
 */

#include "crm_check.h"
#include "crm_form.h"


static crm_status_e check_form_get(const char *form, const char *name,
    char *out, size_t size, int *found, crm_error_t *err);
static Suite *check_form_suite(void);


static crm_status_e
check_form_get(const char *form, const char *name, char *out, size_t size,
    int *found, crm_error_t *err)
{
    return crm_form_get(crm_str_c(form), name, out, size, found, err);
}


START_TEST(test_form_get_decodes)
{
    int          found;
    char         out[64];
    crm_error_t  err;

    static const char  form[] =
        "grant_type=password&username=ana%40example.com"
        "&password=p%2Bw+d%26%3d%c3%A9&scope=";

    ck_assert_int_eq(check_form_get(form, "username", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "ana@example.com");

    /* '+' is a space, "%2B" a plus; hex is case-insensitive */
    ck_assert_int_eq(check_form_get(form, "password", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "p+w d&=\xc3\xa9");

    ck_assert_int_eq(check_form_get(form, "scope", out, sizeof(out), &found,
                                    &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "");

    ck_assert_int_eq(check_form_get(form, "client_id", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_int_eq(found, 0);
    ck_assert_str_eq(out, "");

    /* names are not prefixes of each other */
    ck_assert_int_eq(check_form_get(form, "user", out, sizeof(out), &found,
                                    &err), CRM_OK);
    ck_assert_int_eq(found, 0);
    ck_assert_int_eq(check_form_get(form, "usernames", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_int_eq(found, 0);
}
END_TEST


START_TEST(test_form_get_shapes)
{
    int          found;
    char         out[16];
    crm_error_t  err;

    /* encoded names, empty pairs, a name without '=' */
    ck_assert_int_eq(check_form_get("&&a=1&&%6cimit=5&", "limit", out,
                                    sizeof(out), &found, &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "5");

    ck_assert_int_eq(check_form_get("flag&x=1", "flag", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "");

    ck_assert_int_eq(check_form_get("a=b=c", "a", out, sizeof(out), &found,
                                    &err), CRM_OK);
    ck_assert_str_eq(out, "b=c");

    ck_assert_int_eq(check_form_get("", "a", out, sizeof(out), &found, &err),
                     CRM_OK);
    ck_assert_int_eq(found, 0);

    ck_assert_int_eq(check_form_get("first+name=Ana+B", "first name", out,
                                    sizeof(out), &found, &err), CRM_OK);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(out, "Ana B");
}
END_TEST


START_TEST(test_form_get_errors)
{
    int          found;
    char         out[8];
    crm_error_t  err;

    static const char  *bad[] = {
        "a=%",
        "a=%4",
        "a=%zz",
        "a=%4g",
        "a=1&b=%",
        "%=1&a=2",
        "a%2=1"
    };

    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        found = 1;

        ck_assert_msg(check_form_get(bad[i], "a", out, sizeof(out), &found,
                                     &err) == CRM_E_MALFORMED,
                      "accepted %s", bad[i]);
        crm_check_error(&err, CRM_E_MALFORMED, "",
                        "invalid percent-encoding in form data");
        ck_assert_int_eq(found, 0);
    }

    ck_assert_int_eq(check_form_get("a=x%00y", "a", out, sizeof(out), &found,
                                    &err), CRM_E_MALFORMED);
    crm_check_error(&err, CRM_E_MALFORMED, "",
                    "form data contains a NUL byte");

    ck_assert_int_eq(check_form_get("a=1&a=2", "a", out, sizeof(out), &found,
                                    &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "a", "must not be repeated");

    /* "%61" is "a" too */
    ck_assert_int_eq(check_form_get("a=1&%61=2", "a", out, sizeof(out),
                                    &found, &err), CRM_E_INVALID);
    ck_assert_str_eq(err.message, "must not be repeated");

    /* 7 bytes fit in out[8]; 8 do not, and nothing is cut silently */
    ck_assert_int_eq(check_form_get("a=1234567", "a", out, sizeof(out),
                                    &found, &err), CRM_OK);
    ck_assert_str_eq(out, "1234567");

    ck_assert_int_eq(check_form_get("a=12345678", "a", out, sizeof(out),
                                    &found, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "a", "is too long");
    ck_assert_str_eq(out, "");

    /* escapes shrink: 8 encoded bytes decode to 7 */
    ck_assert_int_eq(check_form_get("a=%41%42%43%44%45%46%47", "a", out,
                                    sizeof(out), &found, &err), CRM_OK);
    ck_assert_str_eq(out, "ABCDEFG");
}
END_TEST


START_TEST(test_form_check_names)
{
    char          big[300];
    crm_error_t   err;

    static const char *const  names[] = {
        "username", "password", "grant_type", NULL
    };

    ck_assert_int_eq(crm_form_check_names(
        crm_str_lit("username=a&password=b&grant_type=password"), names,
        &err), CRM_OK);
    ck_assert_int_eq(crm_form_check_names(crm_str_lit(""), names, &err),
                     CRM_OK);
    ck_assert_int_eq(crm_form_check_names(crm_str_lit("user%6eame=a"),
                                          names, &err), CRM_OK);

    ck_assert_int_eq(crm_form_check_names(
        crm_str_lit("username=a&scope=admin"), names, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "scope", "unknown parameter");

    ck_assert_int_eq(crm_form_check_names(crm_str_lit("user=a"), names,
                                          &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "user", "unknown parameter");

    /* the name in the error is decoded, printable and cut */
    ck_assert_int_eq(crm_form_check_names(crm_str_lit("a%0Ab%C3%A9=1"),
                                          names, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "a?b??", "unknown parameter");

    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(crm_form_check_names(crm_str_c(big), names, &err),
                     CRM_E_INVALID);
    ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
    ck_assert_str_eq(err.field + sizeof(err.field) - 4, "...");

    ck_assert_int_eq(crm_form_check_names(crm_str_lit("=x"), names, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "(empty)", "unknown parameter");

    ck_assert_int_eq(crm_form_check_names(crm_str_lit("username=a&%zz=1"),
                                          names, &err), CRM_E_MALFORMED);
}
END_TEST


static Suite *
check_form_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("form", &tc);

    tcase_add_test(tc, test_form_get_decodes);
    tcase_add_test(tc, test_form_get_shapes);
    tcase_add_test(tc, test_form_get_errors);
    tcase_add_test(tc, test_form_check_names);

    return s;
}


CRM_CHECK_MAIN(check_form_suite)
