/*
 * crm_jwk and the RS256 half of crm_jwt: key sets in both formats, ID
 * tokens signed here with keys made in-process (OpenSSL, PKCS #1 v1.5 over
 * SHA-256), and every way a token or a key set must be refused.
 */

#include <stdarg.h>
#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crm_base64.h"
#include "crm_check.h"
#include "crm_jwk.h"
#include "crm_jwt.h"


#define CHECK_JWK_NOW  1700000000
#define CHECK_JWK_ISS  "https://securetoken.google.com/proj"
#define CHECK_JWK_AUD  "proj"

#define CHECK_JWK_HDR  "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"

/* iss and aud as expected, iat 10 s ago, exp in an hour */
#define CHECK_JWK_STD                                                         \
    "\"iss\":\"" CHECK_JWK_ISS "\",\"aud\":\"" CHECK_JWK_AUD "\","            \
    "\"iat\":1699999990,\"exp\":1700003600"

#define CHECK_JWK_GOOD  "{" CHECK_JWK_STD ",\"sub\":\"user-1\"}"

#define CHECK_JWK_NO_RSA  "no RSA signature key in the document"


static char *check_jwk_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *check_jwk_bn(EVP_PKEY *pkey, const char *name);
static char *check_jwk_rsa(EVP_PKEY *pkey, const char *kid,
    const char *extra);
static char *check_jwk_escape(const char *pem, long len);
static char *check_jwk_cert(EVP_PKEY *pkey);
static char *check_jwk_pubkey_pem(EVP_PKEY *pkey, size_t *len);
static crm_jwk_set_t *check_jwk_parse(const char *doc);
static crm_jwk_set_t *check_jwk_set_k1(void);
static void check_jwk_parse_fails(const char *doc, const char *message);
static char *check_jwk_make(const char *header, const char *payload,
    EVP_PKEY *pkey, const unsigned char *hkey, size_t hkey_len, size_t trim);
static char *check_jwk_sign(const char *header, const char *payload,
    EVP_PKEY *pkey);
static void check_jwk_verify_init(crm_jwt_verify_t *v,
    const crm_jwk_set_t *set);
static crm_status_e check_jwk_verify(const char *token,
    const crm_jwk_set_t *set, crm_jwt_claims_t *claims, crm_error_t *err);
static void check_jwk_accepts(const crm_jwk_set_t *set, const char *header,
    const char *payload);
static void check_jwk_rejects(const crm_jwk_set_t *set, const char *header,
    const char *payload, EVP_PKEY *pkey, const char *message);
static void check_jwk_rejects_token(const crm_jwk_set_t *set,
    const char *token, const char *message);
static void check_jwk_setup(void);
static void check_jwk_teardown(void);
static Suite *check_jwk_suite(void);


/* made once per process by the unchecked fixture, before any fork */
static EVP_PKEY  *check_jwk_key;       /* 2048 bits, published as "k1" */
static EVP_PKEY  *check_jwk_other;     /* 2048 bits, an attacker's */
static EVP_PKEY  *check_jwk_small;     /* 1024 bits */
static EVP_PKEY  *check_jwk_ec;        /* P-256 */

/* the base64url alphabet, in the order of the values it encodes */
static const char  check_jwk_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static void
check_jwk_setup(void)
{
    check_jwk_key = EVP_RSA_gen(2048);
    check_jwk_other = EVP_RSA_gen(2048);
    check_jwk_small = EVP_RSA_gen(1024);
    check_jwk_ec = EVP_EC_gen("P-256");

    if (check_jwk_key == NULL || check_jwk_other == NULL
        || check_jwk_small == NULL || check_jwk_ec == NULL)
    {
        fprintf(stderr, "check_jwk: key generation failed\n");
        exit(EXIT_FAILURE);
    }
}


static void
check_jwk_teardown(void)
{
    EVP_PKEY_free(check_jwk_key);
    EVP_PKEY_free(check_jwk_other);
    EVP_PKEY_free(check_jwk_small);
    EVP_PKEY_free(check_jwk_ec);
}


static char *
check_jwk_printf(const char *fmt, ...)
{
    int       n;
    char     *s;
    va_list   args;

    va_start(args, fmt);
    n = vasprintf(&s, fmt, args);
    va_end(args);

    ck_assert_int_ge(n, 0);

    return s;
}


/* one RSA component, base64url as a JWK carries it */
static char *
check_jwk_bn(EVP_PKEY *pkey, const char *name)
{
    int             n;
    char           *s;
    BIGNUM         *bn;
    unsigned char  *bin;

    bn = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, name, &bn), 1);

    n = BN_num_bytes(bn);
    bin = malloc((size_t) n);
    ck_assert_ptr_nonnull(bin);
    ck_assert_int_eq(BN_bn2bin(bn, bin), n);

    s = malloc(crm_base64url_encoded_len((size_t) n) + 1);
    ck_assert_ptr_nonnull(s);
    s[crm_base64url_encode(bin, (size_t) n, s)] = '\0';

    free(bin);
    BN_free(bn);

    return s;
}


/* a JWK object; kid NULL leaves it out, extra is ",..." or "" */
static char *
check_jwk_rsa(EVP_PKEY *pkey, const char *kid, const char *extra)
{
    char  *n, *e, *s;

    n = check_jwk_bn(pkey, OSSL_PKEY_PARAM_RSA_N);
    e = check_jwk_bn(pkey, OSSL_PKEY_PARAM_RSA_E);

    if (kid != NULL) {
        s = check_jwk_printf("{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\","
                             "\"e\":\"%s\"%s}", kid, n, e, extra);

    } else {
        s = check_jwk_printf("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}",
                             n, e, extra);
    }

    free(n);
    free(e);

    return s;
}


/* PEM text as a JSON string holds it: newlines as \n */
static char *
check_jwk_escape(const char *pem, long len)
{
    long   i;
    char  *s, *p;

    s = malloc((size_t) len * 2 + 1);
    ck_assert_ptr_nonnull(s);

    for (p = s, i = 0; i < len; i++) {
        if (pem[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';
            continue;
        }

        *p++ = pem[i];
    }

    *p = '\0';

    return s;
}


/* a self-signed certificate for pkey, PEM, escaped for a JSON string */
static char *
check_jwk_cert(EVP_PKEY *pkey)
{
    BIO         *bio;
    long         len;
    char        *pem, *s;
    X509        *x;
    X509_NAME   *name;

    x = X509_new();
    ck_assert_ptr_nonnull(x);

    ck_assert_int_eq(X509_set_version(x, 2), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    ck_assert_int_eq(X509_set_pubkey(x, pkey), 1);

    name = X509_get_subject_name(x);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                         (const unsigned char *) "securetoken.test", -1, -1,
                         0), 1);
    ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
    ck_assert_int_gt(X509_sign(x, pkey, EVP_sha256()), 0);

    bio = BIO_new(BIO_s_mem());
    ck_assert_ptr_nonnull(bio);
    ck_assert_int_eq(PEM_write_bio_X509(bio, x), 1);

    len = BIO_get_mem_data(bio, &pem);
    ck_assert_int_gt(len, 0);

    s = check_jwk_escape(pem, len);

    BIO_free(bio);
    X509_free(x);

    return s;
}


/* the SubjectPublicKeyInfo PEM, as an HS/RS confusion attack uses it */
static char *
check_jwk_pubkey_pem(EVP_PKEY *pkey, size_t *len)
{
    BIO   *bio;
    long   n;
    char  *data, *s;

    bio = BIO_new(BIO_s_mem());
    ck_assert_ptr_nonnull(bio);
    ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, pkey), 1);

    n = BIO_get_mem_data(bio, &data);
    ck_assert_int_gt(n, 0);

    s = malloc((size_t) n + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, data, (size_t) n);
    s[n] = '\0';
    *len = (size_t) n;

    BIO_free(bio);

    return s;
}


static crm_jwk_set_t *
check_jwk_parse(const char *doc)
{
    crm_error_t     err;
    crm_jwk_set_t  *set;

    memset(&err, 0, sizeof(err));

    ck_assert_msg(crm_jwk_set_parse(doc, strlen(doc), &set, &err) == CRM_OK,
                  "refused (%s): %.200s", err.message, doc);
    ck_assert_ptr_nonnull(set);

    return set;
}


/* a JWKS holding check_jwk_key as "k1" */
static crm_jwk_set_t *
check_jwk_set_k1(void)
{
    char           *jwk, *doc;
    crm_jwk_set_t  *set;

    jwk = check_jwk_rsa(check_jwk_key, "k1", "");
    doc = check_jwk_printf("{\"keys\":[%s]}", jwk);

    set = check_jwk_parse(doc);

    free(doc);
    free(jwk);

    return set;
}


static void
check_jwk_parse_fails(const char *doc, const char *message)
{
    crm_error_t     err;
    crm_jwk_set_t  *set;

    set = (crm_jwk_set_t *) (void *) &err;    /* must be reset to NULL */

    ck_assert_msg(crm_jwk_set_parse(doc, strlen(doc), &set, &err)
                  == CRM_E_INVALID, "accepted %.200s", doc);
    crm_check_error(&err, CRM_E_INVALID, "", message);
    ck_assert_ptr_null(set);
}


/*
 * header.payload signed with RS256 under pkey or, when pkey is NULL, with
 * HMAC-SHA256 under hkey; trim drops that many bytes off the signature
 */
static char *
check_jwk_make(const char *header, const char *payload, EVP_PKEY *pkey,
    const unsigned char *hkey, size_t hkey_len, size_t trim)
{
    char           *t, *p;
    size_t          hlen, plen, slen;
    EVP_MD_CTX     *ctx;
    unsigned int    mlen;
    unsigned char  *sig;

    hlen = strlen(header);
    plen = strlen(payload);

    t = malloc(crm_base64url_encoded_len(hlen)
               + crm_base64url_encoded_len(plen)
               + crm_base64url_encoded_len(CRM_JWK_MAX_BITS / 8) + 3);
    ck_assert_ptr_nonnull(t);

    p = t;
    p += crm_base64url_encode((const unsigned char *) header, hlen, p);
    *p++ = '.';
    p += crm_base64url_encode((const unsigned char *) payload, plen, p);

    if (pkey != NULL) {
        ctx = EVP_MD_CTX_new();
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
                                            pkey), 1);
        ck_assert_int_eq(EVP_DigestSign(ctx, NULL, &slen,
                                        (const unsigned char *) t,
                                        (size_t) (p - t)), 1);

        sig = malloc(slen);
        ck_assert_ptr_nonnull(sig);
        ck_assert_int_eq(EVP_DigestSign(ctx, sig, &slen,
                                        (const unsigned char *) t,
                                        (size_t) (p - t)), 1);
        EVP_MD_CTX_free(ctx);

    } else {
        sig = malloc(EVP_MAX_MD_SIZE);
        ck_assert_ptr_nonnull(sig);
        ck_assert_ptr_nonnull(HMAC(EVP_sha256(), hkey, (int) hkey_len,
                                   (const unsigned char *) t,
                                   (size_t) (p - t), sig, &mlen));
        slen = mlen;
    }

    ck_assert_uint_ge(slen, trim);

    *p++ = '.';
    p += crm_base64url_encode(sig, slen - trim, p);
    *p = '\0';

    free(sig);

    return t;
}


static char *
check_jwk_sign(const char *header, const char *payload, EVP_PKEY *pkey)
{
    return check_jwk_make(header, payload, pkey, NULL, 0, 0);
}


/* what the gateway passes for a Firebase project "proj" */
static void
check_jwk_verify_init(crm_jwt_verify_t *v, const crm_jwk_set_t *set)
{
    memset(v, 0, sizeof(crm_jwt_verify_t));

    v->keys = set;
    v->issuer = CHECK_JWK_ISS;
    v->audience = CHECK_JWK_AUD;
    v->now = CHECK_JWK_NOW;
    v->leeway = 60;
    v->identity = 1;
}


static crm_status_e
check_jwk_verify(const char *token, const crm_jwk_set_t *set,
    crm_jwt_claims_t *claims, crm_error_t *err)
{
    crm_jwt_verify_t  v;

    check_jwk_verify_init(&v, set);

    return crm_jwt_verify_rs256(token, strlen(token), &v, claims, err);
}


/* signs with check_jwk_key and expects the token to pass */
static void
check_jwk_accepts(const crm_jwk_set_t *set, const char *header,
    const char *payload)
{
    char              *token;
    crm_error_t        err;
    crm_jwt_claims_t   claims;

    memset(&err, 0, sizeof(err));

    token = check_jwk_sign(header, payload, check_jwk_key);

    ck_assert_msg(check_jwk_verify(token, set, &claims, &err) == CRM_OK,
                  "refused (%s, %s): %s %s", err.message, err.cause, header,
                  payload);

    free(token);
}


static void
check_jwk_rejects_token(const crm_jwk_set_t *set, const char *token,
    const char *message)
{
    crm_error_t        err;
    crm_jwt_claims_t   claims;

    ck_assert_msg(check_jwk_verify(token, set, &claims, &err)
                  == CRM_E_UNAUTHORIZED, "accepted %.300s", token);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "", message);

    /* nothing half-verified leaks out */
    ck_assert_str_eq(claims.sub, "");
    ck_assert_str_eq(claims.iss, "");
    ck_assert_int_eq(claims.exp, 0);
}


/* signs header.payload with pkey and expects a 401 with message */
static void
check_jwk_rejects(const crm_jwk_set_t *set, const char *header,
    const char *payload, EVP_PKEY *pkey, const char *message)
{
    char  *token;

    token = check_jwk_sign(header, payload, pkey);
    check_jwk_rejects_token(set, token, message);
    free(token);
}


START_TEST(test_jwk_id_token)
{
    char              *token;
    crm_error_t        err;
    crm_jwk_set_t     *set;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v;

    static const char  payload[] =
        "{\"iss\":\"" CHECK_JWK_ISS "\",\"aud\":\"" CHECK_JWK_AUD "\","
        "\"sub\":\"user-1\",\"iat\":1699999990,\"exp\":1700003600,"
        "\"auth_time\":1699999980,\"email\":\"ada@example.com\","
        "\"email_verified\":true,\"name\":\"Ada Lovelace\","
        "\"role\":\"admin\",\"firebase\":{\"sign_in_provider\":\"password\"}}";

    set = check_jwk_set_k1();
    check_jwk_verify_init(&v, set);

    token = check_jwk_sign(CHECK_JWK_HDR, payload, check_jwk_key);

    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token), &v, &claims,
                                          &err), CRM_OK);
    ck_assert_str_eq(claims.iss, CHECK_JWK_ISS);
    ck_assert_str_eq(claims.aud, CHECK_JWK_AUD);
    ck_assert_str_eq(claims.sub, "user-1");
    ck_assert_str_eq(claims.email, "ada@example.com");
    ck_assert_str_eq(claims.name, "Ada Lovelace");
    ck_assert_int_eq(claims.email_verified, 1);
    ck_assert_int_eq(claims.iat, CHECK_JWK_NOW - 10);
    ck_assert_int_eq(claims.exp, CHECK_JWK_NOW + 3600);

    /* roles are not the identity provider's to say */
    ck_assert_str_eq(claims.role, "");

    /* len is honoured: a truncated token is not the token */
    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token) - 1, &v,
                                          &claims, &err),
                     CRM_E_UNAUTHORIZED);
    ck_assert_str_eq(err.message, "invalid token signature");

    /* the same token, not as an identity token: role copied, email not */
    v.identity = 0;
    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token), &v, &claims,
                                          &err), CRM_OK);
    ck_assert_str_eq(claims.role, "admin");
    ck_assert_str_eq(claims.email, "");

    free(token);

    /* email_verified only when it is true itself; a long email is left out */
    check_jwk_verify_init(&v, set);

    token = check_jwk_sign(CHECK_JWK_HDR,
                           "{" CHECK_JWK_STD ",\"sub\":\"user-1\","
                           "\"email_verified\":\"true\",\"email\":"
                           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "@example.com\",\"name\":42}",
                           check_jwk_key);

    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token), &v, &claims,
                                          &err), CRM_OK);
    ck_assert_int_eq(claims.email_verified, 0);
    ck_assert_str_eq(claims.email, "");
    ck_assert_str_eq(claims.name, "");
    ck_assert_str_eq(claims.sub, "user-1");

    free(token);
    crm_jwk_set_free(set);
}
END_TEST


START_TEST(test_jwk_formats)
{
    char              *k1, *k2, *c1, *c2, *doc, *token, *token2;
    crm_error_t        err;
    crm_jwk_set_t     *jwks, *certs;
    crm_jwt_claims_t   claims;

    k1 = check_jwk_rsa(check_jwk_key, "k1", ",\"use\":\"sig\","
                       "\"alg\":\"RS256\"");
    k2 = check_jwk_rsa(check_jwk_other, "k2", "");
    c1 = check_jwk_cert(check_jwk_key);
    c2 = check_jwk_cert(check_jwk_other);

    doc = check_jwk_printf("{\"keys\":[%s,%s]}", k1, k2);
    jwks = check_jwk_parse(doc);
    free(doc);

    /* the certificate map as Google publishes it, with whitespace */
    doc = check_jwk_printf("{\n  \"k1\": \"%s\",\n  \"k2\": \"%s\"\n}\n",
                           c1, c2);
    certs = check_jwk_parse(doc);
    free(doc);

    ck_assert_uint_eq(crm_jwk_set_count(jwks), 2);
    ck_assert_uint_eq(crm_jwk_set_count(certs), 2);

    /* both hold the very keys that were put in */
    ck_assert_int_eq(EVP_PKEY_eq(crm_jwk_set_find(jwks, "k1", 2),
                                 check_jwk_key), 1);
    ck_assert_int_eq(EVP_PKEY_eq(crm_jwk_set_find(certs, "k1", 2),
                                 check_jwk_key), 1);
    ck_assert_int_eq(EVP_PKEY_eq(crm_jwk_set_find(jwks, "k2", 2),
                                 check_jwk_other), 1);
    ck_assert_int_eq(EVP_PKEY_eq(crm_jwk_set_find(certs, "k2", 2),
                                 check_jwk_other), 1);

    /* one token verifies under either document */
    token = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);

    ck_assert_int_eq(check_jwk_verify(token, jwks, &claims, &err), CRM_OK);
    ck_assert_str_eq(claims.sub, "user-1");
    ck_assert_int_eq(check_jwk_verify(token, certs, &claims, &err), CRM_OK);
    ck_assert_str_eq(claims.sub, "user-1");

    /* and the second key under its own kid */
    token2 = check_jwk_sign("{\"alg\":\"RS256\",\"kid\":\"k2\"}",
                            CHECK_JWK_GOOD, check_jwk_other);

    ck_assert_int_eq(check_jwk_verify(token2, jwks, &claims, &err), CRM_OK);
    ck_assert_int_eq(check_jwk_verify(token2, certs, &claims, &err), CRM_OK);

    free(token2);
    free(token);
    free(k1);
    free(k2);
    free(c1);
    free(c2);
    crm_jwk_set_free(jwks);
    crm_jwk_set_free(certs);

    /* a single-key map */
    c1 = check_jwk_cert(check_jwk_key);
    doc = check_jwk_printf("{\"k1\":\"%s\"}", c1);
    certs = check_jwk_parse(doc);
    ck_assert_uint_eq(crm_jwk_set_count(certs), 1);

    free(doc);
    free(c1);
    crm_jwk_set_free(certs);

    /* freeing nothing is harmless */
    crm_jwk_set_free(NULL);
}
END_TEST


START_TEST(test_jwk_algorithms)
{
    char              *token, *pem, *dot;
    size_t             pem_len;
    crm_error_t        err;
    crm_jwk_set_t     *set;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v;

    set = check_jwk_set_k1();

    /* "none" with an empty signature is not even a compact JWS */
    token = check_jwk_sign("{\"alg\":\"none\",\"kid\":\"k1\"}",
                           CHECK_JWK_GOOD, check_jwk_key);
    dot = strrchr(token, '.');
    dot[1] = '\0';
    check_jwk_rejects_token(set, token, "invalid token");
    free(token);

    /* "none" with a valid RS256 signature anyway */
    check_jwk_rejects(set, "{\"alg\":\"none\",\"kid\":\"k1\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unsupported token algorithm");

    /* other spellings and neighbours of RS256 */
    check_jwk_rejects(set, "{\"alg\":\"rs256\",\"kid\":\"k1\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unsupported token algorithm");
    check_jwk_rejects(set, "{\"alg\":\"PS256\",\"kid\":\"k1\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unsupported token algorithm");
    check_jwk_rejects(set, "{\"kid\":\"k1\"}", CHECK_JWK_GOOD, check_jwk_key,
                      "unsupported token algorithm");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"alg\":\"RS256\","
                      "\"kid\":\"k1\"}", CHECK_JWK_GOOD, check_jwk_key,
                      "invalid token");

    /* an HS256 token never reaches the RSA path */
    token = check_jwk_make("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
                           CHECK_JWK_GOOD, NULL,
                           (const unsigned char *) "secret", 6, 0);
    check_jwk_rejects_token(set, token, "unsupported token algorithm");
    free(token);

    /* an RS256 token never reaches the HMAC path */
    token = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);

    check_jwk_verify_init(&v, set);
    v.key = (const unsigned char *) "secret";
    v.key_len = 6;

    ck_assert_int_eq(crm_jwt_verify_hs256(token, strlen(token), &v, &claims,
                                          &err), CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "",
                    "unsupported token algorithm");
    ck_assert_str_eq(claims.sub, "");

    /* while verify_rs256 takes it */
    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token), &v, &claims,
                                          &err), CRM_OK);
    free(token);

    /*
     * the classic confusion: HMAC keyed with the public key's PEM, which
     * anyone can fetch; the token is well made (verify_hs256 under that
     * "secret" takes it), yet verify_rs256 must not
     */
    pem = check_jwk_pubkey_pem(check_jwk_key, &pem_len);

    token = check_jwk_make("{\"alg\":\"HS256\",\"kid\":\"k1\","
                           "\"typ\":\"JWT\"}", CHECK_JWK_GOOD, NULL,
                           (const unsigned char *) pem, pem_len, 0);

    v.key = (const unsigned char *) pem;
    v.key_len = pem_len;
    ck_assert_int_eq(crm_jwt_verify_hs256(token, strlen(token), &v, &claims,
                                          &err), CRM_OK);

    check_jwk_rejects_token(set, token, "unsupported token algorithm");
    free(token);

    /* the same HMAC under an RS256 header: a 32-byte "RSA signature" */
    token = check_jwk_make(CHECK_JWK_HDR, CHECK_JWK_GOOD, NULL,
                           (const unsigned char *) pem, pem_len, 0);
    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    free(pem);
    crm_jwk_set_free(set);
}
END_TEST


START_TEST(test_jwk_signature)
{
    char              *good, *evil, *token;
    const char        *dot;
    size_t             n;
    crm_error_t        err;
    crm_jwk_set_t     *set;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v;

    set = check_jwk_set_k1();

    /* a kid the set does not hold, and none at all */
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k2\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unknown token signing key");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unknown token signing key");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k1 \"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unknown token signing key");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"\"}",
                      CHECK_JWK_GOOD, check_jwk_key,
                      "unknown token signing key");
    check_jwk_rejects(set, "{\"alg\":\"RS256\"}", CHECK_JWK_GOOD,
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":1}", CHECK_JWK_GOOD,
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k1\","
                      "\"kid\":\"k2\"}", CHECK_JWK_GOOD, check_jwk_key,
                      "invalid token");

    /* no key set configured */
    token = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);
    check_jwk_verify_init(&v, NULL);
    ck_assert_int_eq(crm_jwt_verify_rs256(token, strlen(token), &v, &claims,
                                          &err), CRM_E_UNAUTHORIZED);
    crm_check_error(&err, CRM_E_UNAUTHORIZED, "",
                    "unknown token signing key");
    free(token);

    /* another key claiming the trusted kid */
    check_jwk_rejects(set, CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_other,
                      "invalid token signature");

    /* a 1024-bit signature is not even the right size */
    check_jwk_rejects(set, CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_small,
                      "invalid token signature");

    /* another subject's payload under the good signature */
    good = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);
    evil = check_jwk_sign(CHECK_JWK_HDR,
                          "{" CHECK_JWK_STD ",\"sub\":\"user-2\"}",
                          check_jwk_other);

    n = (size_t) (strrchr(evil, '.') - evil);
    token = malloc(n + strlen(strrchr(good, '.')) + 1);
    ck_assert_ptr_nonnull(token);
    memcpy(token, evil, n);
    strcpy(token + n, strrchr(good, '.'));

    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    /* one flipped bit in the signature */
    token = strdup(good);
    ck_assert_ptr_nonnull(token);
    n = (size_t) (strrchr(token, '.') - token) + 10;
    token[n] = token[n] == 'A' ? 'B' : 'A';
    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    /* a signature one byte short */
    token = check_jwk_make(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key, NULL,
                           0, 1);
    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    /*
     * 256 bytes take 342 characters, the last carrying 2 bits: the same
     * bits with its 4 unused ones set decode alike, yet must be refused
     */
    token = strdup(good);
    ck_assert_ptr_nonnull(token);
    n = strlen(token) - 1;
    dot = strchr(check_jwk_b64, token[n]);
    ck_assert_ptr_nonnull(dot);
    token[n] = check_jwk_b64[(dot - check_jwk_b64) | 0x0f];
    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    /* a signature that is not base64url */
    token = strdup(good);
    ck_assert_ptr_nonnull(token);
    token[strlen(token) - 5] = '+';
    check_jwk_rejects_token(set, token, "invalid token signature");
    free(token);

    /* the good one still passes */
    ck_assert_int_eq(check_jwk_verify(good, set, &claims, &err), CRM_OK);

    free(good);
    free(evil);
    crm_jwk_set_free(set);
}
END_TEST


START_TEST(test_jwk_claims)
{
    char           *payload;
    char            sub[130];
    crm_jwk_set_t  *set;

    static const char  hdr[] = CHECK_JWK_HDR;

#define CHECK_JWK_T(rest)                                                     \
    "{\"iss\":\"" CHECK_JWK_ISS "\",\"aud\":\"" CHECK_JWK_AUD "\","           \
    "\"sub\":\"user-1\"," rest "}"

    set = check_jwk_set_k1();

    /* issuer */
    check_jwk_rejects(set, hdr, "{\"iss\":\"https://securetoken.google.com/"
                      "other\",\"aud\":\"proj\",\"sub\":\"user-1\","
                      "\"iat\":1699999990,\"exp\":1700003600}",
                      check_jwk_key, "invalid token issuer");
    check_jwk_rejects(set, hdr, "{\"aud\":\"proj\",\"sub\":\"user-1\","
                      "\"iat\":1699999990,\"exp\":1700003600}",
                      check_jwk_key, "invalid token issuer");

    /* audience: one string, or an array holding the project */
    check_jwk_rejects(set, hdr, "{\"iss\":\"" CHECK_JWK_ISS "\","
                      "\"aud\":\"other\",\"sub\":\"user-1\","
                      "\"iat\":1699999990,\"exp\":1700003600}",
                      check_jwk_key, "invalid token audience");
    check_jwk_rejects(set, hdr, "{\"iss\":\"" CHECK_JWK_ISS "\","
                      "\"sub\":\"user-1\",\"iat\":1699999990,"
                      "\"exp\":1700003600}",
                      check_jwk_key, "invalid token audience");
    check_jwk_rejects(set, hdr, "{\"iss\":\"" CHECK_JWK_ISS "\","
                      "\"aud\":[\"other\",\"proj-2\"],\"sub\":\"user-1\","
                      "\"iat\":1699999990,\"exp\":1700003600}",
                      check_jwk_key, "invalid token audience");
    check_jwk_accepts(set, hdr, "{\"iss\":\"" CHECK_JWK_ISS "\","
                      "\"aud\":[\"other\",\"proj\"],\"sub\":\"user-1\","
                      "\"iat\":1699999990,\"exp\":1700003600}");

    /* subject: 1 to 128 bytes */
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD ",\"sub\":\"\"}",
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD "}", check_jwk_key,
                      "invalid token");
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD ",\"sub\":7}",
                      check_jwk_key, "invalid token");

    memset(sub, 'u', 129);
    sub[129] = '\0';
    payload = check_jwk_printf("{" CHECK_JWK_STD ",\"sub\":\"%s\"}", sub);
    check_jwk_rejects(set, hdr, payload, check_jwk_key, "invalid token");
    free(payload);

    sub[128] = '\0';
    payload = check_jwk_printf("{" CHECK_JWK_STD ",\"sub\":\"%s\"}", sub);
    check_jwk_accepts(set, hdr, payload);
    free(payload);

    /* iat: required in an ID token, at most leeway seconds ahead */
    check_jwk_rejects(set, hdr, CHECK_JWK_T("\"exp\":1700003600"),
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":1700000061,\"exp\":1700003600"),
                      check_jwk_key, "invalid token");
    check_jwk_accepts(set, hdr,
                      CHECK_JWK_T("\"iat\":1700000060,\"exp\":1700003600"));
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":\"1699999990\","
                                  "\"exp\":1700003600"),
                      check_jwk_key, "invalid token");

    /* auth_time: not in the future either */
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":1699999990,\"exp\":1700003600,"
                                  "\"auth_time\":1700000061"),
                      check_jwk_key, "invalid token");
    check_jwk_accepts(set, hdr,
                      CHECK_JWK_T("\"iat\":1699999990,\"exp\":1700003600,"
                                  "\"auth_time\":1700000060"));
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":1699999990,\"exp\":1700003600,"
                                  "\"auth_time\":\"yesterday\""),
                      check_jwk_key, "invalid token");

    /* exp: required, and passed only beyond the leeway */
    check_jwk_rejects(set, hdr, CHECK_JWK_T("\"iat\":1699999990"),
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":1699990000,\"exp\":1699999939"),
                      check_jwk_key, "token expired");
    check_jwk_accepts(set, hdr,
                      CHECK_JWK_T("\"iat\":1699990000,\"exp\":1699999940"));

    /* nbf, when present */
    check_jwk_rejects(set, hdr,
                      CHECK_JWK_T("\"iat\":1699999990,\"exp\":1700003600,"
                                  "\"nbf\":1700000061"),
                      check_jwk_key, "token not yet valid");

    /* claims that are read may appear only once */
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD ",\"sub\":\"user-1\","
                      "\"sub\":\"user-2\"}", check_jwk_key, "invalid token");
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD ",\"sub\":\"user-1\","
                      "\"email\":\"a@example.com\","
                      "\"email\":\"b@example.com\"}",
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, hdr, "{" CHECK_JWK_STD ",\"sub\":\"user-1\","
                      "\"exp\":1800000000}", check_jwk_key, "invalid token");

    /* a critical extension we cannot understand, and a foreign typ */
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k1\","
                      "\"crit\":[\"b64\"],\"b64\":false}", CHECK_JWK_GOOD,
                      check_jwk_key, "invalid token");
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"k1\","
                      "\"typ\":\"at+jwt\"}", CHECK_JWK_GOOD,
                      check_jwk_key, "invalid token");

    /* a payload that is not an object */
    check_jwk_rejects(set, hdr, "[\"user-1\"]", check_jwk_key,
                      "invalid token");

#undef CHECK_JWK_T

    crm_jwk_set_free(set);
}
END_TEST


START_TEST(test_jwk_set_refusals)
{
    char    *big, *small, *k1, *doc, *c1, *ec, *kid;
    size_t   len;

    /* documents of neither shape */
    check_jwk_parse_fails("not json",
                          "not a JSON document of at most 256 KiB");
    check_jwk_parse_fails("", "not a JSON document of at most 256 KiB");
    check_jwk_parse_fails("[{\"kty\":\"RSA\"}]",
                          "neither a JWKS nor a map of key ids to "
                          "certificates");
    check_jwk_parse_fails("\"keys\"",
                          "neither a JWKS nor a map of key ids to "
                          "certificates");
    check_jwk_parse_fails("{\"keys\":\"x\"}", "\"keys\" is not an array");
    check_jwk_parse_fails("{\"keys\":{\"kty\":\"RSA\"}}",
                          "\"keys\" is not an array");
    check_jwk_parse_fails("{\"keys\":[42]}", "key 1 is not an object");

    /* too small a key, named by its kid */
    small = check_jwk_rsa(check_jwk_small, "small", "");
    doc = check_jwk_printf("{\"keys\":[%s]}", small);
    check_jwk_parse_fails(doc,
                          "key \"small\" has 1024 bits, not 2048 to 8192");
    free(doc);

    /* even next to a good key */
    big = check_jwk_rsa(check_jwk_key, "k1", "");
    doc = check_jwk_printf("{\"keys\":[%s,%s]}", big, small);
    check_jwk_parse_fails(doc,
                          "key \"small\" has 1024 bits, not 2048 to 8192");
    free(doc);
    free(small);

    /* the same kid twice, even for the same key */
    k1 = check_jwk_rsa(check_jwk_other, "k1", "");
    doc = check_jwk_printf("{\"keys\":[%s,%s]}", big, k1);
    check_jwk_parse_fails(doc, "key id \"k1\" appears twice");
    free(doc);
    doc = check_jwk_printf("{\"keys\":[%s,%s]}", big, big);
    check_jwk_parse_fails(doc, "key id \"k1\" appears twice");
    free(doc);
    free(k1);

    /* an RSA signature key without a usable kid */
    k1 = check_jwk_rsa(check_jwk_key, NULL, "");
    doc = check_jwk_printf("{\"keys\":[%s]}", k1);
    check_jwk_parse_fails(doc, "key 1 has no \"kid\" of 1 to 128 characters");
    free(doc);
    free(k1);

    k1 = check_jwk_rsa(check_jwk_key, "", "");
    doc = check_jwk_printf("{\"keys\":[%s,%s]}", big, k1);
    check_jwk_parse_fails(doc, "key 2 has no \"kid\" of 1 to 128 characters");
    free(doc);
    free(k1);

    kid = malloc(130);
    ck_assert_ptr_nonnull(kid);
    memset(kid, 'k', 129);
    kid[129] = '\0';
    k1 = check_jwk_rsa(check_jwk_key, kid, "");
    doc = check_jwk_printf("{\"keys\":[%s]}", k1);
    check_jwk_parse_fails(doc, "key 1 has no \"kid\" of 1 to 128 characters");
    free(doc);
    free(k1);
    free(kid);

    /* n and e that are not base64url numbers */
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\","
                          "\"n\":\"###\",\"e\":\"AQAB\"}]}",
                          "key \"k1\": \"n\" and \"e\" must be base64url "
                          "numbers");
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\","
                          "\"n\":\"AQAB\",\"e\":\"AQAB=\"}]}",
                          "key \"k1\": \"n\" and \"e\" must be base64url "
                          "numbers");
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\","
                          "\"n\":\"\",\"e\":\"AQAB\"}]}",
                          "key \"k1\": \"n\" and \"e\" must be base64url "
                          "numbers");
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\","
                          "\"e\":\"AQAB\"}]}",
                          "key \"k1\": \"n\" and \"e\" must be base64url "
                          "numbers");
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\","
                          "\"n\":12345,\"e\":\"AQAB\"}]}",
                          "key \"k1\": \"n\" and \"e\" must be base64url "
                          "numbers");

    /* a certificate map whose value is not a PEM certificate */
    check_jwk_parse_fails("{\"k1\":\"not a certificate\"}",
                          "key \"k1\" is not a PEM certificate");
    check_jwk_parse_fails("{\"k1\":42}",
                          "key \"k1\" is not a PEM certificate");
    check_jwk_parse_fails("{\"k1\":\"-----BEGIN CERTIFICATE-----\\n"
                          "AAAA\\n-----END CERTIFICATE-----\\n\"}",
                          "key \"k1\" is not a PEM certificate");

    /* a bare public key is PEM, but not a certificate */
    c1 = check_jwk_pubkey_pem(check_jwk_key, &len);
    k1 = check_jwk_escape(c1, (long) len);
    doc = check_jwk_printf("{\"k1\":\"%s\"}", k1);
    check_jwk_parse_fails(doc, "key \"k1\" is not a PEM certificate");
    free(doc);
    free(k1);
    free(c1);

    /* a good certificate next to a bad one, and a duplicate id */
    c1 = check_jwk_cert(check_jwk_key);
    doc = check_jwk_printf("{\"k1\":\"%s\",\"k2\":\"garbage\"}", c1);
    check_jwk_parse_fails(doc, "key \"k2\" is not a PEM certificate");
    free(doc);
    doc = check_jwk_printf("{\"k1\":\"%s\",\"k1\":\"%s\"}", c1, c1);
    check_jwk_parse_fails(doc, "key id \"k1\" appears twice");
    free(doc);
    doc = check_jwk_printf("{\"\":\"%s\"}", c1);
    check_jwk_parse_fails(doc, "key 1 has no id of 1 to 128 characters");
    free(doc);
    free(c1);

    /* a certificate of a small RSA key, or of an EC key */
    c1 = check_jwk_cert(check_jwk_small);
    doc = check_jwk_printf("{\"old\":\"%s\"}", c1);
    check_jwk_parse_fails(doc, "key \"old\" has 1024 bits, not 2048 to 8192");
    free(doc);
    free(c1);

    ec = check_jwk_cert(check_jwk_ec);
    doc = check_jwk_printf("{\"ec\":\"%s\"}", ec);
    check_jwk_parse_fails(doc, "key \"ec\" is not an RSA key");
    free(doc);
    free(ec);

    /* nothing usable at all */
    check_jwk_parse_fails("{}", CHECK_JWK_NO_RSA);
    check_jwk_parse_fails("{\"keys\":[]}", CHECK_JWK_NO_RSA);

    free(big);
}
END_TEST


START_TEST(test_jwk_set_skipped)
{
    char              *sig, *enc, *rs512, *ec, *doc, *token;
    crm_error_t        err;
    crm_jwk_set_t     *set;
    crm_jwt_claims_t   claims;

    /* an EC key, as a JWKS would carry it: not an RSA key */
    ec = check_jwk_printf("{\"kty\":\"EC\",\"kid\":\"e1\","
                          "\"crv\":\"P-256\",\"x\":"
                          "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                          "\"y\":"
                          "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
                          "\"use\":\"sig\"}");
    enc = check_jwk_rsa(check_jwk_other, "enc1", ",\"use\":\"enc\"");
    rs512 = check_jwk_rsa(check_jwk_other, "rs512", ",\"alg\":\"RS512\"");
    sig = check_jwk_rsa(check_jwk_key, "k1", ",\"use\":\"sig\"");

    /* on their own they leave nothing */
    doc = check_jwk_printf("{\"keys\":[%s]}", ec);
    check_jwk_parse_fails(doc, CHECK_JWK_NO_RSA);
    free(doc);

    doc = check_jwk_printf("{\"keys\":[%s]}", enc);
    check_jwk_parse_fails(doc, CHECK_JWK_NO_RSA);
    free(doc);

    doc = check_jwk_printf("{\"keys\":[%s,%s,%s]}", ec, enc, rs512);
    check_jwk_parse_fails(doc, CHECK_JWK_NO_RSA);
    free(doc);

    /* a small key or a missing kid is no error where the key is skipped */
    check_jwk_parse_fails("{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\","
                          "\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                          CHECK_JWK_NO_RSA);

    /* next to an RSA signature key they are skipped, not errors */
    doc = check_jwk_printf("{\"keys\":[%s,%s,%s,%s]}", ec, enc, sig, rs512);
    set = check_jwk_parse(doc);
    free(doc);

    ck_assert_uint_eq(crm_jwk_set_count(set), 1);
    ck_assert_ptr_nonnull(crm_jwk_set_find(set, "k1", 2));
    ck_assert_ptr_null(crm_jwk_set_find(set, "e1", 2));
    ck_assert_ptr_null(crm_jwk_set_find(set, "enc1", 4));
    ck_assert_ptr_null(crm_jwk_set_find(set, "rs512", 5));

    token = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);
    ck_assert_int_eq(check_jwk_verify(token, set, &claims, &err), CRM_OK);
    free(token);

    /* a token naming the encryption key finds nothing */
    check_jwk_rejects(set, "{\"alg\":\"RS256\",\"kid\":\"enc1\"}",
                      CHECK_JWK_GOOD, check_jwk_other,
                      "unknown token signing key");

    crm_jwk_set_free(set);

    free(ec);
    free(enc);
    free(rs512);
    free(sig);
}
END_TEST


START_TEST(test_jwk_set_find)
{
    char           *jwk, *doc, *kid, *p;
    char            num[8];
    size_t          i;
    crm_jwk_set_t  *set;

    set = check_jwk_set_k1();

    ck_assert_uint_eq(crm_jwk_set_count(set), 1);

    /* len is honoured in both directions */
    ck_assert_ptr_nonnull(crm_jwk_set_find(set, "k1", 2));
    ck_assert_ptr_nonnull(crm_jwk_set_find(set, "k1xyz", 2));
    ck_assert_ptr_null(crm_jwk_set_find(set, "k1", 1));
    ck_assert_ptr_null(crm_jwk_set_find(set, "k1", 3));
    ck_assert_ptr_null(crm_jwk_set_find(set, "K1", 2));
    ck_assert_ptr_null(crm_jwk_set_find(set, "", 0));

    crm_jwk_set_free(set);

    /* a kid of 128 characters is fine */
    kid = malloc(CRM_JWK_KID_MAX + 1);
    ck_assert_ptr_nonnull(kid);
    memset(kid, 'k', CRM_JWK_KID_MAX);
    kid[CRM_JWK_KID_MAX] = '\0';

    jwk = check_jwk_rsa(check_jwk_key, kid, "");
    doc = check_jwk_printf("{\"keys\":[%s]}", jwk);
    set = check_jwk_parse(doc);
    ck_assert_ptr_nonnull(crm_jwk_set_find(set, kid, CRM_JWK_KID_MAX));
    crm_jwk_set_free(set);
    free(doc);
    free(jwk);
    free(kid);

    /* CRM_JWK_MAX_KEYS keys, and one more */
    doc = check_jwk_printf("{\"keys\":[");

    for (i = 0; i <= CRM_JWK_MAX_KEYS; i++) {
        snprintf(num, sizeof(num), "%02zu", i);
        jwk = check_jwk_rsa(check_jwk_key, num, "");
        p = check_jwk_printf("%s%s%s", doc, i > 0 ? "," : "", jwk);
        free(jwk);
        free(doc);
        doc = p;

        if (i == CRM_JWK_MAX_KEYS - 1) {
            p = check_jwk_printf("%s]}", doc);
            set = check_jwk_parse(p);
            ck_assert_uint_eq(crm_jwk_set_count(set), CRM_JWK_MAX_KEYS);
            ck_assert_ptr_nonnull(crm_jwk_set_find(set, "00", 2));
            ck_assert_ptr_nonnull(crm_jwk_set_find(set, "63", 2));
            ck_assert_ptr_null(crm_jwk_set_find(set, "64", 2));
            crm_jwk_set_free(set);
            free(p);
        }
    }

    p = check_jwk_printf("%s]}", doc);
    check_jwk_parse_fails(p, "more than 64 keys");
    free(p);
    free(doc);
}
END_TEST


START_TEST(test_jwk_header_alg)
{
    char   *token;
    char    alg[16];
    size_t  i;

    static const char  *garbage[] = {
        "",
        "abc",
        "....",
        "!!!.e30.x",
        "e30.e30.x",                                /* {} */
        "eyJhbGciOjF9.e30.x",                       /* {"alg":1} */
        "WyJSUzI1NiJd.e30.x",                       /* ["RS256"] */
        "eyJhbGciOiJSUzI1NiIsImFsZyI6IkhTMjU2In0"   /* two algs */
        ".e30.x",
    };

    token = check_jwk_sign(CHECK_JWK_HDR, CHECK_JWK_GOOD, check_jwk_key);
    crm_jwt_header_alg(token, strlen(token), alg, sizeof(alg));
    ck_assert_str_eq(alg, "RS256");
    free(token);

    token = check_jwk_make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                           CHECK_JWK_GOOD, NULL,
                           (const unsigned char *) "secret", 6, 0);
    crm_jwt_header_alg(token, strlen(token), alg, sizeof(alg));
    ck_assert_str_eq(alg, "HS256");

    /* only the header is read: the rest may be cut off */
    crm_jwt_header_alg(token, (size_t) (strchr(token, '.') - token) + 1,
                       alg, sizeof(alg));
    ck_assert_str_eq(alg, "HS256");

    /* an alg that does not fit is left out, not cut */
    crm_jwt_header_alg(token, strlen(token), alg, 5);
    ck_assert_str_eq(alg, "");
    free(token);

    token = check_jwk_sign("{\"alg\":\"none\"}", CHECK_JWK_GOOD,
                           check_jwk_key);
    crm_jwt_header_alg(token, strlen(token), alg, sizeof(alg));
    ck_assert_str_eq(alg, "none");
    free(token);

    for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        memset(alg, 'x', sizeof(alg));
        crm_jwt_header_alg(garbage[i], strlen(garbage[i]), alg, sizeof(alg));
        ck_assert_msg(alg[0] == '\0', "alg \"%.16s\" from \"%s\"", alg,
                      garbage[i]);
    }
}
END_TEST


static Suite *
check_jwk_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("jwk", &tc);

    /* RSA key generation is slow: once per process, before any fork */
    tcase_add_unchecked_fixture(tc, check_jwk_setup, check_jwk_teardown);

    tcase_add_test(tc, test_jwk_id_token);
    tcase_add_test(tc, test_jwk_formats);
    tcase_add_test(tc, test_jwk_algorithms);
    tcase_add_test(tc, test_jwk_signature);
    tcase_add_test(tc, test_jwk_claims);
    tcase_add_test(tc, test_jwk_set_refusals);
    tcase_add_test(tc, test_jwk_set_skipped);
    tcase_add_test(tc, test_jwk_set_find);
    tcase_add_test(tc, test_jwk_header_alg);

    return s;
}


CRM_CHECK_MAIN(check_jwk_suite)
