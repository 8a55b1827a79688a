/*
 * Method + path routing over a static table.
 *
 * nginx hands us r->uri already percent-decoded and normalised, so
 * segments are compared literally: "%2F" cannot reappear as a separator
 * here, and an empty segment ("//") matches neither a literal nor a
 * placeholder.  The table is searched in order and the first route whose
 * pattern and method match wins, so a literal route ("/leads/export")
 * must come before a placeholder one ("/leads/{lead_id}") to take
 * precedence.  A table of a few dozen routes makes a linear scan cheaper
 * than building anything.
 */

#include "crm_router.h"


typedef struct {
    const char  *name;
    size_t       len;
    unsigned     method;
} crm_router_method_t;


static int crm_router_match_pattern(const char *pattern, crm_str_t path,
    crm_route_match_t *m);
static const char *crm_router_segment(const char *p, const char *end,
    const char **seg_end);


/* the order of the Allow header text */
static const crm_router_method_t  crm_router_methods[] = {
    { "GET",    3, CRM_M_GET },
    { "HEAD",   4, CRM_M_HEAD },
    { "POST",   4, CRM_M_POST },
    { "PUT",    3, CRM_M_PUT },
    { "PATCH",  5, CRM_M_PATCH },
    { "DELETE", 6, CRM_M_DELETE }
};


crm_status_e
crm_router_match(const crm_route_t *routes, size_t nroutes, unsigned method,
    crm_str_t path, const crm_route_t **route, crm_route_match_t *match,
    unsigned *allowed)
{
    size_t              i;
    crm_route_match_t   m;
    const crm_route_t  *found;

    *route = NULL;
    *allowed = 0;
    match->nparams = 0;

    found = NULL;

    for (i = 0; i < nroutes; i++) {

        if (!crm_router_match_pattern(routes[i].pattern, path, &m)) {
            continue;
        }

        *allowed |= routes[i].method;

        if (found == NULL && (routes[i].method & method)) {
            found = &routes[i];
            *match = m;
        }
    }

    if (found != NULL) {
        *route = found;
        return CRM_OK;
    }

    return *allowed ? CRM_E_METHOD : CRM_E_NOT_FOUND;
}


const char *
crm_router_method_name(unsigned method)
{
    size_t  i;

    for (i = 0; i < sizeof(crm_router_methods) / sizeof(crm_router_methods[0]);
         i++)
    {
        if (crm_router_methods[i].method == method) {
            return crm_router_methods[i].name;
        }
    }

    return "";
}


unsigned
crm_router_method_parse(const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < sizeof(crm_router_methods) / sizeof(crm_router_methods[0]);
         i++)
    {
        if (crm_router_methods[i].len == len
            && memcmp(crm_router_methods[i].name, name, len) == 0)
        {
            return crm_router_methods[i].method;
        }
    }

    return 0;
}


size_t
crm_router_allow_header(unsigned allowed, char *buf, size_t size)
{
    size_t  i, len, need;

    if (size == 0) {
        return 0;
    }

    len = 0;

    for (i = 0; i < sizeof(crm_router_methods) / sizeof(crm_router_methods[0]);
         i++)
    {
        if (!(allowed & crm_router_methods[i].method)) {
            continue;
        }

        need = crm_router_methods[i].len + (len > 0 ? 2 : 0);

        /* a method that does not fit whole is left out, never cut */
        if (len + need >= size) {
            break;
        }

        if (len > 0) {
            buf[len++] = ',';
            buf[len++] = ' ';
        }

        memcpy(&buf[len], crm_router_methods[i].name,
               crm_router_methods[i].len);
        len += crm_router_methods[i].len;
    }

    buf[len] = '\0';

    return len;
}


/*
 * Walks pattern and path segment by segment.  A slash followed by nothing
 * ends the path, which is what makes the trailing slash insignificant.
 */
static int
crm_router_match_pattern(const char *pattern, crm_str_t path,
    crm_route_match_t *m)
{
    size_t       plen, slen;
    const char  *p, *pend, *pseg_end, *s, *send, *sseg_end;

    m->nparams = 0;

    if (path.len == 0 || path.data[0] != '/' || pattern[0] != '/') {
        return 0;
    }

    p = pattern;
    pend = pattern + strlen(pattern);
    s = path.data;
    send = path.data + path.len;

    for ( ;; ) {
        p = crm_router_segment(p, pend, &pseg_end);
        s = crm_router_segment(s, send, &sseg_end);

        if (p == NULL || s == NULL) {
            return p == NULL && s == NULL;
        }

        plen = (size_t) (pseg_end - p);
        slen = (size_t) (sseg_end - s);

        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {

            if (slen == 0 || m->nparams == CRM_ROUTE_MAX_PARAMS) {
                return 0;
            }

            m->params[m->nparams].data = s;
            m->params[m->nparams].len = slen;
            m->nparams++;

        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return 0;
        }

        p = pseg_end;
        s = sseg_end;
    }
}


/*
 * p points at a '/' or at end; returns the start of the next segment and
 * sets *seg_end, or returns NULL when no segment follows.
 */
static const char *
crm_router_segment(const char *p, const char *end, const char **seg_end)
{
    const char  *q;

    if (p == end || p + 1 == end) {
        return NULL;
    }

    p++;

    q = memchr(p, '/', (size_t) (end - p));

    *seg_end = (q != NULL) ? q : end;

    return p;
}
