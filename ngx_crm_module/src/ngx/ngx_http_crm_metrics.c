/*
 * Prometheus text format: the module's counters (shared by the workers,
 * kept across reloads), the API's requests by route, status and latency
 * (counted at the log phase, so nginx's own answers in an API location,
 * such as limit_req's 429, are counted too), and the queues' state.
 */

#include "ngx_http_crm_api.h"
#include "ngx_http_crm_clicks.h"
#include "ngx_http_crm_cors.h"
#include "ngx_http_crm_metrics.h"
#include "ngx_http_crm_reply.h"
#include "ngx_http_crm_state.h"
#include "ngx_http_crm_sync.h"

#include "crm_callbacks.h"
#include "crm_verify.h"
#include "crm_webhooks.h"


/* the text of everything but the per-route series (about 22 KB at most:
   every webhook source, callback and sync series) */
#define NGX_HTTP_CRM_METRICS_SIZE   32768
/* a route's series at most: its statuses, buckets, sum and count */
#define NGX_HTTP_CRM_ROUTE_SIZE     ((NGX_HTTP_CRM_HTTP_STATUSES           \
                                      + NGX_HTTP_CRM_HTTP_BUCKETS + 2)     \
                                     * 160)


typedef struct {
    ngx_http_crm_counter_e   counter;
    const char              *text;
} ngx_http_crm_metric_t;


typedef struct {
    const char              *name;
    const char              *help;
} ngx_http_crm_family_t;


static void ngx_http_crm_metrics_count_outcome(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, ngx_uint_t status);
static u_char *ngx_http_crm_metrics_type(u_char *p, u_char *last,
    const char *series, const char **family);
static u_char *ngx_http_crm_metrics_gauge(u_char *p, u_char *last,
    const char *name, int64_t value, const char **family);
static u_char *ngx_http_crm_metrics_routes(ngx_http_crm_main_conf_t *mcf,
    u_char *p, u_char *last);
static u_char *ngx_http_crm_metrics_outcomes(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *v, u_char *p, u_char *last, const char **family);
static u_char *ngx_http_crm_metrics_zones(ngx_http_crm_main_conf_t *mcf,
    u_char *p, u_char *last, const char **family);
static u_char *ngx_http_crm_metrics_replica_lag(
    ngx_http_crm_main_conf_t *mcf, u_char *p, u_char *last,
    const char **family);


static const ngx_http_crm_metric_t  ngx_http_crm_metrics[] = {
    { NGX_HTTP_CRM_REDIRECTS_302, "crm_redirects_total{status=\"302\"}" },
    { NGX_HTTP_CRM_REDIRECTS_404, "crm_redirects_total{status=\"404\"}" },
    { NGX_HTTP_CRM_REDIRECTS_410, "crm_redirects_total{status=\"410\"}" },
    { NGX_HTTP_CRM_REDIRECTS_503, "crm_redirects_total{status=\"503\"}" },
    { NGX_HTTP_CRM_CACHE_HITS,
      "crm_link_cache_lookups_total{result=\"hit\"}" },
    { NGX_HTTP_CRM_CACHE_NEGATIVE_HITS,
      "crm_link_cache_lookups_total{result=\"negative_hit\"}" },
    { NGX_HTTP_CRM_CACHE_MISSES,
      "crm_link_cache_lookups_total{result=\"miss\"}" },
    { NGX_HTTP_CRM_CACHE_REFUSED,
      "crm_link_cache_lookups_total{result=\"refused\"}" },
    { NGX_HTTP_CRM_LINK_LOADS, "crm_link_loads_total" },
    { NGX_HTTP_CRM_LINK_LOAD_FAILURES, "crm_link_load_failures_total" },
    { NGX_HTTP_CRM_LINK_LOADS_DISCARDED, "crm_link_loads_discarded_total" },
    { NGX_HTTP_CRM_LINK_NOTIFICATIONS, "crm_link_notifications_total" },
    { NGX_HTTP_CRM_LINK_LISTENS, "crm_link_listens_total" },
    { NGX_HTTP_CRM_LINK_LISTENS_LOST, "crm_link_listens_lost_total" },
    { NGX_HTTP_CRM_CLICKS_QUEUED, "crm_clicks_queued_total" },
    { NGX_HTTP_CRM_CLICKS_FLUSHED, "crm_clicks_flushed_total" },
    { NGX_HTTP_CRM_CLICKS_SPOOLED, "crm_clicks_spooled_total" },
    { NGX_HTTP_CRM_CLICKS_REPLAYED, "crm_clicks_replayed_total" },
    { NGX_HTTP_CRM_CLICKS_DROPPED, "crm_clicks_dropped_total" },
    { NGX_HTTP_CRM_FLUSH_FAILURES, "crm_click_flush_failures_total" },
    { NGX_HTTP_CRM_BATCHES_RECOVERED, "crm_click_batches_recovered_total" },
    { NGX_HTTP_CRM_BATCHES_SET_ASIDE, "crm_click_batches_set_aside_total" },
    { NGX_HTTP_CRM_API_2XX, "crm_api_responses_total{class=\"2xx\"}" },
    { NGX_HTTP_CRM_API_4XX, "crm_api_responses_total{class=\"4xx\"}" },
    { NGX_HTTP_CRM_API_5XX, "crm_api_responses_total{class=\"5xx\"}" },
    { NGX_HTTP_CRM_QUEUE_TIMEOUTS, "crm_thread_queue_timeouts_total" },
    { NGX_HTTP_CRM_TASKS_POSTED + NGX_HTTP_CRM_POOL_API,
      "crm_thread_pool_tasks_total{pool=\"api\"}" },
    { NGX_HTTP_CRM_TASKS_POSTED + NGX_HTTP_CRM_POOL_SLOW,
      "crm_thread_pool_tasks_total{pool=\"slow\"}" },
    { NGX_HTTP_CRM_TASKS_POSTED + NGX_HTTP_CRM_POOL_EDGE,
      "crm_thread_pool_tasks_total{pool=\"edge\"}" },
    { NGX_HTTP_CRM_TASKS_POSTED + NGX_HTTP_CRM_POOL_SYNC,
      "crm_thread_pool_tasks_total{pool=\"sync\"}" },
    { NGX_HTTP_CRM_DB_PROBES_FAILED, "crm_db_probes_failed_total" },
    { NGX_HTTP_CRM_DB_CONNECTS, "crm_db_connections_total{result=\"ok\"}" },
    { NGX_HTTP_CRM_DB_CONNECT_FAILURES,
      "crm_db_connections_total{result=\"failed\"}" },
    { NGX_HTTP_CRM_REPLICA_READS,
      "crm_db_replica_reads_total{result=\"replica\"}" },
    { NGX_HTTP_CRM_REPLICA_FALLBACKS,
      "crm_db_replica_reads_total{result=\"fallback\"}" },
    { NGX_HTTP_CRM_REPLICA_BYPASSED,
      "crm_db_replica_reads_total{result=\"bypassed\"}" },
    { NGX_HTTP_CRM_IDP_KEY_REFRESHES,
      "crm_idp_key_refreshes_total{result=\"ok\"}" },
    { NGX_HTTP_CRM_IDP_KEY_FAILURES,
      "crm_idp_key_refreshes_total{result=\"failed\"}" },
};


static const ngx_http_crm_family_t  ngx_http_crm_families[] = {
    { "crm_http_requests_total",
      "API requests by route pattern, method and status" },
    { "crm_http_request_duration_seconds",
      "API request latency by route pattern and method" },
    { "crm_redirects_total", "affiliate redirects by status" },
    { "crm_link_cache_lookups_total", "link cache lookups by result" },
    { "crm_link_loads_total", "links loaded from the database" },
    { "crm_link_load_failures_total", "link loads that failed" },
    { "crm_link_loads_discarded_total",
      "link loads discarded for a newer change" },
    { "crm_link_notifications_total",
      "link changes heard from PostgreSQL (crm_links)" },
    { "crm_link_listens_total", "listener connections made on crm_links" },
    { "crm_link_listens_lost_total", "listener connections lost" },
    { "crm_link_listeners", "workers listening on crm_links now" },
    { "crm_clicks_queued_total", "clicks queued in shared memory" },
    { "crm_clicks_flushed_total", "clicks written to the database" },
    { "crm_clicks_spooled_total", "clicks written to the spool" },
    { "crm_clicks_replayed_total", "spooled clicks replayed" },
    { "crm_clicks_dropped_total", "clicks lost: queue and spool full" },
    { "crm_click_flush_failures_total", "click flushes that failed" },
    { "crm_click_batches_recovered_total",
      "click batches of a dead worker recovered" },
    { "crm_click_batches_set_aside_total",
      "click batches set aside after repeated failures" },
    { "crm_api_responses_total", "API responses by status class" },
    { "crm_thread_queue_timeouts_total",
      "API calls that waited longer than crm_queue_timeout" },
    { "crm_thread_pool_tasks_total", "tasks posted to the thread pools" },
    { "crm_thread_pool_queue", "tasks waiting for a thread" },
    { "crm_db_probes_failed_total", "database probes that failed" },
    { "crm_db_connections_total",
      "database connection attempts by pool threads" },
    { "crm_db_replica_reads_total",
      "reads that may lag: by the replica, by the primary after the "
      "replica failed, or bypassing a replica down or behind" },
    { "crm_db_replica_lag_seconds",
      "the replica's replay lag at this worker's last probe (-1: unknown)" },
    { "crm_idp_key_refreshes_total",
      "identity provider key fetches by result" },
    { "crm_callbacks_total", "signed callbacks by kind and outcome" },
    { "crm_webhooks_total", "webhook deliveries by source and outcome" },
    { "crm_sync_jobs_total", "CRM sync jobs by provider and outcome" },
    { "crm_sync_queue_due", "CRM sync jobs due now" },
    { "crm_sync_oldest_due_seconds", "how long the oldest due job waits" },
    { "crm_click_queue_bytes", "bytes of clicks queued" },
    { "crm_click_queue_size_bytes", "the click queue's capacity" },
    { "crm_click_spool_bytes", "bytes of clicks in the spool" },
    { "crm_zone_used_bytes",
      "pages of a shared zone in use, by zone, in bytes" },
    { "crm_zone_size_bytes", "a shared zone's size, by zone" },
    { "crm_config_generation", "configurations loaded by this master" },
    { NULL, NULL }
};


static const ngx_uint_t  ngx_http_crm_statuses[NGX_HTTP_CRM_HTTP_STATUSES - 1]
    = {
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409,
    410, 412, 413, 415, 422, 429, 499, 500, 502, 503, 504
};


/* upper bounds of the latency buckets, in microseconds (the latency is
   counted in ms), and as Prometheus writes them */
static const ngx_msec_t  ngx_http_crm_bucket_us[NGX_HTTP_CRM_HTTP_BUCKETS - 1]
    = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

static const char *const  ngx_http_crm_bucket_le[NGX_HTTP_CRM_HTTP_BUCKETS]
    = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "10", "+Inf"
};


static const char *const  ngx_http_crm_callback_kinds[] = {
    "install", "conversion"
};

static const char *const  ngx_http_crm_callback_outcomes[] = {
    "created", "duplicate", "refused", "invalid", "conflict", "failed", NULL
};

static const char *const  ngx_http_crm_webhook_outcomes[] = {
    "attributed", "unmatched", "duplicate", "refused", "invalid",
    "conflict", "failed", NULL
};


static const char *const  ngx_http_crm_pools[] = {
    "api", "slow", "edge", "sync"
};


/* the log phase: every request of an API location */
ngx_int_t
ngx_http_crm_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                 row, status, s, b;
    ngx_time_t                *tp;
    ngx_msec_int_t             ms;
    const crm_route_t         *route;
    ngx_http_crm_loc_conf_t   *lcf;
    ngx_http_crm_main_conf_t  *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    if (!lcf->api || r != r->main) {
        return NGX_OK;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_crm_module);

    if (ngx_http_crm_cors_is_preflight(r, NULL)) {
        row = NGX_HTTP_CRM_ROUTE_PREFLIGHT;

    } else {
        route = ngx_http_crm_api_route(r);
        row = route != NULL ? (ngx_uint_t) (route - crm_api_routes)
                            : NGX_HTTP_CRM_ROUTE_NONE;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    for (s = 0; s < NGX_HTTP_CRM_HTTP_STATUSES - 1; s++) {
        if (ngx_http_crm_statuses[s] == status) {
            break;
        }
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    for (b = 0; b < NGX_HTTP_CRM_HTTP_BUCKETS - 1; b++) {
        if ((ngx_msec_t) ms * 1000 <= ngx_http_crm_bucket_us[b]) {
            break;
        }
    }

    ngx_http_crm_count_request(mcf, row, s, b, ms);

    ngx_http_crm_metrics_count_outcome(r, mcf, status);

    return NGX_OK;
}


/* a callback's or a webhook's outcome, from its call */
static void
ngx_http_crm_metrics_count_outcome(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, ngx_uint_t status)
{
    ngx_int_t                    index;
    ngx_uint_t                   o;
    crm_call_t                  *call;
    const char                  *outcome;
    const char *const           *outcomes;
    const crm_webhook_source_t  *src;

    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);

    if (call == NULL || call->endpoint == NULL) {
        return;
    }

    if (call->endpoint == &crm_callbacks_install
        || call->endpoint == &crm_callbacks_conversion)
    {
        outcomes = ngx_http_crm_callback_outcomes;

    } else if (call->endpoint == &crm_webhooks_receive) {
        outcomes = ngx_http_crm_webhook_outcomes;

    } else {
        return;
    }

    outcome = status >= 200 && status < 300 ? call->outcome
              : status == NGX_HTTP_UNAUTHORIZED ? "refused"
              : status == NGX_HTTP_CONFLICT ? "conflict"
              : status >= 400 && status < 500 ? "invalid"
              : "failed";

    if (outcome == NULL) {
        return;
    }

    for (o = 0; outcomes[o] != NULL; o++) {
        if (ngx_strcmp(outcomes[o], outcome) == 0) {
            break;
        }
    }

    if (outcomes[o] == NULL) {
        return;
    }

    if (outcomes == ngx_http_crm_callback_outcomes) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CALLBACKS
                                + (call->endpoint == &crm_callbacks_install
                                   ? 0 : 8)
                                + o, 1);
        return;
    }

    /* a source this location does not know is only a request by route */
    src = crm_verify_webhook_source(call);
    if (src == NULL) {
        return;
    }

    index = ngx_http_crm_webhook_index(mcf, (u_char *) src->name,
                                       ngx_strlen(src->name));

    if (index != NGX_ERROR) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_WEBHOOKS + index * 8 + o, 1);
    }
}


ngx_int_t
ngx_http_crm_metrics_handler(ngx_http_request_t *r)
{
    off_t                      spool;
    u_char                    *body, *p, *last;
    size_t                     len, queued, size;
    int64_t                    depth, oldest, tasks;
    ngx_int_t                  rc;
    ngx_uint_t                 i, o;
    const char                *family;
    ngx_atomic_uint_t          v[NGX_HTTP_CRM_NCOUNTERS];
    ngx_http_crm_main_conf_t  *mcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_crm_module);

    len = NGX_HTTP_CRM_METRICS_SIZE
          + NGX_HTTP_CRM_ROUTE_ROWS * NGX_HTTP_CRM_ROUTE_SIZE;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;
    last = body + len;
    family = NULL;

    p = ngx_http_crm_metrics_routes(mcf, p, last);

    ngx_http_crm_counters(mcf, v);

    for (i = 0; i < sizeof(ngx_http_crm_metrics)
                    / sizeof(ngx_http_crm_metrics[0]); i++)
    {
        p = ngx_http_crm_metrics_type(p, last, ngx_http_crm_metrics[i].text,
                                      &family);
        p = ngx_slprintf(p, last, "%s %uA\n", ngx_http_crm_metrics[i].text,
                         v[ngx_http_crm_metrics[i].counter]);
    }

    p = ngx_http_crm_metrics_type(p, last, "crm_thread_pool_queue", &family);

    for (i = 0; i < sizeof(ngx_http_crm_pools) / sizeof(char *); i++) {
        tasks = (int64_t) (v[NGX_HTTP_CRM_TASKS_POSTED + i]
                           - v[NGX_HTTP_CRM_TASKS_STARTED + i]);
        p = ngx_slprintf(p, last, "crm_thread_pool_queue{pool=\"%s\"} %L\n",
                         ngx_http_crm_pools[i], ngx_max(tasks, 0));
    }

    p = ngx_http_crm_metrics_outcomes(mcf, v, p, last, &family);

    p = ngx_http_crm_metrics_type(p, last, "crm_sync_jobs_total", &family);

    for (i = 0; crm_providers[i] != NULL && i < NGX_HTTP_CRM_SYNC_PROVIDERS;
         i++)
    {
        for (o = 0; o < NGX_HTTP_CRM_SYNC_OUTCOMES; o++) {
            p = ngx_slprintf(p, last,
                             "crm_sync_jobs_total{provider=\"%s\","
                             "outcome=\"%s\"} %uA\n",
                             crm_providers[i]->type,
                             ngx_http_crm_sync_outcomes[o],
                             v[NGX_HTTP_CRM_SYNC_JOBS
                               + i * NGX_HTTP_CRM_SYNC_OUTCOMES + o]);
        }
    }

    depth = ngx_http_crm_gauge(mcf, NGX_HTTP_CRM_GAUGE_SYNC_DEPTH);
    oldest = ngx_http_crm_gauge(mcf, NGX_HTTP_CRM_GAUGE_SYNC_OLDEST);

    if (depth >= 0) {
        p = ngx_http_crm_metrics_gauge(p, last, "crm_sync_queue_due", depth,
                                       &family);
        p = ngx_http_crm_metrics_gauge(p, last,
                                       "crm_sync_oldest_due_seconds", oldest,
                                       &family);
    }

    if (ngx_http_crm_clicks_gauges(mcf, &queued, &size, &spool) == NGX_OK) {
        p = ngx_http_crm_metrics_gauge(p, last, "crm_click_queue_bytes",
                                       (int64_t) queued, &family);
        p = ngx_http_crm_metrics_gauge(p, last, "crm_click_queue_size_bytes",
                                       (int64_t) size, &family);
        p = ngx_http_crm_metrics_gauge(p, last, "crm_click_spool_bytes",
                                       (int64_t) spool, &family);
    }

    if (mcf->link_zone != NULL) {
        p = ngx_http_crm_metrics_gauge(p, last, "crm_link_listeners",
                                       (int64_t)
                                       ngx_http_crm_listeners_now(mcf),
                                       &family);
    }

    p = ngx_http_crm_metrics_zones(mcf, p, last, &family);
    p = ngx_http_crm_metrics_replica_lag(mcf, p, last, &family);

    p = ngx_http_crm_metrics_gauge(p, last, "crm_config_generation",
                                   (int64_t) ngx_http_crm_config_generation,
                                   &family);

    /* a full buffer means a series cut short: never serve that */
    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "crm: /metrics text exceeds %uz bytes", len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_crm_send(r, NGX_HTTP_OK, "text/plain; version=0.0.4",
                             body, p - body);
}


/*
 * "# HELP" and "# TYPE" before a family's first series: series names it
 * by its text up to "{"; *family is the family written last.
 */
static u_char *
ngx_http_crm_metrics_type(u_char *p, u_char *last, const char *series,
    const char **family)
{
    size_t                        len;
    const char                   *brace;
    const ngx_http_crm_family_t  *f;

    brace = ngx_strchr(series, '{');
    len = brace ? (size_t) (brace - series) : ngx_strlen(series);

    for (f = ngx_http_crm_families; f->name != NULL; f++) {
        if (ngx_strlen(f->name) == len
            && ngx_strncmp(f->name, series, len) == 0)
        {
            break;
        }
    }

    if (f->name == NULL || f->name == *family) {
        return p;
    }

    *family = f->name;

    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        f->name, f->help, f->name,
                        ngx_strcmp(f->name,
                                   "crm_http_request_duration_seconds")
                        == 0 ? "histogram"
                        : len > 6 && ngx_strncmp(series + len - 6, "_total",
                                                 6) == 0
                        ? "counter" : "gauge");
}


/* a gauge without labels, after its family's "# HELP" and "# TYPE" */
static u_char *
ngx_http_crm_metrics_gauge(u_char *p, u_char *last, const char *name,
    int64_t value, const char **family)
{
    p = ngx_http_crm_metrics_type(p, last, name, family);

    return ngx_slprintf(p, last, "%s %L\n", name, value);
}


/*
 * Each shared zone's slab pages in use, then its size: a zone that keeps
 * growing under a steady load is a leak, one near its size evicts (links)
 * or spools (clicks).  A page holding one small allocation counts whole.
 */
static u_char *
ngx_http_crm_metrics_zones(ngx_http_crm_main_conf_t *mcf, u_char *p,
    u_char *last, const char **family)
{
    size_t            bytes;
    ngx_uint_t        i, pass, pages, free;
    ngx_slab_pool_t  *sp;
    ngx_shm_zone_t   *zones[4];

    static const char *const  names[4] = { "state", "links", "clicks", "idp" };
    static const char *const  series[2] = {
        "crm_zone_used_bytes", "crm_zone_size_bytes"
    };

    zones[0] = mcf->state_zone;
    zones[1] = mcf->link_zone;
    zones[2] = mcf->click_zone;
    zones[3] = mcf->idp_zone;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < 4; i++) {
            if (zones[i] == NULL || zones[i]->shm.addr == NULL) {
                continue;
            }

            sp = (ngx_slab_pool_t *) zones[i]->shm.addr;

            if (pass == 0) {
                pages = (sp->end - sp->start) / ngx_pagesize;

                ngx_shmtx_lock(&sp->mutex);
                free = sp->pfree;
                ngx_shmtx_unlock(&sp->mutex);

                bytes = (pages - free) * ngx_pagesize;

            } else {
                bytes = zones[i]->shm.size;
            }

            p = ngx_http_crm_metrics_type(p, last, series[pass], family);
            p = ngx_slprintf(p, last, "%s{zone=\"%s\"} %uz\n",
                             series[pass], names[i], bytes);
        }
    }

    return p;
}


/*
 * The largest replay lag of the configuration's replicas at this worker's
 * last probes, or -1 when one of them is down or cut off: none when no
 * replica is configured
 */
static u_char *
ngx_http_crm_metrics_replica_lag(ngx_http_crm_main_conf_t *mcf, u_char *p,
    u_char *last, const char **family)
{
    int64_t                  lag;
    ngx_uint_t               i, n;
    crm_db_conf_t          **dbs;
    const crm_db_health_t   *h;

    dbs = mcf->databases.elts;
    lag = 0;
    n = 0;

    for (i = 0; i < mcf->databases.nelts; i++) {
        if (dbs[i]->primary == NULL) {
            continue;
        }

        n++;
        h = dbs[i]->health;

        if (h->up != 1 || h->lag_ms < 0) {
            lag = -1;
            break;
        }

        lag = ngx_max(lag, h->lag_ms);
    }

    if (n == 0) {
        return p;
    }

    p = ngx_http_crm_metrics_type(p, last, "crm_db_replica_lag_seconds",
                                  family);

    if (lag < 0) {
        return ngx_slprintf(p, last, "crm_db_replica_lag_seconds -1\n");
    }

    return ngx_slprintf(p, last, "crm_db_replica_lag_seconds %L.%03L\n",
                        lag / 1000, lag % 1000);
}


/* requests by route and status, then latency histograms by route */
static u_char *
ngx_http_crm_metrics_routes(ngx_http_crm_main_conf_t *mcf, u_char *p,
    u_char *last)
{
    ngx_uint_t          row, s, b, pass, status;
    const char         *pattern, *method, *family;
    ngx_atomic_uint_t   v[NGX_HTTP_CRM_HTTP_VALUES], count;

    family = NULL;

    for (pass = 0; pass < 2; pass++) {

        p = ngx_http_crm_metrics_type(p, last,
                                      pass == 0
                                      ? "crm_http_requests_total"
                                      : "crm_http_request_duration_seconds",
                                      &family);

        for (row = 0; row < NGX_HTTP_CRM_ROUTE_ROWS; row++) {

            if (row < NGX_HTTP_CRM_ROUTE_NONE && row >= crm_api_nroutes) {
                continue;
            }

            ngx_http_crm_requests(mcf, row, v);

            count = 0;

            for (s = 0; s < NGX_HTTP_CRM_HTTP_STATUSES; s++) {
                count += v[s];
            }

            if (count == 0) {
                continue;
            }

            if (row == NGX_HTTP_CRM_ROUTE_NONE) {
                pattern = "none";
                method = "other";

            } else if (row == NGX_HTTP_CRM_ROUTE_PREFLIGHT) {
                pattern = "preflight";
                method = "OPTIONS";

            } else {
                pattern = crm_api_routes[row].pattern;
                method = crm_router_method_name(crm_api_routes[row].method);
            }

            if (pass == 0) {
                for (s = 0; s < NGX_HTTP_CRM_HTTP_STATUSES; s++) {
                    if (v[s] == 0) {
                        continue;
                    }

                    status = s < NGX_HTTP_CRM_HTTP_STATUSES - 1
                             ? ngx_http_crm_statuses[s] : 0;

                    p = ngx_slprintf(p, last,
                                     "crm_http_requests_total{route=\"%s\","
                                     "method=\"%s\",status=\"", pattern,
                                     method);
                    p = status ? ngx_slprintf(p, last, "%ui", status)
                               : ngx_slprintf(p, last, "other");
                    p = ngx_slprintf(p, last, "\"} %uA\n", v[s]);
                }

                continue;
            }

            count = 0;

            for (b = 0; b < NGX_HTTP_CRM_HTTP_BUCKETS; b++) {
                count += v[NGX_HTTP_CRM_HTTP_STATUSES + b];
                p = ngx_slprintf(p, last,
                                 "crm_http_request_duration_seconds_bucket"
                                 "{route=\"%s\",method=\"%s\",le=\"%s\"} "
                                 "%uA\n", pattern, method,
                                 ngx_http_crm_bucket_le[b], count);
            }

            p = ngx_slprintf(p, last,
                             "crm_http_request_duration_seconds_sum"
                             "{route=\"%s\",method=\"%s\"} %uA.%03uA\n"
                             "crm_http_request_duration_seconds_count"
                             "{route=\"%s\",method=\"%s\"} %uA\n",
                             pattern, method,
                             v[NGX_HTTP_CRM_HTTP_SUM_MS] / 1000,
                             v[NGX_HTTP_CRM_HTTP_SUM_MS] % 1000,
                             pattern, method, count);
        }
    }

    return p;
}


static u_char *
ngx_http_crm_metrics_outcomes(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *v, u_char *p, u_char *last, const char **family)
{
    ngx_str_t   names[NGX_HTTP_CRM_WEBHOOK_NAMES];
    ngx_uint_t  i, o, n;

    p = ngx_http_crm_metrics_type(p, last, "crm_callbacks_total", family);

    for (i = 0; i < 2; i++) {
        for (o = 0; ngx_http_crm_callback_outcomes[o] != NULL; o++) {
            p = ngx_slprintf(p, last,
                             "crm_callbacks_total{kind=\"%s\","
                             "outcome=\"%s\"} %uA\n",
                             ngx_http_crm_callback_kinds[i],
                             ngx_http_crm_callback_outcomes[o],
                             v[NGX_HTTP_CRM_CALLBACKS + i * 8 + o]);
        }
    }

    (void) ngx_http_crm_webhook_names(mcf, names, &n);

    if (n == 0) {
        return p;
    }

    p = ngx_http_crm_metrics_type(p, last, "crm_webhooks_total", family);

    for (i = 0; i < n; i++) {
        for (o = 0; ngx_http_crm_webhook_outcomes[o] != NULL; o++) {
            p = ngx_slprintf(p, last,
                             "crm_webhooks_total{source=\"%V\","
                             "outcome=\"%s\"} %uA\n", &names[i],
                             ngx_http_crm_webhook_outcomes[o],
                             v[NGX_HTTP_CRM_WEBHOOKS + i * 8 + o]);
        }
    }

    return p;
}
