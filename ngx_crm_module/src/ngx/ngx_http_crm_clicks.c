/*
 * The click queue: every click a redirect records reaches PostgreSQL, in
 * batches, through a reload, a database outage or a worker's death.
 *
 * The queue is a crm_ring (see crm_ring.h: whole lines, batches freed only
 * once stored) in a shared zone, holding crm_click.h lines, each pushed
 * under the zone's mutex.  A worker's flush timer claims a batch, leased
 * for crm_click_queue's lease and renewed at every tick while the flush
 * runs, and a pool thread of the edge's pool copies it straight from the
 * zone into PostgreSQL; the batch is freed when the commit is known.  A
 * batch whose commit failed is sent again; so is one whose lease ran out
 * (its worker died, or stopped).  Before it commits, the thread checks
 * that the batch is still its claim's: otherwise another worker may have
 * stored it and freed its bytes, and the copy is rolled back.  A click's
 * id is its key, so a batch stored twice is harmless.  A batch that
 * PostgreSQL refuses three times for its content (a data exception or a
 * constraint; never an outage, a lock, a missing table or privilege) is
 * set aside in a ".bad" file of the spool folder, and its clicks counted
 * as dropped.
 *
 * When the ring is full (PostgreSQL down for long), clicks go to the
 * worker's own spool file in crm_click_spool's folder.  A file's writer,
 * and later its replayer, holds an flock() on it: a file nobody holds is
 * free to replay, whatever its name says, so the files of a dead worker
 * are found however it died.  Names: "clicks-<pid>-<msec>-<n>.open" while
 * written, ".ready" once sealed (the database is back, or 10 s passed),
 * ".replay" while replayed, in chunks of 8 MiB, one per timer tick.
 *
 * The zone survives a reload, and the new workers flush it: an old worker
 * leaves the ring to them.  A worker that exits with no newer workers (a
 * quit or stop) spools what the ring still holds, or without a spool
 * keeps flushing until the ring is empty, and counts what it could not.
 */

#include "ngx_http_crm_clicks.h"
#include "ngx_http_crm_state.h"

#include <dirent.h>
#include <sys/file.h>

#include "crm_click.h"
#include "crm_ring.h"
#include "crm_store_edge.h"


#define NGX_HTTP_CRM_CLICKS_LAYOUT   3

/* a spool file is sealed for replay at the latest this old */
#define NGX_HTTP_CRM_SPOOL_SEAL      10000
#define NGX_HTTP_CRM_SPOOL_SCAN      1000
#define NGX_HTTP_CRM_REPLAY_CHUNK    (1024 * 1024)
#define NGX_HTTP_CRM_REPLAY_TASK     (8 * NGX_HTTP_CRM_REPLAY_CHUNK)
#define NGX_HTTP_CRM_TASK_TIMEOUT    60000
#define NGX_HTTP_CRM_BAD_AFTER       3
#define NGX_HTTP_CRM_LOG_EVERY       10000

/* a spool path: the folder (checked against it) and a file name */
#define NGX_HTTP_CRM_PATH_MAX        1024
#define NGX_HTTP_CRM_SPOOL_DIR_MAX   (NGX_HTTP_CRM_PATH_MAX - 128)


typedef struct {
    ngx_uint_t               layout;
    ngx_atomic_t             generation;    /* the newest workers' */
    ngx_atomic_t             spool_bytes;
    crm_ring_t               ring;          /* last: its data follows */
} ngx_http_crm_clicks_shctx_t;


typedef struct {
    ngx_http_crm_clicks_shctx_t  *sh;
    ngx_slab_pool_t              *shpool;
} ngx_http_crm_clicks_ctx_t;


/* a batch on the pool; the thread fills the result fields */
typedef struct {
    ngx_http_crm_main_conf_t  *mcf;
    crm_ring_t                *ring;
    size_t                     slot;
    uint64_t                   token;       /* the claim's */
    crm_str_t                  chunks[2];
    size_t                     nchunks;
    ngx_uint_t                 done;
    crm_status_e               rc;
    uint64_t                   inserted;
    crm_error_t                err;
} ngx_http_crm_flush_t;


/* a spool file's replay, a task per chunk of it */
typedef struct {
    ngx_http_crm_main_conf_t  *mcf;
    ngx_fd_t                   fd;          /* locked; NGX_INVALID_FILE */
    off_t                      offset;
    ngx_uint_t                 eof;
    ngx_uint_t                 done;
    crm_status_e               rc;
    uint64_t                   inserted;
    uint64_t                   torn;        /* a cut-off last line */
    crm_error_t                err;
    u_char                     path[NGX_HTTP_CRM_PATH_MAX];
} ngx_http_crm_replay_t;


typedef struct {
    ngx_fd_t                   fd;
    size_t                     len;
    u_char                     name[NGX_HTTP_CRM_PATH_MAX];
    off_t                      size;
    ngx_msec_t                 opened;
    ngx_uint_t                 seq;
} ngx_http_crm_spool_t;


static ngx_int_t ngx_http_crm_clicks_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_crm_clicks_shctx_t *ngx_http_crm_clicks_sh(
    ngx_http_crm_main_conf_t *mcf, ngx_slab_pool_t **shpool);
static int ngx_http_crm_flush_intact(void *data);
static ngx_uint_t ngx_http_crm_clicks_newer(ngx_http_crm_clicks_shctx_t *sh);
static void ngx_http_crm_flush_timer(ngx_event_t *ev);
static void ngx_http_crm_flush_start(ngx_http_crm_main_conf_t *mcf);
static void ngx_http_crm_flush_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_flush_done(ngx_event_t *ev);
static void ngx_http_crm_flush_finish(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f);
static void ngx_http_crm_flush_end(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f, crm_ring_outcome_e outcome);
static void ngx_http_crm_set_aside(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f);
static ngx_int_t ngx_http_crm_spool_open(ngx_http_crm_main_conf_t *mcf,
    ngx_log_t *log);
static ngx_int_t ngx_http_crm_spool_write(ngx_http_crm_main_conf_t *mcf,
    const u_char *p, size_t len, ngx_log_t *log);
static void ngx_http_crm_spool_seal(ngx_log_t *log);
static void ngx_http_crm_replay_start(ngx_http_crm_main_conf_t *mcf);
static ngx_int_t ngx_http_crm_replay_pick(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_replay_t *rp, ngx_log_t *log);
static void ngx_http_crm_replay_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_replay_done(ngx_event_t *ev);
static void ngx_http_crm_replay_close(ngx_http_crm_replay_t *rp,
    ngx_log_t *log);
static void ngx_http_crm_clicks_drain(ngx_http_crm_main_conf_t *mcf,
    ngx_log_t *log);


/* per worker: one flush and one replay at a time, each with its task */
static ngx_event_t             ngx_http_crm_flush_event;
static ngx_thread_task_t      *ngx_http_crm_flush_task;
static ngx_thread_task_t      *ngx_http_crm_replay_task;
static ngx_uint_t              ngx_http_crm_flushing;
static ngx_uint_t              ngx_http_crm_replaying;
static ngx_http_crm_spool_t    ngx_http_crm_spool;
static ngx_uint_t              ngx_http_crm_db_ok = 1;
static ngx_msec_t              ngx_http_crm_scanned;
static ngx_uint_t              ngx_http_crm_scan_due = 1;
static ngx_msec_t              ngx_http_crm_spool_logged;


char *
ngx_http_crm_click_queue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    ssize_t                     size, zone_size;
    ngx_str_t                  *value, name, s;
    ngx_int_t                   n;
    ngx_uint_t                  i, lease;
    ngx_http_crm_clicks_ctx_t  *ctx;

    if (mcf->click_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    zone_size = 0;
    ngx_str_null(&name);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            if (ngx_http_crm_zone_param(&value[i], &name, &zone_size)
                != NGX_OK)
            {
                goto invalid;
            }

            if (zone_size < (ssize_t) (1024 * 1024)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "click queue \"%V\" must be at least 1m",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0
            || ngx_strncmp(value[i].data, "lease=", 6) == 0)
        {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            lease = value[i].data[0] == 'l';

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < (lease ? 1000 : 1)
                || n > (lease ? 600000 : 10000))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": must be between %s",
                                   &value[i], lease ? "1s and 10m"
                                                    : "1ms and 10s");
                return NGX_CONF_ERROR;
            }

            if (lease) {
                mcf->flush_lease = (ngx_msec_t) n;

            } else {
                mcf->flush_interval = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < 4 * CRM_CLICK_LINE_MAX
                || size > 64 * 1024 * 1024)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": batch must be between 16k and "
                                   "64m", &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->flush_batch = size;
            continue;
        }

        goto invalid;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have the \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_crm_clicks_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->click_zone = ngx_http_crm_zone_add(cf, &name, zone_size,
                                            ngx_http_crm_clicks_init_zone,
                                            ctx);

    return mcf->click_zone ? NGX_CONF_OK : NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


char *
ngx_http_crm_click_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    off_t         max;
    ngx_str_t    *value, s;
    ngx_uint_t    i;
    ngx_path_t   *path;

    if (mcf->spool_dir.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->spool_dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->spool_dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (mcf->spool_dir.len > NGX_HTTP_CRM_SPOOL_DIR_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "click spool path \"%V\" is too long",
                           &mcf->spool_dir);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "max_size=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        s.data = value[i].data + 9;
        s.len = value[i].len - 9;

        max = ngx_parse_offset(&s);
        if (max == NGX_ERROR || max < 1024 * 1024) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": max_size must be at least 1m",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        mcf->spool_max = max;
    }

    /*
     * nginx creates the folder at start and gives it to the workers' user,
     * as it does for its temporary paths
     */
    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = mcf->spool_dir;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Nothing here touches what the zone already holds: on a reload this runs
 * in the master while the old workers still push and flush through it.
 */
static ngx_int_t
ngx_http_crm_clicks_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_crm_clicks_ctx_t  *octx = data;

    size_t                        size, want;
    ngx_http_crm_clicks_ctx_t    *ctx;
    ngx_http_crm_clicks_shctx_t  *sh;

    ctx = shm_zone->data;

    if (octx) {
        if (octx->sh->layout != NGX_HTTP_CRM_CLICKS_LAYOUT) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "click queue \"%V\" was made by another version",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    /* the ring takes what the slab allocator can give in one piece */
    sh = NULL;
    want = shm_zone->shm.size - shm_zone->shm.size / 8;

    for (size = want; size >= want / 4; size -= want / 8) {
        sh = ngx_slab_alloc(ctx->shpool, size);
        if (sh != NULL) {
            break;
        }
    }

    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_crm_clicks_shctx_t));

    sh->layout = NGX_HTTP_CRM_CLICKS_LAYOUT;

    crm_ring_init(&sh->ring, size - sizeof(ngx_http_crm_clicks_shctx_t),
                  sizeof(ngx_http_crm_clicks_shctx_t)
                  - offsetof(ngx_http_crm_clicks_shctx_t, ring));

    ctx->sh = sh;
    ctx->shpool->data = sh;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool,
                                          sizeof(" in click queue \"\"")
                                          + shm_zone->shm.name.len);
    if (ctx->shpool->log_ctx != NULL) {
        ngx_sprintf(ctx->shpool->log_ctx, " in click queue \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    return NGX_OK;
}


static ngx_http_crm_clicks_shctx_t *
ngx_http_crm_clicks_sh(ngx_http_crm_main_conf_t *mcf,
    ngx_slab_pool_t **shpool)
{
    ngx_http_crm_clicks_ctx_t  *ctx;

    if (shpool) {
        *shpool = NULL;
    }

    if (mcf == NULL || mcf->click_zone == NULL) {
        return NULL;
    }

    ctx = mcf->click_zone->data;

    if (shpool) {
        *shpool = ctx->shpool;
    }

    return ctx->sh;
}


ngx_int_t
ngx_http_crm_clicks_gauges(ngx_http_crm_main_conf_t *mcf,
    size_t *queued_bytes, size_t *queue_size, off_t *spool_bytes)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);
    if (sh == NULL) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&shpool->mutex);
    *queued_bytes = crm_ring_used(&sh->ring);
    ngx_shmtx_unlock(&shpool->mutex);

    *queue_size = sh->ring.size;
    *spool_bytes = (off_t) sh->spool_bytes;

    return NGX_OK;
}


void
ngx_http_crm_clicks_push(ngx_http_crm_main_conf_t *mcf, const u_char *line,
    size_t len, ngx_log_t *log)
{
    int                           rc;
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);
    rc = crm_ring_push(&sh->ring, line, len);
    ngx_shmtx_unlock(&shpool->mutex);

    if (rc == 0) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_QUEUED, 1);
        return;
    }

    if (ngx_http_crm_spool_write(mcf, line, len, log) == NGX_OK) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_SPOOLED, 1);
        return;
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_DROPPED, 1);
}


/*
 * A pool thread, after it read the batch where it lies and before it
 * commits: the bytes were the batch's only if no other worker has claimed
 * it since (then it could have stored and freed them).
 */
static int
ngx_http_crm_flush_intact(void *data)
{
    ngx_http_crm_flush_t *f = data;

    return crm_ring_token(f->ring, f->slot) == f->token;
}


/* whether workers of a newer configuration run (a reload) */
static ngx_uint_t
ngx_http_crm_clicks_newer(ngx_http_crm_clicks_shctx_t *sh)
{
    return sh->generation > ngx_http_crm_config_generation;
}


ngx_int_t
ngx_http_crm_clicks_init_process(ngx_cycle_t *cycle)
{
    ngx_atomic_uint_t             g;
    ngx_http_crm_main_conf_t     *mcf;
    ngx_http_crm_clicks_shctx_t  *sh;

    /* not in the cache manager and loader, which never serve requests */
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->click_zone == NULL || mcf->edge_pool == NULL) {
        return NGX_OK;
    }

    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    /* the zone learns that this configuration's workers run */
    do {
        g = sh->generation;
    } while (g < ngx_http_crm_config_generation
             && !ngx_atomic_cmp_set(&sh->generation, g,
                                    ngx_http_crm_config_generation));

    ngx_http_crm_spool.fd = NGX_INVALID_FILE;

    ngx_http_crm_flush_task = ngx_thread_task_alloc(cycle->pool,
                                                sizeof(ngx_http_crm_flush_t));
    ngx_http_crm_replay_task = ngx_thread_task_alloc(cycle->pool,
                                                sizeof(ngx_http_crm_replay_t));

    if (ngx_http_crm_flush_task == NULL || ngx_http_crm_replay_task == NULL) {
        return NGX_ERROR;
    }

    ngx_http_crm_flush_task->handler = ngx_http_crm_flush_thread;
    ngx_http_crm_flush_task->event.handler = ngx_http_crm_flush_done;
    ngx_http_crm_flush_task->event.data = ngx_http_crm_flush_task;
    ngx_http_crm_flush_task->event.log = cycle->log;

    ((ngx_http_crm_replay_t *) ngx_http_crm_replay_task->ctx)->fd =
                                                          NGX_INVALID_FILE;
    ngx_http_crm_replay_task->handler = ngx_http_crm_replay_thread;
    ngx_http_crm_replay_task->event.handler = ngx_http_crm_replay_done;
    ngx_http_crm_replay_task->event.data = ngx_http_crm_replay_task;
    ngx_http_crm_replay_task->event.log = cycle->log;

    ngx_http_crm_flush_event.handler = ngx_http_crm_flush_timer;
    ngx_http_crm_flush_event.data = mcf;
    ngx_http_crm_flush_event.log = cycle->log;
    ngx_http_crm_flush_event.cancelable = 1;

    ngx_add_timer(&ngx_http_crm_flush_event, mcf->flush_interval);

    return NGX_OK;
}


static void
ngx_http_crm_flush_timer(ngx_event_t *ev)
{
    ngx_http_crm_main_conf_t *mcf = ev->data;

    ngx_uint_t                    quitting, empty;
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);
    f = ngx_http_crm_flush_task->ctx;

    ngx_shmtx_lock(&shpool->mutex);

    /*
     * the lease of this worker's flush goes on while it runs; that of a
     * worker gone or stopped runs out, and its batch is sent again
     */
    if (ngx_http_crm_flushing) {
        crm_ring_renew(&sh->ring, f->slot, f->token,
                       (int64_t) (ngx_current_msec + mcf->flush_lease));
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_BATCHES_RECOVERED,
                       (ngx_atomic_int_t) crm_ring_recover(&sh->ring,
                                              (int64_t) ngx_current_msec));
    empty = crm_ring_empty(&sh->ring);

    ngx_shmtx_unlock(&shpool->mutex);

    if (!ngx_http_crm_flushing) {
        ngx_http_crm_flush_start(mcf);
    }

    quitting = (ngx_exiting || ngx_terminate)
               && !ngx_http_crm_clicks_newer(sh);

    if (mcf->spool_dir.len) {
        /*
         * a spool file is sealed for replay when the ring drains again,
         * or after a while, not at each tick of an overload
         */
        if (ngx_http_crm_spool.fd != NGX_INVALID_FILE
            && ((ngx_http_crm_db_ok
                 && crm_ring_used(&sh->ring) < sh->ring.size / 2)
                || ngx_current_msec - ngx_http_crm_spool.opened
                   >= NGX_HTTP_CRM_SPOOL_SEAL))
        {
            ngx_http_crm_spool_seal(ev->log);
        }

        if (!ngx_http_crm_replaying && !ngx_exiting && !ngx_terminate) {
            ngx_http_crm_replay_start(mcf);
        }
    }

    /*
     * A quitting worker without a spool holds its exit until the ring is
     * flushed (or worker_shutdown_timeout ends it); with a spool, or with
     * newer workers to flush the ring, it never waits for this timer.
     */
    ev->cancelable = !(quitting && mcf->spool_dir.len == 0 && !empty);

    ngx_add_timer(ev, mcf->flush_interval);
}


static void
ngx_http_crm_flush_start(ngx_http_crm_main_conf_t *mcf)
{
    int                           rc;
    ngx_slab_pool_t              *shpool;
    ngx_thread_task_t            *task;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    task = ngx_http_crm_flush_task;
    f = task->ctx;
    ngx_memzero(f, sizeof(ngx_http_crm_flush_t));
    f->mcf = mcf;
    f->ring = &sh->ring;

    ngx_shmtx_lock(&shpool->mutex);

    rc = crm_ring_claim(&sh->ring, mcf->flush_batch,
                        (int64_t) (ngx_current_msec + mcf->flush_lease),
                        &f->slot, &f->token);

    if (rc == 0) {
        f->nchunks = crm_ring_chunks(&sh->ring, f->slot, f->chunks);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (rc != 0) {
        return;
    }

    if (ngx_http_crm_task_post(mcf, NGX_HTTP_CRM_POOL_EDGE, mcf->edge_pool,
                               task)
        != NGX_OK)
    {
        f->rc = crm_error_set(&f->err, CRM_E_UNAVAILABLE, NULL,
                              "thread pool queue full");
        ngx_http_crm_flush_finish(mcf, f);
        return;
    }

    ngx_http_crm_flushing = 1;

    ngx_add_timer(&task->event, NGX_HTTP_CRM_TASK_TIMEOUT);
}


/* a pool thread: the batch's bytes are read where they lie, in the zone */
static void
ngx_http_crm_flush_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_flush_t *f = data;

    crm_db_t           *db;
    crm_edge_intact_t   intact;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_EDGE);

    db = crm_db_for_thread(f->mcf->click_db);

    intact.check = ngx_http_crm_flush_intact;
    intact.data = f;

    if (db == NULL) {
        f->rc = crm_error_set(&f->err, CRM_E_UNAVAILABLE, NULL,
                              "out of memory");

    } else {
        f->rc = crm_store_edge_clicks(db, f->chunks, f->nchunks, &intact,
                                      &f->inserted, &f->err);
    }

    ngx_memory_barrier();
    f->done = 1;
}


static void
ngx_http_crm_flush_done(ngx_event_t *ev)
{
    ngx_thread_task_t         *task = ev->data;

    ngx_http_crm_flush_t      *f;
    ngx_http_crm_main_conf_t  *mcf;

    f = task->ctx;
    mcf = f->mcf;

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "crm: click flush still running after %ums",
                      NGX_HTTP_CRM_TASK_TIMEOUT);
        ev->timedout = 0;
        ngx_add_timer(ev, NGX_HTTP_CRM_TASK_TIMEOUT);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    ngx_http_crm_flushing = 0;

    ngx_http_crm_flush_finish(mcf, f);

    /* a backlog is sent on at once, not a timer tick later */
    if (f->rc == CRM_OK) {
        ngx_http_crm_flush_start(mcf);
    }
}


static void
ngx_http_crm_flush_finish(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f)
{
    ngx_uint_t                    failures;
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    if (f->rc == CRM_OK) {
        ngx_http_crm_db_ok = 1;
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_FLUSHED,
                           (ngx_atomic_int_t) f->inserted);
        ngx_http_crm_flush_end(mcf, f, CRM_RING_STORED);
        return;
    }

    /* another worker took the batch over: it is that worker's now */
    if (f->rc == CRM_E_GONE) {
        return;
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_FLUSH_FAILURES, 1);

    if (!crm_db_refused_data(&f->err)) {
        /* an outage, a lock, a schema or privilege problem: logged once */
        if (ngx_http_crm_db_ok) {
            ngx_log_error((f->rc == CRM_E_UNAVAILABLE ? NGX_LOG_WARN
                                                      : NGX_LOG_ERR),
                          ngx_cycle->log, 0,
                          "crm: click flush failed, clicks stay queued: "
                          "%s (%s)", f->err.message, f->err.cause);
        }

        ngx_http_crm_db_ok = 0;
        ngx_http_crm_flush_end(mcf, f, CRM_RING_UNSTORED);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "crm: click flush refused: %s (%s)",
                  f->err.message, f->err.cause);

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);
    failures = crm_ring_token(&sh->ring, f->slot) == f->token
               ? sh->ring.batches[f->slot].failures + 1 : 0;
    ngx_shmtx_unlock(&shpool->mutex);

    if (failures < NGX_HTTP_CRM_BAD_AFTER) {
        ngx_http_crm_flush_end(mcf, f, CRM_RING_REFUSED);
        return;
    }

    ngx_http_crm_set_aside(mcf, f);
    ngx_http_crm_flush_end(mcf, f, CRM_RING_STORED);
}


/* the claim ends, unless another worker took the batch over meanwhile */
static void
ngx_http_crm_flush_end(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f, crm_ring_outcome_e outcome)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);
    (void) crm_ring_finish(&sh->ring, f->slot, f->token, outcome);
    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * A batch PostgreSQL refused again and again for its content: its bytes
 * go to a ".bad" file of the spool folder for an operator, never replayed,
 * and its clicks count as dropped, so that the ring moves on.
 */
static void
ngx_http_crm_set_aside(ngx_http_crm_main_conf_t *mcf, ngx_http_crm_flush_t *f)
{
    size_t     i;
    ssize_t    n;
    uint64_t   lines;
    ngx_fd_t   fd;
    u_char     name[NGX_HTTP_CRM_PATH_MAX];

    lines = 0;

    for (i = 0; i < f->nchunks; i++) {
        lines += crm_click_count(f->chunks[i]);
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_DROPPED,
                       (ngx_atomic_int_t) lines);
    ngx_http_crm_count(mcf, NGX_HTTP_CRM_BATCHES_SET_ASIDE, 1);

    if (mcf->spool_dir.len == 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "crm: %uL clicks that PostgreSQL refuses are dropped",
                      lines);
        return;
    }

    ngx_sprintf(name, "%V/clicks-%P-%M-%ui.bad%Z", &mcf->spool_dir, ngx_pid,
                ngx_current_msec, ngx_http_crm_spool.seq++);

    fd = ngx_open_file(name, NGX_FILE_WRONLY, NGX_FILE_CREATE_OR_OPEN, 0600);

    for (i = 0, n = 0; fd != NGX_INVALID_FILE && i < f->nchunks; i++) {
        n = write(fd, f->chunks[i].data, f->chunks[i].len);
        if (n != (ssize_t) f->chunks[i].len) {
            break;
        }
    }

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "crm: %uL clicks that PostgreSQL refuses are set aside "
                  "in \"%s\"%s", lines, name,
                  i == f->nchunks ? "" : " (writing failed)");
}


/*
 * The worker's own spool file, made under a name the replay ignores,
 * locked, then named: a replay never sees it unlocked while it lives.
 */
static ngx_int_t
ngx_http_crm_spool_open(ngx_http_crm_main_conf_t *mcf, ngx_log_t *log)
{
    u_char                 tmp[NGX_HTTP_CRM_PATH_MAX];
    ngx_http_crm_spool_t  *sp;

    sp = &ngx_http_crm_spool;

    sp->len = ngx_sprintf(sp->name, "%V/clicks-%P-%M-%ui.open%Z",
                          &mcf->spool_dir, ngx_pid, ngx_current_msec,
                          sp->seq++)
              - sp->name - 1;

    ngx_sprintf(tmp, "%V/new-%P.tmp%Z", &mcf->spool_dir, ngx_pid);

    sp->fd = ngx_open_file(tmp, NGX_FILE_APPEND, NGX_FILE_TRUNCATE, 0600);
    if (sp->fd == NGX_INVALID_FILE) {
        return NGX_ERROR;
    }

    if (flock(sp->fd, LOCK_EX | LOCK_NB) == -1
        || ngx_rename_file(tmp, sp->name) == NGX_FILE_ERROR)
    {
        (void) ngx_close_file(sp->fd);
        sp->fd = NGX_INVALID_FILE;
        return NGX_ERROR;
    }

    sp->size = 0;
    sp->opened = ngx_current_msec;

    return NGX_OK;
}


/*
 * A line is written whole or not at all: a short write is cut off again,
 * and if that fails the file is sealed, so a file holds only whole lines
 * (but for a worker killed inside write()).  This blocks the event loop on
 * the disk, which is only ever the case while the ring is full.
 */
static ngx_int_t
ngx_http_crm_spool_write(ngx_http_crm_main_conf_t *mcf, const u_char *p,
    size_t len, ngx_log_t *log)
{
    ssize_t                       n;
    ngx_err_t                     err;
    ngx_http_crm_spool_t         *sp;
    ngx_http_crm_clicks_shctx_t  *sh;

    sp = &ngx_http_crm_spool;
    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    if (mcf->spool_dir.len == 0
        || (off_t) (sh->spool_bytes + len) > mcf->spool_max)
    {
        return NGX_DECLINED;
    }

    if (sp->fd == NGX_INVALID_FILE
        && ngx_http_crm_spool_open(mcf, log) != NGX_OK)
    {
        err = ngx_errno;
        goto failed;
    }

    n = write(sp->fd, p, len);

    if (n == (ssize_t) len) {
        sp->size += len;
        (void) ngx_atomic_fetch_add(&sh->spool_bytes, len);
        return NGX_OK;
    }

    err = ngx_errno;

    if (n > 0 && ftruncate(sp->fd, sp->size) == -1) {
        ngx_http_crm_spool_seal(log);
    }

failed:

    /* a full disk is logged every 10 s, not for every click */
    if (ngx_current_msec - ngx_http_crm_spool_logged >= NGX_HTTP_CRM_LOG_EVERY
        || ngx_http_crm_spool_logged == 0)
    {
        ngx_http_crm_spool_logged = ngx_current_msec;
        ngx_log_error(NGX_LOG_ALERT, log, err,
                      "crm: cannot spool clicks in \"%V\", dropping them",
                      &mcf->spool_dir);
    }

    return NGX_ERROR;
}


/* closes the worker's spool file (its lock goes) and names it ready */
static void
ngx_http_crm_spool_seal(ngx_log_t *log)
{
    u_char                 ready[NGX_HTTP_CRM_PATH_MAX];
    ngx_http_crm_spool_t  *sp;

    sp = &ngx_http_crm_spool;

    if (sp->fd == NGX_INVALID_FILE) {
        return;
    }

    /* "....open" becomes "....ready" before the lock goes */
    ngx_sprintf(ready, "%*s.ready%Z", sp->len - 5, sp->name);

    if (ngx_rename_file(sp->name, ready) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" failed", sp->name);
    }

    if (ngx_close_file(sp->fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", sp->name);
    }

    sp->fd = NGX_INVALID_FILE;
    ngx_http_crm_scan_due = 1;
}


static void
ngx_http_crm_replay_start(ngx_http_crm_main_conf_t *mcf)
{
    ngx_thread_task_t            *task;
    ngx_http_crm_replay_t        *rp;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, NULL);
    task = ngx_http_crm_replay_task;
    rp = task->ctx;

    /* a file being replayed goes on, one chunk a tick */
    if (rp->fd == NGX_INVALID_FILE) {

        /*
         * the folder is looked at every second while it holds clicks, and
         * every 5 s otherwise: files may come from workers of a zone that
         * a reload replaced, which this zone's count never saw
         */
        if (!ngx_http_crm_scan_due
            && ngx_current_msec - ngx_http_crm_scanned
               < (sh->spool_bytes ? NGX_HTTP_CRM_SPOOL_SCAN
                                  : 5 * NGX_HTTP_CRM_SPOOL_SCAN))
        {
            return;
        }

        ngx_http_crm_scanned = ngx_current_msec;
        ngx_http_crm_scan_due = 0;

        rp->mcf = mcf;

        if (ngx_http_crm_replay_pick(mcf, rp, ngx_cycle->log) != NGX_OK) {
            return;
        }
    }

    rp->done = 0;
    rp->rc = CRM_OK;
    rp->inserted = 0;
    rp->torn = 0;

    if (ngx_http_crm_task_post(mcf, NGX_HTTP_CRM_POOL_EDGE, mcf->edge_pool,
                               task)
        != NGX_OK)
    {
        return;
    }

    ngx_http_crm_replaying = 1;

    ngx_add_timer(&task->event, NGX_HTTP_CRM_TASK_TIMEOUT);
}


/*
 * Finds a spool file nobody holds: sealed, or left by a worker that died
 * writing or replaying it.  Holding its lock makes it this worker's; it
 * is renamed ".replay".  Also recounts the folder's bytes, which a full
 * restart forgets.
 */
static ngx_int_t
ngx_http_crm_replay_pick(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_replay_t *rp, ngx_log_t *log)
{
    u_char                        from[NGX_HTTP_CRM_PATH_MAX];
    char                         *dot;
    off_t                         total;
    DIR                          *dir;
    size_t                        len;
    ngx_fd_t                      fd;
    ngx_int_t                     rc;
    struct stat                   st, fst;
    struct dirent                *de;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    dir = opendir((const char *) mcf->spool_dir.data);
    if (dir == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "opendir() \"%V\" failed", &mcf->spool_dir);
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;
    total = 0;

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);
        dot = ngx_strchr(de->d_name, '.');

        if (len > 100 || ngx_strncmp(de->d_name, "clicks-", 7) != 0
            || dot == NULL
            || (ngx_strcmp(dot, ".open") != 0
                && ngx_strcmp(dot, ".ready") != 0
                && ngx_strcmp(dot, ".replay") != 0))
        {
            continue;
        }

        ngx_sprintf(from, "%V/%s%Z", &mcf->spool_dir, de->d_name);

        if (stat((const char *) from, &st) == -1) {
            continue;
        }

        total += st.st_size;

        if (rc == NGX_OK) {
            continue;
        }

        fd = ngx_open_file(from, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            continue;
        }

        /*
         * held: its writer or replayer lives; gone since the listing, or
         * replaced by another file of that name: not this one
         */
        if (flock(fd, LOCK_EX | LOCK_NB) == -1
            || fstat(fd, &fst) == -1 || fst.st_nlink == 0
            || stat((const char *) from, &st) == -1
            || st.st_ino != fst.st_ino)
        {
            (void) ngx_close_file(fd);
            continue;
        }

        ngx_sprintf(rp->path, "%*s.replay%Z",
                    mcf->spool_dir.len + 1 + (dot - de->d_name), from);

        if (ngx_strcmp(rp->path, from) != 0
            && ngx_rename_file(from, rp->path) == NGX_FILE_ERROR)
        {
            (void) ngx_close_file(fd);
            continue;
        }

        rp->fd = fd;
        rp->offset = 0;
        rp->eof = 0;
        rc = NGX_OK;
    }

    closedir(dir);

    sh->spool_bytes = (ngx_atomic_uint_t) total;

    return rc;
}


/*
 * A pool thread: up to NGX_HTTP_CRM_REPLAY_TASK bytes of the file from
 * its offset, in chunks of whole lines, each in its own transaction;
 * clicks already stored are skipped, so a replay cut short and done again
 * counts nothing twice.  A last line without its newline is a write cut
 * short by the writer's death: not a click.
 */
static void
ngx_http_crm_replay_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_replay_t *rp = data;

    u_char     *buf, *nl;
    off_t       start;
    size_t      have, used;
    ssize_t     n;
    uint64_t    inserted;
    crm_db_t   *db;
    crm_str_t   chunk;

    ngx_http_crm_task_started(NGX_HTTP_CRM_POOL_EDGE);

    db = crm_db_for_thread(rp->mcf->click_db);
    buf = ngx_alloc(NGX_HTTP_CRM_REPLAY_CHUNK, log);

    if (db == NULL || buf == NULL) {
        rp->rc = crm_error_set(&rp->err, CRM_E_UNAVAILABLE, NULL,
                               "out of memory");
        goto done;
    }

    start = rp->offset;
    have = 0;

    while (rp->offset - start < NGX_HTTP_CRM_REPLAY_TASK) {
        n = pread(rp->fd, buf + have, NGX_HTTP_CRM_REPLAY_CHUNK - have,
                  rp->offset + (off_t) have);

        if (n == -1) {
            rp->rc = crm_error_set(&rp->err, CRM_E_UNAVAILABLE, NULL,
                                   "cannot read the spool file");
            break;
        }

        have += n;
        nl = have ? memrchr(buf, '\n', have) : NULL;

        if (nl == NULL) {
            if (n == 0 || have == NGX_HTTP_CRM_REPLAY_CHUNK) {
                /* the end, or a "line" no writer makes */
                rp->torn = have ? 1 : 0;
                rp->eof = 1;
                break;
            }

            continue;
        }

        used = nl + 1 - buf;
        chunk.data = (const char *) buf;
        chunk.len = used;

        rp->rc = crm_store_edge_clicks(db, &chunk, 1, NULL, &inserted,
                                       &rp->err);
        if (rp->rc != CRM_OK) {
            break;
        }

        rp->inserted += inserted;
        rp->offset += used;
        have = 0;
    }

done:

    if (buf != NULL) {
        ngx_free(buf);
    }

    ngx_memory_barrier();
    rp->done = 1;
}


static void
ngx_http_crm_replay_done(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    u_char                  bad[NGX_HTTP_CRM_PATH_MAX];
    ngx_http_crm_replay_t  *rp;

    rp = task->ctx;

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "crm: click replay still running after %ums",
                      NGX_HTTP_CRM_TASK_TIMEOUT);
        ev->timedout = 0;
        ngx_add_timer(ev, NGX_HTTP_CRM_TASK_TIMEOUT);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    ngx_http_crm_replaying = 0;

    ngx_http_crm_count(rp->mcf, NGX_HTTP_CRM_CLICKS_REPLAYED,
                       (ngx_atomic_int_t) rp->inserted);
    ngx_http_crm_count(rp->mcf, NGX_HTTP_CRM_CLICKS_DROPPED,
                       (ngx_atomic_int_t) rp->torn);

    if (rp->rc == CRM_OK) {
        if (rp->eof) {
            if (ngx_delete_file(rp->path) == NGX_FILE_ERROR) {
                ngx_log_error(NGX_LOG_ALERT, ev->log, ngx_errno,
                              ngx_delete_file_n " \"%s\" failed", rp->path);
            }

            ngx_http_crm_replay_close(rp, ev->log);
            ngx_http_crm_scan_due = 1;
        }

        return;
    }

    if (!crm_db_refused_data(&rp->err)) {
        /* kept, and this worker goes on where it stopped */
        ngx_http_crm_db_ok = 0;
        return;
    }

    /* PostgreSQL refuses its content: kept aside, never retried */
    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "crm: click replay of \"%s\" failed, the file is set "
                  "aside as \".bad\": %s (%s)",
                  rp->path, rp->err.message, rp->err.cause);

    ngx_sprintf(bad, "%s.bad%Z", rp->path);

    if (ngx_rename_file(rp->path, bad) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, ngx_errno,
                      ngx_rename_file_n " \"%s\" failed", rp->path);
    }

    ngx_http_crm_replay_close(rp, ev->log);
}


/* the file is no longer this worker's: its lock goes */
static void
ngx_http_crm_replay_close(ngx_http_crm_replay_t *rp, ngx_log_t *log)
{
    if (rp->fd != NGX_INVALID_FILE
        && ngx_close_file(rp->fd) == NGX_FILE_ERROR)
    {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", rp->path);
    }

    rp->fd = NGX_INVALID_FILE;
}


/*
 * When no worker is left to flush the ring: what it holds goes to this
 * worker's spool file, a batch at a time, or with no spool (or no room in
 * it) is dropped, and counted.
 */
static void
ngx_http_crm_clicks_drain(ngx_http_crm_main_conf_t *mcf, ngx_log_t *log)
{
    int                           rc;
    size_t                        i, n, slot;
    uint64_t                      lines, token;
    crm_str_t                     chunks[2];
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    for ( ;; ) {
        ngx_shmtx_lock(&shpool->mutex);

        rc = crm_ring_claim(&sh->ring, mcf->flush_batch,
                            (int64_t) (ngx_current_msec + mcf->flush_lease),
                            &slot, &token);

        if (rc == 0) {
            n = crm_ring_chunks(&sh->ring, slot, chunks);
        }

        ngx_shmtx_unlock(&shpool->mutex);

        if (rc != 0) {
            return;
        }

        for (i = 0; i < n; i++) {
            if (ngx_http_crm_spool_write(mcf, (u_char *) chunks[i].data,
                                         chunks[i].len, log)
                != NGX_OK)
            {
                break;
            }
        }

        for (lines = 0; i < n; i++) {
            lines += crm_click_count(chunks[i]);
        }

        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_DROPPED,
                           (ngx_atomic_int_t) lines);

        ngx_shmtx_lock(&shpool->mutex);
        (void) crm_ring_finish(&sh->ring, slot, token, CRM_RING_STORED);
        ngx_shmtx_unlock(&shpool->mutex);
    }
}


/*
 * The thread pools have drained before this runs (their module exits
 * first): a flush or replay posted by this worker has ended.  On a fast
 * shutdown its completion handler has not run, so its result is read
 * here.  Without newer workers, what the ring still holds is spooled, or
 * counted as dropped when there is no spool.
 */
void
ngx_http_crm_clicks_exit_process(ngx_cycle_t *cycle)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_replay_t        *rp;
    ngx_http_crm_main_conf_t     *mcf;
    ngx_http_crm_clicks_shctx_t  *sh;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);
    if (sh == NULL || ngx_http_crm_flush_task == NULL) {
        return;
    }

    if (ngx_http_crm_flushing) {
        f = ngx_http_crm_flush_task->ctx;

        if (!f->done) {
            f->rc = CRM_E_UNAVAILABLE;
        }

        ngx_http_crm_flush_finish(mcf, f);
        ngx_http_crm_flushing = 0;
    }

    rp = ngx_http_crm_replay_task->ctx;

    if (rp->fd != NGX_INVALID_FILE) {
        /* the rest of the file waits for another worker */
        ngx_http_crm_replay_close(rp, cycle->log);
    }

    if (!ngx_http_crm_clicks_newer(sh)) {
        ngx_http_crm_clicks_drain(mcf, cycle->log);
    }

    ngx_http_crm_spool_seal(cycle->log);
}
