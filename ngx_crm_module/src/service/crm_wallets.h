/*
 * Commission wallets: the caller's balance and ledger, and payouts.
 *
 *   GET /wallet                                 balance, zeros before the
 *                                               first commission
 *   GET /wallet/transactions                    the ledger, newest first
 *   POST /admin/wallets/{account_id}/payouts    admin; Idempotency-Key
 *
 * A payout requires an Idempotency-Key (the caller's own namespace): the
 * first request with a key is executed and its answer stored with it, in
 * its transaction, whatever the outcome once the payout has started (201,
 * 404 for an account without a wallet, 409 for a balance too low).  A
 * repeat with the same method, path and body replays that answer byte
 * for byte with Idempotent-Replayed: true; a repeat with anything else is
 * refused (422).  A request refused before it starts (validation) is not
 * stored.
 */

#ifndef CRM_WALLETS_H
#define CRM_WALLETS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_wallets_get;
extern const crm_endpoint_t  crm_wallets_transactions;
extern const crm_endpoint_t  crm_wallets_payout;

#endif /* CRM_WALLETS_H */
