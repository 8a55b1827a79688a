/*
 * JSON Web Tokens: HS256 for the gateway's own tokens, RS256 for an
 * identity provider's ID tokens.
 *
 * Verification order matters: the shape and the header are checked first
 * and the algorithm is pinned before the key is touched; the signature is
 * checked before any claim is read, so nothing in an unsigned payload can
 * influence the result.  Header and payload are parsed by crm_json_parse()
 * with small limits, so a token cannot smuggle deep nesting or NUL bytes.
 * Members that the checks read (alg, typ, crit, exp, ...) must appear only
 * once: with duplicates, two parsers could disagree on which one counts.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crm_base64.h"
#include "crm_json.h"
#include "crm_jwk.h"
#include "crm_jwt.h"


#define CRM_JWT_HEADER    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define CRM_JWT_SIG_LEN   32
#define CRM_JWT_DEPTH     8
#define CRM_JWT_SUB_MAX   128       /* an ID token's subject, in bytes */

/* far above the 60 s the design allows; only bounds the arithmetic */
#define CRM_JWT_MAX_LEEWAY  86400


static crm_status_e crm_jwt_verify(const char *token, size_t len,
    const char *alg, const crm_jwt_verify_t *v, crm_jwt_claims_t *claims,
    crm_error_t *err);
static crm_status_e crm_jwt_check_hs256(const char *signed_part,
    size_t signed_len, const char *sig, size_t slen,
    const crm_jwt_verify_t *v, crm_error_t *err);
static crm_status_e crm_jwt_check_rs256(const char *signed_part,
    size_t signed_len, const char *sig, size_t slen, yajl_val kid,
    const crm_jwt_verify_t *v, crm_error_t *err);
static crm_status_e crm_jwt_decode_part(const char *p, size_t len,
    yajl_val *root, crm_error_t *err);
static int crm_jwt_member(yajl_val obj, const char *name, yajl_val *val);
static crm_status_e crm_jwt_check_header(yajl_val hdr, const char *alg,
    yajl_val *kid, crm_error_t *err);
static crm_status_e crm_jwt_check_identity(yajl_val payload,
    const crm_jwt_verify_t *v, int64_t leeway, crm_jwt_claims_t *claims,
    crm_error_t *err);
static void crm_jwt_copy_optional(char *dst, size_t size, yajl_val val);
static crm_status_e crm_jwt_check_claims(yajl_val payload,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err);
static crm_status_e crm_jwt_check_aud(yajl_val aud, const char *expected,
    crm_jwt_claims_t *claims, crm_error_t *err);
static int crm_jwt_copy(char *dst, size_t size, yajl_val val);
static int crm_jwt_hmac(const unsigned char *key, size_t key_len,
    const char *data, size_t len, unsigned char *md);
static crm_status_e crm_jwt_payload(const crm_jwt_claims_t *claims,
    char **out, size_t *len);
static crm_status_e crm_jwt_invalid(crm_error_t *err, const char *message,
    const char *cause);


crm_status_e
crm_jwt_sign_hs256(const unsigned char *key, size_t key_len,
    const crm_jwt_claims_t *claims, char **token, size_t *token_len)
{
    char           *payload, *t, *p;
    size_t          plen, hlen, n;
    crm_status_e    rc;
    unsigned char   md[CRM_JWT_SIG_LEN];

    *token = NULL;
    *token_len = 0;

    if (key_len == 0) {
        return CRM_E_INTERNAL;
    }

    rc = crm_jwt_payload(claims, &payload, &plen);
    if (rc != CRM_OK) {
        return rc;
    }

    hlen = sizeof(CRM_JWT_HEADER) - 1;

    n = crm_base64url_encoded_len(hlen) + 1
        + crm_base64url_encoded_len(plen) + 1
        + crm_base64url_encoded_len(CRM_JWT_SIG_LEN);

    rc = CRM_E_INTERNAL;

    t = malloc(n + 1);
    if (t == NULL) {
        goto done;
    }

    p = t;
    p += crm_base64url_encode((const unsigned char *) CRM_JWT_HEADER, hlen,
                              p);
    *p++ = '.';
    p += crm_base64url_encode((const unsigned char *) payload, plen, p);

    if (crm_jwt_hmac(key, key_len, t, (size_t) (p - t), md) != 0) {
        free(t);
        goto done;
    }

    *p++ = '.';
    p += crm_base64url_encode(md, sizeof(md), p);
    *p = '\0';

    *token = t;
    *token_len = (size_t) (p - t);
    rc = CRM_OK;

done:

    OPENSSL_cleanse(md, sizeof(md));
    free(payload);

    return rc;
}


static crm_status_e
crm_jwt_payload(const crm_jwt_claims_t *claims, char **out, size_t *len)
{
    yajl_gen  g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return CRM_E_INTERNAL;
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "iss", claims->iss) != 0
        || (claims->aud[0] != '\0'
            && crm_json_gen_kv_str(g, "aud", claims->aud) != 0)
        || crm_json_gen_kv_str(g, "sub", claims->sub) != 0
        || (claims->role[0] != '\0'
            && crm_json_gen_kv_str(g, "role", claims->role) != 0)
        || crm_json_gen_kv_int(g, "iat", claims->iat) != 0
        || crm_json_gen_kv_int(g, "exp", claims->exp) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return CRM_E_INTERNAL;
    }

    return crm_json_gen_finish(g, out, len);
}


crm_status_e
crm_jwt_verify_hs256(const char *token, size_t len,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err)
{
    return crm_jwt_verify(token, len, "HS256", v, claims, err);
}


crm_status_e
crm_jwt_verify_rs256(const char *token, size_t len,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err)
{
    return crm_jwt_verify(token, len, "RS256", v, claims, err);
}


static crm_status_e
crm_jwt_verify(const char *token, size_t len, const char *alg,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err)
{
    size_t          hlen, plen, slen;
    yajl_val        hdr, payload, kid;
    const char     *dot1, *dot2, *sig;
    crm_status_e    rc;

    hdr = NULL;
    payload = NULL;
    kid = NULL;

    memset(claims, 0, sizeof(crm_jwt_claims_t));

    if (len == 0 || len > CRM_JWT_MAX_LEN) {
        return crm_jwt_invalid(err, "invalid token", "token size");
    }

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        return crm_jwt_invalid(err, "invalid token", "token shape");
    }

    hlen = (size_t) (dot1 - token);

    dot2 = memchr(dot1 + 1, '.', len - hlen - 1);
    if (dot2 == NULL) {
        return crm_jwt_invalid(err, "invalid token", "token shape");
    }

    plen = (size_t) (dot2 - dot1 - 1);
    sig = dot2 + 1;
    slen = len - hlen - plen - 2;

    /* a fourth part or an empty one is not a compact JWS */
    if (hlen == 0 || plen == 0 || slen == 0
        || memchr(sig, '.', slen) != NULL)
    {
        return crm_jwt_invalid(err, "invalid token", "token shape");
    }

    rc = crm_jwt_decode_part(token, hlen, &hdr, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_jwt_check_header(hdr, alg, &kid, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = alg[0] == 'H'
         ? crm_jwt_check_hs256(token, hlen + 1 + plen, sig, slen, v, err)
         : crm_jwt_check_rs256(token, hlen + 1 + plen, sig, slen, kid, v,
                               err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_jwt_decode_part(dot1 + 1, plen, &payload, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_jwt_check_claims(payload, v, claims, err);

done:

    if (rc != CRM_OK) {
        memset(claims, 0, sizeof(crm_jwt_claims_t));
    }

    yajl_tree_free(hdr);
    yajl_tree_free(payload);

    return rc;
}


static crm_status_e
crm_jwt_check_hs256(const char *signed_part, size_t signed_len,
    const char *sig, size_t slen, const crm_jwt_verify_t *v,
    crm_error_t *err)
{
    size_t          n;
    crm_status_e    rc;
    unsigned char   md[CRM_JWT_SIG_LEN];
    unsigned char   got[CRM_JWT_SIG_LEN];

    if (v->key_len == 0) {
        return crm_jwt_invalid(err, "invalid token signature", "empty key");
    }

    /* 43 characters decode to exactly 32 bytes, so got[] cannot overflow */
    if (slen != crm_base64url_encoded_len(CRM_JWT_SIG_LEN)
        || crm_base64url_decode(sig, slen, got, &n) != 0
        || n != CRM_JWT_SIG_LEN)
    {
        return crm_jwt_invalid(err, "invalid token signature",
                               "signature encoding");
    }

    if (crm_jwt_hmac(v->key, v->key_len, signed_part, signed_len, md) != 0) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "HMAC() failed");
    }

    rc = CRM_OK;

    if (CRYPTO_memcmp(md, got, CRM_JWT_SIG_LEN) != 0) {
        rc = crm_jwt_invalid(err, "invalid token signature",
                             "signature mismatch");
    }

    OPENSSL_cleanse(md, sizeof(md));

    return rc;
}


/*
 * PKCS #1 v1.5 with SHA-256 under the key the header names; the key set
 * holds RSA keys only, so the algorithm cannot be switched by the token
 */
static crm_status_e
crm_jwt_check_rs256(const char *signed_part, size_t signed_len,
    const char *sig, size_t slen, yajl_val kid, const crm_jwt_verify_t *v,
    crm_error_t *err)
{
    int              ok;
    size_t           n, size;
    EVP_PKEY        *pkey;
    EVP_MD_CTX      *ctx;
    unsigned char    got[CRM_JWK_MAX_BITS / 8];

    if (kid == NULL || !YAJL_IS_STRING(kid)) {
        return crm_jwt_invalid(err, "invalid token", "no kid");
    }

    pkey = v->keys != NULL
           ? crm_jwk_set_find(v->keys, kid->u.string, strlen(kid->u.string))
           : NULL;

    if (pkey == NULL && v->url_keys != NULL) {
        pkey = crm_jwk_set_find(v->url_keys, kid->u.string,
                                strlen(kid->u.string));
    }

    if (pkey == NULL) {
        return crm_jwt_invalid(err, "unknown token signing key",
                               "kid not trusted");
    }

    size = (size_t) EVP_PKEY_get_size(pkey);

    if (size > sizeof(got)
        || slen != crm_base64url_encoded_len(size)
        || crm_base64url_decode(sig, slen, got, &n) != 0
        || n != size)
    {
        return crm_jwt_invalid(err, "invalid token signature",
                               "signature encoding");
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "EVP_MD_CTX_new() failed");
    }

    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1
         && EVP_DigestVerify(ctx, got, n,
                             (const unsigned char *) signed_part,
                             signed_len) == 1;

    EVP_MD_CTX_free(ctx);

    if (!ok) {
        ERR_clear_error();
        return crm_jwt_invalid(err, "invalid token signature",
                               "signature mismatch");
    }

    return CRM_OK;
}


static crm_status_e
crm_jwt_decode_part(const char *p, size_t len, yajl_val *root,
    crm_error_t *err)
{
    size_t              n;
    crm_status_e        rc;
    unsigned char      *buf;
    crm_json_limits_t   limits;
    crm_error_t         jerr;

    *root = NULL;

    buf = malloc(crm_base64url_decoded_max(len) + 1);
    if (buf == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "malloc() failed");
    }

    if (crm_base64url_decode(p, len, buf, &n) != 0) {
        free(buf);
        return crm_jwt_invalid(err, "invalid token", "part encoding");
    }

    limits.max_body = CRM_JWT_MAX_LEN;
    limits.max_depth = CRM_JWT_DEPTH;

    rc = crm_json_parse((const char *) buf, n, &limits, root, &jerr);

    free(buf);

    if (rc == CRM_E_INTERNAL) {
        *err = jerr;
        return rc;
    }

    if (rc != CRM_OK) {
        return crm_jwt_invalid(err, "invalid token", "part is not JSON");
    }

    if (!YAJL_IS_OBJECT(*root)) {
        yajl_tree_free(*root);
        *root = NULL;
        return crm_jwt_invalid(err, "invalid token",
                               "part is not a JSON object");
    }

    return CRM_OK;
}


static crm_status_e
crm_jwt_check_header(yajl_val hdr, const char *alg, yajl_val *kid,
    crm_error_t *err)
{
    yajl_val  val;

    if (crm_jwt_member(hdr, "alg", &val) != 0
        || crm_jwt_member(hdr, "typ", NULL) != 0
        || crm_jwt_member(hdr, "crit", NULL) != 0
        || crm_jwt_member(hdr, "kid", kid) != 0)
    {
        return crm_jwt_invalid(err, "invalid token",
                               "duplicate header member");
    }

    if (val == NULL || !YAJL_IS_STRING(val)
        || strcmp(val->u.string, alg) != 0)
    {
        return crm_jwt_invalid(err, "unsupported token algorithm",
                               "alg is not the key source's");
    }

    /* we understand no extension, so any "crit" must fail (RFC 7515 4.1.11) */
    if (crm_jwt_member(hdr, "crit", &val) == 0 && val != NULL) {
        return crm_jwt_invalid(err, "invalid token", "crit header");
    }

    if (crm_jwt_member(hdr, "typ", &val) == 0 && val != NULL
        && (!YAJL_IS_STRING(val) || strcasecmp(val->u.string, "JWT") != 0))
    {
        return crm_jwt_invalid(err, "invalid token", "typ is not JWT");
    }

    return CRM_OK;
}


static crm_status_e
crm_jwt_check_claims(yajl_val payload, const crm_jwt_verify_t *v,
    crm_jwt_claims_t *claims, crm_error_t *err)
{
    int64_t    leeway;
    yajl_val   exp, nbf, iat, iss, aud, sub, role;

    if (crm_jwt_member(payload, "exp", &exp) != 0
        || crm_jwt_member(payload, "nbf", &nbf) != 0
        || crm_jwt_member(payload, "iat", &iat) != 0
        || crm_jwt_member(payload, "iss", &iss) != 0
        || crm_jwt_member(payload, "aud", &aud) != 0
        || crm_jwt_member(payload, "sub", &sub) != 0
        || crm_jwt_member(payload, "role", &role) != 0)
    {
        return crm_jwt_invalid(err, "invalid token", "duplicate claim");
    }

    /*
     * now +/- leeway is the only arithmetic, on values we control: claims
     * are compared against it and never have anything added, so an exp or
     * nbf near INT64_MIN/MAX cannot overflow
     */
    leeway = v->leeway;

    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > CRM_JWT_MAX_LEEWAY) {
        leeway = CRM_JWT_MAX_LEEWAY;
    }

    if (exp == NULL || !YAJL_IS_INTEGER(exp)) {
        return crm_jwt_invalid(err, "invalid token", "exp");
    }

    claims->exp = YAJL_GET_INTEGER(exp);

    if (claims->exp < v->now - leeway) {
        return crm_jwt_invalid(err, "token expired", "exp passed");
    }

    if (nbf != NULL) {
        if (!YAJL_IS_INTEGER(nbf)) {
            return crm_jwt_invalid(err, "invalid token", "nbf");
        }

        if (YAJL_GET_INTEGER(nbf) > v->now + leeway) {
            return crm_jwt_invalid(err, "token not yet valid", "nbf");
        }
    }

    if (iat != NULL) {
        if (!YAJL_IS_INTEGER(iat)) {
            return crm_jwt_invalid(err, "invalid token", "iat");
        }

        if (YAJL_GET_INTEGER(iat) > v->now + leeway) {
            return crm_jwt_invalid(err, "invalid token", "iat in future");
        }

        claims->iat = YAJL_GET_INTEGER(iat);
    }

    if (iss != NULL
        && crm_jwt_copy(claims->iss, sizeof(claims->iss), iss) != 0)
    {
        return crm_jwt_invalid(err, "invalid token", "iss");
    }

    if (v->issuer != NULL && (iss == NULL
                              || strcmp(claims->iss, v->issuer) != 0))
    {
        return crm_jwt_invalid(err, "invalid token issuer", "iss mismatch");
    }

    if (crm_jwt_check_aud(aud, v->audience, claims, err) != CRM_OK) {
        return err->code;
    }

    if (sub != NULL
        && crm_jwt_copy(claims->sub, sizeof(claims->sub), sub) != 0)
    {
        return crm_jwt_invalid(err, "invalid token", "sub");
    }

    if (v->identity) {
        return crm_jwt_check_identity(payload, v, leeway, claims, err);
    }

    if (role != NULL
        && crm_jwt_copy(claims->role, sizeof(claims->role), role) != 0)
    {
        return crm_jwt_invalid(err, "invalid token", "role");
    }

    return CRM_OK;
}


/*
 * What an identity provider's ID token must also carry (OpenID Connect
 * Core 2 and Firebase's rules): a subject of 1 to 128 bytes, an issue
 * time, and no authentication time in the future.  Its email and name
 * describe the person and are taken when they are strings that fit;
 * anything it says about roles is not the provider's to say.
 */
static crm_status_e
crm_jwt_check_identity(yajl_val payload, const crm_jwt_verify_t *v,
    int64_t leeway, crm_jwt_claims_t *claims, crm_error_t *err)
{
    yajl_val  auth_time, email, verified, name;

    if (crm_jwt_member(payload, "auth_time", &auth_time) != 0
        || crm_jwt_member(payload, "email", &email) != 0
        || crm_jwt_member(payload, "email_verified", &verified) != 0
        || crm_jwt_member(payload, "name", &name) != 0)
    {
        return crm_jwt_invalid(err, "invalid token", "duplicate claim");
    }

    if (claims->sub[0] == '\0' || strlen(claims->sub) > CRM_JWT_SUB_MAX) {
        return crm_jwt_invalid(err, "invalid token", "sub");
    }

    if (claims->iss[0] == '\0' || claims->iat == 0) {
        return crm_jwt_invalid(err, "invalid token", "iss or iat missing");
    }

    if (auth_time != NULL) {
        if (!YAJL_IS_INTEGER(auth_time)) {
            return crm_jwt_invalid(err, "invalid token", "auth_time");
        }

        if (YAJL_GET_INTEGER(auth_time) > v->now + leeway) {
            return crm_jwt_invalid(err, "invalid token",
                                   "auth_time in future");
        }
    }

    crm_jwt_copy_optional(claims->email, sizeof(claims->email), email);
    crm_jwt_copy_optional(claims->name, sizeof(claims->name), name);
    claims->email_verified = verified != NULL && YAJL_IS_TRUE(verified);

    return CRM_OK;
}


/* a descriptive claim that does not fit is left out, not cut */
static void
crm_jwt_copy_optional(char *dst, size_t size, yajl_val val)
{
    if (val == NULL || crm_jwt_copy(dst, size, val) != 0) {
        dst[0] = '\0';
    }
}


/*
 * RFC 7519 4.1.3: aud is one string or an array of strings, and the token
 * is for us when any of them is our audience.  The matching one (or, when
 * nothing is expected, the first) is the one copied out.
 */
static crm_status_e
crm_jwt_check_aud(yajl_val aud, const char *expected,
    crm_jwt_claims_t *claims, crm_error_t *err)
{
    size_t    i;
    yajl_val  item, found;

    if (aud == NULL) {
        if (expected != NULL) {
            return crm_jwt_invalid(err, "invalid token audience",
                                   "aud missing");
        }

        return CRM_OK;
    }

    found = NULL;

    if (YAJL_IS_STRING(aud)) {
        if (expected == NULL || strcmp(aud->u.string, expected) == 0) {
            found = aud;
        }

    } else if (YAJL_IS_ARRAY(aud)) {

        for (i = 0; i < aud->u.array.len; i++) {
            item = aud->u.array.values[i];

            if (!YAJL_IS_STRING(item)) {
                return crm_jwt_invalid(err, "invalid token", "aud item");
            }

            if (found == NULL
                && (expected == NULL
                    || strcmp(item->u.string, expected) == 0))
            {
                found = item;
            }
        }

        if (found == NULL && expected == NULL) {
            return CRM_OK;
        }

    } else {
        return crm_jwt_invalid(err, "invalid token", "aud type");
    }

    if (found == NULL) {
        return crm_jwt_invalid(err, "invalid token audience",
                               "aud mismatch");
    }

    if (crm_jwt_copy(claims->aud, sizeof(claims->aud), found) != 0) {
        return crm_jwt_invalid(err, "invalid token", "aud too long");
    }

    return CRM_OK;
}


/*
 * Finds a member of an object; *val is NULL when absent.  Returns -1 when
 * the member occurs more than once.
 */
static int
crm_jwt_member(yajl_val obj, const char *name, yajl_val *val)
{
    size_t    i;
    yajl_val  found;

    found = NULL;

    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], name) != 0) {
            continue;
        }

        if (found != NULL) {
            return -1;
        }

        found = obj->u.object.values[i];
    }

    if (val != NULL) {
        *val = found;
    }

    return 0;
}


/* a claim that does not fit is refused, never cut: "adm" is not "admin" */
static int
crm_jwt_copy(char *dst, size_t size, yajl_val val)
{
    size_t  len;

    if (!YAJL_IS_STRING(val)) {
        return -1;
    }

    len = strlen(val->u.string);
    if (len >= size) {
        return -1;
    }

    memcpy(dst, val->u.string, len + 1);

    return 0;
}


static int
crm_jwt_hmac(const unsigned char *key, size_t key_len, const char *data,
    size_t len, unsigned char *md)
{
    unsigned int  md_len;

    if (key_len > (size_t) INT_MAX) {
        return -1;
    }

    md_len = 0;

    if (HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) data,
             len, md, &md_len)
        == NULL)
    {
        return -1;
    }

    return md_len == CRM_JWT_SIG_LEN ? 0 : -1;
}


/* the cause stays in the log; the client only learns the short reason */
static crm_status_e
crm_jwt_invalid(crm_error_t *err, const char *message, const char *cause)
{
    crm_error_set(err, CRM_E_UNAUTHORIZED, NULL, "%s", message);

    return crm_error_cause(err, "%s", cause);
}


void
crm_jwt_header_alg(const char *token, size_t len, char *alg, size_t size)
{
    yajl_val      hdr, val;
    const char   *dot;
    crm_error_t   err;

    alg[0] = '\0';

    if (len > CRM_JWT_MAX_LEN) {
        return;
    }

    dot = memchr(token, '.', len);
    if (dot == NULL
        || crm_jwt_decode_part(token, (size_t) (dot - token), &hdr, &err)
           != CRM_OK)
    {
        return;
    }

    if (crm_jwt_member(hdr, "alg", &val) == 0 && val != NULL
        && YAJL_IS_STRING(val))
    {
        crm_jwt_copy_optional(alg, size, val);
    }

    yajl_tree_free(hdr);
}
