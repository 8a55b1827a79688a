/*
 * The link cache: what the redirect needs of each link (its target and
 * whether it is active), in a shared zone, so that a redirect for a known
 * link never leaves the event loop.
 *
 * An rbtree keyed by the id's CRC32 finds an entry; an LRU queue evicts
 * the least recently used when the zone is full.  Entries are fresh for
 * the TTL; ids that do not exist are cached too ("negative" entries), so
 * that one unknown id costs one lookup per TTL whatever its traffic.  An
 * expired entry is reloaded, but kept until then: while the database is
 * unreachable it still answers.  A change
 * through the API drops the entry at once on this host, and bumps the
 * zone's generation: a load that began before the change does not store
 * what it read.
 */

#include "ngx_http_crm_module.h"

#include "crm_url.h"


#define NGX_HTTP_CRM_LINKS_LAYOUT  1


typedef struct {
    ngx_rbtree_node_t        node;
    ngx_queue_t              queue;
    time_t                   expires;
    ngx_uint_t               state;         /* ngx_http_crm_link_e */
    u_char                   id[CRM_LINK_ID_LEN];
    u_short                  len;
    u_char                   target[1];
} ngx_http_crm_link_node_t;


typedef struct {
    ngx_uint_t               layout;
    ngx_rbtree_t             rbtree;
    ngx_rbtree_node_t        sentinel;
    ngx_queue_t              lru;
    ngx_atomic_t             generation;
} ngx_http_crm_links_shctx_t;


typedef struct {
    ngx_http_crm_links_shctx_t  *sh;
    ngx_slab_pool_t             *shpool;
} ngx_http_crm_links_ctx_t;


static ngx_int_t ngx_http_crm_links_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_crm_links_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_crm_link_node_t *ngx_http_crm_links_find(
    ngx_http_crm_links_shctx_t *sh, const u_char *id, uint32_t hash);
static void ngx_http_crm_links_delete(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln);


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
            || ngx_strncmp(value[i].data, "negative_ttl=", 13) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n < 1 || n > 86400) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": must be between 1s and 1d",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                mcf->link_ttl = n;

            } else {
                mcf->link_negative_ttl = n;
            }

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

    mcf->link_zone = ngx_http_crm_zone_add(cf, &name, size,
                                           ngx_http_crm_links_init_zone, ctx);

    return mcf->link_zone ? NGX_CONF_OK : NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * Nothing here touches what the zone already holds: on a reload this runs
 * in the master while the old workers still serve from it.
 */
static ngx_int_t
ngx_http_crm_links_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_crm_links_ctx_t  *octx = data;

    size_t                     len;
    ngx_http_crm_links_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        if (octx->sh->layout != NGX_HTTP_CRM_LINKS_LAYOUT) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "link cache \"%V\" was made by another version",
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

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_http_crm_links_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ctx->sh->layout = NGX_HTTP_CRM_LINKS_LAYOUT;
    ctx->sh->generation = 0;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_crm_links_insert_value);
    ngx_queue_init(&ctx->sh->lru);

    len = sizeof(" in link cache \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in link cache \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone evicts entries instead of logging each failure */
    ctx->shpool->log_nomem = 0;

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


static void
ngx_http_crm_links_delete(ngx_http_crm_links_ctx_t *ctx,
    ngx_http_crm_link_node_t *ln)
{
    ngx_queue_remove(&ln->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &ln->node);
    ngx_slab_free_locked(ctx->shpool, ln);
}


ngx_http_crm_link_e
ngx_http_crm_links_lookup(ngx_http_request_t *r, ngx_shm_zone_t *zone,
    const char *id, const char *click_id, ngx_str_t *location,
    ngx_uint_t stale)
{
    uint32_t                   hash;
    ngx_http_crm_link_e        state;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_crm_links_find(ctx->sh, (const u_char *) id, hash);

    if (ln == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_HTTP_CRM_LINK_MISS;
    }

    /* an expired entry stays until replaced or evicted, for stale use */
    if (ln->expires <= ngx_time() && !stale) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_HTTP_CRM_LINK_MISS;
    }

    ngx_queue_remove(&ln->queue);
    ngx_queue_insert_head(&ctx->sh->lru, &ln->queue);

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


ngx_uint_t
ngx_http_crm_links_generation(ngx_shm_zone_t *zone)
{
    ngx_http_crm_links_ctx_t  *ctx;

    ctx = zone->data;

    return ctx->sh->generation;
}


void
ngx_http_crm_links_store(ngx_shm_zone_t *zone, const u_char *id,
    const crm_edge_link_t *link, ngx_uint_t generation, time_t ttl)
{
    size_t                     size, len;
    uint32_t                   hash;
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    len = link->found ? link->target_len : 0;
    size = offsetof(ngx_http_crm_link_node_t, target) + len;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ctx->sh->generation != generation) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return;
    }

    ln = ngx_http_crm_links_find(ctx->sh, id, hash);
    if (ln != NULL) {
        ngx_http_crm_links_delete(ctx, ln);
    }

    ln = ngx_slab_alloc_locked(ctx->shpool, size);

    /* full: the least recently used go, a few at a time, then one retry */
    for (i = 0; ln == NULL && i < 8 && !ngx_queue_empty(&ctx->sh->lru); i++)
    {
        q = ngx_queue_last(&ctx->sh->lru);
        ngx_http_crm_links_delete(ctx,
            ngx_queue_data(q, ngx_http_crm_link_node_t, queue));

        ln = ngx_slab_alloc_locked(ctx->shpool, size);
    }

    if (ln == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return;
    }

    ln->node.key = hash;
    ln->expires = ngx_time() + ttl;
    ln->state = !link->found ? NGX_HTTP_CRM_LINK_UNKNOWN
                : link->active ? NGX_HTTP_CRM_LINK_ACTIVE
                : NGX_HTTP_CRM_LINK_DISABLED;
    ngx_memcpy(ln->id, id, CRM_LINK_ID_LEN);
    ln->len = (u_short) len;
    ngx_memcpy(ln->target, link->target, len);

    ngx_rbtree_insert(&ctx->sh->rbtree, &ln->node);
    ngx_queue_insert_head(&ctx->sh->lru, &ln->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


void
ngx_http_crm_links_forget(ngx_shm_zone_t *zone, const u_char *id)
{
    uint32_t                   hash;
    ngx_http_crm_links_ctx_t  *ctx;
    ngx_http_crm_link_node_t  *ln;

    ctx = zone->data;
    hash = ngx_crc32_short((u_char *) id, CRM_LINK_ID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ctx->sh->generation++;

    ln = ngx_http_crm_links_find(ctx->sh, id, hash);
    if (ln != NULL) {
        ngx_http_crm_links_delete(ctx, ln);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}
