/*
 * Outbound HTTP for the services (crm_http.h): libcurl's multi interface
 * driven by the worker's event loop.  No call holds a thread or the loop
 * while a provider takes its time.
 */

#ifndef NGX_HTTP_CRM_OUTBOUND_H
#define NGX_HTTP_CRM_OUTBOUND_H

#include "ngx_http_crm_conf.h"

#include "crm_addr.h"
#include "crm_http.h"


typedef struct ngx_http_crm_outbound_s  ngx_http_crm_outbound_t;

typedef void (*ngx_http_crm_outbound_done_pt)(void *data);


/* how calls are made: from the location's configuration */
typedef struct {
    const crm_cidr_list_t  *allow;      /* let through, plain http too */
    ngx_msec_t              connect_timeout;
    ngx_msec_t              timeout;    /* the whole exchange */
} ngx_http_crm_outbound_policy_t;


/* the worker's multi handle; at process start and exit */
ngx_int_t ngx_http_crm_outbound_init(ngx_cycle_t *cycle);
void ngx_http_crm_outbound_exit(ngx_cycle_t *cycle);

/*
 * Starts req; res is filled before done(data) runs, in the event loop,
 * whatever the outcome (never from within this call).  NULL when the call
 * cannot be started (out of memory, a URL libcurl refuses): res then says
 * why and done is not called.
 */
ngx_http_crm_outbound_t *ngx_http_crm_outbound_start(
    const crm_http_request_t *req, crm_http_response_t *res,
    const ngx_http_crm_outbound_policy_t *policy,
    ngx_http_crm_outbound_done_pt done, void *data, ngx_log_t *log);

/* stops a call whose requester has gone; done is not called */
void ngx_http_crm_outbound_cancel(ngx_http_crm_outbound_t *call);

#endif /* NGX_HTTP_CRM_OUTBOUND_H */
