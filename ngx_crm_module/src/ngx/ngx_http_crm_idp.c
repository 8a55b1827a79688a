/*
 * An identity provider's keys from a URL, for every worker.
 *
 * The zone holds the last good document, when it is due for a refresh
 * (the answer's Cache-Control max-age, 5 s to a day, an hour when it
 * says none) and a generation.  Each worker's one-second timer:
 *
 *   generation moved    parse the zone's document into the worker's own
 *                       key set (ngx_http_crm_idp_url_keys)
 *   refresh due         one worker (the zone's fetcher mark) fetches the
 *                       URL through the outbound layer; a document that
 *                       parses as keys replaces the zone's, anything else
 *                       is logged and retried in 30 s: the last good keys
 *                       stay
 *
 * A reload with another URL forgets the zone's keys; with the same URL
 * they go on.  The timer is cancelable: a worker that quits does not
 * wait for it.
 */

#include "ngx_http_crm_idp.h"
#include "ngx_http_crm_outbound.h"
#include "ngx_http_crm_state.h"

#include "crm_jwk.h"


#define NGX_HTTP_CRM_IDP_ZONE      "ngx_http_crm_idp_keys_v1"
#define NGX_HTTP_CRM_IDP_TICK      1000
#define NGX_HTTP_CRM_IDP_RETRY     30
#define NGX_HTTP_CRM_IDP_DEFAULT   3600
#define NGX_HTTP_CRM_IDP_MIN_AGE   5
#define NGX_HTTP_CRM_IDP_MAX_AGE   86400
#define NGX_HTTP_CRM_IDP_STALE     120       /* a fetcher that vanished */


typedef struct {
    u_char        url[512];
    ngx_pid_t     fetcher;                  /* 0: none */
    time_t        fetch_started;
    time_t        due;                      /* next refresh */
    ngx_uint_t    generation;
    size_t        len;
    u_char        doc[CRM_JWK_MAX_DOCUMENT];
} ngx_http_crm_idp_shm_t;


static ngx_int_t ngx_http_crm_idp_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_crm_idp_tick(ngx_event_t *ev);
static void ngx_http_crm_idp_reload(ngx_http_crm_idp_shm_t *shm,
    ngx_slab_pool_t *shpool, ngx_log_t *log);
static void ngx_http_crm_idp_fetch(ngx_http_crm_idp_shm_t *shm,
    ngx_log_t *log);
static void ngx_http_crm_idp_fetched(void *data);
static time_t ngx_http_crm_idp_max_age(const crm_http_response_t *res);


crm_jwk_set_t  *ngx_http_crm_idp_url_keys;

static ngx_event_t               ngx_http_crm_idp_event;
static ngx_shm_zone_t           *ngx_http_crm_idp_zone;
static ngx_uint_t                ngx_http_crm_idp_generation;
static ngx_http_crm_outbound_t  *ngx_http_crm_idp_call;
static crm_http_request_t        ngx_http_crm_idp_request;
static u_char                    ngx_http_crm_idp_url[512];  /* fetching */
static crm_http_response_t       ngx_http_crm_idp_response;


char *
ngx_http_crm_idp_keys_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    ngx_str_t  *value, name = ngx_string(NGX_HTTP_CRM_IDP_ZONE);

    if (mcf->idp_keys_url.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len >= sizeof(((ngx_http_crm_idp_shm_t *) 0)->url)
        || crm_url_check_target((crm_str_t) { (const char *) value[1].data,
                                              value[1].len }) != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"crm_idp_keys_url\" \"%V\": must be an "
                           "absolute http(s) URL", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->idp_keys_url = value[1];

    mcf->idp_zone = ngx_shared_memory_add(cf, &name,
                        sizeof(ngx_http_crm_idp_shm_t) + 64 * 1024,
                        &ngx_http_crm_module);
    if (mcf->idp_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->idp_zone->init = ngx_http_crm_idp_init_zone;
    mcf->idp_zone->data = mcf;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_crm_idp_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t           *shpool;
    ngx_http_crm_idp_shm_t    *shm;
    ngx_http_crm_main_conf_t  *mcf;

    mcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data != NULL || shm_zone->shm.exists) {
        shm = shpool->data;

    } else {
        shm = ngx_slab_calloc(shpool, sizeof(ngx_http_crm_idp_shm_t));
        if (shm == NULL) {
            return NGX_ERROR;
        }

        shpool->data = shm;
    }

    /* another URL: its keys are not these */
    ngx_shmtx_lock(&shpool->mutex);

    if (ngx_strlen(shm->url) != mcf->idp_keys_url.len
        || ngx_strncmp(shm->url, mcf->idp_keys_url.data,
                       mcf->idp_keys_url.len) != 0)
    {
        ngx_memzero(shm->url, sizeof(shm->url));
        ngx_memcpy(shm->url, mcf->idp_keys_url.data, mcf->idp_keys_url.len);
        shm->len = 0;
        shm->due = 0;
        shm->fetcher = 0;
        shm->generation++;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    shm_zone->data = mcf;

    return NGX_OK;
}


ngx_int_t
ngx_http_crm_idp_init_process(ngx_cycle_t *cycle)
{
    ngx_http_crm_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf == NULL || mcf->idp_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_crm_idp_zone = mcf->idp_zone;
    ngx_http_crm_idp_generation = (ngx_uint_t) -1;

    ngx_http_crm_idp_event.handler = ngx_http_crm_idp_tick;
    ngx_http_crm_idp_event.log = cycle->log;
    ngx_http_crm_idp_event.cancelable = 1;

    ngx_http_crm_idp_tick(&ngx_http_crm_idp_event);

    return NGX_OK;
}


void
ngx_http_crm_idp_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_crm_idp_call != NULL) {
        ngx_http_crm_outbound_cancel(ngx_http_crm_idp_call);
        ngx_http_crm_idp_call = NULL;
    }

    crm_http_response_clear(&ngx_http_crm_idp_response);
    crm_jwk_set_free(ngx_http_crm_idp_url_keys);
    ngx_http_crm_idp_url_keys = NULL;
}


static void
ngx_http_crm_idp_tick(ngx_event_t *ev)
{
    ngx_int_t                 fetch;
    ngx_slab_pool_t          *shpool;
    ngx_http_crm_idp_shm_t   *shm;

    shpool = (ngx_slab_pool_t *) ngx_http_crm_idp_zone->shm.addr;
    shm = shpool->data;

    if (shm->generation != ngx_http_crm_idp_generation) {
        ngx_http_crm_idp_reload(shm, shpool, ev->log);
    }

    fetch = 0;

    if (ngx_http_crm_idp_call == NULL && !ngx_exiting) {
        ngx_shmtx_lock(&shpool->mutex);

        if (ngx_time() >= shm->due
            && (shm->fetcher == 0
                || ngx_time() - shm->fetch_started > NGX_HTTP_CRM_IDP_STALE))
        {
            shm->fetcher = ngx_pid;
            shm->fetch_started = ngx_time();

            /* the URL as it is now: a reload may change the zone's */
            ngx_memcpy(ngx_http_crm_idp_url, shm->url, sizeof(shm->url));
            fetch = 1;
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }

    if (fetch) {
        ngx_http_crm_idp_fetch(shm, ev->log);
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_CRM_IDP_TICK);
    }
}


/* the zone's document, copied under the lock and parsed outside it */
static void
ngx_http_crm_idp_reload(ngx_http_crm_idp_shm_t *shm, ngx_slab_pool_t *shpool,
    ngx_log_t *log)
{
    u_char         *doc;
    size_t          len;
    ngx_uint_t      generation;
    crm_error_t     err;
    crm_jwk_set_t  *set;

    doc = ngx_alloc(CRM_JWK_MAX_DOCUMENT, log);
    if (doc == NULL) {
        return;
    }

    ngx_shmtx_lock(&shpool->mutex);

    len = shm->len;
    generation = shm->generation;
    ngx_memcpy(doc, shm->doc, len);

    ngx_shmtx_unlock(&shpool->mutex);

    set = NULL;

    if (len > 0
        && crm_jwk_set_parse((const char *) doc, len, &set, &err) != CRM_OK)
    {
        /* the fetcher parsed it before storing it: only ENOMEM is left */
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "crm: identity provider keys unreadable: %s",
                      err.message);
        ngx_free(doc);
        return;
    }

    ngx_free(doc);

    crm_jwk_set_free(ngx_http_crm_idp_url_keys);
    ngx_http_crm_idp_url_keys = set;
    ngx_http_crm_idp_generation = generation;
}


static void
ngx_http_crm_idp_fetch(ngx_http_crm_idp_shm_t *shm, ngx_log_t *log)
{
    ngx_http_conf_ctx_t             *ctx;
    ngx_http_crm_loc_conf_t         *lcf;
    ngx_http_crm_outbound_policy_t   policy;

    /* the http level's outbound settings */
    ctx = (ngx_http_conf_ctx_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_http_module);
    lcf = ctx->loc_conf[ngx_http_crm_module.ctx_index];

    policy.allow = lcf->outbound_allow != NGX_CONF_UNSET_PTR
                   ? lcf->outbound_allow : NULL;
    policy.connect_timeout = lcf->outbound_connect_timeout
                             != NGX_CONF_UNSET_MSEC
                             ? lcf->outbound_connect_timeout : 5000;
    policy.timeout = lcf->outbound_timeout != NGX_CONF_UNSET_MSEC
                     ? lcf->outbound_timeout : 15000;

    ngx_memzero(&ngx_http_crm_idp_request, sizeof(crm_http_request_t));
    ngx_http_crm_idp_request.method = "GET";
    ngx_http_crm_idp_request.url = (const char *) ngx_http_crm_idp_url;
    ngx_http_crm_idp_request.provider = "the identity provider";

    crm_http_response_clear(&ngx_http_crm_idp_response);

    ngx_http_crm_idp_call = ngx_http_crm_outbound_start(
                                &ngx_http_crm_idp_request,
                                &ngx_http_crm_idp_response, &policy,
                                ngx_http_crm_idp_fetched, log, log);

    if (ngx_http_crm_idp_call == NULL) {
        ngx_http_crm_idp_fetched(log);
    }
}


static void
ngx_http_crm_idp_fetched(void *data)
{
    ngx_log_t *log = data;

    time_t                     age;
    const char                *why;
    crm_error_t                err;
    crm_jwk_set_t             *set;
    ngx_slab_pool_t           *shpool;
    crm_http_response_t       *res;
    ngx_http_crm_idp_shm_t    *shm;
    ngx_http_crm_main_conf_t  *mcf;

    ngx_http_crm_idp_call = NULL;

    res = &ngx_http_crm_idp_response;
    shpool = (ngx_slab_pool_t *) ngx_http_crm_idp_zone->shm.addr;
    shm = shpool->data;
    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_crm_module);

    set = NULL;
    why = NULL;

    if (res->outcome != CRM_HTTP_ANSWERED) {
        why = res->error;

    } else if (res->status != 200) {
        why = "not a 200 answer";

    } else if (crm_jwk_set_parse(res->body, res->len, &set, &err)
               != CRM_OK)
    {
        why = err.message;
    }

    /* parsed only to be sure: each worker parses the zone's copy */
    crm_jwk_set_free(set);

    ngx_shmtx_lock(&shpool->mutex);

    /*
     * a reload that changed the URL (or a fetcher taken for stale) made
     * this answer another URL's: it is not stored
     */
    if (shm->fetcher != ngx_pid
        || ngx_strcmp(shm->url, ngx_http_crm_idp_url) != 0)
    {
        ngx_shmtx_unlock(&shpool->mutex);
        crm_http_response_clear(res);
        return;
    }

    shm->fetcher = 0;

    if (why == NULL) {
        age = ngx_http_crm_idp_max_age(res);

        ngx_memcpy(shm->doc, res->body, res->len);
        shm->len = res->len;
        shm->due = ngx_time() + age;
        shm->generation++;

    } else {
        shm->due = ngx_time() + NGX_HTTP_CRM_IDP_RETRY;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (why == NULL) {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_IDP_KEY_REFRESHES, 1);
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "crm: identity provider keys from \"%s\" refreshed",
                      ngx_http_crm_idp_url);

    } else {
        ngx_http_crm_count(mcf, NGX_HTTP_CRM_IDP_KEY_FAILURES, 1);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "crm: identity provider keys from \"%s\" not "
                      "refreshed (%s; HTTP %ui): the last good keys stay, "
                      "next try in %ds", ngx_http_crm_idp_url, why,
                      (ngx_uint_t) res->status, NGX_HTTP_CRM_IDP_RETRY);
    }

    crm_http_response_clear(res);
}


/* Cache-Control max-age, bounded; an hour when the answer names none */
static time_t
ngx_http_crm_idp_max_age(const crm_http_response_t *res)
{
    size_t       n;
    time_t       age;
    const char  *cc, *p;

    cc = crm_http_response_header(res, "Cache-Control");
    p = cc != NULL ? (const char *) ngx_strcasestrn((u_char *) cc,
                                                    "max-age=", 8 - 1)
                   : NULL;

    if (p == NULL) {
        return NGX_HTTP_CRM_IDP_DEFAULT;
    }

    n = strspn(p + 8, "0123456789");
    age = n > 0 && n < 10 ? ngx_atotm((u_char *) p + 8, n) : NGX_ERROR;

    if (age == NGX_ERROR || age < NGX_HTTP_CRM_IDP_MIN_AGE) {
        return NGX_HTTP_CRM_IDP_MIN_AGE;
    }

    return age > NGX_HTTP_CRM_IDP_MAX_AGE ? NGX_HTTP_CRM_IDP_MAX_AGE : age;
}
