/*
 * Affiliate links: the caller's own, each with its commission terms and
 * counters.
 *
 *   POST /affiliate/links          create
 *   GET /affiliate/links           list, newest first, paginated
 *   GET /affiliate/links/{id}      one, with its ETag
 *   PATCH /affiliate/links/{id}    target_url, name, status; If-Match
 *   PATCH /admin/links/{id}        an administrator's block, on any link
 *
 * A link of another account answers exactly like a missing one; admins
 * see their own links only, but for the block.  Every change writes its
 * audit row in its transaction, and a change the redirect reads (target,
 * status, block) is recorded with crm_call_changed() so that the
 * redirect cache drops the link at once.  Targets must be on a host the
 * operator allows, and an account makes at most conf->link_limit links in
 * conf->link_period seconds (429 with Retry-After beyond).  The tracking
 * URL is derived from the configured public URL, never stored.
 */

#ifndef CRM_LINKS_H
#define CRM_LINKS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_links_create;
extern const crm_endpoint_t  crm_links_list;
extern const crm_endpoint_t  crm_links_get;
extern const crm_endpoint_t  crm_links_update;
extern const crm_endpoint_t  crm_links_admin_update;

#endif /* CRM_LINKS_H */
