/*
 * One outbound HTTP exchange as the services see it: a request they build
 * and a response they read, with nothing of the client library or of
 * nginx in either.  The glue (ngx_http_crm_outbound.c) performs it with
 * libcurl in the event loop, under these rules: https only, except to the
 * operator's allowed ranges; the address connected must be public unless
 * allowed; no redirects followed; connect and total time capped; at most
 * CRM_HTTP_BODY_MAX bytes of response.
 */

#ifndef CRM_HTTP_H
#define CRM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "crm_arena.h"
#include "crm_str.h"


#define CRM_HTTP_BODY_MAX     (1024 * 1024)
#define CRM_HTTP_HEADERS_MAX  64


typedef struct crm_http_header_s  crm_http_header_t;

struct crm_http_header_s {
    crm_http_header_t  *next;
    const char         *name;
    const char         *value;
};


typedef struct {
    const char          *method;        /* "GET", "POST", "PATCH" */
    const char          *url;
    crm_http_header_t   *headers;       /* in the order added */
    crm_http_header_t   *last;
    const char          *body;          /* NULL: none */
    size_t               body_len;
    const char          *provider;      /* for logs and problem documents */
} crm_http_request_t;


typedef enum {
    CRM_HTTP_ANSWERED = 0,      /* status and body are the provider's */
    CRM_HTTP_REFUSED,           /* the address or scheme was not allowed */
    CRM_HTTP_UNREACHABLE,       /* no name, no route, connection refused */
    CRM_HTTP_TIMED_OUT,         /* connect or total time ran out */
    CRM_HTTP_TOO_LARGE,         /* more than CRM_HTTP_BODY_MAX */
    CRM_HTTP_FAILED             /* TLS, protocol or another failure */
} crm_http_outcome_e;


typedef struct {
    crm_http_outcome_e   outcome;
    unsigned             status;        /* with CRM_HTTP_ANSWERED */
    char                *body;          /* malloc'd, NUL-terminated */
    size_t               len;
    crm_http_header_t   *headers;       /* malloc'd, in the order received */
    size_t               nheaders;
    int64_t              duration_ms;
    char                 error[256];    /* why, when not answered */
} crm_http_response_t;


/* adds a request header; name and value are copied into the arena */
int crm_http_request_header(crm_http_request_t *req, crm_arena_t *arena,
    const char *name, const char *value);

/*
 * Sets a request header: the value of the first one named name (case-
 * insensitive) is replaced, or the header is added
 */
int crm_http_request_set_header(crm_http_request_t *req, crm_arena_t *arena,
    const char *name, const char *value);

/* a response header by name (case-insensitive), the first; NULL if none */
const char *crm_http_response_header(const crm_http_response_t *res,
    const char *name);

/*
 * Records a response header line as received ("Name: value\r\n"); lines
 * beyond CRM_HTTP_HEADERS_MAX, status lines and blank lines are skipped.
 * A new status line (a 100 Continue before the answer) drops the headers
 * of the one before.  0, or -1 when out of memory.
 */
int crm_http_response_header_line(crm_http_response_t *res,
    const char *line, size_t len);

/* frees the body and headers; the response can then be reused */
void crm_http_response_clear(crm_http_response_t *res);

/* Retry-After in seconds (delta form), or 0 when absent or a date */
unsigned crm_http_retry_after(const crm_http_response_t *res);

#endif /* CRM_HTTP_H */
