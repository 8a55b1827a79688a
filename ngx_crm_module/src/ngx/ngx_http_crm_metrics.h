/*
 * GET /metrics: the module's counters in Prometheus text format.
 */

#ifndef NGX_HTTP_CRM_METRICS_H
#define NGX_HTTP_CRM_METRICS_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_metrics_handler(ngx_http_request_t *r);

/* the log phase handler: counts each request of a crm_api location */
ngx_int_t ngx_http_crm_metrics_log(ngx_http_request_t *r);

#endif /* NGX_HTTP_CRM_METRICS_H */
