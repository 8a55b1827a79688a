/*
 * crm_sig: a known answer computed apart from crm_sig.c (openssl dgst
 * -sha256 -hmac), the tolerance either side of now, and every way a
 * signature header must fail.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_sig.h"


#define CHECK_SIG_KEY   "whsec_test"
#define CHECK_SIG_T     1700000000
#define CHECK_SIG_BODY  "{\"id\":\"evt_1\"}"
#define CHECK_SIG_V1                                                          \
    "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
#define CHECK_SIG_OTHER                                                       \
    "0000000000000000000000000000000000000000000000000000000000000000"


static crm_status_e check_sig_verify(const char *header, const char *body,
    int64_t now, crm_error_t *err);
static void check_sig_fails(const char *header, int64_t now,
    const char *message);
static Suite *check_sig_suite(void);


static crm_status_e
check_sig_verify(const char *header, const char *body, int64_t now,
    crm_error_t *err)
{
    return crm_sig_verify((const unsigned char *) CHECK_SIG_KEY,
                          sizeof(CHECK_SIG_KEY) - 1, crm_str_c(header),
                          crm_str_c(body), now, CRM_SIG_TOLERANCE, err);
}


static void
check_sig_fails(const char *header, int64_t now, const char *message)
{
    crm_error_t  err;

    ck_assert_msg(check_sig_verify(header, CHECK_SIG_BODY, now, &err)
                  == CRM_E_UNAUTHORIZED, "accepted \"%s\"", header);
    ck_assert_msg(strcmp(err.message, message) == 0,
                  "\"%s\": \"%s\", not \"%s\"", header, err.message,
                  message);
    ck_assert_str_eq(err.field, "");
}


START_TEST(test_sig_known_answer)
{
    char         v1[CRM_SIG_HEX_LEN + 1];
    crm_error_t  err;

    ck_assert_int_eq(crm_sig_sign((const unsigned char *) CHECK_SIG_KEY,
                                  sizeof(CHECK_SIG_KEY) - 1, CHECK_SIG_T,
                                  crm_str_lit(CHECK_SIG_BODY), v1), 0);
    ck_assert_str_eq(v1, CHECK_SIG_V1);

    ck_assert_int_eq(check_sig_verify("t=1700000000,v1=" CHECK_SIG_V1,
                                      CHECK_SIG_BODY, CHECK_SIG_T, &err),
                     CRM_OK);

    /* a space after a comma, an unknown scheme, the elements reordered */
    ck_assert_int_eq(check_sig_verify("v0=abc, t=1700000000,  v1="
                                      CHECK_SIG_V1 ",x=",
                                      CHECK_SIG_BODY, CHECK_SIG_T, &err),
                     CRM_OK);

    /* upper-case hex */
    ck_assert_int_eq(check_sig_verify("t=1700000000,v1="
                                      "C89214B5B5DA833DAED6F0B8C5BB6BD5"
                                      "8CEA9022BD80CCC78230F3942D632925",
                                      CHECK_SIG_BODY, CHECK_SIG_T, &err),
                     CRM_OK);
}
END_TEST


START_TEST(test_sig_round_trip)
{
    char           header[128], v1[CRM_SIG_HEX_LEN + 1];
    crm_error_t    err;
    unsigned char  key[32];

    static const char  body[] = "{\"order_id\":\"o-1\",\"amount_cents\":100}";

    memset(key, 0xa5, sizeof(key));

    ck_assert_int_eq(crm_sig_sign(key, sizeof(key), 1800000000,
                                  crm_str_lit(body), v1), 0);
    snprintf(header, sizeof(header), "t=1800000000,v1=%s", v1);

    ck_assert_int_eq(crm_sig_verify(key, sizeof(key), crm_str_c(header),
                                    crm_str_lit(body), 1800000000,
                                    CRM_SIG_TOLERANCE, &err), CRM_OK);

    /* another key */
    key[0] ^= 1;
    ck_assert_int_eq(crm_sig_verify(key, sizeof(key), crm_str_c(header),
                                    crm_str_lit(body), 1800000000,
                                    CRM_SIG_TOLERANCE, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid signature");
}
END_TEST


START_TEST(test_sig_tolerance)
{
    crm_error_t  err;

    static const char  header[] = "t=1700000000,v1=" CHECK_SIG_V1;

    ck_assert_int_eq(check_sig_verify(header, CHECK_SIG_BODY,
                                      CHECK_SIG_T + 300, &err), CRM_OK);
    ck_assert_int_eq(check_sig_verify(header, CHECK_SIG_BODY,
                                      CHECK_SIG_T - 300, &err), CRM_OK);

    /* sent 301 s ago, or 301 s ahead of our clock */
    check_sig_fails(header, CHECK_SIG_T + 301, "stale signature");
    check_sig_fails(header, CHECK_SIG_T - 301, "stale signature");

    /* stale is told before invalid: the MAC is not even computed */
    check_sig_fails("t=1700000000,v1=" CHECK_SIG_OTHER, CHECK_SIG_T + 301,
                    "stale signature");
    check_sig_fails("t=0,v1=" CHECK_SIG_V1, CHECK_SIG_T, "stale signature");
    check_sig_fails("t=999999999999,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "stale signature");
}
END_TEST


START_TEST(test_sig_missing_and_malformed)
{
    check_sig_fails("", CHECK_SIG_T, "missing signature");

    check_sig_fails("v1=" CHECK_SIG_V1, CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000,t=1700000000,v1=" CHECK_SIG_V1,
                    CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000", CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000,v0=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=17000000x0,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=-1700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=+1700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t= 1700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=0001700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");

    /* v1 that is not 64 hex digits */
    check_sig_fails("t=1700000000,v1=", CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000,v1=" CHECK_SIG_V1 "00", CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000,v1="
                    "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f394"
                    "2d63292", CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000,v1="
                    "g89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f394"
                    "2d632925", CHECK_SIG_T, "malformed signature");
    check_sig_fails("t=1700000000,v1=" CHECK_SIG_V1 ",v1=zz", CHECK_SIG_T,
                    "malformed signature");

    /* empty elements, wherever they are */
    check_sig_fails(",t=1700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000,,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000,v1=" CHECK_SIG_V1 ",", CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000,v1=" CHECK_SIG_V1 ", ", CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails(",", CHECK_SIG_T, "malformed signature");
    check_sig_fails(" ", CHECK_SIG_T, "malformed signature");

    /* no "=", or a space where none is allowed */
    check_sig_fails("t=1700000000,v1" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails(" t=1700000000,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000 ,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
    check_sig_fails("t=1700000000;v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "malformed signature");
}
END_TEST


START_TEST(test_sig_several_v1)
{
    char         header[1024];
    size_t       i;
    crm_error_t  err;

    /* a rotation: one right is enough, in either place */
    ck_assert_int_eq(check_sig_verify("t=1700000000,v1=" CHECK_SIG_OTHER
                                      ",v1=" CHECK_SIG_V1,
                                      CHECK_SIG_BODY, CHECK_SIG_T, &err),
                     CRM_OK);
    ck_assert_int_eq(check_sig_verify("t=1700000000,v1=" CHECK_SIG_V1
                                      ",v1=" CHECK_SIG_OTHER,
                                      CHECK_SIG_BODY, CHECK_SIG_T, &err),
                     CRM_OK);

    check_sig_fails("t=1700000000,v1=" CHECK_SIG_OTHER ",v1="
                    CHECK_SIG_OTHER, CHECK_SIG_T, "invalid signature");

    /* eight are read; a ninth makes the header malformed */
    strcpy(header, "t=1700000000");

    for (i = 0; i < 7; i++) {
        strcat(header, ",v1=" CHECK_SIG_OTHER);
    }

    strcat(header, ",v1=" CHECK_SIG_V1);
    ck_assert_int_eq(check_sig_verify(header, CHECK_SIG_BODY, CHECK_SIG_T,
                                      &err), CRM_OK);

    strcat(header, ",v1=" CHECK_SIG_OTHER);
    check_sig_fails(header, CHECK_SIG_T, "malformed signature");
}
END_TEST


START_TEST(test_sig_body_changed)
{
    char         body[] = CHECK_SIG_BODY;
    size_t       i;
    crm_error_t  err;

    static const char  header[] = "t=1700000000,v1=" CHECK_SIG_V1;

    /* any byte changed, one dropped, one added */
    for (i = 0; i < sizeof(body) - 1; i++) {
        body[i] ^= 0x01;
        ck_assert_int_eq(check_sig_verify(header, body, CHECK_SIG_T, &err),
                         CRM_E_UNAUTHORIZED);
        ck_assert_str_eq(err.message, "invalid signature");
        body[i] ^= 0x01;
    }

    ck_assert_int_eq(check_sig_verify(header, "{\"id\":\"evt_1\"", CHECK_SIG_T,
                                      &err), CRM_E_UNAUTHORIZED);
    ck_assert_int_eq(check_sig_verify(header, "{\"id\":\"evt_1\"}\n",
                                      CHECK_SIG_T, &err),
                     CRM_E_UNAUTHORIZED);

    /* the timestamp is signed too */
    check_sig_fails("t=1700000001,v1=" CHECK_SIG_V1, CHECK_SIG_T,
                    "invalid signature");
}
END_TEST


static Suite *
check_sig_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("sig", &tc);

    tcase_add_test(tc, test_sig_known_answer);
    tcase_add_test(tc, test_sig_round_trip);
    tcase_add_test(tc, test_sig_tolerance);
    tcase_add_test(tc, test_sig_missing_and_malformed);
    tcase_add_test(tc, test_sig_several_v1);
    tcase_add_test(tc, test_sig_body_changed);

    return s;
}


CRM_CHECK_MAIN(check_sig_suite)
