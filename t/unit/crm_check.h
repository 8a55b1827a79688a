/*
 * Shared pieces of the Check unit tests: each check_<concept>.c defines
 * its suite with crm_check_suite() and ends with CRM_CHECK_MAIN().
 */

#ifndef CRM_CHECK_H
#define CRM_CHECK_H

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "crm_error.h"


/* asserts an error value in one line: code, field and message */
#define crm_check_error(err, c, f, m)                                        \
    do {                                                                      \
        ck_assert_int_eq((err)->code, (c));                                   \
        ck_assert_str_eq((err)->field, (f));                                  \
        ck_assert_str_eq((err)->message, (m));                                \
    } while (0)


/*
 * Runs one suite and exits non-zero on any failure.  The per-test timeout
 * is generous because the password tests run real argon2id and valgrind
 * slows everything down (with CK_FORK=no there is no timeout at all).
 */
#define CRM_CHECK_MAIN(make_suite)                                           \
int                                                                           \
main(void)                                                                    \
{                                                                             \
    int       failed;                                                         \
    SRunner  *sr;                                                             \
                                                                              \
    sr = srunner_create(make_suite());                                        \
    srunner_run_all(sr, CK_NORMAL);                                           \
    failed = srunner_ntests_failed(sr);                                       \
    srunner_free(sr);                                                         \
                                                                              \
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                         \
}


/* a suite with one test case of the same name, for small files */
static inline Suite *
crm_check_suite(const char *name, TCase **tc)
{
    Suite  *s;

    s = suite_create(name);
    *tc = tcase_create(name);
    tcase_set_timeout(*tc, 120);
    suite_add_tcase(s, *tc);

    return s;
}

#endif /* CRM_CHECK_H */
