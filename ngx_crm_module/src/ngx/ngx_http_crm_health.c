/*
 * The database probes: a timer of each worker posts one "SELECT 1" per
 * database to the edge's pool every CRM_HEALTH_PROBE_MS, never two at a
 * time for one database, and the answer becomes that database's health
 * (crm_db_health_t), which /healthz reads.  A replica's probe measures
 * its lag instead, which decides whether the reads that may lag go to it.
 * The first probes go out as the worker starts; until one answers,
 * /healthz asks on the pool itself.
 */

#include "ngx_http_crm_health.h"
#include "ngx_http_crm_state.h"

#include "crm_clock.h"
#include "crm_health.h"


typedef struct {
    ngx_http_crm_main_conf_t  *mcf;
    crm_db_conf_t             *db;
    ngx_uint_t                 busy;
    int                        in_recovery;
    ngx_uint_t                 promoted;    /* logged */
    uint64_t                   lsn;
    crm_status_e               rc;
    crm_error_t                err;
} ngx_http_crm_probe_t;


static void ngx_http_crm_health_timer(ngx_event_t *ev);
static void ngx_http_crm_probe_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_probe_done(ngx_event_t *ev);


static ngx_event_t   ngx_http_crm_health_event;
static ngx_array_t   ngx_http_crm_probes;   /* of ngx_thread_task_t * */


ngx_int_t
ngx_http_crm_health_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    crm_db_conf_t             **dbs;
    ngx_thread_task_t         **slot, *task;
    ngx_http_crm_probe_t       *probe;
    ngx_http_crm_main_conf_t   *mcf;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->edge_pool == NULL || mcf->databases.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_array_init(&ngx_http_crm_probes, cycle->pool,
                       mcf->databases.nelts, sizeof(ngx_thread_task_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    dbs = mcf->databases.elts;

    for (i = 0; i < mcf->databases.nelts; i++) {
        task = ngx_thread_task_alloc(cycle->pool,
                                     sizeof(ngx_http_crm_probe_t));
        slot = ngx_array_push(&ngx_http_crm_probes);

        if (task == NULL || slot == NULL) {
            return NGX_ERROR;
        }

        probe = task->ctx;
        probe->mcf = mcf;
        probe->db = dbs[i];

        task->handler = ngx_http_crm_probe_thread;
        task->event.handler = ngx_http_crm_probe_done;
        task->event.data = task;
        task->event.log = cycle->log;

        *slot = task;
    }

    ngx_http_crm_health_event.handler = ngx_http_crm_health_timer;
    ngx_http_crm_health_event.data = mcf;
    ngx_http_crm_health_event.log = cycle->log;
    ngx_http_crm_health_event.cancelable = 1;

    ngx_http_crm_health_timer(&ngx_http_crm_health_event);

    return NGX_OK;
}


static void
ngx_http_crm_health_timer(ngx_event_t *ev)
{
    ngx_http_crm_main_conf_t *mcf = ev->data;

    ngx_uint_t              i;
    ngx_thread_task_t     **tasks;
    ngx_http_crm_probe_t   *probe;

    tasks = ngx_http_crm_probes.elts;

    for (i = 0; i < ngx_http_crm_probes.nelts; i++) {
        probe = tasks[i]->ctx;

        /* a probe that has not answered yet is not doubled */
        if (probe->busy) {
            continue;
        }

        if (ngx_http_crm_task_post(mcf, NGX_HTTP_CRM_POOL_EDGE,
                                   mcf->edge_pool, tasks[i])
            == NGX_OK)
        {
            probe->busy = 1;
        }
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(ev, CRM_HEALTH_PROBE_MS);
    }
}


/* a pool thread */
static void
ngx_http_crm_probe_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_probe_t *probe = data;

    crm_db_t  *db;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_EDGE);

    db = crm_db_for_thread(probe->db);

    if (db == NULL) {
        probe->rc = crm_error_set(&probe->err, CRM_E_INTERNAL, NULL,
                                  "out of memory");
        return;
    }

    probe->rc = crm_db_wal_position(db, &probe->in_recovery, &probe->lsn,
                                    &probe->err);
}


static void
ngx_http_crm_probe_done(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    int64_t                now;
    ngx_http_crm_probe_t  *probe;
    crm_db_health_t       *health;

    probe = task->ctx;
    probe->busy = 0;
    health = probe->db->health;
    now = crm_clock_ms();

    /* a change is logged, not every probe */
    if ((probe->rc == CRM_OK) != (health->up == 1)) {
        if (probe->rc == CRM_OK) {
            ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                          "crm: database \"%s\" answers",
                          probe->db->label);

        } else {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "crm: database \"%s\" does not answer: %s (%s)",
                          probe->db->label, probe->err.message,
                          probe->err.cause);
        }
    }

    if (probe->rc != CRM_OK) {
        ngx_http_crm_count(probe->mcf, NGX_HTTP_CRM_DB_PROBES_FAILED, 1);
    }

    health->up = probe->rc == CRM_OK;
    health->checked_ms = now;

    if (probe->rc != CRM_OK) {
        health->lag_ms = -1;
        return;
    }

    if (!probe->in_recovery) {
        crm_wal_record(&health->wal, probe->lsn, now);
    }

    if (probe->db->primary == NULL) {
        return;
    }

    /* a replica that was promoted has left its primary's timeline */
    if (!probe->in_recovery != (probe->promoted != 0)) {
        probe->promoted = !probe->in_recovery;

        if (probe->promoted) {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "crm: replica \"%s\" is not in recovery: its "
                          "reads go to the primary", probe->db->label);
        }
    }

    health->lag_ms = probe->in_recovery
                     ? crm_wal_lag(&probe->db->primary->health->wal,
                                   probe->lsn, now)
                     : -1;
}
