/*
 * Typed errors and the one table that turns them into HTTP: every layer
 * returns a crm_status_e, and only this file knows which status and which
 * RFC 9457 title a client sees for it.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crm_error.h"
#include "crm_json.h"
#include "crm_validate.h"


typedef struct {
    unsigned     status;
    const char  *title;
} crm_error_http_t;


static void crm_error_trim_utf8(char *buf, size_t size, int n);
static void crm_error_texts(const crm_error_t *err, char *field,
    char *message, const char **f, const char **m);
static void crm_error_join(const char *f, const char *m, char *buf,
    size_t size);
static const char *crm_error_safe_text(const char *s, char *buf,
    size_t size);
static int crm_error_gen_body(yajl_gen g, const crm_error_t *err,
    const char *request_id);


/* indexed by crm_status_e; CRM_OK never reaches a client as a problem */
static const crm_error_http_t  crm_error_http[CRM_E_LAST] = {
    [CRM_OK]             = { 200, "OK" },
    [CRM_E_MALFORMED]    = { 400, "Bad Request" },
    [CRM_E_UNAUTHORIZED] = { 401, "Unauthorized" },
    [CRM_E_FORBIDDEN]    = { 403, "Forbidden" },
    [CRM_E_NOT_FOUND]    = { 404, "Not Found" },
    [CRM_E_METHOD]       = { 405, "Method Not Allowed" },
    [CRM_E_CONFLICT]     = { 409, "Conflict" },
    [CRM_E_GONE]         = { 410, "Gone" },
    [CRM_E_PRECONDITION] = { 412, "Precondition Failed" },
    [CRM_E_TOO_LARGE]    = { 413, "Content Too Large" },
    [CRM_E_MEDIA_TYPE]   = { 415, "Unsupported Media Type" },
    [CRM_E_INVALID]      = { 422, "Unprocessable Content" },
    [CRM_E_RATE_LIMITED] = { 429, "Too Many Requests" },
    [CRM_E_INTERNAL]     = { 500, "Internal Server Error" },
    [CRM_E_UNAVAILABLE]  = { 503, "Service Unavailable" },
    [CRM_E_BAD_GATEWAY]  = { 502, "Bad Gateway" },
    [CRM_E_GATEWAY_TIMEOUT] = { 504, "Gateway Timeout" }
};


crm_status_e
crm_error_set(crm_error_t *err, crm_status_e code, const char *field,
    const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (err == NULL) {
        return code;
    }

    err->code = code;
    err->cause[0] = '\0';
    err->sqlstate[0] = '\0';
    err->retry_after = 0;

    n = snprintf(err->field, sizeof(err->field), "%s",
                 field != NULL ? field : "");
    crm_error_trim_utf8(err->field, sizeof(err->field), n);

    va_start(args, fmt);
    n = vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);

    crm_error_trim_utf8(err->message, sizeof(err->message), n);

    return code;
}


crm_status_e
crm_error_cause(crm_error_t *err, const char *fmt, ...)
{
    int      n;
    char    *p;
    va_list  args;

    if (err == NULL) {
        return CRM_E_INTERNAL;
    }

    va_start(args, fmt);
    n = vsnprintf(err->cause, sizeof(err->cause), fmt, args);
    va_end(args);

    crm_error_trim_utf8(err->cause, sizeof(err->cause), n);

    /* one log line: libpq's messages end in, and may hold, newlines */
    for (p = err->cause; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = (p[1] == '\0') ? '\0' : ' ';
        }
    }

    return err->code;
}


unsigned
crm_error_http_status(crm_status_e code)
{
    if ((unsigned) code >= CRM_E_LAST) {
        return 500;
    }

    return crm_error_http[code].status;
}


crm_status_e
crm_error_for_http_status(unsigned status)
{
    crm_status_e  code;

    for (code = CRM_E_MALFORMED; code < CRM_E_LAST; code++) {
        if (crm_error_http[code].status == status) {
            return code;
        }
    }

    return CRM_OK;
}


const char *
crm_error_title(crm_status_e code)
{
    if ((unsigned) code >= CRM_E_LAST) {
        return crm_error_http[CRM_E_INTERNAL].title;
    }

    return crm_error_http[code].title;
}


crm_status_e
crm_problem_render(const crm_error_t *err, const char *request_id,
    char **body, size_t *len)
{
    yajl_gen  g;

    *body = NULL;
    *len = 0;

    g = crm_json_gen_new();
    if (g == NULL) {
        return CRM_E_INTERNAL;
    }

    if (crm_error_gen_body(g, err, request_id) != 0) {
        yajl_gen_free(g);
        return CRM_E_INTERNAL;
    }

    return crm_json_gen_finish(g, body, len);
}


/*
 * A message may carry bytes a service copied from the request; the
 * generator validates UTF-8 and would fail the whole body, turning a 422
 * into a 500, so anything invalid is replaced first.  An empty message is
 * the title.
 */
static void
crm_error_texts(const crm_error_t *err, char *field, char *message,
    const char **f, const char **m)
{
    *f = crm_error_safe_text(err->field, field, sizeof(err->field));
    *m = crm_error_safe_text(err->message, message, sizeof(err->message));

    if ((*m)[0] == '\0') {
        *m = crm_error_title(err->code);
    }
}


static void
crm_error_join(const char *f, const char *m, char *buf, size_t size)
{
    if (f[0] != '\0') {
        (void) snprintf(buf, size, "%s: %s", f, m);

    } else {
        (void) snprintf(buf, size, "%s", m);
    }
}


void
crm_error_detail(const crm_error_t *err, char *buf, size_t size)
{
    char         field[sizeof(err->field)];
    char         message[sizeof(err->message)];
    const char  *f, *m;

    crm_error_texts(err, field, message, &f, &m);
    crm_error_join(f, m, buf, size);
}


static int
crm_error_gen_body(yajl_gen g, const crm_error_t *err,
    const char *request_id)
{
    char         field[sizeof(err->field)];
    char         message[sizeof(err->message)];
    char         detail[CRM_ERROR_DETAIL_SIZE];
    const char  *title, *f, *m;

    title = crm_error_title(err->code);

    crm_error_texts(err, field, message, &f, &m);
    crm_error_join(f, m, detail, sizeof(detail));

    if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
        return -1;
    }

    if (crm_json_gen_kv_str(g, "type", "about:blank") != 0
        || crm_json_gen_kv_str(g, "title", title) != 0
        || crm_json_gen_kv_int(g, "status",
                               crm_error_http_status(err->code)) != 0
        || crm_json_gen_kv_str(g, "detail", detail) != 0)
    {
        return -1;
    }

    if (request_id != NULL && request_id[0] != '\0'
        && crm_json_gen_kv_str(g, "request_id", request_id) != 0)
    {
        return -1;
    }

    if (f[0] != '\0') {
        if (crm_json_gen_key(g, "errors") != 0
            || yajl_gen_array_open(g) != yajl_gen_status_ok
            || yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "field", f) != 0
            || crm_json_gen_kv_str(g, "message", m) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok
            || yajl_gen_array_close(g) != yajl_gen_status_ok)
        {
            return -1;
        }
    }

    if (yajl_gen_map_close(g) != yajl_gen_status_ok) {
        return -1;
    }

    return 0;
}


/*
 * snprintf cuts at a byte, possibly inside a multi-byte character; drop
 * the partial character so the text stays valid UTF-8
 */
static void
crm_error_trim_utf8(char *buf, size_t size, int n)
{
    size_t  len, i, need;

    if (n < 0) {
        buf[0] = '\0';
        return;
    }

    if ((size_t) n < size) {
        return;
    }

    len = size - 1;

    /* walk back over continuation bytes to the lead byte */
    i = len;
    while (i > 0 && ((unsigned char) buf[i - 1] & 0xc0) == 0x80) {
        i--;
    }

    if (i == 0) {
        buf[len] = '\0';
        return;
    }

    need = 1;
    if (((unsigned char) buf[i - 1] & 0xe0) == 0xc0) {
        need = 2;

    } else if (((unsigned char) buf[i - 1] & 0xf0) == 0xe0) {
        need = 3;

    } else if (((unsigned char) buf[i - 1] & 0xf8) == 0xf0) {
        need = 4;
    }

    if (len - (i - 1) < need) {
        buf[i - 1] = '\0';
    }
}


/* s itself when it is valid UTF-8, otherwise an ASCII copy with '?' */
static const char *
crm_error_safe_text(const char *s, char *buf, size_t size)
{
    size_t  i, len;

    len = strnlen(s, size - 1);

    if (crm_utf8_length((crm_str_t) { s, len }) != (size_t) -1) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        return buf;
    }

    for (i = 0; i < len; i++) {
        buf[i] = ((unsigned char) s[i] < 0x80) ? s[i] : '?';
    }

    buf[len] = '\0';

    return buf;
}
