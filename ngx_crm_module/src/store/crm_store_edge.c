/*
 * The affiliate edge's database work; see crm_store_edge.h.
 *
 * A batch of clicks is copied straight into crm.clicks, and the link
 * counters get the batch's per-link counts, computed here from the lines.
 * A batch holding a click already stored (sent again after its sender
 * died between commit and acknowledgement) fails that COPY on the primary
 * key; it is then copied into a temporary table and moved with ON
 * CONFLICT DO NOTHING, and the counters add only the rows inserted, so a
 * replay changes nothing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_ids.h"
#include "crm_store_edge.h"


/* distinct months in one batch; a spool file years old still fits */
#define CRM_EDGE_MONTHS_MAX  256

/* where the link id and clicked_at start in a line */
#define CRM_EDGE_LINK_AT     (CRM_CLICK_ID_LEN + 1)
#define CRM_EDGE_TIME_AT     (CRM_CLICK_ID_LEN + 1 + CRM_LINK_ID_LEN + 1)
#define CRM_EDGE_TIME_LEN    29         /* "2026-11-21 07:08:44.824000+00" */

/*
 * a click line's columns, in order (crm_click.h): named, so that a column
 * an operator adds to crm.clicks (with a default) changes nothing here
 */
#define CRM_EDGE_COLUMNS                                                      \
    "(click_id, link_id, clicked_at, shop_domain, ip, user_agent, referer,"   \
    " is_bot, is_head)"

/* distinct links a batch counts itself; beyond, PostgreSQL counts */
#define CRM_EDGE_LINKS_MAX   1024
#define CRM_EDGE_SLOTS       2048


typedef struct {
    char       link[CRM_LINK_ID_LEN];
    char       last[CRM_EDGE_TIME_LEN];
    uint64_t   n;
} crm_edge_count_t;


static size_t crm_edge_months(const crm_str_t *chunks, size_t n,
    char (*months)[8], size_t max);
static crm_status_e crm_edge_copy(crm_db_t *db, const crm_str_t *chunks,
    size_t n, const crm_edge_intact_t *intact, const char *const *counts,
    uint64_t total, uint64_t *inserted, crm_error_t *err);
static crm_status_e crm_edge_stage(crm_db_t *db, const crm_str_t *chunks,
    size_t n, const crm_edge_intact_t *intact, uint64_t *inserted,
    crm_error_t *err);
static crm_status_e crm_edge_commit(crm_db_t *db,
    const crm_edge_intact_t *intact, crm_error_t *err);
static int crm_edge_count(const crm_str_t *chunks, size_t n,
    crm_edge_count_t *slots, uint64_t *total);
static char *crm_edge_arrays(const crm_edge_count_t *slots, char **counts,
    char **lasts);


static const crm_stmt_t  crm_edge_link_stmt = {
    .name = "edge_link",
    .sql = "SELECT l.status = 'active' AND NOT l.admin_disabled"
           " AND a.is_active, l.target_url FROM crm.affiliate_links l"
           " JOIN crm.accounts a ON a.id = l.owner_id WHERE l.id = $1",
    .nparams = 1
};

static const crm_stmt_t  crm_edge_partition_stmt = {
    .name = "edge_partition",
    .sql = "SELECT crm.click_partition_ensure(($1 || '-01 00:00+00')"
           "::timestamptz)",
    .nparams = 1
};

/*
 * Two flushes lock the counters of their links in one order, or a batch
 * for links A and B and one for B and A could deadlock.
 */
static const crm_stmt_t  crm_edge_lock_stmt = {
    .name = "edge_lock",
    .sql = "SELECT 1 FROM crm.affiliate_link_stats"
           " WHERE link_id = ANY ($1::text[]) ORDER BY link_id FOR UPDATE",
    .nparams = 1
};

static const crm_stmt_t  crm_edge_lock_staged_stmt = {
    .name = "edge_lock_staged",
    .sql = "SELECT 1 FROM crm.affiliate_link_stats WHERE link_id IN"
           " (SELECT link_id FROM pg_temp.crm_click_batch)"
           " ORDER BY link_id FOR UPDATE",
    .nparams = 0
};

static const crm_stmt_t  crm_edge_count_stmt = {
    .name = "edge_count",
    .sql = "UPDATE crm.affiliate_link_stats s"
           " SET clicks = s.clicks + v.n,"
           "     last_click_at = greatest(s.last_click_at, v.last)"
           " FROM unnest($1::text[], $2::bigint[], $3::timestamptz[])"
           "      AS v (link_id, n, last)"
           " WHERE s.link_id = v.link_id",
    .nparams = 3
};

static const crm_stmt_t  crm_edge_move_stmt = {
    .name = "edge_move",
    .sql = "WITH ins AS ("
           "  INSERT INTO crm.clicks " CRM_EDGE_COLUMNS
           "  SELECT click_id, link_id, clicked_at, shop_domain, ip,"
           "  user_agent, referer, is_bot, is_head"
           "  FROM pg_temp.crm_click_batch"
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
    const crm_edge_intact_t *intact, uint64_t *inserted, crm_error_t *err)
{
    char              *counts[3], months[CRM_EDGE_MONTHS_MAX][8];
    size_t             i, nmonths;
    uint64_t           total;
    PGresult          *res;
    const char        *params[1];
    crm_status_e       rc;
    crm_edge_count_t  *slots;

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

    /*
     * the counts for the fast path; a batch for very many links (or no
     * memory for them) takes the staging path, where PostgreSQL counts
     */
    counts[0] = NULL;
    counts[1] = NULL;
    counts[2] = NULL;

    slots = calloc(CRM_EDGE_SLOTS, sizeof(crm_edge_count_t));

    if (slots != NULL && crm_edge_count(chunks, n, slots, &total) == 0) {
        counts[0] = crm_edge_arrays(slots, &counts[1], &counts[2]);
    }

    free(slots);

    rc = CRM_E_CONFLICT;

    if (counts[0] != NULL) {
        rc = crm_edge_copy(db, chunks, n, intact,
                           (const char *const *) counts, total, inserted,
                           err);
        free(counts[0]);
        free(counts[1]);
        free(counts[2]);
    }

    if (rc == CRM_E_CONFLICT) {
        rc = crm_edge_stage(db, chunks, n, intact, inserted, err);
    }

    return rc;
}


/*
 * The chunks were read from memory another process may free once it
 * holds the batch: everything read before this check was still the
 * batch's if it still is now.
 */
static crm_status_e
crm_edge_commit(crm_db_t *db, const crm_edge_intact_t *intact,
    crm_error_t *err)
{
    if (intact != NULL) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);

        if (!intact->check(intact->data)) {
            crm_error_set(err, CRM_E_GONE, NULL, "batch taken over");
            return crm_error_cause(err, "another worker holds the batch "
                                   "now; nothing was written");
        }
    }

    return crm_db_commit(db, err);
}


/*
 * The fast path, with the batch's per-link counts as array literals:
 * CRM_E_CONFLICT when a click is already stored
 */
static crm_status_e
crm_edge_copy(crm_db_t *db, const crm_str_t *chunks, size_t n,
    const crm_edge_intact_t *intact, const char *const *counts,
    uint64_t total, uint64_t *inserted, crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_copy_in(db, "COPY crm.clicks " CRM_EDGE_COLUMNS " FROM STDIN",
                        chunks, n, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_db_exec(db, &crm_edge_lock_stmt, counts, &res, err);
    if (rc != CRM_OK) {
        goto done;
    }

    PQclear(res);

    rc = crm_db_exec(db, &crm_edge_count_stmt, counts, &res, err);
    if (rc != CRM_OK) {
        goto done;
    }

    PQclear(res);

    rc = crm_edge_commit(db, intact, err);
    if (rc == CRM_OK) {
        *inserted = total;
    }

done:

    /* nothing to undo once committed */
    crm_db_rollback(db);

    return rc;
}


/* the replay path: only the clicks not stored yet go in, and count */
static crm_status_e
crm_edge_stage(crm_db_t *db, const crm_str_t *chunks, size_t n,
    const crm_edge_intact_t *intact, uint64_t *inserted, crm_error_t *err)
{
    PGresult      *res;
    const char    *v;
    crm_status_e   rc;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_command(db, "CREATE TEMP TABLE IF NOT EXISTS crm_click_batch"
                            " (LIKE crm.clicks) ON COMMIT DELETE ROWS", err);
    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_db_copy_in(db, "COPY pg_temp.crm_click_batch " CRM_EDGE_COLUMNS
                        " FROM STDIN", chunks, n, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    rc = crm_db_exec(db, &crm_edge_lock_staged_stmt, NULL, &res, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    PQclear(res);

    rc = crm_db_exec(db, &crm_edge_move_stmt, NULL, &res, err);
    if (rc != CRM_OK) {
        goto failed;
    }

    v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "0";
    *inserted = strtoull(v, NULL, 10);

    PQclear(res);

    rc = crm_edge_commit(db, intact, err);
    if (rc != CRM_OK) {
        *inserted = 0;
        goto failed;
    }

    return rc;

failed:

    crm_db_rollback(db);

    return rc;
}


/*
 * Counts the lines per link, with the latest time of each, into an open
 * addressing table; -1 when there are more than CRM_EDGE_LINKS_MAX links.
 * Times are fixed-width text, so the latest is the greatest string.
 */
static int
crm_edge_count(const crm_str_t *chunks, size_t n, crm_edge_count_t *slots,
    uint64_t *total)
{
    size_t             i, k, used;
    uint32_t           h;
    const char        *p, *end, *nl;
    crm_edge_count_t  *c;

    *total = 0;
    used = 0;

    for (i = 0; i < n; i++) {
        p = chunks[i].data;
        end = p + chunks[i].len;

        while (p < end) {
            nl = memchr(p, '\n', (size_t) (end - p));
            if (nl == NULL) {
                break;
            }

            if (nl - p < CRM_EDGE_TIME_AT + CRM_EDGE_TIME_LEN) {
                return -1;
            }

            h = 2166136261u;

            for (k = 0; k < CRM_LINK_ID_LEN; k++) {
                h = (h ^ (unsigned char) p[CRM_EDGE_LINK_AT + k]) * 16777619u;
            }

            for (k = h % CRM_EDGE_SLOTS; /* void */ ;
                 k = (k + 1) % CRM_EDGE_SLOTS)
            {
                c = &slots[k];

                if (c->n == 0) {
                    if (++used > CRM_EDGE_LINKS_MAX) {
                        return -1;
                    }

                    memcpy(c->link, p + CRM_EDGE_LINK_AT, CRM_LINK_ID_LEN);
                    memcpy(c->last, p + CRM_EDGE_TIME_AT, CRM_EDGE_TIME_LEN);
                    break;
                }

                if (memcmp(c->link, p + CRM_EDGE_LINK_AT, CRM_LINK_ID_LEN)
                    == 0)
                {
                    if (memcmp(p + CRM_EDGE_TIME_AT, c->last,
                               CRM_EDGE_TIME_LEN) > 0)
                    {
                        memcpy(c->last, p + CRM_EDGE_TIME_AT,
                               CRM_EDGE_TIME_LEN);
                    }

                    break;
                }
            }

            c->n++;
            (*total)++;
            p = nl + 1;
        }
    }

    return 0;
}


/*
 * The counts as three PostgreSQL array literals: the links (returned),
 * their counts and their latest times; NULL when out of memory.
 */
static char *
crm_edge_arrays(const crm_edge_count_t *slots, char **counts, char **lasts)
{
    char    *links, *pl, *pc, *pt;
    size_t   k, nlinks;

    nlinks = 0;

    for (k = 0; k < CRM_EDGE_SLOTS; k++) {
        nlinks += slots[k].n != 0;
    }

    links = malloc(nlinks * (CRM_LINK_ID_LEN + 1) + 3);
    *counts = malloc(nlinks * 21 + 3);
    *lasts = malloc(nlinks * (CRM_EDGE_TIME_LEN + 3) + 3);

    if (links == NULL || *counts == NULL || *lasts == NULL) {
        free(links);
        free(*counts);
        free(*lasts);
        *counts = NULL;
        *lasts = NULL;
        return NULL;
    }

    pl = links;
    pc = *counts;
    pt = *lasts;

    *pl++ = '{';
    *pc++ = '{';
    *pt++ = '{';

    for (k = 0; k < CRM_EDGE_SLOTS; k++) {
        if (slots[k].n == 0) {
            continue;
        }

        if (pl[-1] != '{') {
            *pl++ = ',';
            *pc++ = ',';
            *pt++ = ',';
        }

        memcpy(pl, slots[k].link, CRM_LINK_ID_LEN);
        pl += CRM_LINK_ID_LEN;

        pc += sprintf(pc, "%llu", (unsigned long long) slots[k].n);

        *pt++ = '"';
        memcpy(pt, slots[k].last, CRM_EDGE_TIME_LEN);
        pt += CRM_EDGE_TIME_LEN;
        *pt++ = '"';
    }

    memcpy(pl, "}", 2);
    memcpy(pc, "}", 2);
    memcpy(pt, "}", 2);

    return links;
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

            if (nl - p > CRM_EDGE_TIME_AT + 7) {
                for (k = nmonths; k > 0; k--) {
                    if (memcmp(months[k - 1], p + CRM_EDGE_TIME_AT, 7) == 0)
                    {
                        break;
                    }
                }

                if (k == 0 && nmonths < max) {
                    memcpy(months[nmonths], p + CRM_EDGE_TIME_AT, 7);
                    months[nmonths][7] = '\0';
                    nmonths++;
                }
            }

            p = nl + 1;
        }
    }

    return nmonths;
}
