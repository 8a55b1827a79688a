/*
 * The CRM gateway's directives, their merge http -> server -> location,
 * and the module definition.  The merged configuration of each location
 * becomes the plain crm_service_conf_t that the services read.  Databases
 * are kept in one registry per configuration: every location, the click
 * flush and the probes that name the same database (and timeouts) share
 * one crm_db_conf_t, and so one connection per pool thread.
 */

#include "ngx_http_crm_api.h"
#include "ngx_http_crm_clicks.h"
#include "ngx_http_crm_cors.h"
#include "ngx_http_crm_error_filter.h"
#include "ngx_http_crm_health.h"
#include "ngx_http_crm_idp.h"
#include "ngx_http_crm_links.h"
#include "ngx_http_crm_listen.h"
#include "ngx_http_crm_metrics.h"
#include "ngx_http_crm_outbound.h"
#include "ngx_http_crm_redirect.h"
#include "ngx_http_crm_reply.h"
#include "ngx_http_crm_state.h"
#include "ngx_http_crm_stats.h"
#include "ngx_http_crm_sync.h"
#include "ngx_http_crm_variables.h"

#include <dirent.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "crm_jwk.h"
#include "crm_normalize.h"
#include "crm_url.h"


#define NGX_HTTP_CRM_SECRET_MIN             32
#define NGX_HTTP_CRM_CONNECT_TIMEOUT        3000
#define NGX_HTTP_CRM_STATEMENT_TIMEOUT      5000
#define NGX_HTTP_CRM_REPLICA_MAX_LAG        10000
#define NGX_HTTP_CRM_FIREBASE_ISSUER        "https://securetoken.google.com/"


static ngx_int_t ngx_http_crm_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_crm_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_crm_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_crm_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_crm_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_crm_check_loc_conf(ngx_conf_t *cf,
    ngx_http_crm_main_conf_t *mcf, ngx_http_crm_loc_conf_t *conf);
static char *ngx_http_crm_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_replica(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_webhook_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_webhook_name(ngx_conf_t *cf, ngx_str_t *name);
static char *ngx_http_crm_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_idp_keys_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_read_file(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *name, size_t max, ngx_str_t *out);
static void ngx_http_crm_jwk_cleanup(void *data);
static char *ngx_http_crm_credentials_key_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_crm_seal_key(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *name, crm_seal_key_t *key);
static void ngx_http_crm_seal_cleanup(void *data);
static char *ngx_http_crm_outbound_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_base_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_pipeline(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_allow_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_crm_link_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_crm_pipeline_cleanup(void *data);
static ngx_uint_t ngx_http_crm_upper_alpha(ngx_str_t *s);
static ngx_uint_t ngx_http_crm_token_text(ngx_str_t *s);
static crm_db_conf_t *ngx_http_crm_db(ngx_conf_t *cf,
    ngx_http_crm_main_conf_t *mcf, ngx_str_t *conninfo,
    ngx_msec_t connect_timeout, ngx_msec_t statement_timeout,
    crm_db_conf_t *primary);
static char *ngx_http_crm_build_service(ngx_conf_t *cf,
    ngx_http_crm_main_conf_t *mcf, ngx_http_crm_loc_conf_t *conf);
static const char *ngx_http_crm_cstr(ngx_conf_t *cf, ngx_str_t *s);
static ngx_int_t ngx_http_crm_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_crm_init_process(ngx_cycle_t *cycle);
static void ngx_http_crm_exit_process(ngx_cycle_t *cycle);
static void ngx_http_crm_threads_wait(ngx_cycle_t *cycle);
static void ngx_http_crm_db_connected(void *data, int ok);


static ngx_str_t  ngx_http_crm_default_pool = ngx_string("crm");

static ngx_command_t  ngx_http_crm_commands[] = {

    { ngx_string("crm_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_crm_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_redirect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_crm_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_crm_redirect_handler },

    { ngx_string("crm_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_crm_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_crm_metrics_handler },

    { ngx_string("crm_link_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_crm_link_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_click_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_crm_click_queue,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_click_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_crm_click_spool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_link_id_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, link_secret),
      NULL },

    { ngx_string("crm_idp_keys_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_idp_keys_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_outbound_host_connections"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, outbound_host_connections),
      NULL },

    { ngx_string("crm_sync_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_pool_name),
      NULL },

    { ngx_string("crm_sync_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_interval),
      NULL },

    { ngx_string("crm_sync_leases"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_leases),
      NULL },

    { ngx_string("crm_sync_max_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_max_attempts),
      NULL },

    { ngx_string("crm_sync_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_concurrency),
      NULL },

    { ngx_string("crm_sync_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, sync_rate),
      NULL },

    { ngx_string("crm_edge_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_crm_main_conf_t, edge_pool_name),
      NULL },

    { ngx_string("crm_database"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, database),
      NULL },

    { ngx_string("crm_database_replica"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_crm_replica,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("crm_db_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, connect_timeout),
      NULL },

    { ngx_string("crm_db_statement_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, statement_timeout),
      NULL },

    { ngx_string("crm_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("crm_slow_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, slow_pool_name),
      NULL },

    { ngx_string("crm_queue_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, queue_timeout),
      NULL },

    { ngx_string("crm_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, jwt_secret),
      NULL },

    { ngx_string("crm_idp_project_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, idp_project_id),
      NULL },

    { ngx_string("crm_idp_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, idp_issuer),
      NULL },

    { ngx_string("crm_idp_keys_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_idp_keys_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, idp_keys),
      NULL },

    { ngx_string("crm_credentials_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_crm_credentials_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, seal),
      NULL },

    { ngx_string("crm_outbound_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_outbound_allow,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, outbound_allow),
      NULL },

    { ngx_string("crm_outbound_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, outbound_connect_timeout),
      NULL },

    { ngx_string("crm_outbound_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, outbound_timeout),
      NULL },

    { ngx_string("crm_klaviyo_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_base_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, klaviyo_url),
      NULL },

    { ngx_string("crm_callback_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, callback_secret),
      NULL },

    { ngx_string("crm_webhook_source"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_crm_webhook_source,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, webhook_sources),
      NULL },

    { ngx_string("crm_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors),
      NULL },

    { ngx_string("crm_cors_methods"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_cors_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors.methods),
      (void *) ngx_http_crm_cors_methods },

    { ngx_string("crm_cors_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_cors_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors.headers),
      NULL },

    { ngx_string("crm_cors_expose_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_cors_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors.expose),
      NULL },

    { ngx_string("crm_cors_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors.credentials),
      NULL },

    { ngx_string("crm_cors_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, cors.max_age),
      NULL },

    { ngx_string("crm_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_base_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, public_url),
      NULL },

    { ngx_string("crm_default_install_cents"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, install_cents),
      NULL },

    { ngx_string("crm_default_conversion_bps"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, conversion_bps),
      NULL },

    { ngx_string("crm_currency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, currency),
      NULL },

    { ngx_string("crm_redirect_allow_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_crm_allow_hosts,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, target_hosts),
      NULL },

    { ngx_string("crm_link_create_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_crm_link_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, link_limit),
      NULL },

    { ngx_string("crm_pipeline"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_crm_pipeline,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, pipeline),
      NULL },

    { ngx_string("crm_jwt_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, jwt_ttl),
      NULL },

    { ngx_string("crm_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, jwt_issuer),
      NULL },

    { ngx_string("crm_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("crm_max_json_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_crm_loc_conf_t, max_json_depth),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_crm_module_ctx = {
    ngx_http_crm_variables_add,            /* preconfiguration */
    ngx_http_crm_postconfiguration,        /* postconfiguration */

    ngx_http_crm_create_main_conf,         /* create main configuration */
    ngx_http_crm_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_crm_create_loc_conf,          /* create location configuration */
    ngx_http_crm_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_crm_module = {
    NGX_MODULE_V1,
    &ngx_http_crm_module_ctx,              /* module context */
    ngx_http_crm_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_crm_init_module,              /* init module */
    ngx_http_crm_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_crm_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Runs after the core's thread pools have drained, and before the cycle
 * pool (and with it this module) goes away.
 */
static void
ngx_http_crm_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_crm_listen_exit_process(cycle);
    ngx_http_crm_clicks_exit_process(cycle);
    ngx_http_crm_idp_exit_process(cycle);
    ngx_http_crm_outbound_exit(cycle);
    ngx_http_crm_threads_wait(cycle);
    crm_db_close_all();
}


/*
 * nginx lets a worker go on as soon as each pool thread has begun to
 * exit, and the worker then calls exit(): OpenSSL's exit handler would
 * free its global state while a pool thread still runs OpenSSL's own
 * thread-local cleanup (its threads made HMACs and random ids), a crash
 * seen about once in thirty shutdowns.  The worker waits, a second at
 * most, until its pool threads are gone.
 */
static void
ngx_http_crm_threads_wait(ngx_cycle_t *cycle)
{
    DIR            *dir;
    ngx_uint_t      i, n;
    struct dirent  *de;

    for (i = 0; i < 1000; i++) {
        dir = opendir("/proc/self/task");
        if (dir == NULL) {
            return;
        }

        n = 0;

        while ((de = readdir(dir)) != NULL) {
            n += de->d_name[0] != '.';
        }

        closedir(dir);

        if (n <= 1) {
            return;
        }

        ngx_msleep(1);
    }

    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                  "crm: thread pool threads still running at exit");
}


/* runs in the master for each configuration it loads */
static ngx_int_t
ngx_http_crm_init_module(ngx_cycle_t *cycle)
{
    ngx_http_crm_config_generation++;

    /* once, before any worker or thread uses libcurl or libxml2 */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_global_init() failed");
        return NGX_ERROR;
    }

    crm_provider_init();

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_init_process(ngx_cycle_t *cycle)
{
    ngx_str_t                 *names;
    ngx_uint_t                 i;
    ngx_http_crm_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);

    if (mcf != NULL) {
        crm_db_observe(ngx_http_crm_db_connected, mcf);

        /* the configured webhook sources' counters, at 0 until used */
        names = mcf->webhook_names.elts;

        for (i = 0; i < mcf->webhook_names.nelts; i++) {
            (void) ngx_http_crm_webhook_index(mcf, names[i].data,
                                              names[i].len);
        }
    }

    if (ngx_http_crm_clicks_init_process(cycle) != NGX_OK
        || ngx_http_crm_outbound_init(cycle) != NGX_OK
        || ngx_http_crm_idp_init_process(cycle) != NGX_OK
        || ngx_http_crm_sync_init_process(cycle) != NGX_OK
        || ngx_http_crm_stats_init_process(cycle) != NGX_OK
        || ngx_http_crm_listen_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_crm_health_init_process(cycle);
}


/* on a pool thread: the counters are atomic, in the worker's slot */
static void
ngx_http_crm_db_connected(void *data, int ok)
{
    ngx_http_crm_count(data, ok ? NGX_HTTP_CRM_DB_CONNECTS
                                : NGX_HTTP_CRM_DB_CONNECT_FAILURES, 1);
}


static void *
ngx_http_crm_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_crm_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_crm_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->link_secret = { 0, NULL };
     *     mcf->state_zone = NULL;
     *     mcf->link_zone = NULL;
     *     mcf->click_zone = NULL;
     *     mcf->spool_dir = { 0, NULL };
     *     mcf->edge_pool = NULL;
     *     mcf->click_db = NULL;
     *     mcf->used = 0;
     */

    if (ngx_array_init(&mcf->databases, cf->pool, 2,
                       sizeof(crm_db_conf_t *))
        != NGX_OK
        || ngx_array_init(&mcf->webhook_names, cf->pool, 2,
                          sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NULL;
    }

    mcf->edge_pool_name.data = NULL;
    mcf->link_ttl = NGX_CONF_UNSET;
    mcf->link_negative_ttl = NGX_CONF_UNSET;
    mcf->link_stale = NGX_CONF_UNSET;
    mcf->link_negative_share = NGX_CONF_UNSET_UINT;
    mcf->flush_interval = NGX_CONF_UNSET_MSEC;
    mcf->flush_batch = NGX_CONF_UNSET_SIZE;
    mcf->flush_lease = NGX_CONF_UNSET_MSEC;
    mcf->spool_max = NGX_CONF_UNSET;
    mcf->sync_interval = NGX_CONF_UNSET_MSEC;
    mcf->sync_leases = NGX_CONF_UNSET;
    mcf->sync_max_attempts = NGX_CONF_UNSET;
    mcf->sync_concurrency = NGX_CONF_UNSET;
    mcf->sync_rate = NGX_CONF_UNSET;
    mcf->outbound_host_connections = NGX_CONF_UNSET;

    return mcf;
}


/*
 * The zones' parameters are the directives' own, and the zones' init
 * handlers read them: they are set before the first location merges.
 */
static char *
ngx_http_crm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_crm_main_conf_t *mcf = conf;

    ngx_uint_t  i;

    struct {
        const char  *name;
        ngx_int_t    value, min, max;
        const char  *unit;
    }  limits[6];

    ngx_conf_init_value(mcf->link_ttl, 60);
    ngx_conf_init_value(mcf->link_negative_ttl, 60);
    ngx_conf_init_value(mcf->link_stale, 600);
    ngx_conf_init_uint_value(mcf->link_negative_share, 25);
    ngx_conf_init_msec_value(mcf->flush_interval, 100);
    ngx_conf_init_size_value(mcf->flush_batch, 1024 * 1024);
    ngx_conf_init_msec_value(mcf->flush_lease, 10000);
    ngx_conf_init_value(mcf->spool_max, (off_t) 1024 * 1024 * 1024);
    ngx_conf_init_msec_value(mcf->sync_interval, 1000);
    ngx_conf_init_value(mcf->sync_leases, 16);
    ngx_conf_init_value(mcf->sync_max_attempts, 12);
    ngx_conf_init_value(mcf->sync_concurrency, 4);
    ngx_conf_init_value(mcf->outbound_host_connections, 128);

    limits[0].name = "crm_sync_interval";
    limits[0].value = (ngx_int_t) mcf->sync_interval;
    limits[0].min = 1;
    limits[0].unit = "ms";
    limits[0].max = 3600000;
    limits[1].name = "crm_sync_leases";
    limits[1].value = mcf->sync_leases;
    limits[1].min = 0;
    limits[1].unit = "";
    limits[1].max = 1024;
    limits[2].name = "crm_sync_max_attempts";
    limits[2].value = mcf->sync_max_attempts;
    limits[2].min = 1;
    limits[2].unit = "";
    limits[2].max = 1000;
    limits[3].name = "crm_sync_concurrency";
    limits[3].value = mcf->sync_concurrency;
    limits[3].min = 1;
    limits[3].unit = "";
    limits[3].max = 1024;
    limits[4].name = "crm_sync_rate";
    limits[4].value = mcf->sync_rate != NGX_CONF_UNSET ? mcf->sync_rate : 1;
    limits[4].min = 1;
    limits[4].unit = "";
    limits[4].max = 100000;
    limits[5].name = "crm_outbound_host_connections";
    limits[5].value = mcf->outbound_host_connections;
    limits[5].min = 1;
    limits[5].unit = "";
    limits[5].max = 4096;

    /* crm_sync_leases 0 turns the sync off on this host */
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (limits[i].value < limits[i].min
            || limits[i].value > limits[i].max)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\" must be %i to %i%s",
                               limits[i].name, limits[i].min, limits[i].max,
                               limits[i].unit);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The click flush and the probes belong to no location: they use the http
 * level's database, and the edge's pool (crm_edge_thread_pool, else the
 * http level's crm_thread_pool).
 */
static ngx_int_t
ngx_http_crm_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_crm_loc_conf_t    *lcf;
    ngx_http_crm_main_conf_t   *mcf;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_crm_error_filter_init(cf) != NGX_OK
        || ngx_http_crm_cors_filter_init(cf) != NGX_OK
        || ngx_http_crm_reply_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_crm_module);

    if (!mcf->used && mcf->click_zone == NULL) {
        return NGX_OK;
    }

    if (ngx_http_crm_state_add(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_crm_metrics_log;

    if (crm_api_nroutes > NGX_HTTP_CRM_ROUTES_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "crm: %uz routes, /metrics counts %d",
                           crm_api_nroutes, NGX_HTTP_CRM_ROUTES_MAX);
        return NGX_ERROR;
    }

    lcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_crm_module);

    mcf->edge_pool = ngx_thread_pool_add(cf,
                                         mcf->edge_pool_name.len
                                         ? &mcf->edge_pool_name
                                         : lcf->thread_pool_name.len
                                         ? &lcf->thread_pool_name
                                         : &ngx_http_crm_default_pool);
    if (mcf->edge_pool == NULL) {
        return NGX_ERROR;
    }

    /* the sync's claims and records: its own pool, or its location's */
    if (mcf->sync_pool_name.len) {
        mcf->sync_pool = ngx_thread_pool_add(cf, &mcf->sync_pool_name);
        if (mcf->sync_pool == NULL) {
            return NGX_ERROR;
        }
    }

    if (mcf->click_zone == NULL) {
        return NGX_OK;
    }

    if (lcf->database.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_click_queue\" requires \"crm_database\" "
                           "at the http level");
        return NGX_ERROR;
    }

    /* the http level's own values: no merge gives them their defaults */
    mcf->click_db = ngx_http_crm_db(cf, mcf, &lcf->database,
                                    lcf->connect_timeout
                                    == NGX_CONF_UNSET_MSEC
                                    ? NGX_HTTP_CRM_CONNECT_TIMEOUT
                                    : lcf->connect_timeout,
                                    lcf->statement_timeout
                                    == NGX_CONF_UNSET_MSEC
                                    ? NGX_HTTP_CRM_STATEMENT_TIMEOUT
                                    : lcf->statement_timeout, NULL);

    return mcf->click_db != NULL ? NGX_OK : NGX_ERROR;
}


static void *
ngx_http_crm_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_crm_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_crm_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->database = { 0, NULL };
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->slow_pool_name = { 0, NULL };
     *     conf->jwt_secret = { 0, NULL };
     *     conf->jwt_issuer = { 0, NULL };
     *     conf->callback_secret = { 0, NULL };
     *     conf->public_url = { 0, NULL };
     *     conf->currency = { 0, NULL };
     *     conf->idp_project_id = { 0, NULL };
     *     conf->idp_issuer = { 0, NULL };
     *     conf->klaviyo_url = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->slow_pool = NULL;
     *     conf->db = NULL;
     *     conf->service = NULL;
     */

    conf->connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->statement_timeout = NGX_CONF_UNSET_MSEC;
    conf->replica_max_lag = NGX_CONF_UNSET_MSEC;
    conf->queue_timeout = NGX_CONF_UNSET_MSEC;
    conf->jwt_ttl = NGX_CONF_UNSET;
    conf->max_body_size = NGX_CONF_UNSET_SIZE;
    conf->max_json_depth = NGX_CONF_UNSET_UINT;
    conf->pipeline = NGX_CONF_UNSET_PTR;
    conf->install_cents = NGX_CONF_UNSET;
    conf->conversion_bps = NGX_CONF_UNSET;
    conf->target_hosts = NGX_CONF_UNSET_PTR;
    conf->webhook_sources = NGX_CONF_UNSET_PTR;
    conf->link_limit = NGX_CONF_UNSET;
    conf->link_period = NGX_CONF_UNSET;
    conf->idp_keys = NGX_CONF_UNSET_PTR;
    conf->seal = NGX_CONF_UNSET_PTR;
    conf->outbound_allow = NGX_CONF_UNSET_PTR;
    conf->outbound_connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->outbound_timeout = NGX_CONF_UNSET_MSEC;
    conf->api = NGX_CONF_UNSET;
    conf->redirect = NGX_CONF_UNSET;
    ngx_http_crm_cors_create(&conf->cors);

    return conf;
}


/*
 * Every value of a level comes from its own directive or from the level
 * above, here and nowhere else; the services' view is then built from the
 * merged values alone (ngx_http_crm_build_service), so a new directive
 * needs one line here and one there, and no list to keep elsewhere.
 */
static char *
ngx_http_crm_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_crm_loc_conf_t *prev = parent;
    ngx_http_crm_loc_conf_t *conf = child;

    char                      *rv;
    ngx_http_crm_main_conf_t  *mcf;
    ngx_http_core_loc_conf_t  *clcf;

    /*
     * the replica and its lag bound go together, and with the database
     * they replicate: a level that names a database of its own does not
     * take its parent's replica
     */
    if (conf->replica.data == NULL && conf->database.data == NULL) {
        conf->replica = prev->replica;
        conf->replica_max_lag = prev->replica_max_lag;
    }

    ngx_conf_merge_str_value(conf->database, prev->database, "");
    ngx_conf_merge_msec_value(conf->connect_timeout, prev->connect_timeout,
                              NGX_HTTP_CRM_CONNECT_TIMEOUT);
    ngx_conf_merge_msec_value(conf->statement_timeout,
                              prev->statement_timeout,
                              NGX_HTTP_CRM_STATEMENT_TIMEOUT);
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "crm");
    ngx_conf_merge_str_value(conf->slow_pool_name, prev->slow_pool_name, "");
    ngx_conf_merge_msec_value(conf->queue_timeout, prev->queue_timeout,
                              2000);
    ngx_conf_merge_str_value(conf->jwt_secret, prev->jwt_secret, "");
    ngx_conf_merge_sec_value(conf->jwt_ttl, prev->jwt_ttl, 3600);
    ngx_conf_merge_str_value(conf->jwt_issuer, prev->jwt_issuer,
                             "crm-gateway");
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              64 * 1024);
    ngx_conf_merge_uint_value(conf->max_json_depth, prev->max_json_depth,
                              32);
    ngx_conf_merge_ptr_value(conf->pipeline, prev->pipeline, NULL);
    ngx_conf_merge_str_value(conf->callback_secret, prev->callback_secret,
                             "");
    ngx_conf_merge_str_value(conf->public_url, prev->public_url, "");
    ngx_conf_merge_value(conf->install_cents, prev->install_cents, 0);
    ngx_conf_merge_value(conf->conversion_bps, prev->conversion_bps, 0);
    ngx_conf_merge_str_value(conf->currency, prev->currency, "USD");
    ngx_conf_merge_ptr_value(conf->target_hosts, prev->target_hosts, NULL);
    ngx_conf_merge_ptr_value(conf->webhook_sources, prev->webhook_sources,
                             NULL);

    if (ngx_http_crm_cors_merge(cf, &prev->cors, &conf->cors)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_value(conf->link_limit, prev->link_limit, 1000);
    ngx_conf_merge_sec_value(conf->link_period, prev->link_period, 3600);
    ngx_conf_merge_str_value(conf->idp_project_id, prev->idp_project_id, "");
    ngx_conf_merge_str_value(conf->idp_issuer, prev->idp_issuer, "");
    ngx_conf_merge_ptr_value(conf->idp_keys, prev->idp_keys, NULL);
    ngx_conf_merge_ptr_value(conf->seal, prev->seal, NULL);
    ngx_conf_merge_ptr_value(conf->outbound_allow, prev->outbound_allow,
                             NULL);
    ngx_conf_merge_msec_value(conf->outbound_connect_timeout,
                              prev->outbound_connect_timeout, 5000);
    ngx_conf_merge_msec_value(conf->outbound_timeout, prev->outbound_timeout,
                              15000);
    ngx_conf_merge_str_value(conf->klaviyo_url, prev->klaviyo_url,
                             "https://a.klaviyo.com");

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_crm_module);

    /*
     * crm_api belongs to its own location, except in the unnamed ones that
     * "if" and "limit_except" create inside it: requests there are still
     * the API's, and nginx keeps running its handler for "if"
     */
    if (conf->api == NGX_CONF_UNSET) {
        conf->api = clcf->noname ? prev->api : 0;
    }

    if (conf->api && clcf->lmt_excpt && clcf->handler == NULL) {
        clcf->handler = ngx_http_crm_api_handler;
    }

    if (conf->redirect == NGX_CONF_UNSET) {
        conf->redirect = 0;
    }

    rv = ngx_http_crm_check_loc_conf(cf, mcf, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (conf->database.len) {
        conf->db = ngx_http_crm_db(cf, mcf, &conf->database,
                                   conf->connect_timeout,
                                   conf->statement_timeout, NULL);
        if (conf->db == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->replica.len && conf->db != NULL) {
        conf->replica_db = ngx_http_crm_db(cf, mcf, &conf->replica,
                                           conf->connect_timeout,
                                           conf->statement_timeout,
                                           conf->db);
        if (conf->replica_db == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->redirect) {
        if (mcf->link_zone == NULL || mcf->click_zone == NULL
            || conf->database.len == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"crm_redirect\" requires \"crm_link_cache\""
                               ", \"crm_click_queue\" and \"crm_database\"");
            return NGX_CONF_ERROR;
        }
    }

    if (conf->api && mcf->sync_lcf == NULL) {
        mcf->sync_lcf = conf;
    }

    if (conf->api) {
        if (conf->database.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"crm_api\" requires \"crm_database\"");
            return NGX_CONF_ERROR;
        }

        if (conf->jwt_secret.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"crm_api\" requires \"crm_jwt_secret_file\"");
            return NGX_CONF_ERROR;
        }

        if (conf->pipeline == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"crm_api\" requires \"crm_pipeline\"");
            return NGX_CONF_ERROR;
        }

        if (conf->seal == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"crm_api\" requires "
                               "\"crm_credentials_key_file\"");
            return NGX_CONF_ERROR;
        }

        conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->slow_pool = conf->thread_pool;

        if (conf->slow_pool_name.len) {
            conf->slow_pool = ngx_thread_pool_add(cf, &conf->slow_pool_name);
            if (conf->slow_pool == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        /*
         * nginx itself refuses bodies over the limit, a declared length
         * before reading and a chunked one while reading, so neither is
         * ever stored; the error filter makes its answer a problem
         * document.  This overrides "client_max_body_size" here: the
         * core's merge has already run for this location.
         */
        clcf->client_max_body_size = conf->max_body_size;

        /*
         * and every body that may pass stays in memory: never a temporary
         * file, written and read back on the event loop
         */
        if (clcf->client_body_buffer_size < conf->max_body_size) {
            clcf->client_body_buffer_size = conf->max_body_size;
        }
    }

    if ((conf->api || conf->redirect) && mcf->link_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"crm_link_id_secret_file\" at "
                           "the http level",
                           conf->api ? "crm_api" : "crm_redirect");
        return NGX_CONF_ERROR;
    }

    return ngx_http_crm_build_service(cf, mcf, conf);
}


/* the merged values' bounds, named as the operator wrote them */
static char *
ngx_http_crm_check_loc_conf(ngx_conf_t *cf, ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_loc_conf_t *conf)
{
    if (conf->connect_timeout < 2000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_db_connect_timeout\" must be at least 2s, "
                           "the least libpq honours");
        return NGX_CONF_ERROR;
    }

    if (conf->statement_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_db_statement_timeout\" must not be 0: "
                           "a stuck query would block worker shutdown");
        return NGX_CONF_ERROR;
    }

    if (conf->jwt_ttl < 60 || conf->jwt_ttl > 7 * 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_jwt_ttl\" must be between 1m and 7d");
        return NGX_CONF_ERROR;
    }

    if (conf->jwt_issuer.len >= sizeof(((crm_jwt_claims_t *) 0)->iss)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_jwt_issuer\" must be shorter than %uz "
                           "bytes", sizeof(((crm_jwt_claims_t *) 0)->iss));
        return NGX_CONF_ERROR;
    }

    if (conf->max_json_depth < 1 || conf->max_json_depth > 256) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_max_json_depth\" must be between 1 and 256");
        return NGX_CONF_ERROR;
    }

    if (conf->max_body_size < 1024 || conf->max_body_size > 16 * 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_max_body_size\" must be between 1k and 16m");
        return NGX_CONF_ERROR;
    }

    if (conf->install_cents < 0 || conf->install_cents > 100000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_default_install_cents\" must be between "
                           "0 and 100000000");
        return NGX_CONF_ERROR;
    }

    if (conf->conversion_bps < 0 || conf->conversion_bps > 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_default_conversion_bps\" must be between "
                           "0 and 10000");
        return NGX_CONF_ERROR;
    }

    if (conf->currency.len != CRM_CURRENCY_LEN
        || !ngx_http_crm_upper_alpha(&conf->currency))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_currency\" must be an ISO 4217 code such "
                           "as USD");
        return NGX_CONF_ERROR;
    }

    /* both end up in a claim buffer, with Firebase's issuer prefix */
    if (conf->idp_project_id.len > 64
        || !ngx_http_crm_token_text(&conf->idp_project_id))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_idp_project_id\" must be at most 64 "
                           "printable characters without spaces");
        return NGX_CONF_ERROR;
    }

    if (conf->idp_issuer.len >= sizeof(((crm_jwt_claims_t *) 0)->iss)
        || !ngx_http_crm_token_text(&conf->idp_issuer))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_idp_issuer\" must be shorter than %uz "
                           "printable characters without spaces",
                           sizeof(((crm_jwt_claims_t *) 0)->iss));
        return NGX_CONF_ERROR;
    }

    /* a project needs keys: from a file here, or a URL for all */
    if ((conf->idp_keys != NULL && conf->idp_project_id.len == 0)
        || (conf->idp_project_id.len != 0 && conf->idp_keys == NULL
            && mcf->idp_keys_url.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_idp_project_id\" needs \"crm_idp_keys_file\" "
                           "or \"crm_idp_keys_url\", and the keys file "
                           "needs the project");
        return NGX_CONF_ERROR;
    }

    if (conf->outbound_connect_timeout < 100
        || conf->outbound_connect_timeout > 60000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_outbound_connect_timeout\" must be "
                           "between 100ms and 60s");
        return NGX_CONF_ERROR;
    }

    if (conf->outbound_timeout < conf->outbound_connect_timeout
        || conf->outbound_timeout > 300000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_outbound_timeout\" must be at least "
                           "\"crm_outbound_connect_timeout\" and at most 5m");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a value that is compared with a token's claim: visible ASCII only */
static ngx_uint_t
ngx_http_crm_token_text(ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= ' ' || s->data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_crm_upper_alpha(ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < 'A' || s->data[i] > 'Z') {
            return 0;
        }
    }

    return 1;
}


/*
 * The registry's entry for a database: one per distinct conninfo and
 * timeouts (and, for a replica, primary), whatever the number of server
 * and location blocks naming it, so that each pool thread keeps one
 * connection per database.
 */
static crm_db_conf_t *
ngx_http_crm_db(ngx_conf_t *cf, ngx_http_crm_main_conf_t *mcf,
    ngx_str_t *conninfo, ngx_msec_t connect_timeout,
    ngx_msec_t statement_timeout, crm_db_conf_t *primary)
{
    ngx_uint_t        i;
    crm_error_t       err;
    crm_db_conf_t    *db, **dbs, **slot;

    dbs = mcf->databases.elts;

    for (i = 0; i < mcf->databases.nelts; i++) {
        db = dbs[i];

        if (ngx_strlen(db->conninfo) == conninfo->len
            && ngx_strncmp(db->conninfo, conninfo->data, conninfo->len) == 0
            && db->connect_timeout == connect_timeout / 1000
            && db->statement_timeout == statement_timeout
            && db->primary == primary)
        {
            return db;
        }
    }

    db = ngx_pcalloc(cf->pool, sizeof(crm_db_conf_t));
    slot = ngx_array_push(&mcf->databases);

    if (db == NULL || slot == NULL) {
        return NULL;
    }

    db->conninfo = ngx_http_crm_cstr(cf, conninfo);
    db->connect_timeout = connect_timeout / 1000;
    db->statement_timeout = statement_timeout;
    db->primary = primary;
    db->health = ngx_pcalloc(cf->pool, sizeof(crm_db_health_t));

    if (db->conninfo == NULL || db->health == NULL) {
        return NULL;
    }

    db->health->up = -1;
    db->health->lag_ms = -1;

    ngx_memzero(&err, sizeof(crm_error_t));

    if (crm_db_conf_init(db, &err) != CRM_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%s\": %s",
                           primary ? "crm_database_replica" : "crm_database",
                           err.message);
        return NULL;
    }

    *slot = db;

    return db;
}


/* the services' view of a location's merged configuration */
static char *
ngx_http_crm_build_service(ngx_conf_t *cf, ngx_http_crm_main_conf_t *mcf,
    ngx_http_crm_loc_conf_t *conf)
{
    ngx_str_t            issuer;
    crm_service_conf_t  *svc;

    svc = ngx_pcalloc(cf->pool, sizeof(crm_service_conf_t));
    if (svc == NULL) {
        return NGX_CONF_ERROR;
    }

    svc->db = conf->db;
    svc->replica = conf->replica_db;
    svc->replica_max_lag_ms = conf->replica_max_lag;
    svc->jwt_key = conf->jwt_secret.data;
    svc->jwt_key_len = conf->jwt_secret.len;
    svc->jwt_ttl = conf->jwt_ttl;
    svc->jwt_issuer = ngx_http_crm_cstr(cf, &conf->jwt_issuer);
    svc->json.max_body = conf->max_body_size;
    svc->json.max_depth = conf->max_json_depth;
    svc->argon2 = crm_argon2_owasp;
    svc->pipeline = conf->pipeline;

    if (conf->callback_secret.len) {
        svc->callback_key = conf->callback_secret.data;
        svc->callback_key_len = conf->callback_secret.len;
    }

    if (conf->webhook_sources != NULL) {
        svc->webhook_sources = conf->webhook_sources->elts;
        svc->nwebhook_sources = conf->webhook_sources->nelts;
    }

    svc->public_url = ngx_http_crm_cstr(cf, &conf->public_url);
    svc->install_cents = conf->install_cents;
    svc->conversion_bps = conf->conversion_bps;
    svc->currency = ngx_http_crm_cstr(cf, &conf->currency);
    svc->link_key.data = mcf->link_secret.data;
    svc->link_key.len = mcf->link_secret.len;
    svc->target_hosts = conf->target_hosts;
    svc->link_limit = conf->link_limit;
    svc->link_period = conf->link_period;
    svc->idp_keys = conf->idp_keys;

    if (mcf->idp_keys_url.len) {
        svc->idp_url_keys = (const crm_jwk_set_t *const *)
                            &ngx_http_crm_idp_url_keys;
    }
    svc->seal = conf->seal;
    svc->providers.allow = conf->outbound_allow;
    svc->providers.klaviyo_url = ngx_http_crm_cstr(cf, &conf->klaviyo_url);
    svc->idp_audience = ngx_http_crm_cstr(cf, &conf->idp_project_id);

    /* Firebase's issuer for the project, unless another is named */
    issuer = conf->idp_issuer;

    if (issuer.len == 0 && conf->idp_project_id.len) {
        issuer.len = sizeof(NGX_HTTP_CRM_FIREBASE_ISSUER) - 1
                     + conf->idp_project_id.len;
        issuer.data = ngx_pnalloc(cf->pool, issuer.len);
        if (issuer.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(issuer.data, NGX_HTTP_CRM_FIREBASE_ISSUER "%V",
                    &conf->idp_project_id);
    }

    svc->idp_issuer = ngx_http_crm_cstr(cf, &issuer);

    if (svc->jwt_issuer == NULL || svc->public_url == NULL
        || svc->currency == NULL || svc->idp_audience == NULL
        || svc->idp_issuer == NULL || svc->providers.klaviyo_url == NULL)
    {
        return NGX_CONF_ERROR;
    }

    conf->service = svc;

    return NGX_CONF_OK;
}


static const char *
ngx_http_crm_cstr(ngx_conf_t *cf, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(cf->pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return (const char *) p;
}


static char *
ngx_http_crm_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_crm_main_conf_t  *mcf;

    if (lcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_crm_api_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_crm_module);
    mcf->used = 1;

    return NGX_CONF_OK;
}


/* crm_redirect and crm_metrics: the location's content handler */
static char *
ngx_http_crm_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_crm_main_conf_t  *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }

    clcf->handler = (ngx_http_handler_pt) cmd->post;

    if (clcf->handler == ngx_http_crm_redirect_handler) {
        lcf->redirect = 1;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_crm_module);
    mcf->used = 1;

    return NGX_CONF_OK;
}


/*
 * A secret (the JWT key, the callback key, the link ids' key) is read when
 * nginx reads its configuration, so a reload picks up a rotated file and a
 * missing or short one fails "nginx -t".  One trailing newline, as
 * "openssl rand -hex 32 > file" writes, is not part of the key.
 */
static char *
ngx_http_crm_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *secret = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    ngx_str_t  *value, name;

    if (secret->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_http_crm_read_file(cf, cmd, &name, 4096, secret)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (secret->len > 0 && secret->data[secret->len - 1] == '\n') {
        secret->len--;
    }

    if (secret->len < NGX_HTTP_CRM_SECRET_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" file \"%V\" holds %uz bytes, "
                           "at least %d are required", &cmd->name, &name,
                           secret->len, NGX_HTTP_CRM_SECRET_MIN);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * "crm_webhook_source name scheme secret_file": a sender of signed
 * webhooks (crm_sig.h), its secrets read now like the others'.  A level
 * that names sources replaces its parent's list.
 */
static char *
ngx_http_crm_webhook_source(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t **sources = (ngx_array_t **) ((u_char *) conf + cmd->offset);

    ngx_str_t             *value, file, text;
    ngx_uint_t             i;
    crm_error_t            err;
    crm_webhook_source_t  *src, *all;

    value = cf->args->elts;

    if (*sources == NGX_CONF_UNSET_PTR) {
        *sources = ngx_array_create(cf->pool, 2,
                                    sizeof(crm_webhook_source_t));
        if (*sources == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    all = (*sources)->elts;

    for (i = 0; i < (*sources)->nelts; i++) {
        if (value[1].len == ngx_strlen(all[i].name)
            && ngx_strncmp(value[1].data, all[i].name, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate webhook source \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    file = value[3];

    if (ngx_http_crm_read_file(cf, cmd, &file, 4096, &text) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    src = ngx_array_push(*sources);
    if (src == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&err, sizeof(crm_error_t));

    if (crm_webhook_source_init(src,
            (crm_str_t) { (const char *) value[1].data, value[1].len },
            (crm_str_t) { (const char *) value[2].data, value[2].len },
            (crm_str_t) { (const char *) text.data, text.len }, &err)
        != CRM_OK)
    {
        ngx_explicit_memzero(text.data, text.len);
        ngx_explicit_memzero(src, sizeof(crm_webhook_source_t));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" \"%V\" (file \"%V\"): %s",
                           &cmd->name, &value[1], &file, err.message);
        return NGX_CONF_ERROR;
    }

    ngx_explicit_memzero(text.data, text.len);

    return ngx_http_crm_webhook_name(cf, &value[1]);
}


/* the names /metrics counts deliveries by: every source of any level
   (the state zone numbers them, ngx_http_crm_webhook_index()) */
static char *
ngx_http_crm_webhook_name(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                 *names;
    ngx_uint_t                 i;
    ngx_http_crm_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_crm_module);
    names = mcf->webhook_names.elts;

    for (i = 0; i < mcf->webhook_names.nelts; i++) {
        if (names[i].len == name->len
            && ngx_strncmp(names[i].data, name->data, name->len) == 0)
        {
            return NGX_CONF_OK;
        }
    }

    names = ngx_array_push(&mcf->webhook_names);
    if (names == NULL) {
        return NGX_CONF_ERROR;
    }

    *names = *name;

    return NGX_CONF_OK;
}


/*
 * An identity provider's public keys (crm_jwk.h), read with the rest of
 * the configuration: a reload applies a new file, and a key dropped from
 * it stops working with the old cycle, since nothing else keeps keys
 */
static char *
ngx_http_crm_idp_keys_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    crm_jwk_set_t  **keys = (crm_jwk_set_t **) ((u_char *) conf
                                                + cmd->offset);

    ngx_str_t           *value, name, doc;
    crm_error_t          err;
    ngx_pool_cleanup_t  *cln;

    if (*keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_http_crm_read_file(cf, cmd, &name, CRM_JWK_MAX_DOCUMENT, &doc)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&err, sizeof(crm_error_t));

    if (crm_jwk_set_parse((const char *) doc.data, doc.len, keys, &err)
        != CRM_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" file \"%V\": %s", &cmd->name,
                           &name, err.message);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_crm_jwk_cleanup;
    cln->data = *keys;

    return NGX_CONF_OK;
}


static void
ngx_http_crm_jwk_cleanup(void *data)
{
    crm_jwk_set_free(data);
}


/*
 * crm_database_replica conninfo [max_lag=time]: a streaming replica for
 * the reads that may lag the primary (crm_endpoint_t.replica), used while
 * its last probe found it answering and at most max_lag behind.
 */
static char *
ngx_http_crm_replica(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_loc_conf_t *lcf = conf;

    ngx_int_t   lag;
    ngx_str_t  *value, s;

    if (lcf->replica.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "needs a connection string";
    }

    lcf->replica = value[1];
    lcf->replica_max_lag = NGX_HTTP_CRM_REPLICA_MAX_LAG;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= sizeof("max_lag=") - 1
        || ngx_strncmp(value[2].data, "max_lag=", sizeof("max_lag=") - 1)
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" parameter \"%V\"", &cmd->name,
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    s.data = value[2].data + sizeof("max_lag=") - 1;
    s.len = value[2].len - (sizeof("max_lag=") - 1);

    lag = ngx_parse_time(&s, 0);
    if (lag == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" parameter \"%V\"", &cmd->name,
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    lcf->replica_max_lag = (ngx_msec_t) lag;

    return NGX_CONF_OK;
}


/*
 * A whole file of at most max bytes into the configuration's pool; name
 * is made absolute.  Errors name the directive and the file.
 */
static char *
ngx_http_crm_read_file(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *name,
    size_t max, ngx_str_t *out)
{
    char             *rv;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open \"%V\" \"%V\"", &cmd->name, name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *name;
    file.log = cf->log;

    rv = NGX_CONF_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", name);
        goto done;
    }

    if ((size_t) ngx_file_size(&fi) > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" file \"%V\" is larger than %uzk",
                           &cmd->name, name, max / 1024);
        goto done;
    }

    out->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (out->data == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, out->data, ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto done;
    }

    out->len = n;
    rv = NGX_CONF_OK;

done:

    ngx_close_file(fd);

    return rv;
}


/*
 * The key that seals CRM credentials ("openssl rand -hex 32" in a file),
 * and optionally the one before it (previous=file), which still opens
 * what it sealed: rows move to the current key when next written.
 */
static char *
ngx_http_crm_credentials_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    crm_seal_keyring_t  **ring = (crm_seal_keyring_t **) ((u_char *) conf
                                                          + cmd->offset);

    ngx_str_t           *value, previous;
    ngx_pool_cleanup_t  *cln;

    if (*ring != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(crm_seal_keyring_t));
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    *ring = cln->data;
    ngx_memzero(*ring, sizeof(crm_seal_keyring_t));
    cln->handler = ngx_http_crm_seal_cleanup;

    if (ngx_http_crm_seal_key(cf, cmd, &value[1], &(*ring)->current)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "previous=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        previous.data = value[2].data + 9;
        previous.len = value[2].len - 9;

        if (ngx_http_crm_seal_key(cf, cmd, &previous, &(*ring)->previous)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        (*ring)->has_previous = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_crm_seal_key(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *name,
    crm_seal_key_t *key)
{
    ngx_str_t    text;
    crm_error_t  err;

    if (ngx_http_crm_read_file(cf, cmd, name, 4096, &text) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&err, sizeof(crm_error_t));

    if (crm_seal_key_parse((const char *) text.data, text.len, key, &err)
        != CRM_OK)
    {
        OPENSSL_cleanse(text.data, text.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" file \"%V\": %s", &cmd->name,
                           name, err.message);
        return NGX_CONF_ERROR;
    }

    OPENSSL_cleanse(text.data, text.len);

    return NGX_CONF_OK;
}


static void
ngx_http_crm_seal_cleanup(void *data)
{
    OPENSSL_cleanse(data, sizeof(crm_seal_keyring_t));
}


/*
 * Address ranges that outbound calls may reach although they are not
 * public, plain http included: local test servers.  "off" lets none
 * through again below a level that allowed some.
 */
static char *
ngx_http_crm_outbound_allow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    crm_cidr_list_t  **list = (crm_cidr_list_t **) ((u_char *) conf
                                                    + cmd->offset);

    ngx_str_t   *value;
    ngx_uint_t   i;
    const char  *why;

    if (*list != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        *list = NULL;
        return NGX_CONF_OK;
    }

    *list = ngx_pcalloc(cf->pool, sizeof(crm_cidr_list_t));
    if (*list == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        why = crm_cidr_list_add(*list, (crm_str_t) {
                                    (const char *) value[i].data,
                                    value[i].len });
        if (why != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid range \"%V\" of \"%V\": %s",
                               &value[i], &cmd->name, why);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A base URL: of tracking URLs ("https://go.example.com", or with a path
 * prefix) or of a provider's API; an absolute http(s) URL without a query
 * or fragment, its trailing slash dropped.
 */
static char *
ngx_http_crm_base_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *base = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    ngx_str_t   *value, url;
    const char  *why;

    if (base->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    while (url.len && url.data[url.len - 1] == '/') {
        url.len--;
    }

    why = crm_url_check_target((crm_str_t) { (const char *) url.data,
                                             url.len });
    if (why != NULL || ngx_strlchr(url.data, url.data + url.len, '?')
        || ngx_strlchr(url.data, url.data + url.len, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" \"%V\": %s", &cmd->name,
                           &value[1], why ? why : "must not have a query "
                                                  "or a fragment");
        return NGX_CONF_ERROR;
    }

    *base = url;

    return NGX_CONF_OK;
}


/*
 * The hosts link targets may name: exact names and "*.suffix" patterns,
 * lower case; "off" (alone) allows any host again below a level that
 * restricted them.
 */
static char *
ngx_http_crm_allow_hosts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    crm_host_list_t  **list = (crm_host_list_t **) ((u_char *) conf
                                                    + cmd->offset);

    ngx_str_t    *value;
    crm_str_t    *entries;
    ngx_uint_t    i;
    const char   *why;

    if (*list != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        *list = NULL;
        return NGX_CONF_OK;
    }

    *list = ngx_pcalloc(cf->pool, sizeof(crm_host_list_t));
    entries = ngx_pcalloc(cf->pool, (cf->args->nelts - 1) * sizeof(crm_str_t));

    if (*list == NULL || entries == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        why = crm_host_pattern_check((crm_str_t) {
                                         (const char *) value[i].data,
                                         value[i].len });
        if (why != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\" of \"%V\": %s",
                               &value[i], &cmd->name, why);
            return NGX_CONF_ERROR;
        }

        entries[i - 1].data = (const char *) value[i].data;
        entries[i - 1].len = value[i].len;
    }

    (*list)->entries = entries;
    (*list)->n = cf->args->nelts - 1;

    return NGX_CONF_OK;
}


/* crm_link_create_limit <links> <period>: per account */
static char *
ngx_http_crm_link_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_loc_conf_t *lcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;

    if (lcf->link_limit != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the links must be between 1 and 1000000",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    lcf->link_limit = n;

    n = ngx_parse_time(&value[2], 1);
    if (n == NGX_ERROR || n < 1 || n > 366 * 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the period must be between 1s and 366d",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    lcf->link_period = n;

    return NGX_CONF_OK;
}


/*
 * The pipeline is read and checked when nginx reads its configuration: an
 * invalid one fails "nginx -t" and the reload, naming the file and the
 * element, and the running workers keep theirs.  It lives as long as the
 * configuration; workers only read it.
 */
static char *
ngx_http_crm_pipeline(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    crm_pipeline_t  **pipeline = (crm_pipeline_t **) ((u_char *) conf
                                                      + cmd->offset);

    ngx_str_t           *value, dir;
    crm_error_t          err;
    ngx_pool_cleanup_t  *cln;

    if (*pipeline != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &dir, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&err, sizeof(crm_error_t));

    if (crm_pipeline_load((const char *) dir.data, pipeline, &err) != CRM_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"crm_pipeline\": %s", err.message);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_crm_pipeline_cleanup;
    cln->data = *pipeline;

    return NGX_CONF_OK;
}


static void
ngx_http_crm_pipeline_cleanup(void *data)
{
    crm_pipeline_free(data);
}
