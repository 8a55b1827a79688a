/*
 * crm_wal: pg_lsn text, the primary's positions kept, and a replica's
 * lag from them: caught up, behind by one write, behind by an old one,
 * stalled past the oldest kept, and an idle primary (no new position).
 */

#include "crm_check.h"
#include "crm_wal.h"


static Suite *check_wal_suite(void);


START_TEST(test_wal_lsn_parse)
{
    uint64_t  lsn;

    ck_assert_int_eq(crm_wal_lsn_parse("0/0", &lsn), 0);
    ck_assert_uint_eq(lsn, 0);
    ck_assert_int_eq(crm_wal_lsn_parse("16/B374D848", &lsn), 0);
    ck_assert_uint_eq(lsn, 0x16B374D848ULL);
    ck_assert_int_eq(crm_wal_lsn_parse("FFFFFFFF/ffffffff", &lsn), 0);
    ck_assert_uint_eq(lsn, UINT64_MAX);

    ck_assert_int_eq(crm_wal_lsn_parse("", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("/0", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("0/", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("0", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("1/2/3", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("1/2 ", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("-1/2", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("100000000/0", &lsn), -1);
    ck_assert_int_eq(crm_wal_lsn_parse("0/1G", &lsn), -1);
}
END_TEST


START_TEST(test_wal_lag)
{
    crm_wal_history_t  h;

    memset(&h, 0, sizeof(h));

    /* nothing known of the primary yet */
    ck_assert_int_eq(crm_wal_lag(&h, 100, 1000), -1);

    crm_wal_record(&h, 100, 1000);
    ck_assert_int_eq(crm_wal_lag(&h, 100, 1500), 0);
    ck_assert_int_eq(crm_wal_lag(&h, 200, 1500), 0);
    ck_assert_int_eq(crm_wal_lag(&h, 99, 1500), 500);

    /* an idle primary: the same position again keeps its first time */
    crm_wal_record(&h, 100, 2000);
    crm_wal_record(&h, 100, 3000);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_int_eq(crm_wal_lag(&h, 99, 3500), 2500);

    /* a write at 4000: a replica at 100 is late since then */
    crm_wal_record(&h, 180, 4000);
    crm_wal_record(&h, 250, 5000);
    ck_assert_int_eq(crm_wal_lag(&h, 100, 5200), 1200);
    ck_assert_int_eq(crm_wal_lag(&h, 180, 5200), 200);
    ck_assert_int_eq(crm_wal_lag(&h, 250, 5200), 0);

    /* a clock read before the record: never below 0 */
    ck_assert_int_eq(crm_wal_lag(&h, 180, 4900), 0);
}
END_TEST


START_TEST(test_wal_ring)
{
    unsigned           i;
    crm_wal_history_t  h;

    memset(&h, 0, sizeof(h));

    for (i = 1; i <= CRM_WAL_SAMPLES + 10; i++) {
        crm_wal_record(&h, i * 10, i * 1000);
    }

    ck_assert_uint_eq(h.n, CRM_WAL_SAMPLES);

    /* the oldest kept is the 11th: a replica short of it is at least
       that late */
    ck_assert_int_eq(crm_wal_lag(&h, 0, 100000), 100000 - 11 * 1000);
    ck_assert_int_eq(crm_wal_lag(&h, 110, 100000), 100000 - 12 * 1000);
    ck_assert_int_eq(crm_wal_lag(&h, (CRM_WAL_SAMPLES + 10) * 10, 100000), 0);
}
END_TEST


static Suite *
check_wal_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("wal", &tc);

    tcase_add_test(tc, test_wal_lsn_parse);
    tcase_add_test(tc, test_wal_lag);
    tcase_add_test(tc, test_wal_ring);

    return s;
}


CRM_CHECK_MAIN(check_wal_suite)
