/*
 * The life of one API call; see crm_call.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crm_call.h"
#include "crm_etag.h"
#include "crm_form.h"
#include "crm_health.h"
#include "crm_validate.h"
#include "crm_verify.h"


#define CRM_USER_AGENT_MAX  512


static crm_status_e crm_call_record(crm_call_t *call, crm_status_e rc);
static const char *crm_call_client_text(crm_call_t *call, crm_str_t s,
    size_t max);
static int crm_call_media_type_is(crm_str_t value, const char *type);
static void crm_call_execute_on(crm_db_t *db, crm_call_t *call);
static crm_status_e crm_call_run(crm_db_t *db, crm_call_t *call);
static crm_status_e crm_call_load_caller(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);


crm_call_t *
crm_call_new(const crm_service_conf_t *conf)
{
    crm_call_t  *call;

    call = calloc(1, sizeof(crm_call_t));
    if (call == NULL) {
        return NULL;
    }

    call->conf = conf;

    return call;
}


void
crm_call_free(crm_call_t *call)
{
    if (call == NULL) {
        return;
    }

    if (call->json != NULL) {
        yajl_tree_free(call->json);
    }

    crm_http_response_clear(&call->http);

    free(call->reply.body);
    crm_arena_free(&call->arena);
    free(call);
}


static crm_status_e
crm_call_record(crm_call_t *call, crm_status_e rc)
{
    call->rc = rc;
    call->error.code = rc;

    return rc;
}


crm_status_e
crm_call_fail(crm_call_t *call, crm_status_e code, const char *fmt, ...)
{
    va_list  ap;

    memset(&call->error, 0, sizeof(crm_error_t));

    va_start(ap, fmt);
    (void) vsnprintf(call->error.message, sizeof(call->error.message), fmt,
                     ap);
    va_end(ap);

    return crm_call_record(call, code);
}


/* a NUL-terminated copy of at most max bytes of printable ASCII */
static const char *
crm_call_client_text(crm_call_t *call, crm_str_t s, size_t max)
{
    char    *p;
    size_t   n;

    n = s.len < max ? s.len : max;

    p = crm_arena_alloc(&call->arena, n + 1);
    if (p == NULL) {
        return NULL;
    }

    crm_text_printable(s, p, n + 1);

    return p;
}


crm_status_e
crm_call_set_request(crm_call_t *call, unsigned method, crm_str_t path,
    crm_str_t query, crm_str_t ip, crm_str_t user_agent)
{
    char               *p;
    crm_status_e        rc;
    crm_error_t        *err;
    const crm_route_t  *route;

    err = &call->error;

    p = crm_arena_strdup(&call->arena, path);
    if (p == NULL) {
        goto nomem;
    }

    call->path.data = p;
    call->path.len = path.len;
    call->query.data = crm_arena_strdup(&call->arena, query);
    call->query.len = query.len;
    call->ip = crm_call_client_text(call, ip, 64);
    call->user_agent = crm_call_client_text(call, user_agent,
                                            CRM_USER_AGENT_MAX);

    if (call->query.data == NULL || call->ip == NULL
        || call->user_agent == NULL)
    {
        goto nomem;
    }

    rc = crm_router_match(crm_api_routes, crm_api_nroutes, method,
                          (crm_str_t) { p, path.len }, &route, &call->match,
                          &call->allowed);

    if (rc == CRM_E_NOT_FOUND) {
        crm_error_set(err, rc, NULL, "no such resource");
        return crm_call_record(call, rc);
    }

    if (rc == CRM_E_METHOD) {
        crm_error_set(err, rc, NULL, "method not allowed on this resource");
        return crm_call_record(call, rc);
    }

    call->route = route;
    call->endpoint = route->data;

    return crm_call_record(call, CRM_OK);

nomem:

    crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");

    return crm_call_record(call, CRM_E_INTERNAL);
}


crm_status_e
crm_call_add_request_header(crm_call_t *call, crm_str_t name,
    crm_str_t value)
{
    crm_header_t  *h;

    h = crm_arena_alloc(&call->arena, sizeof(crm_header_t));
    if (h == NULL) {
        return crm_call_fail(call, CRM_E_INTERNAL, "out of memory");
    }

    h->name.data = crm_arena_strdup(&call->arena, name);
    h->value.data = crm_arena_strdup(&call->arena, value);

    if (h->name.data == NULL || h->value.data == NULL) {
        return crm_call_fail(call, CRM_E_INTERNAL, "out of memory");
    }

    h->name.len = name.len;
    h->value.len = value.len;

    /* the newest first: the lookup meets the last of repeated ones */
    h->next = call->headers;
    call->headers = h;

    return CRM_OK;
}


crm_str_t
crm_call_header(const crm_call_t *call, const char *name)
{
    size_t         len;
    crm_header_t  *h;

    len = strlen(name);

    for (h = call->headers; h != NULL; h = h->next) {
        if (h->name.len == len && strncasecmp(h->name.data, name, len) == 0)
        {
            return h->value;
        }
    }

    return (crm_str_t) { "", 0 };
}


crm_status_e
crm_call_authenticate(crm_call_t *call, int64_t now)
{
    const crm_verifier_t  *v;

    call->now = now;
    v = call->endpoint->verifier;

    if (v == NULL || v->body) {
        return CRM_OK;
    }

    if (v->verify(call, &call->error) == CRM_OK) {
        return crm_call_record(call, CRM_OK);
    }

    if (!v->refusal_runs) {
        return crm_call_record(call, call->error.code);
    }

    call->refusal = crm_arena_alloc(&call->arena, sizeof(crm_error_t));
    if (call->refusal == NULL) {
        return crm_call_fail(call, CRM_E_INTERNAL, "out of memory");
    }

    *call->refusal = call->error;
    memset(&call->error, 0, sizeof(crm_error_t));

    return crm_call_record(call, CRM_OK);
}


void
crm_call_identify(crm_call_t *call, int64_t now)
{
    crm_error_t  err;

    if (call->endpoint != NULL) {
        return;
    }

    call->now = now;

    (void) crm_verify_bearer.verify(call, &err);
}


/* compares the media type of a Content-Type value, ignoring parameters */
static int
crm_call_media_type_is(crm_str_t value, const char *type)
{
    size_t  n, len;

    while (value.len && (value.data[0] == ' ' || value.data[0] == '\t')) {
        value.data++;
        value.len--;
    }

    for (len = 0; len < value.len; len++) {
        if (value.data[len] == ';' || value.data[len] == ' '
            || value.data[len] == '\t')
        {
            break;
        }
    }

    n = strlen(type);

    return len == n && strncasecmp(value.data, type, n) == 0;
}


crm_status_e
crm_call_set_body(crm_call_t *call, crm_str_t content_type, crm_str_t body)
{
    char          *p;
    crm_status_e   rc;
    crm_error_t   *err;

    err = &call->error;

    /* nginx has bounded the body already (crm_max_body_size) */

    /* a refused credential's body is never parsed, only its refusal run */
    if (call->refusal != NULL) {
        return CRM_OK;
    }

    if (body.len == 0 && call->endpoint->body == CRM_BODY_JSON_OPTIONAL) {
        return CRM_OK;
    }

    p = crm_arena_strdup(&call->arena, body);
    if (p == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        return crm_call_record(call, CRM_E_INTERNAL);
    }

    call->body.data = p;
    call->body.len = body.len;

    /* a signature over the raw body, checked before it is parsed */
    if (call->endpoint->verifier != NULL && call->endpoint->verifier->body)
    {
        rc = call->endpoint->verifier->verify(call, err);
        if (rc != CRM_OK) {
            return crm_call_record(call, rc);
        }
    }

    if (call->endpoint->body == CRM_BODY_JSON_OR_FORM
        && crm_call_media_type_is(content_type,
                                  "application/x-www-form-urlencoded"))
    {
        call->body_is_form = 1;
        return CRM_OK;
    }

    if (!crm_call_media_type_is(content_type, "application/json")) {
        crm_error_set(err, CRM_E_MEDIA_TYPE, NULL,
                      call->endpoint->body == CRM_BODY_JSON_OR_FORM
                      ? "Content-Type must be application/json or"
                        " application/x-www-form-urlencoded"
                      : "Content-Type must be application/json");
        return crm_call_record(call, CRM_E_MEDIA_TYPE);
    }

    rc = crm_json_parse(body.data, body.len, &call->conf->json, &call->json,
                        err);

    return crm_call_record(call, rc);
}


crm_status_e
crm_call_prepare(crm_call_t *call)
{
    if (call->endpoint->parse == NULL) {
        return CRM_OK;
    }

    return crm_call_record(call, call->endpoint->parse(call, &call->error));
}


crm_status_e
crm_call_outbound(crm_call_t *call, const crm_http_response_t *res,
    crm_http_request_t **req)
{
    *req = NULL;

    if (call->rc != CRM_OK || call->endpoint->outbound == NULL
        || call->reply.status != 0)
    {
        return call->rc;
    }

    crm_call_record(call, call->endpoint->outbound(call, res, req,
                                                    &call->error));

    if (*req == NULL) {
        call->outbound_done = 1;
    }

    return call->rc;
}


int
crm_call_needs_caller(const crm_call_t *call)
{
    return call->rc == CRM_OK && call->endpoint->outbound != NULL
           && call->endpoint->verifier != NULL
           && call->endpoint->verifier->account && call->caller == NULL;
}


int
crm_call_needs_thread(const crm_call_t *call)
{
    return call->rc == CRM_OK && call->endpoint->run != NULL
           && call->reply.status == 0 && !call->ran;
}


/*
 * Tokens carry a role, but the database decides: a deactivated account's
 * tokens stop working and a role change applies at once.
 */
static crm_status_e
crm_call_load_caller(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int            found;
    crm_status_e   rc;

    call->caller = crm_arena_alloc(&call->arena, sizeof(crm_account_t));
    if (call->caller == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (call->idp) {
        rc = crm_store_account_by_identity(db, call->claims.iss,
                                           call->claims.sub, call->caller,
                                           &found, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (!found) {
            return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                                 "no account for this identity yet: call "
                                 "POST /auth/bootstrap first");
        }

        memcpy(call->account_id, call->caller->id, CRM_UUID_LEN + 1);

    } else {
        rc = crm_store_account_by_id(db, call->account_id, call->caller,
                                     &found, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (!found || !call->caller->is_active) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "account is not active");
    }

    if (call->endpoint->admin && call->caller->role != CRM_ROLE_ADMIN)
    {
        return crm_error_set(err, CRM_E_FORBIDDEN, NULL,
                             "administrator role required");
    }

    return CRM_OK;
}


static void
crm_call_execute_on(crm_db_t *db, crm_call_t *call)
{
    if (db == NULL) {
        crm_error_set(&call->error, CRM_E_INTERNAL, NULL, "out of memory");
        crm_call_record(call, CRM_E_INTERNAL);
        return;
    }

    crm_call_record(call, crm_call_run(db, call));
}


int
crm_call_use_replica(crm_call_t *call, int64_t now_ms)
{
    const crm_db_health_t  *h;

    if (!call->endpoint->replica || call->endpoint->outbound != NULL
        || call->conf->replica == NULL)
    {
        return 0;
    }

    h = call->conf->replica->health;

    if (h->up == 1 && h->lag_ms >= 0
        && h->lag_ms <= call->conf->replica_max_lag_ms
        && now_ms - h->checked_ms <= 3 * CRM_HEALTH_PROBE_MS)
    {
        return 1;
    }

    call->replica = CRM_REPLICA_BYPASSED;

    return 0;
}


void
crm_call_execute(crm_db_t *db, crm_db_t *replica, crm_call_t *call)
{
    crm_status_e  rc;

    if (replica == NULL || db == NULL) {
        crm_call_execute_on(db, call);
        return;
    }

    /*
     * who may call is the primary's to say, so that a role or an account
     * changed a moment ago applies at once; what they read may lag
     */
    if (call->endpoint->verifier != NULL
        && call->endpoint->verifier->account && call->caller == NULL)
    {
        rc = crm_call_load_caller(db, call, &call->error);
        if (rc != CRM_OK) {
            crm_call_record(call, rc);
            return;
        }
    }

    rc = call->endpoint->run(replica, call, &call->error);
    call->ran = 1;

    /*
     * a statement that ran out of time would on the primary too, which
     * the replica is there to spare: that answer stands
     */
    if (rc == CRM_OK || strcmp(call->error.sqlstate, "57014") == 0) {
        call->replica = CRM_REPLICA_ANSWERED;
        crm_call_record(call, rc);
        return;
    }

    crm_db_rollback(replica);

    /*
     * lost, or behind (an account or a link the replica has not replayed
     * yet): the primary answers, from the run on
     */
    call->replica = CRM_REPLICA_FALLBACK;
    call->replica_lost = crm_db_unreachable(&call->error);
    call->ran = 0;
    call->outcome = NULL;
    free(call->reply.body);
    memset(&call->reply, 0, sizeof(crm_reply_t));
    memset(&call->error, 0, sizeof(crm_error_t));

    crm_call_execute_on(db, call);
}


/* the caller when the endpoint needs one, then the endpoint's run */
static crm_status_e
crm_call_run(crm_db_t *db, crm_call_t *call)
{
    crm_status_e  rc;

    /*
     * a signed callback comes from a sender, not from an account; a hot
     * read checks the caller itself, once an identity provider's user is
     * known by account id
     */
    if (call->endpoint->verifier != NULL
        && call->endpoint->verifier->account && call->caller == NULL
        && (!call->endpoint->caller_in_query || call->idp))
    {
        rc = crm_call_load_caller(db, call, &call->error);
        if (rc != CRM_OK) {
            return rc;
        }

        /* the provider comes next, in the event loop; then this again */
        if (call->endpoint->outbound != NULL && !call->outbound_done) {
            crm_db_rollback(db);
            return CRM_OK;
        }
    }

    rc = call->endpoint->run(db, call, &call->error);
    call->ran = 1;

    /* a failed run must not leave its transaction open on the connection */
    if (rc != CRM_OK) {
        crm_db_rollback(db);
    }

    return rc;
}


crm_status_e
crm_call_add_header(crm_call_t *call, const char *name, const char *value)
{
    crm_header_t  *h;

    h = crm_arena_alloc(&call->arena, sizeof(crm_header_t));
    if (h == NULL) {
        return CRM_E_INTERNAL;
    }

    h->name.data = crm_arena_strdup(&call->arena, crm_str_c(name));
    h->value.data = crm_arena_strdup(&call->arena, crm_str_c(value));

    if (h->name.data == NULL || h->value.data == NULL) {
        return CRM_E_INTERNAL;
    }

    h->name.len = strlen(name);
    h->value.len = strlen(value);

    if (call->reply.last != NULL) {
        call->reply.last->next = h;

    } else {
        call->reply.headers = h;
    }

    call->reply.last = h;

    return CRM_OK;
}


crm_status_e
crm_call_add_object_headers(crm_call_t *call, int version, const char *path,
    const char *id, crm_error_t *err)
{
    char    *loc;
    char     etag[CRM_ETAG_MAX];
    size_t   size;

    crm_etag_format(version, etag);

    if (crm_call_add_header(call, "ETag", etag) != CRM_OK) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (path == NULL) {
        return CRM_OK;
    }

    size = strlen(path) + strlen(id) + 1;

    loc = crm_arena_alloc(&call->arena, size);
    if (loc == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    snprintf(loc, size, "%s%s", path, id);

    if (crm_call_add_header(call, "Location", loc) != CRM_OK) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


crm_status_e
crm_call_changed(crm_call_t *call, crm_changed_e kind, const char *id,
    crm_error_t *err)
{
    crm_changed_t  *c;

    c = crm_arena_alloc(&call->arena, sizeof(crm_changed_t));
    if (c == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    c->id = crm_arena_strdup(&call->arena, crm_str_c(id));
    if (c->id == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    c->kind = kind;
    c->next = call->changed;
    call->changed = c;

    return CRM_OK;
}


crm_status_e
crm_call_query_text(crm_call_t *call, const char *name, size_t max,
    const char **out, crm_error_t *err)
{
    int            found;
    char          *buf;
    crm_status_e   rc;

    *out = NULL;

    buf = crm_arena_alloc(&call->arena, max + 1);
    if (buf == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    rc = crm_form_get(call->query, name, buf, max + 1, &found, err);
    if (rc != CRM_OK || !found) {
        return rc;
    }

    rc = crm_text_check(crm_str_c(buf), name, 1, max, 0, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *out = buf;

    return CRM_OK;
}


crm_status_e
crm_call_if_match(crm_call_t *call, const char **versions, crm_error_t *err)
{
    char  *out;

    out = crm_arena_alloc(&call->arena, CRM_IF_MATCH_MAX);
    if (out == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    *versions = crm_if_match_versions(crm_call_header(call, "If-Match"), out)
                ? out : NULL;

    return CRM_OK;
}


crm_status_e
crm_call_reply_page(crm_call_t *call, const void *rows, size_t nrows,
    unsigned limit, crm_call_item_pt item, crm_error_t *err)
{
    char          cursor[CRM_CURSOR_MAX];
    size_t        i, shown;
    yajl_gen      g;
    crm_cursor_t  at;

    shown = nrows > limit ? limit : nrows;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "items") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    memset(&at, 0, sizeof(crm_cursor_t));

    for (i = 0; i < shown; i++) {
        if (item(call, g, rows, i, &at) != 0) {
            goto failed;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok) {
        goto failed;
    }

    if (nrows > shown) {
        crm_cursor_encode(&at, cursor);
    }

    if (crm_json_gen_kv_str(g, "next_cursor", nrows > shown ? cursor : NULL)
        != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        goto failed;
    }

    return crm_call_reply_json(call, 200, g, err);

failed:

    yajl_gen_free(g);

    return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
}


crm_status_e
crm_call_reply_empty(crm_call_t *call, unsigned status)
{
    call->reply.status = status;
    call->reply.content_type = NULL;
    call->reply.body = NULL;
    call->reply.len = 0;

    return CRM_OK;
}


crm_status_e
crm_call_reply_json(crm_call_t *call, unsigned status, yajl_gen g,
    crm_error_t *err)
{
    crm_status_e  rc;

    rc = crm_json_gen_finish(g, &call->reply.body, &call->reply.len);
    if (rc != CRM_OK) {
        return crm_error_set(err, rc, NULL, "could not render the reply");
    }

    call->reply.status = status;
    call->reply.content_type = "application/json";

    return CRM_OK;
}


void
crm_call_finish(crm_call_t *call)
{
    char         *allow, retry[16];
    const char   *scheme;
    crm_reply_t  *reply;

    if (call->rc == CRM_OK) {
        return;
    }

    reply = &call->reply;

    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
    reply->headers = NULL;
    reply->last = NULL;

    reply->status = crm_error_http_status(call->rc);
    reply->content_type = "application/problem+json";

    if (crm_problem_render(&call->error, call->request_id, &reply->body,
                           &reply->len)
        != CRM_OK)
    {
        reply->status = 500;
        reply->content_type = "text/plain";
        return;
    }

    switch (call->rc) {

    case CRM_E_UNAUTHORIZED:
        scheme = call->endpoint != NULL && call->endpoint->verifier != NULL
                 ? call->endpoint->verifier->scheme : "Bearer";

        /* RFC 6750 3.1: a token was there, and it is not good */
        if (call->invalid_token && strcmp(scheme, "Bearer") == 0) {
            scheme = "Bearer error=\"invalid_token\"";
        }

        crm_call_add_header(call, "WWW-Authenticate", scheme);
        break;

    case CRM_E_UNAVAILABLE:
    case CRM_E_RATE_LIMITED:
        snprintf(retry, sizeof(retry), "%u",
                 call->error.retry_after ? call->error.retry_after : 1);
        crm_call_add_header(call, "Retry-After", retry);
        break;

    case CRM_E_BAD_GATEWAY:
        /* a provider that asked to be called later: so does the client */
        if (call->error.retry_after) {
            snprintf(retry, sizeof(retry), "%u", call->error.retry_after);
            crm_call_add_header(call, "Retry-After", retry);
        }

        break;

    case CRM_E_METHOD:
        allow = crm_arena_alloc(&call->arena, 64);
        if (allow != NULL) {
            /* the glue serves HEAD wherever GET is routed */
            crm_router_allow_header(call->allowed & CRM_M_GET
                                    ? call->allowed | CRM_M_HEAD
                                    : call->allowed, allow, 64);
            crm_call_add_header(call, "Allow", allow);
        }
        break;

    default:
        break;
    }
}
