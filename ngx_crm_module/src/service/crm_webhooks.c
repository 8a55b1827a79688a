/*
 * Webhooks from other systems; see crm_webhooks.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_callbacks.h"
#include "crm_form.h"
#include "crm_leads.h"
#include "crm_normalize.h"
#include "crm_store_leads.h"
#include "crm_store_webhooks.h"
#include "crm_validate.h"
#include "crm_verify.h"
#include "crm_webhooks.h"


#define CRM_WEBHOOK_TYPE_MAX      200
#define CRM_WEBHOOK_EXTERNAL_MAX  255
#define CRM_WEBHOOK_RAW_MAX       200       /* an invalid value, as kept */
#define CRM_WEBHOOK_REF_MAX       64
#define CRM_WEBHOOK_AMOUNT_MAX    1000000000000LL


typedef enum {
    CRM_WEBHOOK_PLAIN = 0,
    CRM_WEBHOOK_ORDER,                  /* orders/create naming a link */
    CRM_WEBHOOK_UNINSTALL               /* app/uninstalled */
} crm_webhook_kind_e;


/* an event as the run stores it */
typedef struct {
    crm_webhook_new_t     row;
    crm_webhook_kind_e    kind;
    crm_conversion_in_t   order;
    const char           *order_refused;    /* why an order pays nothing */
    yajl_gen              invalid;          /* {"name": "as sent", ...} */
    unsigned              invalid_seen;     /* a bit per identifier */
} crm_webhook_in_t;


/* the identifiers an event may carry, in the order they are matched */
typedef enum {
    CRM_IDENT_SHOP = 0,
    CRM_IDENT_EMAIL,
    CRM_IDENT_PHONE,
    CRM_IDENT_EXTERNAL
} crm_ident_e;


typedef struct {
    crm_webhook_filter_t  filter;
    const char           *lead_id;
    crm_page_t            page;
} crm_webhooks_query_t;


static crm_status_e crm_webhooks_receive_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_webhooks_standard(crm_call_t *call,
    crm_webhook_in_t *in, crm_error_t *err);
static crm_status_e crm_webhooks_shopify(crm_call_t *call,
    crm_webhook_in_t *in, crm_error_t *err);
static void crm_webhooks_order(crm_call_t *call, crm_webhook_in_t *in);
static const char *crm_webhooks_order_link(crm_call_t *call,
    crm_webhook_in_t *in);
static const char *crm_webhooks_order_ref(yajl_val root, char *click_id,
    char *ref);
static int crm_webhooks_amount(const char *text, const char *currency,
    int64_t *cents);
static crm_status_e crm_webhooks_ident(crm_call_t *call,
    crm_webhook_in_t *in, crm_ident_e kind, crm_str_t raw);
static crm_status_e crm_webhooks_ident_json(crm_call_t *call,
    crm_webhook_in_t *in, crm_ident_e kind, yajl_val v);
static int crm_webhooks_text(yajl_val v, crm_str_t *out);
static yajl_val crm_webhooks_get(yajl_val obj, const char *key);
static yajl_val crm_webhooks_first(yajl_val obj, const char *const *keys);
static crm_status_e crm_webhooks_receive_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_webhooks_act(crm_db_t *db, crm_call_t *call,
    const crm_webhook_lead_t *lead, const char *id, crm_error_t *err);
static crm_status_e crm_webhooks_churn(crm_db_t *db,
    const crm_pipeline_t *pipeline, const crm_webhook_lead_t *lead,
    int *moved, crm_error_t *err);
static crm_status_e crm_webhooks_receipt(crm_call_t *call, const char *id,
    const char *status, const char *lead_id, crm_error_t *err);
static crm_status_e crm_webhooks_list_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_webhooks_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_webhooks_of_lead_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_webhooks_of_lead_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static int crm_webhooks_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at);
static crm_status_e crm_webhooks_nomem(crm_error_t *err);


const crm_endpoint_t  crm_webhooks_receive = {
    .verifier = &crm_verify_webhook,
    .body = CRM_BODY_JSON,
    .parse = crm_webhooks_receive_parse,
    .run = crm_webhooks_receive_run
};

const crm_endpoint_t  crm_webhooks_list = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_NONE,
    .parse = crm_webhooks_list_parse,
    .run = crm_webhooks_list_run
};

const crm_endpoint_t  crm_webhooks_of_lead = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_webhooks_of_lead_parse,
    .run = crm_webhooks_of_lead_run
};


static const char *const  crm_webhooks_list_params[] = {
    "source", "status", "type", "limit", "cursor", NULL
};

static const char *const  crm_webhooks_page_params[] = {
    "limit", "cursor", NULL
};

/* currencies whose amounts have no minor unit, or three digits of one */
static const char *const  crm_webhooks_exponent0[] = {
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
    "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF", NULL
};

static const char *const  crm_webhooks_exponent3[] = {
    "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", NULL
};


static crm_status_e
crm_webhooks_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


/*
 * The event loop, after the signature: the event's id, type and
 * identifiers, and what the run will do with it
 */
static crm_status_e
crm_webhooks_receive_parse(crm_call_t *call, crm_error_t *err)
{
    char                        *invalid;
    size_t                       len;
    crm_status_e                 rc;
    crm_webhook_in_t            *in;
    const crm_webhook_source_t  *src;

    if (!YAJL_IS_OBJECT(call->json)) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "the body must be a JSON object");
    }

    in = crm_arena_alloc(&call->arena, sizeof(crm_webhook_in_t));
    if (in == NULL) {
        return crm_webhooks_nomem(err);
    }

    memset(in, 0, sizeof(crm_webhook_in_t));

    src = crm_verify_webhook_source(call);

    in->row.source = src->name;
    in->row.payload = crm_arena_strdup(&call->arena, call->body);
    in->invalid = crm_json_gen_new();

    if (in->row.payload == NULL || in->invalid == NULL
        || yajl_gen_map_open(in->invalid) != yajl_gen_status_ok)
    {
        rc = crm_webhooks_nomem(err);
        goto done;
    }

    rc = src->scheme == CRM_WEBHOOK_SHOPIFY
         ? crm_webhooks_shopify(call, in, err)
         : crm_webhooks_standard(call, in, err);

    if (rc != CRM_OK) {
        goto done;
    }

    if (yajl_gen_map_close(in->invalid) != yajl_gen_status_ok) {
        rc = crm_webhooks_nomem(err);
        goto done;
    }

    rc = crm_json_gen_finish(in->invalid, &invalid, &len);
    in->invalid = NULL;

    if (rc != CRM_OK) {
        return crm_webhooks_nomem(err);
    }

    in->row.invalid = crm_arena_strdup(&call->arena,
                                       (crm_str_t) { invalid, len });
    free(invalid);

    if (in->row.invalid == NULL) {
        return crm_webhooks_nomem(err);
    }

    call->input = in;

    return CRM_OK;

done:

    if (in->invalid != NULL) {
        yajl_gen_free(in->invalid);
    }

    return rc;
}


/* {"type": "...", "data": {"email", "phone", "shop_domain", "external_id"}} */
static crm_status_e
crm_webhooks_standard(crm_call_t *call, crm_webhook_in_t *in,
    crm_error_t *err)
{
    yajl_val      type, data;
    crm_status_e  rc;

    in->row.source_event_id = crm_arena_strdup(&call->arena,
                                  crm_call_header(call, "webhook-id"));
    if (in->row.source_event_id == NULL) {
        return crm_webhooks_nomem(err);
    }

    type = crm_webhooks_get(call->json, "type");

    if (!YAJL_IS_STRING(type)
        || crm_text_check(crm_str_c(type->u.string), "type", 1,
                          CRM_WEBHOOK_TYPE_MAX, 0, err) != CRM_OK)
    {
        return crm_error_set(err, CRM_E_INVALID, "type",
                             "must be a string of 1 to %d characters",
                             CRM_WEBHOOK_TYPE_MAX);
    }

    in->row.type = type->u.string;

    data = crm_webhooks_get(call->json, "data");

    if (data == NULL || YAJL_IS_NULL(data)) {
        return CRM_OK;
    }

    if (!YAJL_IS_OBJECT(data)) {
        return crm_error_set(err, CRM_E_INVALID, "data", "must be an object");
    }

    rc = crm_webhooks_ident_json(call, in, CRM_IDENT_SHOP,
                                 crm_webhooks_get(data, "shop_domain"));
    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_EMAIL,
                                     crm_webhooks_get(data, "email"));
    }

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_PHONE,
                                     crm_webhooks_get(data, "phone"));
    }

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_EXTERNAL,
                                     crm_webhooks_get(data, "external_id"));
    }

    return rc == CRM_OK ? CRM_OK : crm_webhooks_nomem(err);
}


/*
 * The topic and event id come in headers, the shop's domain too; the
 * body is the topic's REST resource (an order, a shop), whose customer
 * may be null
 */
static crm_status_e
crm_webhooks_shopify(crm_call_t *call, crm_webhook_in_t *in,
    crm_error_t *err)
{
    yajl_val      customer;
    crm_str_t     topic, id, shop;
    crm_status_e  rc;

    static const char *const  shop_keys[] = {
        "myshopify_domain", "domain", NULL
    };

    static const char *const  email_keys[] = {
        "email", "contact_email", NULL
    };

    topic = crm_call_header(call, "X-Shopify-Topic");

    if (topic.len == 0
        || crm_text_check(topic, "X-Shopify-Topic", 1, CRM_WEBHOOK_TYPE_MAX,
                          0, err) != CRM_OK)
    {
        return crm_error_set(err, CRM_E_INVALID, "X-Shopify-Topic",
                             "the header is required: the event's topic, "
                             "1 to %d characters", CRM_WEBHOOK_TYPE_MAX);
    }

    id = crm_call_header(call, "X-Shopify-Event-Id");
    if (id.len == 0) {
        id = crm_call_header(call, "X-Shopify-Webhook-Id");
    }

    if (id.len == 0
        || crm_text_check(id, "X-Shopify-Event-Id", 1, CRM_WEBHOOK_ID_MAX, 0,
                          err) != CRM_OK)
    {
        return crm_error_set(err, CRM_E_INVALID, "X-Shopify-Event-Id",
                             "X-Shopify-Event-Id or X-Shopify-Webhook-Id is "
                             "required: the event's id, 1 to %d characters",
                             CRM_WEBHOOK_ID_MAX);
    }

    in->row.type = crm_arena_strdup(&call->arena, topic);
    in->row.source_event_id = crm_arena_strdup(&call->arena, id);

    if (in->row.type == NULL || in->row.source_event_id == NULL) {
        return crm_webhooks_nomem(err);
    }

    customer = crm_webhooks_get(call->json, "customer");
    if (!YAJL_IS_OBJECT(customer)) {
        customer = NULL;
    }

    shop = crm_call_header(call, "X-Shopify-Shop-Domain");

    rc = shop.len > 0 ? crm_webhooks_ident(call, in, CRM_IDENT_SHOP, shop)
                      : CRM_OK;

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_SHOP,
                                     crm_webhooks_first(call->json,
                                                        shop_keys));
    }

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_EMAIL,
                                     crm_webhooks_first(call->json,
                                                        email_keys));
    }

    if (rc == CRM_OK && customer != NULL) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_EMAIL,
                                     crm_webhooks_get(customer, "email"));
    }

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_PHONE,
                                     crm_webhooks_get(call->json, "phone"));
    }

    if (rc == CRM_OK && customer != NULL) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_PHONE,
                                     crm_webhooks_get(customer, "phone"));
    }

    if (rc == CRM_OK) {
        rc = crm_webhooks_ident_json(call, in, CRM_IDENT_EXTERNAL,
                                     crm_webhooks_get(call->json, "id"));
    }

    if (rc != CRM_OK) {
        return crm_webhooks_nomem(err);
    }

    if (crm_str_eq(topic, "app/uninstalled")) {
        in->kind = CRM_WEBHOOK_UNINSTALL;

    } else if (crm_str_eq(topic, "orders/create")) {
        crm_webhooks_order(call, in);
    }

    return CRM_OK;
}


/*
 * An order that names a link (a click id or a ref, in its cart
 * attributes or its landing page's query) is a conversion.  What cannot
 * be paid is said in order_refused; the event is stored all the same.
 */
static void
crm_webhooks_order(crm_call_t *call, crm_webhook_in_t *in)
{
    char                 *order_id, amount[33];
    yajl_val              id, price, currency;
    crm_str_t             text;
    crm_error_t           err;
    const char           *refused;
    crm_conversion_in_t  *o;

    o = &in->order;

    refused = crm_webhooks_order_link(call, in);
    if (in->kind != CRM_WEBHOOK_ORDER) {
        return;
    }

    if (refused != NULL) {
        in->order_refused = refused;
        return;
    }

    id = crm_webhooks_get(call->json, "id");
    price = crm_webhooks_get(call->json, "total_price");
    currency = crm_webhooks_get(call->json, "currency");

    if (!crm_webhooks_text(id, &text) || text.len == 0 || text.len > 200) {
        in->order_refused = "the order has no id";
        return;
    }

    order_id = crm_arena_strdup(&call->arena, text);
    if (order_id == NULL) {
        in->order_refused = "out of memory";
        return;
    }

    o->order_id = order_id;

    if (!YAJL_IS_STRING(currency)
        || crm_currency_normalize(crm_str_c(currency->u.string), "currency",
                                  o->currency, &err) != CRM_OK)
    {
        in->order_refused = "the order's currency is not a currency code";
        return;
    }

    if (!crm_webhooks_text(price, &text) || text.len >= sizeof(amount)) {
        in->order_refused = "the order has no total_price";
        return;
    }

    memcpy(amount, text.data, text.len);
    amount[text.len] = '\0';

    if (crm_webhooks_amount(amount, o->currency, &o->amount_cents) != 0) {
        in->order_refused = "the order's total_price is not an amount of "
                            "its currency";
        return;
    }

    if (in->row.shop_domain != NULL) {
        snprintf(o->shop_domain, sizeof(o->shop_domain), "%s",
                 in->row.shop_domain);
    }
}


/*
 * The link an order names: sets in->kind when it names one at all, and
 * answers why it cannot be paid, or NULL
 */
static const char *
crm_webhooks_order_link(crm_call_t *call, crm_webhook_in_t *in)
{
    char                 click_id[CRM_WEBHOOK_REF_MAX + 1];
    char                 ref[CRM_WEBHOOK_REF_MAX + 1];
    const char          *refused;
    crm_conversion_in_t *o;

    o = &in->order;

    refused = crm_webhooks_order_ref(call->json, click_id, ref);

    if (refused == NULL && click_id[0] == '\0' && ref[0] == '\0') {
        return NULL;
    }

    in->kind = CRM_WEBHOOK_ORDER;

    if (refused != NULL) {
        return refused;
    }

    if (click_id[0] != '\0') {
        if (!crm_click_id_parse(&call->conf->link_key, click_id,
                                strlen(click_id), o->link_id, NULL))
        {
            return "click_id is not a click id of a tracking link";
        }

        o->click_id = crm_arena_strdup(&call->arena, crm_str_c(click_id));
        if (o->click_id == NULL) {
            return "out of memory";
        }
    }

    if (ref[0] != '\0') {
        if (!crm_link_id_valid(&call->conf->link_key, ref, strlen(ref))) {
            return "ref is not an affiliate link id";
        }

        if (o->link_id[0] != '\0' && strcmp(o->link_id, ref) != 0) {
            return "ref names another link than click_id";
        }

        memcpy(o->link_id, ref, CRM_LINK_ID_LEN + 1);
    }

    return NULL;
}


/*
 * click_id and ref from note_attributes ([{"name", "value"}]), else from
 * the landing_site's query; "" when absent
 */
static const char *
crm_webhooks_order_ref(yajl_val root, char *click_id, char *ref)
{
    int          found;
    size_t       i;
    yajl_val     notes, note, name, value, landing;
    crm_str_t    query;
    crm_error_t  err;
    const char  *q;

    click_id[0] = '\0';
    ref[0] = '\0';

    notes = crm_webhooks_get(root, "note_attributes");

    for (i = 0; YAJL_IS_ARRAY(notes) && i < notes->u.array.len; i++) {
        note = notes->u.array.values[i];
        name = crm_webhooks_get(note, "name");
        value = crm_webhooks_get(note, "value");

        if (!YAJL_IS_STRING(name) || !YAJL_IS_STRING(value)) {
            continue;
        }

        if (strcmp(name->u.string, "click_id") == 0
            || strcmp(name->u.string, "ref") == 0)
        {
            if (strlen(value->u.string) > CRM_WEBHOOK_REF_MAX) {
                return "a note attribute's click_id or ref is too long";
            }

            strcpy(name->u.string[0] == 'r' ? ref : click_id,
                   value->u.string);
        }
    }

    landing = crm_webhooks_get(root, "landing_site");

    if (!YAJL_IS_STRING(landing)) {
        return NULL;
    }

    q = strchr(landing->u.string, '?');
    if (q == NULL) {
        return NULL;
    }

    query = crm_str_c(q + 1);

    /* the fragment is not part of the query */
    for (i = 0; i < query.len; i++) {
        if (query.data[i] == '#') {
            query.len = i;
            break;
        }
    }

    if (click_id[0] == '\0'
        && crm_form_get(query, "click_id", click_id, CRM_WEBHOOK_REF_MAX + 1,
                        &found, &err) != CRM_OK)
    {
        return "the landing_site's click_id is not readable";
    }

    if (ref[0] == '\0'
        && crm_form_get(query, "ref", ref, CRM_WEBHOOK_REF_MAX + 1, &found,
                        &err) != CRM_OK)
    {
        return "the landing_site's ref is not readable";
    }

    return NULL;
}


/*
 * A decimal amount ("186.90") in minor units of currency: at most as
 * many decimals as it has (more only when zeros), nothing else
 */
static int
crm_webhooks_amount(const char *text, const char *currency, int64_t *cents)
{
    int          exp, i, decimals, fraction;
    size_t       k;
    int64_t      v;
    const char  *p;

    exp = 2;

    for (k = 0; crm_webhooks_exponent0[k] != NULL; k++) {
        if (strcmp(currency, crm_webhooks_exponent0[k]) == 0) {
            exp = 0;
        }
    }

    for (k = 0; crm_webhooks_exponent3[k] != NULL; k++) {
        if (strcmp(currency, crm_webhooks_exponent3[k]) == 0) {
            exp = 3;
        }
    }

    v = 0;
    decimals = -1;      /* digits after the point that count */
    fraction = 0;       /* all digits after the point */

    for (p = text; *p != '\0'; p++) {
        if (*p == '.' && decimals < 0 && p != text) {
            decimals = 0;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return -1;
        }

        if (decimals >= 0) {
            fraction++;

            if (decimals == exp) {
                if (*p != '0') {
                    return -1;
                }

                continue;
            }

            decimals++;
        }

        v = v * 10 + (*p - '0');

        if (v > CRM_WEBHOOK_AMOUNT_MAX) {
            return -1;
        }
    }

    /* nothing, or a point with no digit after it */
    if (p == text || (decimals >= 0 && fraction == 0)) {
        return -1;
    }

    for (i = decimals < 0 ? 0 : decimals; i < exp; i++) {
        v *= 10;
    }

    if (v > CRM_WEBHOOK_AMOUNT_MAX) {
        return -1;
    }

    *cents = v;

    return 0;
}


/*
 * An identifier as sent (raw): normalised into its slot when it is the
 * first valid one of its kind, else kept as invalid (the first of its
 * kind only); CRM_E_INTERNAL only when out of memory
 */
static crm_status_e
crm_webhooks_ident(crm_call_t *call, crm_webhook_in_t *in, crm_ident_e kind,
    crm_str_t raw)
{
    char          *buf, kept[CRM_WEBHOOK_RAW_MAX + 1];
    size_t         n;
    crm_error_t    err;
    const char   **slot, *name;
    crm_status_e   rc;

    switch (kind) {

    case CRM_IDENT_SHOP:
        slot = &in->row.shop_domain;
        name = "shop_domain";
        n = CRM_DOMAIN_MAX + 1;
        break;

    case CRM_IDENT_EMAIL:
        slot = &in->row.email;
        name = "email";
        n = CRM_EMAIL_MAX + 1;
        break;

    case CRM_IDENT_PHONE:
        slot = &in->row.phone;
        name = "phone";
        n = CRM_PHONE_MAX + 1;
        break;

    default:
        slot = &in->row.external_id;
        name = "external_id";
        n = CRM_WEBHOOK_EXTERNAL_MAX + 1;
        break;
    }

    if (*slot != NULL) {
        return CRM_OK;
    }

    buf = crm_arena_alloc(&call->arena, n);
    if (buf == NULL) {
        return CRM_E_INTERNAL;
    }

    switch (kind) {

    case CRM_IDENT_SHOP:
        rc = crm_domain_normalize(raw, name, buf, &err);
        break;

    case CRM_IDENT_EMAIL:
        rc = crm_email_normalize(raw, name, buf, &err);
        break;

    case CRM_IDENT_PHONE:
        rc = crm_phone_normalize(raw, name, buf, &err);
        break;

    default:
        /* characters are checked, and the bytes must fit too */
        rc = raw.len <= CRM_WEBHOOK_EXTERNAL_MAX
             ? crm_text_check(raw, name, 1, CRM_WEBHOOK_EXTERNAL_MAX, 0, &err)
             : CRM_E_INVALID;
        if (rc == CRM_OK) {
            memcpy(buf, raw.data, raw.len);
            buf[raw.len] = '\0';
        }

        break;
    }

    if (rc == CRM_OK) {
        *slot = buf;
        return CRM_OK;
    }

    if (in->invalid_seen & (1u << kind)) {
        return CRM_OK;
    }

    in->invalid_seen |= 1u << kind;

    /* kept as sent, cut, and only as printable ASCII */
    (void) crm_text_printable(raw, kept, sizeof(kept));

    return crm_json_gen_kv_str(in->invalid, name, kept) == 0
           ? CRM_OK : CRM_E_INTERNAL;
}


/* a JSON string or number is an identifier; anything else is not one */
static crm_status_e
crm_webhooks_ident_json(crm_call_t *call, crm_webhook_in_t *in,
    crm_ident_e kind, yajl_val v)
{
    crm_str_t  raw;

    if (!crm_webhooks_text(v, &raw)) {
        return CRM_OK;
    }

    return crm_webhooks_ident(call, in, kind, raw);
}


/* a string, or a number as it was written; 0 for anything else */
static int
crm_webhooks_text(yajl_val v, crm_str_t *out)
{
    if (YAJL_IS_STRING(v)) {
        *out = crm_str_c(v->u.string);
        return 1;
    }

    if (YAJL_IS_NUMBER(v) && v->u.number.r != NULL) {
        *out = crm_str_c(v->u.number.r);
        return 1;
    }

    return 0;
}


static yajl_val
crm_webhooks_get(yajl_val obj, const char *key)
{
    size_t  i;

    if (!YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    /* yajl keeps every copy of a repeated key: the first one counts */
    for (i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


/* the first of keys that obj has as a string or a number */
static yajl_val
crm_webhooks_first(yajl_val obj, const char *const *keys)
{
    yajl_val   v;
    crm_str_t  text;

    for ( ; *keys != NULL; keys++) {
        v = crm_webhooks_get(obj, *keys);

        if (crm_webhooks_text(v, &text) && text.len > 0) {
            return v;
        }
    }

    return NULL;
}


/*
 * One transaction: the lead the identifiers match and the event, once,
 * in one statement; an event that may act on the lead or pay an order
 * (the uninstall, an order naming a link) wraps it and the action in a
 * transaction of its own
 */
static crm_status_e
crm_webhooks_receive_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                  acts, created;
    char                 id[CRM_UUID_LEN + 1];
    crm_status_e         rc;
    crm_webhook_in_t    *in;
    crm_webhook_lead_t   lead;

    in = call->input;

    acts = in->kind == CRM_WEBHOOK_UNINSTALL
           || (in->kind == CRM_WEBHOOK_ORDER && in->order_refused == NULL);

    in->row.detail = in->order_refused;

    if (acts) {
        rc = crm_db_begin(db, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    rc = crm_store_webhook_insert(db, &in->row, id, &lead, &created, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!created) {
        crm_db_rollback(db);
        return crm_webhooks_receipt(call, id, "duplicate", lead.id, err);
    }

    if (acts) {
        rc = crm_webhooks_act(db, call, &lead, id, err);
        if (rc == CRM_OK) {
            rc = crm_db_commit(db, err);
        }

        if (rc != CRM_OK) {
            return rc;
        }
    }

    return crm_webhooks_receipt(call, id,
                                lead.id[0] != '\0' ? "attributed"
                                                    : "unmatched",
                                lead.id, err);
}


/*
 * What the stored event does: an order naming a link is a conversion (in
 * a savepoint, so that one the link cannot pay leaves the event stored
 * with the reason), an uninstall churns the shop's affiliate lead
 */
static crm_status_e
crm_webhooks_act(crm_db_t *db, crm_call_t *call,
    const crm_webhook_lead_t *lead, const char *id, crm_error_t *err)
{
    int                created, moved;
    crm_error_t        refusal;
    const char        *detail;
    crm_status_e       rc;
    crm_conversion_t   conv;
    crm_webhook_in_t  *in;

    in = call->input;

    if (in->kind == CRM_WEBHOOK_UNINSTALL) {
        /* the shop's own lead: not one its owner's email or phone names */
        if (lead->id[0] == '\0' || !lead->affiliate || !lead->by_shop) {
            return CRM_OK;
        }

        rc = crm_webhooks_churn(db, call->conf->pipeline, lead, &moved, err);
        if (rc != CRM_OK || !moved) {
            return rc;
        }

        return crm_store_webhook_outcome(db, id, "churned", NULL, NULL, err);
    }

    rc = crm_db_command(db, "SAVEPOINT crm_webhook_order", err);
    if (rc != CRM_OK) {
        return rc;
    }

    memset(&refusal, 0, sizeof(crm_error_t));

    rc = crm_callbacks_convert(db, &in->order, &conv, &created, &refusal);

    if (rc == CRM_OK) {
        return crm_store_webhook_outcome(db, id, "conversion", conv.id, NULL,
                                         err);
    }

    /*
     * a conflict (a wallet in another currency, a concurrent report of
     * the order that did not complete) is worth a retry: the whole event
     * is undone, so that the sender's next delivery is not a duplicate
     */
    if (rc != CRM_E_NOT_FOUND && rc != CRM_E_INVALID) {
        *err = refusal;
        return rc;
    }

    rc = crm_db_command(db, "ROLLBACK TO SAVEPOINT crm_webhook_order", err);
    if (rc != CRM_OK) {
        return rc;
    }

    detail = refusal.message[0] != '\0' ? refusal.message
                                        : "the order could not be recorded";

    return crm_store_webhook_outcome(db, id, NULL, NULL, detail, err);
}


/* the lead to the pipeline's churn substage, unless it is there */
static crm_status_e
crm_webhooks_churn(crm_db_t *db, const crm_pipeline_t *pipeline,
    const crm_webhook_lead_t *lead, int *moved, crm_error_t *err)
{
    crm_rows_t     rows;
    const char    *from_stage, *from_substage;
    crm_status_e   rc;

    *moved = 0;

    if (pipeline->churn == NULL
        || (strcmp(lead->stage, pipeline->churn_stage->name) == 0
            && strcmp(lead->substage, pipeline->churn->status) == 0))
    {
        return CRM_OK;
    }

    rc = crm_store_lead_move(db, lead->owner_id, lead->id, NULL,
                             pipeline->churn_stage, pipeline->churn, &rows,
                             &from_stage, &from_substage, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n > 0) {
        rc = crm_store_lead_event(db, lead->id, NULL, from_stage,
                                  from_substage, pipeline->churn_stage,
                                  pipeline->churn, err);
        *moved = rc == CRM_OK;
    }

    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_webhooks_receipt(crm_call_t *call, const char *id, const char *status,
    const char *lead_id, crm_error_t *err)
{
    yajl_gen  g;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_webhooks_nomem(err);
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "event_id", id) != 0
        || crm_json_gen_kv_str(g, "status", status) != 0
        || crm_json_gen_kv_str(g, "lead_id",
                               lead_id[0] != '\0' ? lead_id : NULL) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    call->outcome = status;

    return crm_call_reply_json(call, 202, g, err);
}


static crm_status_e
crm_webhooks_list_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e           rc;
    crm_webhooks_query_t  *q;

    q = crm_arena_alloc(&call->arena, sizeof(crm_webhooks_query_t));
    if (q == NULL) {
        return crm_webhooks_nomem(err);
    }

    memset(q, 0, sizeof(crm_webhooks_query_t));

    rc = crm_form_check_names(call->query, crm_webhooks_list_params, err);
    if (rc == CRM_OK) {
        rc = crm_call_query_text(call, "source", CRM_WEBHOOK_NAME_MAX,
                                 &q->filter.source, err);
    }

    if (rc == CRM_OK) {
        rc = crm_call_query_text(call, "status", 16, &q->filter.status, err);
    }

    if (rc == CRM_OK) {
        rc = crm_call_query_text(call, "type", CRM_WEBHOOK_TYPE_MAX,
                                 &q->filter.type, err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    if (q->filter.status != NULL
        && strcmp(q->filter.status, "attributed") != 0
        && strcmp(q->filter.status, "unmatched") != 0)
    {
        return crm_error_set(err, CRM_E_INVALID, "status",
                             "must be attributed or unmatched");
    }

    call->input = q;

    return crm_page_parse(call->query, CRM_PAGE_UUID, &q->page, err);
}


static crm_status_e
crm_webhooks_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_rows_t             rows;
    crm_status_e           rc;
    crm_webhooks_query_t  *q;

    q = call->input;

    rc = crm_store_webhooks_list(db, &q->filter, &q->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, q->page.limit,
                             crm_webhooks_item, err);
    crm_rows_free(&rows);

    return rc;
}


static crm_status_e
crm_webhooks_of_lead_parse(crm_call_t *call, crm_error_t *err)
{
    char                  *id;
    crm_status_e           rc;
    crm_webhooks_query_t  *q;

    q = crm_arena_alloc(&call->arena, sizeof(crm_webhooks_query_t));
    id = crm_arena_alloc(&call->arena, CRM_UUID_LEN + 1);
    if (q == NULL || id == NULL) {
        return crm_webhooks_nomem(err);
    }

    memset(q, 0, sizeof(crm_webhooks_query_t));

    /* not a UUID cannot name a lead: the same 404 as a missing one */
    if (!crm_uuid_canonical(call->match.params[0], id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such lead");
    }

    q->lead_id = id;
    call->input = q;

    rc = crm_form_check_names(call->query, crm_webhooks_page_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    return crm_page_parse(call->query, CRM_PAGE_UUID, &q->page, err);
}


static crm_status_e
crm_webhooks_of_lead_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_rows_t             rows;
    crm_status_e           rc;
    crm_webhooks_query_t  *q;

    q = call->input;

    rc = crm_leads_owned(db, call->caller->id, q->lead_id, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_webhooks_of_lead(db, q->lead_id, &q->page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, q->page.limit,
                             crm_webhooks_item, err);
    crm_rows_free(&rows);

    return rc;
}


static int
crm_webhooks_item(crm_call_t *call, yajl_gen g, const void *rows, size_t i,
    crm_cursor_t *at)
{
    int                 rc;
    yajl_val            invalid;
    crm_error_t         err;
    crm_webhook_row_t   ev;

    crm_webhook_row(rows, i, &ev);

    at->ts_us = ev.received_us;
    snprintf(at->id, sizeof(at->id), "%s", ev.id);

    if (crm_json_parse(ev.invalid, strlen(ev.invalid), &call->conf->json,
                       &invalid, &err) != CRM_OK)
    {
        return -1;
    }

    rc = (yajl_gen_map_open(g) != yajl_gen_status_ok
          || crm_json_gen_kv_str(g, "id", ev.id) != 0
          || crm_json_gen_kv_str(g, "source", ev.source) != 0
          || crm_json_gen_kv_str(g, "source_event_id", ev.source_event_id)
             != 0
          || crm_json_gen_kv_str(g, "type", ev.type) != 0
          || crm_json_gen_kv_str(g, "status", ev.status) != 0
          || crm_json_gen_kv_str(g, "lead_id", ev.lead_id) != 0
          || crm_json_gen_key(g, "identifiers") != 0
          || yajl_gen_map_open(g) != yajl_gen_status_ok
          || crm_json_gen_kv_str(g, "email", ev.email) != 0
          || crm_json_gen_kv_str(g, "phone", ev.phone) != 0
          || crm_json_gen_kv_str(g, "shop_domain", ev.shop_domain) != 0
          || crm_json_gen_kv_str(g, "external_id", ev.external_id) != 0
          || yajl_gen_map_close(g) != yajl_gen_status_ok
          || crm_json_gen_key(g, "invalid_identifiers") != 0
          || crm_json_gen_value(g, invalid) != 0
          || crm_json_gen_kv_str(g, "action", ev.action) != 0
          || crm_json_gen_kv_str(g, "conversion_id", ev.conversion_id) != 0
          || crm_json_gen_kv_str(g, "detail", ev.detail) != 0
          || crm_json_gen_kv_str(g, "received_at", ev.received_at) != 0
          || yajl_gen_map_close(g) != yajl_gen_status_ok) ? -1 : 0;

    yajl_tree_free(invalid);

    return rc;
}
