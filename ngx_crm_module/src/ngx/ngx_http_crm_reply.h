/*
 * Responses the glue writes itself: headers, problem documents, bodies.
 */

#ifndef NGX_HTTP_CRM_REPLY_H
#define NGX_HTTP_CRM_REPLY_H

#include "ngx_http_crm_conf.h"


/* looks up $request_id for ngx_http_crm_request_id(); postconfiguration */
ngx_int_t ngx_http_crm_reply_init(ngx_conf_t *cf);

/*
 * r's $request_id (32 hex digits, in r's pool), which the access log can
 * print, and the response carries as X-Request-Id (added once, however
 * often this is called); NULL when there is none
 */
const char *ngx_http_crm_request_id(ngx_http_request_t *r);

/* appends a response header; name and value must outlive the request */
/* the first header named name (without case) in a headers list; NULL */
ngx_table_elt_t *ngx_http_crm_header(ngx_list_t *headers, const char *name);

ngx_int_t ngx_http_crm_add_header(ngx_http_request_t *r, const char *name,
    const char *value);

/*
 * Sends the RFC 9457 document for code with detail (and the request's
 * id), and Retry-After (1) for a 429 or a 503; returns what a content
 * handler returns.
 */
ngx_int_t ngx_http_crm_problem(ngx_http_request_t *r, crm_status_e code,
    const char *detail);

/*
 * sends status with a body of content_type (NULL: none, for a body of 0
 * bytes); the body must live as long as r
 */
ngx_int_t ngx_http_crm_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *content_type, u_char *body, size_t len);

#endif /* NGX_HTTP_CRM_REPLY_H */
