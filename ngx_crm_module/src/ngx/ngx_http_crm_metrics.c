/*
 * Prometheus text format: the module's counters (shared by the workers,
 * kept across reloads) and the click queue's state.
 */

#include "ngx_http_crm_clicks.h"
#include "ngx_http_crm_metrics.h"
#include "ngx_http_crm_reply.h"
#include "ngx_http_crm_state.h"
#include "ngx_http_crm_sync.h"


#define NGX_HTTP_CRM_METRICS_SIZE  8192


typedef struct {
    ngx_http_crm_counter_e   counter;
    const char              *text;
} ngx_http_crm_metric_t;


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
    { NGX_HTTP_CRM_DB_PROBES_FAILED, "crm_db_probes_failed_total" },
    { NGX_HTTP_CRM_IDP_KEY_REFRESHES,
      "crm_idp_key_refreshes_total{result=\"ok\"}" },
    { NGX_HTTP_CRM_IDP_KEY_FAILURES,
      "crm_idp_key_refreshes_total{result=\"failed\"}" },
};


ngx_int_t
ngx_http_crm_metrics_handler(ngx_http_request_t *r)
{
    off_t                      spool;
    u_char                    *body, *p, *last;
    size_t                     queued, size;
    int64_t                    depth, oldest;
    ngx_int_t                  rc;
    ngx_uint_t                 i, o;
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

    body = ngx_pnalloc(r->pool, NGX_HTTP_CRM_METRICS_SIZE);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;
    last = body + NGX_HTTP_CRM_METRICS_SIZE;

    ngx_http_crm_counters(mcf, v);

    for (i = 0; i < sizeof(ngx_http_crm_metrics)
                    / sizeof(ngx_http_crm_metrics[0]); i++)
    {
        p = ngx_slprintf(p, last, "%s %uA\n", ngx_http_crm_metrics[i].text,
                         v[ngx_http_crm_metrics[i].counter]);
    }

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
        p = ngx_slprintf(p, last,
                         "crm_sync_queue_due %L\n"
                         "crm_sync_oldest_due_seconds %L\n",
                         depth, oldest);
    }

    if (ngx_http_crm_clicks_gauges(mcf, &queued, &size, &spool) == NGX_OK) {
        p = ngx_slprintf(p, last,
                         "crm_click_queue_bytes %uz\n"
                         "crm_click_queue_size_bytes %uz\n"
                         "crm_click_spool_bytes %O\n",
                         queued, size, spool);
    }

    p = ngx_slprintf(p, last, "crm_config_generation %ui\n",
                     ngx_http_crm_config_generation);

    return ngx_http_crm_send(r, NGX_HTTP_OK, "text/plain; version=0.0.4",
                             body, p - body);
}
