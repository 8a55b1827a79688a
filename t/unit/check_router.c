/*
 * crm_router: path patterns, 404 against 405, the Allow header.
 */

#include "crm_check.h"
#include "crm_router.h"


static crm_status_e check_router_match(unsigned method, const char *path,
    const crm_route_t **route, crm_route_match_t *m, unsigned *allowed);
static Suite *check_router_suite(void);


static const crm_route_t  check_router_routes[] = {
    { CRM_M_GET,    "/",                            "root" },
    { CRM_M_GET,    "/leads",                       "leads.list" },
    { CRM_M_POST,   "/leads/",                      "leads.create" },
    { CRM_M_GET,    "/leads/export",                "leads.export" },
    { CRM_M_GET,    "/leads/{lead_id}",             "leads.get" },
    { CRM_M_PUT,    "/leads/{lead_id}",             "leads.put" },
    { CRM_M_DELETE, "/leads/{lead_id}",             "leads.delete" },
    { CRM_M_PUT,    "/leads/{lead_id}/stage",       "leads.stage" },
    { CRM_M_GET,    "/crm/{crm_type}/logs",         "crm.logs" },
    { CRM_M_POST,   "/a/{b}/c/{d}/e/{f}/g/{h}/i/{j}", "too.many" }
};

#define CHECK_ROUTER_N                                                       \
    (sizeof(check_router_routes) / sizeof(check_router_routes[0]))


static crm_status_e
check_router_match(unsigned method, const char *path,
    const crm_route_t **route, crm_route_match_t *m, unsigned *allowed)
{
    return crm_router_match(check_router_routes, CHECK_ROUTER_N, method,
                            crm_str_c(path), route, m, allowed);
}


START_TEST(test_router_match_params)
{
    unsigned            allowed;
    crm_route_match_t   m;
    const crm_route_t  *r;

    ck_assert_int_eq(check_router_match(CRM_M_GET, "/leads/42", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.get");
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_uint_eq(m.params[0].len, 2);
    ck_assert_int_eq(memcmp(m.params[0].data, "42", 2), 0);

    ck_assert_int_eq(check_router_match(CRM_M_PUT, "/leads/abc-1/stage", &r,
                                        &m, &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.stage");
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert(crm_str_eq(m.params[0], "abc-1"));

    ck_assert_int_eq(check_router_match(CRM_M_GET, "/crm/klaviyo/logs", &r,
                                        &m, &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "crm.logs");
    ck_assert(crm_str_eq(m.params[0], "klaviyo"));

    /* parameters point into the path, in order */
    ck_assert_int_eq(check_router_match(CRM_M_DELETE, "/leads/x", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.delete");

    /* the table order decides between a literal and a placeholder */
    ck_assert_int_eq(check_router_match(CRM_M_GET, "/leads/export", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.export");
    ck_assert_uint_eq(m.nparams, 0);

    ck_assert_int_eq(check_router_match(CRM_M_GET, "/", &r, &m, &allowed),
                     CRM_OK);
    ck_assert_str_eq(r->data, "root");
}
END_TEST


START_TEST(test_router_trailing_slash)
{
    unsigned            allowed;
    crm_route_match_t   m;
    const crm_route_t  *r;

    ck_assert_int_eq(check_router_match(CRM_M_GET, "/leads/", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.list");

    /* the pattern is written with a slash, the request without */
    ck_assert_int_eq(check_router_match(CRM_M_POST, "/leads", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.create");

    ck_assert_int_eq(check_router_match(CRM_M_GET, "/leads/42/", &r, &m,
                                        &allowed), CRM_OK);
    ck_assert_str_eq(r->data, "leads.get");
    ck_assert(crm_str_eq(m.params[0], "42"));

    /* only one slash is insignificant */
    ck_assert_int_eq(check_router_match(CRM_M_GET, "/leads//", &r, &m,
                                        &allowed), CRM_E_NOT_FOUND);
}
END_TEST


START_TEST(test_router_not_found)
{
    unsigned            allowed;
    crm_route_match_t   m;
    const crm_route_t  *r;

    static const char  *paths[] = {
        "",
        "leads",
        "/lead",
        "/leadsx",
        "/Leads",
        "/leads/42/stage/x",
        "/leads//stage",
        "//leads",
        "/crm//logs",
        "/leads/42/history",
        "/nope"
    };

    size_t  i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        allowed = 99;

        ck_assert_msg(check_router_match(CRM_M_GET, paths[i], &r, &m,
                                         &allowed) == CRM_E_NOT_FOUND,
                      "matched \"%s\"", paths[i]);
        ck_assert_ptr_null(r);
        ck_assert_uint_eq(allowed, 0);
    }

    /* more placeholders than CRM_ROUTE_MAX_PARAMS never match */
    ck_assert_int_eq(check_router_match(CRM_M_POST, "/a/1/c/2/e/3/g/4/i/5",
                                        &r, &m, &allowed), CRM_E_NOT_FOUND);
}
END_TEST


START_TEST(test_router_method_not_allowed)
{
    char                buf[64];
    unsigned            allowed;
    crm_route_match_t   m;
    const crm_route_t  *r;

    ck_assert_int_eq(check_router_match(CRM_M_POST, "/leads/42", &r, &m,
                                        &allowed), CRM_E_METHOD);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(allowed, CRM_M_GET | CRM_M_PUT | CRM_M_DELETE);

    ck_assert_uint_eq(crm_router_allow_header(allowed, buf, sizeof(buf)),
                      strlen("GET, PUT, DELETE"));
    ck_assert_str_eq(buf, "GET, PUT, DELETE");

    /* /leads/export matches the literal and the placeholder routes */
    ck_assert_int_eq(check_router_match(CRM_M_PATCH, "/leads/export", &r, &m,
                                        &allowed), CRM_E_METHOD);
    ck_assert_uint_eq(allowed, CRM_M_GET | CRM_M_PUT | CRM_M_DELETE);

    ck_assert_int_eq(check_router_match(CRM_M_DELETE, "/leads", &r, &m,
                                        &allowed), CRM_E_METHOD);
    ck_assert_uint_eq(allowed, CRM_M_GET | CRM_M_POST);

    /* HEAD is a method of its own unless the table says otherwise */
    ck_assert_int_eq(check_router_match(CRM_M_HEAD, "/", &r, &m, &allowed),
                     CRM_E_METHOD);
    ck_assert_uint_eq(allowed, CRM_M_GET);
}
END_TEST


START_TEST(test_router_allow_header)
{
    char  buf[64];

    ck_assert_uint_eq(crm_router_allow_header(0x3f, buf, sizeof(buf)), 35);
    ck_assert_str_eq(buf, "GET, HEAD, POST, PUT, PATCH, DELETE");

    ck_assert_uint_eq(crm_router_allow_header(CRM_M_DELETE | CRM_M_GET, buf,
                                              sizeof(buf)), 11);
    ck_assert_str_eq(buf, "GET, DELETE");

    ck_assert_uint_eq(crm_router_allow_header(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");

    /* a small buffer gets whole methods only, and a NUL */
    ck_assert_uint_eq(crm_router_allow_header(0x3f, buf, 11), 9);
    ck_assert_str_eq(buf, "GET, HEAD");

    ck_assert_uint_eq(crm_router_allow_header(0x3f, buf, 3), 0);
    ck_assert_str_eq(buf, "");

    ck_assert_uint_eq(crm_router_allow_header(0x3f, buf, 0), 0);
}
END_TEST


static Suite *
check_router_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("router", &tc);

    tcase_add_test(tc, test_router_match_params);
    tcase_add_test(tc, test_router_trailing_slash);
    tcase_add_test(tc, test_router_not_found);
    tcase_add_test(tc, test_router_method_not_allowed);
    tcase_add_test(tc, test_router_allow_header);

    return s;
}


CRM_CHECK_MAIN(check_router_suite)
