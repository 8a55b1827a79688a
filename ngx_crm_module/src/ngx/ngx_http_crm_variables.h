/*
 * The module's nginx variables: $crm_account_id, $crm_role, $crm_route
 * and $crm_status_detail, for limit_req keys and log formats.
 */

#ifndef NGX_HTTP_CRM_VARIABLES_H
#define NGX_HTTP_CRM_VARIABLES_H

#include "ngx_http_crm_conf.h"


/* preconfiguration */
ngx_int_t ngx_http_crm_variables_add(ngx_conf_t *cf);

#endif /* NGX_HTTP_CRM_VARIABLES_H */
