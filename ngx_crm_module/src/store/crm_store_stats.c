/*
 * The performance counters; see crm_store_stats.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_stats.h"


#define CRM_STATS_DAY_COLS                                                    \
    "leads_created, won, lost, churned, clicks, installs, conversions,"      \
    " commission_cents"

#define CRM_STATS_STAGE_COLS                                                  \
    "stage, currency, leads, score_sum, open_value_cents"

/* a metric of a range: the rollups' days and the deltas not yet folded */
#define CRM_STATS_BOARD_SQL(col)                                              \
    "SELECT a.id, a.email, a.full_name, v.value FROM"                         \
    " (SELECT account_id, sum(x) AS value FROM"                               \
    "  (SELECT account_id, " col " AS x FROM crm.account_daily"               \
    "   WHERE day BETWEEN $1::date AND $2::date"                              \
    "   UNION ALL SELECT account_id, " col " FROM crm.stat_deltas"            \
    "   WHERE day BETWEEN $1::date AND $2::date) u"                           \
    "  GROUP BY account_id HAVING sum(x) > 0) v"                              \
    " JOIN crm.accounts a ON a.id = v.account_id"                             \
    " ORDER BY v.value DESC, a.id LIMIT $3"

#define CRM_STATS_BOARD(metric, col)                                          \
    { "stats_board_" metric, CRM_STATS_BOARD_SQL(col), 3 }


const char *const  crm_stats_metric_names[CRM_STATS_NMETRICS] = {
    [CRM_STATS_COMMISSION]     = "commission",
    [CRM_STATS_INSTALLS]       = "installs",
    [CRM_STATS_CONVERSIONS]    = "conversions",
    [CRM_STATS_CLICKS]         = "clicks",
    [CRM_STATS_WON]            = "won",
    [CRM_STATS_PIPELINE_VALUE] = "pipeline_value"
};


static const crm_stmt_t  crm_stats_compact_stmt = {
    "stats_compact",
    "SELECT crm.stats_compact($1::int)",
    1
};

/*
 * Three kinds of rows: "a" the account (absent: no such account), "d"
 * the days' sums, "s" a stage's leads now
 */
static const crm_stmt_t  crm_stats_summary_stmt = {
    "stats_summary",
    "SELECT 'a', email, is_active::int, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL FROM crm.accounts WHERE id = $1"
    " UNION ALL"
    " SELECT 'd', NULL, sum(leads_created), sum(won), sum(lost),"
    " sum(churned), sum(clicks), sum(installs), sum(conversions),"
    " sum(commission_cents) FROM"
    " (SELECT " CRM_STATS_DAY_COLS " FROM crm.account_daily"
    "  WHERE account_id = $1 AND day BETWEEN $2::date AND $3::date"
    "  UNION ALL SELECT " CRM_STATS_DAY_COLS " FROM crm.stat_deltas"
    "  WHERE account_id = $1 AND day BETWEEN $2::date AND $3::date) d"
    " UNION ALL"
    " SELECT 's', stage, sum(leads), sum(score_sum),"
    " coalesce(sum(open_value_cents) FILTER (WHERE currency = $4), 0),"
    " NULL, NULL, NULL, NULL, NULL FROM"
    " (SELECT " CRM_STATS_STAGE_COLS " FROM crm.account_leads"
    "  WHERE account_id = $1"
    "  UNION ALL SELECT " CRM_STATS_STAGE_COLS " FROM crm.stat_deltas"
    "  WHERE account_id = $1 AND stage IS NOT NULL) s"
    " GROUP BY stage",
    4
};

static const crm_stmt_t  crm_stats_board_stmts[CRM_STATS_NMETRICS] = {
    [CRM_STATS_COMMISSION] = CRM_STATS_BOARD("commission",
                                             "commission_cents"),
    [CRM_STATS_INSTALLS] = CRM_STATS_BOARD("installs", "installs"),
    [CRM_STATS_CONVERSIONS] = CRM_STATS_BOARD("conversions", "conversions"),
    [CRM_STATS_CLICKS] = CRM_STATS_BOARD("clicks", "clicks"),
    [CRM_STATS_WON] = CRM_STATS_BOARD("won", "won"),
    [CRM_STATS_PIPELINE_VALUE] = {
        "stats_board_pipeline_value",
        "SELECT a.id, a.email, a.full_name, v.value FROM"
        " (SELECT account_id, sum(open_value_cents) AS value FROM"
        "  (SELECT account_id, open_value_cents FROM crm.account_leads"
        "   WHERE currency = $1"
        "   UNION ALL SELECT account_id, open_value_cents"
        "   FROM crm.stat_deltas WHERE stage IS NOT NULL AND currency = $1) u"
        "  GROUP BY account_id HAVING sum(open_value_cents) > 0) v"
        " JOIN crm.accounts a ON a.id = v.account_id"
        " ORDER BY v.value DESC, a.id LIMIT $2",
        2
    }
};


static const crm_stmt_t  crm_stats_link_days_stmt = {
    "stats_link_days",
    "SELECT to_char(d, 'YYYY-MM-DD'), coalesce(sum(x.clicks), 0),"
    " coalesce(sum(x.installs), 0), coalesce(sum(x.conversions), 0),"
    " coalesce(sum(x.commission_cents), 0)"
    " FROM generate_series($3::date, $4::date, interval '1 day') d"
    " LEFT JOIN"
    " (SELECT day, clicks, installs, conversions, commission_cents"
    "  FROM crm.link_daily"
    "  WHERE link_id = $1 AND day BETWEEN $3::date AND $4::date"
    "  UNION ALL SELECT day, clicks, installs, conversions, commission_cents"
    "  FROM crm.stat_deltas"
    "  WHERE link_id = $1 AND day BETWEEN $3::date AND $4::date) x"
    " ON x.day = d::date"
    " WHERE EXISTS (SELECT 1 FROM crm.affiliate_links"
    "               WHERE id = $1 AND owner_id = $2)"
    " GROUP BY d ORDER BY d",
    4
};


static int64_t crm_stats_int(const crm_rows_t *rows, size_t i, int col);


crm_status_e
crm_store_stats_compact(crm_db_t *db, int max_rows, int64_t *folded,
    crm_error_t *err)
{
    char           n[16];
    const char    *params[1];
    crm_rows_t     rows;
    crm_status_e   rc;

    snprintf(n, sizeof(n), "%d", max_rows);
    params[0] = n;

    rc = crm_db_query(db, &crm_stats_compact_stmt, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *folded = rows.n > 0 ? crm_stats_int(&rows, 0, 0) : 0;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_stats_summary(crm_db_t *db, const char *account_id,
    const char *from, const char *to, const char *currency,
    crm_stats_summary_t *out, crm_error_t *err)
{
    size_t              i;
    const char         *params[4], *kind;
    crm_status_e        rc;
    crm_stats_days_t   *d;
    crm_stats_stage_t  *s;

    memset(out, 0, sizeof(crm_stats_summary_t));

    params[0] = account_id;
    params[1] = from;
    params[2] = to;
    params[3] = currency;

    rc = crm_db_query(db, &crm_stats_summary_stmt, params, &out->rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    out->stages = calloc(out->rows.n + 1, sizeof(crm_stats_stage_t));
    if (out->stages == NULL) {
        crm_rows_free(&out->rows);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    d = &out->days;

    for (i = 0; i < out->rows.n; i++) {
        kind = crm_rows_value(&out->rows, i, 0);

        switch (kind[0]) {

        case 'a':
            out->found = 1;
            out->active = crm_stats_int(&out->rows, i, 2) != 0;
            break;

        case 'd':
            d->leads_created = crm_stats_int(&out->rows, i, 2);
            d->won = crm_stats_int(&out->rows, i, 3);
            d->lost = crm_stats_int(&out->rows, i, 4);
            d->churned = crm_stats_int(&out->rows, i, 5);
            d->clicks = crm_stats_int(&out->rows, i, 6);
            d->installs = crm_stats_int(&out->rows, i, 7);
            d->conversions = crm_stats_int(&out->rows, i, 8);
            d->commission_cents = crm_stats_int(&out->rows, i, 9);
            break;

        default:
            s = &out->stages[out->nstages++];
            s->stage = crm_rows_value(&out->rows, i, 1);
            s->leads = crm_stats_int(&out->rows, i, 2);
            s->score_sum = crm_stats_int(&out->rows, i, 3);
            s->open_value_cents = crm_stats_int(&out->rows, i, 4);
            break;
        }
    }

    return CRM_OK;
}


void
crm_stats_summary_free(crm_stats_summary_t *s)
{
    free(s->stages);
    s->stages = NULL;
    crm_rows_free(&s->rows);
}


crm_status_e
crm_store_stats_leaderboard(crm_db_t *db, crm_stats_metric_e metric,
    const char *from, const char *to, const char *currency, unsigned limit,
    crm_rows_t *out, crm_error_t *err)
{
    char         n[16];
    const char  *params[3];

    snprintf(n, sizeof(n), "%u", limit);

    /* the value of open leads is now's: the range does not apply */
    if (metric == CRM_STATS_PIPELINE_VALUE) {
        params[0] = currency;
        params[1] = n;

    } else {
        params[0] = from;
        params[1] = to;
        params[2] = n;
    }

    return crm_db_query(db, &crm_stats_board_stmts[metric], params, out, err);
}


crm_status_e
crm_store_stats_link_days(crm_db_t *db, const char *link_id,
    const char *owner_id, const char *from, const char *to, crm_rows_t *out,
    crm_error_t *err)
{
    const char  *params[4];

    params[0] = link_id;
    params[1] = owner_id;
    params[2] = from;
    params[3] = to;

    return crm_db_query(db, &crm_stats_link_days_stmt, params, out, err);
}


/* a count or a sum; NULL (no rows summed) is 0 */
static int64_t
crm_stats_int(const crm_rows_t *rows, size_t i, int col)
{
    const char  *v;

    v = crm_rows_value(rows, i, col);

    return v != NULL ? strtoll(v, NULL, 10) : 0;
}
