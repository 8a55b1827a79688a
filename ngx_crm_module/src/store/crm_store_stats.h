/*
 * The performance counters (schema/009-webhooks-performance.sql): every
 * event appends a delta in its own transaction; crm_store_stats_compact()
 * folds them into the rollups; the reads add both, in one statement, so
 * they are exact at their snapshot whether or not the deltas were folded.
 * Days are UTC dates, "YYYY-MM-DD".
 */

#ifndef CRM_STORE_STATS_H
#define CRM_STORE_STATS_H

#include <stdint.h>

#include "crm_db.h"


/* an account's counts over a range of days */
typedef struct {
    int64_t   leads_created;
    int64_t   won;
    int64_t   lost;
    int64_t   churned;
    int64_t   clicks;
    int64_t   installs;
    int64_t   conversions;
    int64_t   commission_cents;
} crm_stats_days_t;


/* an account's live leads of one stage now */
typedef struct {
    const char  *stage;
    int64_t      leads;
    int64_t      score_sum;
    int64_t      open_value_cents;      /* in the currency asked for */
} crm_stats_stage_t;


typedef struct {
    int                 found;          /* the account exists */
    int                 active;         /* ... and is active */
    crm_stats_days_t    days;
    crm_stats_stage_t  *stages;         /* malloc'd, nstages of them */
    size_t              nstages;
    crm_rows_t          rows;           /* what the stages point into */
} crm_stats_summary_t;


/* a leaderboard's metrics: the account_daily columns, and one "now" */
typedef enum {
    CRM_STATS_COMMISSION = 0,
    CRM_STATS_INSTALLS,
    CRM_STATS_CONVERSIONS,
    CRM_STATS_CLICKS,
    CRM_STATS_WON,
    CRM_STATS_PIPELINE_VALUE,
    CRM_STATS_NMETRICS
} crm_stats_metric_e;

extern const char *const  crm_stats_metric_names[CRM_STATS_NMETRICS];


/*
 * Folds up to max_rows of the oldest deltas into the rollups; *folded is
 * how many (0 also when another session is folding)
 */
crm_status_e crm_store_stats_compact(crm_db_t *db, int max_rows,
    int64_t *folded, crm_error_t *err);

/*
 * account_id's counts from day from to day to (both included) and its
 * live leads by stage now, with the value of open ones in currency.
 * Release with crm_stats_summary_free().
 */
crm_status_e crm_store_stats_summary(crm_db_t *db, const char *account_id,
    const char *from, const char *to, const char *currency,
    crm_stats_summary_t *out, crm_error_t *err);

void crm_stats_summary_free(crm_stats_summary_t *s);

/*
 * Up to limit accounts whose metric is above 0 over the days (for
 * pipeline_value: now, in currency), highest first, ties by id: columns
 * id, email, full_name, value
 */
crm_status_e crm_store_stats_leaderboard(crm_db_t *db,
    crm_stats_metric_e metric, const char *from, const char *to,
    const char *currency, unsigned limit, crm_rows_t *out, crm_error_t *err);

/*
 * A link's days from day from to day to, each day of the range one row
 * (day, clicks, installs, conversions, commission_cents), zeros included;
 * no rows when the link is not owner_id's
 */
crm_status_e crm_store_stats_link_days(crm_db_t *db, const char *link_id,
    const char *owner_id, const char *from, const char *to, crm_rows_t *out,
    crm_error_t *err);

#endif /* CRM_STORE_STATS_H */
