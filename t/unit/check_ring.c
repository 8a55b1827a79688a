/*
 * crm_ring: a model check.  Random pushes of lines of random lengths,
 * claims of random sizes with random leases, batches finished in random
 * order, failed, renewed, and lapsed (their owner stopped, after storing
 * or before), over rings of several sizes; then everything drains.  Every
 * pushed line must be stored, exactly once unless its batch was stored by
 * an owner that then lost its lease, and every batch must be whole lines.
 * An owner whose batch was claimed again must find out (its token) and
 * store nothing, as the click flush checks before it commits.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_ring.h"


#define CHECK_RING_LINES   100000
#define CHECK_RING_FLIGHT  (2 * CRM_RING_BATCHES)
#define CHECK_RING_LEASE   64


typedef struct {
    size_t         slot;
    uint64_t       token;
} check_ring_claim_t;


typedef struct {
    crm_ring_t    *ring;
    unsigned      *stored;          /* per line number: times stored */
    unsigned char *twice;           /* may be stored twice */
    size_t         pushed;
    uint64_t       seed;
} check_ring_t;


static Suite *check_ring_suite(void);
static uint64_t check_ring_rand(check_ring_t *m);
static void check_ring_store(check_ring_t *m, size_t slot, int dup_ok);
static void check_ring_end(check_ring_t *m, check_ring_claim_t *c,
    crm_ring_outcome_e outcome);
static void check_ring_run(size_t size, uint64_t seed);


static uint64_t
check_ring_rand(check_ring_t *m)
{
    m->seed ^= m->seed << 13;
    m->seed ^= m->seed >> 7;
    m->seed ^= m->seed << 17;

    return m->seed;
}


/* the batch's lines, checked whole, counted as stored */
static void
check_ring_store(check_ring_t *m, size_t slot, int dup_ok)
{
    size_t       i, k, n, line;
    crm_str_t    chunks[2];
    const char  *p, *end, *nl;

    n = crm_ring_chunks(m->ring, slot, chunks);

    for (i = 0; i < n; i++) {
        ck_assert_uint_gt(chunks[i].len, 0);
        ck_assert_int_eq(chunks[i].data[chunks[i].len - 1], '\n');

        p = chunks[i].data;
        end = p + chunks[i].len;

        while (p < end) {
            nl = memchr(p, '\n', (size_t) (end - p));
            ck_assert_ptr_nonnull(nl);

            line = 0;

            for (k = 0; p + k < nl && p[k] != ':'; k++) {
                ck_assert(p[k] >= '0' && p[k] <= '9');
                line = line * 10 + (size_t) (p[k] - '0');
            }

            ck_assert_uint_lt(line, m->pushed);

            m->stored[line]++;

            if (dup_ok) {
                m->twice[line] = 1;
            }

            p = nl + 1;
        }
    }
}


/*
 * A claim ends: stored (the lines are read, as the flush reads them in
 * place, then the token says whether the read was good), or not.  A
 * claim taken again since must be refused.
 */
static void
check_ring_end(check_ring_t *m, check_ring_claim_t *c,
    crm_ring_outcome_e outcome)
{
    int  ours;

    ours = crm_ring_token(m->ring, c->slot) == c->token;

    if (outcome == CRM_RING_STORED && ours) {
        check_ring_store(m, c->slot, 0);
    }

    ck_assert_int_eq(crm_ring_finish(m->ring, c->slot, c->token, outcome),
                     ours ? 0 : -1);
}


static void
check_ring_run(size_t size, uint64_t seed)
{
    char                line[256];
    size_t              n, len, slot, nflight, pick;
    int64_t             now;
    uint64_t            token;
    check_ring_t        model, *m;
    check_ring_claim_t  flight[CHECK_RING_FLIGHT], *c;

    m = &model;
    memset(m, 0, sizeof(check_ring_t));

    m->ring = malloc(sizeof(crm_ring_t) + size);
    m->stored = calloc(CHECK_RING_LINES, sizeof(unsigned));
    m->twice = calloc(CHECK_RING_LINES, 1);
    m->seed = seed;

    ck_assert_ptr_nonnull(m->ring);
    ck_assert_ptr_nonnull(m->stored);
    ck_assert_ptr_nonnull(m->twice);

    crm_ring_init(m->ring, size, sizeof(crm_ring_t));

    nflight = 0;
    now = 0;

    while (m->pushed < CHECK_RING_LINES) {

        now++;

        /* every worker's timer: claims whose lease ran out are retried */
        (void) crm_ring_recover(m->ring, now);

        switch (check_ring_rand(m) % 10) {

        case 0:
        case 1:
        case 2:
        case 3:
            n = (size_t) snprintf(line, sizeof(line), "%zu:", m->pushed);
            len = n + 1 + check_ring_rand(m) % (size / 4 < 200
                                                ? size / 4 : 200);

            memset(line + n, 'x', len - n - 1);
            line[len - 1] = '\n';

            if (crm_ring_push(m->ring, line, len) == 0) {
                m->pushed++;
            }

            break;

        case 4:
        case 5:
            if (nflight < CHECK_RING_FLIGHT
                && crm_ring_claim(m->ring, 1 + check_ring_rand(m) % size,
                                  now + 1
                                  + (int64_t) (check_ring_rand(m)
                                               % CHECK_RING_LEASE),
                                  &slot, &token)
                   == 0)
            {
                flight[nflight].slot = slot;
                flight[nflight].token = token;
                nflight++;
            }

            break;

        case 6:
        case 7:
            if (nflight == 0) {
                break;
            }

            pick = check_ring_rand(m) % nflight;

            check_ring_end(m, &flight[pick],
                           check_ring_rand(m) % 5 == 0
                           ? (check_ring_rand(m) % 2 ? CRM_RING_UNSTORED
                                                     : CRM_RING_REFUSED)
                           : CRM_RING_STORED);

            flight[pick] = flight[--nflight];

            break;

        case 8:
            /* a live owner renews; a lapsed one's renewal does nothing */
            if (nflight > 0) {
                c = &flight[check_ring_rand(m) % nflight];
                crm_ring_renew(m->ring, c->slot, c->token,
                               now + CHECK_RING_LEASE);
            }

            break;

        default:
            /*
             * an owner stops after it stored its batch, or before: the
             * lease runs out, the batch is retried, and the owner may
             * come back later to finish it
             */
            if (nflight == 0) {
                break;
            }

            c = &flight[check_ring_rand(m) % nflight];

            if (crm_ring_token(m->ring, c->slot) == c->token
                && check_ring_rand(m) % 2)
            {
                check_ring_store(m, c->slot, 1);
            }

            now += CHECK_RING_LEASE + 1;

            break;
        }
    }

    while (nflight > 0) {
        check_ring_end(m, &flight[--nflight], CRM_RING_STORED);
    }

    (void) crm_ring_recover(m->ring, now + CHECK_RING_LEASE + 1);

    while (crm_ring_claim(m->ring, size, now, &slot, &token) == 0) {
        check_ring_store(m, slot, 0);
        ck_assert_int_eq(crm_ring_finish(m->ring, slot, token,
                                         CRM_RING_STORED), 0);
    }

    ck_assert(crm_ring_empty(m->ring));
    ck_assert_uint_eq(crm_ring_used(m->ring), 0);

    for (n = 0; n < m->pushed; n++) {
        ck_assert_msg(m->stored[n] >= 1, "line %zu lost (ring %zu)", n,
                      size);
        ck_assert_msg(m->stored[n] == 1 || m->twice[n],
                      "line %zu stored %u times (ring %zu)", n, m->stored[n],
                      size);
    }

    free(m->ring);
    free(m->stored);
    free(m->twice);
}


START_TEST(test_ring_model)
{
    static const size_t  sizes[] = { 64, 97, 256, 1000, 4096, 65536 };

    check_ring_run(sizes[_i % 6], 0x9e3779b97f4a7c15ULL + (uint64_t) _i);
}
END_TEST


/* a line that would end exactly at the end of the buffer starts a gap */
START_TEST(test_ring_exact_end)
{
    char          buf[sizeof(crm_ring_t) + 16];
    size_t        slot;
    uint64_t      token;
    crm_str_t     chunks[2];
    crm_ring_t   *ring;

    ring = (crm_ring_t *) buf;
    crm_ring_init(ring, 16, sizeof(crm_ring_t));

    ck_assert_int_eq(crm_ring_push(ring, "aaaaaaaaaaa\n", 12), 0);
    ck_assert_int_eq(crm_ring_claim(ring, 100, 10, &slot, &token), 0);
    crm_ring_finish(ring, slot, token, CRM_RING_STORED);

    /* 4 bytes left: "bbb\n" would end at the end, so it goes to the start */
    ck_assert_int_eq(crm_ring_push(ring, "bbb\n", 4), 0);
    ck_assert_int_eq(crm_ring_claim(ring, 100, 10, &slot, &token), 0);
    ck_assert_uint_eq(crm_ring_chunks(ring, slot, chunks), 1);
    ck_assert_uint_eq(chunks[0].len, 4);
    ck_assert(memcmp(chunks[0].data, "bbb\n", 4) == 0);
    ck_assert_ptr_eq(chunks[0].data, buf + sizeof(crm_ring_t));
    crm_ring_finish(ring, slot, token, CRM_RING_STORED);

    ck_assert(crm_ring_empty(ring));
}
END_TEST


/* full is full; a line as long as the ring never fits */
START_TEST(test_ring_full)
{
    char          buf[sizeof(crm_ring_t) + 16];
    size_t        slot;
    uint64_t      token;
    crm_ring_t   *ring;

    ring = (crm_ring_t *) buf;
    crm_ring_init(ring, 16, sizeof(crm_ring_t));

    ck_assert_int_eq(crm_ring_push(ring, "0123456789abcdef", 16), -1);
    ck_assert_int_eq(crm_ring_push(ring, "aaaaaa\n", 7), 0);
    ck_assert_int_eq(crm_ring_push(ring, "bbbbbb\n", 7), 0);
    ck_assert_int_eq(crm_ring_push(ring, "c\n", 2), -1);
    ck_assert_int_eq(crm_ring_claim(ring, 7, 10, &slot, &token), 0);
    crm_ring_finish(ring, slot, token, CRM_RING_STORED);
    ck_assert_int_eq(crm_ring_push(ring, "c\n", 2), 0);
    ck_assert_uint_eq(crm_ring_used(ring), 11);
}
END_TEST


/*
 * A lease that runs out: the batch goes to the next claim, the first
 * claim's renewal and finish do nothing, and only refusals count as the
 * batch's failures.
 */
START_TEST(test_ring_lease)
{
    char          buf[sizeof(crm_ring_t) + 64];
    size_t        slot, again;
    uint64_t      first, second;
    crm_ring_t   *ring;

    ring = (crm_ring_t *) buf;
    crm_ring_init(ring, 64, sizeof(crm_ring_t));

    ck_assert_int_eq(crm_ring_push(ring, "a\n", 2), 0);
    ck_assert_int_eq(crm_ring_claim(ring, 64, 100, &slot, &first), 0);

    /* renewed before it ran out: the lease holds past its first end */
    crm_ring_renew(ring, slot, first, 200);
    ck_assert_uint_eq(crm_ring_recover(ring, 150), 0);
    ck_assert_uint_eq(crm_ring_recover(ring, 200), 1);
    ck_assert_int_eq(crm_ring_claim(ring, 64, 300, &again, &second), 0);
    ck_assert_uint_eq(again, slot);
    ck_assert_uint_ne(second, first);
    ck_assert(crm_ring_token(ring, slot) == second);

    crm_ring_renew(ring, slot, first, 1000);
    ck_assert_uint_eq(crm_ring_recover(ring, 300), 1);
    ck_assert_int_eq(crm_ring_finish(ring, slot, first, CRM_RING_STORED), -1);
    ck_assert(!crm_ring_empty(ring));

    /* an outage does not count against the batch; a refusal does */
    ck_assert_int_eq(crm_ring_claim(ring, 64, 400, &again, &second), 0);
    ck_assert_int_eq(crm_ring_finish(ring, again, second, CRM_RING_UNSTORED),
                     0);
    ck_assert_uint_eq(ring->batches[again].failures, 0);
    ck_assert_int_eq(crm_ring_claim(ring, 64, 400, &again, &second), 0);
    ck_assert_int_eq(crm_ring_finish(ring, again, second, CRM_RING_REFUSED),
                     0);
    ck_assert_uint_eq(ring->batches[again].failures, 1);

    /* a lapsed claim may still finish while nobody took the batch again */
    ck_assert_int_eq(crm_ring_claim(ring, 64, 500, &again, &second), 0);
    ck_assert_uint_eq(crm_ring_recover(ring, 500), 1);
    ck_assert_int_eq(crm_ring_finish(ring, again, second, CRM_RING_STORED),
                     0);
    ck_assert(crm_ring_empty(ring));
}
END_TEST


static Suite *
check_ring_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("ring", &tc);

    tcase_add_loop_test(tc, test_ring_model, 0, 12);
    tcase_add_test(tc, test_ring_exact_end);
    tcase_add_test(tc, test_ring_full);
    tcase_add_test(tc, test_ring_lease);

    return s;
}


CRM_CHECK_MAIN(check_ring_suite)
