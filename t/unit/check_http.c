/*
 * Outbound exchanges as the services see them: request headers in the
 * order added, response headers as received (a 100 Continue's dropped),
 * looked up without regard to case, bounded in number, and Retry-After.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_http.h"


#define check_line(res, s)                                                   \
    ck_assert_int_eq(crm_http_response_header_line(res, s, strlen(s)), 0)


START_TEST(test_http_request_headers)
{
    crm_arena_t                arena;
    crm_http_request_t         req;
    const crm_http_header_t   *h;

    memset(&arena, 0, sizeof(arena));
    memset(&req, 0, sizeof(req));

    ck_assert_int_eq(crm_http_request_header(&req, &arena, "Accept", "a/b"),
                     0);
    ck_assert_int_eq(crm_http_request_header(&req, &arena, "revision",
                                             "2024-10-15"), 0);

    h = req.headers;
    ck_assert_str_eq(h->name, "Accept");
    ck_assert_str_eq(h->value, "a/b");
    ck_assert_str_eq(h->next->name, "revision");
    ck_assert_ptr_eq(h->next, req.last);
    ck_assert_ptr_null(h->next->next);

    crm_arena_free(&arena);
}
END_TEST


START_TEST(test_http_response_headers)
{
    crm_http_response_t  res;

    memset(&res, 0, sizeof(res));

    check_line(&res, "HTTP/1.1 100 Continue\r\n");
    check_line(&res, "X-Early: 1\r\n");
    check_line(&res, "\r\n");
    check_line(&res, "HTTP/1.1 429 Too Many Requests\r\n");
    check_line(&res, "Content-Type: application/json\r\n");
    check_line(&res, "Set-Cookie: a=1\r\n");
    check_line(&res, "Set-Cookie: b=2\r\n");
    check_line(&res, "Retry-After:   \t7\r\n");
    check_line(&res, "no colon here\r\n");
    check_line(&res, ": no name\r\n");
    check_line(&res, "Empty:\r\n");

    ck_assert_ptr_null(crm_http_response_header(&res, "X-Early"));
    ck_assert_str_eq(crm_http_response_header(&res, "content-type"),
                     "application/json");
    ck_assert_str_eq(crm_http_response_header(&res, "SET-COOKIE"), "a=1");
    ck_assert_str_eq(crm_http_response_header(&res, "Empty"), "");
    ck_assert_uint_eq(res.nheaders, 5);
    ck_assert_uint_eq(crm_http_retry_after(&res), 7);

    crm_http_response_clear(&res);
    ck_assert_ptr_null(res.headers);
    ck_assert_uint_eq(res.nheaders, 0);
}
END_TEST


START_TEST(test_http_response_bounded)
{
    int                  i;
    char                 line[32];
    crm_http_response_t  res;

    memset(&res, 0, sizeof(res));

    for (i = 0; i < CRM_HTTP_HEADERS_MAX + 10; i++) {
        snprintf(line, sizeof(line), "X-%d: %d\r\n", i, i);
        check_line(&res, line);
    }

    ck_assert_uint_eq(res.nheaders, CRM_HTTP_HEADERS_MAX);
    ck_assert_ptr_null(crm_http_response_header(&res, "X-70"));
    ck_assert_str_eq(crm_http_response_header(&res, "X-63"), "63");

    crm_http_response_clear(&res);
}
END_TEST


START_TEST(test_http_retry_after)
{
    size_t               i;
    crm_http_response_t  res;

    static const struct {
        const char  *line;
        unsigned     seconds;
    } cases[] = {
        { "Retry-After: 0", 0 },
        { "Retry-After: 120", 120 },
        { "Retry-After: 999999", 86400 },
        { "Retry-After: Wed, 21 Oct 2026 07:28:00 GMT", 0 },
        { "Retry-After: -5", 0 },
        { "Retry-After: 5s", 0 },
        { "X-Other: 5", 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&res, 0, sizeof(res));
        check_line(&res, cases[i].line);
        ck_assert_msg(crm_http_retry_after(&res) == cases[i].seconds, "%s",
                      cases[i].line);
        crm_http_response_clear(&res);
    }
}
END_TEST


static Suite *
check_http_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("http", &tc);

    tcase_add_test(tc, test_http_request_headers);
    tcase_add_test(tc, test_http_response_headers);
    tcase_add_test(tc, test_http_response_bounded);
    tcase_add_test(tc, test_http_retry_after);

    return s;
}


CRM_CHECK_MAIN(check_http_suite)
