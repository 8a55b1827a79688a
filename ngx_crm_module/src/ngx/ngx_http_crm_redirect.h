/*
 * GET /r/{affiliate_link_id}: the affiliate redirect.
 */

#ifndef NGX_HTTP_CRM_REDIRECT_H
#define NGX_HTTP_CRM_REDIRECT_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_redirect_handler(ngx_http_request_t *r);

#endif /* NGX_HTTP_CRM_REDIRECT_H */
