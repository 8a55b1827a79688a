/*
 * Link changes made on any host reach this host's cache through
 * PostgreSQL: the database's triggers NOTIFY crm_links with the link's id
 * when its answer changes (schema/010-link-notify.sql), and each worker
 * LISTENs on a connection of its own and drops the named link at once.
 *
 * The connection is opened on the edge pool (a blocking connect and the
 * LISTEN), then handed to the event loop: its socket is read as it becomes
 * readable, never waited on.  Lost, it is opened again after a back-off
 * (0.5 s, doubling up to 10 s); meanwhile the cache's TTL bounds how stale
 * an entry can be.  The state zone counts the host's listeners: when the
 * last one is lost, notifications may go unheard, and the next listener
 * to connect empties the cache (ngx_http_crm_links_forget_all()) before
 * it trusts it again.  A worker that exits (a reload, a quit) is not
 * lost: the new workers listen within milliseconds, and the TTL covers
 * that gap (see ngx_http_crm_listeners()).
 */

#include "ngx_http_crm_links.h"
#include "ngx_http_crm_listen.h"
#include "ngx_http_crm_state.h"


#define NGX_HTTP_CRM_LISTEN_CHANNEL   "crm_links"
#define NGX_HTTP_CRM_LISTEN_RETRY     500
#define NGX_HTTP_CRM_LISTEN_RETRY_MAX 10000


typedef struct {
    ngx_http_crm_main_conf_t  *mcf;
    ngx_thread_task_t         *task;
    ngx_event_t                retry;
    ngx_msec_t                 backoff;
    PGconn                    *conn;        /* the event loop's, listening */
    ngx_connection_t          *c;
    ngx_uint_t                 busy;        /* a connect under way */
    ngx_log_t                 *log;
} ngx_http_crm_listen_t;


typedef struct {
    ngx_http_crm_listen_t     *listen;
    PGconn                    *conn;        /* the thread's result */
    crm_error_t                err;
} ngx_http_crm_listen_task_t;


static void ngx_http_crm_listen_connect(ngx_event_t *ev);
static void ngx_http_crm_listen_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_listen_connected(ngx_event_t *ev);
static void ngx_http_crm_listen_read(ngx_event_t *ev);
static void ngx_http_crm_listen_write(ngx_event_t *ev);
static void ngx_http_crm_listen_lost(ngx_http_crm_listen_t *ls);
static void ngx_http_crm_listen_close(ngx_http_crm_listen_t *ls,
    ngx_uint_t lost);
static void ngx_http_crm_listen_again(ngx_http_crm_listen_t *ls);


static ngx_http_crm_listen_t  ngx_http_crm_listen;


ngx_int_t
ngx_http_crm_listen_init_process(ngx_cycle_t *cycle)
{
    ngx_thread_task_t           *task;
    ngx_http_crm_listen_t       *ls;
    ngx_http_crm_main_conf_t    *mcf;
    ngx_http_crm_listen_task_t  *t;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->link_zone == NULL || mcf->click_db == NULL
        || mcf->edge_pool == NULL)
    {
        return NGX_OK;
    }

    task = ngx_thread_task_alloc(cycle->pool,
                                 sizeof(ngx_http_crm_listen_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    ls = &ngx_http_crm_listen;
    ngx_memzero(ls, sizeof(ngx_http_crm_listen_t));

    ls->mcf = mcf;
    ls->task = task;
    ls->log = cycle->log;
    ls->backoff = NGX_HTTP_CRM_LISTEN_RETRY;

    t = task->ctx;
    t->listen = ls;

    task->handler = ngx_http_crm_listen_thread;
    task->event.handler = ngx_http_crm_listen_connected;
    task->event.data = task;
    task->event.log = cycle->log;

    /* a worker that is shutting down does not wait for the next attempt */
    ls->retry.handler = ngx_http_crm_listen_connect;
    ls->retry.data = ls;
    ls->retry.log = cycle->log;
    ls->retry.cancelable = 1;

    ngx_http_crm_listen_connect(&ls->retry);

    return NGX_OK;
}


void
ngx_http_crm_listen_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_crm_listen_t  *ls;

    ls = &ngx_http_crm_listen;

    if (ls->mcf == NULL) {
        return;
    }

    if (ls->retry.timer_set) {
        ngx_del_timer(&ls->retry);
    }

    if (ls->conn != NULL) {
        ngx_http_crm_listen_close(ls, 0);
    }
}


static void
ngx_http_crm_listen_connect(ngx_event_t *ev)
{
    ngx_http_crm_listen_t *ls = ev->data;

    if (ls->busy || ls->conn != NULL || ngx_exiting || ngx_terminate) {
        return;
    }

    if (ngx_http_crm_task_post(ls->mcf, NGX_HTTP_CRM_POOL_EDGE,
                               ls->mcf->edge_pool, ls->task)
        != NGX_OK)
    {
        ngx_http_crm_listen_again(ls);
        return;
    }

    ls->busy = 1;
}


/* a pool thread: connect and LISTEN, blocking */
static void
ngx_http_crm_listen_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_listen_task_t *t = data;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_EDGE);

    ngx_memzero(&t->err, sizeof(crm_error_t));

    t->conn = crm_db_listen(t->listen->mcf->click_db,
                            NGX_HTTP_CRM_LISTEN_CHANNEL, &t->err);
}


static void
ngx_http_crm_listen_connected(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    PGconn                      *conn;
    ngx_connection_t            *c;
    ngx_http_crm_listen_t       *ls;
    ngx_http_crm_listen_task_t  *t;

    t = task->ctx;
    ls = t->listen;
    conn = t->conn;
    t->conn = NULL;
    ls->busy = 0;

    if (conn == NULL) {
        ngx_log_error(NGX_LOG_WARN, ls->log, 0,
                      "crm: link change listener not connected: %s (%s)",
                      t->err.message, t->err.cause);
        ngx_http_crm_listen_again(ls);
        return;
    }

    if (ngx_exiting || ngx_terminate) {
        PQfinish(conn);
        return;
    }

    c = ngx_get_connection(PQsocket(conn), ls->log);
    if (c == NULL) {
        PQfinish(conn);
        ngx_http_crm_listen_again(ls);
        return;
    }

    c->data = ls;
    c->read->handler = ngx_http_crm_listen_read;
    c->write->handler = ngx_http_crm_listen_write;
    c->read->log = ls->log;
    c->write->log = ls->log;

    /*
     * level-triggered: libpq may leave bytes in the socket after a read,
     * and an edge-triggered event would not say so again
     */
    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        PQfinish(conn);
        ngx_http_crm_listen_again(ls);
        return;
    }

    ls->conn = conn;
    ls->c = c;
    ls->backoff = NGX_HTTP_CRM_LISTEN_RETRY;

    ngx_http_crm_count(ls->mcf, NGX_HTTP_CRM_LINK_LISTENS, 1);

    /* the host had no listener for a while: what changed is unknown */
    if (ngx_http_crm_listeners(ls->mcf, 1, 0)) {
        ngx_http_crm_links_forget_all(ls->mcf);
    }

    ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                  "crm: listening for link changes");

    ngx_http_crm_listen_read(c->read);
}


static void
ngx_http_crm_listen_read(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;

    PGnotify               *n;
    ngx_http_crm_listen_t  *ls;

    ls = c->data;

    if (!PQconsumeInput(ls->conn)) {
        ngx_http_crm_listen_lost(ls);
        return;
    }

    while ((n = PQnotifies(ls->conn)) != NULL) {

        /* a link id, or nothing this module sent */
        if (ngx_strlen(n->extra) == CRM_LINK_ID_LEN) {
            ngx_http_crm_links_forget(ls->mcf, (u_char *) n->extra);
            ngx_http_crm_count(ls->mcf, NGX_HTTP_CRM_LINK_NOTIFICATIONS, 1);
        }

        PQfreemem(n);
    }

    if (PQstatus(ls->conn) != CONNECTION_OK) {
        ngx_http_crm_listen_lost(ls);
    }
}


/* the connection only reads: libpq writes nothing after the LISTEN */
static void
ngx_http_crm_listen_write(ngx_event_t *ev)
{
}


static void
ngx_http_crm_listen_lost(ngx_http_crm_listen_t *ls)
{
    ngx_log_error(NGX_LOG_WARN, ls->log, 0,
                  "crm: link change listener lost: %s",
                  PQerrorMessage(ls->conn));

    ngx_http_crm_count(ls->mcf, NGX_HTTP_CRM_LINK_LISTENS_LOST, 1);

    ngx_http_crm_listen_close(ls, 1);
    ngx_http_crm_listen_again(ls);
}


/* the socket leaves the event loop, then libpq closes it */
static void
ngx_http_crm_listen_close(ngx_http_crm_listen_t *ls, ngx_uint_t lost)
{
    ngx_connection_t  *c;

    c = ls->c;

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    PQfinish(ls->conn);

    ls->conn = NULL;
    ls->c = NULL;

    (void) ngx_http_crm_listeners(ls->mcf, -1, lost);
}


static void
ngx_http_crm_listen_again(ngx_http_crm_listen_t *ls)
{
    if (ngx_exiting || ngx_terminate || ls->retry.timer_set) {
        return;
    }

    ngx_add_timer(&ls->retry, ls->backoff);

    ls->backoff = ngx_min(ls->backoff * 2, NGX_HTTP_CRM_LISTEN_RETRY_MAX);
}
