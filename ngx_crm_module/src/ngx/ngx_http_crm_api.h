/*
 * The API content handler (crm_api).
 */

#ifndef NGX_HTTP_CRM_API_H
#define NGX_HTTP_CRM_API_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_api_handler(ngx_http_request_t *r);

#endif /* NGX_HTTP_CRM_API_H */
