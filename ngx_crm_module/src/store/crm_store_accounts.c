/*
 * Accounts and the login log.  Every statement is prepared and takes its
 * values as parameters.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_accounts.h"


/* the columns crm_store_account_row() reads, in order */
#define CRM_ACCOUNT_COLUMNS                                                   \
    "id, coalesce(email, ''), full_name, role, is_active, "                   \
    CRM_SQL_RFC3339("created_at") ", "                                        \
    CRM_SQL_EPOCH_US("created_at") ", coalesce(password_hash, ''), "          \
    "display_name, company, phone, coalesce(idp_issuer, ''), "                \
    "coalesce(idp_subject, '')"
#define CRM_ACCOUNT_NCOLUMNS  13


static void crm_store_copy(char *dst, size_t size, const char *src);
static void crm_store_account_row(const PGresult *res, int row,
    crm_account_t *out);
static crm_status_e crm_store_account_one(crm_db_t *db,
    const crm_stmt_t *stmt, const char *const *params, crm_account_t *out,
    int *found, crm_error_t *err);


static const crm_stmt_t  crm_account_insert = {
    "account_insert",
    "INSERT INTO crm.accounts (email, full_name, role, password_hash)"
    " VALUES ($1, $2, $3, $4) RETURNING " CRM_ACCOUNT_COLUMNS,
    4
};

static const crm_stmt_t  crm_account_by_email = {
    "account_by_email",
    "SELECT " CRM_ACCOUNT_COLUMNS " FROM crm.accounts"
    " WHERE email = $1 AND idp_issuer IS NULL",
    1
};

static const crm_stmt_t  crm_account_by_id = {
    "account_by_id",
    "SELECT " CRM_ACCOUNT_COLUMNS " FROM crm.accounts WHERE id = $1",
    1
};

static const crm_stmt_t  crm_account_by_identity = {
    "account_by_identity",
    "SELECT " CRM_ACCOUNT_COLUMNS " FROM crm.accounts"
    " WHERE idp_issuer = $1 AND idp_subject = $2",
    2
};

/*
 * Concurrent first calls for one identity meet in the unique index: one
 * inserts, the others wait for it and insert nothing, then read its row
 */
static const crm_stmt_t  crm_merchant_insert = {
    "merchant_insert",
    "INSERT INTO crm.accounts (idp_issuer, idp_subject, email, full_name,"
    " role, display_name, company)"
    " VALUES ($1, $2, $3, $4, 'merchant', $5, $6)"
    " ON CONFLICT (idp_issuer, idp_subject) WHERE idp_issuer IS NOT NULL"
    " DO NOTHING RETURNING " CRM_ACCOUNT_COLUMNS,
    6
};

/* the provider is the authority on the person's email */
static const crm_stmt_t  crm_merchant_refresh = {
    "merchant_refresh",
    "UPDATE crm.accounts SET email = $3, updated_at = now()"
    " WHERE idp_issuer = $1 AND idp_subject = $2"
    "   AND email IS DISTINCT FROM $3"
    " RETURNING " CRM_ACCOUNT_COLUMNS,
    3
};

static const crm_stmt_t  crm_account_profile = {
    "account_profile",
    "UPDATE crm.accounts SET full_name = coalesce($2, full_name),"
    " display_name = coalesce($3, display_name),"
    " company = coalesce($4, company), phone = coalesce($5, phone),"
    " updated_at = now()"
    " WHERE id = $1 RETURNING " CRM_ACCOUNT_COLUMNS,
    5
};

static const crm_stmt_t  crm_account_set_password = {
    "account_set_password",
    "UPDATE crm.accounts SET password_hash = $2, updated_at = now()"
    " WHERE id = $1",
    2
};

static const crm_stmt_t  crm_account_update = {
    "account_update",
    "UPDATE crm.accounts SET role = coalesce($2, role),"
    " is_active = coalesce($3::boolean, is_active), updated_at = now()"
    " WHERE id = $1 RETURNING " CRM_ACCOUNT_COLUMNS,
    3
};

static const crm_stmt_t  crm_account_make_admin = {
    "account_make_admin",
    "INSERT INTO crm.accounts (email, role, password_hash)"
    " VALUES ($1, 'admin', $2)"
    " ON CONFLICT (email) WHERE idp_issuer IS NULL DO UPDATE"
    " SET role = 'admin', is_active = true, updated_at = now()"
    " RETURNING " CRM_ACCOUNT_COLUMNS ", (xmax = 0)",
    2
};

/*
 * The first page and the later ones are separate statements: an optional
 * bound ("$1 IS NULL OR ...") would become a filter in a generic plan, and
 * every page would scan the index from its start.
 */
static const crm_stmt_t  crm_accounts_first_page = {
    "accounts_first_page",
    "SELECT " CRM_ACCOUNT_COLUMNS " FROM crm.accounts"
    " ORDER BY created_at, id LIMIT $1",
    1
};

static const crm_stmt_t  crm_accounts_next_page = {
    "accounts_next_page",
    "SELECT " CRM_ACCOUNT_COLUMNS " FROM crm.accounts"
    " WHERE (created_at, id) > (" CRM_SQL_FROM_EPOCH_US("$1") ", $2::uuid)"
    " ORDER BY created_at, id LIMIT $3",
    3
};

static const crm_stmt_t  crm_login_log_insert = {
    "login_log_insert",
    "INSERT INTO crm.login_log (account_id, email, success, reason, ip,"
    " user_agent) VALUES ($1, $2, $3, $4, $5, $6)",
    6
};


static const char  *crm_role_names[] = {
    [CRM_ROLE_NONE] = "",
    [CRM_ROLE_ADMIN] = "admin",
    [CRM_ROLE_MEMBER] = "member",
    [CRM_ROLE_MERCHANT] = "merchant"
};


const char *
crm_role_name(crm_role_e role)
{
    return crm_role_names[role];
}


crm_role_e
crm_role_parse(const char *name, size_t len)
{
    crm_role_e  r;

    for (r = CRM_ROLE_ADMIN; r <= CRM_ROLE_MERCHANT; r++) {
        if (strlen(crm_role_names[r]) == len
            && memcmp(crm_role_names[r], name, len) == 0)
        {
            return r;
        }
    }

    return CRM_ROLE_NONE;
}


static void
crm_store_copy(char *dst, size_t size, const char *src)
{
    size_t  n;

    n = strlen(src);
    if (n >= size) {
        n = size - 1;
    }

    memcpy(dst, src, n);
    dst[n] = '\0';
}


static void
crm_store_account_row(const PGresult *res, int row, crm_account_t *out)
{
    const char  *role;

    crm_store_copy(out->id, sizeof(out->id), PQgetvalue(res, row, 0));
    crm_store_copy(out->email, sizeof(out->email), PQgetvalue(res, row, 1));
    crm_store_copy(out->full_name, sizeof(out->full_name),
                   PQgetvalue(res, row, 2));

    role = PQgetvalue(res, row, 3);
    out->role = crm_role_parse(role, strlen(role));
    out->is_active = PQgetvalue(res, row, 4)[0] == 't';

    crm_store_copy(out->created_at, sizeof(out->created_at),
                   PQgetvalue(res, row, 5));
    out->created_us = strtoll(PQgetvalue(res, row, 6), NULL, 10);
    crm_store_copy(out->password_hash, sizeof(out->password_hash),
                   PQgetvalue(res, row, 7));
    crm_store_copy(out->display_name, sizeof(out->display_name),
                   PQgetvalue(res, row, 8));
    crm_store_copy(out->company, sizeof(out->company),
                   PQgetvalue(res, row, 9));
    crm_store_copy(out->phone, sizeof(out->phone), PQgetvalue(res, row, 10));
    crm_store_copy(out->idp_issuer, sizeof(out->idp_issuer),
                   PQgetvalue(res, row, 11));
    crm_store_copy(out->idp_subject, sizeof(out->idp_subject),
                   PQgetvalue(res, row, 12));
}


static crm_status_e
crm_store_account_one(crm_db_t *db, const crm_stmt_t *stmt,
    const char *const *params, crm_account_t *out, int *found,
    crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_exec(db, stmt, params, &res, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *found = PQntuples(res) > 0;

    if (*found) {
        crm_store_account_row(res, 0, out);
    }

    PQclear(res);

    return CRM_OK;
}


crm_status_e
crm_store_account_insert(crm_db_t *db, const char *email,
    const char *full_name, crm_role_e role, const char *password_hash,
    crm_account_t *out, crm_error_t *err)
{
    int          found;
    const char  *params[4];

    params[0] = email;
    params[1] = full_name;
    params[2] = crm_role_name(role);
    params[3] = password_hash;

    return crm_store_account_one(db, &crm_account_insert, params, out,
                                 &found, err);
}


crm_status_e
crm_store_account_by_email(crm_db_t *db, const char *email,
    crm_account_t *out, int *found, crm_error_t *err)
{
    const char  *params[1];

    params[0] = email;

    return crm_store_account_one(db, &crm_account_by_email, params, out,
                                 found, err);
}


crm_status_e
crm_store_account_by_id(crm_db_t *db, const char *id, crm_account_t *out,
    int *found, crm_error_t *err)
{
    const char  *params[1];

    params[0] = id;

    return crm_store_account_one(db, &crm_account_by_id, params, out, found,
                                 err);
}


crm_status_e
crm_store_account_by_identity(crm_db_t *db, const char *issuer,
    const char *subject, crm_account_t *out, int *found, crm_error_t *err)
{
    const char  *params[2];

    params[0] = issuer;
    params[1] = subject;

    return crm_store_account_one(db, &crm_account_by_identity, params, out,
                                 found, err);
}


crm_status_e
crm_store_merchant_bootstrap(crm_db_t *db, const crm_merchant_new_t *m,
    crm_account_t *out, int *created, crm_error_t *err)
{
    int            found;
    crm_status_e   rc;
    const char    *params[6];

    params[0] = m->issuer;
    params[1] = m->subject;
    params[2] = m->email;
    params[3] = m->full_name;
    params[4] = m->display_name;
    params[5] = m->company;

    rc = crm_store_account_one(db, &crm_merchant_insert, params, out,
                               created, err);
    if (rc != CRM_OK || *created) {
        return rc;
    }

    rc = crm_store_account_one(db, &crm_merchant_refresh, params, out,
                               &found, err);
    if (rc != CRM_OK || found) {
        return rc;
    }

    rc = crm_store_account_by_identity(db, m->issuer, m->subject, out,
                                       &found, err);
    if (rc == CRM_OK && !found) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "merchant vanished during bootstrap");
    }

    return rc;
}


crm_status_e
crm_store_account_profile(crm_db_t *db, const char *id,
    const crm_profile_t *p, crm_account_t *out, int *found, crm_error_t *err)
{
    const char  *params[5];

    params[0] = id;
    params[1] = p->full_name;
    params[2] = p->display_name;
    params[3] = p->company;
    params[4] = p->phone;

    return crm_store_account_one(db, &crm_account_profile, params, out,
                                 found, err);
}


crm_status_e
crm_store_account_set_password(crm_db_t *db, const char *id,
    const char *password_hash, crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[2];

    params[0] = id;
    params[1] = password_hash;

    rc = crm_db_exec(db, &crm_account_set_password, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_account_update(crm_db_t *db, const char *id, crm_role_e role,
    int is_active, crm_account_t *out, int *found, crm_error_t *err)
{
    const char  *params[3];

    params[0] = id;
    params[1] = role == CRM_ROLE_NONE ? NULL : crm_role_name(role);
    params[2] = is_active < 0 ? NULL : (is_active ? "true" : "false");

    return crm_store_account_one(db, &crm_account_update, params, out, found,
                                 err);
}


crm_status_e
crm_store_account_make_admin(crm_db_t *db, const char *email,
    const char *password_hash, crm_account_t *out, int *created,
    crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[2];

    params[0] = email;
    params[1] = password_hash;

    rc = crm_db_exec(db, &crm_account_make_admin, params, &res, err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_store_account_row(res, 0, out);
    *created = PQgetvalue(res, 0, CRM_ACCOUNT_NCOLUMNS)[0] == 't';
    PQclear(res);

    return CRM_OK;
}


crm_status_e
crm_store_accounts_page(crm_db_t *db, const crm_page_t *page,
    crm_account_t *out, size_t *n, crm_error_t *err)
{
    int            i, rows;
    char           ts[24], limit[16];
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[3];

    snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    if (page->has_cursor) {
        params[0] = ts;
        params[1] = page->cursor.id;
        params[2] = limit;

        rc = crm_db_exec(db, &crm_accounts_next_page, params, &res, err);

    } else {
        params[0] = limit;

        rc = crm_db_exec(db, &crm_accounts_first_page, params, &res, err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    rows = PQntuples(res);

    for (i = 0; i < rows && (unsigned) i <= page->limit; i++) {
        crm_store_account_row(res, i, &out[i]);
    }

    *n = (size_t) i;
    PQclear(res);

    return CRM_OK;
}


crm_status_e
crm_store_login_log(crm_db_t *db, const crm_login_attempt_t *attempt,
    crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[6];

    params[0] = attempt->account_id;
    params[1] = attempt->email;
    params[2] = attempt->success ? "true" : "false";
    params[3] = attempt->reason;
    params[4] = attempt->ip;
    params[5] = attempt->user_agent;

    rc = crm_db_exec(db, &crm_login_log_insert, params, &res, err);
    PQclear(res);

    return rc;
}
