/*
 * Sealed records: AES-256-GCM (NIST SP 800-38D) for secrets the gateway
 * keeps in PostgreSQL, such as a CRM's credentials.
 *
 * A record is nonce (12 bytes, fresh from the CSPRNG for every seal) |
 * ciphertext | tag (16 bytes).  The associated data binds it to where it
 * belongs (the owner and the CRM type): a record copied to another row does
 * not open.  Beside the record the caller stores the id of the key that
 * sealed it, so that keys can be rotated: a keyring has the current key,
 * which seals, and optionally the previous one, which only opens; a record
 * moves to the current key when it is next written.
 *
 * Key ids are derived from the key (the first 8 bytes of an HMAC-SHA256
 * of a fixed label under it, in hex): two hosts with the same key file
 * agree on them, and an id says nothing about its key.
 */

#ifndef CRM_SEAL_H
#define CRM_SEAL_H

#include <stddef.h>

#include "crm_error.h"


#define CRM_SEAL_KEY_LEN     32
#define CRM_SEAL_NONCE_LEN   12
#define CRM_SEAL_TAG_LEN     16
#define CRM_SEAL_OVERHEAD    (CRM_SEAL_NONCE_LEN + CRM_SEAL_TAG_LEN)
#define CRM_SEAL_KEY_ID_LEN  16


typedef struct {
    unsigned char  key[CRM_SEAL_KEY_LEN];
    char           id[CRM_SEAL_KEY_ID_LEN + 1];
} crm_seal_key_t;


typedef struct {
    crm_seal_key_t   current;
    crm_seal_key_t   previous;
    int              has_previous;
} crm_seal_keyring_t;


/*
 * A key from a key file's contents: 64 hex digits (as "openssl rand -hex
 * 32" writes them), one trailing newline allowed.  CRM_E_INVALID
 * otherwise.
 */
crm_status_e crm_seal_key_parse(const char *text, size_t len,
    crm_seal_key_t *key, crm_error_t *err);

/*
 * Seals len bytes into out (room for len + CRM_SEAL_OVERHEAD) with the
 * ring's current key; *key_id is that key's id.  CRM_E_INTERNAL when
 * OpenSSL or its random generator fails.
 */
crm_status_e crm_seal(const crm_seal_keyring_t *ring, const void *aad,
    size_t aad_len, const void *plain, size_t len, unsigned char *out,
    size_t *out_len, const char **key_id, crm_error_t *err);

/*
 * Opens a record sealed under the key named key_id (current or previous)
 * into out (room for len - CRM_SEAL_OVERHEAD).  CRM_E_INVALID when the key
 * is not in the ring, the record is too short, or the tag does not match
 * (wrong key, other associated data, any bit changed).
 */
crm_status_e crm_unseal(const crm_seal_keyring_t *ring, const char *key_id,
    const void *aad, size_t aad_len, const unsigned char *record,
    size_t len, unsigned char *out, size_t *out_len, crm_error_t *err);

/*
 * The cipher itself, for known-answer tests: AES-256-GCM with a 96-bit IV
 * and a 128-bit tag.  0 on success; decrypt returns -1 when the tag does
 * not match (out then holds nothing usable).
 */
int crm_aes256gcm_encrypt(const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *in,
    size_t len, unsigned char *out, unsigned char *tag);
int crm_aes256gcm_decrypt(const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *in,
    size_t len, const unsigned char *tag, unsigned char *out);

#endif /* CRM_SEAL_H */
