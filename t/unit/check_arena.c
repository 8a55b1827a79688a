/*
 * crm_arena: zeroed, aligned, independent allocations freed together
 * (valgrind runs of this binary check that nothing leaks or overlaps).
 */

#include <stdint.h>

#include "crm_arena.h"
#include "crm_check.h"


static Suite *check_arena_suite(void);


START_TEST(test_arena_alloc)
{
    size_t          i, j, size;
    crm_arena_t     a = { NULL };
    unsigned char  *p[200];

    for (i = 0; i < 200; i++) {

        /* small, odd, zero and block-sized requests mixed */
        size = (i % 7 == 0) ? 0 : (i % 11 == 0) ? 5000 : i * 3 + 1;

        p[i] = crm_arena_alloc(&a, size);
        ck_assert_ptr_nonnull(p[i]);
        ck_assert_uint_eq((uintptr_t) p[i] % 16, 0);

        for (j = 0; j < size; j++) {
            ck_assert_uint_eq(p[i][j], 0);
        }

        memset(p[i], (int) (i & 0xff), size);
    }

    /* nothing overlapped: every block still holds its own byte */
    for (i = 0; i < 200; i++) {
        size = (i % 7 == 0) ? 0 : (i % 11 == 0) ? 5000 : i * 3 + 1;

        for (j = 0; j < size; j++) {
            ck_assert_uint_eq(p[i][j], i & 0xff);
        }
    }

    /* zero-byte requests still get distinct pointers */
    ck_assert_ptr_ne(crm_arena_alloc(&a, 0), crm_arena_alloc(&a, 0));

    crm_arena_free(&a);
    ck_assert_ptr_null(a.head);

    /* a freed arena is empty and usable again */
    ck_assert_ptr_nonnull(crm_arena_alloc(&a, 10));
    crm_arena_free(&a);
    crm_arena_free(&a);
}
END_TEST


START_TEST(test_arena_huge)
{
    crm_arena_t  a = { NULL };

    ck_assert_ptr_null(crm_arena_alloc(&a, SIZE_MAX));
    ck_assert_ptr_null(crm_arena_alloc(&a, SIZE_MAX - 8));
    ck_assert_ptr_null(a.head);

    ck_assert_ptr_nonnull(crm_arena_alloc(&a, 1 << 20));
    crm_arena_free(&a);
}
END_TEST


START_TEST(test_arena_strdup)
{
    char         *s, *e;
    crm_arena_t   a = { NULL };

    s = crm_arena_strdup(&a, (crm_str_t) { "hello, world", 5 });
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "hello");

    e = crm_arena_strdup(&a, (crm_str_t) { NULL, 0 });
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e, "");

    ck_assert_str_eq(s, "hello");

    crm_arena_free(&a);
}
END_TEST


static Suite *
check_arena_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("arena", &tc);

    tcase_add_test(tc, test_arena_alloc);
    tcase_add_test(tc, test_arena_huge);
    tcase_add_test(tc, test_arena_strdup);

    return s;
}


CRM_CHECK_MAIN(check_arena_suite)
