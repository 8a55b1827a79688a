/*
 * The affiliate edge's database work; see crm_store_edge.h.
 *
 * A batch of clicks is copied into a temporary table, then moved into
 * crm.clicks with ON CONFLICT DO NOTHING: the rows actually inserted are
 * what the link counters add, so a replayed batch changes nothing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_ids.h"
#include "crm_store_edge.h"


/* distinct months in one batch; a spool file years old still fits */
#define CRM_EDGE_MONTHS_MAX  256

/* where the "YYYY-MM" of clicked_at starts in a line */
#define CRM_EDGE_MONTH_AT    (CRM_CLICK_ID_LEN + 1 + CRM_LINK_ID_LEN + 1)


static size_t crm_edge_months(const crm_str_t *chunks, size_t n,
    char (*months)[8], size_t max);


static const crm_stmt_t  crm_edge_link_stmt = {
    .name = "edge_link",
    .sql = "SELECT status = 'active', target_url"
           " FROM crm.affiliate_links WHERE id = $1",
    .nparams = 1
};

static const crm_stmt_t  crm_edge_partition_stmt = {
    .name = "edge_partition",
    .sql = "SELECT crm.click_partition_ensure(($1 || '-01 00:00+00')"
           "::timestamptz)",
    .nparams = 1
};

static const crm_stmt_t  crm_edge_move_stmt = {
    .name = "edge_move",
    .sql = "WITH ins AS ("
           "  INSERT INTO crm.clicks"
           "  SELECT * FROM pg_temp.crm_click_batch"
           "  ON CONFLICT DO NOTHING"
           "  RETURNING link_id, clicked_at),"
           " per_link AS ("
           "  SELECT link_id, count(*) AS n, max(clicked_at) AS last"
           "  FROM ins GROUP BY link_id),"
           " counted AS ("
           "  UPDATE crm.affiliate_link_stats s"
           "  SET clicks = s.clicks + p.n,"
           "      last_click_at = greatest(s.last_click_at, p.last)"
           "  FROM per_link p WHERE s.link_id = p.link_id"
           "  RETURNING 1)"
           " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM counted)",
    .nparams = 0
};


crm_status_e
crm_store_edge_link(crm_db_t *db, const char *id, crm_edge_link_t *link,
    crm_error_t *err)
{
    const char    *params[1], *v;
    crm_rows_t     rows;
    crm_status_e   rc;

    memset(link, 0, sizeof(crm_edge_link_t));
    params[0] = id;

    rc = crm_db_query(db, &crm_edge_link_stmt, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 1) {
        link->found = 1;

        v = crm_rows_value(&rows, 0, 0);
        link->active = v != NULL && v[0] == 't';

        v = crm_rows_value(&rows, 0, 1);
        link->target_len = v ? strlen(v) : 0;

        if (link->target_len > CRM_URL_MAX) {
            link->target_len = CRM_URL_MAX;
        }

        memcpy(link->target, v ? v : "", link->target_len);
        link->target[link->target_len] = '\0';
    }

    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_edge_clicks(crm_db_t *db, const crm_str_t *chunks, size_t n,
    uint64_t *inserted, crm_error_t *err)
{
    char           months[CRM_EDGE_MONTHS_MAX][8];
    size_t         i, nmonths;
    PGresult      *res;
    const char    *params[1], *v;
    crm_status_e   rc;

    *inserted = 0;

    /*
     * the partitions first, outside the batch's transaction: creating one
     * locks crm.clicks, briefly, once a month
     */
    nmonths = crm_edge_months(chunks, n, months, CRM_EDGE_MONTHS_MAX);

    for (i = 0; i < nmonths; i++) {
        params[0] = months[i];

        rc = crm_db_exec(db, &crm_edge_partition_stmt, params, &res, err);
        if (rc != CRM_OK) {
            return rc;
        }

        PQclear(res);
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_command(db, "CREATE TEMP TABLE IF NOT EXISTS crm_click_batch"
                            " (LIKE crm.clicks) ON COMMIT DELETE ROWS", err);
    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_db_copy_in(db, "COPY pg_temp.crm_click_batch FROM STDIN",
                        chunks, n, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_db_exec(db, &crm_edge_move_stmt, NULL, &res, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "0";
    *inserted = strtoull(v, NULL, 10);

    PQclear(res);

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        *inserted = 0;
    }

    return rc;

failed:

    crm_db_rollback(db);

    return rc;
}


/*
 * The distinct "YYYY-MM" of the lines' times.  Lines are in time order,
 * nearly, so comparing with the last few seen finds almost every repeat
 * at once; the list is short anyway.
 */
static size_t
crm_edge_months(const crm_str_t *chunks, size_t n, char (*months)[8],
    size_t max)
{
    size_t       i, k, nmonths;
    const char  *p, *end, *nl;

    nmonths = 0;

    for (i = 0; i < n; i++) {
        p = chunks[i].data;
        end = p + chunks[i].len;

        while (p < end) {
            nl = memchr(p, '\n', (size_t) (end - p));
            if (nl == NULL) {
                break;
            }

            if (nl - p > CRM_EDGE_MONTH_AT + 7) {
                for (k = nmonths; k > 0; k--) {
                    if (memcmp(months[k - 1], p + CRM_EDGE_MONTH_AT, 7) == 0)
                    {
                        break;
                    }
                }

                if (k == 0 && nmonths < max) {
                    memcpy(months[nmonths], p + CRM_EDGE_MONTH_AT, 7);
                    months[nmonths][7] = '\0';
                    nmonths++;
                }
            }

            p = nl + 1;
        }
    }

    return nmonths;
}
