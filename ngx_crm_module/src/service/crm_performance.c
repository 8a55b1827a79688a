/*
 * Performance views; see crm_performance.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_day.h"
#include "crm_form.h"
#include "crm_performance.h"
#include "crm_store_leads.h"
#include "crm_store_stats.h"
#include "crm_validate.h"
#include "crm_verify.h"


#define CRM_PERF_RANGE_DEFAULT  30      /* days: today and the 29 before */
#define CRM_PERF_RANGE_MAX      366
#define CRM_PERF_BOARD_DEFAULT  50
#define CRM_PERF_BOARD_MAX      200
#define CRM_PERF_RECENCY_DAYS   90


typedef struct {
    char                 account_id[CRM_UUID_LEN + 1];
    char                 link_id[CRM_LINK_ID_LEN + 1];
    char                 from[CRM_DAY_LEN + 1];
    char                 to[CRM_DAY_LEN + 1];
    crm_stats_metric_e   metric;
    unsigned             limit;
    unsigned             self:1;    /* the caller's own summary */
} crm_perf_query_t;


static crm_status_e crm_perf_range(crm_call_t *call, crm_perf_query_t *q,
    crm_error_t *err);
static crm_status_e crm_perf_day(crm_call_t *call, const char *name,
    int64_t *day, int *found, crm_error_t *err);
static crm_perf_query_t *crm_perf_query(crm_call_t *call,
    const char *const *names, crm_error_t *err);
static crm_status_e crm_perf_me_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_perf_user_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_perf_summary_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static int crm_perf_render(crm_call_t *call, yajl_gen g,
    const crm_perf_query_t *q, const crm_stats_summary_t *s);
static crm_status_e crm_perf_board_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_perf_board_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_perf_compat_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_perf_compat_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_perf_link_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_perf_link_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static int64_t crm_perf_compat_value(const crm_pipeline_t *p,
    const crm_lead_t *lead, crm_compat_kind_e kind, int64_t now_us);
static int crm_perf_gen_fixed(yajl_gen g, const char *key, int64_t v,
    int scale, int null);
static int64_t crm_perf_ratio(int64_t num, int64_t den, int64_t scale);
static crm_status_e crm_perf_nomem(crm_error_t *err);


const crm_endpoint_t  crm_performance_me = {
    .verifier = &crm_verify_bearer,
    .replica = 1,
    .caller_in_query = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_perf_me_parse,
    .run = crm_perf_summary_run
};

const crm_endpoint_t  crm_performance_user = {
    .verifier = &crm_verify_bearer,
    .replica = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_perf_user_parse,
    .run = crm_perf_summary_run
};

const crm_endpoint_t  crm_performance_leaderboard = {
    .verifier = &crm_verify_bearer,
    .replica = 1,
    .admin = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_perf_board_parse,
    .run = crm_perf_board_run
};

const crm_endpoint_t  crm_performance_compatibility = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_perf_compat_parse,
    .run = crm_perf_compat_run
};


const crm_endpoint_t  crm_performance_link = {
    .verifier = &crm_verify_bearer,
    .replica = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_perf_link_parse,
    .run = crm_perf_link_run
};


static const char *const  crm_perf_range_params[] = {
    "from", "to", NULL
};

static const char *const  crm_perf_no_params[] = {
    NULL
};

static const char *const  crm_perf_board_params[] = {
    "metric", "from", "to", "limit", NULL
};


static crm_status_e
crm_perf_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


/*
 * from and to, as UTC days: default today and the 29 days before; one
 * given alone keeps the default's length from the other end
 */
static crm_status_e
crm_perf_range(crm_call_t *call, crm_perf_query_t *q, crm_error_t *err)
{
    int           has_from, has_to;
    int64_t       from, to;
    crm_status_e  rc;

    rc = crm_perf_day(call, "from", &from, &has_from, err);
    if (rc == CRM_OK) {
        rc = crm_perf_day(call, "to", &to, &has_to, err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    if (!has_to) {
        to = has_from ? from + CRM_PERF_RANGE_DEFAULT - 1
                      : crm_day_of(call->now);

        if (has_from && to > crm_day_of(call->now)) {
            to = from > crm_day_of(call->now) ? from : crm_day_of(call->now);
        }
    }

    if (!has_from) {
        from = to - (CRM_PERF_RANGE_DEFAULT - 1);
    }

    if (from > to) {
        return crm_error_set(err, CRM_E_INVALID, "from",
                             "must not be after to");
    }

    if (to - from + 1 > CRM_PERF_RANGE_MAX) {
        return crm_error_set(err, CRM_E_INVALID, "to",
                             "the range spans more than %d days",
                             CRM_PERF_RANGE_MAX);
    }

    crm_day_format(from, q->from);
    crm_day_format(to, q->to);

    return CRM_OK;
}


static crm_status_e
crm_perf_day(crm_call_t *call, const char *name, int64_t *day, int *found,
    crm_error_t *err)
{
    char          buf[64];
    crm_status_e  rc;

    rc = crm_form_get(call->query, name, buf, sizeof(buf), found, err);
    if (rc != CRM_OK || !*found) {
        return rc == CRM_OK ? CRM_OK
                            : crm_error_set(err, CRM_E_INVALID, name,
                                            "must be a date (2026-12-01) or "
                                            "an RFC 3339 time");
    }

    if (crm_day_parse(crm_str_c(buf), day) != 0) {
        return crm_error_set(err, CRM_E_INVALID, name,
                             "must be a date (2026-12-01) or an RFC 3339 "
                             "time");
    }

    return CRM_OK;
}


/* the call's query, its range read from ?from=&to=; names: those allowed */
static crm_perf_query_t *
crm_perf_query(crm_call_t *call, const char *const *names, crm_error_t *err)
{
    crm_perf_query_t  *q;

    q = crm_arena_alloc(&call->arena, sizeof(crm_perf_query_t));
    if (q == NULL) {
        (void) crm_perf_nomem(err);
        return NULL;
    }

    memset(q, 0, sizeof(crm_perf_query_t));
    call->input = q;

    if (crm_form_check_names(call->query, names, err) != CRM_OK
        || crm_perf_range(call, q, err) != CRM_OK)
    {
        return NULL;
    }

    return q;
}


/* the caller's: the run knows whom (q->account_id "") */
static crm_status_e
crm_perf_me_parse(crm_call_t *call, crm_error_t *err)
{
    crm_perf_query_t  *q;

    q = crm_perf_query(call, crm_perf_range_params, err);
    if (q == NULL) {
        return err->code;
    }

    q->self = 1;

    return CRM_OK;
}


static crm_status_e
crm_perf_user_parse(crm_call_t *call, crm_error_t *err)
{
    char               id[CRM_UUID_LEN + 1];
    crm_perf_query_t  *q;

    if (!crm_uuid_canonical(call->match.params[0], id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    q = crm_perf_query(call, crm_perf_range_params, err);
    if (q == NULL) {
        return err->code;
    }

    memcpy(q->account_id, id, sizeof(q->account_id));

    return CRM_OK;
}


/*
 * One statement: the account, its days' counts and its leads now.  The
 * caller's own summary checks the caller (exists, active) in that same
 * statement (crm_endpoint_t.caller_in_query; call->caller is then NULL
 * unless an ID token named it); a member asking for another account
 * learns nothing of it, not even that it exists.
 */
static crm_status_e
crm_perf_summary_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                   self;
    yajl_gen              g;
    crm_status_e          rc;
    crm_perf_query_t     *q;
    crm_stats_summary_t   s;

    q = call->input;
    self = q->self;

    if (self) {
        memcpy(q->account_id, call->caller != NULL ? call->caller->id
                                                   : call->account_id,
               sizeof(q->account_id));

    } else if (call->caller->role != CRM_ROLE_ADMIN
               && strcmp(q->account_id, call->caller->id) != 0)
    {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    rc = crm_store_stats_summary(db, q->account_id, q->from, q->to,
                                 call->conf->currency, &s, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (self && (!s.found || !s.active)) {
        crm_stats_summary_free(&s);
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "account is not active");
    }

    if (!s.found) {
        crm_stats_summary_free(&s);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such account");
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_stats_summary_free(&s);
        return crm_perf_nomem(err);
    }

    if (crm_perf_render(call, g, q, &s) != 0) {
        crm_stats_summary_free(&s);
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    crm_stats_summary_free(&s);

    return crm_call_reply_json(call, 200, g, err);
}


static int
crm_perf_render(crm_call_t *call, yajl_gen g, const crm_perf_query_t *q,
    const crm_stats_summary_t *s)
{
    size_t                   i, j;
    int64_t                  total, scores, value, n;
    const crm_pipeline_t    *p;
    const crm_stats_days_t  *d;

    p = call->conf->pipeline;
    d = &s->days;

    total = 0;
    scores = 0;
    value = 0;

    for (i = 0; i < s->nstages; i++) {
        total += s->stages[i].leads;
        scores += s->stages[i].score_sum;
        value += s->stages[i].open_value_cents;
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "account_id", q->account_id) != 0
        || crm_json_gen_kv_str(g, "from", q->from) != 0
        || crm_json_gen_kv_str(g, "to", q->to) != 0
        || crm_json_gen_kv_str(g, "currency", call->conf->currency) != 0
        || crm_json_gen_key(g, "leads") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_int(g, "total", total) != 0
        || crm_json_gen_kv_int(g, "created", d->leads_created) != 0
        || crm_json_gen_key(g, "by_stage") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    /* every stage of the pipeline, in its order, then any others held */
    for (i = 0; i < p->nstages; i++) {
        n = 0;

        for (j = 0; j < s->nstages; j++) {
            if (strcmp(s->stages[j].stage, p->stages[i].name) == 0) {
                n = s->stages[j].leads;
            }
        }

        if (crm_json_gen_kv_int(g, p->stages[i].name, n) != 0) {
            return -1;
        }
    }

    for (j = 0; j < s->nstages; j++) {
        if (crm_pipeline_stage(p, crm_str_c(s->stages[j].stage)) == NULL
            && s->stages[j].leads != 0
            && crm_json_gen_kv_int(g, s->stages[j].stage,
                                   s->stages[j].leads) != 0)
        {
            return -1;
        }
    }

    if (yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || crm_json_gen_kv_int(g, "pipeline_value_cents", value) != 0
        || crm_perf_gen_fixed(g, "average_score",
                              crm_perf_ratio(scores, total, 100), 100,
                              total == 0) != 0
        || crm_json_gen_kv_int(g, "won", d->won) != 0
        || crm_json_gen_kv_int(g, "lost", d->lost) != 0
        || crm_json_gen_kv_int(g, "churned", d->churned) != 0
        || crm_perf_gen_fixed(g, "win_rate",
                              crm_perf_ratio(d->won, d->won + d->lost,
                                             10000),
                              10000, d->won + d->lost == 0) != 0
        || crm_json_gen_kv_int(g, "clicks", d->clicks) != 0
        || crm_json_gen_kv_int(g, "installs", d->installs) != 0
        || crm_json_gen_kv_int(g, "conversions", d->conversions) != 0
        || crm_perf_gen_fixed(g, "click_to_install_rate",
                              crm_perf_ratio(d->installs, d->clicks, 10000),
                              10000, d->clicks == 0) != 0
        || crm_json_gen_kv_int(g, "commission_cents", d->commission_cents)
           != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


/* num / den in units of 1/scale, rounded half up; den > 0, num >= 0 */
static int64_t
crm_perf_ratio(int64_t num, int64_t den, int64_t scale)
{
    if (den <= 0) {
        return 0;
    }

    return (num * scale * 2 + den) / (den * 2);
}


/*
 * v / scale as a JSON number with no more decimals than it needs
 * (0.5, 0.3333, 2), or null
 */
static int
crm_perf_gen_fixed(yajl_gen g, const char *key, int64_t v, int scale,
    int null)
{
    int   n, digits;
    char  buf[48];

    if (crm_json_gen_key(g, key) != 0) {
        return -1;
    }

    if (null) {
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    }

    digits = scale == 100 ? 2 : 4;

    n = snprintf(buf, sizeof(buf), "%lld.%0*lld", (long long) (v / scale),
                 digits, (long long) (v % scale));

    while (buf[n - 1] == '0') {
        n--;
    }

    if (buf[n - 1] == '.') {
        n--;
    }

    return yajl_gen_number(g, buf, (size_t) n) == yajl_gen_status_ok
           ? 0 : -1;
}


static crm_status_e
crm_perf_board_parse(crm_call_t *call, crm_error_t *err)
{
    int                found;
    char               buf[32], *end;
    size_t             i;
    unsigned long      limit;
    crm_status_e       rc;
    crm_perf_query_t  *q;

    q = crm_perf_query(call, crm_perf_board_params, err);
    if (q == NULL) {
        return err->code;
    }

    q->metric = CRM_STATS_COMMISSION;

    rc = crm_form_get(call->query, "metric", buf, sizeof(buf), &found, err);
    if (rc != CRM_OK && rc != CRM_E_INVALID) {
        return rc;
    }

    if (rc == CRM_OK && found) {
        for (i = 0; i < CRM_STATS_NMETRICS; i++) {
            if (strcmp(buf, crm_stats_metric_names[i]) == 0) {
                break;
            }
        }

        if (i == CRM_STATS_NMETRICS) {
            rc = CRM_E_INVALID;
        }

        q->metric = (crm_stats_metric_e) i;
    }

    if (rc != CRM_OK) {
        return crm_error_set(err, CRM_E_INVALID, "metric",
                             "must be commission, installs, conversions, "
                             "clicks, won or pipeline_value");
    }

    q->limit = CRM_PERF_BOARD_DEFAULT;

    rc = crm_form_get(call->query, "limit", buf, sizeof(buf), &found, err);
    if (rc == CRM_OK && found) {
        limit = strtoul(buf, &end, 10);

        if (buf[0] < '0' || buf[0] > '9' || *end != '\0' || limit < 1
            || limit > CRM_PERF_BOARD_MAX)
        {
            rc = CRM_E_INVALID;
        }

        q->limit = (unsigned) limit;
    }

    if (rc != CRM_OK) {
        return crm_error_set(err, CRM_E_INVALID, "limit",
                             "must be an integer from 1 to %d",
                             CRM_PERF_BOARD_MAX);
    }

    return CRM_OK;
}


static crm_status_e
crm_perf_board_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    size_t             i;
    yajl_gen           g;
    crm_rows_t         rows;
    crm_status_e       rc;
    crm_perf_query_t  *q;

    q = call->input;

    rc = crm_store_stats_leaderboard(db, q->metric, q->from, q->to,
                                     call->conf->currency, q->limit, &rows,
                                     err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_perf_nomem(err);
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "metric", crm_stats_metric_names[q->metric])
           != 0
        || crm_json_gen_kv_str(g, "from", q->from) != 0
        || crm_json_gen_kv_str(g, "to", q->to) != 0
        || crm_json_gen_key(g, "items") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    for (i = 0; i < rows.n; i++) {
        if (yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_int(g, "rank", (int64_t) i + 1) != 0
            || crm_json_gen_kv_str(g, "account_id",
                                   crm_rows_value(&rows, i, 0)) != 0
            || crm_json_gen_kv_str(g, "email", crm_rows_value(&rows, i, 1))
               != 0
            || crm_json_gen_kv_str(g, "full_name",
                                   crm_rows_value(&rows, i, 2)) != 0
            || crm_json_gen_kv_int(g, "value",
                                   strtoll(crm_rows_value(&rows, i, 3), NULL,
                                           10)) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok)
        {
            goto failed;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    crm_rows_free(&rows);

    return crm_call_reply_json(call, 200, g, err);

failed:

    crm_rows_free(&rows);
    yajl_gen_free(g);

    return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
}


static crm_status_e
crm_perf_compat_parse(crm_call_t *call, crm_error_t *err)
{
    char  *id;

    id = crm_arena_alloc(&call->arena, CRM_UUID_LEN + 1);
    if (id == NULL) {
        return crm_perf_nomem(err);
    }

    /* not a UUID cannot name a lead: the same 404 as a missing one */
    if (!crm_uuid_canonical(call->match.params[0], id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    call->input = id;

    return crm_form_check_names(call->query, crm_perf_no_params, err);
}


/*
 * The parts in the file's order: value in 1/10000, points (weight x
 * value) in 1/100, score the sum of the points rounded to an integer
 */
static crm_status_e
crm_perf_compat_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    size_t                    i;
    int64_t                   value, points, sum;
    yajl_gen                  g;
    crm_lead_t                lead;
    crm_rows_t                rows;
    crm_status_e              rc;
    const crm_pipeline_t     *p;
    const crm_compat_part_t  *part;

    p = call->conf->pipeline;

    rc = crm_store_lead_get(db, call->caller->id, call->input, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    crm_lead_row(&rows, 0, &lead);

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_perf_nomem(err);
    }

    sum = 0;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "lead_id", lead.id) != 0
        || crm_json_gen_key(g, "parts") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    for (i = 0; i < p->nparts; i++) {
        part = &p->parts[i];

        value = crm_perf_compat_value(p, &lead, part->kind,
                                      call->now * 1000000);
        points = crm_perf_ratio(value * part->weight, 10000, 100);
        sum += points;

        if (yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "name", crm_compat_name(part->kind))
               != 0
            || crm_json_gen_kv_int(g, "weight", part->weight) != 0
            || crm_perf_gen_fixed(g, "value", value, 10000, 0) != 0
            || crm_perf_gen_fixed(g, "points", points, 100, 0) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok)
        {
            goto failed;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || crm_json_gen_kv_int(g, "score", crm_perf_ratio(sum, 100, 1)) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    crm_rows_free(&rows);

    return crm_call_reply_json(call, 200, g, err);

failed:

    crm_rows_free(&rows);
    yajl_gen_free(g);

    return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
}


/* a part's value for the lead, in 1/10000 */
static int64_t
crm_perf_compat_value(const crm_pipeline_t *p, const crm_lead_t *lead,
    crm_compat_kind_e kind, int64_t now_us)
{
    int64_t                age_us, window_us;
    const crm_stage_t     *stage;
    const crm_substage_t  *sub;

    switch (kind) {

    case CRM_COMPAT_STAGE:
        stage = crm_pipeline_stage(p, crm_str_c(lead->stage));
        if (stage == NULL || p->nstages < 2) {
            return 0;
        }

        sub = crm_pipeline_substage(stage, crm_str_c(lead->substage));
        if (sub != NULL && (sub->outcome == CRM_OUTCOME_LOST
                            || sub->outcome == CRM_OUTCOME_CHURNED))
        {
            return 0;
        }

        return crm_perf_ratio(stage->position, (int64_t) p->nstages - 1,
                              10000);

    case CRM_COMPAT_SCORE:
        return (int64_t) lead->score * 100;

    case CRM_COMPAT_CONTACT:
        return (lead->email != NULL ? 5000 : 0)
               + (lead->phone != NULL ? 5000 : 0);

    case CRM_COMPAT_COMPANY:
        return ((lead->company != NULL && lead->company[0] != '\0')
                || lead->shop_domain != NULL) ? 10000 : 0;

    case CRM_COMPAT_AFFILIATE:
        return lead->affiliate_link_id != NULL ? 10000 : 0;

    default:
        window_us = (int64_t) CRM_PERF_RECENCY_DAYS * 86400 * 1000000;
        age_us = now_us - lead->updated_us;

        if (age_us <= 0) {
            return 10000;
        }

        if (age_us >= window_us) {
            return 0;
        }

        return crm_perf_ratio(window_us - age_us, window_us, 10000);
    }
}


static crm_status_e
crm_perf_link_parse(crm_call_t *call, crm_error_t *err)
{
    crm_str_t          id;
    crm_perf_query_t  *q;

    id = call->match.params[0];

    /* a made-up id fails its check characters: the same 404 as a miss */
    if (!crm_link_id_valid(&call->conf->link_key, id.data, id.len)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    q = crm_perf_query(call, crm_perf_range_params, err);
    if (q == NULL) {
        return err->code;
    }

    memcpy(q->link_id, id.data, CRM_LINK_ID_LEN);
    q->link_id[CRM_LINK_ID_LEN] = '\0';

    return CRM_OK;
}


/* every day of the range, oldest first, and the range's totals */
static crm_status_e
crm_perf_link_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                i, k;
    size_t             row;
    int64_t            v, total[4];
    yajl_gen           g;
    crm_rows_t         rows;
    crm_status_e       rc;
    crm_perf_query_t  *q;

    static const char *const  names[4] = {
        "clicks", "installs", "conversions", "commission_cents"
    };

    q = call->input;

    rc = crm_store_stats_link_days(db, q->link_id, call->caller->id, q->from,
                                   q->to, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_perf_nomem(err);
    }

    memset(total, 0, sizeof(total));

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "affiliate_link_id", q->link_id) != 0
        || crm_json_gen_kv_str(g, "from", q->from) != 0
        || crm_json_gen_kv_str(g, "to", q->to) != 0
        || crm_json_gen_key(g, "days") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    for (row = 0; row < rows.n; row++) {
        if (yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "day", crm_rows_value(&rows, row, 0))
               != 0)
        {
            goto failed;
        }

        for (i = 0; i < 4; i++) {
            v = strtoll(crm_rows_value(&rows, row, i + 1), NULL, 10);
            total[i] += v;

            if (crm_json_gen_kv_int(g, names[i], v) != 0) {
                goto failed;
            }
        }

        if (yajl_gen_map_close(g) != yajl_gen_status_ok) {
            goto failed;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "totals") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    for (k = 0; k < 4; k++) {
        if (crm_json_gen_kv_int(g, names[k], total[k]) != 0) {
            goto failed;
        }
    }

    if (yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    crm_rows_free(&rows);

    return crm_call_reply_json(call, 200, g, err);

failed:

    crm_rows_free(&rows);
    yajl_gen_free(g);

    return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
}
