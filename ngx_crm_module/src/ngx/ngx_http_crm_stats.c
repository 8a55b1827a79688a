/*
 * The performance counters' folder; see ngx_http_crm_stats.h.
 */

#include "ngx_http_crm_state.h"
#include "ngx_http_crm_stats.h"

#include "crm_store_stats.h"


#define NGX_HTTP_CRM_STATS_INTERVAL  1000   /* ms between folds */
#define NGX_HTTP_CRM_STATS_AGAIN     10     /* ms: a backlog, go on */
#define NGX_HTTP_CRM_STATS_BATCH     20000  /* deltas a fold takes */


typedef struct {
    ngx_event_t          timer;
    ngx_thread_task_t   *task;          /* one, reused: one fold at a time */
    ngx_thread_pool_t   *pool;
    crm_db_conf_t       *db;
    ngx_log_t           *log;
    unsigned             busy:1;
} ngx_http_crm_stats_t;


typedef struct {
    ngx_http_crm_stats_t  *stats;
    int64_t                folded;
    crm_status_e           rc;
    crm_error_t            err;
} ngx_http_crm_stats_task_t;


static void ngx_http_crm_stats_timer(ngx_event_t *ev);
static void ngx_http_crm_stats_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_stats_done(ngx_event_t *ev);


static ngx_http_crm_stats_t  ngx_http_crm_stats;


ngx_int_t
ngx_http_crm_stats_init_process(ngx_cycle_t *cycle)
{
    ngx_thread_task_t          *task;
    ngx_http_crm_stats_t       *stats;
    ngx_http_crm_main_conf_t   *mcf;
    ngx_http_crm_stats_task_t  *t;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->sync_lcf == NULL || mcf->sync_lcf->db == NULL) {
        return NGX_OK;
    }

    stats = &ngx_http_crm_stats;
    ngx_memzero(stats, sizeof(ngx_http_crm_stats_t));

    stats->db = mcf->sync_lcf->db;
    stats->log = cycle->log;
    stats->pool = mcf->sync_pool != NULL ? mcf->sync_pool
                                         : mcf->sync_lcf->thread_pool;

    task = ngx_thread_task_alloc(cycle->pool,
                                 sizeof(ngx_http_crm_stats_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    t = task->ctx;
    t->stats = stats;

    task->handler = ngx_http_crm_stats_thread;
    task->event.handler = ngx_http_crm_stats_done;
    task->event.data = task;
    task->event.log = cycle->log;
    stats->task = task;

    stats->timer.handler = ngx_http_crm_stats_timer;
    stats->timer.data = stats;
    stats->timer.log = cycle->log;
    stats->timer.cancelable = 1;

    /* the workers start apart, not all at the same tick */
    ngx_add_timer(&stats->timer,
                  NGX_HTTP_CRM_STATS_INTERVAL / 2
                  + (ngx_msec_t) ngx_random()
                    % (NGX_HTTP_CRM_STATS_INTERVAL + 1));

    return NGX_OK;
}


static void
ngx_http_crm_stats_timer(ngx_event_t *ev)
{
    ngx_http_crm_stats_t *stats = ev->data;

    if (ngx_exiting || ngx_terminate || stats->busy) {
        return;
    }

    if (ngx_http_crm_task_post(
            ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_crm_module),
            NGX_HTTP_CRM_POOL_SYNC, stats->pool, stats->task)
        != NGX_OK)
    {
        ngx_add_timer(&stats->timer, NGX_HTTP_CRM_STATS_INTERVAL);
        return;
    }

    stats->busy = 1;
}


/* a pool thread */
static void
ngx_http_crm_stats_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_stats_task_t *t = data;

    crm_db_t  *db;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_SYNC);

    (void) log;

    db = crm_db_for_thread(t->stats->db);
    if (db == NULL) {
        t->rc = crm_error_set(&t->err, CRM_E_UNAVAILABLE, NULL,
                              "out of memory");
        return;
    }

    t->rc = crm_store_stats_compact(db, NGX_HTTP_CRM_STATS_BATCH, &t->folded,
                                    &t->err);
}


static void
ngx_http_crm_stats_done(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    ngx_msec_t                  next;
    ngx_http_crm_stats_t       *stats;
    ngx_http_crm_stats_task_t  *t;

    t = task->ctx;
    stats = t->stats;
    stats->busy = 0;

    next = NGX_HTTP_CRM_STATS_INTERVAL;

    if (t->rc != CRM_OK) {
        /* PostgreSQL away: the deltas wait, and the reads still add them */
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "crm: folding the performance counters failed: %s",
                      t->err.message);

    } else if (t->folded == NGX_HTTP_CRM_STATS_BATCH) {
        next = NGX_HTTP_CRM_STATS_AGAIN;
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&stats->timer, next);
    }
}
