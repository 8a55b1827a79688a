/*
 * GET /r/{affiliate_link_id}: the affiliate redirect.
 *
 * A redirect for a cached link is answered in the event loop: the link
 * comes from the shared cache, the click goes into the shared queue, and
 * the 302 leaves at once.  A link not in the cache is loaded once per
 * worker on the edge's thread pool; requests for it that arrive meanwhile
 * wait on that one load.  An id whose check characters fail (a made-up
 * one) is answered 404 without a load: the check is an HMAC, so it runs
 * only on a cache miss.
 */

#include "ngx_http_crm_clicks.h"
#include "ngx_http_crm_links.h"
#include "ngx_http_crm_redirect.h"
#include "ngx_http_crm_reply.h"
#include "ngx_http_crm_state.h"

#include "crm_bot.h"
#include "crm_click.h"
#include "crm_clock.h"
#include "crm_normalize.h"
#include "crm_url.h"


/* concurrent link loads per worker; more misses at once are answered 503 */
#define NGX_HTTP_CRM_LOADS_MAX     256
#define NGX_HTTP_CRM_LOAD_TIMEOUT  60000


typedef struct {
    ngx_queue_t                 queue;      /* the worker's loads */
    ngx_queue_t                 waiters;
    u_char                      id[CRM_LINK_ID_LEN + 1];
    uint64_t                    changes;    /* the cache's, at the start */
    int64_t                     queued_ms;
    ngx_msec_t                  queue_timeout;
    ngx_uint_t                  timed_out;
    ngx_http_crm_main_conf_t   *mcf;
    const crm_db_conf_t        *db;
    crm_status_e                rc;
    crm_error_t                 err;
    crm_edge_link_t             link;
    ngx_thread_task_t           task;
} ngx_http_crm_load_t;


typedef struct {
    ngx_queue_t                 queue;
    ngx_http_request_t         *request;
} ngx_http_crm_waiter_t;


static ngx_int_t ngx_http_crm_redirect_answer(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const u_char *id, ngx_http_crm_link_e state,
    const char *click_id, ngx_str_t *location);
static ngx_int_t ngx_http_crm_redirect_wait(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const u_char *id);
static void ngx_http_crm_load_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_load_done(ngx_event_t *ev);
static ngx_int_t ngx_http_crm_load_answer(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, ngx_http_crm_load_t *load);
static void ngx_http_crm_redirect_click(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const char *click_id);
static ngx_int_t ngx_http_crm_busy(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const char *detail);


static ngx_queue_t  ngx_http_crm_loads;
static ngx_uint_t   ngx_http_crm_nloads;


ngx_int_t
ngx_http_crm_redirect_handler(ngx_http_request_t *r)
{
    u_char                    *p, id[CRM_LINK_ID_LEN + 1];
    size_t                     len;
    ngx_int_t                  rc;
    ngx_str_t                  location;
    ngx_http_crm_link_e        state;
    ngx_http_crm_loc_conf_t   *lcf;
    ngx_http_crm_main_conf_t  *mcf;
    char                       click_id[CRM_CLICK_ID_LEN + 1];

    mcf = ngx_http_get_module_main_conf(r, ngx_http_crm_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    /* first, whatever the method: a body left unread is the next request */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_crm_add_header(r, "Allow", "GET, HEAD") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_crm_problem(r, CRM_E_METHOD,
                                    "a redirect answers GET and HEAD");
    }

    /* the id is the path's last segment */
    p = r->uri.data + r->uri.len;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    len = r->uri.data + r->uri.len - p;

    if (!crm_link_id_shaped((const char *) p, len)) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_404, 1);
        return ngx_http_crm_problem(r, CRM_E_NOT_FOUND, "no such link");
    }

    ngx_memcpy(id, p, CRM_LINK_ID_LEN);
    id[CRM_LINK_ID_LEN] = '\0';

    if (crm_click_id_generate((const char *) id, (int64_t) ngx_time(),
                              click_id)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&location);

    /* only ids whose check passed are ever cached */
    state = ngx_http_crm_links_lookup(r, mcf, (const char *) id, click_id,
                                      &location, 0);

    switch (state) {

    case NGX_HTTP_CRM_LINK_MISS:
        if (!crm_link_id_valid(&lcf->service->link_key, (const char *) id,
                               CRM_LINK_ID_LEN))
        {
            ngx_http_crm_count(mcf, NGX_HTTP_CRM_CACHE_REFUSED, 1);
            ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_404, 1);
            return ngx_http_crm_problem(r, CRM_E_NOT_FOUND, "no such link");
        }

        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CACHE_MISSES, 1);
        return ngx_http_crm_redirect_wait(r, mcf, id);

    case NGX_HTTP_CRM_LINK_UNKNOWN:
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CACHE_NEGATIVE_HITS, 1);
        break;

    default:
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CACHE_HITS, 1);
        break;
    }

    return ngx_http_crm_redirect_answer(r, mcf, id, state, click_id,
                                        &location);
}


static ngx_int_t
ngx_http_crm_redirect_answer(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const u_char *id, ngx_http_crm_link_e state,
    const char *click_id, ngx_str_t *location)
{
    ngx_table_elt_t  *h;

    if (state == NGX_HTTP_CRM_LINK_UNKNOWN) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_404, 1);
        return ngx_http_crm_problem(r, CRM_E_NOT_FOUND, "no such link");
    }

    if (state == NGX_HTTP_CRM_LINK_DISABLED) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_410, 1);
        return ngx_http_crm_problem(r, CRM_E_GONE, "this link is disabled");
    }

    if (location->data == NULL || location->len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_crm_redirect_click(r, mcf, click_id);
    ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_302, 1);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = *location;

    /* absolute already: nginx leaves it as it is */
    r->headers_out.location = h;

    /* every click must come here, not stop at a cache */
    if (ngx_http_crm_add_header(r, "Cache-Control", "private, no-store")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_MOVED_TEMPORARILY;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/*
 * The click, as one COPY line: its id, the normalised "shop" argument if
 * it is a domain, the client's address, user agent and referer, the time,
 * and the bot and HEAD flags.
 */
static void
ngx_http_crm_redirect_click(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const char *click_id)
{
    u_char        *dst, *src;
    size_t         len;
    ngx_str_t      arg;
    ngx_time_t    *tp;
    crm_click_t    c;
    crm_error_t    err;
    char           shop[CRM_DOMAIN_MAX + 1], raw[CRM_DOMAIN_MAX + 64];
    u_char         line[CRM_CLICK_LINE_MAX];

    ngx_memzero(&c, sizeof(crm_click_t));

    c.click_id = click_id;

    tp = ngx_timeofday();
    c.at_us = (int64_t) tp->sec * 1000000 + (int64_t) tp->msec * 1000;

    if (ngx_http_arg(r, (u_char *) "shop", 4, &arg) == NGX_OK
        && arg.len < sizeof(raw))
    {
        src = arg.data;
        dst = (u_char *) raw;
        ngx_unescape_uri(&dst, &src, arg.len, 0);

        if (crm_domain_normalize((crm_str_t) { raw, (char *) dst - raw },
                                 "shop", shop, &err)
            == CRM_OK)
        {
            c.shop = crm_str_c(shop);
        }
    }

    c.ip = (crm_str_t) { (const char *) r->connection->addr_text.data,
                         r->connection->addr_text.len };

    if (r->headers_in.user_agent) {
        c.user_agent = (crm_str_t) {
            (const char *) r->headers_in.user_agent->value.data,
            r->headers_in.user_agent->value.len };
    }

    if (r->headers_in.referer) {
        c.referer = (crm_str_t) {
            (const char *) r->headers_in.referer->value.data,
            r->headers_in.referer->value.len };
    }

    c.bot = crm_bot_user_agent(c.user_agent) ? 1 : 0;
    c.head = r->method == NGX_HTTP_HEAD;

    len = crm_click_line(&c, (char *) line);
    if (len == 0) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_DROPPED, 1);
        return;
    }

    ngx_http_crm_clicks_push(mcf, line, len, r->connection->log);
}


/*
 * A cache miss: the request waits for the worker's load of this id,
 * started here if there is none yet.
 */
static ngx_int_t
ngx_http_crm_redirect_wait(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const u_char *id)
{
    ngx_queue_t               *q;
    ngx_http_crm_load_t       *load;
    ngx_http_crm_waiter_t     *w;
    ngx_http_crm_loc_conf_t   *lcf;

    if (ngx_http_crm_loads.next == NULL) {
        ngx_queue_init(&ngx_http_crm_loads);
    }

    load = NULL;

    for (q = ngx_queue_head(&ngx_http_crm_loads);
         q != ngx_queue_sentinel(&ngx_http_crm_loads);
         q = ngx_queue_next(q))
    {
        load = ngx_queue_data(q, ngx_http_crm_load_t, queue);

        /* a load begun before a change of its link may read the old */
        if (ngx_memcmp(load->id, id, CRM_LINK_ID_LEN) == 0
            && !ngx_http_crm_links_changed_since(mcf, id, load->changes))
        {
            break;
        }

        load = NULL;
    }

    w = ngx_palloc(r->pool, sizeof(ngx_http_crm_waiter_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->request = r;

    if (load == NULL) {
        if (ngx_http_crm_nloads >= NGX_HTTP_CRM_LOADS_MAX) {
            return ngx_http_crm_busy(r, mcf, "server busy");
        }

        lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

        load = ngx_calloc(sizeof(ngx_http_crm_load_t), r->connection->log);
        if (load == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(load->id, id, CRM_LINK_ID_LEN + 1);
        ngx_queue_init(&load->waiters);
        load->mcf = mcf;
        load->db = lcf->db;
        load->changes = ngx_http_crm_links_changes(mcf);
        load->queued_ms = crm_clock_ms();
        load->queue_timeout = lcf->queue_timeout;

        load->task.ctx = load;
        load->task.handler = ngx_http_crm_load_thread;
        load->task.event.handler = ngx_http_crm_load_done;
        load->task.event.data = load;
        load->task.event.log = ngx_cycle->log;

        if (ngx_http_crm_task_post(mcf, NGX_HTTP_CRM_POOL_EDGE,
                                   mcf->edge_pool, &load->task)
            != NGX_OK)
        {
            ngx_free(load);
            return ngx_http_crm_busy(r, mcf, "server busy");
        }

        ngx_add_timer(&load->task.event, NGX_HTTP_CRM_LOAD_TIMEOUT);

        ngx_queue_insert_tail(&ngx_http_crm_loads, &load->queue);
        ngx_http_crm_nloads++;

        ngx_http_crm_count(mcf, NGX_HTTP_CRM_LINK_LOADS, 1);
    }

    ngx_queue_insert_tail(&load->waiters, &w->queue);

    r->main->blocked++;
    r->aio = 1;
    r->main->count++;

    return NGX_DONE;
}


/* a pool thread */
static void
ngx_http_crm_load_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_load_t *load = data;

    crm_db_t  *db;
    int64_t    waited;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_EDGE);

    /* its waiters may have given up: a late answer is a 503 (or stale) */
    waited = crm_clock_ms() - load->queued_ms;

    if (load->queue_timeout && waited > (int64_t) load->queue_timeout) {
        load->timed_out = 1;
        load->rc = crm_error_set(&load->err, CRM_E_UNAVAILABLE, NULL,
                                 "server busy");
        crm_error_cause(&load->err, "waited %lld ms for a thread",
                        (long long) waited);
        return;
    }

    db = crm_db_for_thread(load->db);

    if (db == NULL) {
        load->rc = crm_error_set(&load->err, CRM_E_INTERNAL, NULL,
                                 "out of memory");
        return;
    }

    load->rc = crm_store_edge_link(db, (const char *) load->id, &load->link,
                                   &load->err);
}


static void
ngx_http_crm_load_done(ngx_event_t *ev)
{
    ngx_http_crm_load_t *load = ev->data;

    ngx_queue_t               *q;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_crm_waiter_t     *w;
    ngx_http_crm_main_conf_t  *mcf;

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "crm: link load still running after %ums",
                      NGX_HTTP_CRM_LOAD_TIMEOUT);
        ev->timedout = 0;
        ngx_add_timer(ev, NGX_HTTP_CRM_LOAD_TIMEOUT);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    mcf = load->mcf;

    ngx_queue_remove(&load->queue);
    ngx_http_crm_nloads--;

    if (load->rc == CRM_OK) {
        if (ngx_http_crm_links_store(mcf, load->id, &load->link,
                                     load->changes)
            == NGX_DECLINED)
        {
            ngx_http_crm_count(mcf, NGX_HTTP_CRM_LINK_LOADS_DISCARDED, 1);
        }

    } else {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_LINK_LOAD_FAILURES, 1);
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_QUEUE_TIMEOUTS,
                           load->timed_out);

        ngx_log_error((load->rc == CRM_E_UNAVAILABLE ? NGX_LOG_WARN
                                                      : NGX_LOG_ERR),
                      ev->log, 0, "crm: link load failed: %s (%s)",
                      load->err.message, load->err.cause);
    }

    while (!ngx_queue_empty(&load->waiters)) {
        q = ngx_queue_head(&load->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_crm_waiter_t, queue);
        r = w->request;
        c = r->connection;

        ngx_http_set_log_request(c->log, r);

        r->main->blocked--;
        r->aio = 0;

        ngx_http_finalize_request(r, ngx_http_crm_load_answer(r, mcf, load));
        ngx_http_run_posted_requests(c);
    }

    ngx_free(load);
}


/*
 * One waiting request's answer from the load; when the database could not
 * be asked, an expired cache entry still answers (stale-if-error), so a
 * link keeps redirecting through an outage longer than the TTL.
 */
static ngx_int_t
ngx_http_crm_load_answer(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, ngx_http_crm_load_t *load)
{
    size_t                 size;
    ngx_str_t              location;
    ngx_http_crm_link_e    state;
    char                   click_id[CRM_CLICK_ID_LEN + 1];

    if (crm_click_id_generate((const char *) load->id, (int64_t) ngx_time(),
                              click_id)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&location);

    if (load->rc != CRM_OK) {
        state = ngx_http_crm_links_lookup(r, mcf, (const char *) load->id,
                                          click_id, &location, 1);

        if (state == NGX_HTTP_CRM_LINK_MISS) {
            return ngx_http_crm_busy(r, mcf, "database unavailable");
        }

        return ngx_http_crm_redirect_answer(r, mcf, load->id, state,
                                            click_id, &location);
    }

    state = !load->link.found ? NGX_HTTP_CRM_LINK_UNKNOWN
            : load->link.active ? NGX_HTTP_CRM_LINK_ACTIVE
            : NGX_HTTP_CRM_LINK_DISABLED;

    if (state == NGX_HTTP_CRM_LINK_ACTIVE) {
        size = crm_url_redirect_size(load->link.target_len);

        location.data = ngx_pnalloc(r->pool, size);
        if (location.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        location.len = crm_url_redirect((crm_str_t) { load->link.target,
                                                      load->link.target_len },
                                        (const char *) load->id, click_id,
                                        (char *) location.data, size);
    }

    return ngx_http_crm_redirect_answer(r, mcf, load->id, state, click_id,
                                        &location);
}


/* 503: a link that is not cached cannot be loaded now */
static ngx_int_t
ngx_http_crm_busy(ngx_http_request_t *r, ngx_http_crm_main_conf_t *mcf,
    const char *detail)
{
    ngx_http_crm_count(mcf, NGX_HTTP_CRM_REDIRECTS_503, 1);

    return ngx_http_crm_problem(r, CRM_E_UNAVAILABLE, detail);
}
