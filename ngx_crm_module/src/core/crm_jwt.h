/*
 * JSON Web Tokens (RFC 7519, RFC 7515): HS256 for the gateway's own
 * tokens, RS256 for an identity provider's ID tokens.  The algorithm is
 * pinned per key source: each verify function takes only its own alg, so
 * "none" and RS/HS confusion cannot pass, whatever the header says.
 * HMAC signatures are compared in constant time.
 */

#ifndef CRM_JWT_H
#define CRM_JWT_H

#include <stdint.h>

#include "crm_error.h"
#include "crm_jwk.h"


#define CRM_JWT_MAX_LEN  4096


typedef struct {
    char      iss[128];
    char      aud[128];
    char      sub[129];
    char      role[16];     /* the gateway's tokens only */
    int64_t   iat;          /* 0 when absent */
    int64_t   exp;

    /* an ID token's description of the person, "" when absent */
    char      email[255];
    char      name[801];
    int       email_verified;
} crm_jwt_claims_t;


typedef struct {
    const unsigned char  *key;         /* HS256 */
    size_t                key_len;
    const crm_jwk_set_t  *keys;        /* RS256, by the header's kid ... */
    const crm_jwk_set_t  *url_keys;    /* ... here or here (either NULL) */
    const char           *issuer;      /* NULL: iss is not checked */
    const char           *audience;    /* NULL: aud is not checked */
    int64_t               now;         /* unix seconds */
    int64_t               leeway;      /* seconds, for exp, nbf and iat */

    /*
     * an identity provider's ID token: sub of 1 to 128 bytes, iss and iat
     * required, auth_time not in the future; email and name copied
     */
    unsigned              identity:1;
} crm_jwt_verify_t;


/*
 * Signs {"alg":"HS256","typ":"JWT"} with claims iss, aud (if non-empty),
 * sub, role (if non-empty), iat and exp.  *token is malloc'd and
 * NUL-terminated.  Returns CRM_OK or CRM_E_INTERNAL.
 */
crm_status_e crm_jwt_sign_hs256(const unsigned char *key, size_t key_len,
    const crm_jwt_claims_t *claims, char **token, size_t *token_len);

/*
 * Verifies a compact JWS.  Every failure is CRM_E_UNAUTHORIZED with a short
 * reason in err->message ("token expired", "invalid token signature", ...):
 * wrong shape or size, undecodable parts, alg other than HS256, a "crit"
 * header, a bad signature, a missing or non-integer exp, exp passed,
 * nbf or iat in the future, iss or aud not as expected.  Unknown claims are
 * ignored.  On success the recognised claims are copied to *claims (strings
 * longer than their buffers are rejected).
 */
crm_status_e crm_jwt_verify_hs256(const char *token, size_t len,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err);

/*
 * The same for RS256 under v->keys: the header's kid must name a key of
 * the set ("unknown token signing key" otherwise).
 */
crm_status_e crm_jwt_verify_rs256(const char *token, size_t len,
    const crm_jwt_verify_t *v, crm_jwt_claims_t *claims, crm_error_t *err);

/*
 * The header's alg when it decodes to an object with one string alg
 * member, copied into alg (size bytes); "" otherwise.  Chooses a key
 * source only: the verify function then pins it again.
 */
void crm_jwt_header_alg(const char *token, size_t len, char *alg,
    size_t size);

#endif /* CRM_JWT_H */
