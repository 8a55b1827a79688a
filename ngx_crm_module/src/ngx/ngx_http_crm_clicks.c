/*
 * The click queue: every click a redirect records reaches PostgreSQL, in
 * batches, through a reload, a database outage or a worker's death.
 *
 * The queue is a byte ring in a shared zone, holding whole crm_click.h
 * lines (COPY text), written under the zone's mutex.  A line never wraps:
 * when it does not fit before the end of the buffer, the rest of the lap
 * is skipped (the "gap", at most one between the oldest and the newest
 * byte).  Three offsets only grow:
 *
 *   head   the first byte still needed: every byte before it is stored
 *   claim  the first byte no flush has taken yet
 *   tail   where the next line goes
 *
 * A worker's flush timer claims [claim, ...) as a batch, whole lines, and
 * a pool thread copies it straight from the zone into PostgreSQL.  The
 * batch is freed (head moves) only when its commit is known; a batch whose
 * commit failed is sent again, and so is one whose worker died: a batch
 * remembers its worker, and a worker that no longer exists is found with
 * kill(pid, 0).  A batch sent twice is harmless: a click's id is its key.
 *
 * When the ring is full (PostgreSQL down for long), lines go to the
 * worker's own spool file in crm_click_spool's folder, "clicks-<pid>-*.
 * open", sealed as ".ready" once the database is back or the worker
 * exits; any worker replays ready files, and the files of dead workers,
 * by renaming them to ".replay-<pid>" first.  A click is dropped only when
 * the spool is full too, or not configured, and every drop is counted.
 *
 * A worker that exits (reload, quit) takes what is left in the ring and
 * in its unfinished batches into its spool file: the next workers, or
 * the next start, replay it.  The zone itself survives a reload.
 */

#include "ngx_http_crm_module.h"

#include <dirent.h>

#include "crm_click.h"


#define NGX_HTTP_CRM_CLICKS_LAYOUT   1
#define NGX_HTTP_CRM_BATCHES         16
#define NGX_HTTP_CRM_NO_GAP          ((uint64_t) -1)

/* a spool file is sealed for replay at the latest this old */
#define NGX_HTTP_CRM_SPOOL_SEAL      10000
#define NGX_HTTP_CRM_SPOOL_SCAN      1000
#define NGX_HTTP_CRM_REPLAY_CHUNK    (1024 * 1024)
#define NGX_HTTP_CRM_TASK_TIMEOUT    60000

/* a spool path: the folder (checked against it) and a file name */
#define NGX_HTTP_CRM_PATH_MAX        1024
#define NGX_HTTP_CRM_SPOOL_DIR_MAX   (NGX_HTTP_CRM_PATH_MAX - 128)


typedef enum {
    NGX_HTTP_CRM_BATCH_FREE = 0,
    NGX_HTTP_CRM_BATCH_CLAIMED,
    NGX_HTTP_CRM_BATCH_DONE,
    NGX_HTTP_CRM_BATCH_RETRY
} ngx_http_crm_batch_e;


typedef struct {
    uint64_t                 start;
    uint64_t                 end;
    ngx_pid_t                pid;
    ngx_uint_t               state;
} ngx_http_crm_batch_t;


/*
 * Each worker counts in its own cache line, by process slot: redirects
 * count on every request, and two workers adding to one line would
 * bounce it between cores.  /metrics adds the slots up.
 */
#define NGX_HTTP_CRM_SLOTS           64

typedef struct {
    ngx_atomic_t             v[NGX_HTTP_CRM_NCOUNTERS];
} __attribute__((aligned(64))) ngx_http_crm_counters_t;


typedef struct {
    ngx_uint_t               layout;
    size_t                   size;          /* of data[] */
    uint64_t                 head;
    uint64_t                 claim;
    uint64_t                 tail;
    uint64_t                 gap;           /* where the gap starts */
    ngx_http_crm_batch_t     batches[NGX_HTTP_CRM_BATCHES];
    ngx_atomic_t             spool_bytes;
    ngx_http_crm_counters_t  counters[NGX_HTTP_CRM_SLOTS];
    u_char                   data[1];
} ngx_http_crm_clicks_shctx_t;


typedef struct {
    ngx_http_crm_clicks_shctx_t  *sh;
    ngx_slab_pool_t              *shpool;
} ngx_http_crm_clicks_ctx_t;


/* a flush or a replay on the pool; the thread fills the result fields */
typedef struct {
    ngx_http_crm_main_conf_t  *mcf;
    ngx_uint_t                 batch;       /* flush: the slot */
    crm_str_t                  chunks[2];
    size_t                     nchunks;
    ngx_uint_t                 done;
    crm_status_e               rc;
    uint64_t                   inserted;
    uint64_t                   torn;        /* replay: cut-off lines */
    crm_error_t                err;
    u_char                     path[NGX_HTTP_CRM_PATH_MAX];    /* replay */
} ngx_http_crm_flush_t;


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
static uint64_t ngx_http_crm_ring_skip(ngx_http_crm_clicks_shctx_t *sh,
    uint64_t off);
static size_t ngx_http_crm_ring_chunks(ngx_http_crm_clicks_shctx_t *sh,
    uint64_t start, uint64_t end, crm_str_t *chunks);
static ngx_int_t ngx_http_crm_ring_claim(ngx_http_crm_clicks_shctx_t *sh,
    size_t max, ngx_uint_t *slot);
static uint64_t ngx_http_crm_ring_line_end(ngx_http_crm_clicks_shctx_t *sh,
    uint64_t start, uint64_t limit);
static void ngx_http_crm_ring_release(ngx_http_crm_clicks_shctx_t *sh);
static void ngx_http_crm_ring_recover(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_clicks_shctx_t *sh);
static void ngx_http_crm_flush_timer(ngx_event_t *ev);
static void ngx_http_crm_flush_start(ngx_http_crm_main_conf_t *mcf);
static void ngx_http_crm_flush_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_flush_done(ngx_event_t *ev);
static void ngx_http_crm_flush_finish(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f);
static ngx_int_t ngx_http_crm_spool_write(ngx_http_crm_main_conf_t *mcf,
    const u_char *p, size_t len, ngx_log_t *log);
static void ngx_http_crm_spool_seal(ngx_http_crm_main_conf_t *mcf,
    ngx_log_t *log);
static void ngx_http_crm_replay_start(ngx_http_crm_main_conf_t *mcf);
static ngx_int_t ngx_http_crm_replay_pick(ngx_http_crm_main_conf_t *mcf,
    u_char *path, ngx_log_t *log);
static void ngx_http_crm_replay_release(u_char *path, ngx_log_t *log);
static ngx_uint_t ngx_http_crm_pid_dead(ngx_pid_t pid);
static void ngx_http_crm_replay_thread(void *data, ngx_log_t *log);
static void ngx_http_crm_replay_done(ngx_event_t *ev);


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


char *
ngx_http_crm_click_queue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    u_char                     *p;
    ssize_t                     size, zone_size;
    ngx_str_t                  *value, name, s;
    ngx_int_t                   n;
    ngx_uint_t                  i;
    ngx_http_crm_clicks_ctx_t  *ctx;

    if (mcf->click_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    zone_size = 0;
    ngx_str_null(&name);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            name.data = value[i].data + 5;
            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                goto invalid;
            }

            name.len = p - name.data;
            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            zone_size = ngx_parse_size(&s);

            if (name.len == 0 || zone_size == NGX_ERROR) {
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

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1 || n > 10000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": flush must be between 1ms and "
                                   "10s", &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->flush_interval = (ngx_msec_t) n;
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

    mcf->click_zone = ngx_shared_memory_add(cf, &name, zone_size,
                                            &ngx_http_crm_module);
    if (mcf->click_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mcf->click_zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already in use", &name);
        return NGX_CONF_ERROR;
    }

    mcf->click_zone->init = ngx_http_crm_clicks_init_zone;
    mcf->click_zone->data = ctx;

    return NGX_CONF_OK;

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

    ngx_memzero(sh, offsetof(ngx_http_crm_clicks_shctx_t, data));

    sh->layout = NGX_HTTP_CRM_CLICKS_LAYOUT;
    sh->size = size - offsetof(ngx_http_crm_clicks_shctx_t, data);
    sh->gap = NGX_HTTP_CRM_NO_GAP;

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


void
ngx_http_crm_count(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_counter_e counter, ngx_atomic_int_t n)
{
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    if (sh != NULL) {
        (void) ngx_atomic_fetch_add(
                   &sh->counters[ngx_process_slot % NGX_HTTP_CRM_SLOTS]
                   .v[counter], n);
    }
}


ngx_int_t
ngx_http_crm_clicks_stats(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *counters, size_t *queued_bytes, size_t *queue_size,
    off_t *spool_bytes)
{
    ngx_uint_t                    i, slot;
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);
    if (sh == NULL) {
        return NGX_DECLINED;
    }

    for (i = 0; i < NGX_HTTP_CRM_NCOUNTERS; i++) {
        counters[i] = 0;

        for (slot = 0; slot < NGX_HTTP_CRM_SLOTS; slot++) {
            counters[i] += sh->counters[slot].v[i];
        }
    }

    ngx_shmtx_lock(&shpool->mutex);
    *queued_bytes = (size_t) (sh->tail - sh->head);
    ngx_shmtx_unlock(&shpool->mutex);

    *queue_size = sh->size;
    *spool_bytes = (off_t) sh->spool_bytes;

    return NGX_OK;
}


/* an offset at the gap's start is the next lap's first byte */
static uint64_t
ngx_http_crm_ring_skip(ngx_http_crm_clicks_shctx_t *sh, uint64_t off)
{
    if (off == sh->gap) {
        return (off / sh->size + 1) * sh->size;
    }

    return off;
}


/* [start, end) as one or two spans of the buffer, around the gap */
static size_t
ngx_http_crm_ring_chunks(ngx_http_crm_clicks_shctx_t *sh, uint64_t start,
    uint64_t end, crm_str_t *chunks)
{
    uint64_t  lap;

    if (sh->gap != NGX_HTTP_CRM_NO_GAP && sh->gap >= start && sh->gap < end)
    {
        lap = (sh->gap / sh->size + 1) * sh->size;

        chunks[0].data = (const char *) sh->data + start % sh->size;
        chunks[0].len = (size_t) (sh->gap - start);
        chunks[1].data = (const char *) sh->data;
        chunks[1].len = (size_t) (end - lap);

        return 2;
    }

    chunks[0].data = (const char *) sh->data + start % sh->size;
    chunks[0].len = (size_t) (end - start);

    return 1;
}


void
ngx_http_crm_clicks_push(ngx_http_crm_main_conf_t *mcf, const u_char *line,
    size_t len, ngx_log_t *log)
{
    uint64_t                      pos, gap;
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);

    pos = sh->tail % sh->size;
    gap = pos + len > sh->size ? sh->size - pos : 0;

    if (sh->tail + gap + len - sh->head <= sh->size) {
        if (gap) {
            sh->gap = sh->tail;
            sh->tail += gap;
            pos = 0;
        }

        ngx_memcpy(sh->data + pos, line, len);
        sh->tail += len;

        ngx_shmtx_unlock(&shpool->mutex);

        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_QUEUED, 1);
        return;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (ngx_http_crm_spool_write(mcf, line, len, log) == NGX_OK) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_SPOOLED, 1);
        return;
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_DROPPED, 1);
}


/*
 * Under the mutex: a batch for this worker, a failed one first, else whole
 * lines from the claim offset, at most max bytes of them.
 */
static ngx_int_t
ngx_http_crm_ring_claim(ngx_http_crm_clicks_shctx_t *sh, size_t max,
    ngx_uint_t *slot)
{
    uint64_t               start, end;
    ngx_uint_t             i, free;
    ngx_http_crm_batch_t  *b;

    free = NGX_HTTP_CRM_BATCHES;

    for (i = 0; i < NGX_HTTP_CRM_BATCHES; i++) {
        b = &sh->batches[i];

        if (b->state == NGX_HTTP_CRM_BATCH_RETRY) {
            b->state = NGX_HTTP_CRM_BATCH_CLAIMED;
            b->pid = ngx_pid;
            *slot = i;
            return NGX_OK;
        }

        if (b->state == NGX_HTTP_CRM_BATCH_FREE && free == NGX_HTTP_CRM_BATCHES)
        {
            free = i;
        }
    }

    sh->claim = ngx_http_crm_ring_skip(sh, sh->claim);

    if (free == NGX_HTTP_CRM_BATCHES || sh->claim == sh->tail) {
        return NGX_DECLINED;
    }

    start = sh->claim;
    end = sh->tail;

    if (end - start > max) {
        end = ngx_http_crm_ring_line_end(sh, start, start + max);

        if (end == start) {
            return NGX_DECLINED;
        }
    }

    b = &sh->batches[free];
    b->start = start;
    b->end = end;
    b->pid = ngx_pid;
    b->state = NGX_HTTP_CRM_BATCH_CLAIMED;

    sh->claim = end;
    *slot = free;

    return NGX_OK;
}


/*
 * The end of the last whole line in [start, limit): lines never cross the
 * gap, so the search stays in the part of the ring where limit falls.
 */
static uint64_t
ngx_http_crm_ring_line_end(ngx_http_crm_clicks_shctx_t *sh, uint64_t start,
    uint64_t limit)
{
    u_char    *p, *nl;
    uint64_t   lo, lap;

    lo = start;

    if (sh->gap != NGX_HTTP_CRM_NO_GAP && sh->gap >= start
        && sh->gap < limit)
    {
        lap = (sh->gap / sh->size + 1) * sh->size;

        if (limit <= lap) {
            return sh->gap;
        }

        lo = lap;
    }

    p = sh->data + lo % sh->size;
    nl = memrchr(p, '\n', (size_t) (limit - lo));

    if (nl == NULL) {
        return lo == start ? start : sh->gap;
    }

    return lo + (nl - p) + 1;
}


/* under the mutex: frees finished batches from the head on */
static void
ngx_http_crm_ring_release(ngx_http_crm_clicks_shctx_t *sh)
{
    ngx_uint_t             i, moved;
    ngx_http_crm_batch_t  *b;

    do {
        moved = 0;
        sh->head = ngx_http_crm_ring_skip(sh, sh->head);

        for (i = 0; i < NGX_HTTP_CRM_BATCHES; i++) {
            b = &sh->batches[i];

            if (b->state == NGX_HTTP_CRM_BATCH_DONE
                && ngx_http_crm_ring_skip(sh, b->start) == sh->head)
            {
                sh->head = b->end;
                b->state = NGX_HTTP_CRM_BATCH_FREE;
                moved = 1;
            }
        }

    } while (moved);

    if (sh->head == sh->tail) {
        sh->claim = sh->tail;
    }

    if (sh->gap != NGX_HTTP_CRM_NO_GAP && sh->head > sh->gap) {
        sh->gap = NGX_HTTP_CRM_NO_GAP;
    }
}


/* batches claimed by a worker that is gone are sent again */
static void
ngx_http_crm_ring_recover(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_clicks_shctx_t *sh)
{
    ngx_uint_t             i;
    ngx_http_crm_batch_t  *b;

    for (i = 0; i < NGX_HTTP_CRM_BATCHES; i++) {
        b = &sh->batches[i];

        if (b->state == NGX_HTTP_CRM_BATCH_CLAIMED && b->pid != ngx_pid
            && ngx_http_crm_pid_dead(b->pid))
        {
            b->state = NGX_HTTP_CRM_BATCH_RETRY;
            ngx_http_crm_count(mcf, NGX_HTTP_CRM_BATCHES_RECOVERED, 1);
        }
    }
}


static ngx_uint_t
ngx_http_crm_pid_dead(ngx_pid_t pid)
{
    return kill(pid, 0) == -1 && ngx_errno == ESRCH;
}


ngx_int_t
ngx_http_crm_clicks_init_process(ngx_cycle_t *cycle)
{
    ngx_http_crm_main_conf_t  *mcf;

    /* not in the cache manager and loader, which never serve requests */
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->click_zone == NULL || mcf->click_pool == NULL) {
        return NGX_OK;
    }

    ngx_http_crm_spool.fd = NGX_INVALID_FILE;

    ngx_http_crm_flush_task = ngx_thread_task_alloc(cycle->pool,
                                                sizeof(ngx_http_crm_flush_t));
    ngx_http_crm_replay_task = ngx_thread_task_alloc(cycle->pool,
                                                sizeof(ngx_http_crm_flush_t));

    if (ngx_http_crm_flush_task == NULL || ngx_http_crm_replay_task == NULL) {
        return NGX_ERROR;
    }

    ngx_http_crm_flush_task->handler = ngx_http_crm_flush_thread;
    ngx_http_crm_flush_task->event.handler = ngx_http_crm_flush_done;
    ngx_http_crm_flush_task->event.data = ngx_http_crm_flush_task;
    ngx_http_crm_flush_task->event.log = cycle->log;

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

    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);
    ngx_http_crm_ring_recover(mcf, sh);
    ngx_shmtx_unlock(&shpool->mutex);

    if (!ngx_http_crm_flushing) {
        ngx_http_crm_flush_start(mcf);
    }

    if (mcf->spool_dir.len) {
        /*
         * a spool file is sealed for replay when the ring drains again,
         * or after a while, not at each tick of an overload
         */
        if (ngx_http_crm_spool.fd != NGX_INVALID_FILE
            && ((ngx_http_crm_db_ok && sh->tail - sh->head < sh->size / 2)
                || ngx_current_msec - ngx_http_crm_spool.opened
                   >= NGX_HTTP_CRM_SPOOL_SEAL))
        {
            ngx_http_crm_spool_seal(mcf, ev->log);
        }

        if (!ngx_http_crm_replaying) {
            ngx_http_crm_replay_start(mcf);
        }
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(ev, mcf->flush_interval);
    }
}


static void
ngx_http_crm_flush_start(ngx_http_crm_main_conf_t *mcf)
{
    ngx_uint_t                    slot;
    ngx_int_t                     rc;
    ngx_slab_pool_t              *shpool;
    ngx_thread_task_t            *task;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_batch_t         *b;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    task = ngx_http_crm_flush_task;
    f = task->ctx;
    ngx_memzero(f, offsetof(ngx_http_crm_flush_t, path));
    f->mcf = mcf;

    ngx_shmtx_lock(&shpool->mutex);

    rc = ngx_http_crm_ring_claim(sh, mcf->flush_batch, &slot);

    if (rc == NGX_OK) {
        b = &sh->batches[slot];
        f->batch = slot;
        f->nchunks = ngx_http_crm_ring_chunks(sh, b->start, b->end,
                                              f->chunks);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (rc != NGX_OK) {
        return;
    }

    if (ngx_thread_task_post(mcf->click_pool, task) != NGX_OK) {
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

    crm_db_t  *db;

    db = crm_db_for_thread(f->mcf->click_db);

    if (db == NULL) {
        f->rc = crm_error_set(&f->err, CRM_E_INTERNAL, NULL, "out of memory");

    } else {
        f->rc = crm_store_edge_clicks(db, f->chunks, f->nchunks, &f->inserted,
                                      &f->err);
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
    if (f->rc == CRM_OK && !ngx_exiting && !ngx_terminate) {
        ngx_http_crm_flush_start(mcf);
    }
}


static void
ngx_http_crm_flush_finish(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_flush_t *f)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, &shpool);

    ngx_shmtx_lock(&shpool->mutex);

    sh->batches[f->batch].state = f->rc == CRM_OK
                                  ? NGX_HTTP_CRM_BATCH_DONE
                                  : NGX_HTTP_CRM_BATCH_RETRY;
    ngx_http_crm_ring_release(sh);

    ngx_shmtx_unlock(&shpool->mutex);

    if (f->rc == CRM_OK) {
        ngx_http_crm_db_ok = 1;
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_CLICKS_FLUSHED,
                           (ngx_atomic_int_t) f->inserted);
        return;
    }

    ngx_http_crm_count(mcf, NGX_HTTP_CRM_FLUSH_FAILURES, 1);

    /* an outage is logged once, not at every retry */
    if (ngx_http_crm_db_ok || f->rc != CRM_E_UNAVAILABLE) {
        ngx_log_error((f->rc == CRM_E_UNAVAILABLE ? NGX_LOG_WARN
                                                  : NGX_LOG_ERR),
                      ngx_cycle->log, 0, "crm: click flush failed, "
                      "clicks stay queued: %s (%s)",
                      f->err.message, f->err.cause);
    }

    ngx_http_crm_db_ok = 0;
}


/*
 * The worker's own spool file, opened on first use.  A line is written
 * whole or not at all: a short write is cut off again, so a file holds
 * only whole lines (but for a worker killed inside write()).  This blocks
 * the event loop on the disk, which is only ever the case while the ring
 * is full.
 */
static ngx_int_t
ngx_http_crm_spool_write(ngx_http_crm_main_conf_t *mcf, const u_char *p,
    size_t len, ngx_log_t *log)
{
    ssize_t                       n;
    ngx_http_crm_spool_t         *sp;
    ngx_http_crm_clicks_shctx_t  *sh;

    sp = &ngx_http_crm_spool;
    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    if (mcf->spool_dir.len == 0
        || (off_t) (sh->spool_bytes + len) > mcf->spool_max)
    {
        return NGX_DECLINED;
    }

    if (sp->fd == NGX_INVALID_FILE) {
        sp->len = ngx_sprintf(sp->name, "%V/clicks-%P-%M-%ui.open%Z",
                              &mcf->spool_dir, ngx_pid, ngx_current_msec,
                              sp->seq++)
                  - sp->name - 1;

        sp->fd = ngx_open_file(sp->name, NGX_FILE_APPEND,
                               NGX_FILE_CREATE_OR_OPEN, 0600);
        if (sp->fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          ngx_open_file_n " \"%s\" failed", sp->name);
            return NGX_ERROR;
        }

        sp->size = 0;
        sp->opened = ngx_current_msec;
    }

    n = write(sp->fd, p, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "write() to \"%s\" failed", sp->name);

        if (n > 0 && ftruncate(sp->fd, sp->size) == -1) {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "ftruncate() \"%s\" failed", sp->name);
        }

        return NGX_ERROR;
    }

    sp->size += len;
    (void) ngx_atomic_fetch_add(&sh->spool_bytes, len);

    return NGX_OK;
}


/* closes the worker's spool file and hands it to the replay */
static void
ngx_http_crm_spool_seal(ngx_http_crm_main_conf_t *mcf, ngx_log_t *log)
{
    u_char                 ready[NGX_HTTP_CRM_PATH_MAX];
    ngx_http_crm_spool_t  *sp;

    sp = &ngx_http_crm_spool;

    if (sp->fd == NGX_INVALID_FILE) {
        return;
    }

    if (ngx_close_file(sp->fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", sp->name);
    }

    sp->fd = NGX_INVALID_FILE;

    /* "....open" becomes "....ready" */
    ngx_sprintf(ready, "%*s.ready%Z", sp->len - 5, sp->name);

    if (ngx_rename_file(sp->name, ready) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" failed", sp->name);
    }

    ngx_http_crm_scan_due = 1;
}


static void
ngx_http_crm_replay_start(ngx_http_crm_main_conf_t *mcf)
{
    ngx_thread_task_t            *task;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_clicks_shctx_t  *sh;

    sh = ngx_http_crm_clicks_sh(mcf, NULL);

    if (!ngx_http_crm_scan_due
        && (sh->spool_bytes == 0
            || ngx_current_msec - ngx_http_crm_scanned
               < NGX_HTTP_CRM_SPOOL_SCAN))
    {
        return;
    }

    ngx_http_crm_scanned = ngx_current_msec;
    ngx_http_crm_scan_due = 0;

    task = ngx_http_crm_replay_task;
    f = task->ctx;
    ngx_memzero(f, offsetof(ngx_http_crm_flush_t, path));
    f->mcf = mcf;

    if (ngx_http_crm_replay_pick(mcf, f->path, ngx_cycle->log) != NGX_OK) {
        return;
    }

    if (ngx_thread_task_post(mcf->click_pool, task) != NGX_OK) {
        ngx_http_crm_replay_release(f->path, ngx_cycle->log);
        return;
    }

    ngx_http_crm_replaying = 1;

    ngx_add_timer(&task->event, NGX_HTTP_CRM_TASK_TIMEOUT);
}


/*
 * Finds a spool file to replay and claims it by renaming it to
 * "<name>.replay-<pid>" (into path): a sealed one, or one whose writer or
 * replayer is gone.  Also recounts the folder's bytes, which a full
 * restart forgets.
 */
static ngx_int_t
ngx_http_crm_replay_pick(ngx_http_crm_main_conf_t *mcf, u_char *path,
    ngx_log_t *log)
{
    u_char                        from[NGX_HTTP_CRM_PATH_MAX];
    u_char                        base[NGX_HTTP_CRM_PATH_MAX];
    char                         *dot, *dash;
    off_t                         total;
    DIR                          *dir;
    size_t                        len;
    ngx_pid_t                     pid;
    ngx_int_t                     rc;
    struct stat                   st;
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

        if (len < 8 || len > 100 || ngx_strncmp(de->d_name, "clicks-", 7) != 0)
        {
            continue;
        }

        dot = ngx_strchr(de->d_name, '.');
        if (dot == NULL || ngx_strcmp(dot, ".bad") == 0) {
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

        /* the name without a dead replayer's suffix */
        ngx_sprintf(base, "%s%Z", from);

        if (ngx_strcmp(dot, ".ready") == 0) {
            /* void */

        } else if (ngx_strcmp(dot, ".open") == 0) {
            dash = ngx_strchr(de->d_name + 7, '-');
            pid = dash ? ngx_atoi((u_char *) de->d_name + 7,
                                  dash - de->d_name - 7)
                       : NGX_ERROR;

            if (pid == NGX_ERROR || pid == ngx_pid
                || !ngx_http_crm_pid_dead(pid))
            {
                continue;
            }

        } else if (ngx_strncmp(dot, ".ready.replay-", 14) == 0
                   || ngx_strncmp(dot, ".open.replay-", 13) == 0)
        {
            dash = strrchr(dot, '-');
            pid = ngx_atoi((u_char *) dash + 1, ngx_strlen(dash + 1));

            if (pid == NGX_ERROR || pid == ngx_pid
                || !ngx_http_crm_pid_dead(pid))
            {
                continue;
            }

            *strrchr((char *) base, '.') = '\0';

        } else {
            continue;
        }

        ngx_sprintf(path, "%s.replay-%P%Z", base, ngx_pid);

        /* a failed rename: another worker took it first */
        if (ngx_rename_file(from, path) != NGX_FILE_ERROR) {
            rc = NGX_OK;
        }
    }

    closedir(dir);

    sh->spool_bytes = (ngx_atomic_uint_t) total;

    return rc;
}


/* a replay cut short: the file goes back, for any worker to take */
static void
ngx_http_crm_replay_release(u_char *path, ngx_log_t *log)
{
    u_char  back[NGX_HTTP_CRM_PATH_MAX];

    ngx_sprintf(back, "%s%Z", path);
    *strrchr((char *) back, '.') = '\0';

    if (ngx_rename_file(path, back) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" failed", path);
    }
}


/*
 * A pool thread: the claimed file, in chunks of whole lines, each in its
 * own transaction; clicks already stored are skipped, so a replay cut
 * short and done again counts nothing twice.  The file goes when all of
 * it is stored.  A last line without its newline is a write cut short by
 * the writer's death: it is not a click.
 */
static void
ngx_http_crm_replay_thread(void *data, ngx_log_t *log)
{
    ngx_http_crm_flush_t *f = data;

    u_char     *buf, *nl;
    size_t      have, used;
    ssize_t     n;
    uint64_t    inserted;
    ngx_fd_t    fd;
    crm_db_t   *db;
    crm_str_t   chunk;

    f->rc = CRM_OK;

    db = crm_db_for_thread(f->mcf->click_db);
    buf = ngx_alloc(NGX_HTTP_CRM_REPLAY_CHUNK, log);
    fd = ngx_open_file(f->path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (db == NULL || buf == NULL || fd == NGX_INVALID_FILE) {
        f->rc = crm_error_set(&f->err, CRM_E_UNAVAILABLE, NULL,
                              "cannot read the spool file");
        goto done;
    }

    have = 0;

    for ( ;; ) {
        n = read(fd, buf + have, NGX_HTTP_CRM_REPLAY_CHUNK - have);

        if (n == -1) {
            f->rc = crm_error_set(&f->err, CRM_E_UNAVAILABLE, NULL,
                                  "cannot read the spool file");
            break;
        }

        have += n;

        nl = have ? memrchr(buf, '\n', have) : NULL;

        if (nl == NULL) {
            if (n == 0 || have == NGX_HTTP_CRM_REPLAY_CHUNK) {
                /* the end, or a "line" no writer makes */
                f->torn = have ? 1 : 0;
                (void) ngx_delete_file(f->path);
                break;
            }

            continue;
        }

        used = nl + 1 - buf;
        chunk.data = (const char *) buf;
        chunk.len = used;

        f->rc = crm_store_edge_clicks(db, &chunk, 1, &inserted, &f->err);
        if (f->rc != CRM_OK) {
            break;
        }

        f->inserted += inserted;

        ngx_memmove(buf, buf + used, have - used);
        have -= used;
    }

done:

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    if (buf != NULL) {
        ngx_free(buf);
    }

    ngx_memory_barrier();
    f->done = 1;
}


static void
ngx_http_crm_replay_done(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    u_char                 bad[NGX_HTTP_CRM_PATH_MAX];
    ngx_http_crm_flush_t  *f;

    f = task->ctx;

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

    ngx_http_crm_count(f->mcf, NGX_HTTP_CRM_CLICKS_REPLAYED,
                       (ngx_atomic_int_t) f->inserted);
    ngx_http_crm_count(f->mcf, NGX_HTTP_CRM_CLICKS_DROPPED,
                       (ngx_atomic_int_t) f->torn);

    if (f->rc == CRM_OK) {
        ngx_http_crm_scan_due = 1;
        return;
    }

    if (f->rc == CRM_E_UNAVAILABLE) {
        ngx_http_crm_db_ok = 0;
        ngx_http_crm_replay_release(f->path, ev->log);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "crm: click replay of \"%s\" failed, the file is set "
                  "aside as \".bad\": %s (%s)",
                  f->path, f->err.message, f->err.cause);

    /* PostgreSQL refuses its content: kept aside, never retried */
    ngx_sprintf(bad, "%s.bad%Z", f->path);

    if (ngx_rename_file(f->path, bad) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, ngx_errno,
                      ngx_rename_file_n " \"%s\" failed", f->path);
    }
}


/*
 * The thread pools have drained before this runs (their module exits
 * first), so a flush or replay posted by this worker has ended, but its
 * completion handler will never run: its result is read here.  Then what
 * the ring still holds goes to this worker's spool file.
 */
void
ngx_http_crm_clicks_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, n, slot;
    crm_str_t                     chunks[2];
    ngx_slab_pool_t              *shpool;
    ngx_http_crm_flush_t         *f;
    ngx_http_crm_batch_t         *b;
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

    if (ngx_http_crm_replaying) {
        f = ngx_http_crm_replay_task->ctx;

        if (f->done && f->rc != CRM_OK) {
            ngx_http_crm_replay_release(f->path, cycle->log);
        }

        ngx_http_crm_replaying = 0;
    }

    if (mcf->spool_dir.len == 0) {
        return;
    }

    for ( ;; ) {
        ngx_shmtx_lock(&shpool->mutex);

        if (ngx_http_crm_ring_claim(sh, (size_t) -1, &slot) != NGX_OK) {
            ngx_shmtx_unlock(&shpool->mutex);
            break;
        }

        b = &sh->batches[slot];
        n = ngx_http_crm_ring_chunks(sh, b->start, b->end, chunks);

        ngx_shmtx_unlock(&shpool->mutex);

        for (i = 0; i < n; i++) {
            if (ngx_http_crm_spool_write(mcf, (u_char *) chunks[i].data,
                                         chunks[i].len, cycle->log)
                != NGX_OK)
            {
                break;
            }
        }

        ngx_shmtx_lock(&shpool->mutex);

        b->state = i == n ? NGX_HTTP_CRM_BATCH_DONE
                          : NGX_HTTP_CRM_BATCH_RETRY;
        ngx_http_crm_ring_release(sh);

        ngx_shmtx_unlock(&shpool->mutex);

        if (i != n) {
            break;
        }
    }

    ngx_http_crm_spool_seal(mcf, cycle->log);
}
