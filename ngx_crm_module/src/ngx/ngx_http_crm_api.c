/*
 * The API content handler: request in, crm_call_t through the service
 * layer, response out.
 *
 * Routing, the credential check, body limits and JSON validation run in
 * the event loop (microseconds); the call then goes to the location's
 * thread pool, where crm_call_execute() uses the thread's own PostgreSQL
 * connection.  The thread sees only the call, which owns copies of
 * everything it needs: it never touches the request or its pool.  While
 * the task runs, r->main->blocked keeps the request alive even if the
 * client goes away.  A call that waited in the pool's queue longer than
 * crm_queue_timeout answers 503 without running: its client may have
 * given up, and late work only makes the queue longer.  A call whose
 * parse already replied (/healthz, from the probes' state) is answered in
 * the event loop, with no task.  An endpoint that talks to a provider
 * first (a CRM's validation) does so between its parse and its task,
 * through the event loop's outbound HTTP: one request at a time, each
 * answer handed back to the endpoint, no thread held meanwhile.
 *
 *   handler / body handler -> ngx_http_crm_api_proceed()
 *     proceed: caller not known yet (an endpoint with a provider)?
 *              post a task that loads it, NGX_DONE (done() proceeds)
 *              next outbound request?  start it, NGX_DONE
 *              (ngx_http_crm_api_answered() proceeds again)
 *              else a task?  post it, NGX_DONE (ngx_http_crm_api_done())
 *              else the reply
 */

#include "ngx_http_crm_api.h"
#include "ngx_http_crm_cors.h"
#include "ngx_http_crm_links.h"
#include "ngx_http_crm_outbound.h"
#include "ngx_http_crm_reply.h"
#include "ngx_http_crm_state.h"

#include "crm_clock.h"


/*
 * A pending task holds a timer: a worker that is shutting down (reload,
 * quit) exits as soon as no timers are left, and would otherwise drop the
 * requests still waiting on the pool.  Database work is bounded by the
 * connect and statement timeouts, so this only reports a stuck thread.
 */
#define NGX_HTTP_CRM_TASK_TIMEOUT  60000


typedef struct {
    ngx_http_request_t  *request;
    crm_call_t          *call;
    int64_t              queued_ms;         /* crm_clock_ms() when posted */
    ngx_msec_t           queue_timeout;     /* 0: none */
    ngx_uint_t           timed_out;
    ngx_uint_t           replica;           /* ask the replica first */
} ngx_http_crm_task_ctx_t;


static void ngx_http_crm_api_cleanup(void *data);
static unsigned ngx_http_crm_api_method(ngx_http_request_t *r);
static unsigned ngx_http_crm_api_method_named(ngx_str_t *name);
static void ngx_http_crm_api_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_crm_api_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_crm_api_post(ngx_http_request_t *r,
    crm_call_t *call);
static void ngx_http_crm_api_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_api_done(ngx_event_t *ev);
static ngx_int_t ngx_http_crm_api_respond(ngx_http_request_t *r,
    crm_call_t *call);
static ngx_int_t ngx_http_crm_api_headers(ngx_http_request_t *r,
    crm_call_t *call);
static ngx_int_t ngx_http_crm_api_proceed(ngx_http_request_t *r,
    crm_call_t *call, const crm_http_response_t *res);
static void ngx_http_crm_api_answered(void *data);


#define ngx_http_crm_header_value(h)                                          \
    ((h) ? (crm_str_t) { (const char *) (h)->value.data, (h)->value.len }     \
         : (crm_str_t) { "", 0 })


ngx_int_t
ngx_http_crm_api_handler(ngx_http_request_t *r)
{
    ngx_int_t    rc;
    crm_call_t  *call;

    call = ngx_http_crm_api_call(r);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (call->rc != CRM_OK) {
        goto respond;
    }

    if (ngx_http_crm_cors_is_preflight(r, NULL)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_crm_cors_preflight(r, call);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        return ngx_http_crm_api_respond(r, call);
    }

    if (call->endpoint->body == CRM_BODY_NONE) {
        if (crm_call_prepare(call) != CRM_OK) {
            goto respond;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_crm_api_proceed(r, call, NULL);

        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_crm_api_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

respond:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_crm_api_respond(r, call);
}


const crm_route_t *
ngx_http_crm_api_route(ngx_http_request_t *r)
{
    unsigned            allowed;
    crm_call_t         *call;
    crm_route_match_t   match;
    const crm_route_t  *route;

    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);
    if (call != NULL) {
        return call->route;
    }

    if (crm_router_match(crm_api_routes, crm_api_nroutes,
                         ngx_http_crm_api_method(r),
                         (crm_str_t) { (const char *) r->uri.data,
                                       r->uri.len },
                         &route, &match, &allowed)
        != CRM_OK)
    {
        return NULL;
    }

    return route;
}


/*
 * The request's call, made at the first need: the content handler, or a
 * variable ($crm_account_id for limit_req) before it.  Its route and
 * credential are checked here, once; the call records a failure of
 * either for the content handler to answer.
 */
crm_call_t *
ngx_http_crm_api_call(ngx_http_request_t *r)
{
    ngx_str_t                 asked;
    ngx_uint_t                preflight;
    crm_call_t               *call;
    const char               *id;
    crm_status_e              rc;
    ngx_pool_cleanup_t       *cln;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);
    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);

    /*
     * a call made for another URI or location (a variable read before a
     * "rewrite ... last") is not this one; it is freed with the request
     */
    if (call != NULL && call->conf == lcf->service
        && call->path.len == r->uri.len
        && ngx_strncmp(call->path.data, r->uri.data, r->uri.len) == 0)
    {
        return call;
    }

    if (!lcf->api || lcf->thread_pool == NULL || lcf->service == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "crm: api call in a location without "
                      "\"crm_api\" configuration");
        return NULL;
    }

    /* the cleanup exists before the call, so no path can leak it */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    call = crm_call_new(lcf->service);
    if (call == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_crm_api_cleanup;
    cln->data = call;

    ngx_http_set_ctx(r, call, ngx_http_crm_module);

    /* every answer names its request, as the access log does */
    id = ngx_http_crm_request_id(r);
    if (id != NULL) {
        (void) ngx_cpystrn((u_char *) call->request_id, (u_char *) id,
                           sizeof(call->request_id));
    }

    /*
     * a CORS preflight asks about the method it names, and carries no
     * credential; other requests have their credential checked first: an
     * unauthenticated body is never parsed
     */
    preflight = ngx_http_crm_cors_is_preflight(r, &asked);

    rc = crm_call_set_request(call,
             preflight ? ngx_http_crm_api_method_named(&asked)
                       : ngx_http_crm_api_method(r),
             (crm_str_t) { (const char *) r->uri.data, r->uri.len },
             (crm_str_t) { (const char *) r->args.data, r->args.len },
             (crm_str_t) { (const char *) r->connection->addr_text.data,
                           r->connection->addr_text.len },
             ngx_http_crm_header_value(r->headers_in.user_agent));

    if (rc == CRM_E_INTERNAL) {
        return call;
    }

    if (ngx_http_crm_api_headers(r, call) != NGX_OK) {
        (void) crm_call_fail(call, CRM_E_INTERNAL, "out of memory");
        return call;
    }

    if (preflight) {
        return call;
    }

    /* an unrouted request's token still names its caller, for limits */
    if (rc == CRM_OK) {
        (void) crm_call_authenticate(call, (int64_t) ngx_time());

    } else {
        crm_call_identify(call, (int64_t) ngx_time());
    }

    return call;
}


static void
ngx_http_crm_api_cleanup(void *data)
{
    crm_call_t  *call = data;

    /* the request is going away while a provider has not answered */
    if (call->http_exchange != NULL) {
        ngx_http_crm_outbound_cancel(call->http_exchange);
    }

    crm_call_free(call);
}


/* every request header, for the verifiers and the endpoints */
static ngx_int_t
ngx_http_crm_api_headers(ngx_http_request_t *r, crm_call_t *call)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (crm_call_add_request_header(call,
                (crm_str_t) { (const char *) h[i].key.data, h[i].key.len },
                (crm_str_t) { (const char *) h[i].value.data,
                              h[i].value.len })
            != CRM_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static unsigned
ngx_http_crm_api_method(ngx_http_request_t *r)
{
    switch (r->method) {

    case NGX_HTTP_GET:
    case NGX_HTTP_HEAD:
        /* HEAD is GET without a body; nginx drops the body for us */
        return CRM_M_GET;

    case NGX_HTTP_POST:
        return CRM_M_POST;

    case NGX_HTTP_PUT:
        return CRM_M_PUT;

    case NGX_HTTP_PATCH:
        return CRM_M_PATCH;

    case NGX_HTTP_DELETE:
        return CRM_M_DELETE;

    default:
        return 0;
    }
}


/* the method a CORS preflight asks about (HEAD is GET); 0 for others */
static unsigned
ngx_http_crm_api_method_named(ngx_str_t *name)
{
    unsigned  method;

    method = crm_router_method_parse((const char *) name->data, name->len);

    return method == CRM_M_HEAD ? CRM_M_GET : method;
}


static void
ngx_http_crm_api_body_handler(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_str_t         body;
    crm_call_t       *call;
    ngx_table_elt_t  *ct;

    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);

    if (ngx_http_crm_api_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ct = r->headers_in.content_type;

    if (crm_call_set_body(call, ngx_http_crm_header_value(ct),
                          (crm_str_t) { (const char *) body.data, body.len })
        != CRM_OK
        || crm_call_prepare(call) != CRM_OK)
    {
        ngx_http_finalize_request(r, ngx_http_crm_api_respond(r, call));
        return;
    }

    /* the request's count from reading the body is released at the end */
    rc = ngx_http_crm_api_proceed(r, call, NULL);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * The call's next step after its parse, or after an answer (res): its
 * next outbound request, its task, or its reply.  NGX_DONE while a step
 * is under way; the reply's status otherwise.
 */
static ngx_int_t
ngx_http_crm_api_proceed(ngx_http_request_t *r, crm_call_t *call,
    const crm_http_response_t *res)
{
    crm_http_request_t              *req;
    ngx_http_crm_loc_conf_t         *lcf;
    ngx_http_crm_outbound_policy_t   policy;

    /* who calls, and whether still active, before any provider hears */
    if (crm_call_needs_caller(call)) {
        if (ngx_http_crm_api_post(r, call) == NGX_OK) {
            return NGX_DONE;
        }

        return ngx_http_crm_api_respond(r, call);
    }

    if (crm_call_outbound(call, res, &req) == CRM_OK && req != NULL) {
        lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

        policy.allow = lcf->outbound_allow;
        policy.connect_timeout = lcf->outbound_connect_timeout;
        policy.timeout = lcf->outbound_timeout;

        /* the answer before is the endpoint's no more */
        crm_http_response_clear(&call->http);

        call->http_exchange = ngx_http_crm_outbound_start(req, &call->http,
                                  &policy, ngx_http_crm_api_answered, r,
                                  r->connection->log);
        if (call->http_exchange != NULL) {
            return NGX_DONE;
        }

        /* not even started: the endpoint hears why, as from an answer */
        return ngx_http_crm_api_proceed(r, call, &call->http);
    }

    if (crm_call_needs_thread(call)) {
        if (ngx_http_crm_api_post(r, call) == NGX_OK) {
            return NGX_DONE;
        }
    }

    return ngx_http_crm_api_respond(r, call);
}


/* an outbound exchange ended: the endpoint reads the answer */
static void
ngx_http_crm_api_answered(void *data)
{
    ngx_http_request_t *r = data;

    ngx_int_t          rc;
    crm_call_t        *call;
    ngx_connection_t  *c;

    c = r->connection;
    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);
    call->http_exchange = NULL;

    ngx_http_set_log_request(c->log, r);

    rc = ngx_http_crm_api_proceed(r, call, &call->http);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The body as one contiguous span.  The location's body buffer holds
 * crm_max_body_size (see the merge), so a body is never in a file; it may
 * still be in two buffers, when its start came with the request headers.
 */
static ngx_int_t
ngx_http_crm_api_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "crm: request body written to a file");
            return NGX_ERROR;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        body->data = cl->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_api_post(ngx_http_request_t *r, crm_call_t *call)
{
    ngx_thread_task_t        *task;
    ngx_http_crm_task_ctx_t  *ctx;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_crm_task_ctx_t));
    if (task == NULL) {
        crm_call_fail(call, CRM_E_INTERNAL, "out of memory");
        return NGX_ERROR;
    }

    ctx = task->ctx;
    ctx->request = r;
    ctx->call = call;
    ctx->queued_ms = crm_clock_ms();
    ctx->queue_timeout = lcf->queue_timeout;
    ctx->replica = crm_call_use_replica(call, ctx->queued_ms);

    task->handler = ngx_http_crm_api_thread;
    task->event.data = task;
    task->event.handler = ngx_http_crm_api_done;
    task->event.log = r->connection->log;

    if (ngx_http_crm_task_post(
            ngx_http_get_module_main_conf(r, ngx_http_crm_module),
            call->endpoint->slow ? NGX_HTTP_CRM_POOL_SLOW
                                 : NGX_HTTP_CRM_POOL_API,
            call->endpoint->slow ? lcf->slow_pool : lcf->thread_pool, task)
        != NGX_OK)
    {
        crm_call_fail(call, CRM_E_UNAVAILABLE, "server busy");
        return NGX_ERROR;
    }

    ngx_add_timer(&task->event, NGX_HTTP_CRM_TASK_TIMEOUT);

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


/* runs on a pool thread: only the call and the thread's connection */
static void
ngx_http_crm_api_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_task_ctx_t  *ctx = data;

    int64_t      waited;
    crm_call_t  *call;

    ngx_http_crm_task_started(ctx->call->endpoint->slow
                              ? NGX_HTTP_CRM_POOL_SLOW
                              : NGX_HTTP_CRM_POOL_API);

    call = ctx->call;
    waited = crm_clock_ms() - ctx->queued_ms;

    if (ctx->queue_timeout && waited > (int64_t) ctx->queue_timeout) {
        ctx->timed_out = 1;
        crm_call_fail(call, CRM_E_UNAVAILABLE, "server busy");
        crm_error_cause(&call->error, "waited %lld ms for a thread",
                        (long long) waited);
        return;
    }

    crm_call_execute(crm_db_for_thread(call->conf->db),
                     ctx->replica ? crm_db_for_thread(call->conf->replica)
                                  : NULL,
                     call);
}


static void
ngx_http_crm_api_done(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    ngx_int_t                  rc;
    crm_call_t                *call;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_crm_task_ctx_t   *ctx;
    ngx_http_crm_main_conf_t  *mcf;

    ctx = task->ctx;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "crm: database task still running after %ums",
                      NGX_HTTP_CRM_TASK_TIMEOUT);
        ev->timedout = 0;
        ngx_add_timer(ev, NGX_HTTP_CRM_TASK_TIMEOUT);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    r->main->blocked--;
    r->aio = 0;

    call = ctx->call;

    if (ctx->timed_out) {
        mcf = ngx_http_get_module_main_conf(r, ngx_http_crm_module);
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_QUEUE_TIMEOUTS, 1);
    }

    /* a task that only loaded the caller leaves the provider to come */
    rc = ngx_http_crm_api_proceed(r, call, NULL);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_crm_api_respond(ngx_http_request_t *r, crm_call_t *call)
{
    ngx_uint_t                 level;
    crm_reply_t               *reply;
    crm_header_t              *h;
    crm_changed_t             *changed;
    ngx_http_crm_main_conf_t  *mcf;

    crm_call_finish(call);
    reply = &call->reply;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_crm_module);

    ngx_http_crm_count(mcf, reply->status >= 500 ? NGX_HTTP_CRM_API_5XX
                            : reply->status >= 400 ? NGX_HTTP_CRM_API_4XX
                            : NGX_HTTP_CRM_API_2XX, 1);

    if (call->replica != CRM_REPLICA_NONE) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_REPLICA_READS
                                + call->replica - CRM_REPLICA_ANSWERED, 1);
    }

    /* the next reads bypass a replica that lost its connection until a
       probe finds it answering again */
    if (call->replica_lost) {
        call->conf->replica->health->up = 0;
    }

    /* a link changed here takes effect at once on this host */
    for (changed = call->changed; changed != NULL; changed = changed->next) {
        if (changed->kind == CRM_CHANGED_LINK && mcf->link_zone != NULL) {
            ngx_http_crm_links_forget(mcf, (const u_char *) changed->id);
        }
    }

    if (call->rc != CRM_OK && call->error.cause[0] != '\0') {
        level = call->rc == CRM_E_INTERNAL ? NGX_LOG_ERR
                : call->rc == CRM_E_UNAVAILABLE ? NGX_LOG_WARN
                : NGX_LOG_INFO;

        ngx_log_error(level, r->connection->log, 0, "crm: %s (%s)",
                      call->error.message, call->error.cause);
    }

    /*
     * preconditions are the services' (If-Match against the version, in
     * the same statement as the change): nginx's not-modified filter would
     * compare the request's If-Match with the new ETag of a successful
     * update and turn it into a 412
     */
    r->disable_not_modified = 1;

    /* replies carry tokens and personal data: never cache them */
    if (ngx_http_crm_add_header(r, "Cache-Control", "no-store")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the call, and its arena, live as long as the request */
    for (h = reply->headers; h != NULL; h = h->next) {
        if (ngx_http_crm_add_header(r, h->name.data, h->value.data)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* the body stays in the call, which the pool cleanup frees */
    return ngx_http_crm_send(r, reply->status, reply->content_type,
                             (u_char *) reply->body, reply->len);
}
