/*
 * An identity provider's keys from a URL (crm_idp_keys_url), shared by
 * every worker through a zone and refreshed in the background.
 */

#ifndef NGX_HTTP_CRM_IDP_H
#define NGX_HTTP_CRM_IDP_H

#include "ngx_http_crm_conf.h"


/* crm_idp_keys_url url; at the http level */
char *ngx_http_crm_idp_keys_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the worker's current key set from the URL (NULL before the first) */
extern crm_jwk_set_t  *ngx_http_crm_idp_url_keys;

ngx_int_t ngx_http_crm_idp_init_process(ngx_cycle_t *cycle);
void ngx_http_crm_idp_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CRM_IDP_H */
