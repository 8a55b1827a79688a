/*
 * Authentication: register, login (JSON or the OAuth2 password form) and
 * the caller's own account.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crm_accounts.h"
#include "crm_auth.h"
#include "crm_form.h"
#include "crm_store_audit.h"
#include "crm_verify.h"


/* one answer for unknown email, wrong password and inactive account */
#define CRM_LOGIN_FAILED  "incorrect email or password"


typedef struct {
    crm_json_value_t  email;
    crm_json_value_t  password;
    crm_json_value_t  full_name;
} crm_register_body_t;


typedef struct {
    char              email[CRM_EMAIL_MAX + 1];
    crm_str_t         password;
    const char       *full_name;
} crm_register_in_t;


typedef struct {
    crm_json_value_t  email;
    crm_json_value_t  password;
} crm_login_body_t;


typedef struct {
    char              email[CRM_EMAIL_MAX + 1];
    int               email_valid;
    crm_str_t         password;
} crm_login_in_t;


static crm_status_e crm_auth_register_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_register_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_password_check(crm_str_t pw, crm_error_t *err);
static crm_status_e crm_auth_login_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_auth_login_form(crm_call_t *call, crm_login_in_t *in,
    crm_error_t *err);
static crm_status_e crm_auth_login_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_login_failed(crm_db_t *db, crm_call_t *call,
    const crm_login_in_t *in, const char *account_id, const char *reason,
    crm_error_t *err);
static crm_status_e crm_auth_login_succeeded(crm_db_t *db,
    crm_call_t *call, const crm_login_in_t *in, const crm_account_t *acct,
    int rehash, crm_error_t *err);
static crm_status_e crm_auth_me_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);


static const crm_json_field_t  crm_register_fields[] = {
    { .name = "email", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_EMAIL_MAX + 64,
      .offset = offsetof(crm_register_body_t, email) },
    { .name = "password", .kind = CRM_JSON_STRING, .required = 1,
      .offset = offsetof(crm_register_body_t, password) },
    { .name = "full_name", .kind = CRM_JSON_STRING,
      .max_len = CRM_FULL_NAME_MAX,
      .offset = offsetof(crm_register_body_t, full_name) },
};

static const crm_json_field_t  crm_login_fields[] = {
    { .name = "email", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_EMAIL_MAX + 64,
      .offset = offsetof(crm_login_body_t, email) },
    { .name = "password", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = CRM_PASSWORD_MAX,
      .offset = offsetof(crm_login_body_t, password) },
};

/* OAuth2PasswordRequestForm's fields */
static const char *const  crm_login_form_names[] = {
    "username", "password", "grant_type", "scope", "client_id",
    "client_secret", NULL
};


const crm_endpoint_t  crm_auth_register = {
    .slow = 1,
    .body = CRM_BODY_JSON,
    .parse = crm_auth_register_parse,
    .run = crm_auth_register_run
};

const crm_endpoint_t  crm_auth_login = {
    .slow = 1,
    .body = CRM_BODY_JSON_OR_FORM,
    .parse = crm_auth_login_parse,
    .run = crm_auth_login_run
};

const crm_endpoint_t  crm_auth_me = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .run = crm_auth_me_run
};


/* the API counts characters; bytes are counted only for the hash input */
static crm_status_e
crm_auth_password_check(crm_str_t pw, crm_error_t *err)
{
    return crm_text_check(pw, "password", CRM_PASSWORD_MIN, CRM_PASSWORD_MAX,
                          0, err);
}


static crm_status_e
crm_auth_register_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e          rc;
    crm_register_in_t    *in;
    crm_register_body_t   body;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_register_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_register_in_t));
    if (in == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = crm_email_normalize(body.email.str, "email", in->email, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_auth_password_check(body.password.str, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in->password = body.password.str;
    in->full_name = crm_arena_strdup(&call->arena, body.full_name.str);
    if (in->full_name == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    call->input = in;

    return CRM_OK;
}


static crm_status_e
crm_auth_register_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    char                hash[CRM_PASSWORD_HASH_SIZE];
    crm_status_e        rc;
    crm_account_t       acct;
    crm_audit_entry_t   audit;
    crm_register_in_t  *in;

    in = call->input;

    rc = crm_password_hash(in->password.data, in->password.len,
                           &call->conf->argon2, hash, sizeof(hash), err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_account_insert(db, in->email, in->full_name,
                                  CRM_ROLE_MEMBER, hash, &acct, err);
    if (rc == CRM_E_CONFLICT) {
        return crm_error_set(err, CRM_E_CONFLICT, "email",
                             "is already registered");
    }

    if (rc != CRM_OK) {
        return rc;
    }

    audit.actor_id = acct.id;
    audit.action = "account.register";
    audit.object_type = "account";
    audit.object_id = acct.id;
    audit.details = "{}";

    rc = crm_store_audit(db, &audit, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_account_reply(call, 201, &acct, err);
}


/*
 * The OAuth2 password form: username is the email.  grant_type, when
 * present, must be "password"; scope and the client fields are accepted
 * and ignored, as FastAPI's OAuth2PasswordRequestForm does.
 */
static crm_status_e
crm_auth_login_form(crm_call_t *call, crm_login_in_t *in, crm_error_t *err)
{
    int            found;
    char          *pw;
    char           username[CRM_EMAIL_MAX + 64 + 1], grant[16];
    crm_status_e   rc;

    rc = crm_form_check_names(call->body, crm_login_form_names, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_form_get(call->body, "grant_type", grant, sizeof(grant),
                      &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (found && strcmp(grant, "password") != 0) {
        return crm_error_set(err, CRM_E_INVALID, "grant_type",
                             "must be \"password\"");
    }

    rc = crm_form_get(call->body, "username", username, sizeof(username),
                      &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_INVALID, "username", "is required");
    }

    pw = crm_arena_alloc(&call->arena, CRM_PASSWORD_MAX * 4 + 1);
    if (pw == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = crm_form_get(call->body, "password", pw, CRM_PASSWORD_MAX * 4 + 1,
                      &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_INVALID, "password", "is required");
    }

    in->password = crm_str_c(pw);
    in->email_valid = crm_email_normalize(crm_str_c(username), "username",
                                          in->email, err) == CRM_OK;

    return crm_text_check(in->password, "password", 1, CRM_PASSWORD_MAX, 0,
                          err);
}


static crm_status_e
crm_auth_login_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e       rc;
    crm_login_in_t    *in;
    crm_login_body_t   body;

    in = crm_arena_alloc(&call->arena, sizeof(crm_login_in_t));
    if (in == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    call->input = in;

    if (call->body_is_form) {
        rc = crm_auth_login_form(call, in, err);
        goto done;
    }

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_login_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in->password = body.password.str;

    /*
     * a malformed email cannot belong to an account: it fails like an
     * unknown one, and what was typed is not kept (it may be a password
     * typed in the wrong field)
     */
    in->email_valid = crm_email_normalize(body.email.str, "email", in->email,
                                          err) == CRM_OK;

    rc = CRM_OK;

done:

    if (rc == CRM_OK) {
        memset(err, 0, sizeof(crm_error_t));
    }

    return rc;
}


static crm_status_e
crm_auth_login_failed(crm_db_t *db, crm_call_t *call,
    const crm_login_in_t *in, const char *account_id, const char *reason,
    crm_error_t *err)
{
    char                  cause[sizeof(err->cause)];
    crm_status_e          rc;
    crm_login_attempt_t   attempt;

    /* why a stored hash was unusable, for the error log */
    memcpy(cause, err->cause, sizeof(cause));

    attempt.account_id = account_id;
    attempt.email = in->email_valid ? in->email : NULL;
    attempt.success = 0;
    attempt.reason = reason;
    attempt.ip = call->ip;
    attempt.user_agent = call->user_agent;

    rc = crm_store_login_log(db, &attempt, err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_error_set(err, CRM_E_UNAUTHORIZED, NULL, CRM_LOGIN_FAILED);

    if (cause[0] != '\0') {
        crm_error_cause(err, "%s", cause);
    }

    return err->code;
}


static crm_status_e
crm_auth_login_succeeded(crm_db_t *db, crm_call_t *call,
    const crm_login_in_t *in, const crm_account_t *acct, int rehash,
    crm_error_t *err)
{
    char                  hash[CRM_PASSWORD_HASH_SIZE];
    char                 *token;
    size_t                token_len;
    int64_t               now;
    yajl_gen              g;
    crm_status_e          rc;
    crm_jwt_claims_t      claims;
    crm_login_attempt_t   attempt;

    if (rehash) {
        rc = crm_password_hash(in->password.data, in->password.len,
                               &call->conf->argon2, hash, sizeof(hash), err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rehash) {
        rc = crm_store_account_set_password(db, acct->id, hash, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    attempt.account_id = acct->id;
    attempt.email = in->email;
    attempt.success = 1;
    attempt.reason = rehash ? "ok, password rehashed" : "ok";
    attempt.ip = call->ip;
    attempt.user_agent = call->user_agent;

    rc = crm_store_login_log(db, &attempt, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    now = (int64_t) time(NULL);

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.iss, sizeof(claims.iss), "%s", call->conf->jwt_issuer);
    snprintf(claims.aud, sizeof(claims.aud), "%s", CRM_JWT_AUDIENCE);
    snprintf(claims.sub, sizeof(claims.sub), "%s", acct->id);
    snprintf(claims.role, sizeof(claims.role), "%s",
             crm_role_name(acct->role));
    claims.iat = now;
    claims.exp = now + call->conf->jwt_ttl;

    rc = crm_jwt_sign_hs256(call->conf->jwt_key, call->conf->jwt_key_len,
                            &claims, &token, &token_len);
    if (rc != CRM_OK) {
        return crm_error_set(err, rc, NULL, "could not issue a token");
    }

    g = crm_json_gen_new();
    if (g == NULL
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_strn(g, "access_token", token, token_len) != 0
        || crm_json_gen_kv_str(g, "token_type", "bearer") != 0
        || crm_json_gen_kv_int(g, "expires_in", call->conf->jwt_ttl) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        free(token);

        if (g != NULL) {
            yajl_gen_free(g);
        }

        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    free(token);

    return crm_call_reply_json(call, 200, g, err);
}


static crm_status_e
crm_auth_login_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int               found, match, rehash;
    crm_status_e      rc;
    crm_account_t     acct;
    crm_login_in_t   *in;

    in = call->input;
    found = 0;

    if (in->email_valid) {
        rc = crm_store_account_by_email(db, in->email, &acct, &found, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (!found || acct.password_hash[0] == '\0') {
        crm_password_verify_dummy(in->password.data, in->password.len,
                                  &call->conf->argon2);
        return crm_auth_login_failed(db, call, in, found ? acct.id : NULL,
                                     found ? "no_password"
                                     : in->email_valid ? "unknown_email"
                                     : "malformed_email", err);
    }

    rc = crm_password_verify(in->password.data, in->password.len,
                             acct.password_hash, &call->conf->argon2, &match,
                             &rehash, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* an unusable stored hash fails like a wrong password, saying why */
    if (!match) {
        return crm_auth_login_failed(db, call, in, acct.id,
                                     err->cause[0] ? "unusable_hash"
                                                   : "bad_password", err);
    }

    if (!acct.is_active) {
        return crm_auth_login_failed(db, call, in, acct.id, "inactive", err);
    }

    return crm_auth_login_succeeded(db, call, in, &acct, rehash, err);
}


static crm_status_e
crm_auth_me_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    (void) db;

    return crm_account_reply(call, 200, call->caller, err);
}
