/*
 * crm_ids: link ids and their keyed check characters, click ids and the
 * link and second they carry.  The known ids were computed independently
 * of crm_ids.c (Python's hmac), from the definition in crm_ids.h.
 */

#include "crm_check.h"
#include "crm_ids.h"


#define CHECK_IDS_ALPHABET                                                    \
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#define CHECK_IDS_LINK    "0123456789MV"     /* under check_ids_key */
#define CHECK_IDS_LINKS   20000
#define CHECK_IDS_CLICKS  100000


static const crm_link_key_t  check_ids_key = {
    (const unsigned char *) "check ids: a key of at least 32 bytes", 37
};

/* the same ten characters check as "n9" under this one */
static const crm_link_key_t  check_ids_other_key = {
    (const unsigned char *) "another key, also at least 32 bytes!", 36
};


static int check_ids_cmp(const void *a, const void *b);
static size_t check_ids_altered_valid(const char *id);
static Suite *check_ids_suite(void);


static int
check_ids_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}


/* how many of the 12 * 61 one-character changes of id are still valid */
static size_t
check_ids_altered_valid(const char *id)
{
    char         altered[CRM_LINK_ID_LEN + 1];
    size_t       i, n;
    const char  *c;

    n = 0;

    for (i = 0; i < CRM_LINK_ID_LEN; i++) {
        for (c = CHECK_IDS_ALPHABET; *c != '\0'; c++) {
            if (*c == id[i]) {
                continue;
            }

            memcpy(altered, id, sizeof(altered));
            altered[i] = *c;

            n += crm_link_id_valid(&check_ids_key, altered,
                                   CRM_LINK_ID_LEN);
        }
    }

    return n;
}


START_TEST(test_ids_link_known)
{
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, CHECK_IDS_LINK, 12),
                     1);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "Zx9kQ2mB7aO6", 12),
                     1);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "aaaaaaaaaaEY", 12),
                     1);

    /* every one-character change of these is caught */
    ck_assert_uint_eq(check_ids_altered_valid(CHECK_IDS_LINK), 0);
    ck_assert_uint_eq(check_ids_altered_valid("Zx9kQ2mB7aO6"), 0);

    /* swapped check characters, and the neighbours of the right ones */
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "0123456789VM", 12),
                     0);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "0123456789MU", 12),
                     0);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "0123456789MW", 12),
                     0);

    /* the old unkeyed check (FNV-1a) no longer passes */
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "0123456789Ok", 12),
                     0);
}
END_TEST


/* without the key nobody makes an id that passes: another key, another id */
START_TEST(test_ids_link_keyed)
{
    char  id[CRM_LINK_ID_LEN + 1];

    ck_assert_int_eq(crm_link_id_valid(&check_ids_other_key, CHECK_IDS_LINK,
                                       12), 0);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_other_key, "0123456789n9",
                                       12), 1);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_key, "0123456789n9", 12),
                     0);

    ck_assert_int_eq(crm_link_id_generate(&check_ids_other_key, id), 0);
    ck_assert_int_eq(crm_link_id_valid(&check_ids_other_key, id, 12), 1);

    /* the shape alone says nothing of the check */
    ck_assert_int_eq(crm_link_id_shaped("0123456789n9", 12), 1);
    ck_assert_int_eq(crm_link_id_shaped("0123456789n-", 12), 0);
}
END_TEST


START_TEST(test_ids_link_shape)
{
    char  id[CRM_LINK_ID_LEN + 2];

    const crm_link_key_t  *k;

    k = &check_ids_key;

    ck_assert_int_eq(crm_link_id_valid(k, "", 0), 0);
    ck_assert_int_eq(crm_link_id_valid(k, CHECK_IDS_LINK, 11), 0);
    ck_assert_int_eq(crm_link_id_valid(k, "0123456789MVx", 13), 0);
    ck_assert_int_eq(crm_link_id_valid(k, "0123456789M", 11), 0);

    /* a short C string is read up to its NUL, not beyond */
    ck_assert_int_eq(crm_link_id_valid(k, "01234", 12), 0);
    ck_assert_int_eq(crm_link_id_shaped("01234", 12), 0);

    /* outside the alphabet, wherever it is */
    memcpy(id, CHECK_IDS_LINK, sizeof(CHECK_IDS_LINK));
    id[3] = '-';
    ck_assert_int_eq(crm_link_id_valid(k, id, 12), 0);
    id[3] = '_';
    ck_assert_int_eq(crm_link_id_valid(k, id, 12), 0);
    id[3] = '\0';
    ck_assert_int_eq(crm_link_id_valid(k, id, 12), 0);
    id[3] = (char) 0xc3;
    ck_assert_int_eq(crm_link_id_valid(k, id, 12), 0);

    memcpy(id, CHECK_IDS_LINK, sizeof(CHECK_IDS_LINK));
    id[11] = '=';
    ck_assert_int_eq(crm_link_id_valid(k, id, 12), 0);
    ck_assert_int_eq(crm_link_id_valid(k, " 123456789MV", 12), 0);
}
END_TEST


START_TEST(test_ids_link_generate)
{
    char    *ids, *p;
    size_t   i, n, altered, counts[62];

    ids = malloc(CHECK_IDS_LINKS * (CRM_LINK_ID_LEN + 1));
    ck_assert_ptr_nonnull(ids);

    memset(counts, 0, sizeof(counts));
    altered = 0;

    for (i = 0; i < CHECK_IDS_LINKS; i++) {
        p = ids + i * (CRM_LINK_ID_LEN + 1);

        ck_assert_int_eq(crm_link_id_generate(&check_ids_key, p), 0);
        ck_assert_uint_eq(strlen(p), CRM_LINK_ID_LEN);
        ck_assert_msg(crm_link_id_valid(&check_ids_key, p, CRM_LINK_ID_LEN),
                      "generated \"%s\" is refused", p);

        for (n = 0; n < 10; n++) {
            counts[strchr(CHECK_IDS_ALPHABET, p[n]) - CHECK_IDS_ALPHABET]++;
        }

        if (i < 200) {
            altered += check_ids_altered_valid(p);
        }
    }

    qsort(ids, CHECK_IDS_LINKS, CRM_LINK_ID_LEN + 1, check_ids_cmp);

    for (i = 1; i < CHECK_IDS_LINKS; i++) {
        ck_assert_str_ne(ids + (i - 1) * (CRM_LINK_ID_LEN + 1),
                         ids + i * (CRM_LINK_ID_LEN + 1));
    }

    free(ids);

    /*
     * 200 000 random characters, 3 226 expected per digit, a standard
     * deviation of 57; folding every byte modulo 62 would give the first
     * eight digits 25% more
     */
    for (i = 0; i < 62; i++) {
        ck_assert_msg(counts[i] > 2900 && counts[i] < 3550,
                      "digit %c drawn %zu times of 200000",
                      CHECK_IDS_ALPHABET[i], counts[i]);
    }

    /* of 200 * 732 one-character changes, about 1 in 3 844 passes */
    ck_assert_uint_lt(altered, 200 * 732 / 500);
}
END_TEST


START_TEST(test_ids_click_round_trip)
{
    char     link[CRM_LINK_ID_LEN + 1], click[CRM_CLICK_ID_LEN + 1];
    int64_t  ts;

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 1700000000,
                                           click), 0);
    ck_assert_uint_eq(strlen(click), CRM_CLICK_ID_LEN);
    ck_assert_int_eq(memcmp(click, CHECK_IDS_LINK "1r31eq", 18), 0);
    ck_assert(strspn(click, CHECK_IDS_ALPHABET) == CRM_CLICK_ID_LEN);

    ts = -1;
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key, click,
                                        CRM_CLICK_ID_LEN, link, &ts), 1);
    ck_assert_str_eq(link, CHECK_IDS_LINK);
    ck_assert_int_eq(ts, 1700000000);

    /* the outputs are optional */
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key, click,
                                        CRM_CLICK_ID_LEN, NULL, NULL), 1);

    /* a known one */
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key,
                                        "Zx9kQ2mB7aO61r31eqAbCdEfGh", 26,
                                        link, &ts), 1);
    ck_assert_str_eq(link, "Zx9kQ2mB7aO6");
    ck_assert_int_eq(ts, 1700000000);

    /* its link's check is keyed too */
    ck_assert_int_eq(crm_click_id_parse(&check_ids_other_key,
                                        "Zx9kQ2mB7aO61r31eqAbCdEfGh", 26,
                                        NULL, NULL), 0);
}
END_TEST


START_TEST(test_ids_click_time_bounds)
{
    char     link[CRM_LINK_ID_LEN + 1], click[CRM_CLICK_ID_LEN + 1];
    int64_t  ts, last;

    last = 56800235583LL;   /* 62^6 - 1 */

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 0, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "000000", 6), 0);
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key, click, 26, link,
                                        &ts), 1);
    ck_assert_int_eq(ts, 0);

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, last, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "zzzzzz", 6), 0);
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key, click, 26, link,
                                        &ts), 1);
    ck_assert_int_eq(ts, last);

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 61, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "00000z", 6), 0);
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 62, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "000010", 6), 0);

    /* out of range, or a link id without a link id's shape */
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, -1, click), -1);
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, last + 1, click),
                     -1);
    ck_assert_int_eq(crm_click_id_generate("0123456789M-", 0, click), -1);
    ck_assert_int_eq(crm_click_id_generate("0123", 0, click), -1);
}
END_TEST


START_TEST(test_ids_click_distinct)
{
    char    *ids;
    size_t   i;

    ids = malloc((size_t) CHECK_IDS_CLICKS * (CRM_CLICK_ID_LEN + 1));
    ck_assert_ptr_nonnull(ids);

    for (i = 0; i < CHECK_IDS_CLICKS; i++) {
        ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 1700000000,
                                               ids + i
                                               * (CRM_CLICK_ID_LEN + 1)),
                         0);
    }

    qsort(ids, CHECK_IDS_CLICKS, CRM_CLICK_ID_LEN + 1, check_ids_cmp);

    for (i = 1; i < CHECK_IDS_CLICKS; i++) {
        ck_assert_str_ne(ids + (i - 1) * (CRM_CLICK_ID_LEN + 1),
                         ids + i * (CRM_CLICK_ID_LEN + 1));
    }

    free(ids);
}
END_TEST


/* a click id under the test key, without the outputs */
#define check_ids_click(s, len)                                              \
    crm_click_id_parse(&check_ids_key, (s), (len), NULL, NULL)


START_TEST(test_ids_click_parse_refuses)
{
    char     click[CRM_CLICK_ID_LEN + 2];
    int64_t  ts;

    static const char  good[] = "Zx9kQ2mB7aO61r31eqAbCdEfGh";

    ck_assert_int_eq(check_ids_click(good, 26), 1);

    /* length */
    ck_assert_int_eq(check_ids_click("", 0), 0);
    ck_assert_int_eq(check_ids_click(good, 25), 0);
    ck_assert_int_eq(check_ids_click("Zx9kQ2mB7aO61r31eqAbCdEfGhi", 27), 0);
    ck_assert_int_eq(check_ids_click(CHECK_IDS_LINK, 12), 0);

    /* the embedded link id's check characters */
    memcpy(click, good, sizeof(good));
    click[11] = '7';
    ck_assert_int_eq(check_ids_click(click, 26), 0);

    memcpy(click, good, sizeof(good));
    click[0] = 'z';
    ck_assert_int_eq(check_ids_click(click, 26), 0);

    /* the alphabet, in the second and in the random end */
    memcpy(click, good, sizeof(good));
    click[14] = '-';
    ck_assert_int_eq(check_ids_click(click, 26), 0);

    memcpy(click, good, sizeof(good));
    click[25] = '.';
    ck_assert_int_eq(check_ids_click(click, 26), 0);

    memcpy(click, good, sizeof(good));
    click[20] = '\0';
    ck_assert_int_eq(check_ids_click(click, 26), 0);

    /* a refused id leaves the outputs alone */
    ts = 42;
    ck_assert_int_eq(crm_click_id_parse(&check_ids_key, click, 26, NULL,
                                        &ts), 0);
    ck_assert_int_eq(ts, 42);
}
END_TEST


static Suite *
check_ids_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("ids", &tc);

    tcase_add_test(tc, test_ids_link_known);
    tcase_add_test(tc, test_ids_link_keyed);
    tcase_add_test(tc, test_ids_link_shape);
    tcase_add_test(tc, test_ids_link_generate);
    tcase_add_test(tc, test_ids_click_round_trip);
    tcase_add_test(tc, test_ids_click_time_bounds);
    tcase_add_test(tc, test_ids_click_distinct);
    tcase_add_test(tc, test_ids_click_parse_refuses);

    return s;
}


CRM_CHECK_MAIN(check_ids_suite)
