/*
 * The batch ring; see crm_ring.h.
 */

#include <string.h>

#include "crm_ring.h"


#define CRM_RING_NO_GAP  ((uint64_t) -1)


static unsigned char *crm_ring_data(const crm_ring_t *ring);
static uint64_t crm_ring_lap_end(const crm_ring_t *ring, uint64_t off);
static uint64_t crm_ring_skip(const crm_ring_t *ring, uint64_t off);
static uint64_t crm_ring_line_end(const crm_ring_t *ring, uint64_t start,
    uint64_t limit);
static void crm_ring_take(crm_ring_t *ring, crm_ring_batch_t *b,
    int64_t lease_end, uint64_t *token);


static unsigned char *
crm_ring_data(const crm_ring_t *ring)
{
    return (unsigned char *) ring + ring->data_off;
}


/* the offset where the lap holding off ends */
static uint64_t
crm_ring_lap_end(const crm_ring_t *ring, uint64_t off)
{
    return (off / ring->size + 1) * ring->size;
}


/* an offset at the gap's start is the next lap's first byte */
static uint64_t
crm_ring_skip(const crm_ring_t *ring, uint64_t off)
{
    return off == ring->gap ? crm_ring_lap_end(ring, off) : off;
}


void
crm_ring_init(crm_ring_t *ring, size_t size, size_t data_off)
{
    memset(ring, 0, sizeof(crm_ring_t));

    ring->size = size;
    ring->data_off = data_off;
    ring->gap = CRM_RING_NO_GAP;
}


int
crm_ring_push(crm_ring_t *ring, const void *line, size_t len)
{
    uint64_t  pos, gap;

    if (len == 0 || len >= ring->size) {
        return -1;
    }

    pos = ring->tail % ring->size;
    gap = pos + len >= ring->size ? ring->size - pos : 0;

    if (ring->tail + gap + len - ring->head > ring->size) {
        return -1;
    }

    if (gap) {
        ring->gap = ring->tail;
        ring->tail += gap;
        pos = 0;
    }

    memcpy(crm_ring_data(ring) + pos, line, len);
    ring->tail += len;

    return 0;
}


/*
 * The end of the last whole line in [start, limit), or start when there is
 * none: lines never cross the gap, so the search stays in the lap where
 * limit falls, or ends at the gap.
 */
static uint64_t
crm_ring_line_end(const crm_ring_t *ring, uint64_t start, uint64_t limit)
{
    uint64_t        lo, lap;
    unsigned char  *p, *nl;

    lo = start;

    if (ring->gap != CRM_RING_NO_GAP && ring->gap >= start
        && ring->gap < limit)
    {
        lap = crm_ring_lap_end(ring, ring->gap);

        if (limit <= lap) {
            return ring->gap;
        }

        lo = lap;
    }

    p = crm_ring_data(ring) + lo % ring->size;
    nl = memrchr(p, '\n', (size_t) (limit - lo));

    if (nl == NULL) {
        return lo == start ? start : ring->gap;
    }

    return lo + (uint64_t) (nl - p) + 1;
}


/* a new claim of batch b; the token is published before the bytes move */
static void
crm_ring_take(crm_ring_t *ring, crm_ring_batch_t *b, int64_t lease_end,
    uint64_t *token)
{
    *token = ++ring->tokens;

    __atomic_store_n(&b->token, *token, __ATOMIC_RELEASE);

    b->lease_end = lease_end;
    b->state = CRM_RING_CLAIMED;
}


int
crm_ring_claim(crm_ring_t *ring, size_t max, int64_t lease_end,
    size_t *slot, uint64_t *token)
{
    size_t             i, free_slot;
    uint64_t           start, end;
    unsigned char     *p, *nl;
    crm_ring_batch_t  *b;

    free_slot = CRM_RING_BATCHES;

    for (i = 0; i < CRM_RING_BATCHES; i++) {
        b = &ring->batches[i];

        if (b->state == CRM_RING_RETRY) {
            crm_ring_take(ring, b, lease_end, token);
            *slot = i;
            return 0;
        }

        if (b->state == CRM_RING_FREE && free_slot == CRM_RING_BATCHES) {
            free_slot = i;
        }
    }

    ring->claim = crm_ring_skip(ring, ring->claim);

    if (free_slot == CRM_RING_BATCHES || ring->claim == ring->tail) {
        return -1;
    }

    start = ring->claim;
    end = ring->tail;

    if (end - start > max) {
        end = crm_ring_line_end(ring, start, start + max);

        /* a first line longer than max still goes, alone */
        if (end == start) {
            p = crm_ring_data(ring) + start % ring->size;
            nl = memchr(p, '\n', (size_t) (ring->tail - start));
            end = start + (uint64_t) (nl - p) + 1;
        }
    }

    b = &ring->batches[free_slot];
    b->start = start;
    b->end = end;
    b->failures = 0;
    crm_ring_take(ring, b, lease_end, token);

    ring->claim = end;
    *slot = free_slot;

    return 0;
}


size_t
crm_ring_chunks(crm_ring_t *ring, size_t slot, crm_str_t *chunks)
{
    uint64_t           lap;
    unsigned char     *data;
    crm_ring_batch_t  *b;

    b = &ring->batches[slot];
    data = crm_ring_data(ring);

    chunks[0].data = (const char *) data + b->start % ring->size;

    if (ring->gap != CRM_RING_NO_GAP && ring->gap >= b->start
        && ring->gap < b->end)
    {
        lap = crm_ring_lap_end(ring, ring->gap);

        chunks[0].len = (size_t) (ring->gap - b->start);
        chunks[1].data = (const char *) data;
        chunks[1].len = (size_t) (b->end - lap);

        return 2;
    }

    chunks[0].len = (size_t) (b->end - b->start);

    return 1;
}


void
crm_ring_renew(crm_ring_t *ring, size_t slot, uint64_t token,
    int64_t lease_end)
{
    crm_ring_batch_t  *b;

    b = &ring->batches[slot];

    if (b->token == token && b->state == CRM_RING_CLAIMED) {
        b->lease_end = lease_end;
    }
}


uint64_t
crm_ring_token(const crm_ring_t *ring, size_t slot)
{
    return __atomic_load_n(&ring->batches[slot].token, __ATOMIC_ACQUIRE);
}


int
crm_ring_finish(crm_ring_t *ring, size_t slot, uint64_t token,
    crm_ring_outcome_e outcome)
{
    size_t             i;
    int                moved;
    crm_ring_batch_t  *b;

    b = &ring->batches[slot];

    if (b->token != token
        || (b->state != CRM_RING_CLAIMED && b->state != CRM_RING_RETRY))
    {
        return -1;
    }

    if (outcome != CRM_RING_STORED) {
        b->state = CRM_RING_RETRY;
        b->failures += outcome == CRM_RING_REFUSED;
        return 0;
    }

    b->state = CRM_RING_DONE;

    do {
        moved = 0;
        ring->head = crm_ring_skip(ring, ring->head);

        for (i = 0; i < CRM_RING_BATCHES; i++) {
            b = &ring->batches[i];

            if (b->state == CRM_RING_DONE && b->start == ring->head) {
                b->state = CRM_RING_FREE;
                ring->head = b->end;
                moved = 1;
            }
        }

    } while (moved);

    /* the claim may sit where the gap begins: it moves on first */
    ring->claim = crm_ring_skip(ring, ring->claim);

    if (ring->gap != CRM_RING_NO_GAP && ring->head > ring->gap) {
        ring->gap = CRM_RING_NO_GAP;
    }

    return 0;
}


size_t
crm_ring_recover(crm_ring_t *ring, int64_t now)
{
    size_t             i, n;
    crm_ring_batch_t  *b;

    n = 0;

    for (i = 0; i < CRM_RING_BATCHES; i++) {
        b = &ring->batches[i];

        if (b->state == CRM_RING_CLAIMED && b->lease_end <= now) {
            b->state = CRM_RING_RETRY;
            n++;
        }
    }

    return n;
}


size_t
crm_ring_used(const crm_ring_t *ring)
{
    return (size_t) (ring->tail - ring->head);
}


int
crm_ring_empty(const crm_ring_t *ring)
{
    return ring->head == ring->tail;
}
