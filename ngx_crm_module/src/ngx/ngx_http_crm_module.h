/*
 * Types shared by the nginx glue files of the CRM gateway.
 */

#ifndef NGX_HTTP_CRM_MODULE_H
#define NGX_HTTP_CRM_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "crm_call.h"
#include "crm_store_edge.h"


typedef struct {
    ngx_str_t             database;
    ngx_msec_t            connect_timeout;
    ngx_msec_t            statement_timeout;
    ngx_str_t             thread_pool_name;
    ngx_str_t             slow_pool_name;       /* "": the same pool */
    ngx_str_t             jwt_secret;           /* the file's contents */
    time_t                jwt_ttl;
    ngx_str_t             jwt_issuer;
    size_t                max_body_size;
    ngx_uint_t            max_json_depth;
    crm_pipeline_t       *pipeline;             /* loaded from its folder */
    ngx_str_t             callback_secret;      /* the file's contents */
    ngx_str_t             public_url;           /* no trailing slash */
    ngx_int_t             install_cents;        /* new links' defaults */
    ngx_int_t             conversion_bps;
    ngx_str_t             currency;

    ngx_flag_t            api;                  /* crm_api in this location */
    ngx_flag_t            redirect;             /* crm_redirect */
    ngx_thread_pool_t    *thread_pool;
    ngx_thread_pool_t    *slow_pool;            /* password hashing */
    crm_service_conf_t   *service;              /* built by merge */
} ngx_http_crm_loc_conf_t;


/* what /metrics reports; counted in the click queue's zone */
typedef enum {
    NGX_HTTP_CRM_REDIRECTS_302 = 0,
    NGX_HTTP_CRM_REDIRECTS_404,
    NGX_HTTP_CRM_REDIRECTS_410,
    NGX_HTTP_CRM_REDIRECTS_503,
    NGX_HTTP_CRM_CACHE_HITS,
    NGX_HTTP_CRM_CACHE_NEGATIVE_HITS,
    NGX_HTTP_CRM_CACHE_MISSES,
    NGX_HTTP_CRM_LINK_LOADS,
    NGX_HTTP_CRM_LINK_LOAD_FAILURES,
    NGX_HTTP_CRM_CLICKS_QUEUED,
    NGX_HTTP_CRM_CLICKS_FLUSHED,
    NGX_HTTP_CRM_CLICKS_SPOOLED,
    NGX_HTTP_CRM_CLICKS_REPLAYED,
    NGX_HTTP_CRM_CLICKS_DROPPED,
    NGX_HTTP_CRM_FLUSH_FAILURES,
    NGX_HTTP_CRM_BATCHES_RECOVERED,
    NGX_HTTP_CRM_API_2XX,
    NGX_HTTP_CRM_API_4XX,
    NGX_HTTP_CRM_API_5XX,
    NGX_HTTP_CRM_NCOUNTERS
} ngx_http_crm_counter_e;


typedef struct {
    ngx_shm_zone_t       *link_zone;
    time_t                link_ttl;
    time_t                link_negative_ttl;

    ngx_shm_zone_t       *click_zone;
    ngx_msec_t            flush_interval;
    size_t                flush_batch;          /* bytes */
    ngx_str_t             spool_dir;            /* "": no spool */
    off_t                 spool_max;

    /* the click flush's database and pool: the http level's */
    crm_db_conf_t        *click_db;
    ngx_thread_pool_t    *click_pool;
} ngx_http_crm_main_conf_t;


extern ngx_module_t  ngx_http_crm_module;

/* configurations loaded by this master, the first 1: seen in /metrics */
extern ngx_uint_t    ngx_http_crm_config_generation;


ngx_int_t ngx_http_crm_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_crm_error_filter_init(ngx_conf_t *cf);

ngx_int_t ngx_http_crm_redirect_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_crm_metrics_handler(ngx_http_request_t *r);

/* "zone=name:size" of the zone directives; NGX_ERROR when malformed */
ngx_int_t ngx_http_crm_zone_param(ngx_str_t *value, ngx_str_t *name,
    ssize_t *size);

/* the module's shared zone name; NULL (logged) when it is already used */
ngx_shm_zone_t *ngx_http_crm_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_shm_zone_init_pt init, void *ctx);

/* the link cache: ngx_http_crm_links.c */
char *ngx_http_crm_link_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

typedef enum {
    NGX_HTTP_CRM_LINK_MISS = 0,
    NGX_HTTP_CRM_LINK_ACTIVE,
    NGX_HTTP_CRM_LINK_DISABLED,
    NGX_HTTP_CRM_LINK_UNKNOWN
} ngx_http_crm_link_e;

/*
 * Looks id (NUL-terminated) up; for an active link, also writes the
 * Location for click_id into *location (from r's pool), while the entry
 * cannot change.  An expired entry is a miss, unless stale.
 */
ngx_http_crm_link_e ngx_http_crm_links_lookup(ngx_http_request_t *r,
    ngx_shm_zone_t *zone, const char *id, const char *click_id,
    ngx_str_t *location, ngx_uint_t stale);

/* the zone's generation: a load started before a change must not store */
ngx_uint_t ngx_http_crm_links_generation(ngx_shm_zone_t *zone);

void ngx_http_crm_links_store(ngx_shm_zone_t *zone, const u_char *id,
    const crm_edge_link_t *link, ngx_uint_t generation, time_t ttl);

/* drops id at once, after a change through the API */
void ngx_http_crm_links_forget(ngx_shm_zone_t *zone, const u_char *id);

/* the click queue: ngx_http_crm_clicks.c */
char *ngx_http_crm_click_queue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_crm_click_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_crm_clicks_init_process(ngx_cycle_t *cycle);
void ngx_http_crm_clicks_exit_process(ngx_cycle_t *cycle);

/* queues one crm_click.h line: into the ring, else the spool, else drops */
void ngx_http_crm_clicks_push(ngx_http_crm_main_conf_t *mcf,
    const u_char *line, size_t len, ngx_log_t *log);

void ngx_http_crm_count(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_counter_e counter, ngx_atomic_int_t n);

/* the counters and the queue's gauges, for /metrics */
ngx_int_t ngx_http_crm_clicks_stats(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *counters, size_t *queued_bytes, size_t *queue_size,
    off_t *spool_bytes);

/* appends a response header; name and value must outlive the request */
ngx_int_t ngx_http_crm_add_header(ngx_http_request_t *r, const char *name,
    const char *value);

#endif /* NGX_HTTP_CRM_MODULE_H */
