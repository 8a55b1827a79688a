/*
 * A streaming replica's lag measured by WAL positions, not by clocks: the
 * primary's probe records its position (pg_current_wal_lsn()) with the
 * time it read it, and a replica whose replay position is short of a
 * recorded one is as late as the earliest such record.  No privilege and
 * no clock agreement between the servers is needed, and a replica that is
 * connected but stalled falls behind like any other; the figure is low by
 * at most the time between two probes of the primary.
 */

#ifndef CRM_WAL_H
#define CRM_WAL_H

#include <stdint.h>


#define CRM_WAL_SAMPLES  64


typedef struct {
    uint64_t     lsn;
    int64_t      at_ms;             /* when the primary was first seen there */
} crm_wal_sample_t;

/* the primary's positions, each with the first time it was seen there */
typedef struct {
    crm_wal_sample_t  s[CRM_WAL_SAMPLES];   /* a ring, oldest at next - n */
    unsigned          n;
    unsigned          next;
} crm_wal_history_t;


/* a pg_lsn as PostgreSQL writes it ("16/B374D848"): 0, or -1 */
int crm_wal_lsn_parse(const char *s, uint64_t *lsn);

/*
 * The primary at lsn at at_ms: kept only when it moved beyond the last
 * position kept, whose time is the one that counts for every replica
 * short of it; the oldest of a full ring is dropped.
 */
void crm_wal_record(crm_wal_history_t *h, uint64_t lsn, int64_t at_ms);

/*
 * How late (ms) at now_ms a replica is that has replayed up to replay: 0
 * when no position kept is beyond it, else now_ms minus the time of the
 * earliest one that is (at least that much when even the oldest kept is
 * beyond it); -1 while nothing is kept (the primary not probed yet).
 */
int64_t crm_wal_lag(const crm_wal_history_t *h, uint64_t replay,
    int64_t now_ms);


#endif /* CRM_WAL_H */
