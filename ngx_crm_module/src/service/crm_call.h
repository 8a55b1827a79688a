/*
 * One API call, from routing to the reply.
 *
 * The nginx glue creates a call per request and drives it through these
 * steps; everything a worker thread reads lives in the call's own arena,
 * never in an nginx pool:
 *
 *   event loop    crm_call_set_request()   method + path -> endpoint
 *                 crm_call_authenticate()  bearer token -> claims
 *                 crm_call_set_body()      media type, JSON limits
 *                 crm_call_prepare()       endpoint->parse: input struct
 *   thread pool   crm_call_execute()       caller account, endpoint->run
 *   event loop    crm_call_finish()        reply or problem+json
 *
 * Any step may fail; the glue then skips to crm_call_finish(), which turns
 * the recorded error into a problem document.
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
#include "crm_router.h"
#include "crm_store_accounts.h"


#define CRM_VERSION       "0.1.0"
#define CRM_JWT_AUDIENCE  "crm-api"
#define CRM_JWT_LEEWAY    30
#define CRM_REPLY_HEADERS 4


typedef struct crm_call_s  crm_call_t;


/* what the services need from the configuration; immutable while in use */
typedef struct {
    const crm_db_conf_t   *db;              /* shared by equal configs */
    const unsigned char   *jwt_key;
    size_t                 jwt_key_len;
    int64_t                jwt_ttl;         /* seconds */
    const char            *jwt_issuer;
    crm_json_limits_t      json;
    crm_argon2_params_t    argon2;
    const crm_pipeline_t  *pipeline;
    const unsigned char   *callback_key;    /* NULL: callbacks refused */
    size_t                 callback_key_len;
    const char            *public_url;      /* no trailing slash */
    int64_t                install_cents;   /* a new link's commission */
    int64_t                conversion_bps;
    const char            *currency;        /* commissions' currency */
} crm_service_conf_t;


typedef enum {
    CRM_AUTH_NONE = 0,
    CRM_AUTH_USER,
    CRM_AUTH_ADMIN,

    /* an X-CRM-Signature over the raw body, checked before it is parsed */
    CRM_AUTH_SIGNED
} crm_auth_e;


typedef enum {
    CRM_BODY_NONE = 0,
    CRM_BODY_JSON,
    CRM_BODY_JSON_OR_FORM
} crm_body_e;


typedef struct {
    crm_auth_e     auth;
    crm_body_e     body;

    /*
     * a hot read that checks the caller (exists, is active: CRM_AUTH_USER)
     * in its own statement, from call->claims.sub, saving a round trip:
     * crm_call_execute() then leaves call->caller NULL
     */
    unsigned       caller_in_query:1;

    /*
     * CPU-heavy (a password hash, tens of milliseconds): runs on the slow
     * pool when one is configured, so that quick calls never queue behind
     * it
     */
    unsigned       slow:1;

    /* event loop: validates the request into call->input; may be NULL */
    crm_status_e (*parse)(crm_call_t *call, crm_error_t *err);

    /* a pool thread: does the work and fills call->reply */
    crm_status_e (*run)(crm_db_t *db, crm_call_t *call, crm_error_t *err);
} crm_endpoint_t;


typedef struct {
    const char  *name;
    const char  *value;
} crm_header_t;


typedef struct {
    unsigned       status;
    const char    *content_type;    /* NULL when there is no body */
    char          *body;            /* malloc'd */
    size_t         len;
    crm_header_t   headers[CRM_REPLY_HEADERS];
    size_t         nheaders;
} crm_reply_t;


struct crm_call_s {
    crm_arena_t                arena;
    const crm_service_conf_t  *conf;
    const crm_endpoint_t      *endpoint;
    crm_route_match_t          match;       /* params point into the arena */
    unsigned                   allowed;     /* for 405 */
    crm_str_t                  query;
    crm_str_t                  if_match;    /* the raw header, or empty */
    crm_str_t                  signature;   /* X-CRM-Signature, or empty */
    crm_str_t                  idempotency_key;     /* or empty */
    int64_t                    now;         /* unix time of the request */
    crm_str_t                  body;        /* raw: form, or JSON */
    unsigned                   body_is_form:1;
    yajl_val                   json;
    const char                *ip;
    const char                *user_agent;
    crm_jwt_claims_t           claims;
    crm_account_t             *caller;      /* loaded by crm_call_execute */
    void                      *input;       /* endpoint->parse's output */

    /* set by a run that changed a link: the glue drops it from the cache */
    char                       link_changed[CRM_LINK_ID_LEN + 1];

    crm_reply_t                reply;
    crm_error_t                error;
    crm_status_e               rc;
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

/* the If-Match header's value, copied for the thread (empty: absent) */
crm_status_e crm_call_set_if_match(crm_call_t *call, crm_str_t value);

/*
 * The X-CRM-Signature and Idempotency-Key values, copied for the thread
 * (empty: absent).  Idempotency keys longer than 255 bytes or with bytes
 * outside printable ASCII are refused (CRM_E_INVALID).
 */
crm_status_e crm_call_set_signed_headers(crm_call_t *call,
    crm_str_t signature, crm_str_t idempotency_key);

/*
 * header is the Authorization value (empty when absent); now: unix time.
 * A CRM_AUTH_SIGNED endpoint's signature is checked by crm_call_set_body().
 */
crm_status_e crm_call_authenticate(crm_call_t *call, crm_str_t header,
    int64_t now);

/* content_type is the raw header value (empty when absent) */
crm_status_e crm_call_set_body(crm_call_t *call, crm_str_t content_type,
    crm_str_t body);

crm_status_e crm_call_prepare(crm_call_t *call);

/* runs on a pool thread with that thread's connection */
void crm_call_execute(crm_db_t *db, crm_call_t *call);

/*
 * Makes call->reply final: for a failed call, the problem document with
 * WWW-Authenticate (401), Allow (405) or Retry-After (503) as due.
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

crm_status_e crm_call_add_header(crm_call_t *call, const char *name,
    const char *value);

/*
 * The headers of a reply about one versioned object: ETag from version,
 * and, when path is not NULL (a creation), Location path + id.
 */
crm_status_e crm_call_add_object_headers(crm_call_t *call, int version,
    const char *path, const char *id, crm_error_t *err);

#endif /* CRM_CALL_H */
