/*
 * nginx's own error pages in API locations, as problem documents.
 */

#ifndef NGX_HTTP_CRM_ERROR_FILTER_H
#define NGX_HTTP_CRM_ERROR_FILTER_H

#include "ngx_http_crm_conf.h"


ngx_int_t ngx_http_crm_error_filter_init(ngx_conf_t *cf);

#endif /* NGX_HTTP_CRM_ERROR_FILTER_H */
