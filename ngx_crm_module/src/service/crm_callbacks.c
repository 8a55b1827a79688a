/*
 * Signed install and conversion callbacks; see crm_callbacks.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_callbacks.h"
#include "crm_normalize.h"
#include "crm_store_attributions.h"
#include "crm_store_links.h"
#include "crm_store_wallets.h"
#include "crm_validate.h"
#include "crm_verify.h"


#define CRM_CALLBACK_ID_MAX      200        /* event and order ids */
#define CRM_CALLBACK_NAME_MAX    200        /* a lead's name */
#define CRM_CALLBACK_AMOUNT_MAX  1000000000000LL    /* 10^12 minor units */
#define CRM_BPS_WHOLE            10000


/* the JSON of both callbacks; each table names the members it takes */
typedef struct {
    crm_json_value_t  shop_domain;
    crm_json_value_t  click_id;
    crm_json_value_t  affiliate_link_id;
    crm_json_value_t  shop_name;
    crm_json_value_t  email;
    crm_json_value_t  event_id;
    crm_json_value_t  order_id;
    crm_json_value_t  amount_cents;
    crm_json_value_t  currency;
} crm_callback_body_t;


/* the link a callback names, by click id or by id */
typedef struct {
    char         link_id[CRM_LINK_ID_LEN + 1];  /* "" when not named */
    const char  *click_id;                      /* NULL when not sent */
} crm_callback_link_t;


typedef struct {
    crm_callback_link_t    link;
    char                   shop_domain[CRM_DOMAIN_MAX + 1];
    char                   lead_name[CRM_CALLBACK_NAME_MAX * 4 + 1];
    const char            *email;
    const char            *event_id;
    const crm_stage_t     *stage;
    const crm_substage_t  *substage;
} crm_install_t;


static crm_status_e crm_callbacks_install_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_callbacks_install_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_callbacks_install_reply(crm_call_t *call,
    const crm_attribution_t *att, int created, crm_error_t *err);
static crm_status_e crm_callbacks_conversion_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_callbacks_conversion_run(crm_db_t *db,
    crm_call_t *call, crm_error_t *err);
static crm_status_e crm_callbacks_conversion_link(crm_db_t *db,
    const crm_conversion_in_t *in, crm_link_terms_t *terms,
    const char **attribution_id, crm_attribution_t *att, crm_error_t *err);
static crm_status_e crm_callbacks_pay(crm_db_t *db,
    const crm_conversion_in_t *in, crm_conversion_t *conv, int *created,
    crm_error_t *err);
static crm_status_e crm_callbacks_conversion_reply(crm_call_t *call,
    const crm_conversion_t *conv, int created, crm_error_t *err);

static crm_status_e crm_callbacks_link(crm_call_t *call,
    const crm_callback_body_t *body, crm_callback_link_t *out,
    crm_error_t *err);
static crm_status_e crm_callbacks_terms(crm_db_t *db, const char *link_id,
    crm_link_terms_t *terms, crm_error_t *err);
static crm_status_e crm_callbacks_credit(crm_db_t *db,
    const crm_link_terms_t *terms, const char *kind, int64_t amount_cents,
    const char *source_id, const char *reference, crm_error_t *err);
static crm_status_e crm_callbacks_nomem(crm_error_t *err);


#define CRM_CALLBACK_FIELD(field, k, ...)                                     \
    { .name = #field, .kind = k,                                              \
      .offset = offsetof(crm_callback_body_t, field), __VA_ARGS__ }

#define CRM_CALLBACK_LINK_FIELDS                                              \
    CRM_CALLBACK_FIELD(click_id, CRM_JSON_STRING, .nullable = 1,              \
                       .max_len = 64),                                        \
    CRM_CALLBACK_FIELD(affiliate_link_id, CRM_JSON_STRING, .nullable = 1,     \
                       .max_len = 64)

static const crm_json_field_t  crm_install_fields[] = {
    CRM_CALLBACK_FIELD(shop_domain, CRM_JSON_STRING, .required = 1,
                       .min_len = 1, .max_len = 2048),
    CRM_CALLBACK_LINK_FIELDS,
    CRM_CALLBACK_FIELD(shop_name, CRM_JSON_STRING, .nullable = 1,
                       .max_len = CRM_CALLBACK_NAME_MAX),
    CRM_CALLBACK_FIELD(email, CRM_JSON_STRING, .nullable = 1,
                       .max_len = CRM_EMAIL_MAX + 64),
    CRM_CALLBACK_FIELD(event_id, CRM_JSON_STRING, .nullable = 1,
                       .min_len = 1, .max_len = CRM_CALLBACK_ID_MAX),
};

static const crm_json_field_t  crm_conversion_fields[] = {
    CRM_CALLBACK_FIELD(order_id, CRM_JSON_STRING, .required = 1,
                       .min_len = 1, .max_len = CRM_CALLBACK_ID_MAX),
    CRM_CALLBACK_FIELD(amount_cents, CRM_JSON_INT, .required = 1,
                       .min_num = 0, .max_num = CRM_CALLBACK_AMOUNT_MAX),
    CRM_CALLBACK_FIELD(currency, CRM_JSON_STRING, .required = 1,
                       .min_len = 1, .max_len = 8),
    CRM_CALLBACK_LINK_FIELDS,
    CRM_CALLBACK_FIELD(shop_domain, CRM_JSON_STRING, .nullable = 1,
                       .min_len = 1, .max_len = 2048),
};


const crm_endpoint_t  crm_callbacks_install = {
    .verifier = &crm_verify_callback,
    .body = CRM_BODY_JSON,
    .parse = crm_callbacks_install_parse,
    .run = crm_callbacks_install_run
};

const crm_endpoint_t  crm_callbacks_conversion = {
    .verifier = &crm_verify_callback,
    .body = CRM_BODY_JSON,
    .parse = crm_callbacks_conversion_parse,
    .run = crm_callbacks_conversion_run
};


static crm_status_e
crm_callbacks_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


/*
 * The link named by click_id (which carries its link id) or by
 * affiliate_link_id; when both are sent they must agree.  Neither leaves
 * out->link_id empty.
 */
static crm_status_e
crm_callbacks_link(crm_call_t *call, const crm_callback_body_t *body,
    crm_callback_link_t *out, crm_error_t *err)
{
    const crm_json_value_t  *click, *link;

    click = &body->click_id;
    link = &body->affiliate_link_id;

    out->link_id[0] = '\0';
    out->click_id = NULL;

    if (click->present && !click->null) {
        if (!crm_click_id_parse(&call->conf->link_key, click->str.data,
                                click->str.len, out->link_id, NULL))
        {
            return crm_error_set(err, CRM_E_INVALID, "click_id",
                                 "must be a click id of a tracking link");
        }

        out->click_id = crm_arena_strdup(&call->arena, click->str);
        if (out->click_id == NULL) {
            return crm_callbacks_nomem(err);
        }
    }

    if (!link->present || link->null) {
        return CRM_OK;
    }

    if (!crm_link_id_valid(&call->conf->link_key, link->str.data,
                           link->str.len))
    {
        return crm_error_set(err, CRM_E_INVALID, "affiliate_link_id",
                             "must be an affiliate link id");
    }

    if (out->click_id != NULL && !crm_str_eq(link->str, out->link_id)) {
        return crm_error_set(err, CRM_E_INVALID, "affiliate_link_id",
                             "names another link than click_id");
    }

    memcpy(out->link_id, link->str.data, CRM_LINK_ID_LEN);
    out->link_id[CRM_LINK_ID_LEN] = '\0';

    return CRM_OK;
}


static crm_status_e
crm_callbacks_terms(crm_db_t *db, const char *link_id,
    crm_link_terms_t *terms, crm_error_t *err)
{
    int           found;
    crm_status_e  rc;

    rc = crm_store_link_terms(db, link_id, terms, &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
    }

    return CRM_OK;
}


/*
 * Pays a commission and counts it on its link; a commission of 0 is only
 * counted (a link that does not earn, its owner deactivated or an
 * administrator's block, is given 0 by the caller).  A wallet holds one
 * currency, that of its first commission; a link made after the operator
 * changed crm_currency cannot pay into it.  Refused rather than dropped,
 * so the sender retries and the log says why.
 */
static crm_status_e
crm_callbacks_credit(crm_db_t *db, const crm_link_terms_t *terms,
    const char *kind, int64_t amount_cents, const char *source_id,
    const char *reference, crm_error_t *err)
{
    int                  credited;
    crm_status_e         rc;
    crm_wallet_credit_t  credit;

    credit.account_id = terms->owner_id;
    credit.currency = terms->currency;
    credit.kind = kind;
    credit.amount_cents = amount_cents;
    credit.source_id = source_id;
    credit.reference = reference;
    credit.link_id = terms->id;
    credit.installs = strcmp(kind, "commission_install") == 0;
    credit.conversions = !credit.installs;

    /* nothing to pay: the link still counts the install or conversion */
    if (amount_cents == 0) {
        return crm_store_link_count(db, terms->id, credit.installs,
                                    credit.conversions, 0, err);
    }

    rc = crm_store_wallet_credit(db, &credit, &credited, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!credited) {
        crm_error_set(err, CRM_E_CONFLICT, NULL,
                      "the link's owner has a wallet in another currency "
                      "than the link's %s", terms->currency);
        return crm_error_cause(err, "link \"%s\", account \"%s\"",
                               terms->id, terms->owner_id);
    }

    return CRM_OK;
}


static crm_status_e
crm_callbacks_install_parse(crm_call_t *call, crm_error_t *err)
{
    char                 *email;
    size_t                n;
    crm_status_e          rc;
    crm_install_t        *in;
    crm_callback_body_t   body;

    rc = crm_json_decode_table(call->json, crm_install_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_install_t));
    if (in == NULL) {
        return crm_callbacks_nomem(err);
    }

    rc = crm_domain_normalize(body.shop_domain.str, "shop_domain",
                              in->shop_domain, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_callbacks_link(call, &body, &in->link, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (in->link.link_id[0] == '\0') {
        return crm_error_set(err, CRM_E_INVALID, "click_id",
                             "click_id or affiliate_link_id is required");
    }

    /* the shop's name, else its domain, cut to a lead name's length */
    if (body.shop_name.present && !body.shop_name.null
        && body.shop_name.str.len > 0)
    {
        memcpy(in->lead_name, body.shop_name.str.data,
               body.shop_name.str.len);
        in->lead_name[body.shop_name.str.len] = '\0';

    } else {
        n = strlen(in->shop_domain);
        n = n < CRM_CALLBACK_NAME_MAX ? n : CRM_CALLBACK_NAME_MAX;
        memcpy(in->lead_name, in->shop_domain, n);
        in->lead_name[n] = '\0';
    }

    if (body.email.present && !body.email.null) {
        email = crm_arena_alloc(&call->arena, CRM_EMAIL_MAX + 1);
        if (email == NULL) {
            return crm_callbacks_nomem(err);
        }

        rc = crm_email_normalize(body.email.str, "email", email, err);
        if (rc != CRM_OK) {
            return rc;
        }

        in->email = email;
    }

    if (body.event_id.present && !body.event_id.null) {
        in->event_id = crm_arena_strdup(&call->arena, body.event_id.str);
        if (in->event_id == NULL) {
            return crm_callbacks_nomem(err);
        }
    }

    in->stage = &call->conf->pipeline->stages[0];
    in->substage = &in->stage->substages[0];

    call->input = in;

    return CRM_OK;
}


/*
 * The install is one statement, crm.install() (schema/005-install.sql):
 * the link's terms, a repeat's first answer, or under the lock of the
 * owner's shop the lead (the owner's oldest live one for the shop, else a
 * new one), the attribution and the commission, in its own transaction.
 */
static crm_status_e
crm_callbacks_install_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 found, created;
    crm_status_e        rc;
    crm_install_t      *in;
    crm_attribution_t   att;
    crm_install_new_t   ni;

    in = call->input;

    ni.link_id = in->link.link_id;
    ni.shop_domain = in->shop_domain;
    ni.click_id = in->link.click_id;
    ni.event_id = in->event_id;
    ni.lead_name = in->lead_name;
    ni.email = in->email;
    ni.stage = in->stage->name;
    ni.substage = in->substage->status;
    ni.score = in->substage->score;

    rc = crm_store_install(db, &ni, &att, &created, err);

    /*
     * a concurrent repeat got there first, for this link and shop or with
     * this event id: nothing of this one was kept, and the first is the
     * answer
     */
    if (rc == CRM_E_CONFLICT && err->field[0] == '\0') {
        rc = crm_store_attribution_find(db, in->link.link_id,
                                        in->shop_domain, in->event_id, &att,
                                        &found, err);
        if (rc != CRM_OK) {
            return rc;
        }

        if (!found) {
            return crm_error_set(err, CRM_E_CONFLICT, NULL,
                                 "a concurrent install of this shop did "
                                 "not complete; retry");
        }

        created = 0;
    }

    if (rc != CRM_OK) {
        return rc;
    }

    return crm_callbacks_install_reply(call, &att, created, err);
}


static crm_status_e
crm_callbacks_install_reply(crm_call_t *call, const crm_attribution_t *att,
    int created, crm_error_t *err)
{
    yajl_gen  g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_callbacks_nomem(err);
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "lead_id", att->lead_id) != 0
        || crm_json_gen_kv_str(g, "attribution_id", att->id) != 0
        || crm_json_gen_kv_bool(g, "created", created) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    call->outcome = created ? "created" : "duplicate";

    return crm_call_reply_json(call, 200, g, err);
}


static crm_status_e
crm_callbacks_conversion_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e          rc;
    crm_callback_body_t   body;
    crm_callback_link_t   link;
    crm_conversion_in_t  *in;

    rc = crm_json_decode_table(call->json, crm_conversion_fields, &body,
                               err);
    if (rc != CRM_OK) {
        return rc;
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_conversion_in_t));
    if (in == NULL) {
        return crm_callbacks_nomem(err);
    }

    in->order_id = crm_arena_strdup(&call->arena, body.order_id.str);
    if (in->order_id == NULL) {
        return crm_callbacks_nomem(err);
    }

    in->amount_cents = body.amount_cents.num;

    rc = crm_currency_normalize(body.currency.str, "currency", in->currency,
                                err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_callbacks_link(call, &body, &link, err);
    if (rc != CRM_OK) {
        return rc;
    }

    memcpy(in->link_id, link.link_id, sizeof(in->link_id));
    in->click_id = link.click_id;

    if (body.shop_domain.present && !body.shop_domain.null) {
        rc = crm_domain_normalize(body.shop_domain.str, "shop_domain",
                                  in->shop_domain, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    if (in->link_id[0] == '\0' && in->shop_domain[0] == '\0') {
        return crm_error_set(err, CRM_E_INVALID, "click_id",
                             "click_id, affiliate_link_id or shop_domain "
                             "is required");
    }

    call->input = in;

    return CRM_OK;
}


/*
 * The link a conversion pays: the one named, else that of the shop's most
 * recent attribution (then *attribution_id is set too).
 */
static crm_status_e
crm_callbacks_conversion_link(crm_db_t *db, const crm_conversion_in_t *in,
    crm_link_terms_t *terms, const char **attribution_id,
    crm_attribution_t *att, crm_error_t *err)
{
    int           found;
    crm_status_e  rc;

    *attribution_id = NULL;

    if (in->link_id[0] != '\0') {
        return crm_callbacks_terms(db, in->link_id, terms, err);
    }

    rc = crm_store_attribution_latest(db, in->shop_domain, att, &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!found) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL,
                             "no install attributed for this shop");
    }

    *attribution_id = att->id;

    return crm_callbacks_terms(db, att->link_id, terms, err);
}


/*
 * The conversion is one transaction; the order's first answer stands,
 * whatever a repeat says about the amount.
 */
static crm_status_e
crm_callbacks_conversion_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err)
{
    int                    found, created;
    crm_status_e           rc;
    crm_conversion_t       conv;
    crm_conversion_in_t   *in;

    in = call->input;

    /* a repeat answers without a transaction */
    rc = crm_store_conversion_find(db, in->order_id, &conv, &found, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (found) {
        return crm_callbacks_conversion_reply(call, &conv, 0, err);
    }

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_callbacks_convert(db, in, &conv, &created, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_commit(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_callbacks_conversion_reply(call, &conv, created, err);
}


crm_status_e
crm_callbacks_convert(crm_db_t *db, const crm_conversion_in_t *in,
    crm_conversion_t *conv, int *created, crm_error_t *err)
{
    int           found;
    crm_status_e  rc;

    *created = 0;

    rc = crm_store_conversion_find(db, in->order_id, conv, &found, err);
    if (rc != CRM_OK || found) {
        return rc;
    }

    rc = crm_callbacks_pay(db, in, conv, created, err);
    if (rc != CRM_OK || *created) {
        return rc;
    }

    /*
     * a concurrent report of the order got there first: the insert waited
     * for it, and this statement sees it committed
     */
    rc = crm_store_conversion_find(db, in->order_id, conv, &found, err);
    if (rc == CRM_OK && !found) {
        return crm_error_set(err, CRM_E_CONFLICT, NULL,
                             "a concurrent conversion of this order did "
                             "not complete; retry");
    }

    return rc;
}


/* the conversion and its commission, unless the order is taken */
static crm_status_e
crm_callbacks_pay(crm_db_t *db, const crm_conversion_in_t *in,
    crm_conversion_t *conv, int *created, crm_error_t *err)
{
    crm_status_e           rc;
    crm_link_terms_t       terms;
    crm_attribution_t      att;
    crm_conversion_new_t   cn;

    rc = crm_callbacks_conversion_link(db, in, &terms, &cn.attribution_id,
                                       &att, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (strcmp(in->currency, terms.currency) != 0) {
        return crm_error_set(err, CRM_E_INVALID, "currency",
                             "must be the link's currency, %s",
                             terms.currency);
    }

    cn.order_id = in->order_id;
    cn.link_id = terms.id;
    cn.owner_id = terms.owner_id;
    cn.click_id = in->click_id;
    cn.shop_domain = in->shop_domain[0] != '\0' ? in->shop_domain : NULL;
    cn.amount_cents = in->amount_cents;
    cn.currency = in->currency;

    /* amounts up to 10^12 times at most 10^4: far inside int64 */
    cn.commission_cents = terms.earns ? in->amount_cents * terms.conversion_bps
                                        / CRM_BPS_WHOLE
                                      : 0;

    rc = crm_store_conversion_insert(db, &cn, conv, created, err);
    if (rc != CRM_OK || !*created) {
        return rc;
    }

    return crm_callbacks_credit(db, &terms, "commission_conversion",
                                cn.commission_cents, conv->id, in->order_id,
                                err);
}


static crm_status_e
crm_callbacks_conversion_reply(crm_call_t *call, const crm_conversion_t *conv,
    int created, crm_error_t *err)
{
    yajl_gen  g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_callbacks_nomem(err);
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "conversion_id", conv->id) != 0
        || crm_json_gen_kv_int(g, "commission_cents", conv->commission_cents)
           != 0
        || crm_json_gen_kv_bool(g, "created", created) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    call->outcome = created ? "created" : "duplicate";

    return crm_call_reply_json(call, 200, g, err);
}
