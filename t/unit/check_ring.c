/*
 * crm_ring: a model check.  Random pushes of lines of random lengths,
 * claims of random sizes, batches finished in random order, failed, and
 * abandoned by owners that die (before or after storing), over rings of
 * several sizes; then everything drains.  Every pushed line must be
 * stored, exactly once unless its batch was stored by an owner that died
 * before finishing it, and every batch must be whole lines.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_ring.h"


#define CHECK_RING_LINES   100000
#define CHECK_RING_FLIGHT  CRM_RING_BATCHES


typedef struct {
    crm_ring_t    *ring;
    unsigned      *stored;          /* per line number: times stored */
    unsigned char *twice;           /* may be stored twice */
    size_t         pushed;
    uint64_t       seed;
    int64_t        dead;            /* an owner that is gone */
} check_ring_t;


static check_ring_t  check_ring_now;


static Suite *check_ring_suite(void);
static uint64_t check_ring_rand(check_ring_t *m);
static void check_ring_store(check_ring_t *m, size_t slot, int dup_ok);
static int check_ring_gone(int64_t owner);
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


static int
check_ring_gone(int64_t owner)
{
    return owner == check_ring_now.dead;
}


static void
check_ring_run(size_t size, uint64_t seed)
{
    char           line[256];
    size_t         i, n, len, slot, nflight, pick;
    int64_t        owner;
    check_ring_t  *m;
    size_t         flight[CHECK_RING_FLIGHT];
    int64_t        flight_owner[CHECK_RING_FLIGHT];

    m = &check_ring_now;
    memset(m, 0, sizeof(check_ring_t));

    m->ring = malloc(sizeof(crm_ring_t) + size);
    m->stored = calloc(CHECK_RING_LINES, sizeof(unsigned));
    m->twice = calloc(CHECK_RING_LINES, 1);
    m->seed = seed;
    m->dead = -1;

    ck_assert_ptr_nonnull(m->ring);
    ck_assert_ptr_nonnull(m->stored);
    ck_assert_ptr_nonnull(m->twice);

    crm_ring_init(m->ring, size, sizeof(crm_ring_t));

    nflight = 0;
    owner = 1;

    while (m->pushed < CHECK_RING_LINES) {

        switch (check_ring_rand(m) % 8) {

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
                                  owner, &slot)
                   == 0)
            {
                flight[nflight] = slot;
                flight_owner[nflight] = owner;
                nflight++;
            }

            break;

        case 6:
            if (nflight == 0) {
                break;
            }

            pick = check_ring_rand(m) % nflight;
            slot = flight[pick];

            if (check_ring_rand(m) % 5 == 0) {
                crm_ring_finish(m->ring, slot, 0);

            } else {
                check_ring_store(m, slot, 0);
                crm_ring_finish(m->ring, slot, 1);
            }

            flight[pick] = flight[--nflight];
            flight_owner[pick] = flight_owner[nflight];

            break;

        default:
            /* an owner dies: its batches were stored, or not */
            if (nflight == 0 || check_ring_rand(m) % 4) {
                break;
            }

            m->dead = flight_owner[check_ring_rand(m) % nflight];

            for (i = 0; i < nflight; /* void */ ) {
                if (flight_owner[i] != m->dead) {
                    i++;
                    continue;
                }

                if (check_ring_rand(m) % 2) {
                    check_ring_store(m, flight[i], 1);
                }

                flight[i] = flight[--nflight];
                flight_owner[i] = flight_owner[nflight];
            }

            crm_ring_recover(m->ring, check_ring_gone);
            owner++;

            break;
        }
    }

    for (i = 0; i < nflight; i++) {
        check_ring_store(m, flight[i], 0);
        crm_ring_finish(m->ring, flight[i], 1);
    }

    while (crm_ring_claim(m->ring, size, owner, &slot) == 0) {
        check_ring_store(m, slot, 0);
        crm_ring_finish(m->ring, slot, 1);
    }

    ck_assert(crm_ring_empty(m->ring));
    ck_assert_uint_eq(crm_ring_used(m->ring), 0);

    for (i = 0; i < m->pushed; i++) {
        ck_assert_msg(m->stored[i] >= 1, "line %zu lost (ring %zu)", i,
                      size);
        ck_assert_msg(m->stored[i] == 1 || m->twice[i],
                      "line %zu stored %u times (ring %zu)", i, m->stored[i],
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
    crm_str_t     chunks[2];
    crm_ring_t   *ring;

    ring = (crm_ring_t *) buf;
    crm_ring_init(ring, 16, sizeof(crm_ring_t));

    ck_assert_int_eq(crm_ring_push(ring, "aaaaaaaaaaa\n", 12), 0);
    ck_assert_int_eq(crm_ring_claim(ring, 100, 1, &slot), 0);
    crm_ring_finish(ring, slot, 1);

    /* 4 bytes left: "bbb\n" would end at the end, so it goes to the start */
    ck_assert_int_eq(crm_ring_push(ring, "bbb\n", 4), 0);
    ck_assert_int_eq(crm_ring_claim(ring, 100, 1, &slot), 0);
    ck_assert_uint_eq(crm_ring_chunks(ring, slot, chunks), 1);
    ck_assert_uint_eq(chunks[0].len, 4);
    ck_assert(memcmp(chunks[0].data, "bbb\n", 4) == 0);
    ck_assert_ptr_eq(chunks[0].data, buf + sizeof(crm_ring_t));
    crm_ring_finish(ring, slot, 1);

    ck_assert(crm_ring_empty(ring));
}
END_TEST


/* full is full; a line as long as the ring never fits */
START_TEST(test_ring_full)
{
    char          buf[sizeof(crm_ring_t) + 16];
    size_t        slot;
    crm_ring_t   *ring;

    ring = (crm_ring_t *) buf;
    crm_ring_init(ring, 16, sizeof(crm_ring_t));

    ck_assert_int_eq(crm_ring_push(ring, "0123456789abcdef", 16), -1);
    ck_assert_int_eq(crm_ring_push(ring, "aaaaaa\n", 7), 0);
    ck_assert_int_eq(crm_ring_push(ring, "bbbbbb\n", 7), 0);
    ck_assert_int_eq(crm_ring_push(ring, "c\n", 2), -1);
    ck_assert_int_eq(crm_ring_claim(ring, 7, 1, &slot), 0);
    crm_ring_finish(ring, slot, 1);
    ck_assert_int_eq(crm_ring_push(ring, "c\n", 2), 0);
    ck_assert_uint_eq(crm_ring_used(ring), 11);
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

    return s;
}


CRM_CHECK_MAIN(check_ring_suite)
