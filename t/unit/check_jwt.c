/*
 * crm_jwt: RFC 7515 Appendix A.1, our own round trip, and every way a
 * token must fail.
 */

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crm_base64.h"
#include "crm_check.h"
#include "crm_jwt.h"


static char *check_jwt_make(const char *header, const char *payload,
    const EVP_MD *md, const unsigned char *key, size_t key_len);
static crm_status_e check_jwt_verify(const char *token,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err);
static void check_jwt_rejects(const char *header, const char *payload,
    const char *message);
static Suite *check_jwt_suite(void);


/* RFC 7515 Appendix A.1 */
static const char  check_jwt_rfc_key[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4h"
    "cgUuTwjAzZr1Z9CAow";

static const char  check_jwt_rfc_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    "."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#define CHECK_JWT_RFC_EXP  1300819380

static const unsigned char  check_jwt_key[] =
    "0123456789abcdef0123456789abcdef";

#define CHECK_JWT_NOW  1700000000


/* a token with any header and payload, signed with HMAC over md */
static char *
check_jwt_make(const char *header, const char *payload, const EVP_MD *md,
    const unsigned char *key, size_t key_len)
{
    char           *t, *p;
    size_t          hlen, plen;
    unsigned int    mlen;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    hlen = strlen(header);
    plen = strlen(payload);

    t = malloc(crm_base64url_encoded_len(hlen)
               + crm_base64url_encoded_len(plen)
               + crm_base64url_encoded_len(EVP_MAX_MD_SIZE) + 3);
    ck_assert_ptr_nonnull(t);

    p = t;
    p += crm_base64url_encode((const unsigned char *) header, hlen, p);
    *p++ = '.';
    p += crm_base64url_encode((const unsigned char *) payload, plen, p);

    ck_assert_ptr_nonnull(HMAC(md, key, (int) key_len,
                               (const unsigned char *) t, (size_t) (p - t),
                               mac, &mlen));

    *p++ = '.';
    p += crm_base64url_encode(mac, mlen, p);
    *p = '\0';

    return t;
}


static crm_status_e
check_jwt_verify(const char *token, const crm_jwt_verify_t *v,
    crm_jwt_claims_t *claims, crm_error_t *err)
{
    return crm_jwt_verify_hs256(token, strlen(token), v, claims, err);
}


/* signs header.payload with the right key and expects a 401 */
static void
check_jwt_rejects(const char *header, const char *payload,
    const char *message)
{
    char              *token;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .issuer = "crm", .audience = "crm-api", .now = CHECK_JWT_NOW,
        .leeway = 30
    };

    token = check_jwt_make(header, payload, EVP_sha256(), check_jwt_key,
                           sizeof(check_jwt_key) - 1);

    ck_assert_msg(check_jwt_verify(token, &v, &claims, &err)
                  == CRM_E_UNAUTHORIZED, "accepted %s %s", header, payload);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "", message);

    /* nothing half-verified leaks out */
    ck_assert_str_eq(claims.sub, "");
    ck_assert_int_eq(claims.exp, 0);

    free(token);
}


START_TEST(test_jwt_rfc7515_a1)
{
    char              *token;
    size_t             klen;
    crm_error_t        err;
    unsigned char      key[64];
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v;

    ck_assert_int_eq(crm_base64url_decode(check_jwt_rfc_key,
                                          sizeof(check_jwt_rfc_key) - 1,
                                          key, &klen), 0);
    ck_assert_uint_eq(klen, 64);

    memset(&v, 0, sizeof(v));
    v.key = key;
    v.key_len = klen;
    v.issuer = "joe";
    v.now = CHECK_JWT_RFC_EXP - 100;

    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_OK);
    ck_assert_str_eq(claims.iss, "joe");
    ck_assert_int_eq(claims.exp, CHECK_JWT_RFC_EXP);
    ck_assert_int_eq(claims.iat, 0);
    ck_assert_str_eq(claims.sub, "");

    /* exp itself is still valid; one second later it is not */
    v.now = CHECK_JWT_RFC_EXP;
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_OK);

    v.now = CHECK_JWT_RFC_EXP + 1;
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "", "token expired");

    /* leeway covers a small clock skew */
    v.leeway = 60;
    v.now = CHECK_JWT_RFC_EXP + 60;
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_OK);
    v.now = CHECK_JWT_RFC_EXP + 61;
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "token expired");

    v.leeway = 0;
    v.now = CHECK_JWT_RFC_EXP - 100;

    /* another issuer expected */
    v.issuer = "jane";
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_E_UNAUTHORIZED);
    v.issuer = "joe";

    /* the token has no aud, so an expected audience fails */
    v.audience = "api";
    ck_assert_int_eq(check_jwt_verify(check_jwt_rfc_token, &v, &claims,
                                      &err), CRM_E_UNAUTHORIZED);
    v.audience = NULL;

    /* one flipped signature byte */
    token = strdup(check_jwt_rfc_token);
    ck_assert_ptr_nonnull(token);
    token[strlen(token) - 43] = 'e';

    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "", "invalid token signature");

    /* the last character only carries 4 significant bits */
    token[strlen(token) - 43] = 'd';
    token[strlen(token) - 1] = 'l';
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token signature");

    /* the wrong key */
    key[0] ^= 1;
    token[strlen(token) - 1] = 'k';
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token signature");

    free(token);
}
END_TEST


START_TEST(test_jwt_round_trip)
{
    char              *token;
    size_t             len;
    crm_error_t        err;
    crm_jwt_claims_t   in, out;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .issuer = "crm", .audience = "crm-api", .now = CHECK_JWT_NOW,
        .leeway = 30
    };

    memset(&in, 0, sizeof(in));
    strcpy(in.iss, "crm");
    strcpy(in.aud, "crm-api");
    strcpy(in.sub, "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5f");
    strcpy(in.role, "admin");
    in.iat = CHECK_JWT_NOW;
    in.exp = CHECK_JWT_NOW + 3600;

    ck_assert_int_eq(crm_jwt_sign_hs256(check_jwt_key,
                                        sizeof(check_jwt_key) - 1, &in,
                                        &token, &len), CRM_OK);
    ck_assert_uint_eq(len, strlen(token));

    /* the fixed header: {"alg":"HS256","typ":"JWT"} */
    ck_assert_int_eq(strncmp(token,
                             "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37),
                     0);

    ck_assert_int_eq(crm_jwt_verify_hs256(token, len, &v, &out, &err),
                     CRM_OK);
    ck_assert_str_eq(out.iss, "crm");
    ck_assert_str_eq(out.aud, "crm-api");
    ck_assert_str_eq(out.sub, in.sub);
    ck_assert_str_eq(out.role, "admin");
    ck_assert_int_eq(out.iat, in.iat);
    ck_assert_int_eq(out.exp, in.exp);

    /* any other key fails */
    v.key = (const unsigned char *) "another key of thirty-two bytes!";
    ck_assert_int_eq(crm_jwt_verify_hs256(token, len, &v, &out, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token signature");
    v.key = check_jwt_key;

    /* len is honoured: a truncated token is not the token */
    ck_assert_int_eq(crm_jwt_verify_hs256(token, len - 1, &v, &out, &err),
                     CRM_E_UNAUTHORIZED);

    free(token);

    /* aud and role are optional when signing */
    in.aud[0] = '\0';
    in.role[0] = '\0';
    v.audience = NULL;

    ck_assert_int_eq(crm_jwt_sign_hs256(check_jwt_key,
                                        sizeof(check_jwt_key) - 1, &in,
                                        &token, &len), CRM_OK);
    ck_assert_int_eq(crm_jwt_verify_hs256(token, len, &v, &out, &err),
                     CRM_OK);
    ck_assert_str_eq(out.aud, "");
    ck_assert_str_eq(out.role, "");
    free(token);
}
END_TEST


START_TEST(test_jwt_tampered_payload)
{
    char              *good, *evil, *token;
    size_t             n;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .now = CHECK_JWT_NOW
    };

    good = check_jwt_make("{\"alg\":\"HS256\"}",
                          "{\"sub\":\"u1\",\"role\":\"member\","
                          "\"exp\":1700003600}",
                          EVP_sha256(), check_jwt_key,
                          sizeof(check_jwt_key) - 1);
    evil = check_jwt_make("{\"alg\":\"HS256\"}",
                          "{\"sub\":\"u1\",\"role\":\"admin\","
                          "\"exp\":1700003600}",
                          EVP_sha256(), (const unsigned char *) "guess", 5);

    ck_assert_int_eq(check_jwt_verify(good, &v, &claims, &err), CRM_OK);
    ck_assert_str_eq(claims.role, "member");

    /* the evil payload with the good signature */
    n = (size_t) (strrchr(evil, '.') - evil);
    token = malloc(n + 45);
    ck_assert_ptr_nonnull(token);
    memcpy(token, evil, n);
    strcpy(token + n, strrchr(good, '.'));

    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "", "invalid token signature");
    ck_assert_str_eq(claims.role, "");

    free(token);
    free(evil);
    free(good);
}
END_TEST


START_TEST(test_jwt_algorithms)
{
    char              *token;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .now = CHECK_JWT_NOW
    };

    static const char  payload[] = "{\"sub\":\"u\",\"exp\":1700003600}";

    /* "none" with an empty signature: not even a valid shape */
    token = check_jwt_make("{\"alg\":\"none\"}", payload, EVP_sha256(),
                           check_jwt_key, sizeof(check_jwt_key) - 1);
    *(strrchr(token, '.') + 1) = '\0';
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token");
    free(token);

    /* "none", signature present anyway */
    check_jwt_rejects("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload,
                      "unsupported token algorithm");

    /* HS384 correctly signed with the same key */
    token = check_jwt_make("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", payload,
                           EVP_sha384(), check_jwt_key,
                           sizeof(check_jwt_key) - 1);
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "",
                    "unsupported token algorithm");
    free(token);

    /* RS256 header: the HMAC key must never be used as a public key */
    check_jwt_rejects("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload,
                      "unsupported token algorithm");
    check_jwt_rejects("{\"alg\":\"hs256\"}", payload,
                      "unsupported token algorithm");
    check_jwt_rejects("{\"alg\":\"HS256 \"}", payload,
                      "unsupported token algorithm");
    check_jwt_rejects("{\"alg\":[\"HS256\"]}", payload,
                      "unsupported token algorithm");
    check_jwt_rejects("{\"typ\":\"JWT\"}", payload,
                      "unsupported token algorithm");
    check_jwt_rejects("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload,
                      "invalid token");
}
END_TEST


START_TEST(test_jwt_header)
{
    char              *token;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .issuer = "crm", .audience = "crm-api", .now = CHECK_JWT_NOW
    };

    static const char  payload[] =
        "{\"iss\":\"crm\",\"aud\":\"crm-api\",\"exp\":1700003600}";

    check_jwt_rejects("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload,
                      "invalid token");
    check_jwt_rejects("{\"alg\":\"HS256\",\"crit\":[]}", payload,
                      "invalid token");
    check_jwt_rejects("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", payload,
                      "invalid token");
    check_jwt_rejects("{\"alg\":\"HS256\",\"typ\":1}", payload,
                      "invalid token");
    check_jwt_rejects("[\"HS256\"]", payload, "invalid token");
    check_jwt_rejects("{\"alg\":\"HS256\"", payload, "invalid token");

    /* typ is case-insensitive (RFC 7519 5.1), kid and others ignored */
    token = check_jwt_make("{\"alg\":\"HS256\",\"typ\":\"jwt\","
                           "\"kid\":\"k1\"}", payload, EVP_sha256(),
                           check_jwt_key, sizeof(check_jwt_key) - 1);
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err), CRM_OK);
    free(token);
}
END_TEST


START_TEST(test_jwt_claims)
{
    static const char  hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

    /* exp: required, an integer */
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\"}",
                      "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":\"1700003600\"}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600.5}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":null}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1699999969}", "token expired");

    /* nbf and iat in the future, past the 30 s leeway */
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"nbf\":1700000031}",
                      "token not yet valid");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"iat\":1700000031}",
                      "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"iat\":\"now\"}",
                      "invalid token");

    /* issuer and audience */
    check_jwt_rejects(hdr, "{\"iss\":\"evil\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600}", "invalid token issuer");
    check_jwt_rejects(hdr, "{\"aud\":\"crm-api\",\"exp\":1700003600}",
                      "invalid token issuer");
    check_jwt_rejects(hdr, "{\"iss\":[\"crm\"],\"aud\":\"crm-api\","
                      "\"exp\":1700003600}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"other\","
                      "\"exp\":1700003600}", "invalid token audience");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":[\"a\",\"b\"],"
                      "\"exp\":1700003600}", "invalid token audience");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":[\"crm-api\",1],"
                      "\"exp\":1700003600}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"exp\":1700003600}",
                      "invalid token audience");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"aud\":\"x\",\"exp\":1700003600}", "invalid token");

    /* a claim longer than its buffer is refused, not cut */
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"role\":\"administrator-of-all\"}",
                      "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"sub\":"
                      "\"0123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789"
                      "012345678\"}", "invalid token");
    check_jwt_rejects(hdr, "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                      "\"exp\":1700003600,\"sub\":42}", "invalid token");

    /* the payload must be an object */
    check_jwt_rejects(hdr, "[1]", "invalid token");
    check_jwt_rejects(hdr, "not json", "invalid token");
}
END_TEST


START_TEST(test_jwt_claims_accepted)
{
    char              *token;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .issuer = "crm", .audience = "crm-api", .now = CHECK_JWT_NOW,
        .leeway = 30
    };

    /* aud as an array, nbf and iat within the leeway, extra claims */
    token = check_jwt_make("{\"alg\":\"HS256\"}",
                           "{\"iss\":\"crm\",\"aud\":[\"x\",\"crm-api\"],"
                           "\"exp\":1700003600,\"nbf\":1700000030,"
                           "\"iat\":1700000030,\"sub\":\"u\","
                           "\"extra\":{\"a\":[1,2]}}",
                           EVP_sha256(), check_jwt_key,
                           sizeof(check_jwt_key) - 1);

    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err), CRM_OK);
    ck_assert_str_eq(claims.aud, "crm-api");
    ck_assert_int_eq(claims.iat, 1700000030);
    free(token);

    /* extreme integers compare without overflowing */
    token = check_jwt_make("{\"alg\":\"HS256\"}",
                           "{\"iss\":\"crm\",\"aud\":\"crm-api\","
                           "\"exp\":9223372036854775807,"
                           "\"nbf\":-9223372036854775807,"
                           "\"iat\":-9223372036854775807}",
                           EVP_sha256(), check_jwt_key,
                           sizeof(check_jwt_key) - 1);

    v.leeway = INT64_MAX;
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err), CRM_OK);
    ck_assert(claims.exp == INT64_MAX);
    free(token);
}
END_TEST


START_TEST(test_jwt_shape)
{
    char              *token, *big;
    size_t             len;
    crm_error_t        err;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v = {
        .key = check_jwt_key, .key_len = sizeof(check_jwt_key) - 1,
        .now = CHECK_JWT_NOW
    };

    static const char  *bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        ".eyJhbGciOiJIUzI1NiJ9.x",
        "eyJhbGciOiJIUzI1NiJ9..x",
        "eyJhbGciOiJIUzI1NiJ9=.e30.x",
        "eyJhbGciOiJIUzI1NiJ9.e30.+/+/"
    };

    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_jwt_verify(bad[i], &v, &claims, &err)
                      == CRM_E_UNAUTHORIZED, "accepted \"%s\"", bad[i]);
    }

    /* a valid token followed by a fourth part */
    token = check_jwt_make("{\"alg\":\"HS256\"}", "{\"exp\":1700003600}",
                           EVP_sha256(), check_jwt_key,
                           sizeof(check_jwt_key) - 1);
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err), CRM_OK);

    len = strlen(token);
    big = malloc(CRM_JWT_MAX_LEN + 2);
    ck_assert_ptr_nonnull(big);
    memcpy(big, token, len);
    strcpy(big + len, ".x");
    ck_assert_int_eq(check_jwt_verify(big, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);

    /* over CRM_JWT_MAX_LEN, whatever it holds */
    memset(big, 'a', CRM_JWT_MAX_LEN + 1);
    big[CRM_JWT_MAX_LEN + 1] = '\0';
    ck_assert_int_eq(check_jwt_verify(big, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token");

    /* an empty key never verifies */
    v.key_len = 0;
    ck_assert_int_eq(check_jwt_verify(token, &v, &claims, &err),
                     CRM_E_UNAUTHORIZED);

    free(big);
    free(token);
}
END_TEST


static Suite *
check_jwt_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("jwt", &tc);

    tcase_add_test(tc, test_jwt_rfc7515_a1);
    tcase_add_test(tc, test_jwt_round_trip);
    tcase_add_test(tc, test_jwt_tampered_payload);
    tcase_add_test(tc, test_jwt_algorithms);
    tcase_add_test(tc, test_jwt_header);
    tcase_add_test(tc, test_jwt_claims);
    tcase_add_test(tc, test_jwt_claims_accepted);
    tcase_add_test(tc, test_jwt_shape);

    return s;
}


CRM_CHECK_MAIN(check_jwt_suite)
