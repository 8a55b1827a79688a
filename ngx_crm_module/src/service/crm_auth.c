/*
 * Authentication: register, login (JSON or the OAuth2 password form), a
 * merchant's first sign-in with an identity provider's token, and the
 * caller's own account and profile.
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
typedef struct {
    crm_json_value_t  display_name;
    crm_json_value_t  company;
} crm_bootstrap_body_t;


typedef struct {
    crm_json_value_t  full_name;
    crm_json_value_t  display_name;
    crm_json_value_t  company;
    crm_json_value_t  phone;
} crm_profile_body_t;


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
static crm_status_e crm_auth_bootstrap_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_bootstrap_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_signin_log(crm_db_t *db, crm_call_t *call,
    const char *account_id, int success, const char *reason,
    crm_error_t *err);
static crm_status_e crm_auth_profile_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_auth_profile_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static const char *crm_auth_text(crm_call_t *call,
    const crm_json_value_t *v);
static crm_status_e crm_auth_account_changed(crm_db_t *db, crm_call_t *call,
    const crm_account_t *acct, const char *action, unsigned status,
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

static const crm_json_field_t  crm_bootstrap_fields[] = {
    { .name = "display_name", .kind = CRM_JSON_STRING,
      .max_len = CRM_PROFILE_MAX,
      .offset = offsetof(crm_bootstrap_body_t, display_name) },
    { .name = "company", .kind = CRM_JSON_STRING,
      .max_len = CRM_PROFILE_MAX,
      .offset = offsetof(crm_bootstrap_body_t, company) },
};

static const crm_json_field_t  crm_profile_fields[] = {
    { .name = "full_name", .kind = CRM_JSON_STRING,
      .max_len = CRM_FULL_NAME_MAX,
      .offset = offsetof(crm_profile_body_t, full_name) },
    { .name = "display_name", .kind = CRM_JSON_STRING,
      .max_len = CRM_PROFILE_MAX,
      .offset = offsetof(crm_profile_body_t, display_name) },
    { .name = "company", .kind = CRM_JSON_STRING,
      .max_len = CRM_PROFILE_MAX,
      .offset = offsetof(crm_profile_body_t, company) },
    { .name = "phone", .kind = CRM_JSON_STRING, .nullable = 1,
      .max_len = 64,
      .offset = offsetof(crm_profile_body_t, phone) },
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

const crm_endpoint_t  crm_auth_bootstrap = {
    .verifier = &crm_verify_signin,
    .body = CRM_BODY_JSON_OPTIONAL,
    .parse = crm_auth_bootstrap_parse,
    .run = crm_auth_bootstrap_run
};

const crm_endpoint_t  crm_auth_profile = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_auth_profile_parse,
    .run = crm_auth_profile_run
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

    return crm_auth_account_changed(db, call, &acct, "account.register", 201,
                                    err);
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


/* a decoded string field as a NUL-terminated copy; NULL when absent */
static const char *
crm_auth_text(crm_call_t *call, const crm_json_value_t *v)
{
    if (!v->present) {
        return NULL;
    }

    if (v->null) {
        return "";
    }

    return crm_arena_strdup(&call->arena, v->str);
}


static crm_status_e
crm_auth_bootstrap_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e           rc;
    crm_merchant_new_t    *m;
    crm_bootstrap_body_t   body;

    /* a refused token: its run records the refusal, nothing is read */
    if (call->refusal != NULL) {
        return CRM_OK;
    }

    memset(&body, 0, sizeof(body));

    if (call->json != NULL) {
        rc = crm_json_decode_table(call->json, crm_bootstrap_fields, &body,
                                   err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    m = crm_arena_alloc(&call->arena, sizeof(crm_merchant_new_t));
    if (m == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    memset(m, 0, sizeof(crm_merchant_new_t));

    m->issuer = call->claims.iss;
    m->subject = call->claims.sub;

    /* a name the profile could not hold is the provider's oddity: left out */
    m->full_name = crm_utf8_length(crm_str_c(call->claims.name))
                   <= CRM_PROFILE_MAX ? call->claims.name : "";
    m->display_name = crm_auth_text(call, &body.display_name);
    m->company = crm_auth_text(call, &body.company);

    if (m->display_name == NULL) {
        m->display_name = m->full_name;
    }

    if (m->company == NULL) {
        m->company = "";
    }

    /* an address the provider gives that is not one is not kept */
    if (call->claims.email[0] != '\0') {
        m->email = crm_arena_alloc(&call->arena, CRM_EMAIL_MAX + 1);
        if (m->email == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        if (crm_email_normalize(crm_str_c(call->claims.email), "email",
                                (char *) m->email, err)
            != CRM_OK)
        {
            m->email = NULL;
            memset(err, 0, sizeof(crm_error_t));
        }
    }

    call->input = m;

    return CRM_OK;
}


/*
 * The merchant's first call creates its account (201); later ones find it
 * (200).  Accepted and refused tokens both reach the login log, so that
 * sign-ins read the same as password logins there.
 */
static crm_status_e
crm_auth_bootstrap_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                   created;
    char                  reason[sizeof(err->message)
                                 + sizeof(err->cause) + 32];
    crm_status_e          rc;
    crm_account_t         acct;
    crm_merchant_new_t   *m;

    if (call->refusal != NULL) {
        snprintf(reason, sizeof(reason), "idp_token_refused: %s (%s)",
                 call->refusal->message, call->refusal->cause);

        rc = crm_auth_signin_log(db, call, NULL, 0, reason, err);
        if (rc != CRM_OK) {
            return rc;
        }

        *err = *call->refusal;

        return err->code;
    }

    m = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_merchant_bootstrap(db, m, &acct, &created, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!acct.is_active) {
        crm_db_rollback(db);

        rc = crm_auth_signin_log(db, call, acct.id, 0, "inactive_account",
                                 err);
        if (rc != CRM_OK) {
            return rc;
        }

        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "account is not active");
    }

    rc = crm_auth_signin_log(db, call, acct.id, 1, "idp_token", err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* the caller is known now, for the glue's logs ($crm_account_id) */
    memcpy(call->account_id, acct.id, CRM_UUID_LEN + 1);

    return crm_auth_account_changed(db, call, &acct,
                                    created ? "account.bootstrap" : NULL,
                                    created ? 201 : 200, err);
}


static crm_status_e
crm_auth_signin_log(crm_db_t *db, crm_call_t *call, const char *account_id,
    int success, const char *reason, crm_error_t *err)
{
    crm_merchant_new_t    *m;
    crm_login_attempt_t    attempt;

    m = call->input;

    attempt.account_id = account_id;
    attempt.email = m != NULL ? m->email : NULL;
    attempt.success = success;
    attempt.reason = reason;
    attempt.ip = call->ip;
    attempt.user_agent = call->user_agent;

    return crm_store_login_log(db, &attempt, err);
}


static crm_status_e
crm_auth_profile_parse(crm_call_t *call, crm_error_t *err)
{
    char                 *phone;
    crm_status_e          rc;
    crm_profile_t        *p;
    crm_profile_body_t    body;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_profile_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!body.full_name.present && !body.display_name.present
        && !body.company.present && !body.phone.present)
    {
        return crm_error_set(err, CRM_E_INVALID, "body",
                             "must set at least one of full_name, "
                             "display_name, company, phone");
    }

    p = crm_arena_alloc(&call->arena, sizeof(crm_profile_t));
    if (p == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    p->full_name = crm_auth_text(call, &body.full_name);
    p->display_name = crm_auth_text(call, &body.display_name);
    p->company = crm_auth_text(call, &body.company);
    p->phone = crm_auth_text(call, &body.phone);

    if (p->phone != NULL && p->phone[0] != '\0') {
        phone = crm_arena_alloc(&call->arena, CRM_PHONE_MAX + 1);
        if (phone == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        rc = crm_phone_normalize(body.phone.str, "phone", phone, err);
        if (rc != CRM_OK) {
            return rc;
        }

        p->phone = phone;
    }

    if ((body.full_name.present && p->full_name == NULL)
        || (body.display_name.present && p->display_name == NULL)
        || (body.company.present && p->company == NULL))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    call->input = p;

    return CRM_OK;
}


static crm_status_e
crm_auth_profile_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 found;
    crm_status_e        rc;
    crm_account_t       acct;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_account_profile(db, call->account_id, call->input, &acct,
                                   &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    return crm_auth_account_changed(db, call, &acct, "account.profile", 200,
                                    err);
}


/*
 * The end of a change to the caller's own account: its audit row (none
 * when action is NULL), the commit, and the account as the reply
 */
static crm_status_e
crm_auth_account_changed(crm_db_t *db, crm_call_t *call,
    const crm_account_t *acct, const char *action, unsigned status,
    crm_error_t *err)
{
    crm_status_e        rc;
    crm_audit_entry_t   audit;

    if (action != NULL) {
        audit.actor_id = acct->id;
        audit.action = action;
        audit.object_type = "account";
        audit.object_id = acct->id;
        audit.details = "{}";

        rc = crm_store_audit(db, &audit, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_account_reply(call, status, acct, err);
}
