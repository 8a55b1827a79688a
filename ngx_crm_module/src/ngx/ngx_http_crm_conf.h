/*
 * The CRM gateway's configuration as the glue files share it: the module,
 * its location and main configurations.  The glue's files depend on each
 * other in one direction:
 *
 *   ngx_http_crm_module.c        directives, merge, the module itself
 *     ngx_http_crm_api.c         the API handler
 *     ngx_http_crm_redirect.c    the redirect handler
 *       ngx_http_crm_links.c     the link cache zone
 *       ngx_http_crm_clicks.c    the click queue zone and its flush
 *     ngx_http_crm_health.c      the database probes behind /healthz
 *     ngx_http_crm_error_filter.c
 *       ngx_http_crm_reply.c     headers and problem documents
 *       ngx_http_crm_state.c     counters (/metrics) and the state zone
 *         ngx_http_crm_conf.h    this file
 */

#ifndef NGX_HTTP_CRM_CONF_H
#define NGX_HTTP_CRM_CONF_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "crm_call.h"
#include "crm_origin.h"


/* webhook source names whose deliveries /metrics counts, since the
   state zone was made (beyond these: by route only) */
#define NGX_HTTP_CRM_WEBHOOK_NAMES  16


typedef struct {
    ngx_array_t          *origins;          /* of crm_origin_t; NULL:
                                               CORS is off */
    ngx_uint_t            any;              /* "*" */
    ngx_array_t          *methods;          /* of ngx_str_t */
    ngx_array_t          *headers;
    ngx_array_t          *expose;
    ngx_flag_t            credentials;
    time_t                max_age;
    /* the lists as headers send them, "GET, POST" */
    ngx_str_t             methods_text;
    ngx_str_t             headers_text;
    ngx_str_t             expose_text;
    ngx_str_t             max_age_text;
} ngx_http_crm_cors_conf_t;


typedef struct {
    ngx_str_t             database;
    ngx_msec_t            connect_timeout;
    ngx_msec_t            statement_timeout;
    ngx_str_t             replica;              /* "": none */
    ngx_msec_t            replica_max_lag;
    ngx_str_t             thread_pool_name;
    ngx_str_t             slow_pool_name;       /* "": the same pool */
    ngx_msec_t            queue_timeout;        /* 0: none */
    ngx_str_t             jwt_secret;           /* the file's contents */
    time_t                jwt_ttl;
    ngx_str_t             jwt_issuer;
    size_t                max_body_size;
    ngx_uint_t            max_json_depth;
    crm_pipeline_t       *pipeline;             /* loaded from its folder */
    ngx_str_t             callback_secret;      /* the file's contents */
    ngx_array_t          *webhook_sources;      /* crm_webhook_source_t */
    ngx_str_t             public_url;           /* no trailing slash */
    ngx_int_t             install_cents;        /* new links' defaults */
    ngx_int_t             conversion_bps;
    ngx_str_t             currency;
    crm_host_list_t      *target_hosts;         /* NULL: any host */
    ngx_int_t             link_limit;           /* links per account ... */
    time_t                link_period;          /* ... in this time */
    ngx_str_t             idp_project_id;       /* "": no merchant sign-in */
    ngx_str_t             idp_issuer;           /* "": Firebase's */
    crm_jwk_set_t        *idp_keys;             /* from the keys file */
    crm_seal_keyring_t   *seal;                 /* CRM credentials' keys */
    crm_cidr_list_t      *outbound_allow;       /* NULL: public only */
    ngx_msec_t            outbound_connect_timeout;
    ngx_msec_t            outbound_timeout;
    ngx_str_t             klaviyo_url;          /* no trailing slash */
    ngx_http_crm_cors_conf_t  cors;

    ngx_flag_t            api;                  /* crm_api in this location */
    ngx_flag_t            redirect;             /* crm_redirect */
    ngx_thread_pool_t    *thread_pool;
    ngx_thread_pool_t    *slow_pool;            /* password hashing */
    crm_db_conf_t        *db;                   /* the registry's */
    crm_db_conf_t        *replica_db;           /* the registry's, or NULL */
    crm_service_conf_t   *service;              /* built by merge */
} ngx_http_crm_loc_conf_t;


typedef struct {
    /* every distinct database of the configuration: one set of pool
       connections each, whatever the number of locations naming it */
    ngx_array_t           databases;            /* of crm_db_conf_t * */
    /* every crm_webhook_source's name, for /metrics */
    ngx_array_t           webhook_names;        /* of ngx_str_t */

    ngx_str_t             link_secret;          /* the file's contents */

    ngx_shm_zone_t       *state_zone;

    ngx_shm_zone_t       *link_zone;
    time_t                link_ttl;
    time_t                link_negative_ttl;
    time_t                link_stale;           /* stale-if-error bound */
    ngx_uint_t            link_negative_share;  /* percent of the zone */

    ngx_shm_zone_t       *click_zone;
    ngx_msec_t            flush_interval;
    size_t                flush_batch;          /* bytes */
    ngx_msec_t            flush_lease;
    ngx_str_t             spool_dir;            /* "": no spool */
    off_t                 spool_max;

    /* link loads, click flushes and database probes: the edge's pool */
    ngx_str_t             edge_pool_name;
    ngx_thread_pool_t    *edge_pool;

    /* an identity provider's keys from a URL, shared by the workers */
    ngx_str_t             idp_keys_url;         /* "": none */
    ngx_shm_zone_t       *idp_zone;

    /* the click flush's database: the http level's */
    crm_db_conf_t        *click_db;

    /* a worker's connections to one provider host at once (more calls
       wait in curl's queue; HTTP/2 hosts multiplex within them) */
    ngx_int_t             outbound_host_connections;

    /* the CRM sync queue: run with the first crm_api location's settings,
       its database work on crm_sync_thread_pool, else that location's */
    ngx_http_crm_loc_conf_t  *sync_lcf;
    ngx_str_t             sync_pool_name;       /* "": the location's */
    ngx_thread_pool_t    *sync_pool;
    ngx_msec_t            sync_interval;
    ngx_int_t             sync_leases;          /* a worker's; 0: none */
    ngx_int_t             sync_max_attempts;
    ngx_int_t             sync_concurrency;     /* an integration's */
    ngx_int_t             sync_rate;            /* calls/s an integration
                                                   and host; unset: the
                                                   provider's default */

    ngx_uint_t            used;                 /* a crm handler exists */
} ngx_http_crm_main_conf_t;


extern ngx_module_t  ngx_http_crm_module;

#endif /* NGX_HTTP_CRM_CONF_H */
