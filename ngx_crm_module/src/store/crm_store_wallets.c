/*
 * Commission wallets and their ledger.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_wallets.h"


#define CRM_WALLET_TX_COLS(t)                                                 \
    t "id, " t "kind, " t "amount_cents, " t "balance_after_cents, "          \
    t "reference, " CRM_SQL_RFC3339(t "created_at") ", "                      \
    CRM_SQL_EPOCH_US(t "created_at")

#define CRM_WALLET_TX_NCOLS  7


static const crm_stmt_t  crm_wallet_get = {
    "wallet_get",
    "SELECT currency, balance_cents, lifetime_earnings_cents, "
    CRM_SQL_RFC3339("updated_at") " FROM crm.wallets WHERE account_id = $1",
    1
};

/*
 * crm.credit() (schema/005-install.sql), which installs use too: the
 * upsert locks the wallet row; the ledger row takes the balance it left.
 * A wallet in another currency is locked but not changed, and nothing is
 * appended or counted: false.
 */
static const crm_stmt_t  crm_wallet_credit = {
    "wallet_credit",
    "SELECT crm.credit($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    9
};

/*
 * "balance_cents >= $2" is evaluated on the locked, latest row, so two
 * payouts can never both spend the same money.  The row always comes back:
 * the ledger columns are NULL when nothing was paid, and the last column
 * tells a missing wallet from a low balance.
 */
static const crm_stmt_t  crm_wallet_payout = {
    "wallet_payout",
    "WITH w AS (UPDATE crm.wallets SET"
    " balance_cents = balance_cents - $2::bigint, updated_at = now()"
    " WHERE account_id = $1 AND balance_cents >= $2::bigint"
    " RETURNING account_id, balance_cents),"
    " t AS (INSERT INTO crm.wallet_transactions (account_id, kind,"
    " amount_cents, balance_after_cents, reference, actor_id)"
    " SELECT account_id, 'payout', -$2::bigint, balance_cents, $3, $4::uuid"
    " FROM w RETURNING *)"
    " SELECT " CRM_WALLET_TX_COLS("t.") ", EXISTS (SELECT 1 FROM crm.wallets"
    " WHERE account_id = $1) FROM (SELECT 1) one LEFT JOIN t ON true",
    4
};

static const crm_stmt_t  crm_wallet_txs_first = {
    "wallet_txs_first",
    "SELECT " CRM_WALLET_TX_COLS("") " FROM crm.wallet_transactions"
    " WHERE account_id = $1 ORDER BY id DESC LIMIT $2",
    2
};

static const crm_stmt_t  crm_wallet_txs_next = {
    "wallet_txs_next",
    "SELECT " CRM_WALLET_TX_COLS("") " FROM crm.wallet_transactions"
    " WHERE account_id = $1 AND id < $3::bigint ORDER BY id DESC LIMIT $2",
    3
};


void
crm_wallet_row(const crm_rows_t *rows, size_t i, crm_wallet_t *out)
{
    out->currency = crm_rows_value(rows, i, 0);
    out->balance_cents = strtoll(crm_rows_value(rows, i, 1), NULL, 10);
    out->lifetime_earnings_cents = strtoll(crm_rows_value(rows, i, 2), NULL,
                                           10);
    out->updated_at = crm_rows_value(rows, i, 3);
}


void
crm_wallet_tx_row(const crm_rows_t *rows, size_t i, crm_wallet_tx_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->kind = crm_rows_value(rows, i, 1);
    out->amount_cents = strtoll(crm_rows_value(rows, i, 2), NULL, 10);
    out->balance_after_cents = strtoll(crm_rows_value(rows, i, 3), NULL, 10);
    out->reference = crm_rows_value(rows, i, 4);
    out->created_at = crm_rows_value(rows, i, 5);
    out->created_us = strtoll(crm_rows_value(rows, i, 6), NULL, 10);
}


crm_status_e
crm_store_wallet_get(crm_db_t *db, const char *account_id, crm_rows_t *out,
    crm_error_t *err)
{
    const char  *params[1];

    params[0] = account_id;

    return crm_db_query(db, &crm_wallet_get, params, out, err);
}


crm_status_e
crm_store_wallet_credit(crm_db_t *db, const crm_wallet_credit_t *in,
    int *credited, crm_error_t *err)
{
    char           amount[24], installs[16], conversions[16];
    crm_rows_t     rows;
    const char    *params[9];
    crm_status_e   rc;

    snprintf(amount, sizeof(amount), "%lld", (long long) in->amount_cents);
    snprintf(installs, sizeof(installs), "%d", in->installs);
    snprintf(conversions, sizeof(conversions), "%d", in->conversions);

    params[0] = in->account_id;
    params[1] = in->currency;
    params[2] = in->kind;
    params[3] = amount;
    params[4] = in->source_id;
    params[5] = in->reference;
    params[6] = in->link_id;
    params[7] = installs;
    params[8] = conversions;

    rc = crm_db_query(db, &crm_wallet_credit, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *credited = rows.n > 0 && crm_rows_value(&rows, 0, 0)[0] == 't';
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_wallet_payout(crm_db_t *db, const char *account_id,
    int64_t amount_cents, const char *reference, const char *actor_id,
    crm_rows_t *out, int *exists, crm_error_t *err)
{
    char           amount[24];
    const char    *params[4];
    crm_status_e   rc;

    snprintf(amount, sizeof(amount), "%lld", (long long) amount_cents);

    params[0] = account_id;
    params[1] = amount;
    params[2] = reference;
    params[3] = actor_id;

    rc = crm_db_query(db, &crm_wallet_payout, params, out, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *exists = out->n > 0
              && crm_rows_value(out, 0, CRM_WALLET_TX_NCOLS)[0] == 't';

    if (out->n > 0 && crm_rows_value(out, 0, 0) == NULL) {
        out->n = 0;
    }

    return CRM_OK;
}


crm_status_e
crm_store_wallet_txs(crm_db_t *db, const char *account_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         limit[16];
    const char  *params[3];

    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = account_id;
    params[1] = limit;
    params[2] = page->cursor.id;

    return crm_db_query(db, page->has_cursor ? &crm_wallet_txs_next
                                             : &crm_wallet_txs_first,
                        params, out, err);
}
