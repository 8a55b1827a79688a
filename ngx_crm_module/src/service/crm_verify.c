/*
 * The verifiers; see crm_verify.h.  Each runs in the event loop, in
 * microseconds, and never touches the database: an account named by a
 * token is loaded (and checked active) on the pool, by crm_call_execute().
 */

#include <strings.h>

#include "crm_sig.h"
#include "crm_validate.h"
#include "crm_verify.h"


static crm_status_e crm_verify_bearer_token(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_verify_callback_signature(crm_call_t *call,
    crm_error_t *err);


const crm_verifier_t  crm_verify_bearer = {
    .scheme = "Bearer",
    .account = 1,
    .verify = crm_verify_bearer_token
};

const crm_verifier_t  crm_verify_callback = {
    .scheme = "CRM-Signature",
    .body = 1,
    .verify = crm_verify_callback_signature
};


static crm_status_e
crm_verify_bearer_token(crm_call_t *call, crm_error_t *err)
{
    crm_str_t          header;
    crm_status_e       rc;
    crm_jwt_verify_t   v;

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

    v.key = call->conf->jwt_key;
    v.key_len = call->conf->jwt_key_len;
    v.issuer = call->conf->jwt_issuer;
    v.audience = CRM_JWT_AUDIENCE;
    v.now = call->now;
    v.leeway = CRM_JWT_LEEWAY;

    rc = crm_jwt_verify_hs256(header.data, header.len, &v, &call->claims,
                              err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* the subject is used as a database key: it must be one of ours */
    if (!crm_uuid_valid(crm_str_c(call->claims.sub))) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL, "invalid token");
    }

    return CRM_OK;
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
