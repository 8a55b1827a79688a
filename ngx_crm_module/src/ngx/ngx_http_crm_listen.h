/*
 * The link cache's listener: each worker keeps a connection that LISTENs
 * on crm_links and drops the links PostgreSQL names from the host's cache.
 */

#ifndef NGX_HTTP_CRM_LISTEN_H
#define NGX_HTTP_CRM_LISTEN_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_listen_init_process(ngx_cycle_t *cycle);
void ngx_http_crm_listen_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CRM_LISTEN_H */
