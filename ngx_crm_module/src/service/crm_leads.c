/*
 * Leads; see crm_leads.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_etag.h"
#include "crm_form.h"
#include "crm_leads.h"
#include "crm_normalize.h"
#include "crm_page.h"
#include "crm_store_audit.h"
#include "crm_store_leads.h"
#include "crm_validate.h"
#include "crm_verify.h"


#define CRM_LEAD_NAME_MAX     200
#define CRM_LEAD_COMPANY_MAX  200
#define CRM_LEAD_NOTES_MAX    5000
#define CRM_LEAD_VALUE_MAX    10000000000000LL      /* 10^13 minor units */
#define CRM_LEAD_Q_MAX        100


/* the JSON of a lead being created or changed */
typedef struct {
    crm_json_value_t  name;
    crm_json_value_t  email;
    crm_json_value_t  phone;
    crm_json_value_t  company;
    crm_json_value_t  shop_domain;
    crm_json_value_t  source;
    crm_json_value_t  stage;
    crm_json_value_t  substage;
    crm_json_value_t  value_cents;
    crm_json_value_t  currency;
    crm_json_value_t  notes;
} crm_lead_body_t;


/* one lead named by the path, and what is to be done to it */
typedef struct {
    const char            *id;
    const char            *versions;    /* If-Match, NULL: no condition */
    crm_lead_patch_t       patch;
    const crm_stage_t     *stage;
    const crm_substage_t  *substage;
    crm_page_t             page;
} crm_lead_target_t;


typedef struct {
    crm_lead_filter_t      filter;
    crm_page_t             page;
} crm_lead_query_t;


typedef crm_status_e (*crm_leads_normalize_pt)(crm_str_t in,
    const char *field, char *out, crm_error_t *err);


static crm_status_e crm_leads_create_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_create_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_list_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_leads_admin_list_parse(crm_call_t *call,
    crm_error_t *err);
static int crm_leads_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at);
static crm_status_e crm_leads_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_target_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_get_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_update_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_update_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_delete_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_move_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_leads_move_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_leads_history_parse(crm_call_t *call,
    crm_error_t *err);
static int crm_leads_history_item(crm_call_t *call, yajl_gen g,
    const void *rows, size_t i, crm_cursor_t *at);
static crm_status_e crm_leads_history_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);

static crm_status_e crm_leads_fields(crm_call_t *call,
    const crm_lead_body_t *body, crm_lead_patch_t *patch, crm_error_t *err);
static const char *crm_leads_dup(crm_call_t *call, crm_str_t s);
static crm_status_e crm_leads_normalized(crm_call_t *call,
    const crm_json_value_t *value, const char *field, size_t size,
    crm_leads_normalize_pt normalize, const char **out, crm_error_t *err);
static crm_status_e crm_leads_pipeline(const crm_call_t *call,
    const crm_json_value_t *stage, const crm_json_value_t *substage,
    const crm_stage_t **st, const crm_substage_t **ss, crm_error_t *err);
static crm_status_e crm_leads_query(crm_call_t *call, const char *owner,
    crm_lead_query_t *query, crm_error_t *err);
static crm_status_e crm_leads_missing_or_stale(crm_db_t *db,
    crm_call_t *call, const crm_lead_target_t *t, crm_error_t *err);
static crm_status_e crm_leads_audit(crm_db_t *db, crm_call_t *call,
    const char *action, const char *lead_id, const char *details,
    crm_error_t *err);
static int crm_leads_render(yajl_gen g, const crm_service_conf_t *conf,
    const crm_lead_t *lead);
static crm_status_e crm_leads_reply(crm_call_t *call, unsigned status,
    const crm_lead_t *lead, int location, crm_error_t *err);
static crm_status_e crm_leads_nomem(crm_error_t *err);


#define CRM_LEAD_FIELD(field, k, ...)                                         \
    { .name = #field, .kind = k,                                              \
      .offset = offsetof(crm_lead_body_t, field), __VA_ARGS__ }

/*
 * stage, substage and source are in the update table only to be refused
 * with a reason rather than as unknown fields
 */
#define CRM_LEAD_COMMON_FIELDS                                                \
    CRM_LEAD_FIELD(email, CRM_JSON_STRING, .nullable = 1,                     \
                   .max_len = CRM_EMAIL_MAX + 64),                            \
    CRM_LEAD_FIELD(phone, CRM_JSON_STRING, .nullable = 1, .max_len = 64),     \
    CRM_LEAD_FIELD(company, CRM_JSON_STRING, .nullable = 1,                   \
                   .max_len = CRM_LEAD_COMPANY_MAX),                          \
    CRM_LEAD_FIELD(shop_domain, CRM_JSON_STRING, .nullable = 1,               \
                   .max_len = 2048),                                          \
    CRM_LEAD_FIELD(source, CRM_JSON_STRING, .min_len = 1, .max_len = 16),     \
    CRM_LEAD_FIELD(stage, CRM_JSON_STRING, .min_len = 1,                      \
                   .max_len = CRM_STAGE_NAME_MAX),                            \
    CRM_LEAD_FIELD(substage, CRM_JSON_STRING, .min_len = 1,                   \
                   .max_len = CRM_STATUS_MAX),                                \
    CRM_LEAD_FIELD(value_cents, CRM_JSON_INT, .min_num = 0,                   \
                   .max_num = CRM_LEAD_VALUE_MAX),                            \
    CRM_LEAD_FIELD(currency, CRM_JSON_STRING, .min_len = 1, .max_len = 8),    \
    CRM_LEAD_FIELD(notes, CRM_JSON_STRING, .multiline = 1,                    \
                   .max_len = CRM_LEAD_NOTES_MAX)

static const crm_json_field_t  crm_lead_create_fields[] = {
    CRM_LEAD_FIELD(name, CRM_JSON_STRING, .required = 1, .min_len = 1,
                   .max_len = CRM_LEAD_NAME_MAX),
    CRM_LEAD_COMMON_FIELDS
};

static const crm_json_field_t  crm_lead_update_fields[] = {
    CRM_LEAD_FIELD(name, CRM_JSON_STRING, .min_len = 1,
                   .max_len = CRM_LEAD_NAME_MAX),
    CRM_LEAD_COMMON_FIELDS
};

static const crm_json_field_t  crm_lead_move_fields[] = {
    CRM_LEAD_FIELD(stage, CRM_JSON_STRING, .required = 1, .min_len = 1,
                   .max_len = CRM_STAGE_NAME_MAX),
    CRM_LEAD_FIELD(substage, CRM_JSON_STRING, .required = 1, .min_len = 1,
                   .max_len = CRM_STATUS_MAX),
};

static const char *const  crm_leads_list_params[] = {
    "stage", "q", "limit", "cursor", NULL
};

static const char *const  crm_leads_admin_params[] = {
    "owner_id", "stage", "q", "limit", "cursor", NULL
};

static const char *const  crm_leads_page_params[] = {
    "limit", "cursor", NULL
};


const crm_endpoint_t  crm_leads_create = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_leads_create_parse,
    .run = crm_leads_create_run
};

const crm_endpoint_t  crm_leads_list = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_leads_list_parse,
    .run = crm_leads_list_run
};

const crm_endpoint_t  crm_leads_admin_list = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_leads_admin_list_parse,
    .run = crm_leads_list_run
};

const crm_endpoint_t  crm_leads_get = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .caller_in_query = 1,
    .parse = crm_leads_target_parse,
    .run = crm_leads_get_run
};

const crm_endpoint_t  crm_leads_update = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_leads_update_parse,
    .run = crm_leads_update_run
};

const crm_endpoint_t  crm_leads_delete = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_leads_target_parse,
    .run = crm_leads_delete_run
};

const crm_endpoint_t  crm_leads_move = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_leads_move_parse,
    .run = crm_leads_move_run
};

const crm_endpoint_t  crm_leads_history = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_leads_history_parse,
    .run = crm_leads_history_run
};


static crm_status_e
crm_leads_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


static const char *
crm_leads_dup(crm_call_t *call, crm_str_t s)
{
    return crm_arena_strdup(&call->arena, s);
}


/*
 * The fields a create or an update carries, validated and normalised into
 * a patch: a field present in the body has its bit set, null clears it.
 */
static crm_status_e
crm_leads_fields(crm_call_t *call, const crm_lead_body_t *body,
    crm_lead_patch_t *patch, crm_error_t *err)
{
    crm_status_e  rc;

    memset(patch, 0, sizeof(crm_lead_patch_t));

    if (body->name.present) {
        patch->set |= CRM_LEAD_NAME;
        patch->name = crm_leads_dup(call, body->name.str);
        if (patch->name == NULL) {
            return crm_leads_nomem(err);
        }
    }

    if (body->email.present) {
        patch->set |= CRM_LEAD_EMAIL;

        rc = crm_leads_normalized(call, &body->email, "email",
                                  CRM_EMAIL_MAX + 1, crm_email_normalize,
                                  &patch->email, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (body->phone.present) {
        patch->set |= CRM_LEAD_PHONE;

        rc = crm_leads_normalized(call, &body->phone, "phone",
                                  CRM_PHONE_MAX + 1, crm_phone_normalize,
                                  &patch->phone, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (body->company.present) {
        patch->set |= CRM_LEAD_COMPANY;

        if (!body->company.null) {
            patch->company = crm_leads_dup(call, body->company.str);
            if (patch->company == NULL) {
                return crm_leads_nomem(err);
            }
        }
    }

    if (body->shop_domain.present) {
        patch->set |= CRM_LEAD_SHOP_DOMAIN;

        rc = crm_leads_normalized(call, &body->shop_domain, "shop_domain",
                                  CRM_DOMAIN_MAX + 1, crm_domain_normalize,
                                  &patch->shop_domain, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (body->value_cents.present) {
        patch->set |= CRM_LEAD_VALUE;
        patch->value_cents = body->value_cents.num;
    }

    if (body->currency.present) {
        patch->set |= CRM_LEAD_CURRENCY;

        rc = crm_leads_normalized(call, &body->currency, "currency",
                                  CRM_CURRENCY_LEN + 1, crm_currency_normalize,
                                  &patch->currency, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (body->notes.present) {
        patch->set |= CRM_LEAD_NOTES;
        patch->notes = crm_leads_dup(call, body->notes.str);
        if (patch->notes == NULL) {
            return crm_leads_nomem(err);
        }
    }

    return CRM_OK;
}


/*
 * A normalised copy of a field, in the call's arena, by one of the core
 * normalisers (which share this shape); null stays NULL.
 */
static crm_status_e
crm_leads_normalized(crm_call_t *call, const crm_json_value_t *value,
    const char *field, size_t size, crm_leads_normalize_pt normalize,
    const char **out, crm_error_t *err)
{
    char          *buf;
    crm_status_e   rc;

    *out = NULL;

    if (value->null) {
        return CRM_OK;
    }

    buf = crm_arena_alloc(&call->arena, size);
    if (buf == NULL) {
        return crm_leads_nomem(err);
    }

    rc = normalize(value->str, field, buf, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *out = buf;

    return CRM_OK;
}


/* resolves a stage and substage against the pipeline loaded now */
static crm_status_e
crm_leads_pipeline(const crm_call_t *call, const crm_json_value_t *stage,
    const crm_json_value_t *substage, const crm_stage_t **st,
    const crm_substage_t **ss, crm_error_t *err)
{
    const crm_pipeline_t  *pipeline;

    pipeline = call->conf->pipeline;

    if (!stage->present) {
        if (substage->present) {
            return crm_error_set(err, CRM_E_INVALID, "substage",
                                 "requires stage");
        }

        *st = &pipeline->stages[0];
        *ss = &(*st)->substages[0];

        return CRM_OK;
    }

    *st = crm_pipeline_stage(pipeline, stage->str);
    if (*st == NULL) {
        return crm_error_set(err, CRM_E_INVALID, "stage",
                             "unknown stage \"%.*s\"", (int) stage->str.len,
                             stage->str.data);
    }

    if (!substage->present) {
        *ss = &(*st)->substages[0];
        return CRM_OK;
    }

    *ss = crm_pipeline_substage(*st, substage->str);
    if (*ss == NULL) {
        return crm_error_set(err, CRM_E_INVALID, "substage",
                             "unknown substage \"%.*s\" of stage \"%s\"",
                             (int) substage->str.len, substage->str.data,
                             (*st)->name);
    }

    return CRM_OK;
}


static crm_status_e
crm_leads_create_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e            rc;
    crm_lead_new_t         *in;
    crm_lead_body_t         body;
    crm_lead_patch_t        patch;
    const crm_stage_t      *st;
    const crm_substage_t   *ss;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_lead_create_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_leads_fields(call, &body, &patch, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_leads_pipeline(call, &body.stage, &body.substage, &st, &ss,
                            err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_lead_new_t));
    if (in == NULL) {
        return crm_leads_nomem(err);
    }

    in->source = "manual";

    if (body.source.present) {
        if (crm_str_eq(body.source.str, "affiliate")
            || crm_str_eq(body.source.str, "webhook"))
        {
            return crm_error_set(err, CRM_E_INVALID, "source",
                                 "is set by the gateway for leads it "
                                 "creates");
        }

        if (!crm_str_eq(body.source.str, "manual")
            && !crm_str_eq(body.source.str, "api"))
        {
            return crm_error_set(err, CRM_E_INVALID, "source",
                                 "must be manual or api");
        }

        in->source = crm_str_eq(body.source.str, "api") ? "api" : "manual";
    }

    in->name = patch.name;
    in->email = patch.email;
    in->phone = patch.phone;
    in->company = patch.company;
    in->shop_domain = patch.shop_domain;
    in->stage = st->name;
    in->substage = ss->status;
    in->score = ss->score;
    in->outcome = crm_outcome_name(ss->outcome);
    in->value_cents = patch.value_cents;
    in->currency = patch.currency ? patch.currency : "USD";
    in->notes = patch.notes ? patch.notes : "";

    call->input = in;

    return CRM_OK;
}


static crm_status_e
crm_leads_audit(crm_db_t *db, crm_call_t *call, const char *action,
    const char *lead_id, const char *details, crm_error_t *err)
{
    crm_audit_entry_t  audit;

    audit.actor_id = call->caller->id;
    audit.action = action;
    audit.object_type = "lead";
    audit.object_id = lead_id;
    audit.details = details;

    return crm_store_audit(db, &audit, err);
}


static crm_status_e
crm_leads_create_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    char             details[160];
    crm_lead_t       lead;
    crm_rows_t       rows;
    crm_status_e     rc;
    crm_lead_new_t  *in;

    in = call->input;
    in->owner_id = call->caller->id;
    in->actor_id = call->caller->id;
    rows.res = NULL;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_lead_insert(db, in, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    crm_lead_row(&rows, 0, &lead);

    snprintf(details, sizeof(details),
             "{\"stage\": \"%s\", \"substage\": \"%s\"}", lead.stage,
             lead.substage);

    rc = crm_leads_audit(db, call, "lead.create", lead.id, details, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_leads_reply(call, 201, &lead, 1, err);

done:

    crm_rows_free(&rows);

    return rc;
}


/* the query string of a list: filters and the page */
static crm_status_e
crm_leads_query(crm_call_t *call, const char *owner, crm_lead_query_t *query,
    crm_error_t *err)
{
    int            found;
    char          *stage, *q;
    crm_status_e   rc;

    query->filter.owner_id = owner;
    query->filter.stage = NULL;
    query->filter.q = NULL;

    stage = crm_arena_alloc(&call->arena, CRM_STAGE_NAME_MAX + 1);
    q = crm_arena_alloc(&call->arena, CRM_LEAD_Q_MAX * 4 + 1);
    if (stage == NULL || q == NULL) {
        return crm_leads_nomem(err);
    }

    rc = crm_form_get(call->query, "stage", stage, CRM_STAGE_NAME_MAX + 1,
                      &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* any stage name, also one a new pipeline no longer has */
    if (found) {
        if (!crm_pipeline_name_valid(crm_str_c(stage), CRM_STAGE_NAME_MAX)) {
            return crm_error_set(err, CRM_E_INVALID, "stage",
                                 "must be a stage name");
        }

        query->filter.stage = stage;
    }

    rc = crm_form_get(call->query, "q", q, CRM_LEAD_Q_MAX * 4 + 1, &found,
                      err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (found) {
        rc = crm_text_check(crm_str_c(q), "q", 1, CRM_LEAD_Q_MAX, 0, err);
        if (rc != CRM_OK) {
            return rc;
        }

        query->filter.q = q;
    }

    return crm_page_parse(call->query, CRM_PAGE_UUID, &query->page, err);
}


static crm_status_e
crm_leads_list_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e       rc;
    crm_lead_query_t  *query;

    rc = crm_form_check_names(call->query, crm_leads_list_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    query = crm_arena_alloc(&call->arena, sizeof(crm_lead_query_t));
    if (query == NULL) {
        return crm_leads_nomem(err);
    }

    call->input = query;

    /* the owner is the caller, known once the thread has read the account */
    return crm_leads_query(call, NULL, query, err);
}


static crm_status_e
crm_leads_admin_list_parse(crm_call_t *call, crm_error_t *err)
{
    int                found;
    char              *owner;
    crm_status_e       rc;
    crm_lead_query_t  *query;

    rc = crm_form_check_names(call->query, crm_leads_admin_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    query = crm_arena_alloc(&call->arena, sizeof(crm_lead_query_t));
    owner = crm_arena_alloc(&call->arena, CRM_UUID_LEN + 1);
    if (query == NULL || owner == NULL) {
        return crm_leads_nomem(err);
    }

    call->input = query;

    rc = crm_form_get(call->query, "owner_id", owner, CRM_UUID_LEN + 1,
                      &found, err);
    if (rc == CRM_E_INVALID || (rc == CRM_OK && found
                                && !crm_uuid_canonical(crm_str_c(owner),
                                                       owner)))
    {
        return crm_error_set(err, CRM_E_INVALID, "owner_id",
                             "must be an account id");
    }

    if (rc != CRM_OK) {
        return rc;
    }

    return crm_leads_query(call, found ? owner : NULL, query, err);
}


static int
crm_leads_item(crm_call_t *call, yajl_gen g, const void *rows, size_t i,
    crm_cursor_t *at)
{
    crm_lead_t  lead;

    crm_lead_row(rows, i, &lead);

    at->ts_us = lead.created_us;
    snprintf(at->id, sizeof(at->id), "%s", lead.id);

    return crm_leads_render(g, call->conf, &lead);
}


static crm_status_e
crm_leads_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_rows_t         rows;
    crm_status_e       rc;
    crm_lead_query_t  *query;

    query = call->input;

    if (call->endpoint == &crm_leads_list) {
        query->filter.owner_id = call->caller->id;
    }

    rc = crm_store_leads_list(db, &query->filter, &query->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, query->page.limit,
                             crm_leads_item, err);
    crm_rows_free(&rows);

    return rc;
}


/* the lead in the path, and If-Match */
static crm_status_e
crm_leads_target_parse(crm_call_t *call, crm_error_t *err)
{
    char               *id;
    crm_lead_target_t  *t;

    t = crm_arena_alloc(&call->arena, sizeof(crm_lead_target_t));
    id = crm_arena_alloc(&call->arena, CRM_UUID_LEN + 1);
    if (t == NULL || id == NULL) {
        return crm_leads_nomem(err);
    }

    /* not a UUID cannot name a lead: the same 404 as a missing one */
    if (!crm_uuid_canonical(call->match.params[0], id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    t->id = id;
    call->input = t;

    return crm_call_if_match(call, &t->versions, err);
}


/* after a conditional change matched nothing: missing (404) or stale (412) */
static crm_status_e
crm_leads_missing_or_stale(crm_db_t *db, crm_call_t *call,
    const crm_lead_target_t *t, crm_error_t *err)
{
    int            exists;
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_store_lead_get(db, call->caller->id, t->id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    exists = rows.n > 0;
    crm_rows_free(&rows);

    if (exists && t->versions != NULL) {
        return crm_error_set(err, CRM_E_PRECONDITION, NULL,
                             "the lead has changed since the version in "
                             "If-Match");
    }

    return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
}


/* the hot read: the caller is checked in the lead's own statement */
static crm_status_e
crm_leads_get_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 active;
    crm_lead_t          lead;
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_lead_target_t  *t;

    t = call->input;

    rc = crm_store_lead_get_as(db, call->account_id, t->id, &rows, &active,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!active) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "account is not active");
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    crm_lead_row(&rows, 0, &lead);
    rc = crm_leads_reply(call, 200, &lead, 0, err);
    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_leads_update_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_lead_body_t     body;
    crm_lead_target_t  *t;

    rc = crm_leads_target_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t = call->input;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_lead_update_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (body.stage.present || body.substage.present) {
        return crm_error_set(err, CRM_E_INVALID,
                             body.stage.present ? "stage" : "substage",
                             "is changed with PUT /leads/{id}/stage");
    }

    if (body.source.present) {
        return crm_error_set(err, CRM_E_INVALID, "source",
                             "cannot be changed");
    }

    rc = crm_leads_fields(call, &body, &t->patch, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (t->patch.set == 0) {
        return crm_error_set(err, CRM_E_INVALID, "body",
                             "must change at least one field");
    }

    return CRM_OK;
}


static crm_status_e
crm_leads_update_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 i, n;
    char                details[256];
    crm_lead_t          lead;
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_lead_target_t  *t;

    static const char  *names[] = {
        "name", "email", "phone", "company", "shop_domain", "value_cents",
        "currency", "notes"
    };

    t = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_lead_update(db, call->caller->id, t->id, t->versions,
                               &t->patch, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_leads_missing_or_stale(db, call, t, err);
    }

    crm_lead_row(&rows, 0, &lead);

    n = snprintf(details, sizeof(details), "{\"fields\": [");

    for (i = 0; i < 8; i++) {
        if (t->patch.set & (1u << i)) {
            n += snprintf(details + n, sizeof(details) - n, "%s\"%s\"",
                          details[n - 1] == '[' ? "" : ", ", names[i]);
        }
    }

    snprintf(details + n, sizeof(details) - n, "]}");

    rc = crm_leads_audit(db, call, "lead.update", lead.id, details, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_leads_reply(call, 200, &lead, 0, err);

done:

    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_leads_delete_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 done;
    crm_status_e        rc;
    crm_lead_target_t  *t;

    t = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_lead_delete(db, call->caller->id, t->id, t->versions,
                               &done, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!done) {
        return crm_leads_missing_or_stale(db, call, t, err);
    }

    rc = crm_leads_audit(db, call, "lead.delete", t->id, "{}", err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_call_reply_empty(call, 204);
}


static crm_status_e
crm_leads_move_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_lead_body_t     body;
    crm_lead_target_t  *t;

    rc = crm_leads_target_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t = call->input;

    memset(&body, 0, sizeof(body));

    rc = crm_json_decode_table(call->json, crm_lead_move_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_leads_pipeline(call, &body.stage, &body.substage, &t->stage,
                              &t->substage, err);
}


static crm_status_e
crm_leads_move_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    char                details[320];
    crm_lead_t          lead;
    crm_rows_t          rows;
    const char         *from_stage, *from_substage;
    crm_status_e        rc;
    crm_lead_target_t  *t;

    t = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /*
     * locked, so that "already there" stays true until the commit: two
     * concurrent moves to the same place record one move, not two
     */
    rc = crm_store_lead_lock(db, call->caller->id, t->id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    crm_lead_row(&rows, 0, &lead);

    /* already there: nothing changes, nothing is recorded */
    if (strcmp(lead.stage, t->stage->name) == 0
        && strcmp(lead.substage, t->substage->status) == 0)
    {
        if (t->versions != NULL
            && !crm_if_match_has(t->versions, lead.version))
        {
            crm_rows_free(&rows);
            return crm_error_set(err, CRM_E_PRECONDITION, NULL,
                                 "the lead has changed since the version "
                                 "in If-Match");
        }

        rc = crm_db_commit(db, err);
        if (rc == CRM_OK) {
            rc = crm_leads_reply(call, 200, &lead, 0, err);
        }

        crm_rows_free(&rows);

        return rc;
    }

    crm_rows_free(&rows);

    rc = crm_store_lead_move(db, call->caller->id, t->id, t->versions,
                             t->stage, t->substage, &rows, &from_stage,
                             &from_substage, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_leads_missing_or_stale(db, call, t, err);
    }

    crm_lead_row(&rows, 0, &lead);

    rc = crm_store_lead_event(db, lead.id, call->caller->id, from_stage,
                              from_substage, t->stage, t->substage, err);
    if (rc != CRM_OK) {
        goto done;
    }

    snprintf(details, sizeof(details),
             "{\"from\": {\"stage\": \"%s\", \"substage\": \"%s\"},"
             " \"to\": {\"stage\": \"%s\", \"substage\": \"%s\"}}",
             from_stage, from_substage, lead.stage, lead.substage);

    rc = crm_leads_audit(db, call, "lead.stage", lead.id, details, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_leads_reply(call, 200, &lead, 0, err);

done:

    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_leads_history_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_lead_target_t  *t;

    rc = crm_leads_target_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t = call->input;

    rc = crm_form_check_names(call->query, crm_leads_page_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_page_parse(call->query, CRM_PAGE_UUID, &t->page, err);
}


static int
crm_leads_history_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at)
{
    crm_lead_event_t  ev;

    (void) call;

    crm_lead_event_row(rows, i, &ev);

    at->ts_us = ev.created_us;
    snprintf(at->id, sizeof(at->id), "%s", ev.id);

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", ev.id) != 0
        || crm_json_gen_kv_str(g, "from_stage", ev.from_stage) != 0
        || crm_json_gen_kv_str(g, "from_substage", ev.from_substage) != 0
        || crm_json_gen_kv_str(g, "to_stage", ev.to_stage) != 0
        || crm_json_gen_kv_str(g, "to_substage", ev.to_substage) != 0
        || crm_json_gen_kv_int(g, "score", ev.score) != 0
        || crm_json_gen_kv_str(g, "actor_id", ev.actor_id) != 0
        || crm_json_gen_kv_str(g, "created_at", ev.created_at) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


crm_status_e
crm_leads_owned(crm_db_t *db, const char *owner_id, const char *id,
    crm_error_t *err)
{
    int            exists;
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_store_lead_get(db, owner_id, id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    exists = rows.n > 0;
    crm_rows_free(&rows);

    if (!exists) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    return CRM_OK;
}


static crm_status_e
crm_leads_history_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_lead_target_t  *t;

    t = call->input;

    rc = crm_leads_owned(db, call->caller->id, t->id, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_lead_history(db, t->id, &t->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, t->page.limit,
                             crm_leads_history_item, err);
    crm_rows_free(&rows);

    return rc;
}


/*
 * A lead as the API shows it.  stage_in_pipeline says whether its stored
 * stage and substage are in the pipeline loaded now: a lead whose stage a
 * new pipeline dropped stays as it was, and says so.
 */
static int
crm_leads_render(yajl_gen g, const crm_service_conf_t *conf,
    const crm_lead_t *lead)
{
    int                 known;
    const crm_stage_t  *st;

    st = crm_pipeline_stage(conf->pipeline, crm_str_c(lead->stage));
    known = st != NULL
            && crm_pipeline_substage(st, crm_str_c(lead->substage)) != NULL;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", lead->id) != 0
        || crm_json_gen_kv_str(g, "owner_id", lead->owner_id) != 0
        || crm_json_gen_kv_str(g, "name", lead->name) != 0
        || crm_json_gen_kv_str(g, "email", lead->email) != 0
        || crm_json_gen_kv_str(g, "phone", lead->phone) != 0
        || crm_json_gen_kv_str(g, "company", lead->company) != 0
        || crm_json_gen_kv_str(g, "shop_domain", lead->shop_domain) != 0
        || crm_json_gen_kv_str(g, "source", lead->source) != 0
        || crm_json_gen_kv_str(g, "stage", lead->stage) != 0
        || crm_json_gen_kv_str(g, "substage", lead->substage) != 0
        || crm_json_gen_kv_bool(g, "stage_in_pipeline", known) != 0
        || crm_json_gen_kv_int(g, "score", lead->score) != 0
        || crm_json_gen_kv_int(g, "value_cents", lead->value_cents) != 0
        || crm_json_gen_kv_str(g, "currency", lead->currency) != 0
        || crm_json_gen_kv_str(g, "notes", lead->notes) != 0
        || crm_json_gen_kv_str(g, "affiliate_link_id",
                               lead->affiliate_link_id) != 0
        || crm_json_gen_kv_int(g, "version", lead->version) != 0
        || crm_json_gen_kv_str(g, "created_at", lead->created_at) != 0
        || crm_json_gen_kv_str(g, "updated_at", lead->updated_at) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


/* one lead as the reply, with its ETag (and Location when created) */
static crm_status_e
crm_leads_reply(crm_call_t *call, unsigned status, const crm_lead_t *lead,
    int location, crm_error_t *err)
{
    yajl_gen      g;
    crm_status_e  rc;

    rc = crm_call_add_object_headers(call, lead->version,
                                     location ? "/leads/" : NULL,
                                     lead->id, err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_leads_nomem(err);
    }

    if (crm_leads_render(g, call->conf, lead) != 0) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    return crm_call_reply_json(call, status, g, err);
}
