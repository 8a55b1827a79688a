/*
 * The performance counters' folder in each worker (crm_store_stats.h):
 * about once a second a task on the pool folds the deltas events appended
 * into the rollups.  One session folds at a time on any host (the others'
 * tries return at once), so the workers need not agree on who does it.
 */

#ifndef NGX_HTTP_CRM_STATS_H
#define NGX_HTTP_CRM_STATS_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_stats_init_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CRM_STATS_H */
