/*
 * Affiliate targets: what a stored redirect target may be, and the
 * Location a redirect sends.
 */

#ifndef CRM_URL_H
#define CRM_URL_H

#include <stddef.h>

#include "crm_ids.h"
#include "crm_str.h"


#define CRM_URL_MAX  2048


/*
 * NULL when s is an acceptable redirect target, else why not, as a message
 * for the client ("must be an absolute http or https URL", ...).
 * Acceptable: 1..CRM_URL_MAX bytes of printable ASCII (0x21..0x7e: no
 * spaces, control characters or raw non-ASCII bytes, which must be
 * percent-encoded); scheme "http" or "https" in any case followed by
 * "://"; an authority without user-info ("@"), whose host is a hostname
 * (crm_hostname_valid), a dotted IPv4 address or a bracketed IPv6
 * address, with an optional port 1..65535; then an optional path, query
 * and fragment.  No backslash anywhere.  So "javascript:...", "//evil",
 * "http:/x", "https://user@host" and a CR or LF are all refused.
 */
const char *crm_url_check_target(crm_str_t s);

/*
 * The hosts that targets may name, from the operator: exact names or
 * addresses ("shop.example.com", "127.0.0.1", "[::1]") and "*.suffix"
 * patterns, which match any name ending in ".suffix" (not the suffix
 * itself), all in lower case.  An empty list allows any host.
 */
typedef struct {
    const crm_str_t  *entries;
    size_t            n;
} crm_host_list_t;


/* NULL when pattern is a valid entry of a host list, else why not */
const char *crm_host_pattern_check(crm_str_t pattern);

/*
 * The host of a target that crm_url_check_target() accepted: lower case,
 * without a port or a trailing dot, IPv6 with its brackets, into out
 * (CRM_URL_HOST_MAX bytes, NUL-terminated).  Returns its length.
 */
#define CRM_URL_HOST_MAX  256

size_t crm_url_host(crm_str_t target, char *out);

/* 1 when host (from crm_url_host()) is allowed by list (NULL: any) */
int crm_host_list_allows(const crm_host_list_t *list, crm_str_t host);

/*
 * Writes into out (size cap, NUL-terminated) the Location for a redirect
 * to target (already checked) with "ref=<link_id>&click_id=<click_id>"
 * added to its query, before any fragment (which starts at the first
 * "#"); the ids are C strings.  Parameters named "ref" or "click_id"
 * already in the target's query are dropped, so the values the receiver
 * reads are ours, and so are empty ones ("a=1&&b=2"); the target's other
 * parameters keep their order and spelling.  "https://s.example/p?a=1#top"
 * with ids L and C becomes "https://s.example/p?a=1&ref=L&click_id=C#top".
 * Returns the length, or 0 when out is too small.
 */
size_t crm_url_redirect(crm_str_t target, const char *link_id,
    const char *click_id, char *out, size_t cap);

/*
 * A cap that holds the crm_url_redirect() output, NUL included, for any
 * target of len bytes: at worst the target gains a "?" (or an "&" after
 * its last parameter), "ref=&click_id=" and the two ids.
 */
#define crm_url_redirect_size(len)                                            \
    ((len) + sizeof("?ref=&click_id=") + CRM_LINK_ID_LEN + CRM_CLICK_ID_LEN)

#endif /* CRM_URL_H */
