/*
 * HS256 JSON Web Tokens (RFC 7519, RFC 7515) for the gateway's own tokens.
 * The algorithm is pinned: a header whose alg is not exactly "HS256" is
 * rejected before any key is used, so "none" and RS/HS confusion cannot
 * pass.  Signatures are compared in constant time.
 */

#ifndef CRM_JWT_H
#define CRM_JWT_H

#include <stdint.h>

#include "crm_error.h"


#define CRM_JWT_MAX_LEN  4096


typedef struct {
    char      iss[128];
    char      aud[128];
    char      sub[64];
    char      role[16];
    int64_t   iat;          /* 0 when absent */
    int64_t   exp;
} crm_jwt_claims_t;


typedef struct {
    const unsigned char  *key;
    size_t                key_len;
    const char           *issuer;      /* NULL: iss is not checked */
    const char           *audience;    /* NULL: aud is not checked */
    int64_t               now;         /* unix seconds */
    int64_t               leeway;      /* seconds, for exp, nbf and iat */
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

#endif /* CRM_JWT_H */
