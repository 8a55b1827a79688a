/*
 * Commission wallets; see crm_wallets.h.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crm_form.h"
#include "crm_page.h"
#include "crm_store_audit.h"
#include "crm_store_idempotency.h"
#include "crm_store_wallets.h"
#include "crm_validate.h"
#include "crm_verify.h"
#include "crm_wallets.h"


#define CRM_PAYOUT_MAX        1000000000000LL     /* 10^12 minor units */
#define CRM_REFERENCE_MAX     200
#define CRM_IDEMPOTENCY_KEY_MAX  255
#define CRM_PAYOUT_PATH_SIZE  (sizeof("/admin/wallets//payouts")            \
                               + CRM_UUID_LEN)


typedef struct {
    crm_json_value_t  amount_cents;
    crm_json_value_t  reference;
} crm_payout_body_t;


typedef struct {
    char                account_id[CRM_UUID_LEN + 1];
    int64_t             amount_cents;
    const char         *reference;
    const char         *key;
    unsigned char       hash[CRM_REQUEST_HASH_LEN];
} crm_payout_t;


static crm_status_e crm_wallets_get_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_wallets_txs_parse(crm_call_t *call,
    crm_error_t *err);
static int crm_wallets_tx_render(yajl_gen g, const crm_wallet_tx_t *tx);
static int crm_wallets_tx_item(crm_call_t *call, yajl_gen g,
    const void *rows, size_t i, crm_cursor_t *at);
static crm_status_e crm_wallets_txs_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_wallets_payout_parse(crm_call_t *call,
    crm_error_t *err);
static int crm_wallets_request_hash(crm_str_t method, crm_str_t path,
    crm_str_t body, unsigned char *out);
static crm_status_e crm_wallets_payout_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_wallets_payout_replay(crm_db_t *db, crm_call_t *call,
    const crm_idempotency_t *idem, crm_error_t *err);
static crm_status_e crm_wallets_payout_execute(crm_db_t *db,
    crm_call_t *call, unsigned *status, char **body, size_t *len,
    crm_error_t *err);
static void crm_wallets_reply_stored(crm_call_t *call, unsigned status,
    char *body, size_t len);
static crm_status_e crm_wallets_nomem(crm_error_t *err);


#define CRM_PAYOUT_FIELD(field, k, ...)                                       \
    { .name = #field, .kind = k,                                              \
      .offset = offsetof(crm_payout_body_t, field), __VA_ARGS__ }

static const crm_json_field_t  crm_payout_fields[] = {
    CRM_PAYOUT_FIELD(amount_cents, CRM_JSON_INT, .required = 1,
                     .min_num = 1, .max_num = CRM_PAYOUT_MAX),
    CRM_PAYOUT_FIELD(reference, CRM_JSON_STRING, .required = 1,
                     .min_len = 1, .max_len = CRM_REFERENCE_MAX),
};

static const char *const  crm_wallets_page_params[] = {
    "limit", "cursor", NULL
};


const crm_endpoint_t  crm_wallets_get = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .run = crm_wallets_get_run
};

const crm_endpoint_t  crm_wallets_transactions = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_wallets_txs_parse,
    .run = crm_wallets_txs_run
};

const crm_endpoint_t  crm_wallets_payout = {
    .verifier = &crm_verify_bearer,
    .admin = 1,
    .body = CRM_BODY_JSON,
    .parse = crm_wallets_payout_parse,
    .run = crm_wallets_payout_run
};


static crm_status_e
crm_wallets_nomem(crm_error_t *err)
{
    return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
}


static crm_status_e
crm_wallets_get_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int            rendered;
    yajl_gen       g;
    crm_rows_t     rows;
    crm_wallet_t   w;
    crm_status_e   rc;

    rc = crm_store_wallet_get(db, call->caller->id, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* no commission yet: an empty wallet in the currency links earn in */
    memset(&w, 0, sizeof(crm_wallet_t));
    w.currency = call->conf->currency;

    if (rows.n > 0) {
        crm_wallet_row(&rows, 0, &w);
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_wallets_nomem(err);
    }

    rendered = yajl_gen_map_open(g) == yajl_gen_status_ok
               && crm_json_gen_kv_str(g, "currency", w.currency) == 0
               && crm_json_gen_kv_int(g, "balance_cents", w.balance_cents)
                  == 0
               && crm_json_gen_kv_int(g, "lifetime_earnings_cents",
                                      w.lifetime_earnings_cents) == 0
               && crm_json_gen_kv_str(g, "updated_at", w.updated_at) == 0
               && yajl_gen_map_close(g) == yajl_gen_status_ok;

    crm_rows_free(&rows);

    if (!rendered) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    return crm_call_reply_json(call, 200, g, err);
}


static crm_status_e
crm_wallets_txs_parse(crm_call_t *call, crm_error_t *err)
{
    crm_page_t    *page;
    crm_status_e   rc;

    rc = crm_form_check_names(call->query, crm_wallets_page_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    page = crm_arena_alloc(&call->arena, sizeof(crm_page_t));
    if (page == NULL) {
        return crm_wallets_nomem(err);
    }

    call->input = page;

    return crm_page_parse(call->query, CRM_PAGE_NUMERIC, page, err);
}


/* a ledger row as the API shows it; the id is a string, as in the audit */
static int
crm_wallets_tx_render(yajl_gen g, const crm_wallet_tx_t *tx)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "id", tx->id) != 0
        || crm_json_gen_kv_str(g, "kind", tx->kind) != 0
        || crm_json_gen_kv_int(g, "amount_cents", tx->amount_cents) != 0
        || crm_json_gen_kv_int(g, "balance_after_cents",
                               tx->balance_after_cents) != 0
        || crm_json_gen_kv_str(g, "reference", tx->reference) != 0
        || crm_json_gen_kv_str(g, "created_at", tx->created_at) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


static int
crm_wallets_tx_item(crm_call_t *call, yajl_gen g, const void *rows,
    size_t i, crm_cursor_t *at)
{
    crm_wallet_tx_t  tx;

    (void) call;

    crm_wallet_tx_row(rows, i, &tx);

    at->ts_us = tx.created_us;
    snprintf(at->id, sizeof(at->id), "%s", tx.id);

    return crm_wallets_tx_render(g, &tx);
}


static crm_status_e
crm_wallets_txs_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_page_t    *page;
    crm_rows_t     rows;
    crm_status_e   rc;

    page = call->input;

    rc = crm_store_wallet_txs(db, call->caller->id, page, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_call_reply_page(call, &rows, rows.n, page->limit,
                             crm_wallets_tx_item, err);
    crm_rows_free(&rows);

    return rc;
}


/* SHA-256 over "<method>\n<path>\n<body>"; 0 or -1 */
static int
crm_wallets_request_hash(crm_str_t method, crm_str_t path, crm_str_t body,
    unsigned char *out)
{
    int          ok;
    unsigned     n;
    EVP_MD_CTX  *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)
         && EVP_DigestUpdate(ctx, method.data, method.len)
         && EVP_DigestUpdate(ctx, "\n", 1)
         && EVP_DigestUpdate(ctx, path.data, path.len)
         && EVP_DigestUpdate(ctx, "\n", 1)
         && EVP_DigestUpdate(ctx, body.data, body.len)
         && EVP_DigestFinal_ex(ctx, out, &n)
         && n == CRM_REQUEST_HASH_LEN;

    EVP_MD_CTX_free(ctx);

    return ok ? 0 : -1;
}


static crm_status_e
crm_wallets_payout_parse(crm_call_t *call, crm_error_t *err)
{
    char                path[CRM_PAYOUT_PATH_SIZE];
    size_t              i;
    crm_str_t           key;
    crm_status_e        rc;
    crm_payout_t       *in;
    crm_payout_body_t   body;

    in = crm_arena_alloc(&call->arena, sizeof(crm_payout_t));
    if (in == NULL) {
        return crm_wallets_nomem(err);
    }

    /* one spelling of the account, for the query and the request hash */
    if (!crm_uuid_canonical(call->match.params[0], in->account_id)) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such wallet");
    }

    key = crm_call_header(call, "Idempotency-Key");

    if (key.len == 0) {
        return crm_error_set(err, CRM_E_INVALID, "Idempotency-Key",
                             "is required for payouts");
    }

    for (i = 0; i < key.len; i++) {
        if ((unsigned char) key.data[i] < 0x21
            || (unsigned char) key.data[i] > 0x7e)
        {
            break;
        }
    }

    if (i < key.len || key.len > CRM_IDEMPOTENCY_KEY_MAX) {
        return crm_error_set(err, CRM_E_INVALID, "Idempotency-Key",
                             "must be 1 to %d printable ASCII characters",
                             CRM_IDEMPOTENCY_KEY_MAX);
    }

    rc = crm_json_decode_table(call->json, crm_payout_fields, &body, err);
    if (rc != CRM_OK) {
        return rc;
    }

    in->amount_cents = body.amount_cents.num;
    in->key = key.data;

    in->reference = crm_arena_strdup(&call->arena, body.reference.str);
    if (in->reference == NULL) {
        return crm_wallets_nomem(err);
    }

    snprintf(path, sizeof(path), "/admin/wallets/%s/payouts",
             in->account_id);

    if (crm_wallets_request_hash(crm_str_lit("POST"), crm_str_c(path),
                                 call->body, in->hash)
        != 0)
    {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "SHA-256 failed");
    }

    call->input = in;

    return CRM_OK;
}


/* a stored answer becomes the reply as it is; body is malloc'd */
static void
crm_wallets_reply_stored(crm_call_t *call, unsigned status, char *body,
    size_t len)
{
    call->reply.status = status;
    call->reply.content_type = status >= 400 ? "application/problem+json"
                                             : "application/json";
    call->reply.body = body;
    call->reply.len = len;
}


static crm_status_e
crm_wallets_payout_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int                 claimed;
    char               *body;
    size_t              len;
    unsigned            status;
    crm_payout_t       *in;
    crm_status_e        rc;
    crm_idempotency_t   idem;

    in = call->input;

    idem.scope = call->caller->id;
    idem.key = in->key;
    idem.request_hash = in->hash;

    rc = crm_db_begin(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_idempotency_claim(db, &idem, &claimed, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (!claimed) {
        return crm_wallets_payout_replay(db, call, &idem, err);
    }

    rc = crm_wallets_payout_execute(db, call, &status, &body, &len, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_store_idempotency_finish(db, &idem, status, body, err);
    if (rc == CRM_OK) {
        rc = crm_db_commit(db, err);
    }

    if (rc != CRM_OK) {
        free(body);
        return rc;
    }

    crm_wallets_reply_stored(call, status, body, len);

    return CRM_OK;
}


/* the key was used before: its answer, if this is the same request */
static crm_status_e
crm_wallets_payout_replay(crm_db_t *db, crm_call_t *call,
    const crm_idempotency_t *idem, crm_error_t *err)
{
    char                      *body;
    size_t                     len;
    crm_rows_t                 rows;
    crm_status_e               rc;
    crm_idempotency_answer_t   ans;

    rc = crm_store_idempotency_answer(db, idem, &rows, &ans, err);

    crm_db_rollback(db);

    if (rc != CRM_OK) {
        return rc;
    }

    if (!ans.found || ans.status == 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_CONFLICT, "Idempotency-Key",
                             "a request with this key is in progress; "
                             "retry");
    }

    if (!ans.same) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_INVALID, "Idempotency-Key",
                             "was used with a different request");
    }

    len = strlen(ans.body);
    body = malloc(len + 1);
    if (body == NULL) {
        crm_rows_free(&rows);
        return crm_wallets_nomem(err);
    }

    memcpy(body, ans.body, len + 1);
    crm_rows_free(&rows);

    if (crm_call_add_header(call, "Idempotent-Replayed", "true") != CRM_OK) {
        free(body);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "too many headers");
    }

    crm_wallets_reply_stored(call, ans.status, body, len);

    return CRM_OK;
}


/*
 * The payout itself, inside the claim's transaction.  Its outcome, a
 * success or a refusal, is the answer to store: *status and the malloc'd
 * *body.  Only a failure to do the work at all (the database, memory) is
 * an error, which rolls everything back, the claim included.
 */
static crm_status_e
crm_wallets_payout_execute(crm_db_t *db, crm_call_t *call, unsigned *status,
    char **body, size_t *len, crm_error_t *err)
{
    int                exists;
    char               details[128];
    yajl_gen           g;
    crm_rows_t         rows;
    crm_error_t        refusal;
    crm_status_e       rc;
    crm_payout_t      *in;
    crm_wallet_tx_t    tx;
    crm_audit_entry_t  audit;

    in = call->input;

    rc = crm_store_wallet_payout(db, in->account_id, in->amount_cents,
                                 in->reference, call->caller->id, &rows,
                                 &exists, err);
    if (rc != CRM_OK) {
        return rc;
    }

    if (rows.n == 0) {
        crm_rows_free(&rows);

        if (exists) {
            crm_error_set(&refusal, CRM_E_CONFLICT, "amount_cents",
                          "is more than the wallet's balance");
        } else {
            crm_error_set(&refusal, CRM_E_NOT_FOUND, NULL,
                          "the account has no wallet");
        }

        *status = crm_error_http_status(refusal.code);

        /* kept for the key's repeats: no request's id */
        if (crm_problem_render(&refusal, NULL, body, len) != CRM_OK) {
            return crm_wallets_nomem(err);
        }

        return CRM_OK;
    }

    crm_wallet_tx_row(&rows, 0, &tx);

    snprintf(details, sizeof(details),
             "{\"transaction_id\": \"%s\", \"amount_cents\": %lld}", tx.id,
             (long long) in->amount_cents);

    audit.actor_id = call->caller->id;
    audit.action = "wallet.payout";
    audit.object_type = "wallet";
    audit.object_id = in->account_id;
    audit.details = details;

    rc = crm_store_audit(db, &audit, err);
    if (rc != CRM_OK) {
        crm_rows_free(&rows);
        return rc;
    }

    g = crm_json_gen_new();
    if (g == NULL) {
        crm_rows_free(&rows);
        return crm_wallets_nomem(err);
    }

    if (crm_wallets_tx_render(g, &tx) != 0) {
        crm_rows_free(&rows);
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    crm_rows_free(&rows);

    rc = crm_json_gen_finish(g, body, len);
    if (rc != CRM_OK) {
        return crm_error_set(err, rc, NULL, "could not render the reply");
    }

    *status = 201;

    return CRM_OK;
}
