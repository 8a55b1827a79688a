/*
 * Web origins for CORS; see crm_origin.h.
 */

#include <stdlib.h>
#include <string.h>

#include "crm_origin.h"


static int crm_origin_host(const char *p, const char *last);


int
crm_origin_parse(crm_str_t s, int allow_pattern, crm_origin_t *o)
{
    char        *p, *last, *host, *colon;
    long         port, dflt;
    size_t       i;
    const char  *digit;

    memset(o, 0, sizeof(crm_origin_t));

    if (s.len == 0 || s.len > CRM_ORIGIN_MAX) {
        return -1;
    }

    for (i = 0; i < s.len; i++) {
        o->text[i] = (s.data[i] >= 'A' && s.data[i] <= 'Z')
                     ? (char) (s.data[i] - 'A' + 'a') : s.data[i];
    }

    p = o->text;
    last = o->text + s.len;

    if (s.len > 8 && memcmp(p, "https://", 8) == 0) {
        o->scheme_len = 8;
        dflt = 443;

    } else if (s.len > 7 && memcmp(p, "http://", 7) == 0) {
        o->scheme_len = 7;
        dflt = 80;

    } else {
        return -1;
    }

    host = p + o->scheme_len;

    if (last - host > 2 && host[0] == '*' && host[1] == '.') {
        if (!allow_pattern) {
            return -1;
        }

        o->pattern = 1;
        host += 2;
    }

    colon = memchr(host, ':', (size_t) (last - host));

    if (crm_origin_host(host, colon != NULL ? colon : last) != 0) {
        return -1;
    }

    if (colon != NULL) {
        if (last - colon < 2 || last - colon > 6) {
            return -1;
        }

        port = 0;

        for (digit = colon + 1; digit < last; digit++) {
            if (*digit < '0' || *digit > '9') {
                return -1;
            }

            port = port * 10 + (*digit - '0');
        }

        if (port < 1 || port > 65535) {
            return -1;
        }

        /* the scheme's own port is no port at all */
        if (port == dflt) {
            last = colon;
        }
    }

    if (o->pattern) {
        /* "https://" then ".domain[:port]": the "*" goes */
        memmove(p + o->scheme_len, host - 1, (size_t) (last - host + 1));
        last -= 1;
    }

    *last = '\0';
    o->len = (size_t) (last - p);

    return 0;
}


int
crm_origin_matches(const crm_origin_t *allowed, const crm_origin_t *origin)
{
    size_t       suffix;
    const char  *label;

    if (origin->pattern) {
        return 0;
    }

    if (!allowed->pattern) {
        return allowed->len == origin->len
               && memcmp(allowed->text, origin->text, origin->len) == 0;
    }

    /* the scheme, at least one label, then the domain and port */
    suffix = allowed->len - allowed->scheme_len;

    if (origin->len <= allowed->scheme_len + suffix
        || memcmp(origin->text, allowed->text, allowed->scheme_len) != 0
        || memcmp(origin->text + origin->len - suffix,
                  allowed->text + allowed->scheme_len, suffix) != 0)
    {
        return 0;
    }

    /* the labels before the domain: no port of their own */
    label = origin->text + allowed->scheme_len;

    return memchr(label, ':', origin->len - suffix - allowed->scheme_len)
           == NULL;
}


/* a DNS name or an IPv4 address: letters, digits, "-", inner dots */
static int
crm_origin_host(const char *p, const char *last)
{
    const char  *start;

    if (p == last || *p == '.' || last[-1] == '.') {
        return -1;
    }

    for (start = p; p < last; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || (*p == '.' && p > start && p[-1] != '.')))
        {
            return -1;
        }
    }

    return 0;
}
