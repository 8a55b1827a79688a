/*
 * Types shared by the nginx glue files of the CRM gateway.
 */

#ifndef NGX_HTTP_CRM_MODULE_H
#define NGX_HTTP_CRM_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "crm_call.h"


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
    ngx_thread_pool_t    *thread_pool;
    ngx_thread_pool_t    *slow_pool;            /* password hashing */
    crm_service_conf_t   *service;              /* built by merge */
} ngx_http_crm_loc_conf_t;


extern ngx_module_t  ngx_http_crm_module;


ngx_int_t ngx_http_crm_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_crm_error_filter_init(ngx_conf_t *cf);

/* appends a response header; name and value must outlive the request */
ngx_int_t ngx_http_crm_add_header(ngx_http_request_t *r, const char *name,
    const char *value);

#endif /* NGX_HTTP_CRM_MODULE_H */
