/*
 * Stored answers to requests sent with an Idempotency-Key.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_idempotency.h"


/* "\x" and two hex digits a byte: bytea's text input */
#define CRM_REQUEST_HASH_TEXT  (2 + 2 * CRM_REQUEST_HASH_LEN + 1)


static void crm_store_idempotency_hash(const crm_idempotency_t *idem,
    char *out);


static const crm_stmt_t  crm_idempotency_claim = {
    "idempotency_claim",
    "INSERT INTO crm.idempotency_keys (scope, key, request_hash, status,"
    " response_body) VALUES ($1, $2, $3::bytea, 0, '')"
    " ON CONFLICT DO NOTHING RETURNING 1",
    3
};

static const crm_stmt_t  crm_idempotency_answer = {
    "idempotency_answer",
    "SELECT request_hash = $3::bytea, status, response_body"
    " FROM crm.idempotency_keys WHERE scope = $1 AND key = $2",
    3
};

static const crm_stmt_t  crm_idempotency_finish = {
    "idempotency_finish",
    "UPDATE crm.idempotency_keys SET status = $3::int, response_body = $4"
    " WHERE scope = $1 AND key = $2",
    4
};


static void
crm_store_idempotency_hash(const crm_idempotency_t *idem, char *out)
{
    size_t  i;

    static const char  hex[] = "0123456789abcdef";

    out[0] = '\\';
    out[1] = 'x';

    for (i = 0; i < CRM_REQUEST_HASH_LEN; i++) {
        out[2 + 2 * i] = hex[idem->request_hash[i] >> 4];
        out[3 + 2 * i] = hex[idem->request_hash[i] & 0x0f];
    }

    out[CRM_REQUEST_HASH_TEXT - 1] = '\0';
}


crm_status_e
crm_store_idempotency_claim(crm_db_t *db, const crm_idempotency_t *idem,
    int *claimed, crm_error_t *err)
{
    char           hash[CRM_REQUEST_HASH_TEXT];
    crm_rows_t     rows;
    const char    *params[3];
    crm_status_e   rc;

    crm_store_idempotency_hash(idem, hash);

    params[0] = idem->scope;
    params[1] = idem->key;
    params[2] = hash;

    rc = crm_db_query(db, &crm_idempotency_claim, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *claimed = rows.n > 0;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_idempotency_answer(crm_db_t *db, const crm_idempotency_t *idem,
    crm_rows_t *rows, crm_idempotency_answer_t *out, crm_error_t *err)
{
    char           hash[CRM_REQUEST_HASH_TEXT];
    const char    *params[3];
    crm_status_e   rc;

    crm_store_idempotency_hash(idem, hash);

    params[0] = idem->scope;
    params[1] = idem->key;
    params[2] = hash;

    memset(out, 0, sizeof(crm_idempotency_answer_t));

    rc = crm_db_query(db, &crm_idempotency_answer, params, rows, err);
    if (rc != CRM_OK || rows->n == 0) {
        return rc;
    }

    out->found = 1;
    out->same = crm_rows_value(rows, 0, 0)[0] == 't';
    out->status = (unsigned) atoi(crm_rows_value(rows, 0, 1));
    out->body = crm_rows_value(rows, 0, 2);

    return CRM_OK;
}


crm_status_e
crm_store_idempotency_finish(crm_db_t *db, const crm_idempotency_t *idem,
    unsigned status, const char *body, crm_error_t *err)
{
    char           st[16];
    PGresult      *res;
    const char    *params[4];
    crm_status_e   rc;

    snprintf(st, sizeof(st), "%u", status);

    params[0] = idem->scope;
    params[1] = idem->key;
    params[2] = st;
    params[3] = body;

    rc = crm_db_exec(db, &crm_idempotency_finish, params, &res, err);
    PQclear(res);

    return rc;
}
