/*
 * The CRM sync's work on one lease: one integration and one lead, its
 * waiting jobs in order.  Nothing of nginx here; the glue
 * (ngx_http_crm_sync.c) claims leases on the thread pool, performs the
 * requests this asks for with the event loop's outbound HTTP, and records
 * the result on the pool.
 *
 *   pool         crm_sync_leases()   claimed rows -> leases, credentials
 *                                     unsealed
 *   event loop   crm_sync_start()    the provider reads the credentials
 *                crm_sync_step()     next request, until done:
 *                                     one contact upsert with the lead's
 *                                     latest state, then each job's event
 *   pool         crm_sync_record()   each job's outcome, a batch of
 *                                     leases in one transaction
 *
 * Delivery rules: an answer of the provider that it took (2xx) makes a
 * job ok; one that refuses the data (other 4xx) makes it dead; a failure
 * (5xx, timeout, unreachable, 429, 503) schedules it again after
 * exponential backoff with full jitter (1 s doubling to 1 h), or no
 * earlier than the provider's Retry-After, and makes it dead after
 * max_attempts; refused credentials put the integration in error and
 * leave its jobs waiting.  The first job that does not go ok holds those
 * after it, so a lead's events arrive in order.
 */

#ifndef CRM_SYNC_H
#define CRM_SYNC_H

#include "crm_db.h"
#include "crm_provider.h"
#include "crm_seal.h"


typedef struct crm_sync_lease_s  crm_sync_lease_t;


typedef struct {
    const char      *id;                /* the job's */
    const char      *kind;              /* created, ..., conversion */
    unsigned         attempts;          /* before this one */
    crm_contact_t    contact;           /* the lead when it happened */
    crm_event_t      event;
    /* what became of it */
    const char      *outcome;           /* ok, failed, dead, held, wait */
    const char      *log_outcome;       /* failed or timeout */
    unsigned         http_status;
    int64_t          duration_ms;
    int64_t          next_ms;           /* failed: when again */
    char             error[256];
} crm_sync_job_t;


struct crm_sync_lease_s {
    crm_sync_lease_t     *next;
    crm_arena_t           arena;
    const char           *account_id;
    const char           *crm_type;
    const char           *lead_id;
    const char           *token;
    const char           *seq;
    crm_sync_job_t       *jobs;
    size_t                njobs;
    char                  fingerprint[25];  /* of these credentials: the
                                               record's nonce, new with
                                               every connect */
    char                 *credentials;  /* unsealed JSON, wiped when read */
    size_t                credentials_len;
    const char           *settings;     /* JSON */
    crm_provider_op_t     op;
    unsigned              phase;
    size_t                current;      /* the job whose event is sent */
    char                  refused[256]; /* "": the credentials were taken */
    int64_t               paused_ms;    /* 0: the integration goes on */
    crm_error_t           err;          /* a lease that could not start */
};


/*
 * The leases in claimed rows (crm_store_sync_claim()), credentials
 * unsealed with the keyring: a list, each lease in its own arena; a
 * lease whose credentials do not unseal is held (err set).  NULL with
 * err set when out of memory.
 */
crm_sync_lease_t *crm_sync_leases(const crm_rows_t *rows,
    const crm_seal_keyring_t *ring, crm_error_t *err);

/* frees a list of leases, wiping the credentials */
void crm_sync_leases_free(crm_sync_lease_t *leases);

/*
 * The provider reads the lease's credentials and settings; CRM_OK, or
 * the lease is settled (its jobs held) and crm_sync_step() says done
 */
crm_status_e crm_sync_start(crm_sync_lease_t *lease,
    const crm_provider_conf_t *conf);

/*
 * The next request (*req), res being the answer to the one before (NULL
 * the first time): CRM_OP_MORE, or CRM_OP_DONE when every job has its
 * outcome.  max_attempts makes a job dead; rnd is a random number for
 * the jitter.
 */
crm_op_step_e crm_sync_step(crm_sync_lease_t *lease,
    const crm_http_response_t *res, unsigned max_attempts,
    uint64_t rnd, const crm_http_request_t **req);

/*
 * The provider's session at the end of a lease, for the next lease of the
 * same credentials (malloc'd, NULL: none, or the credentials were
 * refused); the caller wipes and frees it
 */
char *crm_sync_session(crm_sync_lease_t *lease);

/* gives a started lease the session an earlier one kept */
void crm_sync_resume(crm_sync_lease_t *lease, const char *saved);

/*
 * Records a list of leases (through their next): every job's outcome,
 * each integration's and each lease's end, in one transaction
 */
crm_status_e crm_sync_record(crm_db_t *db, crm_sync_lease_t *leases,
    crm_error_t *err);

/* the Klaviyo metric name, Salesforce subject, Creatio title of a kind */
const char *crm_sync_event_name(const char *kind);

/* the backoff before attempt n + 1 (n >= 1) failed ones: full jitter */
int64_t crm_sync_backoff_ms(unsigned n, uint64_t rnd);

#endif /* CRM_SYNC_H */
