/*
 * The ways a caller proves who it is, one crm_verifier_t each; an
 * endpoint names the one it takes (crm_endpoint_t.verifier).
 *
 *   crm_verify_bearer     "Authorization: Bearer <token>": the gateway's
 *                         HS256 tokens, naming an account, or an
 *                         identity provider's RS256 ID tokens, naming a
 *                         merchant by (iss, sub)
 *   crm_verify_signin     an identity provider's ID token only, for the
 *                         merchant's first call, which creates the
 *                         account; refusals reach the endpoint's run
 *   crm_verify_callback   "X-CRM-Signature: t=..,v1=..": an HMAC-SHA256
 *                         of the raw body by the configured sender
 *   crm_verify_webhook    the signature scheme of the source the path
 *                         names (crm_sig.h): 404 for a source not
 *                         configured
 *
 * A new kind of credential is a new verifier here, or a new token kind
 * inside crm_verify_bearer; endpoints and the glue do not change.
 */

#ifndef CRM_VERIFY_H
#define CRM_VERIFY_H

#include "crm_call.h"


extern const crm_verifier_t  crm_verify_bearer;
extern const crm_verifier_t  crm_verify_signin;
extern const crm_verifier_t  crm_verify_callback;
extern const crm_verifier_t  crm_verify_webhook;


/* the source the call's first path parameter names, or NULL */
const crm_webhook_source_t *crm_verify_webhook_source(const crm_call_t *call);

#endif /* CRM_VERIFY_H */
