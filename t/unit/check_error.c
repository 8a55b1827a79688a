/*
 * crm_error: the status table and RFC 9457 problem documents.
 */

#include "crm_check.h"
#include "crm_error.h"


static Suite *check_error_suite(void);


START_TEST(test_error_http_table)
{
    static const struct {
        crm_status_e   code;
        unsigned       status;
        const char    *title;
    } table[] = {
        { CRM_E_MALFORMED,    400, "Bad Request" },
        { CRM_E_UNAUTHORIZED, 401, "Unauthorized" },
        { CRM_E_FORBIDDEN,    403, "Forbidden" },
        { CRM_E_NOT_FOUND,    404, "Not Found" },
        { CRM_E_METHOD,       405, "Method Not Allowed" },
        { CRM_E_CONFLICT,     409, "Conflict" },
        { CRM_E_GONE,         410, "Gone" },
        { CRM_E_PRECONDITION, 412, "Precondition Failed" },
        { CRM_E_TOO_LARGE,    413, "Content Too Large" },
        { CRM_E_MEDIA_TYPE,   415, "Unsupported Media Type" },
        { CRM_E_INVALID,      422, "Unprocessable Content" },
        { CRM_E_RATE_LIMITED, 429, "Too Many Requests" },
        { CRM_E_INTERNAL,     500, "Internal Server Error" },
        { CRM_E_UNAVAILABLE,  503, "Service Unavailable" },
        { CRM_E_BAD_GATEWAY,  502, "Bad Gateway" },
        { CRM_E_GATEWAY_TIMEOUT, 504, "Gateway Timeout" }
    };

    size_t  i;

    /* every error code has a row, in the order of the enum */
    ck_assert_uint_eq(sizeof(table) / sizeof(table[0]), CRM_E_LAST - 1);

    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        ck_assert_uint_eq(crm_error_http_status(table[i].code),
                          table[i].status);
        ck_assert_str_eq(crm_error_title(table[i].code), table[i].title);
        ck_assert_int_eq(crm_error_for_http_status(table[i].status),
                         table[i].code);
    }

    /* statuses no error code stands for */
    ck_assert_int_eq(crm_error_for_http_status(200), CRM_OK);
    ck_assert_int_eq(crm_error_for_http_status(408), CRM_OK);
    ck_assert_int_eq(crm_error_for_http_status(501), CRM_OK);

    /* out of range values are a bug, reported as a 500 */
    ck_assert_uint_eq(crm_error_http_status(CRM_E_LAST), 500);
    ck_assert_uint_eq(crm_error_http_status((crm_status_e) 1000), 500);
    ck_assert_str_eq(crm_error_title(CRM_E_LAST), "Internal Server Error");
}
END_TEST


START_TEST(test_error_set_and_cause)
{
    crm_error_t   err;
    crm_status_e  rc;

    memset(&err, 'x', sizeof(err));

    rc = crm_error_set(&err, CRM_E_INVALID, "email", "must be %s", "valid");
    ck_assert_int_eq(rc, CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "email", "must be valid");
    ck_assert_str_eq(err.cause, "");

    rc = crm_error_cause(&err, "row %d", 7);
    ck_assert_int_eq(rc, CRM_E_INVALID);
    ck_assert_str_eq(err.cause, "row 7");

    /* causes are single log lines, whatever libpq's messages hold */
    crm_error_cause(&err, "connect failed: %s", "refused\n\tIs it up?\n");
    ck_assert_str_eq(err.cause, "connect failed: refused \tIs it up?");

    rc = crm_error_set(&err, CRM_E_NOT_FOUND, NULL, "no such lead");
    crm_check_error(&err, CRM_E_NOT_FOUND, "", "no such lead");
    ck_assert_str_eq(err.cause, "");

    /* a NULL err is allowed: the code still comes back */
    ck_assert_int_eq(crm_error_set(NULL, CRM_E_GONE, NULL, "x"), CRM_E_GONE);
}
END_TEST


START_TEST(test_error_set_truncates_safely)
{
    char         big[1000];
    crm_error_t  err;

    memset(big, 'f', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    crm_error_set(&err, CRM_E_INVALID, big, "%s", big);
    ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
    ck_assert_uint_eq(strlen(err.message), sizeof(err.message) - 1);

    /*
     * 62 ASCII bytes then a 2-byte character: the field holds 63 bytes,
     * so the character would be split and must go entirely
     */
    memset(big, 'a', 62);
    memcpy(&big[62], "\xc3\xa9zz", 5);

    crm_error_set(&err, CRM_E_INVALID, big, "m");
    ck_assert_uint_eq(strlen(err.field), 62);

    /* 61 + 2 bytes fit exactly and stay */
    memset(big, 'a', 61);
    memcpy(&big[61], "\xc3\xa9zz", 5);

    crm_error_set(&err, CRM_E_INVALID, big, "m");
    ck_assert_uint_eq(strlen(err.field), 63);
    ck_assert_int_eq((unsigned char) err.field[62], 0xa9);
}
END_TEST


START_TEST(test_error_render_with_field)
{
    char          *body;
    size_t         len;
    crm_error_t    err;

    crm_error_set(&err, CRM_E_INVALID, "email", "must be a valid address");
    crm_error_cause(&err, "secret detail that must not be sent");

    ck_assert_int_eq(crm_problem_render(&err, NULL, &body, &len), CRM_OK);
    ck_assert_str_eq(body,
        "{\"type\":\"about:blank\",\"title\":\"Unprocessable Content\","
        "\"status\":422,\"detail\":\"email: must be a valid address\","
        "\"errors\":[{\"field\":\"email\","
        "\"message\":\"must be a valid address\"}]}");
    ck_assert_uint_eq(len, strlen(body));
    ck_assert_ptr_null(strstr(body, "secret"));

    free(body);

    /* the request's id after the detail; "" is none */
    ck_assert_int_eq(crm_problem_render(&err,
                         "0f1e2d3c4b5a69788796a5b4c3d2e1f0", &body, &len),
                     CRM_OK);
    ck_assert_str_eq(body,
        "{\"type\":\"about:blank\",\"title\":\"Unprocessable Content\","
        "\"status\":422,\"detail\":\"email: must be a valid address\","
        "\"request_id\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\","
        "\"errors\":[{\"field\":\"email\","
        "\"message\":\"must be a valid address\"}]}");
    free(body);

    ck_assert_int_eq(crm_problem_render(&err, "", &body, &len), CRM_OK);
    ck_assert_ptr_null(strstr(body, "request_id"));
    free(body);
}
END_TEST


START_TEST(test_error_render_without_field)
{
    char          *body;
    size_t         len;
    crm_error_t    err;

    crm_error_set(&err, CRM_E_MALFORMED, NULL, "parse error: \"x\"");

    ck_assert_int_eq(crm_problem_render(&err, NULL, &body, &len), CRM_OK);
    ck_assert_str_eq(body,
        "{\"type\":\"about:blank\",\"title\":\"Bad Request\","
        "\"status\":400,\"detail\":\"parse error: \\\"x\\\"\"}");
    free(body);

    /* an empty message falls back to the title */
    crm_error_set(&err, CRM_E_NOT_FOUND, NULL, "%s", "");

    ck_assert_int_eq(crm_problem_render(&err, NULL, &body, &len), CRM_OK);
    ck_assert_str_eq(body,
        "{\"type\":\"about:blank\",\"title\":\"Not Found\","
        "\"status\":404,\"detail\":\"Not Found\"}");
    free(body);

    crm_error_set(&err, CRM_E_CONFLICT, "email", "%s", "");

    ck_assert_int_eq(crm_problem_render(&err, NULL, &body, &len), CRM_OK);
    ck_assert_str_eq(body,
        "{\"type\":\"about:blank\",\"title\":\"Conflict\","
        "\"status\":409,\"detail\":\"email: Conflict\","
        "\"errors\":[{\"field\":\"email\",\"message\":\"Conflict\"}]}");
    free(body);
}
END_TEST


START_TEST(test_error_render_invalid_utf8)
{
    char          *body;
    size_t         len;
    crm_error_t    err;

    /* bytes that are not UTF-8 must not turn a 422 into a 500 */
    crm_error_set(&err, CRM_E_INVALID, "na\xffme", "bad \xc0\xaf value");

    ck_assert_int_eq(crm_problem_render(&err, NULL, &body, &len), CRM_OK);
    ck_assert_ptr_nonnull(strstr(body, "\"field\":\"na?me\""));
    ck_assert_ptr_nonnull(strstr(body, "\"message\":\"bad ?? value\""));
    free(body);
}
END_TEST


static Suite *
check_error_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("error", &tc);

    tcase_add_test(tc, test_error_http_table);
    tcase_add_test(tc, test_error_set_and_cause);
    tcase_add_test(tc, test_error_set_truncates_safely);
    tcase_add_test(tc, test_error_render_with_field);
    tcase_add_test(tc, test_error_render_without_field);
    tcase_add_test(tc, test_error_render_invalid_utf8);

    return s;
}


CRM_CHECK_MAIN(check_error_suite)
