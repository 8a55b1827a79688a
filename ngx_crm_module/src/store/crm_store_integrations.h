/*
 * CRM integrations, their sync jobs' counts and the sync log in
 * PostgreSQL.
 */

#ifndef CRM_STORE_INTEGRATIONS_H
#define CRM_STORE_INTEGRATIONS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_page.h"


/* a row of the sync log to write; NULL members are SQL NULL */
typedef struct {
    const char  *account_id;
    const char  *crm_type;
    const char  *operation;
    const char  *entity;
    const char  *entity_id;
    const char  *outcome;               /* ok, refused, failed, timeout */
    unsigned     http_status;           /* 0: none */
    int64_t      duration_ms;
    unsigned     attempt;
    const char  *error;
} crm_sync_log_entry_t;


/* what connect stores: the sealed credentials and how to read them */
typedef struct {
    const char  *account_id;
    const char  *crm_type;
    const char  *key_id;
    const char  *sealed_hex;            /* nonce | ciphertext | tag */
    const char  *settings;              /* a JSON object */
    const char  *account;               /* a JSON object */
} crm_integration_new_t;


crm_status_e crm_store_sync_log(crm_db_t *db, const crm_sync_log_entry_t *e,
    crm_error_t *err);

/*
 * Stores a connection, replacing the account's credentials of that type;
 * *replaced is 1 when a connection (not a disconnected one) was there.
 * Row: crm_type, status, connected_at.
 */
crm_status_e crm_store_integration_connect(crm_db_t *db,
    const crm_integration_new_t *in, crm_rows_t *out, int *replaced,
    crm_error_t *err);

/*
 * The account's integrations that are not disconnected, by type.  Rows:
 * crm_type, status, connected_at, last_sync_at, last_error, then the
 * jobs' counts pending, ok, failed, dead.
 */
crm_status_e crm_store_integrations_list(crm_db_t *db,
    const char *account_id, const char *crm_type, crm_rows_t *out,
    crm_error_t *err);

/*
 * Destroys the sealed credentials and cancels pending jobs, in the
 * caller's transaction; *found is 0 when there was no connection
 */
crm_status_e crm_store_integration_disconnect(crm_db_t *db,
    const char *account_id, const char *crm_type, int *found,
    crm_error_t *err);

/* whether the account ever connected that type (the log is readable) */
crm_status_e crm_store_integration_known(crm_db_t *db,
    const char *account_id, const char *crm_type, int *known,
    crm_error_t *err);

/*
 * Up to page->limit + 1 rows of the sync log, newest first.  Rows: id,
 * operation, entity, entity_id, outcome, http_status, duration_ms,
 * attempt, error, created_at.
 */
crm_status_e crm_store_sync_log_page(crm_db_t *db, const char *account_id,
    const char *crm_type, const crm_page_t *page, crm_rows_t *out,
    crm_error_t *err);

#endif /* CRM_STORE_INTEGRATIONS_H */
