/*
 * Affiliate links: the caller's own, each with its commission terms and
 * counters.
 *
 *   POST /affiliate/links          create
 *   GET /affiliate/links           list, newest first, paginated
 *   GET /affiliate/links/{id}      one, with its ETag
 *   PATCH /affiliate/links/{id}    target_url, name, status; If-Match
 *
 * A link of another account answers exactly like a missing one; admins
 * see their own links only.  Every change writes its audit row in its
 * transaction, and a changed link is named in call->link_changed so that
 * the redirect cache drops it.  The tracking URL is derived from the
 * configured public URL, never stored.
 */

#ifndef CRM_LINKS_H
#define CRM_LINKS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_links_create;
extern const crm_endpoint_t  crm_links_list;
extern const crm_endpoint_t  crm_links_get;
extern const crm_endpoint_t  crm_links_update;

#endif /* CRM_LINKS_H */
