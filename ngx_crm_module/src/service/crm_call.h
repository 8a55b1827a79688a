/*
 * One API call, from routing to the reply.
 *
 * The nginx glue creates a call per request and drives it through these
 * steps; everything a worker thread reads lives in the call's own arena,
 * never in an nginx pool:
 *
 *   event loop    crm_call_set_request()   method + path -> endpoint
 *                 crm_call_add_header()    every request header, copied
 *                 crm_call_authenticate()  the endpoint's verifier, unless
 *                                          it needs the body
 *                 crm_call_set_body()      a body verifier, media type,
 *                                          JSON limits
 *                 crm_call_prepare()       endpoint->parse: input struct,
 *                                          or the reply itself (from state
 *                                          the event loop keeps)
 *                 crm_call_outbound()      endpoint->outbound: provider
 *                                          requests, one at a time, that
 *                                          the glue performs
 *   thread pool   crm_call_execute()       caller account, endpoint->run
 *   event loop    crm_call_finish()        reply or problem+json
 *
 * Any step may fail; the glue then skips to crm_call_finish(), which turns
 * the recorded error into a problem document.  The token is checked before
 * the body is read, so an unauthenticated client never has its body
 * parsed.
 */

#ifndef CRM_CALL_H
#define CRM_CALL_H

#include <stdint.h>

#include "crm_arena.h"
#include "crm_db.h"
#include "crm_error.h"
#include "crm_ids.h"
#include "crm_json.h"
#include "crm_jwt.h"
#include "crm_page.h"
#include "crm_password.h"
#include "crm_pipeline.h"
#include "crm_provider.h"
#include "crm_router.h"
#include "crm_seal.h"
#include "crm_sig.h"
#include "crm_store_accounts.h"
#include "crm_url.h"


#define CRM_VERSION       "0.1.0"
#define CRM_JWT_AUDIENCE  "crm-api"
#define CRM_JWT_LEEWAY    30
#define CRM_IDP_LEEWAY    60


typedef struct crm_call_s      crm_call_t;
typedef struct crm_verifier_s  crm_verifier_t;


/* what the services need from the configuration; immutable while in use */
typedef struct {
    const crm_db_conf_t   *db;              /* one per distinct database */
    /* crm_database_replica's, or NULL; used while its last probe found
       it at most replica_max_lag_ms behind */
    const crm_db_conf_t   *replica;
    int64_t                replica_max_lag_ms;
    const unsigned char   *jwt_key;
    size_t                 jwt_key_len;
    int64_t                jwt_ttl;         /* seconds */
    const char            *jwt_issuer;
    crm_json_limits_t      json;
    crm_argon2_params_t    argon2;
    const crm_pipeline_t  *pipeline;
    const unsigned char   *callback_key;    /* NULL: callbacks refused */
    size_t                 callback_key_len;
    const crm_webhook_source_t *webhook_sources;
    size_t                 nwebhook_sources;
    const char            *public_url;      /* no trailing slash */
    int64_t                install_cents;   /* a new link's commission */
    int64_t                conversion_bps;
    const char            *currency;        /* commissions' currency */
    crm_link_key_t         link_key;        /* link ids' check characters */
    const crm_host_list_t *target_hosts;    /* NULL: any host */
    int64_t                link_limit;      /* links an account may make */
    int64_t                link_period;     /* ... in this many seconds */
    const crm_jwk_set_t   *idp_keys;        /* from the keys file, or NULL */
    /* the worker's keys from crm_idp_keys_url (NULL: no URL), which the
       event loop replaces as the URL's document changes */
    const crm_jwk_set_t *const *idp_url_keys;
    const char            *idp_issuer;      /* what iss must be */
    const char            *idp_audience;    /* ... and aud: the project */
    const crm_seal_keyring_t *seal;         /* CRM credentials' keys */
    crm_provider_conf_t    providers;
} crm_service_conf_t;


/* where a replica read was answered */
typedef enum {
    CRM_REPLICA_NONE = 0,           /* not a replica read, or no replica */
    CRM_REPLICA_ANSWERED,           /* by the replica */
    CRM_REPLICA_FALLBACK,           /* the replica failed: by the primary */
    CRM_REPLICA_BYPASSED            /* down or lagging: by the primary */
} crm_replica_use_e;


typedef enum {
    CRM_BODY_NONE = 0,
    CRM_BODY_JSON,
    CRM_BODY_JSON_OPTIONAL,         /* JSON, or no body at all */
    CRM_BODY_JSON_OR_FORM
} crm_body_e;


/*
 * How a caller proves who it is (crm_verify.h): a bearer token naming an
 * account, or a signature over the raw body from a configured sender.
 */
struct crm_verifier_s {
    const char    *scheme;          /* WWW-Authenticate of its 401s */

    /* checks the raw body: runs once it is read, before it is parsed */
    unsigned       body:1;

    /* names an account, which crm_call_execute() loads (is it active?) */
    unsigned       account:1;

    /*
     * a refusal is the endpoint's to record (a sign-in's login log): the
     * call goes on with call->refusal set and its body unparsed
     */
    unsigned       refusal_runs:1;

    /* the event loop: the request's headers (and body) -> call->claims */
    crm_status_e (*verify)(crm_call_t *call, crm_error_t *err);
};


typedef struct {
    const crm_verifier_t  *verifier;    /* NULL: anyone may call */
    crm_body_e             body;

    /* with an account verifier: only an administrator may call */
    unsigned       admin:1;

    /*
     * a hot read that checks the caller (exists, is active) in its own
     * statement, from call->claims.sub, saving a round trip:
     * crm_call_execute() then leaves call->caller NULL
     */
    unsigned       caller_in_query:1;

    /*
     * CPU-heavy (a password hash, tens of milliseconds): runs on the slow
     * pool when one is configured, so that quick calls never queue behind
     * it
     */
    unsigned       slow:1;

    /*
     * a read that may lag the primary by the replication delay (no
     * write; not with outbound): runs on the replica when one is usable,
     * its caller loaded from the primary; a failure there other than a
     * statement timeout, such as a row not replayed yet, asks the primary
     */
    unsigned       replica:1;

    /*
     * event loop: validates the request into call->input, or replies
     * itself (then no task runs); may be NULL
     */
    crm_status_e (*parse)(crm_call_t *call, crm_error_t *err);

    /*
     * event loop, after parse: the provider exchanges the call makes
     * before its run, one at a time: res is NULL at first, then the
     * answer to the request before; *req NULL when there are no more
     * (crm_call_outbound()); may be NULL
     */
    crm_status_e (*outbound)(crm_call_t *call, const crm_http_response_t *res,
        crm_http_request_t **req, crm_error_t *err);

    /* a pool thread: does the work and fills call->reply */
    crm_status_e (*run)(crm_db_t *db, crm_call_t *call, crm_error_t *err);
} crm_endpoint_t;


typedef struct crm_header_s  crm_header_t;

struct crm_header_s {
    crm_header_t  *next;
    crm_str_t      name;
    crm_str_t      value;
};


typedef struct {
    unsigned       status;
    const char    *content_type;    /* NULL when there is no body */
    char          *body;            /* malloc'd */
    size_t         len;
    crm_header_t  *headers;         /* in the arena, in the order added */
    crm_header_t  *last;
} crm_reply_t;


/* an object a call changed, for what the glue keeps of it (a cache) */
typedef enum {
    CRM_CHANGED_LINK = 1            /* id: an affiliate link id */
} crm_changed_e;

typedef struct crm_changed_s  crm_changed_t;

struct crm_changed_s {
    crm_changed_t  *next;
    crm_changed_e   kind;
    const char     *id;
};


struct crm_call_s {
    crm_arena_t                arena;
    const crm_service_conf_t  *conf;
    char                       request_id[33];  /* nginx's, or "" */
    const crm_endpoint_t      *endpoint;
    crm_str_t                  path;        /* as routed, in the arena */
    const crm_route_t         *route;       /* NULL: no route matched */
    crm_route_match_t          match;       /* params point into the arena */
    unsigned                   allowed;     /* for 405 */
    crm_str_t                  query;
    crm_header_t              *headers;     /* the request's, in the arena */
    int64_t                    now;         /* unix time of the request */
    crm_str_t                  body;        /* raw: form, or JSON */
    unsigned                   body_is_form:1;
    yajl_val                   json;
    const char                *ip;
    const char                *user_agent;
    crm_jwt_claims_t           claims;      /* the verifier's */
    /* claims.iss and claims.sub name an identity provider's user, whose
       account crm_call_execute() finds */
    unsigned                   idp:1;
    /* a token was presented and refused: 401 says error="invalid_token" */
    unsigned                   invalid_token:1;
    crm_error_t               *refusal;     /* see refusal_runs */
    /* the caller's account id: from the token, or found by identity */
    char                       account_id[CRM_UUID_LEN + 1];
    crm_account_t             *caller;      /* loaded by crm_call_execute */
    void                      *input;       /* endpoint->parse's output */
    /* what the run changed, or may have: dropping a cache entry that did
       not change costs a load, keeping one that did serves stale data */
    crm_changed_t             *changed;
    crm_reply_t                reply;
    /* what a successful call did, in a word, for logs and metrics: a
       callback's "created" or "duplicate", a webhook's receipt status */
    const char                *outcome;
    crm_error_t                error;
    crm_status_e               rc;
    /* the answer to the endpoint's outbound request in flight, and the
       glue's handle of that exchange (to cancel it) */
    crm_http_response_t        http;
    void                      *http_exchange;
    unsigned                   outbound_done:1;
    unsigned                   ran:1;       /* endpoint->run has run */
    crm_replica_use_e          replica;     /* for metrics */
    /* the replica failed for its connection: the glue marks it down */
    unsigned                   replica_lost:1;
};


/* the API's routes; each route's data is a crm_endpoint_t */
extern const crm_route_t  crm_api_routes[];
extern const size_t       crm_api_nroutes;


crm_call_t *crm_call_new(const crm_service_conf_t *conf);
void crm_call_free(crm_call_t *call);

/*
 * Copies the request line parts and client details into the call and
 * finds the endpoint (CRM_E_NOT_FOUND, or CRM_E_METHOD with call->allowed).
 * The user agent is truncated and reduced to printable ASCII so that it
 * can be logged and stored safely.
 */
crm_status_e crm_call_set_request(crm_call_t *call, unsigned method,
    crm_str_t path, crm_str_t query, crm_str_t ip, crm_str_t user_agent);

/* copies one request header for the endpoint and the thread */
crm_status_e crm_call_add_request_header(crm_call_t *call, crm_str_t name,
    crm_str_t value);

/* a request header by name, the last when repeated; empty when absent */
crm_str_t crm_call_header(const crm_call_t *call, const char *name);

/*
 * Runs the endpoint's verifier, unless it checks the body (then
 * crm_call_set_body() does).  now: unix time.
 */
crm_status_e crm_call_authenticate(crm_call_t *call, int64_t now);

/*
 * For a request no endpoint takes (404, 405): who its bearer token names,
 * if valid (call->account_id, call->claims), for the glue's per-account
 * limits and logs; the call's own failure stays.
 */
void crm_call_identify(crm_call_t *call, int64_t now);

/* content_type is the raw header value (empty when absent) */
crm_status_e crm_call_set_body(crm_call_t *call, crm_str_t content_type,
    crm_str_t body);

crm_status_e crm_call_prepare(crm_call_t *call);

/*
 * The endpoint's next outbound request after res (NULL at first): *req is
 * NULL when there is none (or the call failed, or replied)
 */
crm_status_e crm_call_outbound(crm_call_t *call,
    const crm_http_response_t *res, crm_http_request_t **req);

/*
 * whether the call must know its caller before anything else: an
 * endpoint that calls a provider checks the account (active, role) on the
 * pool first, so a deactivated account's token makes no outbound call
 */
int crm_call_needs_caller(const crm_call_t *call);

/* whether the prepared call still needs a pool thread: no reply yet */
int crm_call_needs_thread(const crm_call_t *call);

/*
 * The event loop, before the call goes to a pool thread: whether a read
 * that may lag should ask the replica first, from the process's last
 * probe of it (answering within the last 3 probes' time, at most
 * replica_max_lag_ms behind); a replica not used is counted as bypassed.
 */
int crm_call_use_replica(crm_call_t *call, int64_t now_ms);

/*
 * runs on a pool thread with that thread's connection: loads the caller
 * when the verifier names an account (only that, before the outbound
 * exchanges of an endpoint that has them), then the endpoint's run.  A
 * read crm_call_use_replica() sent to the replica is given the thread's
 * connection to it (else replica is NULL): it is asked of the replica
 * first, and any failure there asks db again from the start.
 */
void crm_call_execute(crm_db_t *db, crm_db_t *replica, crm_call_t *call);

/*
 * Makes call->reply final: for a failed call, the problem document with
 * WWW-Authenticate (401), Allow (405) or Retry-After (429, 503) as due.
 */
void crm_call_finish(crm_call_t *call);


/* records a failure of the call; returns code */
crm_status_e crm_call_fail(crm_call_t *call, crm_status_e code,
    const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


/* helpers for endpoints */

/* finishes g into call->reply with status and application/json */
crm_status_e crm_call_reply_json(crm_call_t *call, unsigned status,
    yajl_gen g, crm_error_t *err);

/*
 * Renders row i of a list into g and sets *at to the row's place in the
 * list (for the next page's cursor); 0 or -1.
 */
typedef int (*crm_call_item_pt)(crm_call_t *call, yajl_gen g,
    const void *rows, size_t i, crm_cursor_t *at);

/*
 * Replies 200 with {"items": [...], "next_cursor": ...} from nrows rows
 * read as limit + 1: a row beyond limit means a next page, whose cursor is
 * the place of the last row shown.
 */
crm_status_e crm_call_reply_page(crm_call_t *call, const void *rows,
    size_t nrows, unsigned limit, crm_call_item_pt item, crm_error_t *err);

/* a reply without a body, such as 204 */
crm_status_e crm_call_reply_empty(crm_call_t *call, unsigned status);

/* adds a reply header; name and value are copied into the call's arena */
crm_status_e crm_call_add_header(crm_call_t *call, const char *name,
    const char *value);

/*
 * The headers of a reply about one versioned object: ETag from version,
 * and, when path is not NULL (a creation), Location path + id.
 */
crm_status_e crm_call_add_object_headers(crm_call_t *call, int version,
    const char *path, const char *id, crm_error_t *err);

/* records that the run changed an object (id is copied) */
crm_status_e crm_call_changed(crm_call_t *call, crm_changed_e kind,
    const char *id, crm_error_t *err);

/*
 * An optional text parameter of the query string, a list's filter: *out
 * is NULL when absent, else 1..max printable characters (in the call's
 * arena); CRM_E_INVALID on name otherwise
 */
crm_status_e crm_call_query_text(crm_call_t *call, const char *name,
    size_t max, const char **out, crm_error_t *err);

/*
 * The versions the request's If-Match names, for a conditional change
 * (crm_if_match_versions()): *versions is NULL when it sets no condition
 */
crm_status_e crm_call_if_match(crm_call_t *call, const char **versions,
    crm_error_t *err);

#endif /* CRM_CALL_H */
