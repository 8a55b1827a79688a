/*
 * The CRM sync queue; see crm_store_sync.h.
 */

#include <stdio.h>
#include <stdlib.h>

#include "crm_store_sync.h"


/*
 * One statement: the rows claimed (a lease token of their own), then
 * each one's waiting jobs in order.  Integration by integration (an
 * index probe each, whatever the queue's length): not in error, not
 * paused by a provider's Retry-After, with room under its cap of leases
 * ($3), its first due rows that no lease holds; then the oldest of those
 * over all integrations, locked, skipping rows another worker is
 * claiming.
 */
static const crm_stmt_t  crm_sync_claim = {
    "sync_claim",
    "WITH i AS ("
    "   SELECT i.account_id, i.crm_type,"
    "          $3::int - (SELECT count(*) FROM crm.sync_queue o"
    "                      WHERE o.account_id = i.account_id"
    "                        AND o.crm_type = i.crm_type"
    "                        AND o.lease_until IS NOT NULL"
    "                        AND o.lease_until >= now()) AS room"
    "     FROM crm.integrations i"
    "    WHERE i.status = 'connected'"
    "      AND (i.paused_until IS NULL OR i.paused_until <= now())),"
    " r AS ("
    "   SELECT w.account_id, w.crm_type, w.lead_id, w.due_at,"
    "          row_number() OVER (PARTITION BY w.account_id, w.crm_type"
    "                             ORDER BY w.due_at) AS n, i.room"
    "     FROM i CROSS JOIN LATERAL ("
    "       SELECT q.account_id, q.crm_type, q.lead_id, q.due_at"
    "         FROM crm.sync_queue q"
    "        WHERE q.account_id = i.account_id AND q.crm_type = i.crm_type"
    "          AND q.due_at <= now()"
    "          AND (q.lease_until IS NULL OR q.lease_until < now())"
    "        ORDER BY q.due_at LIMIT $3::int) w"
    "    WHERE i.room > 0),"
    " c AS ("
    "   SELECT q.account_id, q.crm_type, q.lead_id"
    "     FROM crm.sync_queue q"
    "     JOIN r ON r.account_id = q.account_id AND r.crm_type = q.crm_type"
    "           AND r.lead_id = q.lead_id"
    "    WHERE r.n <= r.room"
    "      AND (q.lease_until IS NULL OR q.lease_until < now())"
    "    ORDER BY r.due_at"
    "    LIMIT $1::int"
    "    FOR UPDATE OF q SKIP LOCKED),"
    " l AS ("
    "   UPDATE crm.sync_queue q"
    "      SET lease_until = now() + $4::bigint * interval '1 ms',"
    "          lease_token = gen_random_uuid()"
    "     FROM c"
    "    WHERE q.account_id = c.account_id AND q.crm_type = c.crm_type"
    "      AND q.lead_id = c.lead_id"
    "   RETURNING q.account_id, q.crm_type, q.lead_id, q.lease_token, q.seq)"
    " SELECT l.account_id, l.crm_type, l.lead_id, l.lease_token, l.seq,"
    "        j.id, j.event_id, j.event, j.contact, j.value_cents, j.currency,"
    "        to_char(j.event_at AT TIME ZONE 'UTC',"
    "                'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "        j.attempts, i.key_id, encode(i.sealed, 'hex'), i.settings"
    "   FROM l"
    "   JOIN crm.integrations i"
    "     ON i.account_id = l.account_id AND i.crm_type = l.crm_type"
    "   CROSS JOIN LATERAL ("
    "     SELECT * FROM crm.sync_jobs w"
    "      WHERE w.account_id = l.account_id AND w.crm_type = l.crm_type"
    "        AND w.lead_id = l.lead_id AND w.state IN ('pending', 'failed')"
    "      ORDER BY w.id LIMIT $2::int) j"
    "  ORDER BY l.account_id, l.crm_type, l.lead_id, j.id",
    4
};

static const crm_stmt_t  crm_sync_finish = {
    "sync_finish",
    "SELECT crm.sync_finish($1, $2, $3, $4, $5::bigint, $6::jsonb)",
    6
};

/* dead jobs back to pending, and their leads back in the queue */
static const crm_stmt_t  crm_sync_retry = {
    "sync_retry",
    "WITH r AS ("
    "   UPDATE crm.sync_jobs SET state = 'pending', next_at = NULL,"
    "          finished_at = NULL, attempts = 0"
    "    WHERE account_id = $1 AND crm_type = $2 AND state = 'dead'"
    "   RETURNING lead_id),"
    " q AS ("
    "   INSERT INTO crm.sync_queue AS q (account_id, crm_type, lead_id)"
    "   SELECT DISTINCT $1::uuid, $2, lead_id FROM r"
    "   ON CONFLICT (account_id, crm_type, lead_id) DO UPDATE"
    "      SET seq = q.seq + 1, due_at = least(q.due_at, now()))"
    " SELECT count(*) FROM r",
    2
};

static const crm_stmt_t  crm_sync_depth = {
    "sync_depth",
    "SELECT count(*),"
    " coalesce(extract(epoch FROM now() - min(due_at))::bigint, 0)"
    "   FROM crm.sync_queue WHERE due_at <= now()",
    0
};


crm_status_e
crm_store_sync_claim(crm_db_t *db, unsigned max_leads, unsigned max_jobs,
    unsigned cap, int64_t lease_ms, crm_rows_t *out, crm_error_t *err)
{
    char         leads[16], jobs[16], caps[16], lease[24];
    const char  *params[4];

    snprintf(leads, sizeof(leads), "%u", max_leads);
    snprintf(jobs, sizeof(jobs), "%u", max_jobs);
    snprintf(caps, sizeof(caps), "%u", cap);
    snprintf(lease, sizeof(lease), "%lld", (long long) lease_ms);

    params[0] = leads;
    params[1] = jobs;
    params[2] = caps;
    params[3] = lease;

    return crm_db_query(db, &crm_sync_claim, params, out, err);
}


crm_status_e
crm_store_sync_finish(crm_db_t *db, const char *account_id,
    const char *crm_type, const char *lead_id, const char *token,
    const char *seq, const char *done, crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[6];

    params[0] = account_id;
    params[1] = crm_type;
    params[2] = lead_id;
    params[3] = token;
    params[4] = seq;
    params[5] = done;

    rc = crm_db_exec(db, &crm_sync_finish, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_sync_retry(crm_db_t *db, const char *account_id,
    const char *crm_type, int64_t *requeued, crm_error_t *err)
{
    crm_rows_t     rows;
    crm_status_e   rc;
    const char    *params[2];

    params[0] = account_id;
    params[1] = crm_type;

    rc = crm_db_query(db, &crm_sync_retry, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *requeued = rows.n == 1 ? strtoll(crm_rows_value(&rows, 0, 0), NULL, 10)
                            : 0;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_sync_depth(crm_db_t *db, int64_t *depth, int64_t *oldest_s,
    crm_error_t *err)
{
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_db_query(db, &crm_sync_depth, NULL, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *depth = rows.n == 1 ? strtoll(crm_rows_value(&rows, 0, 0), NULL, 10)
                         : 0;
    *oldest_s = rows.n == 1 ? strtoll(crm_rows_value(&rows, 0, 1), NULL, 10)
                            : 0;
    crm_rows_free(&rows);

    return CRM_OK;
}
