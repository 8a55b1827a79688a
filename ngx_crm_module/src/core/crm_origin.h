/*
 * Web origins, as CORS compares them: "scheme://host[:port]" (RFC 6454),
 * scheme http or https, the host a DNS name or an IPv4 address, written
 * lower-case and without the scheme's own port, so that two spellings of
 * one origin compare equal.  An allowed origin may be a pattern: a host
 * of "*.example.com" matches any subdomain of example.com (one label or
 * more, not example.com itself) on the pattern's scheme and port.
 */

#ifndef CRM_ORIGIN_H
#define CRM_ORIGIN_H

#include "crm_str.h"


#define CRM_ORIGIN_MAX  253


typedef struct {
    char      text[CRM_ORIGIN_MAX + 1];     /* canonical, NUL-terminated */
    size_t    len;
    size_t    scheme_len;                   /* "https://" */
    int       pattern;                      /* "*.": text is scheme, then
                                               ".domain[:port]" */
} crm_origin_t;


/*
 * Parses an origin into its canonical form; a pattern only when allowed.
 * Returns 0, or -1 for anything else: a path, a query, userinfo, another
 * scheme, an empty or malformed host, a port outside 1..65535, "null".
 */
int crm_origin_parse(crm_str_t s, int allow_pattern, crm_origin_t *o);

/* whether origin (no pattern) is allowed by allowed (one, or a pattern) */
int crm_origin_matches(const crm_origin_t *allowed,
    const crm_origin_t *origin);

#endif /* CRM_ORIGIN_H */
