/*
 * Identity provider key sets; see crm_jwk.h.  Errors name a key by its id
 * and never quote key material: the message reaches "nginx -t".
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crm_base64.h"
#include "crm_json.h"
#include "crm_jwk.h"


#define CRM_JWK_DEPTH  8


typedef struct {
    char       kid[CRM_JWK_KID_MAX + 1];
    EVP_PKEY  *pkey;
} crm_jwk_t;

struct crm_jwk_set_s {
    size_t     n;
    crm_jwk_t  keys[CRM_JWK_MAX_KEYS];
};


static crm_status_e crm_jwk_parse_jwks(crm_jwk_set_t *set, yajl_val keys,
    crm_error_t *err);
static crm_status_e crm_jwk_parse_certs(crm_jwk_set_t *set, yajl_val map,
    crm_error_t *err);
static crm_status_e crm_jwk_from_components(const char *kid, yajl_val n,
    yajl_val e, EVP_PKEY **pkey, crm_error_t *err);
static BIGNUM *crm_jwk_bignum(yajl_val v);
static crm_status_e crm_jwk_from_certificate(const char *kid,
    const char *pem, EVP_PKEY **pkey, crm_error_t *err);
static crm_status_e crm_jwk_add(crm_jwk_set_t *set, const char *kid,
    EVP_PKEY *pkey, crm_error_t *err);
static const char *crm_jwk_string(yajl_val obj, const char *name);


crm_status_e
crm_jwk_set_parse(const char *doc, size_t len, crm_jwk_set_t **out,
    crm_error_t *err)
{
    yajl_val            root, keys;
    crm_status_e        rc;
    crm_jwk_set_t      *set;
    crm_json_limits_t   limits;

    *out = NULL;

    limits.max_body = CRM_JWK_MAX_DOCUMENT;
    limits.max_depth = CRM_JWK_DEPTH;

    if (crm_json_parse(doc, len, &limits, &root, err) != CRM_OK) {
        if (err->code == CRM_E_INTERNAL) {
            return CRM_E_INTERNAL;
        }

        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "not a JSON document of at most %d KiB",
                             CRM_JWK_MAX_DOCUMENT / 1024);
    }

    set = calloc(1, sizeof(crm_jwk_set_t));
    if (set == NULL) {
        yajl_tree_free(root);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (!YAJL_IS_OBJECT(root)) {
        rc = crm_error_set(err, CRM_E_INVALID, NULL,
                           "neither a JWKS nor a map of key ids to "
                           "certificates");
        goto done;
    }

    keys = yajl_tree_get(root, (const char *[]) { "keys", NULL },
                         yajl_t_any);

    rc = keys != NULL ? crm_jwk_parse_jwks(set, keys, err)
                      : crm_jwk_parse_certs(set, root, err);
    if (rc != CRM_OK) {
        goto done;
    }

    if (set->n == 0) {
        rc = crm_error_set(err, CRM_E_INVALID, NULL,
                           "no RSA signature key in the document");
        goto done;
    }

    *out = set;
    set = NULL;

done:

    /* what OpenSSL noted on the way must not surface in nginx's SSL logs */
    if (rc != CRM_OK) {
        ERR_clear_error();
    }

    crm_jwk_set_free(set);
    yajl_tree_free(root);

    return rc;
}


static crm_status_e
crm_jwk_parse_jwks(crm_jwk_set_t *set, yajl_val keys, crm_error_t *err)
{
    size_t         i;
    yajl_val       key, n, e;
    EVP_PKEY      *pkey;
    const char    *kid, *kty, *use, *alg;
    crm_status_e   rc;

    if (!YAJL_IS_ARRAY(keys)) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "\"keys\" is not an array");
    }

    for (i = 0; i < keys->u.array.len; i++) {
        key = keys->u.array.values[i];

        if (!YAJL_IS_OBJECT(key)) {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "key %zu is not an object", i + 1);
        }

        kty = crm_jwk_string(key, "kty");
        use = crm_jwk_string(key, "use");
        alg = crm_jwk_string(key, "alg");

        /* keys for other algorithms or for encryption are not ours */
        if (kty == NULL || strcmp(kty, "RSA") != 0
            || (use != NULL && strcmp(use, "sig") != 0)
            || (alg != NULL && strcmp(alg, "RS256") != 0))
        {
            continue;
        }

        kid = crm_jwk_string(key, "kid");
        if (kid == NULL || kid[0] == '\0' || strlen(kid) > CRM_JWK_KID_MAX)
        {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "key %zu has no \"kid\" of 1 to %d "
                                 "characters", i + 1, CRM_JWK_KID_MAX);
        }

        n = yajl_tree_get(key, (const char *[]) { "n", NULL }, yajl_t_any);
        e = yajl_tree_get(key, (const char *[]) { "e", NULL }, yajl_t_any);

        rc = crm_jwk_from_components(kid, n, e, &pkey, err);
        if (rc != CRM_OK) {
            return rc;
        }

        rc = crm_jwk_add(set, kid, pkey, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    return CRM_OK;
}


static crm_status_e
crm_jwk_parse_certs(crm_jwk_set_t *set, yajl_val map, crm_error_t *err)
{
    size_t         i;
    yajl_val       pem;
    EVP_PKEY      *pkey;
    const char    *kid;
    crm_status_e   rc;

    for (i = 0; i < map->u.object.len; i++) {
        kid = map->u.object.keys[i];
        pem = map->u.object.values[i];

        if (kid[0] == '\0' || strlen(kid) > CRM_JWK_KID_MAX) {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "key %zu has no id of 1 to %d characters",
                                 i + 1, CRM_JWK_KID_MAX);
        }

        if (!YAJL_IS_STRING(pem)) {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "key \"%s\" is not a PEM certificate", kid);
        }

        rc = crm_jwk_from_certificate(kid, pem->u.string, &pkey, err);
        if (rc != CRM_OK) {
            return rc;
        }

        rc = crm_jwk_add(set, kid, pkey, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    return CRM_OK;
}


/* an RSA public key from the base64url modulus and exponent of a JWK */
static crm_status_e
crm_jwk_from_components(const char *kid, yajl_val n, yajl_val e,
    EVP_PKEY **pkey, crm_error_t *err)
{
    BIGNUM          *bn_n, *bn_e;
    OSSL_PARAM      *params;
    crm_status_e     rc;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM_BLD  *bld;

    *pkey = NULL;
    params = NULL;
    ctx = NULL;
    bld = NULL;

    bn_n = crm_jwk_bignum(n);
    bn_e = crm_jwk_bignum(e);

    if (bn_n == NULL || bn_e == NULL) {
        rc = crm_error_set(err, CRM_E_INVALID, NULL,
                           "key \"%s\": \"n\" and \"e\" must be base64url "
                           "numbers", kid);
        goto done;
    }

    rc = crm_error_set(err, CRM_E_INVALID, NULL,
                       "key \"%s\" is not a usable RSA public key", kid);

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
    {
        goto done;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        *pkey = NULL;
        goto done;
    }

    rc = CRM_OK;

done:

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);

    return rc;
}


static BIGNUM *
crm_jwk_bignum(yajl_val v)
{
    size_t          len, n;
    BIGNUM         *bn;
    unsigned char  *buf;

    if (v == NULL || !YAJL_IS_STRING(v)) {
        return NULL;
    }

    len = strlen(v->u.string);
    if (len == 0 || len > CRM_JWK_MAX_BITS / 6 + 4) {
        return NULL;
    }

    buf = malloc(crm_base64url_decoded_max(len) + 1);
    if (buf == NULL) {
        return NULL;
    }

    bn = NULL;

    if (crm_base64url_decode(v->u.string, len, buf, &n) == 0 && n > 0) {
        bn = BN_bin2bn(buf, (int) n, NULL);
    }

    free(buf);

    return bn;
}


static crm_status_e
crm_jwk_from_certificate(const char *kid, const char *pem, EVP_PKEY **pkey,
    crm_error_t *err)
{
    BIO   *bio;
    X509  *cert;

    *pkey = NULL;

    bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (cert == NULL) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "key \"%s\" is not a PEM certificate", kid);
    }

    *pkey = X509_get_pubkey(cert);
    X509_free(cert);

    if (*pkey == NULL) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "key \"%s\": the certificate's key cannot be "
                             "read", kid);
    }

    return CRM_OK;
}


/* takes pkey, whatever the outcome */
static crm_status_e
crm_jwk_add(crm_jwk_set_t *set, const char *kid, EVP_PKEY *pkey,
    crm_error_t *err)
{
    int      bits;
    size_t   i;

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "key \"%s\" is not an RSA key", kid);
    }

    bits = EVP_PKEY_get_bits(pkey);

    if (bits < CRM_JWK_MIN_BITS || bits > CRM_JWK_MAX_BITS) {
        EVP_PKEY_free(pkey);
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "key \"%s\" has %d bits, not %d to %d", kid,
                             bits, CRM_JWK_MIN_BITS, CRM_JWK_MAX_BITS);
    }

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->keys[i].kid, kid) == 0) {
            EVP_PKEY_free(pkey);
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "key id \"%s\" appears twice", kid);
        }
    }

    if (set->n == CRM_JWK_MAX_KEYS) {
        EVP_PKEY_free(pkey);
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "more than %d keys", CRM_JWK_MAX_KEYS);
    }

    memcpy(set->keys[set->n].kid, kid, strlen(kid) + 1);
    set->keys[set->n].pkey = pkey;
    set->n++;

    return CRM_OK;
}


static const char *
crm_jwk_string(yajl_val obj, const char *name)
{
    yajl_val  v;

    v = yajl_tree_get(obj, (const char *[]) { name, NULL }, yajl_t_string);

    return v != NULL ? v->u.string : NULL;
}


void
crm_jwk_set_free(crm_jwk_set_t *set)
{
    size_t  i;

    if (set == NULL) {
        return;
    }

    for (i = 0; i < set->n; i++) {
        EVP_PKEY_free(set->keys[i].pkey);
    }

    free(set);
}


size_t
crm_jwk_set_count(const crm_jwk_set_t *set)
{
    return set->n;
}


EVP_PKEY *
crm_jwk_set_find(const crm_jwk_set_t *set, const char *kid, size_t len)
{
    size_t  i;

    for (i = 0; i < set->n; i++) {
        if (strlen(set->keys[i].kid) == len
            && memcmp(set->keys[i].kid, kid, len) == 0)
        {
            return set->keys[i].pkey;
        }
    }

    return NULL;
}
