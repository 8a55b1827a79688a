/*
 * Method + path routing over a static table.  Patterns are literal
 * segments and "{name}" placeholders that match one non-empty segment.
 * A trailing slash is not significant ("/leads" and "/leads/" are the
 * same route), so clients of the FastAPI service keep working.
 */

#ifndef CRM_ROUTER_H
#define CRM_ROUTER_H

#include "crm_error.h"
#include "crm_str.h"


#define CRM_ROUTE_MAX_PARAMS  4


enum {
    CRM_M_GET    = 0x01,
    CRM_M_HEAD   = 0x02,
    CRM_M_POST   = 0x04,
    CRM_M_PUT    = 0x08,
    CRM_M_PATCH  = 0x10,
    CRM_M_DELETE = 0x20
};


typedef struct {
    unsigned      method;       /* one CRM_M_* bit */
    const char   *pattern;
    const void   *data;         /* what the caller dispatches to */
} crm_route_t;


typedef struct {
    crm_str_t     params[CRM_ROUTE_MAX_PARAMS];   /* point into the path */
    size_t        nparams;
} crm_route_match_t;


/*
 * Finds the route for method and path.  CRM_OK sets *route and *match;
 * CRM_E_NOT_FOUND when no pattern matches the path; CRM_E_METHOD when some
 * do but not with this method, with *allowed the mask of methods that do.
 */
crm_status_e crm_router_match(const crm_route_t *routes, size_t nroutes,
    unsigned method, crm_str_t path, const crm_route_t **route,
    crm_route_match_t *match, unsigned *allowed);

/* "GET" for CRM_M_GET; "" for anything but one method bit */
const char *crm_router_method_name(unsigned method);

/* CRM_M_GET for "GET" (case matters, as in HTTP); 0 for an unknown name */
unsigned crm_router_method_parse(const char *name, size_t len);

/* writes "GET, POST" style text for an Allow header; returns its length */
size_t crm_router_allow_header(unsigned allowed, char *buf, size_t size);

#endif /* CRM_ROUTER_H */
