/*
 * The click queue: a shared ring of click lines, flushed into PostgreSQL
 * by every worker, with a spool on disk for when the ring is full.
 */

#ifndef NGX_HTTP_CRM_CLICKS_H
#define NGX_HTTP_CRM_CLICKS_H

#include "ngx_http_crm_conf.h"


/* crm_click_queue zone=name:size [flush=] [batch=] [lease=] */
char *ngx_http_crm_click_queue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* crm_click_spool dir [max_size=] */
char *ngx_http_crm_click_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_crm_clicks_init_process(ngx_cycle_t *cycle);
void ngx_http_crm_clicks_exit_process(ngx_cycle_t *cycle);

/* queues one crm_click.h line: into the ring, else the spool, else drops */
void ngx_http_crm_clicks_push(ngx_http_crm_main_conf_t *mcf,
    const u_char *line, size_t len, ngx_log_t *log);

/* the queue's gauges, for /metrics; NGX_DECLINED without a queue */
ngx_int_t ngx_http_crm_clicks_gauges(ngx_http_crm_main_conf_t *mcf,
    size_t *queued_bytes, size_t *queue_size, off_t *spool_bytes);

#endif /* NGX_HTTP_CRM_CLICKS_H */
