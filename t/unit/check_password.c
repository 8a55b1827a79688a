/*
 * crm_password: argon2id hashing, legacy bcrypt verification with
 * published vectors, rehash flags, and verification from several threads.
 */

#include <pthread.h>
#include <time.h>

#include "crm_check.h"
#include "crm_password.h"


#define CHECK_PASSWORD_THREADS  4


typedef struct {
    const char  *pw;
    const char  *stored;
    int          ok;
} check_password_job_t;


static void check_password_verify(const char *pw, const char *stored,
    const crm_argon2_params_t *params, int match, int rehash);
static double check_password_now(void);
static void *check_password_thread(void *arg);
static Suite *check_password_suite(void);


/* cheap parameters, so the suite stays fast under valgrind */
static const crm_argon2_params_t  check_password_weak = { 64, 1, 1 };
static const crm_argon2_params_t  check_password_mid = { 128, 2, 1 };

/*
 * Published bcrypt vectors: OpenBSD's / Openwall's wrapper.c test set
 * ($2a$, also in passlib) and pyca/bcrypt's tests/test_bcrypt.py ($2b$).
 */
static const char  check_password_2a[] =
    "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
static const char  check_password_2a_empty[] =
    "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy";
static const char  check_password_2b[] =
    "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm";


static void
check_password_verify(const char *pw, const char *stored,
    const crm_argon2_params_t *params, int match, int rehash)
{
    int          m, r;
    crm_error_t  err;

    memset(&err, 0, sizeof(err));

    ck_assert_int_eq(crm_password_verify(pw, strlen(pw), stored, params, &m,
                                         &r, &err), CRM_OK);
    ck_assert_msg(m == match, "\"%s\" against %s: match %d", pw, stored, m);
    ck_assert_msg(r == rehash, "\"%s\" against %s: rehash %d", pw, stored,
                  r);
}


START_TEST(test_password_argon2id_owasp)
{
    int          m, r;
    char         a[CRM_PASSWORD_HASH_SIZE], b[CRM_PASSWORD_HASH_SIZE];
    crm_error_t  err;

    ck_assert_uint_eq(crm_argon2_owasp.m_cost_kib, 19456);
    ck_assert_uint_eq(crm_argon2_owasp.t_cost, 2);
    ck_assert_uint_eq(crm_argon2_owasp.parallelism, 1);

    ck_assert_int_eq(crm_password_hash("correct horse", 13,
                                       &crm_argon2_owasp, a, sizeof(a),
                                       &err), CRM_OK);
    ck_assert_int_eq(strncmp(a, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);

    ck_assert_int_eq(crm_password_verify("correct horse", 13, a,
                                         &crm_argon2_owasp, &m, &r, &err),
                     CRM_OK);
    ck_assert_int_eq(m, 1);
    ck_assert_int_eq(r, 0);

    ck_assert_int_eq(crm_password_verify("correct horsf", 13, a,
                                         &crm_argon2_owasp, &m, &r, &err),
                     CRM_OK);
    ck_assert_int_eq(m, 0);

    /* a fresh salt every time */
    ck_assert_int_eq(crm_password_hash("correct horse", 13,
                                       &crm_argon2_owasp, b, sizeof(b),
                                       &err), CRM_OK);
    ck_assert_str_ne(a, b);
}
END_TEST


START_TEST(test_password_argon2id_round_trip)
{
    int           m, r;
    char          h[CRM_PASSWORD_HASH_SIZE];
    crm_error_t   err;
    const char   *pw = "p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbcn\xc3\xaf" "code";

    ck_assert_int_eq(crm_password_hash(pw, strlen(pw), &check_password_mid,
                                       h, sizeof(h), &err), CRM_OK);

    check_password_verify(pw, h, &check_password_mid, 1, 0);
    check_password_verify("passw\xc3\xb6rd-\xc3\xbcn\xc3\xaf" "code", h,
                          &check_password_mid, 0, 0);
    check_password_verify("", h, &check_password_mid, 0, 0);

    /* the length is honoured: a prefix is not the password */
    ck_assert_int_eq(crm_password_verify(pw, strlen(pw) - 1, h,
                                         &check_password_mid, &m, &r, &err),
                     CRM_OK);
    ck_assert_int_eq(m, 0);

    /* an output buffer too small is an internal error, not an overflow */
    ck_assert_int_eq(crm_password_hash("x", 1, &check_password_mid, h, 40,
                                       &err), CRM_E_INTERNAL);
}
END_TEST


START_TEST(test_password_rehash)
{
    char         h[CRM_PASSWORD_HASH_SIZE];
    crm_error_t  err;

    ck_assert_int_eq(crm_password_hash("secret-pw", 9, &check_password_weak,
                                       h, sizeof(h), &err), CRM_OK);

    /* weaker memory or fewer passes than asked for: rehash */
    check_password_verify("secret-pw", h, &check_password_weak, 1, 0);
    check_password_verify("secret-pw", h, &check_password_mid, 1, 1);
    check_password_verify("secret-pw", h,
                          &(crm_argon2_params_t) { 64, 2, 1 }, 1, 1);
    check_password_verify("secret-pw", h,
                          &(crm_argon2_params_t) { 64, 1, 2 }, 1, 1);

    /* stronger than asked for: keep it */
    check_password_verify("secret-pw", h,
                          &(crm_argon2_params_t) { 32, 1, 1 }, 1, 0);

    /* exactly the OWASP parameters: no rehash; more memory asked: rehash */
    ck_assert_int_eq(crm_password_hash("secret-pw", 9, &crm_argon2_owasp,
                                       h, sizeof(h), &err), CRM_OK);
    check_password_verify("secret-pw", h, &crm_argon2_owasp, 1, 0);
    check_password_verify("secret-pw", h,
                          &(crm_argon2_params_t) { 47104, 1, 1 }, 1, 1);
}
END_TEST


START_TEST(test_password_bcrypt)
{
    int          m, r;
    crm_error_t  err;

    check_password_verify("U*U", check_password_2a, &crm_argon2_owasp, 1, 1);
    check_password_verify("", check_password_2a_empty, &crm_argon2_owasp,
                          1, 1);
    check_password_verify("Kk4DQuMMfZL9o", check_password_2b,
                          &crm_argon2_owasp, 1, 1);

    check_password_verify("U*U*", check_password_2a, &crm_argon2_owasp, 0, 1);
    check_password_verify("kk4DQuMMfZL9o", check_password_2b,
                          &crm_argon2_owasp, 0, 1);

    /* the same hash under $2y$ (PHP's name for $2b$) verifies too */
    check_password_verify("Kk4DQuMMfZL9o",
        "$2y$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",
        &crm_argon2_owasp, 1, 1);

    /* "U*U" plus a NUL and more is not "U*U" */
    ck_assert_int_eq(crm_password_verify("U*U\0tail", 8, check_password_2a,
                                         &crm_argon2_owasp, &m, &r, &err),
                     CRM_OK);
    ck_assert_int_eq(m, 0);

    /* one character of the checksum changed */
    check_password_verify("U*U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeX",
        &crm_argon2_owasp, 0, 1);
}
END_TEST


START_TEST(test_password_unusable_hashes)
{
    int          m, r;
    size_t       i;
    crm_error_t  err;

    static const char  *bad[] = {
        "",
        "plaintext",
        "$1$saltsalt$hash",
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
        "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "cHHOQ0lSfEHd/ouxRy7XDbl0D8Fq2KWG9Dd3c5gT0Sk",
        "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        "$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$aGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1$!!!$???",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA",

        /* 4 GiB: refused before libargon2 tries to allocate it */
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "cHHOQ0lSfEHd/ouxRy7XDbl0D8Fq2KWG9Dd3c5gT0Sk"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        m = -1;

        ck_assert_int_eq(crm_password_verify("U*U", 3, bad[i],
                                             &crm_argon2_owasp, &m, &r,
                                             &err), CRM_OK);
        ck_assert_msg(m == 0, "matched %s", bad[i]);
        ck_assert_int_eq(err.code, CRM_OK);
        ck_assert_msg(err.cause[0] != '\0', "no cause for %s", bad[i]);
    }

    ck_assert_int_eq(crm_password_verify("U*U", 3, NULL, &crm_argon2_owasp,
                                         &m, &r, &err), CRM_OK);
    ck_assert_int_eq(m, 0);
}
END_TEST


static double
check_password_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


START_TEST(test_password_dummy_costs_a_verify)
{
    int          i, m, r;
    char         h[CRM_PASSWORD_HASH_SIZE];
    double       t0, real, dummy;
    crm_error_t  err;

    ck_assert_int_eq(crm_password_hash("secret-pw", 9, &crm_argon2_owasp,
                                       h, sizeof(h), &err), CRM_OK);

    real = 1e9;
    dummy = 1e9;

    /* the best of three of each, to keep scheduler noise out */
    for (i = 0; i < 3; i++) {
        t0 = check_password_now();
        ck_assert_int_eq(crm_password_verify("wrong-pw", 8, h,
                                             &crm_argon2_owasp, &m, &r,
                                             &err), CRM_OK);
        t0 = check_password_now() - t0;
        real = t0 < real ? t0 : real;

        t0 = check_password_now();
        crm_password_verify_dummy("wrong-pw", 8, &crm_argon2_owasp);
        t0 = check_password_now() - t0;
        dummy = t0 < dummy ? t0 : dummy;
    }

    ck_assert_msg(dummy > real * 0.5 && dummy < real * 2.0,
                  "dummy %.4fs, real verify %.4fs", dummy, real);
}
END_TEST


static void *
check_password_thread(void *arg)
{
    int                    i, m, r;
    crm_error_t            err;
    check_password_job_t  *job = arg;

    job->ok = 1;

    for (i = 0; i < 3; i++) {
        if (crm_password_verify(job->pw, strlen(job->pw), job->stored,
                                &check_password_weak, &m, &r, &err)
            != CRM_OK || m != 1)
        {
            job->ok = 0;
        }

        if (crm_password_verify("nope", 4, job->stored, &check_password_weak,
                                &m, &r, &err)
            != CRM_OK || m != 0)
        {
            job->ok = 0;
        }
    }

    return NULL;
}


START_TEST(test_password_threads)
{
    int                   i;
    char                  h[CRM_PASSWORD_HASH_SIZE];
    pthread_t             tid[CHECK_PASSWORD_THREADS];
    crm_error_t           err;
    check_password_job_t  jobs[CHECK_PASSWORD_THREADS];

    ck_assert_int_eq(crm_password_hash("thread-pw", 9, &check_password_weak,
                                       h, sizeof(h), &err), CRM_OK);

    for (i = 0; i < CHECK_PASSWORD_THREADS; i++) {
        if (i % 2 == 0) {
            jobs[i].pw = "Kk4DQuMMfZL9o";
            jobs[i].stored = check_password_2b;

        } else {
            jobs[i].pw = "thread-pw";
            jobs[i].stored = h;
        }

        ck_assert_int_eq(pthread_create(&tid[i], NULL,
                                        check_password_thread, &jobs[i]),
                         0);
    }

    for (i = 0; i < CHECK_PASSWORD_THREADS; i++) {
        ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
        ck_assert_msg(jobs[i].ok, "thread %d failed", i);
    }
}
END_TEST


static Suite *
check_password_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("password", &tc);

    tcase_add_test(tc, test_password_argon2id_owasp);
    tcase_add_test(tc, test_password_argon2id_round_trip);
    tcase_add_test(tc, test_password_rehash);
    tcase_add_test(tc, test_password_bcrypt);
    tcase_add_test(tc, test_password_unusable_hashes);
    tcase_add_test(tc, test_password_dummy_costs_a_verify);
    tcase_add_test(tc, test_password_threads);

    return s;
}


CRM_CHECK_MAIN(check_password_suite)
