/*
 * The CRM sync queue in PostgreSQL (schema/008-sync.sql): claiming what is
 * due, recording what became of it, and putting dead jobs back.
 */

#ifndef CRM_STORE_SYNC_H
#define CRM_STORE_SYNC_H

#include <stdint.h>

#include "crm_db.h"


/* the columns of a claimed job's row */
enum {
    CRM_SYNC_COL_ACCOUNT = 0,
    CRM_SYNC_COL_TYPE,
    CRM_SYNC_COL_LEAD,
    CRM_SYNC_COL_TOKEN,         /* the lease's */
    CRM_SYNC_COL_SEQ,
    CRM_SYNC_COL_JOB,
    CRM_SYNC_COL_EVENT_ID,
    CRM_SYNC_COL_EVENT,
    CRM_SYNC_COL_CONTACT,       /* JSON */
    CRM_SYNC_COL_VALUE,         /* NULL: none */
    CRM_SYNC_COL_CURRENCY,
    CRM_SYNC_COL_EVENT_AT,      /* RFC 3339, UTC, to the second */
    CRM_SYNC_COL_ATTEMPTS,
    CRM_SYNC_COL_KEY_ID,
    CRM_SYNC_COL_SEALED,        /* hex */
    CRM_SYNC_COL_SETTINGS       /* JSON */
};


/*
 * Leases up to max_leads due queue rows (of connected integrations not
 * paused, with fewer than cap leases held) for lease_ms, and answers
 * their first jobs (at most max_jobs a lead), by integration and lead,
 * oldest first, with the integration's sealed credentials
 */
crm_status_e crm_store_sync_claim(crm_db_t *db, unsigned max_leads,
    unsigned max_jobs, unsigned cap, int64_t lease_ms, crm_rows_t *out,
    crm_error_t *err);

/* records what became of a lease's jobs: see crm.sync_finish() */
crm_status_e crm_store_sync_finish(crm_db_t *db, const char *account_id,
    const char *crm_type, const char *lead_id, const char *token,
    const char *seq, const char *done, crm_error_t *err);

/* puts the integration's dead jobs back in the queue, in the caller's
   transaction */
crm_status_e crm_store_sync_retry(crm_db_t *db, const char *account_id,
    const char *crm_type, int64_t *requeued, crm_error_t *err);

/* the queue's depth and the age of its oldest due row, in seconds */
crm_status_e crm_store_sync_depth(crm_db_t *db, int64_t *depth,
    int64_t *oldest_s, crm_error_t *err);

#endif /* CRM_STORE_SYNC_H */
