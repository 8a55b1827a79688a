/*
 * Outbound HTTP exchanges; see crm_http.h.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crm_http.h"


static void crm_http_headers_free(crm_http_response_t *res);


int
crm_http_request_header(crm_http_request_t *req, crm_arena_t *arena,
    const char *name, const char *value)
{
    crm_http_header_t  *h;

    h = crm_arena_alloc(arena, sizeof(crm_http_header_t));
    if (h == NULL) {
        return -1;
    }

    h->name = crm_arena_strdup(arena, crm_str_c(name));
    h->value = crm_arena_strdup(arena, crm_str_c(value));

    if (h->name == NULL || h->value == NULL) {
        return -1;
    }

    if (req->last != NULL) {
        req->last->next = h;

    } else {
        req->headers = h;
    }

    req->last = h;

    return 0;
}


int
crm_http_request_set_header(crm_http_request_t *req, crm_arena_t *arena,
    const char *name, const char *value)
{
    crm_http_header_t  *h;

    for (h = req->headers; h != NULL; h = h->next) {
        if (strcasecmp(h->name, name) == 0) {
            h->value = crm_arena_strdup(arena, crm_str_c(value));
            return h->value != NULL ? 0 : -1;
        }
    }

    return crm_http_request_header(req, arena, name, value);
}


const char *
crm_http_response_header(const crm_http_response_t *res, const char *name)
{
    const crm_http_header_t  *h;

    for (h = res->headers; h != NULL; h = h->next) {
        if (strcasecmp(h->name, name) == 0) {
            return h->value;
        }
    }

    return NULL;
}


int
crm_http_response_header_line(crm_http_response_t *res, const char *line,
    size_t len)
{
    char               *p;
    size_t              n, v;
    crm_http_header_t  *h, **tail;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n')) {
        len--;
    }

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        crm_http_headers_free(res);
        return 0;
    }

    p = memchr(line, ':', len);
    if (p == NULL || p == line || res->nheaders == CRM_HTTP_HEADERS_MAX) {
        return 0;
    }

    n = (size_t) (p - line);
    v = n + 1;

    while (v < len && (line[v] == ' ' || line[v] == '\t')) {
        v++;
    }

    /* one allocation: the struct, then "name\0value\0" */
    h = malloc(sizeof(crm_http_header_t) + n + 1 + (len - v) + 1);
    if (h == NULL) {
        return -1;
    }

    p = (char *) (h + 1);
    memcpy(p, line, n);
    p[n] = '\0';
    memcpy(p + n + 1, line + v, len - v);
    p[n + 1 + len - v] = '\0';

    h->next = NULL;
    h->name = p;
    h->value = p + n + 1;

    for (tail = &res->headers; *tail != NULL; tail = &(*tail)->next) {
        /* to the end: the order received */
    }

    *tail = h;
    res->nheaders++;

    return 0;
}


static void
crm_http_headers_free(crm_http_response_t *res)
{
    crm_http_header_t  *h;

    for (h = res->headers; h != NULL; h = res->headers) {
        res->headers = h->next;
        free(h);
    }

    res->nheaders = 0;
}


void
crm_http_response_clear(crm_http_response_t *res)
{
    crm_http_headers_free(res);
    free(res->body);
    memset(res, 0, sizeof(crm_http_response_t));
}


unsigned
crm_http_retry_after(const crm_http_response_t *res)
{
    char          *end;
    const char    *v;
    unsigned long  n;

    v = crm_http_response_header(res, "Retry-After");
    if (v == NULL || v[0] < '0' || v[0] > '9') {
        return 0;
    }

    n = strtoul(v, &end, 10);
    if (*end != '\0' || n > 86400) {
        return n > 86400 ? 86400 : 0;
    }

    return (unsigned) n;
}
