/*
 * The database probes behind /healthz: every worker asks each database
 * of its configuration once a second, on the edge's pool.
 */

#ifndef NGX_HTTP_CRM_HEALTH_H
#define NGX_HTTP_CRM_HEALTH_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_health_init_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CRM_HEALTH_H */
