/*
 * The API content handler: request in, crm_call_t through the service
 * layer, response out.
 *
 * Routing, the token check, body limits and JSON validation run in the
 * event loop (microseconds); the call then goes to the location's thread
 * pool, where crm_call_execute() uses the thread's own PostgreSQL
 * connection.  The thread sees only the call, which owns copies of
 * everything it needs: it never touches the request or its pool.  While
 * the task runs, r->main->blocked keeps the request alive even if the
 * client goes away.
 */

#include "ngx_http_crm_module.h"


/*
 * A pending task holds a timer: a worker that is shutting down (reload,
 * quit) exits as soon as no timers are left, and would otherwise drop the
 * requests still waiting on the pool.  Database work is bounded by the
 * connect and statement timeouts, so this only reports a stuck thread.
 */
#define NGX_HTTP_CRM_TASK_TIMEOUT  60000


typedef struct {
    crm_call_t        *call;
} ngx_http_crm_task_ctx_t;


static void ngx_http_crm_api_cleanup(void *data);
static unsigned ngx_http_crm_api_method(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_http_crm_api_header(ngx_http_request_t *r,
    const char *name);
static void ngx_http_crm_api_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_crm_api_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_crm_api_post(ngx_http_request_t *r,
    crm_call_t *call);
static void ngx_http_crm_api_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_api_done(ngx_event_t *ev);
static ngx_int_t ngx_http_crm_api_respond(ngx_http_request_t *r,
    crm_call_t *call);


#define ngx_http_crm_header_value(h)                                          \
    ((h) ? (crm_str_t) { (const char *) (h)->value.data, (h)->value.len }     \
         : (crm_str_t) { "", 0 })


ngx_int_t
ngx_http_crm_api_handler(ngx_http_request_t *r)
{
    crm_call_t               *call;
    ngx_int_t                 rc;
    ngx_pool_cleanup_t       *cln;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    if (lcf->thread_pool == NULL || lcf->service == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "crm: api handler runs in a location without "
                      "\"crm_api\" configuration");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the cleanup exists before the call, so no path can leak it */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call = crm_call_new(lcf->service);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_crm_api_cleanup;
    cln->data = call;

    ngx_http_set_ctx(r, call, ngx_http_crm_module);

    if (crm_call_set_request(call, ngx_http_crm_api_method(r),
            (crm_str_t) { (const char *) r->uri.data, r->uri.len },
            (crm_str_t) { (const char *) r->args.data, r->args.len },
            (crm_str_t) { (const char *) r->connection->addr_text.data,
                          r->connection->addr_text.len },
            ngx_http_crm_header_value(r->headers_in.user_agent))
        != CRM_OK
        || crm_call_set_if_match(call,
               ngx_http_crm_header_value(r->headers_in.if_match))
           != CRM_OK
        || crm_call_set_signed_headers(call,
               ngx_http_crm_header_value(
                   ngx_http_crm_api_header(r, "X-CRM-Signature")),
               ngx_http_crm_header_value(
                   ngx_http_crm_api_header(r, "Idempotency-Key")))
           != CRM_OK
        || crm_call_authenticate(call,
               ngx_http_crm_header_value(r->headers_in.authorization),
               (int64_t) ngx_time())
           != CRM_OK)
    {
        goto respond;
    }

    if (call->endpoint->body == CRM_BODY_NONE) {
        if (crm_call_prepare(call) != CRM_OK) {
            goto respond;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_crm_api_post(r, call);
        if (rc != NGX_OK) {
            goto respond;
        }

        r->main->count++;

        return NGX_DONE;
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


static void
ngx_http_crm_api_cleanup(void *data)
{
    crm_call_free(data);
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


/* the first request header called name; nginx indexes only its own */
static ngx_table_elt_t *
ngx_http_crm_api_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


static void
ngx_http_crm_api_body_handler(ngx_http_request_t *r)
{
    ngx_str_t    body;
    crm_call_t  *call;
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
        || crm_call_prepare(call) != CRM_OK
        || ngx_http_crm_api_post(r, call) != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_http_crm_api_respond(r, call));
        return;
    }

    /* the request's count from reading the body is released in _done() */
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
    ctx->call = call;

    task->handler = ngx_http_crm_api_thread;
    task->event.data = r;
    task->event.handler = ngx_http_crm_api_done;
    task->event.log = r->connection->log;

    if (ngx_thread_task_post(call->endpoint->slow ? lcf->slow_pool
                                                  : lcf->thread_pool,
                             task)
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

    crm_call_t  *call;

    call = ctx->call;

    crm_call_execute(crm_db_for_thread(call->conf->db), call);
}


static void
ngx_http_crm_api_done(ngx_event_t *ev)
{
    crm_call_t          *call;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ev->data;
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

    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);

    ngx_http_finalize_request(r, ngx_http_crm_api_respond(r, call));
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_crm_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_api_respond(ngx_http_request_t *r, crm_call_t *call)
{
    size_t        i;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_uint_t    level;
    ngx_chain_t   out;
    crm_reply_t  *reply;

    crm_call_finish(call);
    reply = &call->reply;

    if (call->rc != CRM_OK && call->error.cause[0] != '\0') {
        level = call->rc == CRM_E_INTERNAL ? NGX_LOG_ERR
                : call->rc == CRM_E_UNAVAILABLE ? NGX_LOG_WARN
                : NGX_LOG_INFO;

        ngx_log_error(level, r->connection->log, 0, "crm: %s (%s)",
                      call->error.message, call->error.cause);
    }

    r->headers_out.status = reply->status;
    r->headers_out.content_length_n = reply->len;

    /*
     * preconditions are the services' (If-Match against the version, in
     * the same statement as the change): nginx's not-modified filter would
     * compare the request's If-Match with the new ETag of a successful
     * update and turn it into a 412
     */
    r->disable_not_modified = 1;

    if (reply->content_type != NULL) {
        r->headers_out.content_type.data = (u_char *) reply->content_type;
        r->headers_out.content_type.len = ngx_strlen(reply->content_type);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    /* replies carry tokens and personal data: never cache them */
    if (ngx_http_crm_add_header(r, "Cache-Control", "no-store")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->nheaders; i++) {
        if (ngx_http_crm_add_header(r, reply->headers[i].name,
                                        reply->headers[i].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (reply->len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    /* the body stays in the call, which the pool cleanup frees */
    b->pos = (u_char *) reply->body;
    b->last = b->pos + reply->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
