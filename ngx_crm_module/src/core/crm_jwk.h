/*
 * An identity provider's public keys, by key id, for RS256 ID tokens.
 *
 * Two document formats are read, told apart by their shape:
 *
 *   a JWKS (RFC 7517)      {"keys": [{"kty": "RSA", "kid": .., "n": ..,
 *                          "e": ..}, ...]}: RSA keys for signatures are
 *                          taken; keys that say they are for something
 *                          else ("use" other than "sig", "alg" other than
 *                          "RS256", another "kty") are skipped
 *   a certificate map      {"<kid>": "-----BEGIN CERTIFICATE-----...",
 *                          ...}, as Google publishes Firebase's keys
 *
 * A set holds at least one key; every key is RSA with a modulus of 2048
 * bits or more, and key ids are unique.  A set is read-only once parsed:
 * any number of threads may use it, none may free it while they do.
 */

#ifndef CRM_JWK_H
#define CRM_JWK_H

#include <stddef.h>

#include <openssl/evp.h>

#include "crm_error.h"


#define CRM_JWK_KID_MAX      128
#define CRM_JWK_MIN_BITS     2048
#define CRM_JWK_MAX_BITS     8192
#define CRM_JWK_MAX_KEYS     64
#define CRM_JWK_MAX_DOCUMENT (256 * 1024)


typedef struct crm_jwk_set_s  crm_jwk_set_t;


/*
 * Parses a JWKS or a certificate map.  CRM_E_INVALID with a message that
 * names the key at fault (not its material) for a document that is not
 * one of the two, a key that cannot be read or is too small, a repeated
 * key id, or no usable key at all; CRM_E_INTERNAL when memory runs out.
 */
crm_status_e crm_jwk_set_parse(const char *doc, size_t len,
    crm_jwk_set_t **set, crm_error_t *err);

void crm_jwk_set_free(crm_jwk_set_t *set);

size_t crm_jwk_set_count(const crm_jwk_set_t *set);

/* the key with this id, or NULL */
EVP_PKEY *crm_jwk_set_find(const crm_jwk_set_t *set, const char *kid,
    size_t len);

#endif /* CRM_JWK_H */
