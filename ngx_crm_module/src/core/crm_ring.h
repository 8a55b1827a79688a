/*
 * A byte ring of whole lines, shared by processes, drained in batches that
 * are freed only when their owner says they are stored.
 *
 * The ring holds lines ("...\n") back to back.  A line never wraps: when
 * it does not fit before the end of the buffer, or would end exactly
 * there, the rest of the lap is skipped (the "gap").  At most one gap lies
 * between the oldest and the newest byte, and every lap boundary that
 * lines cross has one.  Three offsets only grow:
 *
 *   head   the first byte still needed: every byte before it is stored
 *   claim  the first byte no batch has taken yet
 *   tail   where the next line goes
 *
 * A batch is a range of whole lines, in one of CRM_RING_BATCHES slots:
 *
 *   state     meaning                          transition
 *   -------   ------------------------------   ---------------------------
 *   FREE   -> CLAIMED  crm_ring_claim(): lines from the claim offset
 *   RETRY  -> CLAIMED  crm_ring_claim(): a failed batch, taken first
 *   CLAIMED-> DONE     crm_ring_finish(STORED)
 *   CLAIMED-> RETRY    crm_ring_finish(UNSTORED or REFUSED), or
 *                      crm_ring_recover(): its lease ran out, so whether
 *                      it was stored is unknown
 *   RETRY  -> DONE     crm_ring_finish(STORED) by the lapsed claim, before
 *                      anyone claimed the batch again
 *   DONE   -> FREE     crm_ring_finish(): head reaches it, bytes freed
 *
 * A claim holds a lease until a time on the caller's clock (one clock for
 * every process: CLOCK_MONOTONIC), which its owner renews while it works;
 * an owner that dies, or stops, loses the batch when the lease runs out.
 * Each claim has a token, never reused: a lapsed claim's finish or renewal
 * is ignored once the batch was claimed again, and an owner that reads
 * the batch's bytes in place checks, after reading and before committing,
 * that crm_ring_token() is still its own (then no byte it read was freed
 * and overwritten meanwhile: that needs another claim first).
 *
 * Batches finish in any order; head moves over them in ring order.  A
 * batch may be stored twice (its owner stored it, then lost the lease
 * before finishing it): the lines' consumer must make that harmless.
 * Nothing here locks or allocates: the caller holds its lock around every
 * call but crm_ring_token(), and the structure holds no pointers, so it
 * can live in shared memory mapped at different addresses.
 */

#ifndef CRM_RING_H
#define CRM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "crm_str.h"


#define CRM_RING_BATCHES  16


typedef enum {
    CRM_RING_FREE = 0,
    CRM_RING_CLAIMED,
    CRM_RING_DONE,
    CRM_RING_RETRY
} crm_ring_state_e;


/* how a claim ends; only REFUSED counts as the batch's own failure */
typedef enum {
    CRM_RING_STORED = 0,
    CRM_RING_UNSTORED,              /* not now: an outage, a full queue */
    CRM_RING_REFUSED                /* the consumer refused the lines */
} crm_ring_outcome_e;


typedef struct {
    uint64_t          start;
    uint64_t          end;
    uint64_t          token;        /* the last claim's */
    int64_t           lease_end;    /* ms: the claim lapses then */
    uint32_t          state;        /* crm_ring_state_e */
    uint32_t          failures;     /* REFUSED so far */
} crm_ring_batch_t;


typedef struct {
    size_t            size;         /* bytes of data */
    size_t            data_off;     /* data's offset from this struct */
    uint64_t          head;
    uint64_t          claim;
    uint64_t          tail;
    uint64_t          gap;          /* where the gap starts, or ~0 */
    uint64_t          tokens;       /* claims so far */
    crm_ring_batch_t  batches[CRM_RING_BATCHES];
} crm_ring_t;


/* data is size bytes at data_off from ring (after it, in the same block) */
void crm_ring_init(crm_ring_t *ring, size_t size, size_t data_off);

/* appends one line (len > 0, ending in "\n"); -1 when it does not fit */
int crm_ring_push(crm_ring_t *ring, const void *line, size_t len);

/*
 * Takes a batch, leased until lease_end: a RETRY batch first, else the
 * lines from the claim offset, as many as fit in max bytes (at least one
 * line, however long).  0 with *slot and *token, or -1 when there is
 * nothing to take or no free slot.
 */
int crm_ring_claim(crm_ring_t *ring, size_t max, int64_t lease_end,
    size_t *slot, uint64_t *token);

/* the batch's bytes as one or two spans of whole lines; their number */
size_t crm_ring_chunks(crm_ring_t *ring, size_t slot, crm_str_t *chunks);

/* extends the claim's lease, while it is still the batch's */
void crm_ring_renew(crm_ring_t *ring, size_t slot, uint64_t token,
    int64_t lease_end);

/*
 * How the claim's batch ended; a stored one frees what head can pass.
 * -1, and nothing changes, when the batch was claimed again since.
 */
int crm_ring_finish(crm_ring_t *ring, size_t slot, uint64_t token,
    crm_ring_outcome_e outcome);

/* the token of the batch's last claim; without the caller's lock */
uint64_t crm_ring_token(const crm_ring_t *ring, size_t slot);

/* CLAIMED batches whose lease ended by now become RETRY; how many */
size_t crm_ring_recover(crm_ring_t *ring, int64_t now);

/* bytes between head and tail, gap included */
size_t crm_ring_used(const crm_ring_t *ring);

/* 1 when nothing is waiting to be taken or stored */
int crm_ring_empty(const crm_ring_t *ring);

#endif /* CRM_RING_H */
