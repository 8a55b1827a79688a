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
 *   parse      credentials and settings from the API -> op->creds
 *   validate   do the credentials work? -> op->account (a JSON object)
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
    /* the last answer, for the sync log */
    unsigned                    http_status;
    int64_t                     duration_ms;
} crm_provider_op_t;


struct crm_provider_s {
    const char  *type;              /* "klaviyo", as in the API */
    const char  *name;              /* "Klaviyo", in messages */

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
    crm_status_e (*validate)(crm_provider_op_t *op,
        const crm_http_response_t *res, crm_op_step_e *step,
        crm_error_t *err);
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

/* adds a member to op->account (copied into the arena; value may be NULL) */
crm_status_e crm_provider_account(crm_provider_op_t *op, const char *name,
    const char *value, crm_error_t *err);

/* the string at path in a JSON tree, or NULL */
const char *crm_provider_string(yajl_val root, const char **path);

#endif /* CRM_PROVIDER_H */
