/*
 * The module's own shared state: the counters that /metrics reports,
 * added up by every worker and kept across reloads.
 */

#ifndef NGX_HTTP_CRM_STATE_H
#define NGX_HTTP_CRM_STATE_H

#include "ngx_http_crm_conf.h"


typedef enum {
    NGX_HTTP_CRM_REDIRECTS_302 = 0,
    NGX_HTTP_CRM_REDIRECTS_404,
    NGX_HTTP_CRM_REDIRECTS_410,
    NGX_HTTP_CRM_REDIRECTS_503,
    NGX_HTTP_CRM_CACHE_HITS,
    NGX_HTTP_CRM_CACHE_NEGATIVE_HITS,
    NGX_HTTP_CRM_CACHE_MISSES,
    NGX_HTTP_CRM_CACHE_REFUSED,
    NGX_HTTP_CRM_LINK_LOADS,
    NGX_HTTP_CRM_LINK_LOAD_FAILURES,
    NGX_HTTP_CRM_LINK_LOADS_DISCARDED,
    NGX_HTTP_CRM_CLICKS_QUEUED,
    NGX_HTTP_CRM_CLICKS_FLUSHED,
    NGX_HTTP_CRM_CLICKS_SPOOLED,
    NGX_HTTP_CRM_CLICKS_REPLAYED,
    NGX_HTTP_CRM_CLICKS_DROPPED,
    NGX_HTTP_CRM_FLUSH_FAILURES,
    NGX_HTTP_CRM_BATCHES_RECOVERED,
    NGX_HTTP_CRM_BATCHES_SET_ASIDE,
    NGX_HTTP_CRM_API_2XX,
    NGX_HTTP_CRM_API_4XX,
    NGX_HTTP_CRM_API_5XX,
    NGX_HTTP_CRM_QUEUE_TIMEOUTS,
    NGX_HTTP_CRM_DB_PROBES_FAILED,
    NGX_HTTP_CRM_IDP_KEY_REFRESHES,
    NGX_HTTP_CRM_IDP_KEY_FAILURES,
    NGX_HTTP_CRM_LINK_LISTENS,
    NGX_HTTP_CRM_LINK_LISTENS_LOST,
    NGX_HTTP_CRM_LINK_NOTIFICATIONS,
    NGX_HTTP_CRM_DB_CONNECTS,
    NGX_HTTP_CRM_DB_CONNECT_FAILURES,
    /* reads that may lag, by crm_replica_use_e from ANSWERED on */
    NGX_HTTP_CRM_REPLICA_READS,
    NGX_HTTP_CRM_REPLICA_FALLBACKS,
    NGX_HTTP_CRM_REPLICA_BYPASSED,
    /* thread pool tasks by pool (ngx_http_crm_pool_e): posted, and taken
       from the queue by a thread */
    NGX_HTTP_CRM_TASKS_POSTED,
    NGX_HTTP_CRM_TASKS_STARTED = NGX_HTTP_CRM_TASKS_POSTED + 4,
    /* callbacks by kind (install, conversion) and outcome, webhooks by
       source (mcf->webhook_names) and outcome (ngx_http_crm_metrics.c) */
    NGX_HTTP_CRM_CALLBACKS = NGX_HTTP_CRM_TASKS_STARTED + 4,
    NGX_HTTP_CRM_WEBHOOKS = NGX_HTTP_CRM_CALLBACKS + 2 * 8,
    /* sync jobs by provider (crm_providers[]) and outcome: ok, failed,
       dead, held (ngx_http_crm_sync.h) */
    NGX_HTTP_CRM_SYNC_JOBS = NGX_HTTP_CRM_WEBHOOKS
                             + NGX_HTTP_CRM_WEBHOOK_NAMES * 8,
    NGX_HTTP_CRM_NCOUNTERS = NGX_HTTP_CRM_SYNC_JOBS + 4 * 4
} ngx_http_crm_counter_e;


/* the thread pools by what they run, for the task counters */
typedef enum {
    NGX_HTTP_CRM_POOL_API = 0,
    NGX_HTTP_CRM_POOL_SLOW,
    NGX_HTTP_CRM_POOL_EDGE,
    NGX_HTTP_CRM_POOL_SYNC
} ngx_http_crm_pool_e;


/*
 * The API's requests by route: a row per route of crm_api_routes, then
 * one for requests no route matched and one for CORS preflights; in each,
 * counts by status, by latency bucket, and the latencies' sum in ms.
 */
#define NGX_HTTP_CRM_ROUTES_MAX      62
#define NGX_HTTP_CRM_ROUTE_NONE      NGX_HTTP_CRM_ROUTES_MAX
#define NGX_HTTP_CRM_ROUTE_PREFLIGHT (NGX_HTTP_CRM_ROUTES_MAX + 1)
#define NGX_HTTP_CRM_ROUTE_ROWS      (NGX_HTTP_CRM_ROUTES_MAX + 2)
#define NGX_HTTP_CRM_HTTP_STATUSES   26
#define NGX_HTTP_CRM_HTTP_BUCKETS    14
#define NGX_HTTP_CRM_HTTP_SUM_MS     (NGX_HTTP_CRM_HTTP_STATUSES           \
                                      + NGX_HTTP_CRM_HTTP_BUCKETS)
#define NGX_HTTP_CRM_HTTP_VALUES     (NGX_HTTP_CRM_HTTP_SUM_MS + 1)


/* values that are set, not added: the last one any worker saw */
typedef enum {
    NGX_HTTP_CRM_GAUGE_SYNC_DEPTH = 0,      /* due queue rows */
    NGX_HTTP_CRM_GAUGE_SYNC_OLDEST,         /* seconds the oldest waits */
    NGX_HTTP_CRM_NGAUGES
} ngx_http_crm_gauge_e;


/* configurations loaded by this master, the first 1: seen in /metrics */
extern ngx_uint_t  ngx_http_crm_config_generation;


/* adds the state zone; once, for any configuration with a crm handler */
ngx_int_t ngx_http_crm_state_add(ngx_conf_t *cf,
    ngx_http_crm_main_conf_t *mcf);

void ngx_http_crm_count(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_counter_e counter, ngx_atomic_int_t n);

void ngx_http_crm_gauge_set(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_gauge_e gauge, int64_t v);

/* -1 when no worker has set it yet */
int64_t ngx_http_crm_gauge(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_gauge_e gauge);

/* ngx_thread_task_post(), the task counted as posted to pool */
ngx_int_t ngx_http_crm_task_post(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_pool_e pool, ngx_thread_pool_t *tp, ngx_thread_task_t *task);

/* a pool thread: a task of pool has left the queue, and runs */
void ngx_http_crm_task_started(ngx_http_crm_pool_e pool);

/*
 * The counters' index of a webhook source by name, the same in every
 * worker and across reloads: the zone keeps the names it was told, in
 * order (at most NGX_HTTP_CRM_WEBHOOK_NAMES).  NGX_ERROR when it is full.
 */
ngx_int_t ngx_http_crm_webhook_index(ngx_http_crm_main_conf_t *mcf,
    u_char *name, size_t len);

/* the zone's webhook source names: *n of them */
ngx_str_t *ngx_http_crm_webhook_names(ngx_http_crm_main_conf_t *mcf,
    ngx_str_t *names, ngx_uint_t *n);

/*
 * The host's listeners on crm_links: delta 1 when one connects, -1 when
 * it goes (lost: its connection failed, rather than its worker exiting).
 * For a connect, whether changes may have gone unheard since the zone was
 * made or the last listener was lost (the caller then empties the link
 * cache).  A reload's gap between the old workers' exit and the new ones'
 * first listen is left to the cache's TTL: emptying the cache at every
 * reload would cost more than the few milliseconds it covers.
 */
ngx_uint_t ngx_http_crm_listeners(ngx_http_crm_main_conf_t *mcf,
    ngx_int_t delta, ngx_uint_t lost);

/* the host's listeners now */
ngx_uint_t ngx_http_crm_listeners_now(ngx_http_crm_main_conf_t *mcf);

/* counts a request of route row: status and bucket indexes, ms taken */
void ngx_http_crm_count_request(ngx_http_crm_main_conf_t *mcf,
    ngx_uint_t row, ngx_uint_t status, ngx_uint_t bucket, ngx_msec_t ms);

/* a route row's values, summed over the workers, into values[VALUES] */
void ngx_http_crm_requests(ngx_http_crm_main_conf_t *mcf, ngx_uint_t row,
    ngx_atomic_uint_t *values);

/* the counters, summed over the workers, into counters[NCOUNTERS] */
void ngx_http_crm_counters(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *counters);

/* "zone=name:size" of the zone directives; NGX_ERROR when malformed */
ngx_int_t ngx_http_crm_zone_param(ngx_str_t *value, ngx_str_t *name,
    ssize_t *size);

/* the module's shared zone name; NULL (logged) when it is already used */
ngx_shm_zone_t *ngx_http_crm_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_shm_zone_init_pt init, void *ctx);

#endif /* NGX_HTTP_CRM_STATE_H */
