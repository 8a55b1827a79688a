/*
 * The module's state zone, and the helpers its other zones share.
 *
 * The zone is the module's own, not the operator's: it is added whenever
 * the configuration has a crm handler, under a name that carries its
 * layout, so a new layout is a new zone and never meets an old one.
 */

#include "ngx_http_crm_state.h"


#define NGX_HTTP_CRM_STATE_NAME  "ngx_http_crm_state_v5"
#define NGX_HTTP_CRM_STATE_SIZE  (sizeof(ngx_http_crm_state_t) + 64 * 1024)

/*
 * Counters by process slot, each in its own cache line: redirects count
 * on every request, and two workers adding to one line would bounce it
 * between cores.  Slots are reused after reloads, and the adds stay
 * atomic for that; the sum is over all slots.
 */
#define NGX_HTTP_CRM_SLOTS       64


typedef struct {
    ngx_atomic_t             v[NGX_HTTP_CRM_NCOUNTERS];
} __attribute__((aligned(64))) ngx_http_crm_counters_t;


typedef struct {
    ngx_atomic_t             v[NGX_HTTP_CRM_ROUTE_ROWS]
                              [NGX_HTTP_CRM_HTTP_VALUES];
} __attribute__((aligned(64))) ngx_http_crm_requests_t;


/* a webhook source's name, [a-z0-9_-]{1,32} */
typedef struct {
    u_char                   len;
    u_char                   data[32];
} ngx_http_crm_name_t;


typedef struct {
    ngx_http_crm_counters_t  counters[NGX_HTTP_CRM_SLOTS];
    ngx_http_crm_requests_t  requests[NGX_HTTP_CRM_SLOTS];
    ngx_atomic_t             gauges[NGX_HTTP_CRM_NGAUGES];  /* value + 1 */
    /* written under the zone's mutex; nwebhooks after the name */
    ngx_http_crm_name_t      webhooks[NGX_HTTP_CRM_WEBHOOK_NAMES];
    ngx_atomic_t             nwebhooks;
    /* workers listening on crm_links; 1 while none has since the last */
    ngx_atomic_t             listeners;
    ngx_atomic_t             unheard;
} ngx_http_crm_state_t;


static ngx_int_t ngx_http_crm_state_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


ngx_uint_t  ngx_http_crm_config_generation;

/* the worker's, for its pool threads: set before any task is posted */
static ngx_http_crm_main_conf_t  *ngx_http_crm_tasks_mcf;


ngx_int_t
ngx_http_crm_state_add(ngx_conf_t *cf, ngx_http_crm_main_conf_t *mcf)
{
    ngx_str_t  name = ngx_string(NGX_HTTP_CRM_STATE_NAME);

    if (mcf->state_zone != NULL) {
        return NGX_OK;
    }

    mcf->state_zone = ngx_shared_memory_add(cf, &name,
                                            NGX_HTTP_CRM_STATE_SIZE,
                                            &ngx_http_crm_module);
    if (mcf->state_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->state_zone->init = ngx_http_crm_state_init_zone;
    mcf->state_zone->data = mcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_state_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t       *shpool;
    ngx_http_crm_state_t  *state;

    /* the old configuration's state goes on in the new one */
    if (data != NULL) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    state = ngx_slab_calloc(shpool, sizeof(ngx_http_crm_state_t));
    if (state == NULL) {
        return NGX_ERROR;
    }

    /* a cache older than the zone may have missed anything */
    state->unheard = 1;

    shpool->data = state;
    shm_zone->data = state;

    return NGX_OK;
}


void
ngx_http_crm_count(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_counter_e counter, ngx_atomic_int_t n)
{
    ngx_http_crm_state_t  *state;

    if (mcf == NULL || mcf->state_zone == NULL || n == 0) {
        return;
    }

    state = mcf->state_zone->data;

    (void) ngx_atomic_fetch_add(
               &state->counters[ngx_process_slot % NGX_HTTP_CRM_SLOTS]
               .v[counter], n);
}


void
ngx_http_crm_gauge_set(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_gauge_e gauge, int64_t v)
{
    ngx_http_crm_state_t  *state;

    if (mcf == NULL || mcf->state_zone == NULL || v < 0) {
        return;
    }

    state = mcf->state_zone->data;
    state->gauges[gauge] = (ngx_atomic_uint_t) v + 1;
}


int64_t
ngx_http_crm_gauge(ngx_http_crm_main_conf_t *mcf, ngx_http_crm_gauge_e gauge)
{
    ngx_http_crm_state_t  *state;

    if (mcf->state_zone == NULL) {
        return -1;
    }

    state = mcf->state_zone->data;

    return (int64_t) state->gauges[gauge] - 1;
}


ngx_int_t
ngx_http_crm_webhook_index(ngx_http_crm_main_conf_t *mcf, u_char *name,
    size_t len)
{
    ngx_uint_t             i, n;
    ngx_slab_pool_t       *shpool;
    ngx_http_crm_state_t  *state;

    if (mcf->state_zone == NULL || len == 0
        || len > sizeof(((ngx_http_crm_name_t *) 0)->data))
    {
        return NGX_ERROR;
    }

    state = mcf->state_zone->data;
    shpool = (ngx_slab_pool_t *) mcf->state_zone->shm.addr;

    for ( ;; ) {
        n = state->nwebhooks;
        ngx_memory_barrier();

        for (i = 0; i < n; i++) {
            if (state->webhooks[i].len == len
                && ngx_memcmp(state->webhooks[i].data, name, len) == 0)
            {
                return i;
            }
        }

        if (n == NGX_HTTP_CRM_WEBHOOK_NAMES) {
            return NGX_ERROR;
        }

        /* not there: add it, unless another process did meanwhile */
        ngx_shmtx_lock(&shpool->mutex);

        if (state->nwebhooks == n) {
            state->webhooks[n].len = (u_char) len;
            ngx_memcpy(state->webhooks[n].data, name, len);
            ngx_memory_barrier();
            state->nwebhooks = n + 1;
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }
}


ngx_str_t *
ngx_http_crm_webhook_names(ngx_http_crm_main_conf_t *mcf, ngx_str_t *names,
    ngx_uint_t *n)
{
    ngx_uint_t             i;
    ngx_http_crm_state_t  *state;

    *n = 0;

    if (mcf->state_zone == NULL) {
        return names;
    }

    state = mcf->state_zone->data;
    *n = state->nwebhooks;
    ngx_memory_barrier();

    for (i = 0; i < *n; i++) {
        names[i].data = state->webhooks[i].data;
        names[i].len = state->webhooks[i].len;
    }

    return names;
}


ngx_uint_t
ngx_http_crm_listeners(ngx_http_crm_main_conf_t *mcf, ngx_int_t delta,
    ngx_uint_t lost)
{
    ngx_http_crm_state_t  *state;

    if (mcf->state_zone == NULL) {
        return 1;
    }

    state = mcf->state_zone->data;

    if (delta > 0) {
        (void) ngx_atomic_fetch_add(&state->listeners, 1);
        return ngx_atomic_cmp_set(&state->unheard, 1, 0);
    }

    if (ngx_atomic_fetch_add(&state->listeners, -1) == 1 && lost) {
        state->unheard = 1;
    }

    return 0;
}


ngx_uint_t
ngx_http_crm_listeners_now(ngx_http_crm_main_conf_t *mcf)
{
    ngx_http_crm_state_t  *state;

    if (mcf->state_zone == NULL) {
        return 0;
    }

    state = mcf->state_zone->data;

    return state->listeners;
}


ngx_int_t
ngx_http_crm_task_post(ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_pool_e pool, ngx_thread_pool_t *tp, ngx_thread_task_t *task)
{
    if (ngx_http_crm_tasks_mcf != mcf) {
        ngx_http_crm_tasks_mcf = mcf;
    }

    /* counted first: a thread may take the task before the post returns */
    ngx_http_crm_count(mcf, NGX_HTTP_CRM_TASKS_POSTED + pool, 1);

    if (ngx_thread_task_post(tp, task) == NGX_OK) {
        return NGX_OK;
    }

    /* a refused post was never queued (the counters wrap, as they add) */
    ngx_http_crm_count(mcf, NGX_HTTP_CRM_TASKS_POSTED + pool, -1);

    return NGX_ERROR;
}


void
ngx_http_crm_task_started(ngx_http_crm_pool_e pool)
{
    ngx_http_crm_count(ngx_http_crm_tasks_mcf,
                       NGX_HTTP_CRM_TASKS_STARTED + pool, 1);
}


void
ngx_http_crm_count_request(ngx_http_crm_main_conf_t *mcf, ngx_uint_t row,
    ngx_uint_t status, ngx_uint_t bucket, ngx_msec_t ms)
{
    ngx_atomic_t          *v;
    ngx_http_crm_state_t  *state;

    if (mcf == NULL || mcf->state_zone == NULL) {
        return;
    }

    state = mcf->state_zone->data;
    v = state->requests[ngx_process_slot % NGX_HTTP_CRM_SLOTS].v[row];

    (void) ngx_atomic_fetch_add(&v[status], 1);
    (void) ngx_atomic_fetch_add(&v[NGX_HTTP_CRM_HTTP_STATUSES + bucket], 1);
    (void) ngx_atomic_fetch_add(&v[NGX_HTTP_CRM_HTTP_SUM_MS], ms);
}


void
ngx_http_crm_requests(ngx_http_crm_main_conf_t *mcf, ngx_uint_t row,
    ngx_atomic_uint_t *values)
{
    ngx_uint_t             i, slot;
    ngx_http_crm_state_t  *state;

    ngx_memzero(values, NGX_HTTP_CRM_HTTP_VALUES * sizeof(ngx_atomic_uint_t));

    if (mcf->state_zone == NULL) {
        return;
    }

    state = mcf->state_zone->data;

    for (slot = 0; slot < NGX_HTTP_CRM_SLOTS; slot++) {
        for (i = 0; i < NGX_HTTP_CRM_HTTP_VALUES; i++) {
            values[i] += state->requests[slot].v[row][i];
        }
    }
}


void
ngx_http_crm_counters(ngx_http_crm_main_conf_t *mcf,
    ngx_atomic_uint_t *counters)
{
    ngx_uint_t             i, slot;
    ngx_http_crm_state_t  *state;

    ngx_memzero(counters, NGX_HTTP_CRM_NCOUNTERS * sizeof(ngx_atomic_uint_t));

    if (mcf->state_zone == NULL) {
        return;
    }

    state = mcf->state_zone->data;

    for (i = 0; i < NGX_HTTP_CRM_NCOUNTERS; i++) {
        for (slot = 0; slot < NGX_HTTP_CRM_SLOTS; slot++) {
            counters[i] += state->counters[slot].v[i];
        }
    }
}


ngx_int_t
ngx_http_crm_zone_param(ngx_str_t *value, ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    name->data = value->data + 5;

    p = ngx_strlchr(name->data, value->data + value->len, ':');
    if (p == NULL) {
        return NGX_ERROR;
    }

    name->len = p - name->data;
    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    return name->len == 0 || *size == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


ngx_shm_zone_t *
ngx_http_crm_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    ngx_shm_zone_init_pt init, void *ctx)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_crm_module);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already in use", name);
        return NULL;
    }

    zone->init = init;
    zone->data = ctx;

    return zone;
}
