/*
 * Sealed records; see crm_seal.h.
 */

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "crm_hex.h"
#include "crm_seal.h"


#define CRM_SEAL_ID_LABEL  "crm-gateway sealed record key id"


static int crm_aes256gcm(int enc, const unsigned char *key,
    const unsigned char *iv, const unsigned char *aad, size_t aad_len,
    const unsigned char *in, size_t len, unsigned char *out,
    unsigned char *tag);


crm_status_e
crm_seal_key_parse(const char *text, size_t len, crm_seal_key_t *key,
    crm_error_t *err)
{
    unsigned int   md_len;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (len > 0 && text[len - 1] == '\n') {
        len--;
    }

    if (crm_hex_decode((crm_str_t) { text, len }, key->key,
                       CRM_SEAL_KEY_LEN)
        != 0)
    {
        OPENSSL_cleanse(key->key, sizeof(key->key));
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "a key is 64 hexadecimal digits (\"openssl "
                             "rand -hex 32\")");
    }

    if (HMAC(EVP_sha256(), key->key, CRM_SEAL_KEY_LEN,
             (const unsigned char *) CRM_SEAL_ID_LABEL,
             sizeof(CRM_SEAL_ID_LABEL) - 1, md, &md_len)
        == NULL)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "HMAC() failed");
    }

    crm_hex_encode(md, CRM_SEAL_KEY_ID_LEN / 2, key->id);

    return CRM_OK;
}


crm_status_e
crm_seal(const crm_seal_keyring_t *ring, const void *aad, size_t aad_len,
    const void *plain, size_t len, unsigned char *out, size_t *out_len,
    const char **key_id, crm_error_t *err)
{
    unsigned char  *nonce;

    nonce = out;

    if (RAND_bytes(nonce, CRM_SEAL_NONCE_LEN) != 1) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "RAND_bytes() failed");
    }

    if (crm_aes256gcm_encrypt(ring->current.key, nonce, aad, aad_len, plain,
                              len, out + CRM_SEAL_NONCE_LEN,
                              out + CRM_SEAL_NONCE_LEN + len)
        != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "AES-256-GCM encryption failed");
    }

    *out_len = len + CRM_SEAL_OVERHEAD;
    *key_id = ring->current.id;

    return CRM_OK;
}


crm_status_e
crm_unseal(const crm_seal_keyring_t *ring, const char *key_id,
    const void *aad, size_t aad_len, const unsigned char *record, size_t len,
    unsigned char *out, size_t *out_len, crm_error_t *err)
{
    size_t                 n;
    const crm_seal_key_t  *key;

    if (strcmp(key_id, ring->current.id) == 0) {
        key = &ring->current;

    } else if (ring->has_previous && strcmp(key_id, ring->previous.id) == 0)
    {
        key = &ring->previous;

    } else {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "sealed with key \"%.16s\", which is not "
                             "configured", key_id);
    }

    if (len < CRM_SEAL_OVERHEAD) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "sealed record too short");
    }

    n = len - CRM_SEAL_OVERHEAD;

    if (crm_aes256gcm_decrypt(key->key, record, aad, aad_len,
                              record + CRM_SEAL_NONCE_LEN, n,
                              record + CRM_SEAL_NONCE_LEN + n, out)
        != 0)
    {
        OPENSSL_cleanse(out, n);
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "sealed record does not open: another key, "
                             "owner or type, or damaged");
    }

    *out_len = n;

    return CRM_OK;
}


int
crm_aes256gcm_encrypt(const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *in,
    size_t len, unsigned char *out, unsigned char *tag)
{
    return crm_aes256gcm(1, key, iv, aad, aad_len, in, len, out, tag);
}


int
crm_aes256gcm_decrypt(const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *in,
    size_t len, const unsigned char *tag, unsigned char *out)
{
    return crm_aes256gcm(0, key, iv, aad, aad_len, in, len, out,
                         (unsigned char *) tag);
}


/* one pass of either direction; the tag is written or checked */
static int
crm_aes256gcm(int enc, const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *in,
    size_t len, unsigned char *out, unsigned char *tag)
{
    int              n, rc;
    EVP_CIPHER_CTX  *ctx;

    if (len > INT_MAX || aad_len > INT_MAX) {
        return -1;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = -1;

    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                               CRM_SEAL_NONCE_LEN, NULL) != 1
        || EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) != 1)
    {
        goto done;
    }

    if (aad_len > 0
        && EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1)
    {
        goto done;
    }

    if (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int) len) != 1) {
        goto done;
    }

    if (!enc
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRM_SEAL_TAG_LEN,
                               tag) != 1)
    {
        goto done;
    }

    /* decrypting, this is where a tag that does not match fails */
    if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1) {
        goto done;
    }

    if (enc
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRM_SEAL_TAG_LEN,
                               tag) != 1)
    {
        goto done;
    }

    rc = 0;

done:

    if (rc != 0) {
        ERR_clear_error();
    }

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}
