/*
 * The CRM sync queue's runner; see ngx_http_crm_sync.h.
 *
 * Each worker keeps at most crm_sync_leases leases at a time.  A lease
 * is one integration and one lead: its provider calls go one after the
 * other (a lead's events in order), leases side by side.  Finished leases
 * wait for the one record task in flight, and the next records all of
 * them in one transaction: a commit per batch, not per lease.  The timer only
 * claims when there is room; a claim that filled the room claims again
 * as soon as a lease ends, so a backlog drains at the providers' pace,
 * not the timer's.  While a lease is out, the timer is not cancelable:
 * a worker that quits (reload) finishes its calls and records them.
 *
 * Calls to one integration are paced by a token bucket in each worker:
 * crm_sync_rate (or the provider's default) a second for the host, shared
 * out between its workers; a call without a token waits for one.  The
 * same entry keeps the provider's session (Salesforce's, Creatio's) from
 * one lease to the next of the same credentials, so a provider is asked
 * to log in once, not for every lead.
 */

#include "ngx_http_crm_outbound.h"
#include "ngx_http_crm_state.h"
#include "ngx_http_crm_sync.h"

#include "crm_store_sync.h"
#include "crm_sync.h"


#define NGX_HTTP_CRM_SYNC_LEASE_JOBS 20     /* a lead's jobs per lease */
#define NGX_HTTP_CRM_SYNC_DEPTH_MS   5000   /* queue depth sampled */
#define NGX_HTTP_CRM_SYNC_IDLE_MS    60000  /* a bucket unused, dropped */


typedef struct ngx_http_crm_sync_s  ngx_http_crm_sync_t;

typedef void (*ngx_http_crm_sync_thread_pt)(void *data, ngx_log_t *log);

/* one thread task: a claim (leases out) or a record (lease in) */
typedef struct {
    ngx_http_crm_sync_t    *sync;
    crm_sync_lease_t       *leases;
    crm_error_t             err;
    crm_status_e            rc;
    unsigned                claimed;
    unsigned                sample:1;
    int64_t                 depth;
    int64_t                 oldest_s;
} ngx_http_crm_sync_task_t;

/* a lease on its way: the exchange under way and its answer */
typedef struct {
    ngx_http_crm_sync_t       *sync;
    crm_sync_lease_t          *lease;
    crm_http_response_t        res;
    const crm_http_request_t  *req;     /* waiting for a token */
    ngx_event_t                delay;
    ngx_queue_t                queue;   /* waiting for another's login */
} ngx_http_crm_sync_run_t;

/* an integration's calls: tokens, in thousandths of a call; its session */
typedef struct {
    ngx_queue_t             queue;
    u_char                  key[80];    /* account_id/crm_type */
    ngx_msec_t              at;         /* tokens counted then */
    int64_t                 tokens;
    ngx_msec_t              paused;     /* no call before: Retry-After */
    char                   *session;    /* malloc'd, wiped when let go */
    char                    fingerprint[25];    /* its credentials' */
    ngx_http_crm_sync_run_t *login;     /* the lease that logs in */
    ngx_queue_t             waiting;    /* leases waiting for its session */
} ngx_http_crm_sync_bucket_t;

struct ngx_http_crm_sync_s {
    ngx_http_crm_main_conf_t        *mcf;
    ngx_http_crm_loc_conf_t         *lcf;
    ngx_http_crm_outbound_policy_t   policy;
    ngx_event_t                      timer;
    ngx_log_t                       *log;
    ngx_thread_pool_t               *pool;
    ngx_uint_t                       active;    /* leases out */
    ngx_uint_t                       claiming;
    ngx_uint_t                       failing;   /* claims, logged */
    ngx_uint_t                       recording;
    crm_sync_lease_t                *finished;  /* waiting to be recorded */
    crm_sync_lease_t               **finished_last;
    ngx_msec_t                       sampled;
    ngx_uint_t                       workers;
    ngx_queue_t                      buckets;
};


static void ngx_http_crm_sync_timer(ngx_event_t *ev);
static void ngx_http_crm_sync_claim(ngx_http_crm_sync_t *sync);
static void ngx_http_crm_sync_claim_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_sync_claimed(ngx_event_t *ev);
static void ngx_http_crm_sync_drive(ngx_http_crm_sync_run_t *run,
    const crm_http_response_t *res);
static ngx_int_t ngx_http_crm_sync_send(ngx_http_crm_sync_run_t *run,
    const crm_http_request_t *req);
static void ngx_http_crm_sync_delayed(ngx_event_t *ev);
static ngx_msec_t ngx_http_crm_sync_token(ngx_http_crm_sync_t *sync,
    const crm_sync_lease_t *lease);
static ngx_http_crm_sync_bucket_t *ngx_http_crm_sync_bucket(
    ngx_http_crm_sync_t *sync, const crm_sync_lease_t *lease);
static void ngx_http_crm_sync_forget(ngx_http_crm_sync_bucket_t *b);
static void ngx_http_crm_sync_release(ngx_http_crm_sync_bucket_t *b);
static void ngx_http_crm_sync_answered(void *data);
static void ngx_http_crm_sync_record(ngx_http_crm_sync_t *sync);
static void ngx_http_crm_sync_record_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_sync_recorded(ngx_event_t *ev);
static void ngx_http_crm_sync_count(ngx_http_crm_sync_t *sync,
    const crm_sync_lease_t *lease);
static ngx_thread_task_t *ngx_http_crm_sync_task(ngx_http_crm_sync_t *sync,
    ngx_event_handler_pt done, ngx_http_crm_sync_thread_pt handler);
static void ngx_http_crm_sync_arm(ngx_http_crm_sync_t *sync);


const char *const  ngx_http_crm_sync_outcomes[] = {
    "ok", "failed", "dead", "held"
};


static ngx_http_crm_sync_t  ngx_http_crm_sync;


ngx_int_t
ngx_http_crm_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_core_conf_t           *ccf;
    ngx_http_crm_sync_t       *sync;
    ngx_http_crm_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->sync_lcf == NULL || mcf->sync_leases == 0) {
        return NGX_OK;
    }

    sync = &ngx_http_crm_sync;
    ngx_memzero(sync, sizeof(ngx_http_crm_sync_t));

    sync->mcf = mcf;
    sync->lcf = mcf->sync_lcf;
    sync->log = cycle->log;
    sync->policy.allow = sync->lcf->outbound_allow;
    sync->policy.connect_timeout = sync->lcf->outbound_connect_timeout;
    sync->policy.timeout = sync->lcf->outbound_timeout;
    sync->pool = mcf->sync_pool != NULL ? mcf->sync_pool
                                        : sync->lcf->thread_pool;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    sync->workers = ngx_process == NGX_PROCESS_WORKER
                    && ccf->worker_processes > 1
                    ? (ngx_uint_t) ccf->worker_processes : 1;
    ngx_queue_init(&sync->buckets);
    sync->finished_last = &sync->finished;

    sync->timer.handler = ngx_http_crm_sync_timer;
    sync->timer.data = sync;
    sync->timer.log = cycle->log;
    sync->timer.cancelable = 1;

    /* the workers start apart, not all at the same tick */
    ngx_add_timer(&sync->timer,
                  mcf->sync_interval / 2
                  + (ngx_msec_t) ngx_random() % (mcf->sync_interval + 1));

    return NGX_OK;
}


static void
ngx_http_crm_sync_timer(ngx_event_t *ev)
{
    ngx_http_crm_sync_t *sync = ev->data;

    if (!ngx_exiting && !ngx_terminate) {
        ngx_http_crm_sync_claim(sync);
    }

    ngx_http_crm_sync_record(sync);
    ngx_http_crm_sync_arm(sync);
}


/* the next tick; one that holds a quitting worker while leases are out */
static void
ngx_http_crm_sync_arm(ngx_http_crm_sync_t *sync)
{
    sync->timer.cancelable = (sync->active == 0 && !sync->claiming
                              && !sync->recording);

    if (!sync->timer.timer_set) {
        ngx_add_timer(&sync->timer, sync->mcf->sync_interval);
    }
}


static ngx_thread_task_t *
ngx_http_crm_sync_task(ngx_http_crm_sync_t *sync, ngx_event_handler_pt done,
    ngx_http_crm_sync_thread_pt handler)
{
    ngx_thread_task_t         *task;
    ngx_http_crm_sync_task_t  *t;

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_crm_sync_task_t), sync->log);
    if (task == NULL) {
        return NULL;
    }

    t = (ngx_http_crm_sync_task_t *) (task + 1);
    t->sync = sync;

    task->ctx = t;
    task->handler = handler;
    task->event.handler = done;
    task->event.data = task;
    task->event.log = sync->log;

    return task;
}


static void
ngx_http_crm_sync_claim(ngx_http_crm_sync_t *sync)
{
    ngx_thread_task_t         *task;
    ngx_http_crm_sync_task_t  *t;

    if (sync->claiming
        || sync->active >= (ngx_uint_t) sync->mcf->sync_leases)
    {
        return;
    }

    task = ngx_http_crm_sync_task(sync, ngx_http_crm_sync_claimed,
                                  ngx_http_crm_sync_claim_thread);
    if (task == NULL) {
        return;
    }

    t = task->ctx;
    t->claimed = (unsigned) (sync->mcf->sync_leases - sync->active);

    if (ngx_current_msec - sync->sampled >= NGX_HTTP_CRM_SYNC_DEPTH_MS) {
        sync->sampled = ngx_current_msec;
        t->sample = 1;
    }

    if (ngx_http_crm_task_post(sync->mcf, NGX_HTTP_CRM_POOL_SYNC,
                               sync->pool, task)
        != NGX_OK)
    {
        ngx_free(task);
        return;
    }

    sync->claiming = 1;
}


/* a pool thread: the leases, their credentials unsealed */
static void
ngx_http_crm_sync_claim_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_sync_task_t *t = data;

    int64_t                    lease_ms;
    crm_db_t                  *db;
    crm_rows_t                 rows;
    ngx_http_crm_loc_conf_t   *lcf;
    ngx_http_crm_main_conf_t  *mcf;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_SYNC);

    mcf = t->sync->mcf;
    lcf = t->sync->lcf;

    db = crm_db_for_thread(lcf->db);
    if (db == NULL) {
        t->rc = crm_error_set(&t->err, CRM_E_UNAVAILABLE, NULL,
                              "out of memory");
        return;
    }

    if (t->sample) {
        (void) crm_store_sync_depth(db, &t->depth, &t->oldest_s, &t->err);
    }

    /* a lease outlives its worst case: each call timing out */
    lease_ms = (int64_t) (NGX_HTTP_CRM_SYNC_LEASE_JOBS * 2 + 6)
               * (int64_t) lcf->outbound_timeout;

    t->rc = crm_store_sync_claim(db, t->claimed,
                                 NGX_HTTP_CRM_SYNC_LEASE_JOBS,
                                 (unsigned) mcf->sync_concurrency, lease_ms,
                                 &rows, &t->err);
    if (t->rc != CRM_OK) {
        return;
    }

    t->leases = crm_sync_leases(&rows, lcf->seal, &t->err);
    if (t->leases == NULL && rows.n > 0) {
        t->rc = t->err.code;
    }

    crm_rows_free(&rows);
}


static void
ngx_http_crm_sync_claimed(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    ngx_uint_t                   n;
    crm_sync_lease_t            *lease, *next;
    ngx_http_crm_sync_t         *sync;
    ngx_http_crm_sync_run_t     *run;
    ngx_http_crm_sync_task_t    *t;
    ngx_http_crm_sync_bucket_t  *b;

    t = task->ctx;
    sync = t->sync;
    sync->claiming = 0;

    if (t->sample && t->rc == CRM_OK) {
        ngx_http_crm_gauge_set(sync->mcf, NGX_HTTP_CRM_GAUGE_SYNC_DEPTH,
                               t->depth);
        ngx_http_crm_gauge_set(sync->mcf, NGX_HTTP_CRM_GAUGE_SYNC_OLDEST,
                               t->oldest_s);
    }

    /* once a spell, not at every tick of an outage */
    if (t->rc != CRM_OK && !sync->failing) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "crm: sync claims fail: %s (%s)", t->err.message,
                      t->err.cause);

    } else if (t->rc == CRM_OK && sync->failing) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "crm: sync claims succeed again");
    }

    sync->failing = t->rc != CRM_OK;

    n = 0;

    for (lease = t->leases; lease != NULL; lease = next) {
        next = lease->next;
        lease->next = NULL;
        n++;

        run = ngx_calloc(sizeof(ngx_http_crm_sync_run_t), ev->log);
        if (run == NULL) {
            /* its lease runs out, and another claim takes it */
            crm_sync_leases_free(lease);
            continue;
        }

        run->sync = sync;
        run->lease = lease;
        sync->active++;

        if (crm_sync_start(lease, &sync->lcf->service->providers) == CRM_OK
            && lease->op.provider->session_load != NULL)
        {
            b = ngx_http_crm_sync_bucket(sync, lease);

            if (b != NULL && b->session != NULL
                && ngx_strcmp(b->fingerprint, lease->fingerprint) == 0)
            {
                crm_sync_resume(lease, b->session);

            } else if (b != NULL && b->login != NULL) {
                ngx_queue_insert_tail(&b->waiting, &run->queue);
                continue;

            } else if (b != NULL) {
                b->login = run;
            }
        }

        ngx_http_crm_sync_drive(run, NULL);
    }

    ngx_free(task);

    /* a full claim: there may be more; else the timer comes back */
    if (n == t->claimed && n > 0) {
        ngx_http_crm_sync_claim(sync);
    }

    ngx_http_crm_sync_arm(sync);
}


/* the lease's next call, or its record when all is said */
static void
ngx_http_crm_sync_drive(ngx_http_crm_sync_run_t *run,
    const crm_http_response_t *res)
{
    ngx_http_crm_sync_t         *sync;
    const crm_http_request_t    *req;
    ngx_http_crm_sync_bucket_t  *b;

    sync = run->sync;

    for ( ;; ) {
        if (crm_sync_step(run->lease, res, sync->mcf->sync_max_attempts,
                          (uint64_t) ngx_random() << 31 ^ ngx_random(),
                          &req)
            == CRM_OP_DONE)
        {
            break;
        }

        if (ngx_http_crm_sync_send(run, req) == NGX_OK) {
            return;
        }

        /* not even started: the provider's operation hears why */
        res = &run->res;
    }

    crm_http_response_clear(&run->res);

    /* the session goes on to the next lease; refused credentials' does not */
    b = ngx_http_crm_sync_bucket(sync, run->lease);
    if (b != NULL) {
        ngx_http_crm_sync_forget(b);
        b->session = crm_sync_session(run->lease);
        ngx_memcpy(b->fingerprint, run->lease->fingerprint,
                   sizeof(b->fingerprint));

        if (b->login == run) {
            ngx_http_crm_sync_release(b);
        }
    }

    *sync->finished_last = run->lease;
    sync->finished_last = &run->lease->next;
    ngx_free(run);

    ngx_http_crm_sync_record(sync);
}


/* the finished leases, all in one task, unless one is under way */
static void
ngx_http_crm_sync_record(ngx_http_crm_sync_t *sync)
{
    ngx_uint_t                 n;
    crm_sync_lease_t          *lease;
    ngx_thread_task_t         *task;
    ngx_http_crm_sync_task_t  *t;

    if (sync->recording || sync->finished == NULL) {
        return;
    }

    task = ngx_http_crm_sync_task(sync, ngx_http_crm_sync_recorded,
                                  ngx_http_crm_sync_record_thread);
    if (task != NULL) {
        t = task->ctx;
        t->leases = sync->finished;

        if (ngx_http_crm_task_post(sync->mcf, NGX_HTTP_CRM_POOL_SYNC,
                                   sync->pool, task)
            == NGX_OK)
        {
            sync->finished = NULL;
            sync->finished_last = &sync->finished;
            sync->recording = 1;
            return;
        }

        ngx_free(task);
    }

    /* unrecorded: the leases run out and their jobs go again */
    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  "crm: sync results could not be recorded");

    for (n = 0, lease = sync->finished; lease != NULL; lease = lease->next) {
        n++;
    }

    crm_sync_leases_free(sync->finished);
    sync->finished = NULL;
    sync->finished_last = &sync->finished;
    sync->active -= n;
    ngx_http_crm_sync_arm(sync);
}


/* starts req, or waits for the integration's next token: NGX_OK */
static ngx_int_t
ngx_http_crm_sync_send(ngx_http_crm_sync_run_t *run,
    const crm_http_request_t *req)
{
    ngx_msec_t                wait;
    ngx_http_crm_sync_t      *sync;

    sync = run->sync;

    wait = ngx_http_crm_sync_token(sync, run->lease);

    if (wait > 0) {
        run->req = req;
        run->delay.handler = ngx_http_crm_sync_delayed;
        run->delay.data = run;
        run->delay.log = sync->log;
        ngx_add_timer(&run->delay, wait);
        return NGX_OK;
    }

    crm_http_response_clear(&run->res);

    return ngx_http_crm_outbound_start(req, &run->res, &sync->policy,
                                       ngx_http_crm_sync_answered, run,
                                       sync->log)
           != NULL ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_crm_sync_delayed(ngx_event_t *ev)
{
    ngx_http_crm_sync_run_t *run = ev->data;

    if (ngx_http_crm_sync_send(run, run->req) != NGX_OK) {
        ngx_http_crm_sync_drive(run, &run->res);
    }
}


/*
 * The entry of the lease's integration, made when missing (NULL when out
 * of memory).  Entries not used for a minute go, with their sessions.
 */
static ngx_http_crm_sync_bucket_t *
ngx_http_crm_sync_bucket(ngx_http_crm_sync_t *sync,
    const crm_sync_lease_t *lease)
{
    u_char                       key[80], *last;
    ngx_queue_t                 *q, *next;
    ngx_http_crm_sync_bucket_t  *b, *found;

    last = ngx_snprintf(key, sizeof(key) - 1, "%s/%s", lease->account_id,
                        lease->crm_type);
    *last = '\0';

    found = NULL;

    for (q = ngx_queue_head(&sync->buckets);
         q != ngx_queue_sentinel(&sync->buckets);
         q = next)
    {
        next = ngx_queue_next(q);
        b = ngx_queue_data(q, ngx_http_crm_sync_bucket_t, queue);

        if (ngx_strcmp(b->key, key) == 0) {
            found = b;

        } else if (ngx_current_msec - b->at > NGX_HTTP_CRM_SYNC_IDLE_MS
                   && b->login == NULL)
        {
            ngx_queue_remove(q);
            ngx_http_crm_sync_forget(b);
            ngx_free(b);
        }
    }

    if (found != NULL) {
        return found;
    }

    b = ngx_calloc(sizeof(ngx_http_crm_sync_bucket_t), sync->log);
    if (b == NULL) {
        return NULL;
    }

    ngx_memcpy(b->key, key, sizeof(key));
    b->at = ngx_current_msec;
    b->tokens = -1;
    ngx_queue_init(&b->waiting);
    ngx_queue_insert_tail(&sync->buckets, &b->queue);

    return b;
}


/*
 * The lease that logged in is done: those that waited start, with its
 * session when it got one (else the first of them logs in, the others
 * wait for it in turn)
 */
static void
ngx_http_crm_sync_release(ngx_http_crm_sync_bucket_t *b)
{
    ngx_queue_t              *q;
    ngx_http_crm_sync_run_t  *run;

    b->login = NULL;

    while (!ngx_queue_empty(&b->waiting) && b->login == NULL) {
        q = ngx_queue_head(&b->waiting);
        ngx_queue_remove(q);
        run = ngx_queue_data(q, ngx_http_crm_sync_run_t, queue);

        if (b->session != NULL
            && ngx_strcmp(b->fingerprint, run->lease->fingerprint) == 0)
        {
            crm_sync_resume(run->lease, b->session);

        } else {
            b->login = run;
        }

        ngx_http_crm_sync_drive(run, NULL);
    }
}


/* lets a kept session go, wiped */
static void
ngx_http_crm_sync_forget(ngx_http_crm_sync_bucket_t *b)
{
    if (b->session != NULL) {
        explicit_bzero(b->session, ngx_strlen(b->session));
        ngx_free(b->session);
        b->session = NULL;
    }
}


/* takes a token of the lease's integration: 0, or the ms until one */
static ngx_msec_t
ngx_http_crm_sync_token(ngx_http_crm_sync_t *sync,
    const crm_sync_lease_t *lease)
{
    int64_t                      rate;
    ngx_msec_t                   elapsed;
    ngx_http_crm_sync_bucket_t  *b;

    b = ngx_http_crm_sync_bucket(sync, lease);
    if (b == NULL) {
        return 0;
    }

    /* a provider's Retry-After holds this worker's other leases too */
    if ((ngx_msec_int_t) (b->paused - ngx_current_msec) > 0) {
        return b->paused - ngx_current_msec;
    }

    /* the host's rate, shared out: at least a call a second a worker */
    rate = sync->mcf->sync_rate != NGX_CONF_UNSET
           ? sync->mcf->sync_rate : (int64_t) lease->op.provider->rate;
    rate = rate * 1000 / (int64_t) sync->workers;

    if (rate < 1000) {
        rate = 1000;
    }

    if (b->tokens < 0) {
        b->tokens = rate;
    }

    /* a second's worth at most: the burst */
    elapsed = ngx_current_msec - b->at;
    b->at = ngx_current_msec;
    b->tokens += (int64_t) elapsed * rate / 1000;

    if (b->tokens > rate) {
        b->tokens = rate;
    }

    if (b->tokens >= 1000) {
        b->tokens -= 1000;
        return 0;
    }

    return (ngx_msec_t) ((1000 - b->tokens) * 1000 / rate) + 1;
}


static void
ngx_http_crm_sync_answered(void *data)
{
    ngx_http_crm_sync_run_t *run = data;

    unsigned                     after;
    ngx_http_crm_sync_bucket_t  *b;

    if (run->res.outcome == CRM_HTTP_ANSWERED
        && (run->res.status == 429 || run->res.status == 503))
    {
        after = crm_http_retry_after(&run->res);
        b = ngx_http_crm_sync_bucket(run->sync, run->lease);

        if (after > 0 && b != NULL) {
            b->paused = ngx_current_msec + (ngx_msec_t) after * 1000;
        }
    }

    ngx_http_crm_sync_drive(run, &run->res);
}


static void
ngx_http_crm_sync_record_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_sync_task_t *t = data;

    crm_db_t  *db;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_SYNC);

    db = crm_db_for_thread(t->sync->lcf->db);
    if (db == NULL) {
        t->rc = crm_error_set(&t->err, CRM_E_UNAVAILABLE, NULL,
                              "out of memory");
        return;
    }

    t->rc = crm_sync_record(db, t->leases, &t->err);
}


static void
ngx_http_crm_sync_recorded(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    ngx_uint_t                 n;
    crm_sync_lease_t          *lease;
    ngx_http_crm_sync_t       *sync;
    ngx_http_crm_sync_task_t  *t;

    t = task->ctx;
    sync = t->sync;
    sync->recording = 0;

    if (t->rc != CRM_OK && !ngx_exiting && !ngx_terminate) {
        /*
         * the results wait for the timer's next tick (PostgreSQL away,
         * a conflict); a lease that runs out meanwhile is another's, and
         * its result is then refused by its token
         */
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "crm: recording sync results failed, to be tried "
                      "again: %s", t->err.message);

        for (lease = t->leases; lease->next != NULL; lease = lease->next) {
            /* the last of them */
        }

        lease->next = sync->finished;
        if (sync->finished == NULL) {
            sync->finished_last = &lease->next;
        }

        sync->finished = t->leases;

        ngx_free(task);
        ngx_http_crm_sync_arm(sync);
        return;
    }

    if (t->rc != CRM_OK) {
        /* a worker that quits: the leases run out, the jobs go again */
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "crm: recording sync results failed: %s",
                      t->err.message);
    }

    for (n = 0, lease = t->leases; lease != NULL; lease = lease->next) {
        if (t->rc == CRM_OK) {
            ngx_http_crm_sync_count(sync, lease);
        }

        n++;
    }

    crm_sync_leases_free(t->leases);
    ngx_free(task);

    sync->active -= n;

    ngx_http_crm_sync_record(sync);

    /*
     * a claim reads every integration's head of the queue: claimed again
     * once a quarter of the room is free, not for every lease that ends
     */
    if (!ngx_exiting && !ngx_terminate
        && (ngx_int_t) (sync->mcf->sync_leases - sync->active)
           >= ngx_max(sync->mcf->sync_leases / 4, 1))
    {
        ngx_http_crm_sync_claim(sync);
    }

    ngx_http_crm_sync_arm(sync);
}


/* crm_sync_jobs_total{provider, outcome} */
static void
ngx_http_crm_sync_count(ngx_http_crm_sync_t *sync,
    const crm_sync_lease_t *lease)
{
    size_t       i;
    ngx_uint_t   p, o;

    for (p = 0; crm_providers[p] != NULL; p++) {
        if (ngx_strcmp(crm_providers[p]->type, lease->crm_type) == 0) {
            break;
        }
    }

    if (p >= NGX_HTTP_CRM_SYNC_PROVIDERS || crm_providers[p] == NULL) {
        return;
    }

    for (i = 0; i < lease->njobs; i++) {
        for (o = 0; o < NGX_HTTP_CRM_SYNC_OUTCOMES; o++) {
            if (ngx_strcmp(lease->jobs[i].outcome,
                           ngx_http_crm_sync_outcomes[o]) == 0)
            {
                ngx_http_crm_count(sync->mcf, NGX_HTTP_CRM_SYNC_JOBS
                                   + p * NGX_HTTP_CRM_SYNC_OUTCOMES + o, 1);
            }
        }
    }
}
