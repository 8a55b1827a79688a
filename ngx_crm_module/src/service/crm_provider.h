/*
 * A CRM provider: what the gateway knows of one external CRM's API.  Each
 * provider is one file (crm_provider_<name>.c) that fills a crm_provider_t;
 * the integrations service and the sync queue only go through this
 * interface, so a fourth provider is one new file and a line in
 * crm_providers[].
 *
 * Operations are step machines, so that no thread waits on a provider:
 * the caller asks for the first request (res NULL), performs it (the
 * event loop's outbound HTTP), and hands the response back for the next
 * request, until the operation says it is done.
 *
 *   parse           credentials and settings from the API -> op->creds
 *   validate        do the credentials work? -> op->account
 *   get_contact     the provider's contact of op->contact -> op->contact_id
 *                   (NULL: none)
 *   upsert_contact  creates or updates it with op->contact's fields
 *                   -> op->contact_id
 *   send_event      records op->event on the contact op->contact_id, once
 *                   per event id
 *
 * Providers with a session (Salesforce, Creatio) log in before the first
 * call of an operation that has none, and once more when the provider
 * says the session expired (a 401 after that is the provider failing:
 * its login took the credentials); the session stays in op->creds, so
 * the operations that follow on the same op reuse it.  What the write
 * operations' errors mean to the sync queue:
 *
 *   CRM_E_UNAUTHORIZED     the provider refuses the stored credentials
 *   CRM_E_INVALID          it refuses the data: retrying cannot help
 *   CRM_E_BAD_GATEWAY      it failed, or limits the rate (err->retry_after)
 *   CRM_E_GATEWAY_TIMEOUT  it did not answer in time
 */

#ifndef CRM_PROVIDER_H
#define CRM_PROVIDER_H

#include <yajl/yajl_tree.h>

#include "crm_addr.h"
#include "crm_arena.h"
#include "crm_error.h"
#include "crm_http.h"
#include "crm_json.h"


typedef struct crm_provider_s  crm_provider_t;


/* where the providers are, from the configuration */
typedef struct {
    const char             *klaviyo_url;    /* no trailing slash */
    const crm_cidr_list_t  *allow;          /* user URLs let through */
} crm_provider_conf_t;


/* one member of how a provider describes an account: a string or null */
typedef struct crm_provider_field_s  crm_provider_field_t;

struct crm_provider_field_s {
    crm_provider_field_t  *next;
    const char            *name;
    const char            *value;       /* NULL: null */
};


/* a lead as the providers' contacts carry it; NULL: the lead has none */
typedef struct {
    const char  *lead_id;           /* canonical UUID, the stable key */
    const char  *name;
    const char  *email;
    const char  *phone;             /* E.164 */
    const char  *company;
    const char  *shop_domain;
    const char  *source;            /* manual, affiliate, webhook, api */
    const char  *stage;
    const char  *substage;
    int64_t      score;
} crm_contact_t;


/* one lead event, the same event at the provider however often sent */
typedef struct {
    const char  *id;                /* canonical UUID */
    const char  *name;              /* "Lead Created": metric or subject */
    const char  *time;              /* RFC 3339, UTC */
    int64_t      value_cents;       /* a conversion's amount, or -1 */
    const char  *currency;          /* with value_cents */
    unsigned     resent:1;          /* an earlier attempt may have landed */
} crm_event_t;


typedef enum {
    CRM_OP_MORE = 0,        /* op->req is the next request */
    CRM_OP_DONE             /* the operation has its result */
} crm_op_step_e;


/* one operation with a provider, from its first request to its result */
typedef struct {
    const crm_provider_t       *provider;
    const crm_provider_conf_t  *conf;
    crm_arena_t                *arena;
    void                       *creds;      /* the provider's own */
    unsigned                    step;
    crm_http_request_t          req;
    /* the result of validate: how the provider describes the account */
    crm_provider_field_t       *account;
    crm_provider_field_t       *account_last;
    /* the write operations' input, and the contact they find or make */
    const crm_contact_t        *contact;
    const crm_event_t          *event;
    const char                 *contact_id;     /* known, or found */
    /* a session's log-in before, or in the middle of, an operation */
    unsigned                    session_step;
    unsigned                    relogged:1;
    crm_http_request_t          resend;
    /* the last answer, for the sync log */
    unsigned                    http_status;
    int64_t                     duration_ms;
} crm_provider_op_t;


/* an operation's next step: res is NULL first, then op->req's answer */
typedef crm_status_e (*crm_provider_step_pt)(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_op_step_e *step, crm_error_t *err);


struct crm_provider_s {
    const char  *type;              /* "klaviyo", as in the API */
    const char  *name;              /* "Klaviyo", in messages */
    unsigned     rate;              /* the sync's calls a second, by
                                       default: under the documented
                                       limits of one account */

    /*
     * Checks credentials and settings (objects, or NULL) and keeps them in
     * op->creds.  CRM_E_INVALID naming the field: a missing or unknown
     * one, a value that is not a string, too long, or not what the
     * provider accepts.
     */
    crm_status_e (*parse)(crm_provider_op_t *op, yajl_val credentials,
        yajl_val settings, crm_error_t *err);

    /*
     * Validates the credentials with the provider: res is NULL first,
     * then the answer to op->req.  CRM_E_INVALID (422) when the provider
     * refuses them, CRM_E_BAD_GATEWAY / CRM_E_GATEWAY_TIMEOUT when it
     * fails; *step CRM_OP_DONE with op->account set when they work.
     */
    crm_provider_step_pt  validate;

    /*
     * The write operations (see the top): op->contact, and op->event for
     * send_event, are set by the caller; op->contact_id may name the
     * contact an earlier operation found, which upsert_contact then
     * updates without looking for it.
     */
    crm_provider_step_pt  get_contact;
    crm_provider_step_pt  upsert_contact;
    crm_provider_step_pt  send_event;

    /*
     * A session (NULL for a provider without one): has op->creds one;
     * builds the log-in request; reads its answer (CRM_E_INVALID: the
     * credentials are refused); puts the session on op->req, replacing
     * what an older session put there.
     */
    int          (*has_session)(crm_provider_op_t *op);
    crm_status_e (*login)(crm_provider_op_t *op, crm_error_t *err);
    crm_status_e (*logged_in)(crm_provider_op_t *op,
        const crm_http_response_t *res, crm_error_t *err);
    crm_status_e (*authorize)(crm_provider_op_t *op, crm_error_t *err);

    /*
     * A session kept between operations on different ops (the sync's
     * leases), so that a provider is not asked to log in for each:
     * save returns it as a malloc'd string (NULL: none, or ENOMEM);
     * load gives it to an op whose credentials were just parsed (0, or
     * -1 when it cannot be read: the op logs in).
     */
    char        *(*session_save)(crm_provider_op_t *op);
    int          (*session_load)(crm_provider_op_t *op, const char *saved);
};


extern const crm_provider_t  *const crm_providers[];


/* once per process, before any provider reads an answer */
void crm_provider_init(void);

/* the provider of a type, or NULL */
const crm_provider_t *crm_provider_find(crm_str_t type);

/* starts op->req anew: method, url and no headers or body */
crm_status_e crm_provider_request(crm_provider_op_t *op, const char *method,
    const char *url, crm_error_t *err);

/*
 * What a provider's answer means when it is not one the operation reads:
 * not answered (refused address, unreachable, too large) or 5xx, 3xx and
 * garbage: CRM_E_BAD_GATEWAY; timed out: CRM_E_GATEWAY_TIMEOUT; 429:
 * CRM_E_BAD_GATEWAY with the provider's Retry-After.  The message names
 * the provider, never quotes its body.
 */
crm_status_e crm_provider_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, crm_error_t *err);

/*
 * Decodes the settings object (NULL: none given) with a provider's field
 * table; a field at fault is named "settings.<field>"
 */
crm_status_e crm_provider_settings(yajl_val settings,
    const crm_json_field_t *fields, size_t nfields, void *out,
    crm_error_t *err);

#define crm_provider_settings_table(settings, table, out, err)               \
    crm_provider_settings(settings, table,                                    \
                          sizeof(table) / sizeof((table)[0]), out, err)

/*
 * The answer's body as a JSON object, or NULL (garbage); the caller frees
 * it with yajl_tree_free()
 */
yajl_val crm_provider_json(const crm_http_response_t *res);

/*
 * The session's part of a write operation's step, before the operation's
 * own: logs in when op has no session yet (the operation then starts,
 * with res NULL), and once more when res says the session expired (the
 * same request is then sent again).  1 when it took the step (*rc and
 * *step are the step's result), 0 when the operation reads res itself.
 */
int crm_provider_session(crm_provider_op_t *op,
    const crm_http_response_t **res, crm_op_step_e *step, crm_status_e *rc,
    crm_error_t *err);

/*
 * A write operation's answer that is not one it reads: 401 and 403 are
 * refused credentials, 408, 425, 429 and 503 (with its Retry-After) and
 * 5xx a failure to retry, any other 4xx refused data (CRM_E_INVALID with
 * what the provider said, its message in at most 200 characters); else
 * as crm_provider_failed()
 */
crm_status_e crm_provider_write_failed(crm_provider_op_t *op,
    const crm_http_response_t *res, const char *said, crm_error_t *err);

/* op->req's body: the JSON document g made (freed), with content_type */
crm_status_e crm_provider_json_body(crm_provider_op_t *op, yajl_gen g,
    const char *content_type, crm_error_t *err);

/* s percent-encoded for a query string, in the arena; NULL on ENOMEM */
char *crm_provider_query_escape(crm_provider_op_t *op, const char *s);

/*
 * s cut to at most max characters (s is valid UTF-8, as every stored
 * text is), in the arena; s itself when short enough; NULL for NULL
 */
const char *crm_provider_clip(crm_provider_op_t *op, const char *s,
    size_t max);

/*
 * A name as first and last name: the first word, and the rest ("Ada
 * Lovelace King": "Ada", "Lovelace King"); one word is a last name only
 * (*first NULL).  In the arena; -1 on ENOMEM.
 */
int crm_provider_split_name(crm_provider_op_t *op, const char *name,
    const char **first, const char **last);

/*
 * A saved session of two parts ("<a>\n<b>"): made (malloc'd; NULL when
 * either part is missing, or ENOMEM), and read back into arena copies
 * (-1 when saved is not one)
 */
char *crm_provider_session_pack(const char *a, const char *b);
int crm_provider_session_unpack(crm_provider_op_t *op, const char *saved,
    const char **a, const char **b);

/*
 * What an event's record at the provider says in words (a Task's
 * description, an Activity's notes): the event's id and time, the lead,
 * its stage and score, and a conversion's amount
 */
void crm_provider_event_text(const crm_provider_op_t *op, char *buf,
    size_t size);

/* adds a member to op->account (copied into the arena; value may be NULL) */
crm_status_e crm_provider_account(crm_provider_op_t *op, const char *name,
    const char *value, crm_error_t *err);

/* the string at path in a JSON tree, or NULL */
const char *crm_provider_string(yajl_val root, const char **path);

#endif /* CRM_PROVIDER_H */
