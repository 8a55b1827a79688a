/*
 * Commission wallets and their append-only ledger in PostgreSQL.
 *
 * A balance changes only in the statement that appends its ledger row,
 * from the row it has just locked and changed, so the balance always
 * equals the sum of the ledger and balance_after_cents is exact even
 * under concurrent credits and payouts.  The schema refuses a balance
 * below zero and any update or delete of a ledger row.
 */

#ifndef CRM_STORE_WALLETS_H
#define CRM_STORE_WALLETS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_page.h"


typedef struct {
    const char  *currency;
    int64_t      balance_cents;
    int64_t      lifetime_earnings_cents;
    const char  *updated_at;            /* RFC 3339, UTC */
} crm_wallet_t;


/* one ledger row */
typedef struct {
    const char  *id;                    /* the identity, in decimal */
    const char  *kind;
    int64_t      amount_cents;
    int64_t      balance_after_cents;
    const char  *reference;
    const char  *created_at;
    int64_t      created_us;
} crm_wallet_tx_t;


/* a commission credited to the owner of a link, and counted on the link */
typedef struct {
    const char  *account_id;
    const char  *currency;              /* the link's */
    const char  *kind;                  /* "commission_install", ... */
    int64_t      amount_cents;          /* > 0 */
    const char  *source_id;             /* the attribution or conversion */
    const char  *reference;             /* cut to 200 characters */
    const char  *link_id;
    int          installs;              /* what the link's counters add */
    int          conversions;
} crm_wallet_credit_t;


void crm_wallet_row(const crm_rows_t *rows, size_t i, crm_wallet_t *out);
void crm_wallet_tx_row(const crm_rows_t *rows, size_t i,
    crm_wallet_tx_t *out);

/* the account's wallet; rows->n is 0 when it has none yet */
crm_status_e crm_store_wallet_get(crm_db_t *db, const char *account_id,
    crm_rows_t *out, crm_error_t *err);

/*
 * Credits a commission: creates the wallet in in->currency with the first
 * one, adds to the balance and the lifetime earnings, appends the ledger
 * row, and adds to the link's counters, in one statement: the wallet row
 * and the counters row are every install's hot rows, locked from here to
 * the commit, so this is the transaction's last statement.  *credited is
 * 0, and the caller must roll back, when the wallet exists in another
 * currency.
 */
crm_status_e crm_store_wallet_credit(crm_db_t *db,
    const crm_wallet_credit_t *in, int *credited, crm_error_t *err);

/*
 * Pays amount_cents out of a wallet and appends the ledger row (one row
 * in out, read with crm_wallet_tx_row(), when paid).  *exists is 0 when
 * the account has no wallet; with a wallet and rows->n 0, the balance is
 * too low, and nothing is written.
 */
crm_status_e crm_store_wallet_payout(crm_db_t *db, const char *account_id,
    int64_t amount_cents, const char *reference, const char *actor_id,
    crm_rows_t *out, int *exists, crm_error_t *err);

/*
 * Up to page->limit + 1 ledger rows of the account, newest first, after
 * the cursor (whose id is the identity, numeric).
 */
crm_status_e crm_store_wallet_txs(crm_db_t *db, const char *account_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err);

#endif /* CRM_STORE_WALLETS_H */
