/*
 * What the providers share; see crm_provider.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "crm_json.h"
#include "crm_provider.h"


extern const crm_provider_t  crm_provider_klaviyo;
extern const crm_provider_t  crm_provider_salesforce;
extern const crm_provider_t  crm_provider_creatio;


const crm_provider_t  *const crm_providers[] = {
    &crm_provider_klaviyo,
    &crm_provider_salesforce,
    &crm_provider_creatio,
    NULL
};


void
crm_provider_init(void)
{
    /* before any parse, in the process's main thread (libxml2's rule) */
    xmlInitParser();
}


const crm_provider_t *
crm_provider_find(crm_str_t type)
{
    const crm_provider_t  *const *p;

    for (p = crm_providers; *p != NULL; p++) {
        if (crm_str_eq(type, (*p)->type)) {
            return *p;
        }
    }

    return NULL;
}


crm_status_e
crm_provider_request(crm_provider_op_t *op, const char *method,
    const char *url, crm_error_t *err)
{
    memset(&op->req, 0, sizeof(crm_http_request_t));

    op->req.method = method;
    op->req.url = crm_arena_strdup(op->arena, crm_str_c(url));
    op->req.provider = op->provider->name;

    if (op->req.url == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


crm_status_e
crm_provider_settings(yajl_val settings, const crm_json_field_t *fields,
    size_t nfields, void *out, crm_error_t *err)
{
    char          field[sizeof(err->field)];
    crm_status_e  rc;

    if (settings == NULL) {
        return CRM_OK;
    }

    rc = crm_json_decode(settings, fields, nfields, out, err);

    if (rc == CRM_E_INVALID && err->field[0] != '\0') {
        snprintf(field, sizeof(field), "settings.%.50s", err->field);
        memcpy(err->field, field, sizeof(field));
    }

    return rc;
}


crm_status_e
crm_provider_failed(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    const char  *name;

    name = op->provider->name;

    switch (res->outcome) {

    case CRM_HTTP_ANSWERED:
        break;

    case CRM_HTTP_TIMED_OUT:
        crm_error_set(err, CRM_E_GATEWAY_TIMEOUT, NULL,
                      "%s did not answer in time", name);
        return crm_error_cause(err, "%s", res->error);

    case CRM_HTTP_REFUSED:
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s cannot be called there: %s", name, res->error);
        return err->code;

    case CRM_HTTP_TOO_LARGE:
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s answered more than 1 MiB", name);

    default:
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s cannot be reached", name);
        return crm_error_cause(err, "%s", res->error);
    }

    if (res->status == 429) {
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s is limiting the rate of calls", name);
        err->retry_after = crm_http_retry_after(res);
        return err->code;
    }

    if (res->status >= 300 && res->status < 400) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s answered with a redirect, which is not "
                             "followed", name);
    }

    if (res->status >= 500) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s failed (HTTP %u)", name, res->status);
    }

    return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                         "%s gave an answer that cannot be read (HTTP %u)",
                         name, res->status);
}


yajl_val
crm_provider_json(const crm_http_response_t *res)
{
    yajl_val            root;
    crm_error_t         err;
    crm_json_limits_t   limits;

    if (res->body == NULL) {
        return NULL;
    }

    limits.max_body = CRM_HTTP_BODY_MAX;
    limits.max_depth = 32;

    if (crm_json_parse(res->body, res->len, &limits, &root, &err) != CRM_OK)
    {
        return NULL;
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return NULL;
    }

    return root;
}


crm_status_e
crm_provider_account(crm_provider_op_t *op, const char *name,
    const char *value, crm_error_t *err)
{
    crm_provider_field_t  *f;

    f = crm_arena_alloc(op->arena, sizeof(crm_provider_field_t));
    if (f == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    f->name = name;

    if (value != NULL) {
        f->value = crm_arena_strdup(op->arena, crm_str_c(value));
        if (f->value == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }
    }

    if (op->account_last != NULL) {
        op->account_last->next = f;

    } else {
        op->account = f;
    }

    op->account_last = f;

    return CRM_OK;
}


const char *
crm_provider_string(yajl_val root, const char **path)
{
    yajl_val  v;

    v = yajl_tree_get(root, path, yajl_t_string);

    return v != NULL ? v->u.string : NULL;
}


/* where a session's log-in stands within a write operation */
enum {
    CRM_SESSION_NONE = 0,
    CRM_SESSION_FIRST,          /* before the operation's first request */
    CRM_SESSION_AGAIN           /* op->resend goes again after it */
};


int
crm_provider_session(crm_provider_op_t *op, const crm_http_response_t **res,
    crm_op_step_e *step, crm_status_e *rc, crm_error_t *err)
{
    unsigned               again;
    const crm_provider_t  *p;

    p = op->provider;

    if (p->has_session == NULL) {
        return 0;
    }

    *step = CRM_OP_MORE;

    if (op->session_step == CRM_SESSION_NONE) {

        if (*res == NULL && !p->has_session(op)) {
            op->session_step = CRM_SESSION_FIRST;

        } else if (*res != NULL && (*res)->outcome == CRM_HTTP_ANSWERED
                   && (*res)->status == 401 && !op->relogged)
        {
            op->relogged = 1;
            op->resend = op->req;
            op->session_step = CRM_SESSION_AGAIN;

        } else if (*res != NULL && (*res)->outcome == CRM_HTTP_ANSWERED
                   && (*res)->status == 401)
        {
            /*
             * the login took the credentials, the call refused the session
             * it gave (another login of the same user may have ended it):
             * the provider's to sort out, so tried again later
             */
            *step = CRM_OP_DONE;
            *rc = crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                                "%s refused the session its login gave",
                                p->name);
            return 1;

        } else {
            return 0;
        }

        *rc = p->login(op, err);
        if (*rc != CRM_OK) {
            *step = CRM_OP_DONE;
        }

        return 1;
    }

    again = (op->session_step == CRM_SESSION_AGAIN);
    op->session_step = CRM_SESSION_NONE;

    /* a login host where calls may not go: the settings are at fault */
    *rc = (*res)->outcome == CRM_HTTP_REFUSED
          ? crm_provider_write_failed(op, *res, NULL, err)
          : p->logged_in(op, *res, err);

    if (*rc == CRM_E_INVALID) {
        /* to the queue, refused credentials are the integration's fault */
        err->code = CRM_E_UNAUTHORIZED;
        err->field[0] = '\0';
        *rc = CRM_E_UNAUTHORIZED;
    }

    if (*rc != CRM_OK) {
        *step = CRM_OP_DONE;
        return 1;
    }

    if (!again) {
        *res = NULL;
        return 0;
    }

    op->req = op->resend;

    *rc = p->authorize(op, err);
    if (*rc != CRM_OK) {
        *step = CRM_OP_DONE;
    }

    return 1;
}


crm_status_e
crm_provider_write_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, const char *said, crm_error_t *err)
{
    const char  *name;
    unsigned     status;

    name = op->provider->name;
    status = res->status;

    if (res->outcome == CRM_HTTP_REFUSED) {
        /* settings that lead where calls may not go: the user's to fix */
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "%s cannot be called there: %s", name,
                             res->error);
    }

    if (res->outcome != CRM_HTTP_ANSWERED) {
        return crm_provider_failed(op, res, err);
    }

    if (status == 401 || status == 403) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "%s refused the credentials (HTTP %u)%s%.200s",
                             name, status, said != NULL ? ": " : "",
                             said != NULL ? said : "");
    }

    if (status == 503) {
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s is unavailable (HTTP 503)", name);
        err->retry_after = crm_http_retry_after(res);
        return err->code;
    }

    if (status >= 400 && status < 500 && status != 408 && status != 425
        && status != 429)
    {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "%s refused the data (HTTP %u)%s%.200s",
                             name, status, said != NULL ? ": " : "",
                             said != NULL ? said : "");
    }

    if (status == 408 || status == 425) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s asked for the call again (HTTP %u)",
                             name, status);
    }

    return crm_provider_failed(op, res, err);
}


crm_status_e
crm_provider_json_body(crm_provider_op_t *op, yajl_gen g,
    const char *content_type, crm_error_t *err)
{
    char    *body;
    size_t   len;

    /* finish frees g, whatever it returns */
    if (crm_json_gen_finish(g, &body, &len) != CRM_OK) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    op->req.body = crm_arena_strdup(op->arena, (crm_str_t) { body, len });
    op->req.body_len = len;

    free(body);

    if (op->req.body == NULL
        || crm_http_request_header(&op->req, op->arena, "Content-Type",
                                   content_type) != 0)
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


char *
crm_provider_query_escape(crm_provider_op_t *op, const char *s)
{
    char                 *out, *p;
    unsigned char         c;

    static const char     hex[] = "0123456789ABCDEF";

    out = crm_arena_alloc(op->arena, strlen(s) * 3 + 1);
    if (out == NULL) {
        return NULL;
    }

    for (p = out; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *p++ = (char) c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0x0f];
    }

    *p = '\0';

    return out;
}


const char *
crm_provider_clip(crm_provider_op_t *op, const char *s, size_t max)
{
    size_t  i, chars;

    if (s == NULL) {
        return NULL;
    }

    for (i = 0, chars = 0; s[i] != '\0'; i++) {
        /* a character starts at every byte that is not a continuation */
        if (((unsigned char) s[i] & 0xc0) != 0x80 && chars++ == max) {
            return crm_arena_strdup(op->arena, (crm_str_t) { s, i });
        }
    }

    return s;
}


int
crm_provider_split_name(crm_provider_op_t *op, const char *name,
    const char **first, const char **last)
{
    const char  *space, *rest;

    while (*name == ' ') {
        name++;
    }

    space = strchr(name, ' ');
    rest = space;

    while (rest != NULL && *rest == ' ') {
        rest++;
    }

    if (space == NULL || *rest == '\0') {
        *first = NULL;
        *last = space == NULL
                ? name
                : crm_arena_strdup(op->arena,
                                   (crm_str_t) { name,
                                                 (size_t) (space - name) });
        return *last != NULL ? 0 : -1;
    }

    *first = crm_arena_strdup(op->arena,
                              (crm_str_t) { name, (size_t) (space - name) });
    *last = rest;

    return *first != NULL ? 0 : -1;
}


char *
crm_provider_session_pack(const char *a, const char *b)
{
    char    *saved;
    size_t   n;

    if (a == NULL || b == NULL) {
        return NULL;
    }

    n = strlen(a) + strlen(b) + 2;

    saved = malloc(n);
    if (saved != NULL) {
        snprintf(saved, n, "%s\n%s", a, b);
    }

    return saved;
}


int
crm_provider_session_unpack(crm_provider_op_t *op, const char *saved,
    const char **a, const char **b)
{
    const char  *nl;

    nl = strchr(saved, '\n');

    if (nl == NULL || nl == saved || nl[1] == '\0') {
        return -1;
    }

    *a = crm_arena_strdup(op->arena,
                          (crm_str_t) { saved, (size_t) (nl - saved) });
    *b = crm_arena_strdup(op->arena, crm_str_c(nl + 1));

    return *a != NULL && *b != NULL ? 0 : -1;
}


void
crm_provider_event_text(const crm_provider_op_t *op, char *buf, size_t size)
{
    char                  amount[48];
    const crm_event_t    *e;
    const crm_contact_t  *c;

    e = op->event;
    c = op->contact;

    amount[0] = '\0';

    if (e->value_cents >= 0) {
        snprintf(amount, sizeof(amount), ", amount %lld.%02lld %s",
                 (long long) (e->value_cents / 100),
                 (long long) (e->value_cents % 100), e->currency);
    }

    snprintf(buf, size,
             "crm-gateway event %s at %s: lead %s, %s / %s, score %lld%s",
             e->id, e->time, c->lead_id, c->stage, c->substage,
             (long long) c->score, amount);
}
