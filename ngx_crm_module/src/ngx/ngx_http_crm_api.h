/*
 * The API content handler (crm_api).
 */

#ifndef NGX_HTTP_CRM_API_H
#define NGX_HTTP_CRM_API_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_api_handler(ngx_http_request_t *r);

/*
 * The request's call in a crm_api location: routed and, unless a CORS
 * preflight, its credential checked (a failure of either recorded in the
 * call); made at the first need and kept in the module's context.  NULL
 * when out of memory.
 */
crm_call_t *ngx_http_crm_api_call(ngx_http_request_t *r);

/*
 * The route of a request of a crm_api location, its call's if it has one;
 * NULL when none matches.  Makes no call.
 */
const crm_route_t *ngx_http_crm_api_route(ngx_http_request_t *r);

#endif /* NGX_HTTP_CRM_API_H */
