/*
 * The link cache: what the redirect needs of each link, in a shared zone.
 */

#ifndef NGX_HTTP_CRM_LINKS_H
#define NGX_HTTP_CRM_LINKS_H

#include "ngx_http_crm_conf.h"
#include "crm_store_edge.h"


typedef enum {
    NGX_HTTP_CRM_LINK_MISS = 0,
    NGX_HTTP_CRM_LINK_ACTIVE,
    NGX_HTTP_CRM_LINK_DISABLED,
    NGX_HTTP_CRM_LINK_UNKNOWN
} ngx_http_crm_link_e;


/* crm_link_cache zone=name:size [ttl=] [negative_ttl=] [stale_if_error=]
   [negative_share=] */
char *ngx_http_crm_link_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Looks id (NUL-terminated) up; for an active link, also writes the
 * Location for click_id into *location (from r's pool), while the entry
 * cannot change.  An expired entry is a miss, unless stale is set and it
 * expired less than the zone's stale_if_error ago.
 */
ngx_http_crm_link_e ngx_http_crm_links_lookup(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const char *id, const char *click_id,
    ngx_str_t *location, ngx_uint_t stale);

/*
 * The count of changes so far: a load takes it when it starts, and what
 * it read is stored, or joined by later misses, only if its id has not
 * changed since.
 */
uint64_t ngx_http_crm_links_changes(ngx_http_crm_main_conf_t *mcf);

/* whether id changed through the API after changes was taken */
ngx_uint_t ngx_http_crm_links_changed_since(ngx_http_crm_main_conf_t *mcf,
    const u_char *id, uint64_t changes);

/* stores a load's result; NGX_DECLINED when the link changed meanwhile */
ngx_int_t ngx_http_crm_links_store(ngx_http_crm_main_conf_t *mcf,
    const u_char *id, const crm_edge_link_t *link, uint64_t changes);

/* drops id at once, after a change through the API */
void ngx_http_crm_links_forget(ngx_http_crm_main_conf_t *mcf,
    const u_char *id);

/*
 * Drops every entry, and every load under way, when changes may have gone
 * unheard (the host had no listener on crm_links for a while)
 */
void ngx_http_crm_links_forget_all(ngx_http_crm_main_conf_t *mcf);

#endif /* NGX_HTTP_CRM_LINKS_H */
