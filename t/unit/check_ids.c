/*
 * crm_ids: link ids and their check characters, click ids and the link
 * and second they carry.  The known ids were computed independently of
 * crm_ids.c, from the definition in crm_ids.h.
 */

#include "crm_check.h"
#include "crm_ids.h"


#define CHECK_IDS_ALPHABET                                                    \
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#define CHECK_IDS_LINK    "0123456789Ok"     /* FNV-1a check "Ok" */
#define CHECK_IDS_LINKS   20000
#define CHECK_IDS_CLICKS  100000


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

            n += crm_link_id_valid(altered, CRM_LINK_ID_LEN);
        }
    }

    return n;
}


START_TEST(test_ids_link_known)
{
    ck_assert_int_eq(crm_link_id_valid(CHECK_IDS_LINK, 12), 1);
    ck_assert_int_eq(crm_link_id_valid("Zx9kQ2mB7ayx", 12), 1);
    ck_assert_int_eq(crm_link_id_valid("aaaaaaaaaaxn", 12), 1);

    /* every one-character change of these is caught */
    ck_assert_uint_eq(check_ids_altered_valid(CHECK_IDS_LINK), 0);
    ck_assert_uint_eq(check_ids_altered_valid("Zx9kQ2mB7ayx"), 0);

    /* swapped check characters, and the neighbours of the right ones */
    ck_assert_int_eq(crm_link_id_valid("0123456789kO", 12), 0);
    ck_assert_int_eq(crm_link_id_valid("0123456789Oj", 12), 0);
    ck_assert_int_eq(crm_link_id_valid("0123456789Ol", 12), 0);
}
END_TEST


START_TEST(test_ids_link_shape)
{
    char  id[CRM_LINK_ID_LEN + 2];

    ck_assert_int_eq(crm_link_id_valid("", 0), 0);
    ck_assert_int_eq(crm_link_id_valid(CHECK_IDS_LINK, 11), 0);
    ck_assert_int_eq(crm_link_id_valid("0123456789Okx", 13), 0);
    ck_assert_int_eq(crm_link_id_valid("0123456789O", 11), 0);

    /* a short C string is read up to its NUL, not beyond */
    ck_assert_int_eq(crm_link_id_valid("01234", 12), 0);

    /* outside the alphabet, wherever it is */
    memcpy(id, CHECK_IDS_LINK, sizeof(CHECK_IDS_LINK));
    id[3] = '-';
    ck_assert_int_eq(crm_link_id_valid(id, 12), 0);
    id[3] = '_';
    ck_assert_int_eq(crm_link_id_valid(id, 12), 0);
    id[3] = '\0';
    ck_assert_int_eq(crm_link_id_valid(id, 12), 0);
    id[3] = (char) 0xc3;
    ck_assert_int_eq(crm_link_id_valid(id, 12), 0);

    memcpy(id, CHECK_IDS_LINK, sizeof(CHECK_IDS_LINK));
    id[11] = '=';
    ck_assert_int_eq(crm_link_id_valid(id, 12), 0);
    ck_assert_int_eq(crm_link_id_valid(" 123456789Ok", 12), 0);
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

        ck_assert_int_eq(crm_link_id_generate(p), 0);
        ck_assert_uint_eq(strlen(p), CRM_LINK_ID_LEN);
        ck_assert_msg(crm_link_id_valid(p, CRM_LINK_ID_LEN),
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
    ck_assert_int_eq(crm_click_id_parse(click, CRM_CLICK_ID_LEN, link, &ts),
                     1);
    ck_assert_str_eq(link, CHECK_IDS_LINK);
    ck_assert_int_eq(ts, 1700000000);

    /* the outputs are optional */
    ck_assert_int_eq(crm_click_id_parse(click, CRM_CLICK_ID_LEN, NULL, NULL),
                     1);

    /* a known one */
    ck_assert_int_eq(crm_click_id_parse("Zx9kQ2mB7ayx1r31eqAbCdEfGh", 26,
                                        link, &ts), 1);
    ck_assert_str_eq(link, "Zx9kQ2mB7ayx");
    ck_assert_int_eq(ts, 1700000000);
}
END_TEST


START_TEST(test_ids_click_time_bounds)
{
    char     link[CRM_LINK_ID_LEN + 1], click[CRM_CLICK_ID_LEN + 1];
    int64_t  ts, last;

    last = 56800235583LL;   /* 62^6 - 1 */

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 0, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "000000", 6), 0);
    ck_assert_int_eq(crm_click_id_parse(click, 26, link, &ts), 1);
    ck_assert_int_eq(ts, 0);

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, last, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "zzzzzz", 6), 0);
    ck_assert_int_eq(crm_click_id_parse(click, 26, link, &ts), 1);
    ck_assert_int_eq(ts, last);

    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 61, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "00000z", 6), 0);
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, 62, click), 0);
    ck_assert_int_eq(memcmp(click + 12, "000010", 6), 0);

    /* out of range, or a link id that is not one */
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, -1, click), -1);
    ck_assert_int_eq(crm_click_id_generate(CHECK_IDS_LINK, last + 1, click),
                     -1);
    ck_assert_int_eq(crm_click_id_generate("0123456789Ol", 0, click), -1);
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


START_TEST(test_ids_click_parse_refuses)
{
    char     click[CRM_CLICK_ID_LEN + 2];
    int64_t  ts;

    static const char  good[] = "Zx9kQ2mB7ayx1r31eqAbCdEfGh";

    ck_assert_int_eq(crm_click_id_parse(good, 26, NULL, NULL), 1);

    /* length */
    ck_assert_int_eq(crm_click_id_parse("", 0, NULL, NULL), 0);
    ck_assert_int_eq(crm_click_id_parse(good, 25, NULL, NULL), 0);
    ck_assert_int_eq(crm_click_id_parse("Zx9kQ2mB7ayx1r31eqAbCdEfGhi", 27,
                                        NULL, NULL), 0);
    ck_assert_int_eq(crm_click_id_parse(CHECK_IDS_LINK, 12, NULL, NULL), 0);

    /* the embedded link id's check characters */
    memcpy(click, good, sizeof(good));
    click[11] = 'y';
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, NULL), 0);

    memcpy(click, good, sizeof(good));
    click[0] = 'z';
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, NULL), 0);

    /* the alphabet, in the second and in the random end */
    memcpy(click, good, sizeof(good));
    click[14] = '-';
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, NULL), 0);

    memcpy(click, good, sizeof(good));
    click[25] = '.';
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, NULL), 0);

    memcpy(click, good, sizeof(good));
    click[20] = '\0';
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, NULL), 0);

    /* a refused id leaves the outputs alone */
    ts = 42;
    ck_assert_int_eq(crm_click_id_parse(click, 26, NULL, &ts), 0);
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
    tcase_add_test(tc, test_ids_link_shape);
    tcase_add_test(tc, test_ids_link_generate);
    tcase_add_test(tc, test_ids_click_round_trip);
    tcase_add_test(tc, test_ids_click_time_bounds);
    tcase_add_test(tc, test_ids_click_distinct);
    tcase_add_test(tc, test_ids_click_parse_refuses);

    return s;
}


CRM_CHECK_MAIN(check_ids_suite)
