/*
 * Stored answers to requests sent with an Idempotency-Key.
 *
 * The first request claims (scope, key) with a placeholder row in its own
 * transaction and replaces it with its answer before it commits.  A
 * repeat's claim waits on that row until the first commits, then finds
 * the stored answer; if the first rolled back, the repeat's claim
 * succeeds and it runs as the first.  So a key is executed at most once
 * and every repeat sees a final answer, never the placeholder.
 */

#ifndef CRM_STORE_IDEMPOTENCY_H
#define CRM_STORE_IDEMPOTENCY_H

#include "crm_db.h"


#define CRM_REQUEST_HASH_LEN  32            /* SHA-256 */


typedef struct {
    const char           *scope;            /* the caller */
    const char           *key;
    const unsigned char  *request_hash;     /* CRM_REQUEST_HASH_LEN bytes */
} crm_idempotency_t;


/* the stored answer of a used key */
typedef struct {
    unsigned     found:1;                   /* 0: pruned meanwhile */
    unsigned     same:1;                    /* the same request hash */
    unsigned     status;                    /* 0 while in progress */
    const char  *body;                      /* points into the rows */
} crm_idempotency_answer_t;


/* *claimed is 0 when the key was used before */
crm_status_e crm_store_idempotency_claim(crm_db_t *db,
    const crm_idempotency_t *idem, int *claimed, crm_error_t *err);

/* reads the answer into out; its body lives until crm_rows_free(rows) */
crm_status_e crm_store_idempotency_answer(crm_db_t *db,
    const crm_idempotency_t *idem, crm_rows_t *rows,
    crm_idempotency_answer_t *out, crm_error_t *err);

/* stores the answer of a claimed key, in the claim's transaction */
crm_status_e crm_store_idempotency_finish(crm_db_t *db,
    const crm_idempotency_t *idem, unsigned status, const char *body,
    crm_error_t *err);

#endif /* CRM_STORE_IDEMPOTENCY_H */
