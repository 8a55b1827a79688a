/*
 * Webhook signatures (crm_sig.h): the Standard Webhooks reference vector
 * of the spec's libraries, a Shopify answer computed apart (openssl dgst
 * -sha256 -hmac ... -binary | base64), several signatures and secrets at
 * once, and the secrets a source refuses.
 */

#include <stdio.h>
#include <string.h>

#include "crm_base64.h"
#include "crm_check.h"
#include "crm_sig.h"


#define CHECK_WH_SECRET  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define CHECK_WH_ID      "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define CHECK_WH_T       1614265330
#define CHECK_WH_TS      "1614265330"
#define CHECK_WH_BODY    "{\"test\": 2432232314}"
#define CHECK_WH_SIG     "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

#define CHECK_SHOP_SECRET  "shpss_0123456789abcdef0123456789ab"
#define CHECK_SHOP_BODY                                                       \
    "{\"id\":820982911946154508,\"total_price\":\"186.90\"}"
#define CHECK_SHOP_SIG     "me4jT8AhPIqLnH5owksdD5TtRYlel0NqMW7VKRwztho="


static void check_wh_source(crm_webhook_source_t *src, const char *scheme,
    const char *secrets);
static crm_status_e check_wh_standard(const char *secrets, const char *sigs,
    const char *ts, int64_t now, const char *body, crm_error_t *err);
static void check_wh_refused(const char *scheme, const char *secrets,
    const char *part);
static Suite *check_wh_suite(void);


static void
check_wh_source(crm_webhook_source_t *src, const char *scheme,
    const char *secrets)
{
    crm_error_t  err;

    ck_assert_msg(crm_webhook_source_init(src, crm_str_lit("test"),
                                          crm_str_c(scheme),
                                          crm_str_c(secrets), &err)
                  == CRM_OK, "secrets refused: %s", err.message);
}


static crm_status_e
check_wh_standard(const char *secrets, const char *sigs, const char *ts,
    int64_t now, const char *body, crm_error_t *err)
{
    crm_webhook_source_t  src;

    check_wh_source(&src, "standard", secrets);

    return crm_webhook_verify_standard(&src, crm_str_lit(CHECK_WH_ID),
                                       crm_str_c(ts), crm_str_c(sigs),
                                       crm_str_c(body), now,
                                       CRM_SIG_TOLERANCE, err);
}


static void
check_wh_refused(const char *scheme, const char *secrets, const char *part)
{
    crm_error_t           err;
    crm_webhook_source_t  src;

    ck_assert_int_eq(crm_webhook_source_init(&src, crm_str_lit("test"),
                                             crm_str_c(scheme),
                                             crm_str_c(secrets), &err),
                     CRM_E_INVALID);
    ck_assert_msg(strstr(err.message, part) != NULL, "\"%s\" lacks \"%s\"",
                  err.message, part);
}


START_TEST(test_wh_reference_vector)
{
    crm_error_t  err;

    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       CHECK_WH_TS, CHECK_WH_T,
                                       CHECK_WH_BODY, &err), CRM_OK);

    /* five minutes either side, not a second more */
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       CHECK_WH_TS, CHECK_WH_T + 300,
                                       CHECK_WH_BODY, &err), CRM_OK);
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       CHECK_WH_TS, CHECK_WH_T + 301,
                                       CHECK_WH_BODY, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "stale signature");
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       CHECK_WH_TS, CHECK_WH_T - 301,
                                       CHECK_WH_BODY, &err),
                     CRM_E_UNAUTHORIZED);

    /* one byte of the body, the id or the timestamp changed */
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       CHECK_WH_TS, CHECK_WH_T,
                                       "{\"test\": 2432232315}", &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid signature");
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET, "v1," CHECK_WH_SIG,
                                       "1614265331", CHECK_WH_T,
                                       CHECK_WH_BODY, &err),
                     CRM_E_UNAUTHORIZED);
}
END_TEST


START_TEST(test_wh_several_signatures)
{
    crm_error_t  err;

    /* a rotation: an old signature beside the new, any order */
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET,
                         "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,"
                         CHECK_WH_SIG, CHECK_WH_TS, CHECK_WH_T,
                         CHECK_WH_BODY, &err), CRM_OK);
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET,
                         "v1a,c29tZXRoaW5n  v1," CHECK_WH_SIG " ",
                         CHECK_WH_TS, CHECK_WH_T, CHECK_WH_BODY, &err),
                     CRM_OK);

    /* only entries of another version: none to check */
    ck_assert_int_eq(check_wh_standard(CHECK_WH_SECRET,
                                       "v1a," CHECK_WH_SIG, CHECK_WH_TS,
                                       CHECK_WH_T, CHECK_WH_BODY, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid signature");

    /* two secrets in the file: the second one verifies */
    ck_assert_int_eq(check_wh_standard(
                         "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n"
                         CHECK_WH_SECRET "\r\n", "v1," CHECK_WH_SIG,
                         CHECK_WH_TS, CHECK_WH_T, CHECK_WH_BODY, &err),
                     CRM_OK);
}
END_TEST


START_TEST(test_wh_malformed)
{
    size_t        i;
    crm_error_t   err;

    static const struct {
        const char  *sigs;
        const char  *ts;
        const char  *message;
    } cases[] = {
        { "", CHECK_WH_TS, "missing signature" },
        { "v1," CHECK_WH_SIG, "", "missing signature" },
        { "v1", CHECK_WH_TS, "malformed signature" },
        { "v1,", CHECK_WH_TS, "malformed signature" },
        { ",abc", CHECK_WH_TS, "malformed signature" },
        { "   ", CHECK_WH_TS, "malformed signature" },
        { "v1," CHECK_WH_SIG, "16142653a0", "malformed signature" },
        { "v1," CHECK_WH_SIG, "1614265330.5", "malformed signature" },
        { "v1," CHECK_WH_SIG, "1234567890123", "malformed signature" },
        { "v1,a v1,b v1,c v1,d v1,e v1,f v1,g v1,h v1,i", CHECK_WH_TS,
          "malformed signature" },
        { "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", CHECK_WH_TS,
          "invalid signature" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(check_wh_standard(CHECK_WH_SECRET, cases[i].sigs,
                                        cases[i].ts, CHECK_WH_T,
                                        CHECK_WH_BODY, &err)
                      == CRM_E_UNAUTHORIZED, "accepted \"%s\" at \"%s\"",
                      cases[i].sigs, cases[i].ts);
        ck_assert_msg(strcmp(err.message, cases[i].message) == 0,
                      "\"%s\": \"%s\", not \"%s\"", cases[i].sigs,
                      err.message, cases[i].message);
    }
}
END_TEST


START_TEST(test_wh_shopify)
{
    crm_error_t           err;
    crm_webhook_source_t  src;

    check_wh_source(&src, "shopify", CHECK_SHOP_SECRET "\n");

    ck_assert_int_eq(crm_webhook_verify_shopify(&src,
                         crm_str_lit(CHECK_SHOP_SIG),
                         crm_str_lit(CHECK_SHOP_BODY), &err), CRM_OK);

    ck_assert_int_eq(crm_webhook_verify_shopify(&src,
                         crm_str_lit(CHECK_SHOP_SIG),
                         crm_str_lit(CHECK_SHOP_BODY " "), &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid signature");

    ck_assert_int_eq(crm_webhook_verify_shopify(&src, crm_str_lit(""),
                         crm_str_lit(CHECK_SHOP_BODY), &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "missing signature");

    /* a key that is not the client secret as text */
    check_wh_source(&src, "shopify", "shpss_0123456789abcdef0123456789ac");
    ck_assert_int_eq(crm_webhook_verify_shopify(&src,
                         crm_str_lit(CHECK_SHOP_SIG),
                         crm_str_lit(CHECK_SHOP_BODY), &err),
                     CRM_E_UNAUTHORIZED);
}
END_TEST


START_TEST(test_wh_sources_refused)
{
    crm_error_t           err;
    crm_webhook_source_t  src;

    check_wh_refused("hmac", CHECK_WH_SECRET, "unknown scheme");
    check_wh_refused("standard", "", "holds no secret");
    check_wh_refused("standard", "\n \n", "holds no secret");
    check_wh_refused("standard", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                     "must be \"whsec_\" and base64");
    check_wh_refused("standard", "whsec_***", "must be \"whsec_\"");
    check_wh_refused("standard", "whsec_c2hvcnQ=", "decodes to 5 bytes");
    check_wh_refused("shopify", "short-secret", "16 to 256 characters");
    check_wh_refused("shopify", "0123456789abcdef\n0123456789abcdef\n"
                     "0123456789abcdef\n0123456789abcdef\n"
                     "0123456789abcdef", "more than 4 secrets");

    ck_assert_int_eq(crm_webhook_source_init(&src, crm_str_lit("Bad Name"),
                                             crm_str_lit("shopify"),
                                             crm_str_lit(CHECK_SHOP_SECRET),
                                             &err), CRM_E_INVALID);
}
END_TEST


START_TEST(test_wh_base64)
{
    char           out[8];
    size_t         n;
    unsigned char  bin[8];

    ck_assert_uint_eq(crm_base64_encode((const unsigned char *) "ab", 2,
                                        out), 4);
    ck_assert(memcmp(out, "YWI=", 4) == 0);

    ck_assert_int_eq(crm_base64_decode("YWI=", 4, bin, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(crm_base64_decode("YWI", 3, bin, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(crm_base64_decode("YWI==", 5, bin, &n), -1);
    ck_assert_int_eq(crm_base64_decode("YW-=", 4, bin, &n), -1);
    ck_assert_int_eq(crm_base64_decode("YWJ=", 4, bin, &n), -1);
    ck_assert_int_eq(crm_base64_decode("+/8=", 4, bin, &n), 0);
    ck_assert_uint_eq(bin[0], 0xfb);
}
END_TEST


static Suite *
check_wh_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("webhook_sig", &tc);

    tcase_add_test(tc, test_wh_reference_vector);
    tcase_add_test(tc, test_wh_several_signatures);
    tcase_add_test(tc, test_wh_malformed);
    tcase_add_test(tc, test_wh_shopify);
    tcase_add_test(tc, test_wh_sources_refused);
    tcase_add_test(tc, test_wh_base64);

    return s;
}


CRM_CHECK_MAIN(check_wh_suite)
