/*
 * CRM integrations and the sync log; see crm_store_integrations.h.
 */

#include <stdio.h>

#include "crm_store_integrations.h"


static const crm_stmt_t  crm_sync_log_insert = {
    "sync_log_insert",
    "INSERT INTO crm.sync_log (account_id, crm_type, operation, entity,"
    " entity_id, outcome, http_status, duration_ms, attempt, error)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::int, $8::int, $9::int, $10)",
    10
};

/*
 * The connection there before tells 200 from 201: read in the statement's
 * snapshot, before its own change (a locking read would skip the row the
 * statement itself updates)
 */
static const crm_stmt_t  crm_integration_connect = {
    "integration_connect",
    "WITH prev AS (SELECT status FROM crm.integrations"
    "               WHERE account_id = $1 AND crm_type = $2)"
    " INSERT INTO crm.integrations AS i (account_id, crm_type, status,"
    " key_id, sealed, settings, account, connected_at)"
    " VALUES ($1, $2, 'connected', $3, decode($4, 'hex'), $5::jsonb,"
    " $6::jsonb, now())"
    " ON CONFLICT (account_id, crm_type) DO UPDATE"
    " SET status = 'connected', key_id = EXCLUDED.key_id,"
    " sealed = EXCLUDED.sealed, settings = EXCLUDED.settings,"
    " account = EXCLUDED.account, connected_at = now(),"
    " disconnected_at = NULL, last_error = NULL, paused_until = NULL,"
    " updated_at = now()"
    " RETURNING i.crm_type, i.status, " CRM_SQL_RFC3339("i.connected_at")
    ", coalesce((SELECT status <> 'disconnected' FROM prev), false)",
    6
};

static const crm_stmt_t  crm_integrations_list = {
    "integrations_list",
    "SELECT i.crm_type, i.status, " CRM_SQL_RFC3339("i.connected_at") ", "
    CRM_SQL_RFC3339("i.last_sync_at") ", i.last_error,"
    " count(j.id) FILTER (WHERE j.state = 'pending'),"
    " count(j.id) FILTER (WHERE j.state = 'ok'),"
    " count(j.id) FILTER (WHERE j.state = 'failed'),"
    " count(j.id) FILTER (WHERE j.state = 'dead')"
    " FROM crm.integrations i"
    " LEFT JOIN crm.sync_jobs j"
    "   ON j.account_id = i.account_id AND j.crm_type = i.crm_type"
    " WHERE i.account_id = $1 AND i.status <> 'disconnected'"
    "   AND ($2::text IS NULL OR i.crm_type = $2)"
    " GROUP BY i.account_id, i.crm_type ORDER BY i.crm_type",
    2
};

static const crm_stmt_t  crm_integration_disconnect = {
    "integration_disconnect",
    "UPDATE crm.integrations SET status = 'disconnected', key_id = NULL,"
    " sealed = NULL, disconnected_at = now(), updated_at = now()"
    " WHERE account_id = $1 AND crm_type = $2"
    "   AND status <> 'disconnected'"
    " RETURNING 1",
    2
};

static const crm_stmt_t  crm_sync_jobs_cancel = {
    "sync_jobs_cancel",
    "WITH c AS ("
    "   UPDATE crm.sync_jobs SET state = 'cancelled', finished_at = now()"
    "    WHERE account_id = $1 AND crm_type = $2"
    "      AND state IN ('pending', 'failed'))"
    " DELETE FROM crm.sync_queue WHERE account_id = $1 AND crm_type = $2",
    2
};

static const crm_stmt_t  crm_integration_known = {
    "integration_known",
    "SELECT 1 FROM crm.integrations WHERE account_id = $1 AND crm_type = $2",
    2
};

#define CRM_SYNC_LOG_PAGE(after)                                              \
    "SELECT id, operation, entity, entity_id, outcome, http_status,"         \
    " duration_ms, attempt, error, " CRM_SQL_RFC3339("created_at")            \
    " FROM crm.sync_log WHERE account_id = $1 AND crm_type = $2" after        \
    " ORDER BY id DESC LIMIT $3::int"

static const crm_stmt_t  crm_sync_log_first_page = {
    "sync_log_first_page", CRM_SYNC_LOG_PAGE(""), 3
};

static const crm_stmt_t  crm_sync_log_next_page = {
    "sync_log_next_page", CRM_SYNC_LOG_PAGE(" AND id < $4::bigint"), 4
};


crm_status_e
crm_store_sync_log(crm_db_t *db, const crm_sync_log_entry_t *e,
    crm_error_t *err)
{
    char           status[16], duration[24], attempt[16];
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[10];

    snprintf(status, sizeof(status), "%u", e->http_status);
    snprintf(duration, sizeof(duration), "%lld",
             (long long) (e->duration_ms > 0 ? e->duration_ms : 0));
    snprintf(attempt, sizeof(attempt), "%u", e->attempt ? e->attempt : 1);

    params[0] = e->account_id;
    params[1] = e->crm_type;
    params[2] = e->operation;
    params[3] = e->entity;
    params[4] = e->entity_id;
    params[5] = e->outcome;
    params[6] = e->http_status ? status : NULL;
    params[7] = duration;
    params[8] = attempt;
    params[9] = e->error;

    rc = crm_db_exec(db, &crm_sync_log_insert, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_integration_connect(crm_db_t *db, const crm_integration_new_t *in,
    crm_rows_t *out, int *replaced, crm_error_t *err)
{
    crm_status_e   rc;
    const char    *params[6];

    params[0] = in->account_id;
    params[1] = in->crm_type;
    params[2] = in->key_id;
    params[3] = in->sealed_hex;
    params[4] = in->settings;
    params[5] = in->account;

    rc = crm_db_query(db, &crm_integration_connect, params, out, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *replaced = out->n == 1 && crm_rows_value(out, 0, 3)[0] == 't';

    return CRM_OK;
}


crm_status_e
crm_store_integrations_list(crm_db_t *db, const char *account_id,
    const char *crm_type, crm_rows_t *out, crm_error_t *err)
{
    const char  *params[2];

    params[0] = account_id;
    params[1] = crm_type;

    return crm_db_query(db, &crm_integrations_list, params, out, err);
}


crm_status_e
crm_store_integration_disconnect(crm_db_t *db, const char *account_id,
    const char *crm_type, int *found, crm_error_t *err)
{
    PGresult      *res;
    crm_rows_t     rows;
    crm_status_e   rc;
    const char    *params[2];

    params[0] = account_id;
    params[1] = crm_type;

    rc = crm_db_query(db, &crm_integration_disconnect, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *found = rows.n == 1;
    crm_rows_free(&rows);

    if (!*found) {
        return CRM_OK;
    }

    rc = crm_db_exec(db, &crm_sync_jobs_cancel, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_integration_known(crm_db_t *db, const char *account_id,
    const char *crm_type, int *known, crm_error_t *err)
{
    crm_rows_t     rows;
    crm_status_e   rc;
    const char    *params[2];

    params[0] = account_id;
    params[1] = crm_type;

    rc = crm_db_query(db, &crm_integration_known, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *known = rows.n == 1;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_sync_log_page(crm_db_t *db, const char *account_id,
    const char *crm_type, const crm_page_t *page, crm_rows_t *out,
    crm_error_t *err)
{
    char         limit[16];
    const char  *params[4];

    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = account_id;
    params[1] = crm_type;
    params[2] = limit;
    params[3] = page->cursor.id;

    return crm_db_query(db, page->has_cursor ? &crm_sync_log_next_page
                                             : &crm_sync_log_first_page,
                        params, out, err);
}
