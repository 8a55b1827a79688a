/*
 * The link cache: what the redirect needs of each link (its target and
 * whether it redirects), in a shared zone, so that a redirect for a known
 * link never leaves the event loop.
 *
 * An rbtree keyed by the id's CRC32 finds an entry.  Entries are fresh for
 * the TTL; ids that do not exist are cached too ("negative" entries), so
 * that one unknown id costs one lookup per TTL whatever its traffic.  An
 * expired entry is reloaded, but kept until then: while the database is
 * unreachable it still answers, for at most stale_if_error.
 *
 * Links and negative entries live in two LRU queues.  Negative entries
 * may take at most negative_share of the zone: a flood of unknown ids
 * evicts other negative entries, never a link, while a link may evict
 * negative entries (first) and links.
 *
 * A change through the API ("forget") replaces the id's entry by a
 * tombstone stamped with the zone's change count.  A load records the
 * count when it starts; what it read is stored only if its id has not
 * changed since, so a change invalidates the loads of that id alone.  A
 * tombstone evicted from a full zone leaves its stamp in "forgotten": a
 * load of an id without an entry is stored only if it began after every
 * evicted change.
 */

#include "ngx_http_crm_links.h"
#include "ngx_http_crm_state.h"

#include "crm_url.h"


#define NGX_HTTP_CRM_LINKS_LAYOUT  2

/* a tombstone: an id whose entry a change through the API dropped */
#define NGX_HTTP_CRM_LINK_TOMBSTONE  (NGX_HTTP_CRM_LINK_UNKNOWN + 1)

/* entries a store may evict to make room, before it gives up */
#define NGX_HTTP_CRM_LINKS_EVICT   8


typedef struct {
    ngx_rbtree_node_t        node;
    ngx_queue_t              queue;
    time_t                   expires;
    uint64_t                 changed;       /* the last change's count */
    u_char                   state;         /* ngx_http_crm_link_e */
    u_char                   id[CRM_LINK_ID_LEN];
    u_short                  len;
    u_char                   target[1];
} ngx_http_crm_link_node_t;


typedef struct {
    ngx_uint_t               layout;
    ngx_rbtree_t             rbtree;
    ngx_rbtree_node_t        sentinel;
    ngx_queue_t              links;         /* LRU of links */
    ngx_queue_t              negative;      /* LRU of the others */
    ngx_uint_t               nnegative;
    ngx_uint_t               negative_max;
    uint64_t                 changes;
    uint64_t                 forgotten;
} ngx_http_crm_links_shctx_t;


typedef struct {
    ngx_http_crm_links_shctx_t  *sh;
    ngx_slab_pool_t             *shpool;
    ngx_http_crm_main_conf_t    *mcf;
} ngx_http_crm_links_ctx_t;


static ngx_int_t ngx_http_crm_links_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_crm_links_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_crm_link_node_t *ngx_http_crm_links_find(
    ngx_http_crm_links_shctx_t *sh, const u_char *id, uint32_t hash);
static ngx_http_crm_link_node_t *ngx_http_crm_links_alloc(
    ngx_http_crm_links_ctx_t *ctx, size_t size, ngx_uint_t negative);
static void ngx_http_crm_links_insert(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln, const u_char *id, uint32_t hash);
static void ngx_http_crm_links_delete(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln);
static ngx_uint_t ngx_http_crm_links_evict(ngx_http_crm_links_ctx_t *ctx,
    ngx_queue_t *lru);


#define ngx_http_crm_link_negative(state)                                     \
    ((state) == NGX_HTTP_CRM_LINK_UNKNOWN                                     \
     || (state) == NGX_HTTP_CRM_LINK_TOMBSTONE)


char *
ngx_http_crm_link_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    ssize_t                    size;
    ngx_str_t                 *value, name, s;
    ngx_int_t                  n;
    ngx_uint_t                 i;
    ngx_http_crm_links_ctx_t  *ctx;

    if (mcf->link_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    size = 0;
    ngx_str_null(&name);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            if (ngx_http_crm_zone_param(&value[i], &name, &size) != NGX_OK) {
                goto invalid;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "link cache \"%V\" is too small",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0
            || ngx_strncmp(value[i].data, "negative_ttl=", 13) == 0
            || ngx_strncmp(value[i].data, "stale_if_error=", 15) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n > 86400
                || (n < 1 && value[i].data[0] != 's'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": must be between %s and 1d",
                                   &value[i],
                                   value[i].data[0] == 's' ? "0s" : "1s");
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                mcf->link_ttl = n;

            } else if (value[i].data[0] == 'n') {
                mcf->link_negative_ttl = n;

            } else {
                mcf->link_stale = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "negative_share=", 15) == 0) {
            n = NGX_ERROR;

            if (value[i].len > 16 && value[i].data[value[i].len - 1] == '%') {
                n = ngx_atoi(value[i].data + 15, value[i].len - 16);
            }

            if (n == NGX_ERROR || n < 1 || n > 90) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": must be between 1%% and 90%%",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->link_negative_share = n;
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

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_crm_links_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->mcf = mcf;

    mcf->link_zone = ngx_http_crm_zone_add(cf, &name, size,
                                           ngx_http_crm_links_init_zone, ctx);

    return mcf->link_zone ? NGX_CONF_OK : NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * Nothing here touches what the zone already holds, but the negative
 * entries' bound: on a reload this runs in the master while the old
 * workers still serve from it.
 */
static ngx_int_t
ngx_http_crm_links_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_crm_links_ctx_t  *octx = data;

    size_t                     len, slot;
    ngx_http_crm_links_ctx_t  *ctx;

    ctx = shm_zone->data;

    /* a negative entry takes the slab slot that holds its node */
    for (slot = 8; slot < sizeof(ngx_http_crm_link_node_t); slot *= 2) {
        /* void */
    }

    if (octx) {
        if (octx->sh->layout != NGX_HTTP_CRM_LINKS_LAYOUT) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "link cache \"%V\" was made by another version",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;

        goto bound;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool,
                              sizeof(ngx_http_crm_links_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ctx->sh->layout = NGX_HTTP_CRM_LINKS_LAYOUT;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_crm_links_insert_value);
    ngx_queue_init(&ctx->sh->links);
    ngx_queue_init(&ctx->sh->negative);

    len = sizeof(" in link cache \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in link cache \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone evicts entries instead of logging each failure */
    ctx->shpool->log_nomem = 0;

bound:

    /* a word's write: the old workers read either bound, both safe */
    ctx->sh->negative_max = shm_zone->shm.size / 100
                            * ctx->mcf->link_negative_share / slot;

    return NGX_OK;
}


static void
ngx_http_crm_links_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_crm_link_node_t   *ln, *lt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_http_crm_link_node_t *) node;
            lt = (ngx_http_crm_link_node_t *) temp;

            p = ngx_memcmp(ln->id, lt->id, CRM_LINK_ID_LEN) < 0
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_crm_link_node_t *
ngx_http_crm_links_find(ngx_http_crm_links_shctx_t *sh, const u_char *id,
    uint32_t hash)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_crm_link_node_t  *ln;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_crm_link_node_t *) node;
        rc = ngx_memcmp(id, ln->id, CRM_LINK_ID_LEN);

        if (rc == 0) {
            return ln;
        }

        node = rc < 0 ? node->left : node->right;
    }

    return NULL;
}


/* an evicted entry's change must still stop the loads that began before */
static void
ngx_http_crm_links_delete(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln)
{
    if (ln->changed > ctx->sh->forgotten) {
        ctx->sh->forgotten = ln->changed;
    }

    if (ngx_http_crm_link_negative(ln->state)) {
        ctx->sh->nnegative--;
    }

    ngx_queue_remove(&ln->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &ln->node);
    ngx_slab_free_locked(ctx->shpool, ln);
}


static ngx_uint_t
ngx_http_crm_links_evict(ngx_http_crm_links_ctx_t *ctx, ngx_queue_t *lru)
{
    if (ngx_queue_empty(lru)) {
        return 0;
    }

    ngx_http_crm_links_delete(ctx,
        ngx_queue_data(ngx_queue_last(lru), ngx_http_crm_link_node_t, queue));

    return 1;
}


/*
 * Room for an entry: a negative one within its share, evicting only
 * negative entries; a link evicting negative entries first, then links.
 */
static ngx_http_crm_link_node_t *
ngx_http_crm_links_alloc(ngx_http_crm_links_ctx_t *ctx, size_t size,
    ngx_uint_t negative)
{
    ngx_uint_t                 i;
    ngx_http_crm_links_shctx_t  *sh;
    ngx_http_crm_link_node_t    *ln;

    sh = ctx->sh;

    if (negative) {
        while (sh->nnegative >= sh->negative_max
               && ngx_http_crm_links_evict(ctx, &sh->negative))
        {
            /* void */
        }

        if (sh->nnegative >= sh->negative_max) {
            return NULL;
        }
    }

    ln = ngx_slab_alloc_locked(ctx->shpool, size);

    for (i = 0; ln == NULL && i < NGX_HTTP_CRM_LINKS_EVICT; i++) {

        if (!ngx_http_crm_links_evict(ctx, &sh->negative)
            && (negative || !ngx_http_crm_links_evict(ctx, &sh->links)))
        {
            break;
        }

        ln = ngx_slab_alloc_locked(ctx->shpool, size);
    }

    return ln;
}


static void
ngx_http_crm_links_insert(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln, const u_char *id, uint32_t hash)
{
    ln->node.key = hash;
    ngx_memcpy(ln->id, id, CRM_LINK_ID_LEN);

    ngx_rbtree_insert(&ctx->sh->rbtree, &ln->node);

    if (ngx_http_crm_link_negative(ln->state)) {
        ctx->sh->nnegative++;
        ngx_queue_insert_head(&ctx->sh->negative, &ln->queue);

    } else {
        ngx_queue_insert_head(&ctx->sh->links, &ln->queue);
    }
}


ngx_http_crm_link_e
ngx_http_crm_links_lookup(ngx_http_request_t *r,
    ngx_http_crm_main_conf_t *mcf, const char *id, const char *click_id,
    ngx_str_t *location, ngx_uint_t stale)
{
    time_t                     now, until;
    uint32_t                   hash;
    ngx_http_crm_link_e        state;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = mcf->link_zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);
    now = ngx_time();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_crm_links_find(ctx->sh, (const u_char *) id, hash);

    until = ln ? ln->expires + (stale ? mcf->link_stale : 0) : 0;

    /* an expired entry stays until replaced or evicted, for stale use */
    if (ln == NULL || ln->state == NGX_HTTP_CRM_LINK_TOMBSTONE
        || until <= now)
    {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_HTTP_CRM_LINK_MISS;
    }

    ngx_queue_remove(&ln->queue);
    ngx_queue_insert_head(ngx_http_crm_link_negative(ln->state)
                          ? &ctx->sh->negative : &ctx->sh->links,
                          &ln->queue);

    state = ln->state;

    if (state == NGX_HTTP_CRM_LINK_ACTIVE) {
        location->data = ngx_pnalloc(r->pool, crm_url_redirect_size(ln->len));

        if (location->data != NULL) {
            location->len = crm_url_redirect(
                                (crm_str_t) { (const char *) ln->target,
                                              ln->len },
                                id, click_id, (char *) location->data,
                                crm_url_redirect_size(ln->len));
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return state;
}


uint64_t
ngx_http_crm_links_changes(ngx_http_crm_main_conf_t *mcf)
{
    uint64_t                   changes;
    ngx_http_crm_links_ctx_t  *ctx;

    ctx = mcf->link_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    changes = ctx->sh->changes;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return changes;
}


ngx_uint_t
ngx_http_crm_links_changed_since(ngx_http_crm_main_conf_t *mcf,
    const u_char *id, uint64_t changes)
{
    uint32_t                   hash;
    ngx_uint_t                 changed;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = mcf->link_zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_crm_links_find(ctx->sh, id, hash);

    changed = ln != NULL ? ln->changed > changes
                         : ctx->sh->forgotten > changes;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return changed;
}


ngx_int_t
ngx_http_crm_links_store(ngx_http_crm_main_conf_t *mcf, const u_char *id,
    const crm_edge_link_t *link, uint64_t changes)
{
    size_t                     size, len;
    uint32_t                   hash;
    uint64_t                   changed;
    ngx_uint_t                 state;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = mcf->link_zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    state = !link->found ? NGX_HTTP_CRM_LINK_UNKNOWN
            : link->active ? NGX_HTTP_CRM_LINK_ACTIVE
            : NGX_HTTP_CRM_LINK_DISABLED;

    len = state == NGX_HTTP_CRM_LINK_ACTIVE ? link->target_len : 0;
    size = offsetof(ngx_http_crm_link_node_t, target) + len;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_crm_links_find(ctx->sh, id, hash);

    changed = ln != NULL ? ln->changed : ctx->sh->forgotten;

    if (changed > changes) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    if (ln != NULL) {
        /* the replaced entry's change is carried over, not forgotten */
        changed = ln->changed;
        ln->changed = 0;
        ngx_http_crm_links_delete(ctx, ln);

    } else {
        changed = 0;
    }

    ln = ngx_http_crm_links_alloc(ctx, size, ngx_http_crm_link_negative(state));

    if (ln == NULL) {
        /* the replaced entry's change must still stop older loads */
        if (changed > ctx->sh->forgotten) {
            ctx->sh->forgotten = changed;
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_OK;
    }

    ln->expires = ngx_time() + (link->found ? mcf->link_ttl
                                            : mcf->link_negative_ttl);
    ln->changed = changed;
    ln->state = (u_char) state;
    ln->len = (u_short) len;
    ngx_memcpy(ln->target, link->target, len);

    ngx_http_crm_links_insert(ctx, ln, id, hash);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


void
ngx_http_crm_links_forget(ngx_http_crm_main_conf_t *mcf, const u_char *id)
{
    uint32_t                   hash;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = mcf->link_zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ctx->sh->changes++;

    ln = ngx_http_crm_links_find(ctx->sh, id, hash);

    if (ln != NULL) {
        ln->changed = 0;
        ngx_http_crm_links_delete(ctx, ln);
    }

    ln = ngx_http_crm_links_alloc(ctx,
                                  offsetof(ngx_http_crm_link_node_t, target),
                                  1);

    if (ln == NULL) {
        /* no room for the tombstone: every load before now is refused */
        ctx->sh->forgotten = ctx->sh->changes;

    } else {
        ln->expires = 0;
        ln->changed = ctx->sh->changes;
        ln->state = NGX_HTTP_CRM_LINK_TOMBSTONE;
        ln->len = 0;

        ngx_http_crm_links_insert(ctx, ln, id, hash);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


void
ngx_http_crm_links_forget_all(ngx_http_crm_main_conf_t *mcf)
{
    ngx_uint_t                 n;
    ngx_http_crm_links_ctx_t  *ctx;

    ctx = mcf->link_zone->data;
    n = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* loads under way may have read what changed: none is stored */
    ctx->sh->changes++;
    ctx->sh->forgotten = ctx->sh->changes;

    while (ngx_http_crm_links_evict(ctx, &ctx->sh->negative)) {
        n++;
    }

    while (ngx_http_crm_links_evict(ctx, &ctx->sh->links)) {
        n++;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "crm: link cache emptied (%ui entries): changes may "
                  "have gone unheard", n);
}
