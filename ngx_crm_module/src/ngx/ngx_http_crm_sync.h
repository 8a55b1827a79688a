/*
 * The CRM sync queue's runner in each worker (service/crm_sync.h): a
 * timer claims due leases on the thread pool, the event loop sends their
 * provider calls through the outbound HTTP, the pool records the result.
 */

#ifndef NGX_HTTP_CRM_SYNC_H
#define NGX_HTTP_CRM_SYNC_H

#include "ngx_http_crm_conf.h"


/*
 * crm_sync_jobs_total{provider, outcome}: the counters from
 * NGX_HTTP_CRM_SYNC_JOBS on, by crm_providers[] index, then outcome
 */
#define NGX_HTTP_CRM_SYNC_OUTCOMES   4
#define NGX_HTTP_CRM_SYNC_PROVIDERS  4

extern const char *const  ngx_http_crm_sync_outcomes[];


ngx_int_t ngx_http_crm_sync_init_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CRM_SYNC_H */
