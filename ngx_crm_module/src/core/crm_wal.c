/*
 * Replica lag by WAL position; see crm_wal.h.
 */

#include <stddef.h>

#include "crm_wal.h"


static const char *crm_wal_hex(const char *p, uint32_t *out);


int
crm_wal_lsn_parse(const char *s, uint64_t *lsn)
{
    uint32_t     hi, lo;
    const char  *p;

    p = crm_wal_hex(s, &hi);

    if (p == NULL || *p != '/') {
        return -1;
    }

    p = crm_wal_hex(p + 1, &lo);

    if (p == NULL || *p != '\0') {
        return -1;
    }

    *lsn = ((uint64_t) hi << 32) | lo;

    return 0;
}


/* 1 to 8 hex digits: what follows them, or NULL */
static const char *
crm_wal_hex(const char *p, uint32_t *out)
{
    int       digits;
    uint32_t  v, d;

    v = 0;

    for (digits = 0; /* void */; digits++, p++) {
        if (*p >= '0' && *p <= '9') {
            d = (uint32_t) (*p - '0');

        } else if (*p >= 'A' && *p <= 'F') {
            d = (uint32_t) (*p - 'A' + 10);

        } else if (*p >= 'a' && *p <= 'f') {
            d = (uint32_t) (*p - 'a' + 10);

        } else {
            break;
        }

        if (digits == 8) {
            return NULL;
        }

        v = v << 4 | d;
    }

    if (digits == 0) {
        return NULL;
    }

    *out = v;

    return p;
}


void
crm_wal_record(crm_wal_history_t *h, uint64_t lsn, int64_t at_ms)
{
    unsigned  last;

    if (h->n > 0) {
        last = (h->next + CRM_WAL_SAMPLES - 1) % CRM_WAL_SAMPLES;

        if (lsn <= h->s[last].lsn) {
            return;
        }
    }

    h->s[h->next].lsn = lsn;
    h->s[h->next].at_ms = at_ms;
    h->next = (h->next + 1) % CRM_WAL_SAMPLES;

    if (h->n < CRM_WAL_SAMPLES) {
        h->n++;
    }
}


int64_t
crm_wal_lag(const crm_wal_history_t *h, uint64_t replay, int64_t now_ms)
{
    unsigned                 i;
    int64_t                  lag;
    const crm_wal_sample_t  *s;

    if (h->n == 0) {
        return -1;
    }

    /* oldest first: the first beyond replay is the earliest */
    for (i = 0; i < h->n; i++) {
        s = &h->s[(h->next + CRM_WAL_SAMPLES - h->n + i) % CRM_WAL_SAMPLES];

        if (s->lsn > replay) {
            lag = now_ms - s->at_ms;
            return lag > 0 ? lag : 0;
        }
    }

    return 0;
}
