/*
 * CORS: the crm_cors_* directives, the preflight of crm_api locations and
 * the header filter that adds the Access-Control-* headers to every
 * answer of a location that allows origins.
 */

#ifndef NGX_HTTP_CRM_CORS_H
#define NGX_HTTP_CRM_CORS_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_cors_filter_init(ngx_conf_t *cf);

void ngx_http_crm_cors_create(ngx_http_crm_cors_conf_t *conf);
char *ngx_http_crm_cors_merge(ngx_conf_t *cf, ngx_http_crm_cors_conf_t *prev,
    ngx_http_crm_cors_conf_t *conf);

/* the methods crm_cors_methods may name, its command's post */
extern const char *const  ngx_http_crm_cors_methods[];

/* crm_cors_origins, crm_cors_methods, crm_cors_headers and
   crm_cors_expose_headers */
char *ngx_http_crm_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_crm_cors_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Whether r is a preflight that this location answers: OPTIONS with
 * Origin and Access-Control-Request-Method, where origins are allowed.
 * *method (unless NULL) is the method it asks about.
 */
ngx_uint_t ngx_http_crm_cors_is_preflight(ngx_http_request_t *r,
    ngx_str_t *method);

/*
 * Answers a routed preflight: 204 with what it may do, or NGX_DECLINED
 * with the call failed (403) for the caller to answer.
 */
ngx_int_t ngx_http_crm_cors_preflight(ngx_http_request_t *r,
    crm_call_t *call);

#endif /* NGX_HTTP_CRM_CORS_H */
