/*
 * crm_page: ?limit= and the opaque ?cursor=.
 */

#include <stdio.h>

#include "crm_base64.h"
#include "crm_check.h"
#include "crm_ids.h"
#include "crm_page.h"


static crm_status_e check_page_parse(const char *query, crm_page_t *page,
    crm_error_t *err);
static void check_page_raw_cursor(const char *raw, char *out);
static Suite *check_page_suite(void);


#define CHECK_PAGE_ID  "6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5f"


static crm_status_e
check_page_parse(const char *query, crm_page_t *page, crm_error_t *err)
{
    return crm_page_parse(crm_str_c(query), 0, page, err);
}


/* what a client forging a cursor would send */
static void
check_page_raw_cursor(const char *raw, char *out)
{
    size_t  n;

    n = crm_base64url_encode((const unsigned char *) raw, strlen(raw), out);
    out[n] = '\0';
}


START_TEST(test_page_limit)
{
    crm_page_t   page;
    crm_error_t  err;

    static const char  *bad[] = {
        "limit=0", "limit=201", "limit=abc", "limit=", "limit=-1",
        "limit=+5", "limit=5.0", "limit=1e2", "limit=%205", "limit=5+",
        "limit=0x10", "limit=99999999999999999999999999",
        "limit=4294967297"
    };

    size_t  i;

    ck_assert_int_eq(check_page_parse("", &page, &err), CRM_OK);
    ck_assert_uint_eq(page.limit, CRM_PAGE_DEFAULT);
    ck_assert_uint_eq(page.limit, 50);
    ck_assert(!page.has_cursor);

    ck_assert_int_eq(check_page_parse("stage=lead&q=x", &page, &err),
                     CRM_OK);
    ck_assert_uint_eq(page.limit, 50);

    ck_assert_int_eq(check_page_parse("limit=1", &page, &err), CRM_OK);
    ck_assert_uint_eq(page.limit, 1);

    ck_assert_int_eq(check_page_parse("q=a&limit=200", &page, &err), CRM_OK);
    ck_assert_uint_eq(page.limit, 200);

    ck_assert_int_eq(check_page_parse("limit=007", &page, &err), CRM_OK);
    ck_assert_uint_eq(page.limit, 7);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_page_parse(bad[i], &page, &err) == CRM_E_INVALID,
                      "accepted %s", bad[i]);
        crm_check_error(&err, CRM_E_INVALID, "limit",
                        "must be an integer between 1 and 200");
    }

    ck_assert_int_eq(check_page_parse("limit=5&limit=6", &page, &err),
                     CRM_E_INVALID);
    ck_assert_str_eq(err.field, "limit");

    ck_assert_int_eq(check_page_parse("limit=%zz", &page, &err),
                     CRM_E_MALFORMED);
}
END_TEST


START_TEST(test_page_cursor_round_trip)
{
    char          text[CRM_CURSOR_MAX], query[CRM_CURSOR_MAX + 32];
    crm_page_t    page;
    crm_error_t   err;
    crm_cursor_t  in, out;

    /* the edges are the +-2^53 us that a cursor may carry */
    static const int64_t  ts[] = {
        0, 1, 1763712000123456LL, 9007199254740992LL, -1,
        -9007199254740992LL
    };

    size_t  i;

    for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        memset(&in, 0, sizeof(in));
        in.ts_us = ts[i];
        strcpy(in.id, CHECK_PAGE_ID);

        crm_cursor_encode(&in, text);
        ck_assert_uint_gt(strlen(text), 0);
        ck_assert_uint_lt(strlen(text), CRM_CURSOR_MAX);

        /* url-safe as it is: no escaping needed in a query */
        ck_assert_uint_eq(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "abcdefghijklmnopqrstuvwxyz"
                                       "0123456789-_"), strlen(text));

        ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &out, &err),
                         CRM_OK);
        ck_assert(out.ts_us == in.ts_us);
        ck_assert_str_eq(out.id, CHECK_PAGE_ID);

        snprintf(query, sizeof(query), "limit=10&cursor=%s", text);

        ck_assert_int_eq(check_page_parse(query, &page, &err), CRM_OK);
        ck_assert_uint_eq(page.limit, 10);
        ck_assert(page.has_cursor);
        ck_assert(page.cursor.ts_us == in.ts_us);
        ck_assert_str_eq(page.cursor.id, CHECK_PAGE_ID);
    }
}
END_TEST


START_TEST(test_page_cursor_garbage)
{
    char          text[CRM_CURSOR_MAX * 2], query[CRM_CURSOR_MAX * 3];
    crm_page_t    page;
    crm_error_t   err;
    crm_cursor_t  c;

    static const char  *raw[] = {
        "",
        "1763712000123456",
        "1763712000123456:",
        ":" CHECK_PAGE_ID,
        "abc:" CHECK_PAGE_ID,
        "12a:" CHECK_PAGE_ID,
        "+12:" CHECK_PAGE_ID,
        " 12:" CHECK_PAGE_ID,
        "012:" CHECK_PAGE_ID,
        "-0:" CHECK_PAGE_ID,
        "-:" CHECK_PAGE_ID,
        "9223372036854775808:" CHECK_PAGE_ID,
        "-9223372036854775809:" CHECK_PAGE_ID,
        /* int64 but outside the timestamps a row can have (2^53 us) */
        "9223372036854775807:" CHECK_PAGE_ID,
        "-9223372036854775808:" CHECK_PAGE_ID,
        "9007199254740993:" CHECK_PAGE_ID,
        "12:" CHECK_PAGE_ID "x",
        "12:6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5",
        "12:6f1c2a8e-9d3b-4c5a-8e7f-0a1b2c3d4e5g",
        "12:not-a-uuid",
        "12:" CHECK_PAGE_ID ":1",
        "12:0123",
        "12:1234567890123456789",
        "12:12a4",
        "12:-5",
        "12;" CHECK_PAGE_ID
    };

    static const char  *text_bad[] = {
        "!!!!",
        "MTI6",
        "MTI6==",
        "a",
        "%%%"
    };

    size_t  i;

    for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        check_page_raw_cursor(raw[i], text);

        ck_assert_msg(crm_cursor_decode(crm_str_c(text), &c, &err)
                      == CRM_E_INVALID, "accepted \"%s\"", raw[i]);
        crm_check_error(&err, CRM_E_INVALID, "cursor",
                        "must be a valid cursor");

        snprintf(query, sizeof(query), "cursor=%s", text);
        ck_assert_int_eq(check_page_parse(query, &page, &err),
                         CRM_E_INVALID);
        ck_assert_str_eq(err.field, "cursor");
    }

    for (i = 0; i < sizeof(text_bad) / sizeof(text_bad[0]); i++) {
        ck_assert_msg(crm_cursor_decode(crm_str_c(text_bad[i]), &c, &err)
                      == CRM_E_INVALID, "accepted \"%s\"", text_bad[i]);
        crm_check_error(&err, CRM_E_INVALID, "cursor",
                        "must be a valid cursor");
    }

    /* longer than any cursor we write, in the query and directly */
    memset(text, 'A', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';

    ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &c, &err),
                     CRM_E_INVALID);

    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(check_page_parse(query, &page, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "cursor", "must be a valid cursor");

    /* an empty cursor is not "no cursor" */
    ck_assert_int_eq(check_page_parse("cursor=", &page, &err),
                     CRM_E_INVALID);
    ck_assert_str_eq(err.field, "cursor");

    ck_assert_int_eq(check_page_parse("cursor=a&cursor=b", &page, &err),
                     CRM_E_INVALID);
    ck_assert_str_eq(err.field, "cursor");
}
END_TEST


START_TEST(test_page_cursor_numeric_id)
{
    char          text[CRM_CURSOR_MAX], query[CRM_CURSOR_MAX + 16];
    crm_page_t    page;
    crm_error_t   err;
    crm_cursor_t  in, out;

    memset(&in, 0, sizeof(in));
    in.ts_us = 1763712000123456LL;
    strcpy(in.id, "987654321");

    crm_cursor_encode(&in, text);

    ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &out, &err), CRM_OK);
    ck_assert(out.numeric);
    ck_assert_str_eq(out.id, "987654321");
    ck_assert(out.ts_us == in.ts_us);

    /* a list of numeric ids takes it, a list of UUIDs refuses it */
    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), 1, &page, &err),
                     CRM_OK);
    ck_assert_str_eq(page.cursor.id, "987654321");
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), 0, &page, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "cursor", "must be a valid cursor");

    /* a UUID id is not numeric, and the other way round */
    strcpy(in.id, CHECK_PAGE_ID);
    crm_cursor_encode(&in, text);

    ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &out, &err), CRM_OK);
    ck_assert(!out.numeric);

    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), 1, &page, &err),
                     CRM_E_INVALID);
}
END_TEST


START_TEST(test_page_cursor_link_id)
{
    char            id[CRM_LINK_ID_LEN + 1];
    char            text[CRM_CURSOR_MAX], query[CRM_CURSOR_MAX + 16];
    crm_page_t      page;
    crm_error_t     err;
    crm_cursor_t    in, out;
    crm_link_key_t  key;

    /* a cursor reads the id's shape: any key makes one */
    key.data = (const unsigned char *) "a cursor test key of 32 bytes...";
    key.len = 32;

    ck_assert_int_eq(crm_link_id_generate(&key, id), 0);

    memset(&in, 0, sizeof(in));
    in.ts_us = 1763712000123456LL;
    strcpy(in.id, id);

    crm_cursor_encode(&in, text);

    ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &out, &err), CRM_OK);
    ck_assert(out.link_id);
    ck_assert_str_eq(out.id, id);

    /* a list of links takes it, lists of UUIDs or numbers refuse it */
    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), CRM_PAGE_LINK_ID,
                                    &page, &err), CRM_OK);
    ck_assert_str_eq(page.cursor.id, id);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), CRM_PAGE_UUID, &page,
                                    &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), CRM_PAGE_NUMERIC,
                                    &page, &err), CRM_E_INVALID);

    /*
     * a cursor names a place in the caller's own list: a link id's shape
     * is enough (its check needs the key), anything else is not a cursor
     */
    in.id[CRM_LINK_ID_LEN - 1] = '-';
    crm_cursor_encode(&in, text);

    ck_assert_int_eq(crm_cursor_decode(crm_str_c(text), &out, &err),
                     CRM_E_INVALID);

    /* a list of links refuses a UUID or a number */
    strcpy(in.id, CHECK_PAGE_ID);
    crm_cursor_encode(&in, text);
    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), CRM_PAGE_LINK_ID,
                                    &page, &err), CRM_E_INVALID);

    strcpy(in.id, "987654321");
    crm_cursor_encode(&in, text);
    snprintf(query, sizeof(query), "cursor=%s", text);
    ck_assert_int_eq(crm_page_parse(crm_str_c(query), CRM_PAGE_LINK_ID,
                                    &page, &err), CRM_E_INVALID);
}
END_TEST


static Suite *
check_page_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("page", &tc);

    tcase_add_test(tc, test_page_limit);
    tcase_add_test(tc, test_page_cursor_round_trip);
    tcase_add_test(tc, test_page_cursor_numeric_id);
    tcase_add_test(tc, test_page_cursor_link_id);
    tcase_add_test(tc, test_page_cursor_garbage);

    return s;
}


CRM_CHECK_MAIN(check_page_suite)
