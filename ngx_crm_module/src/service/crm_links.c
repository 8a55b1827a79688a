/*
 * Affiliate links; see crm_links.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_etag.h"
#include "crm_form.h"
#include "crm_links.h"
#include "crm_page.h"
#include "crm_store_audit.h"
#include "crm_store_links.h"
#include "crm_url.h"
#include "crm_validate.h"
#include "crm_verify.h"


#define CRM_LINK_NAME_MAX       200
#define CRM_LINK_INSTALL_MAX    100000000LL     /* minor units */
#define CRM_LINK_BPS_MAX        10000

/* a fresh id meets a taken one about once in 62^10 links */
#define CRM_LINK_ID_ATTEMPTS    3


/* the JSON of a link being created or changed */
typedef struct {
    crm_json_value_t  target_url;
    crm_json_value_t  name;
    crm_json_value_t  merchant_id;
    crm_json_value_t  commission;
    crm_json_value_t  status;
} crm_link_body_t;


typedef struct {
    crm_json_value_t  install_cents;
    crm_json_value_t  conversion_bps;
} crm_link_commission_t;


/* one link named by the path, and what is to be done to it */
typedef struct {
    const char        *id;
    const char        *versions;    /* If-Match, NULL: no condition */
    crm_link_patch_t   patch;
} crm_link_target_t;


static crm_status_e crm_links_create_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_create_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_list_parse(crm_call_t *call, crm_error_t *err);
static int crm_links_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at);
static crm_status_e crm_links_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_target_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_get_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_update_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_update_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_admin_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_admin_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_links_status(crm_str_t value, const char **out,
    crm_error_t *err);
static crm_status_e crm_links_changed(crm_db_t *db, crm_call_t *call,
    const char *action, const char *details, const crm_link_t *link,
    int redirects, crm_error_t *err);

static crm_status_e crm_links_target_url(crm_call_t *call,
    const crm_json_value_t *value, const char **out, crm_error_t *err);
static crm_status_e crm_links_commission(const crm_call_t *call,
    const crm_json_value_t *value, crm_link_new_t *in, crm_error_t *err);
static crm_status_e crm_links_audit(crm_db_t *db, crm_call_t *call,
    const char *action, const char *link_id, const char *details,
    crm_error_t *err);
static int crm_links_render(yajl_gen g, const crm_service_conf_t *conf,
    const crm_link_t *link);
static crm_status_e crm_links_reply(crm_call_t *call, unsigned status,
    const crm_link_t *link, int location, crm_error_t *err);
static crm_status_e crm_links_nomem(crm_error_t *err);


#define CRM_LINK_FIELD(field, k, ...)                                         \
    { .name = #field, .kind = k,                                              \
      .offset = offsetof(crm_link_body_t, field), __VA_ARGS__ }

#define CRM_LINK_COMMISSION_FIELD(field, k, ...)                              \
    { .name = #field, .kind = k,                                              \
      .offset = offsetof(crm_link_commission_t, field), __VA_ARGS__ }

static const crm_json_field_t  crm_link_create_fields[] = {
    CRM_LINK_FIELD(target_url, CRM_JSON_STRING, .required = 1, .min_len = 1,
                   .max_len = CRM_URL_MAX),
    CRM_LINK_FIELD(name, CRM_JSON_STRING, .nullable = 1,
                   .max_len = CRM_LINK_NAME_MAX),
    CRM_LINK_FIELD(merchant_id, CRM_JSON_STRING, .nullable = 1,
                   .max_len = CRM_UUID_LEN),
    CRM_LINK_FIELD(commission, CRM_JSON_OBJECT),
};

/* an administrator's decision: only whether the link may redirect */
static const crm_json_field_t  crm_link_admin_fields[] = {
    CRM_LINK_FIELD(status, CRM_JSON_STRING, .required = 1, .min_len = 1,
                   .max_len = 16),
};

/* the terms and the merchant are fixed once a link is out */
static const crm_json_field_t  crm_link_update_fields[] = {
    CRM_LINK_FIELD(target_url, CRM_JSON_STRING, .min_len = 1,
                   .max_len = CRM_URL_MAX),
    CRM_LINK_FIELD(name, CRM_JSON_STRING, .max_len = CRM_LINK_NAME_MAX),
    CRM_LINK_FIELD(status, CRM_JSON_STRING, .min_len = 1, .max_len = 16),
};

static const crm_json_field_t  crm_link_commission_fields[] = {
    CRM_LINK_COMMISSION_FIELD(install_cents, CRM_JSON_INT,
                              .min_num = 0,
                              .max_num = CRM_LINK_INSTALL_MAX),
    CRM_LINK_COMMISSION_FIELD(conversion_bps, CRM_JSON_INT,
                              .min_num = 0, .max_num = CRM_LINK_BPS_MAX),
};

static const char *const  crm_links_page_params[] = {
    "limit", "cursor", NULL
};


const crm_endpoint_t  crm_links_create = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_links_create_parse,
    .run = crm_links_create_run
};

const crm_endpoint_t  crm_links_list = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_links_list_parse,
    .run = crm_links_list_run
};

const crm_endpoint_t  crm_links_get = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_links_target_parse,
    .run = crm_links_get_run
};

const crm_endpoint_t  crm_links_update = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_JSON,
    .parse = crm_links_update_parse,
    .run = crm_links_update_run
};

const crm_endpoint_t  crm_links_admin_update = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_JSON,
    .parse = crm_links_admin_parse,
    .run = crm_links_admin_run
};


static crm_status_e
crm_links_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


/*
 * A redirect target, checked as the redirect will trust it, on a host the
 * operator allows (crm_redirect_allow_hosts): the tracking domain is not
 * an open redirect for any account to use.
 */
static crm_status_e
crm_links_target_url(crm_call_t *call, const crm_json_value_t *value,
    const char **out, crm_error_t *err)
{
    char         host[CRM_URL_HOST_MAX];
    size_t       len;
    const char  *why;

    why = crm_url_check_target(value->str);
    if (why != NULL) {
        return crm_error_set(err, CRM_E_INVALID, "target_url", "%s", why);
    }

    len = crm_url_host(value->str, host);

    if (!crm_host_list_allows(call->conf->target_hosts,
                              (crm_str_t) { host, len }))
    {
        return crm_error_set(err, CRM_E_INVALID, "target_url",
                             "host \"%.100s\" is not allowed for link "
                             "targets", host);
    }

    *out = crm_arena_strdup(&call->arena, value->str);
    if (*out == NULL) {
        return crm_links_nomem(err);
    }

    return CRM_OK;
}


/* the terms of a new link: the body's, else the configured defaults */
static crm_status_e
crm_links_commission(const crm_call_t *call, const crm_json_value_t *value,
    crm_link_new_t *in, crm_error_t *err)
{
    char                   field[sizeof(err->field)];
    crm_status_e           rc;
    crm_link_commission_t  body;

    in->install_cents = call->conf->install_cents;
    in->conversion_bps = call->conf->conversion_bps;
    in->currency = call->conf->currency;

    if (!value->present) {
        return CRM_OK;
    }

    rc = crm_json_decode_table(value->obj, crm_link_commission_fields,
                               &body, err);
    if (rc != CRM_OK) {
        snprintf(field, sizeof(field), "commission.%.*s",
                 (int) (sizeof(field) - sizeof("commission.")), err->field);
        snprintf(err->field, sizeof(err->field), "%s", field);
        return rc;
    }

    if (body.install_cents.present) {
        in->install_cents = body.install_cents.num;
    }

    if (body.conversion_bps.present) {
        in->conversion_bps = body.conversion_bps.num;
    }

    return CRM_OK;
}


static crm_status_e
crm_links_create_parse(crm_call_t *call, crm_error_t *err)
{
    char             *merchant;
    crm_status_e      rc;
    crm_link_new_t   *in;
    crm_link_body_t   body;

    rc = crm_json_decode_table(call->json, crm_link_create_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_link_new_t));
    if (in == NULL) {
        return crm_links_nomem(err);
    }

    rc = crm_links_target_url(call, &body.target_url, &in->target_url, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in->name = "";

    if (body.name.present && !body.name.null) {
        in->name = crm_arena_strdup(&call->arena, body.name.str);
        if (in->name == NULL) {
            return crm_links_nomem(err);
        }
    }

    if (body.merchant_id.present && !body.merchant_id.null) {
        merchant = crm_arena_alloc(&call->arena, CRM_UUID_LEN + 1);
        if (merchant == NULL) {
            return crm_links_nomem(err);
        }

        if (!crm_uuid_canonical(body.merchant_id.str, merchant)) {
            return crm_error_set(err, CRM_E_INVALID, "merchant_id",
                                 "must be a merchant's account id");
        }

        in->merchant_id = merchant;
    }

    rc = crm_links_commission(call, &body.commission, in, err);
    if (rc != CRM_OK) {
        return rc;
    }

    call->input = in;

    return CRM_OK;
}


static crm_status_e
crm_links_audit(crm_db_t *db, crm_call_t *call, const char *action,
    const char *link_id, const char *details, crm_error_t *err)
{
    crm_audit_entry_t  audit;

    audit.actor_id = call->caller->id;
    audit.action = action;
    audit.object_type = "affiliate_link";
    audit.object_id = link_id;
    audit.details = details;

    return crm_store_audit(db, &audit, err);
}


static crm_status_e
crm_links_create_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int              attempt;
    char             id[CRM_LINK_ID_LEN + 1], details[128];
    int64_t          wait;
    crm_link_t       link;
    crm_rows_t       rows;
    crm_status_e     rc;
    crm_link_new_t  *in;

    in = call->input;
    in->owner_id = call->caller->id;
    in->id = id;

    for (attempt = 1; /* void */ ; attempt++) {

        if (crm_link_id_generate(&call->conf->link_key, id) != 0) {
            crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
            return crm_error_cause(err, "no random bytes for a link id");
        }

        rc = crm_db_begin(db, err);
        if (rc != CRM_OK) {
            return rc;
        }

        rc = crm_store_link_quota(db, in->owner_id, call->conf->link_limit,
                                  call->conf->link_period, &wait, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (wait > 0) {
            crm_error_set(err, CRM_E_RATE_LIMITED, NULL,
                          "at most %lld links may be made in %lld seconds",
                          (long long) call->conf->link_limit,
                          (long long) call->conf->link_period);
            err->retry_after = (unsigned) wait;
            return err->code;
        }

        rc = crm_store_link_insert(db, in, &rows, err);

        if (rc == CRM_E_CONFLICT && attempt < CRM_LINK_ID_ATTEMPTS
            && strcmp(err->cause, "affiliate_links_pkey") == 0)
        {
            crm_db_rollback(db);
            continue;
        }

        if (rc != CRM_OK) {
            return rc;
        }

        break;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_INVALID, "merchant_id",
                             "must be a merchant's account id");
    }

    crm_link_row(&rows, 0, &link);

    snprintf(details, sizeof(details),
             "{\"install_cents\": %lld, \"conversion_bps\": %lld}",
             (long long) link.install_cents, (long long) link.conversion_bps);

    rc = crm_links_audit(db, call, "link.create", link.id, details, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        goto done;
    }

    rc = crm_links_reply(call, 201, &link, 1, err);

done:

    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_links_list_parse(crm_call_t *call, crm_error_t *err)
{
    crm_page_t    *page;
    crm_status_e   rc;

    rc = crm_form_check_names(call->query, crm_links_page_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    page = crm_arena_alloc(&call->arena, sizeof(crm_page_t));
    if (page == NULL) {
        return crm_links_nomem(err);
    }

    call->input = page;

    return crm_page_parse(call->query, CRM_PAGE_LINK_ID, page, err);
}


static int
crm_links_item(crm_call_t *call, yajl_gen g, const void *rows, size_t i,
    crm_cursor_t *at)
{
    crm_link_t  link;

    crm_link_row(rows, i, &link);

    at->ts_us = link.created_us;
    snprintf(at->id, sizeof(at->id), "%s", link.id);

    return crm_links_render(g, call->conf, &link);
}


static crm_status_e
crm_links_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_page_t    *page;
    crm_rows_t     rows;
    crm_status_e   rc;

    page = call->input;

    rc = crm_store_links_list(db, call->caller->id, page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, page->limit,
                             crm_links_item, err);
    crm_rows_free(&rows);

    return rc;
}


/* the link in the path, and If-Match */
static crm_status_e
crm_links_target_parse(crm_call_t *call, crm_error_t *err)
{
    crm_str_t           id;
    crm_link_target_t  *t;

    id = call->match.params[0];

    /* a made-up id fails its check characters: the same 404 as a miss */
    if (!crm_link_id_valid(&call->conf->link_key, id.data, id.len)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    t = crm_arena_alloc(&call->arena, sizeof(crm_link_target_t));
    if (t == NULL) {
        return crm_links_nomem(err);
    }

    t->id = crm_arena_strdup(&call->arena, id);
    if (t->id == NULL) {
        return crm_links_nomem(err);
    }

    call->input = t;

    return crm_call_if_match(call, &t->versions, err);
}


static crm_status_e
crm_links_get_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_link_t          link;
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_link_target_t  *t;

    t = call->input;

    rc = crm_store_link_get(db, call->caller->id, t->id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    crm_link_row(&rows, 0, &link);
    rc = crm_links_reply(call, 200, &link, 0, err);
    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_links_update_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_link_body_t     body;
    crm_link_patch_t   *patch;
    crm_link_target_t  *t;

    rc = crm_links_target_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t = call->input;
    patch = &t->patch;

    rc = crm_json_decode_table(call->json, crm_link_update_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (body.target_url.present) {
        patch->set |= CRM_LINK_TARGET;

        rc = crm_links_target_url(call, &body.target_url,
                                  &patch->target_url, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (body.name.present) {
        patch->set |= CRM_LINK_NAME;
        patch->name = crm_arena_strdup(&call->arena, body.name.str);
        if (patch->name == NULL) {
            return crm_links_nomem(err);
        }
    }

    if (body.status.present) {
        patch->set |= CRM_LINK_STATUS;

        rc = crm_links_status(body.status.str, &patch->status, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (patch->set == 0) {
        return crm_error_set(err, CRM_E_INVALID, "body",
                             "must change at least one field");
    }

    return CRM_OK;
}


static crm_status_e
crm_links_update_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 i, n, exists, blocked;
    char                details[96];
    crm_link_t          link;
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_link_target_t  *t;

    static const char  *names[] = { "target_url", "name", "status" };

    t = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_link_update(db, call->caller->id, t->id, t->versions,
                               &t->patch, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);

        rc = crm_store_link_get(db, call->caller->id, t->id, &rows, err);
        if (rc != CRM_OK) {
            return rc;
        }

        exists = rows.n > 0;

        if (exists) {
            crm_link_row(&rows, 0, &link);
            blocked = link.admin_disabled;
        }

        crm_rows_free(&rows);

        if (exists && t->versions != NULL
            && !crm_if_match_has(t->versions, link.version))
        {
            return crm_error_set(err, CRM_E_PRECONDITION, NULL,
                                 "the link has changed since the version "
                                 "in If-Match");
        }

        if (exists && blocked) {
            return crm_error_set(err, CRM_E_FORBIDDEN, "status",
                                 "an administrator disabled this link");
        }

        if (exists) {
            return crm_error_set(err, CRM_E_PRECONDITION, NULL,
                                 "the link changed meanwhile");
        }

        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    crm_link_row(&rows, 0, &link);

    n = snprintf(details, sizeof(details), "{\"fields\": [");

    for (i = 0; i < 3; i++) {
        if (t->patch.set & (1u << i)) {
            n += snprintf(details + n, sizeof(details) - n, "%s\"%s\"",
                          details[n - 1] == '[' ? "" : ", ", names[i]);
        }
    }

    snprintf(details + n, sizeof(details) - n, "]}");

    /* a new name changes nothing the redirect reads */
    rc = crm_links_changed(db, call, "link.update", details, &link,
                           t->patch.set & (CRM_LINK_TARGET | CRM_LINK_STATUS),
                           err);
    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_links_status(crm_str_t value, const char **out, crm_error_t *err)
{
    if (crm_str_eq(value, "active")) {
        *out = "active";
        return CRM_OK;
    }

    if (crm_str_eq(value, "disabled")) {
        *out = "disabled";
        return CRM_OK;
    }

    return crm_error_set(err, CRM_E_INVALID, "status",
                         "must be active or disabled");
}


static crm_status_e
crm_links_admin_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    crm_link_body_t     body;
    crm_link_target_t  *t;

    rc = crm_links_target_parse(call, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t = call->input;

    rc = crm_json_decode_table(call->json, crm_link_admin_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    t->patch.set = CRM_LINK_STATUS;

    return crm_links_status(body.status.str, &t->patch.status, err);
}


/*
 * An administrator blocks or unblocks any account's link.  The block is
 * the administrator's, beside the owner's own status: the owner cannot
 * lift it, and lifting it leaves the owner's choice as it was.
 */
static crm_status_e
crm_links_admin_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 exists;
    char                details[64];
    crm_link_t          link;
    crm_rows_t          rows;
    crm_status_e        rc;
    crm_link_target_t  *t;

    t = call->input;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_link_admin_update(db, t->id, t->versions,
                                     strcmp(t->patch.status, "disabled") == 0,
                                     &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);

        rc = crm_store_link_exists(db, t->id, &exists, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (exists) {
            return crm_error_set(err, CRM_E_PRECONDITION, NULL,
                                 "the link has changed since the version "
                                 "in If-Match");
        }

        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    crm_link_row(&rows, 0, &link);

    snprintf(details, sizeof(details), "{\"status\": \"%s\"}",
             t->patch.status);

    rc = crm_links_changed(db, call, "link.admin_update", details, &link, 1,
                           err);
    crm_rows_free(&rows);

    return rc;
}


/*
 * The end of a change of link: its audit row, the commit, the redirect
 * cache's copy dropped when redirects read what changed, the reply.
 */
static crm_status_e
crm_links_changed(crm_db_t *db, crm_call_t *call, const char *action,
    const char *details, const crm_link_t *link, int redirects,
    crm_error_t *err)
{
    crm_status_e  rc;

    rc = crm_links_audit(db, call, action, link->id, details, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (redirects) {
        rc = crm_call_changed(call, CRM_CHANGED_LINK, link->id, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    return crm_links_reply(call, 200, link, 0, err);
}


/* a link as the API shows it */
static int
crm_links_render(yajl_gen g, const crm_service_conf_t *conf,
    const crm_link_t *link)
{
    int          n;
    char         tracking[CRM_URL_MAX + sizeof("/r/") + CRM_LINK_ID_LEN];
    const char  *disabled_by;

    disabled_by = crm_link_disabled_by(link);

    n = snprintf(tracking, sizeof(tracking), "%s/r/%s", conf->public_url,
                 link->id);
    if (n < 0 || (size_t) n >= sizeof(tracking)) {
        return -1;
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "affiliate_link_id", link->id) != 0
        || crm_json_gen_kv_str(g, "target_url", link->target_url) != 0
        || crm_json_gen_kv_str(g, "tracking_url", tracking) != 0
        || crm_json_gen_kv_str(g, "name", link->name) != 0
        || crm_json_gen_kv_str(g, "owner_id", link->owner_id) != 0
        || crm_json_gen_kv_str(g, "merchant_id", link->merchant_id) != 0
        || crm_json_gen_kv_str(g, "status", disabled_by ? "disabled"
                                                        : "active") != 0
        || crm_json_gen_kv_str(g, "disabled_by", disabled_by) != 0
        || crm_json_gen_key(g, "commission") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_int(g, "install_cents", link->install_cents) != 0
        || crm_json_gen_kv_int(g, "conversion_bps", link->conversion_bps)
           != 0
        || crm_json_gen_kv_str(g, "currency", link->currency) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "counters") != 0
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_int(g, "clicks", link->clicks) != 0
        || crm_json_gen_kv_int(g, "installs", link->installs) != 0
        || crm_json_gen_kv_int(g, "conversions", link->conversions) != 0
        || crm_json_gen_kv_int(g, "earnings_cents", link->earnings_cents)
           != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "last_click_at", link->last_click_at) != 0
        || crm_json_gen_kv_str(g, "created_at", link->created_at) != 0
        || crm_json_gen_kv_str(g, "updated_at", link->updated_at) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


/* one link as the reply, with its ETag (and Location when created) */
static crm_status_e
crm_links_reply(crm_call_t *call, unsigned status, const crm_link_t *link,
    int location, crm_error_t *err)
{
    yajl_gen      g;
    crm_status_e  rc;

    rc = crm_call_add_object_headers(call, link->version,
                                     location ? "/affiliate/links/" : NULL,
                                     link->id, err);
    if (rc != CRM_OK) {
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_links_nomem(err);
    }

    if (crm_links_render(g, call->conf, link) != 0) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    return crm_call_reply_json(call, status, g, err);
}
