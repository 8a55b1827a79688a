/*
 * The verifiers; see crm_verify.h.  Each runs in the event loop, in
 * microseconds, and never touches the database: an account named by a
 * token is loaded (and checked active) on the pool, by crm_call_execute().
 */

#include <string.h>
#include <strings.h>

#include "crm_sig.h"
#include "crm_validate.h"
#include "crm_verify.h"


static crm_status_e crm_verify_bearer_token(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_verify_signin_token(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_verify_bearer_value(crm_call_t *call,
    crm_str_t *token, crm_error_t *err);
static crm_status_e crm_verify_idp_token(crm_call_t *call, crm_str_t token,
    crm_error_t *err);
static crm_status_e crm_verify_callback_signature(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_verify_webhook_signature(crm_call_t *call,
    crm_error_t *err);


const crm_verifier_t  crm_verify_bearer = {
    .scheme = "Bearer",
    .account = 1,
    .verify = crm_verify_bearer_token
};

const crm_verifier_t  crm_verify_signin = {
    .scheme = "Bearer",
    .refusal_runs = 1,
    .verify = crm_verify_signin_token
};

const crm_verifier_t  crm_verify_callback = {
    .scheme = "CRM-Signature",
    .body = 1,
    .verify = crm_verify_callback_signature
};

const crm_verifier_t  crm_verify_webhook = {
    .scheme = "Webhook-Signature",
    .body = 1,
    .verify = crm_verify_webhook_signature
};


/* the token of "Authorization: Bearer <token>" */
static crm_status_e
crm_verify_bearer_value(crm_call_t *call, crm_str_t *token,
    crm_error_t *err)
{
    crm_str_t  header;

    header = crm_call_header(call, "Authorization");

    if (header.len < 7 || strncasecmp(header.data, "Bearer ", 7) != 0) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "missing bearer token");
    }

    header.data += 7;
    header.len -= 7;

    while (header.len && header.data[0] == ' ') {
        header.data++;
        header.len--;
    }

    *token = header;
    call->invalid_token = 1;

    return CRM_OK;
}


/*
 * The token's alg picks the key source, and the source's verify function
 * takes only its own alg: an HS256 token cannot reach the provider's keys,
 * and one signed with a provider's public key as an HMAC secret meets our
 * secret instead
 */
static crm_status_e
crm_verify_bearer_token(crm_call_t *call, crm_error_t *err)
{
    char               alg[8];
    crm_str_t          token;
    crm_status_e       rc;
    crm_jwt_verify_t   v;

    rc = crm_verify_bearer_value(call, &token, err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_jwt_header_alg(token.data, token.len, alg, sizeof(alg));

    if (call->conf->idp_audience[0] != '\0' && strcmp(alg, "RS256") == 0) {
        return crm_verify_idp_token(call, token, err);
    }

    memset(&v, 0, sizeof(v));
    v.key = call->conf->jwt_key;
    v.key_len = call->conf->jwt_key_len;
    v.issuer = call->conf->jwt_issuer;
    v.audience = CRM_JWT_AUDIENCE;
    v.now = call->now;
    v.leeway = CRM_JWT_LEEWAY;

    rc = crm_jwt_verify_hs256(token.data, token.len, &v, &call->claims, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* the subject is used as a database key: it must be one of ours */
    if (!crm_uuid_valid(crm_str_c(call->claims.sub))) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL, "invalid token");
    }

    memcpy(call->account_id, call->claims.sub, CRM_UUID_LEN + 1);
    call->invalid_token = 0;

    return CRM_OK;
}


static crm_status_e
crm_verify_idp_token(crm_call_t *call, crm_str_t token, crm_error_t *err)
{
    crm_status_e       rc;
    crm_jwt_verify_t   v;

    if (call->conf->idp_audience[0] == '\0') {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "identity provider sign-in is not configured");
    }

    memset(&v, 0, sizeof(v));
    v.keys = call->conf->idp_keys;
    v.url_keys = call->conf->idp_url_keys != NULL
                 ? *call->conf->idp_url_keys : NULL;
    v.issuer = call->conf->idp_issuer;
    v.audience = call->conf->idp_audience;
    v.now = call->now;
    v.leeway = CRM_IDP_LEEWAY;
    v.identity = 1;

    rc = crm_jwt_verify_rs256(token.data, token.len, &v, &call->claims, err);
    if (rc != CRM_OK) {
        return rc;
    }

    call->idp = 1;
    call->invalid_token = 0;

    return CRM_OK;
}


/*
 * A sign-in takes an identity provider's token only, and records a
 * refused one in the login log itself (crm_verifier_t.refusal_runs)
 */
static crm_status_e
crm_verify_signin_token(crm_call_t *call, crm_error_t *err)
{
    crm_str_t     token;
    crm_status_e  rc;

    rc = crm_verify_bearer_value(call, &token, err);
    if (rc == CRM_OK) {
        rc = crm_verify_idp_token(call, token, err);
    }

    return rc;
}


static crm_status_e
crm_verify_callback_signature(crm_call_t *call, crm_error_t *err)
{
    if (call->conf->callback_key == NULL) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "signed callbacks are not configured");
    }

    return crm_sig_verify(call->conf->callback_key,
                          call->conf->callback_key_len,
                          crm_call_header(call, "X-CRM-Signature"),
                          call->body, call->now, CRM_SIG_TOLERANCE, err);
}


const crm_webhook_source_t *
crm_verify_webhook_source(const crm_call_t *call)
{
    size_t  i;

    if (call->match.nparams == 0) {
        return NULL;
    }

    for (i = 0; i < call->conf->nwebhook_sources; i++) {
        if (crm_str_eq(call->match.params[0],
                       call->conf->webhook_sources[i].name))
        {
            return &call->conf->webhook_sources[i];
        }
    }

    return NULL;
}


static crm_status_e
crm_verify_webhook_signature(crm_call_t *call, crm_error_t *err)
{
    const crm_webhook_source_t  *src;

    src = crm_verify_webhook_source(call);
    if (src == NULL) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "no such webhook source");
    }

    if (src->scheme == CRM_WEBHOOK_SHOPIFY) {
        return crm_webhook_verify_shopify(src,
                   crm_call_header(call, "X-Shopify-Hmac-Sha256"),
                   call->body, err);
    }

    return crm_webhook_verify_standard(src,
               crm_call_header(call, "webhook-id"),
               crm_call_header(call, "webhook-timestamp"),
               crm_call_header(call, "webhook-signature"),
               call->body, call->now, CRM_SIG_TOLERANCE, err);
}
