/*
 * Microseconds per token verification, as the event loop runs it: the
 * gateway's own HS256 tokens against an identity provider's RS256 ID
 * tokens (2048-bit key, the size Firebase uses).  Prints one line per
 * algorithm: "HS256 <us>" and "RS256 <us>", each the median of 5 runs of
 * n verifications.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crm_base64.h"
#include "crm_jwk.h"
#include "crm_jwt.h"


#define ROUNDS  5
#define CRM_BENCH_HEADER  "{\"alg\":\"RS256\",\"kid\":\"bench\",\"typ\":\"JWT\"}"


static double now_us(void);
static char *b64url(const unsigned char *p, size_t len);
static char *rs256_token(EVP_PKEY *pkey, int64_t now);
static char *jwks_of(EVP_PKEY *pkey);
static double median_us(const char *token, const crm_jwt_verify_t *v,
    int rs256, long n);
static int cmp_double(const void *a, const void *b);


int
main(int argc, char **argv)
{
    long               n;
    char              *hs, *rs, *jwks;
    size_t             len;
    int64_t            now;
    EVP_PKEY          *pkey;
    crm_error_t        err;
    crm_jwk_set_t     *keys;
    crm_jwt_claims_t   claims;
    crm_jwt_verify_t   v;
    static const unsigned char  secret[] =
        "0123456789abcdef0123456789abcdef";

    n = argc > 1 ? atol(argv[1]) : 20000;
    now = (int64_t) time(NULL);

    memset(&claims, 0, sizeof(claims));
    strcpy(claims.iss, "crm-gateway");
    strcpy(claims.aud, "crm-api");
    strcpy(claims.sub, "0b5f6d1e-5b7a-4a43-9a0e-1f3a8c2d4e5f");
    strcpy(claims.role, "member");
    claims.iat = now;
    claims.exp = now + 3600;

    if (crm_jwt_sign_hs256(secret, sizeof(secret) - 1, &claims, &hs, &len)
        != CRM_OK)
    {
        return 1;
    }

    pkey = EVP_RSA_gen(2048);
    rs = pkey != NULL ? rs256_token(pkey, now) : NULL;
    jwks = pkey != NULL ? jwks_of(pkey) : NULL;

    if (rs == NULL || jwks == NULL
        || crm_jwk_set_parse(jwks, strlen(jwks), &keys, &err) != CRM_OK)
    {
        fprintf(stderr, "verify_speed: cannot make the RS256 key\n");
        return 1;
    }

    memset(&v, 0, sizeof(v));
    v.key = secret;
    v.key_len = sizeof(secret) - 1;
    v.issuer = "crm-gateway";
    v.audience = "crm-api";
    v.now = now;
    v.leeway = 30;

    printf("HS256 %.2f\n", median_us(hs, &v, 0, n));

    memset(&v, 0, sizeof(v));
    v.keys = keys;
    v.issuer = "https://securetoken.google.com/bench";
    v.audience = "bench";
    v.now = now;
    v.leeway = 60;
    v.identity = 1;

    printf("RS256 %.2f\n", median_us(rs, &v, 1, n));

    crm_jwk_set_free(keys);
    EVP_PKEY_free(pkey);
    free(hs);
    free(rs);
    free(jwks);

    return 0;
}


static double
median_us(const char *token, const crm_jwt_verify_t *v, int rs256, long n)
{
    int                r;
    long               i;
    double             t0, runs[ROUNDS];
    size_t             len;
    crm_error_t        err;
    crm_jwt_claims_t   claims;

    len = strlen(token);

    for (r = 0; r < ROUNDS; r++) {
        t0 = now_us();

        for (i = 0; i < n; i++) {
            if ((rs256 ? crm_jwt_verify_rs256(token, len, v, &claims, &err)
                       : crm_jwt_verify_hs256(token, len, v, &claims, &err))
                != CRM_OK)
            {
                fprintf(stderr, "verify_speed: %s (%s)\n", err.message,
                        err.cause);
                exit(1);
            }
        }

        runs[r] = (now_us() - t0) / (double) n;
    }

    qsort(runs, ROUNDS, sizeof(double), cmp_double);

    return runs[ROUNDS / 2];
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}


static char *
b64url(const unsigned char *p, size_t len)
{
    char  *out;

    out = malloc(crm_base64url_encoded_len(len) + 1);
    if (out != NULL) {
        out[crm_base64url_encode(p, len, out)] = '\0';
    }

    return out;
}


/* a Firebase-shaped ID token, signed with the key */
static char *
rs256_token(EVP_PKEY *pkey, int64_t now)
{
    char           *h, *c, *s, *token, input[2048], payload[512];
    size_t          siglen;
    EVP_MD_CTX     *ctx;
    unsigned char   sig[512];

    snprintf(payload, sizeof(payload),
             "{\"iss\":\"https://securetoken.google.com/bench\","
             "\"aud\":\"bench\",\"auth_time\":%lld,\"sub\":\"bench-user\","
             "\"iat\":%lld,\"exp\":%lld,\"email\":\"m@example.com\","
             "\"email_verified\":true}",
             (long long) now, (long long) now, (long long) now + 3600);

    h = b64url((const unsigned char *) CRM_BENCH_HEADER,
               sizeof(CRM_BENCH_HEADER) - 1);
    c = b64url((const unsigned char *) payload, strlen(payload));
    snprintf(input, sizeof(input), "%s.%s", h, c);
    free(h);
    free(c);

    siglen = sizeof(sig);
    ctx = EVP_MD_CTX_new();

    if (ctx == NULL
        || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1
        || EVP_DigestSign(ctx, sig, &siglen, (unsigned char *) input,
                          strlen(input)) != 1)
    {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }

    EVP_MD_CTX_free(ctx);

    s = b64url(sig, siglen);
    token = malloc(strlen(input) + strlen(s) + 2);
    sprintf(token, "%s.%s", input, s);
    free(s);

    return token;
}


static char *
jwks_of(EVP_PKEY *pkey)
{
    char           *n64, *e64, *doc;
    BIGNUM         *n, *e;
    unsigned char   buf[1024];

    n = NULL;
    e = NULL;

    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1
        || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
    {
        return NULL;
    }

    n64 = b64url(buf, (size_t) BN_bn2bin(n, buf));
    e64 = b64url(buf, (size_t) BN_bn2bin(e, buf));
    BN_free(n);
    BN_free(e);

    doc = malloc(strlen(n64) + strlen(e64) + 128);
    sprintf(doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"bench\","
                 "\"n\":\"%s\",\"e\":\"%s\"}]}", n64, e64);
    free(n64);
    free(e64);

    return doc;
}
