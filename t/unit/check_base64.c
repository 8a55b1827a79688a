/*
 * crm_base64: RFC 4648 section 10 vectors in the url alphabet without
 * padding, and the strictness of the decoder.
 */

#include "crm_base64.h"
#include "crm_check.h"


static Suite *check_base64_suite(void);


static const struct {
    const char  *raw;
    const char  *encoded;
} check_base64_vectors[] = {
    { "",       "" },
    { "f",      "Zg" },
    { "fo",     "Zm8" },
    { "foo",    "Zm9v" },
    { "foob",   "Zm9vYg" },
    { "fooba",  "Zm9vYmE" },
    { "foobar", "Zm9vYmFy" }
};


START_TEST(test_base64_rfc4648_vectors)
{
    char            enc[16];
    size_t          i, n, len;
    unsigned char   dec[16];

    for (i = 0; i < sizeof(check_base64_vectors)
                    / sizeof(check_base64_vectors[0]); i++)
    {
        len = strlen(check_base64_vectors[i].raw);

        n = crm_base64url_encode(
            (const unsigned char *) check_base64_vectors[i].raw, len, enc);
        ck_assert_uint_eq(n, crm_base64url_encoded_len(len));
        enc[n] = '\0';
        ck_assert_str_eq(enc, check_base64_vectors[i].encoded);

        ck_assert_int_eq(crm_base64url_decode(enc, n, dec, &len), 0);
        ck_assert_uint_eq(len, strlen(check_base64_vectors[i].raw));
        ck_assert_int_eq(memcmp(dec, check_base64_vectors[i].raw, len), 0);
        ck_assert_uint_le(len, crm_base64url_decoded_max(n));
    }
}
END_TEST


START_TEST(test_base64_url_alphabet)
{
    char            enc[8];
    size_t          n, len;
    unsigned char   dec[8];

    static const unsigned char  raw[] = { 0xfb, 0xff, 0xbf };

    /* "+/+/" in the standard alphabet */
    n = crm_base64url_encode(raw, sizeof(raw), enc);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(memcmp(enc, "-_-_", 4), 0);

    ck_assert_int_eq(crm_base64url_decode("-_-_", 4, dec, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(dec, raw, 3), 0);
}
END_TEST


START_TEST(test_base64_round_trip_all_bytes)
{
    char            enc[400];
    size_t          i, n, len, cut;
    unsigned char   raw[256], dec[300];

    for (i = 0; i < sizeof(raw); i++) {
        raw[i] = (unsigned char) i;
    }

    for (cut = 250; cut <= 256; cut++) {
        n = crm_base64url_encode(raw, cut, enc);
        ck_assert_int_eq(crm_base64url_decode(enc, n, dec, &len), 0);
        ck_assert_uint_eq(len, cut);
        ck_assert_int_eq(memcmp(dec, raw, cut), 0);
    }
}
END_TEST


START_TEST(test_base64_strict_decode)
{
    size_t          i, len;
    unsigned char   dec[16];

    static const char  *bad[] = {
        "Zg==",         /* padding */
        "Zm8=",
        "Z",            /* 1 mod 4 */
        "Zm9vY",
        "Zh",           /* non-zero trailing bits */
        "Zm9",
        "Zm+v",         /* the standard alphabet */
        "Zm/v",
        "Zm9 v",        /* white space */
        "Zm9\nv",
        "Zm\x80v"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(crm_base64url_decode(bad[i], strlen(bad[i]), dec, &len)
                      == -1, "accepted \"%s\"", bad[i]);
    }

    /* a NUL inside the given length is not the end of the input */
    ck_assert_int_eq(crm_base64url_decode("Zm9v\0Zg", 7, dec, &len), -1);

    /* the decoder reads exactly len bytes */
    ck_assert_int_eq(crm_base64url_decode("Zm9vYg==", 6, dec, &len), 0);
    ck_assert_uint_eq(len, 4);
}
END_TEST


static Suite *
check_base64_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("base64", &tc);

    tcase_add_test(tc, test_base64_rfc4648_vectors);
    tcase_add_test(tc, test_base64_url_alphabet);
    tcase_add_test(tc, test_base64_round_trip_all_bytes);
    tcase_add_test(tc, test_base64_strict_decode);

    return s;
}


CRM_CHECK_MAIN(check_base64_suite)
