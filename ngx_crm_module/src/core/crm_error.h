/*
 * Typed errors shared by every layer, and the one table that maps them to
 * HTTP statuses and RFC 9457 problem+json bodies.
 */

#ifndef CRM_ERROR_H
#define CRM_ERROR_H

#include <stddef.h>


typedef enum {
    CRM_OK = 0,
    CRM_E_MALFORMED,        /* 400: unparseable request */
    CRM_E_UNAUTHORIZED,     /* 401: missing, invalid or expired credentials */
    CRM_E_FORBIDDEN,        /* 403: authenticated but not allowed */
    CRM_E_NOT_FOUND,        /* 404: missing or not the caller's */
    CRM_E_METHOD,           /* 405: path exists, method does not */
    CRM_E_CONFLICT,         /* 409 */
    CRM_E_GONE,             /* 410 */
    CRM_E_PRECONDITION,     /* 412 */
    CRM_E_TOO_LARGE,        /* 413 */
    CRM_E_MEDIA_TYPE,       /* 415 */
    CRM_E_INVALID,          /* 422: well-formed but fails validation */
    CRM_E_RATE_LIMITED,     /* 429 */
    CRM_E_INTERNAL,         /* 500: a bug or an unexpected library failure */
    CRM_E_UNAVAILABLE,      /* 503: the database cannot be reached */
    CRM_E_BAD_GATEWAY,      /* 502: a provider failed or answered garbage */
    CRM_E_GATEWAY_TIMEOUT,  /* 504: a provider did not answer in time */
    CRM_E_LAST
} crm_status_e;


typedef struct {
    crm_status_e  code;
    char          field[64];     /* offending field, "" when none */
    char          message[256];  /* safe to show to the client */
    char          cause[256];    /* for the error log only, never sent */
    char          sqlstate[6];   /* PostgreSQL's, "" when none */
    unsigned      retry_after;   /* seconds, for a 429 or 503; 0: 1 s */
} crm_error_t;


/*
 * Records an error and returns its code, so callers can write
 * "return crm_error_set(err, CRM_E_INVALID, "email", "must be ...");".
 * field may be NULL.  The message is printf-formatted.
 */
crm_status_e crm_error_set(crm_error_t *err, crm_status_e code,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* adds a log-only cause to an error already set; returns err->code */
crm_status_e crm_error_cause(crm_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

unsigned crm_error_http_status(crm_status_e code);

/* the code whose HTTP status is status, or CRM_OK when there is none */
crm_status_e crm_error_for_http_status(unsigned status);
const char *crm_error_title(crm_status_e code);

/* a problem document's "detail": "field: message", or the title */
#define CRM_ERROR_DETAIL_SIZE                                                 \
    (sizeof(((crm_error_t *) 0)->field) + sizeof(((crm_error_t *) 0)->message) \
     + 2)

void crm_error_detail(const crm_error_t *err, char *buf, size_t size);

/*
 * Renders err as an RFC 9457 problem+json document into a malloc'd buffer.
 * When err->message is empty the title is used as the detail.  When
 * err->field is set the body carries "errors": [{field, message}].  A
 * request_id (nginx's $request_id; NULL or "": none) is a member too, so
 * a client's report names the access and error log lines of its request.
 * Returns CRM_OK or CRM_E_INTERNAL (out of memory).
 */
crm_status_e crm_problem_render(const crm_error_t *err,
    const char *request_id, char **body, size_t *len);

#endif /* CRM_ERROR_H */
