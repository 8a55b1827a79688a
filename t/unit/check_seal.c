/*
 * Sealed records: AES-256-GCM against the known answers of the GCM
 * specification (McGrew and Viega, "The Galois/Counter Mode of
 * Operation", test cases 13 to 16, the AES-256 ones, as NIST's GCM
 * validation uses them), then the record format, key ids, rotation and
 * the associated data.
 */

#include <stdio.h>

#include "crm_check.h"
#include "crm_seal.h"


typedef struct {
    const char  *name;
    const char  *key;
    const char  *iv;
    const char  *plain;
    const char  *aad;
    const char  *cipher;
    const char  *tag;
} check_gcm_vector_t;


static const check_gcm_vector_t  check_gcm_vectors[] = {
    { "test case 13",
      "0000000000000000000000000000000000000000000000000000000000000000",
      "000000000000000000000000", "", "", "",
      "530f8afbc74536b9a963b4f1c4cb738b" },
    { "test case 14",
      "0000000000000000000000000000000000000000000000000000000000000000",
      "000000000000000000000000",
      "00000000000000000000000000000000", "",
      "cea7403d4d606b6e074ec5d3baf39d18",
      "d0d1c8a799996bf0265b98b5d48ab919" },
    { "test case 15",
      "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
      "cafebabefacedbaddecaf888",
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
      "",
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
      "b094dac5d93471bdec1a502270e3cc6c" },
    { "test case 16",
      "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
      "cafebabefacedbaddecaf888",
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
      "feedfacedeadbeeffeedfacedeadbeefabaddad2",
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
      "76fc6ece0f4e1768cddf8853bb2d551b" },
};


static size_t
check_unhex(const char *hex, unsigned char *out)
{
    size_t        i, n;
    unsigned int  b;

    n = strlen(hex) / 2;

    for (i = 0; i < n; i++) {
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &b), 1);
        out[i] = (unsigned char) b;
    }

    return n;
}


static void
check_ring(crm_seal_keyring_t *ring, const char *current,
    const char *previous)
{
    crm_error_t  err;

    memset(ring, 0, sizeof(crm_seal_keyring_t));

    ck_assert_int_eq(crm_seal_key_parse(current, strlen(current),
                                        &ring->current, &err), CRM_OK);

    if (previous != NULL) {
        ck_assert_int_eq(crm_seal_key_parse(previous, strlen(previous),
                                            &ring->previous, &err), CRM_OK);
        ring->has_previous = 1;
    }
}


#define CHECK_KEY_A \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define CHECK_KEY_B \
    "F0E1D2C3B4A5968778695A4B3C2D1E0F00112233445566778899AABBCCDDEEFF"


START_TEST(test_seal_gcm_known_answers)
{
    size_t                      i, klen, ivlen, plen, alen, clen, tlen;
    unsigned char               key[32], iv[12], plain[64], aad[32];
    unsigned char               cipher[64], tag[16], out[64], got[16];
    const check_gcm_vector_t   *v;

    for (i = 0; i < sizeof(check_gcm_vectors) / sizeof(check_gcm_vectors[0]);
         i++)
    {
        v = &check_gcm_vectors[i];

        klen = check_unhex(v->key, key);
        ivlen = check_unhex(v->iv, iv);
        plen = check_unhex(v->plain, plain);
        alen = check_unhex(v->aad, aad);
        clen = check_unhex(v->cipher, cipher);
        tlen = check_unhex(v->tag, tag);

        ck_assert_uint_eq(klen, 32);
        ck_assert_uint_eq(ivlen, 12);
        ck_assert_uint_eq(tlen, 16);
        ck_assert_uint_eq(plen, clen);

        ck_assert_msg(crm_aes256gcm_encrypt(key, iv, aad, alen, plain, plen,
                                            out, got) == 0, "%s", v->name);
        ck_assert_msg(memcmp(out, cipher, clen) == 0,
                      "%s: ciphertext", v->name);
        ck_assert_msg(memcmp(got, tag, 16) == 0, "%s: tag", v->name);

        ck_assert_msg(crm_aes256gcm_decrypt(key, iv, aad, alen, cipher, clen,
                                            tag, out) == 0, "%s", v->name);
        ck_assert_msg(memcmp(out, plain, plen) == 0, "%s: plaintext",
                      v->name);

        /* one bit of the tag, the ciphertext or the data: refused */
        tag[15] ^= 1;
        ck_assert_msg(crm_aes256gcm_decrypt(key, iv, aad, alen, cipher, clen,
                                            tag, out) == -1,
                      "%s: a changed tag", v->name);
        tag[15] ^= 1;

        if (clen > 0) {
            cipher[0] ^= 0x80;
            ck_assert_msg(crm_aes256gcm_decrypt(key, iv, aad, alen, cipher,
                                                clen, tag, out) == -1,
                          "%s: a changed ciphertext", v->name);
            cipher[0] ^= 0x80;
        }

        if (alen > 0) {
            aad[alen - 1] ^= 1;
            ck_assert_msg(crm_aes256gcm_decrypt(key, iv, aad, alen, cipher,
                                                clen, tag, out) == -1,
                          "%s: other associated data", v->name);
        }
    }
}
END_TEST


START_TEST(test_seal_key_parse)
{
    crm_error_t     err;
    crm_seal_key_t  a, b, a2;

    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_A "\n",
                                        sizeof(CHECK_KEY_A), &a, &err),
                     CRM_OK);
    ck_assert_uint_eq(a.key[0], 0x00);
    ck_assert_uint_eq(a.key[31], 0x1f);
    ck_assert_uint_eq(strlen(a.id), CRM_SEAL_KEY_ID_LEN);

    /* the id depends on the key alone, and never shows it */
    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_A, 64, &a2, &err), CRM_OK);
    ck_assert_str_eq(a.id, a2.id);
    ck_assert_ptr_null(strstr(CHECK_KEY_A, a.id));

    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_B, 64, &b, &err), CRM_OK);
    ck_assert_uint_eq(b.key[0], 0xf0);
    ck_assert_str_ne(a.id, b.id);

    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_A, 63, &a2, &err),
                     CRM_E_INVALID);
    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_A "00", 66, &a2, &err),
                     CRM_E_INVALID);
    ck_assert_int_eq(crm_seal_key_parse(
        "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", 64,
        &a2, &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_seal_key_parse(CHECK_KEY_A "\n\n", 66, &a2, &err),
                     CRM_E_INVALID);
    ck_assert_int_eq(crm_seal_key_parse("", 0, &a2, &err), CRM_E_INVALID);
}
END_TEST


START_TEST(test_seal_round_trip)
{
    size_t               n, m;
    crm_error_t          err;
    const char          *id;
    unsigned char        rec[128], rec2[128], out[128];
    crm_seal_keyring_t   ring;
    static const char    plain[] = "{\"api_key\":\"pk_live_secret\"}";
    static const char    aad[] = "0b5f6d1e-5b7a-4a43-9a0e-1f3a8c2d4e5f/klaviyo";

    check_ring(&ring, CHECK_KEY_A, NULL);

    ck_assert_int_eq(crm_seal(&ring, aad, sizeof(aad) - 1, plain,
                              sizeof(plain) - 1, rec, &n, &id, &err), CRM_OK);
    ck_assert_uint_eq(n, sizeof(plain) - 1 + CRM_SEAL_OVERHEAD);
    ck_assert_str_eq(id, ring.current.id);
    ck_assert_ptr_null(memmem(rec, n, "pk_live", 7));

    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec, n, out,
                                &m, &err), CRM_OK);
    ck_assert_uint_eq(m, sizeof(plain) - 1);
    ck_assert_int_eq(memcmp(out, plain, m), 0);

    /* a fresh nonce each time: the same secret never seals the same way */
    ck_assert_int_eq(crm_seal(&ring, aad, sizeof(aad) - 1, plain,
                              sizeof(plain) - 1, rec2, &m, &id, &err),
                     CRM_OK);
    ck_assert_int_ne(memcmp(rec, rec2, CRM_SEAL_NONCE_LEN), 0);
    ck_assert_int_ne(memcmp(rec, rec2, n), 0);

    /* another owner or type: the record does not open */
    ck_assert_int_eq(crm_unseal(&ring, id, "other-owner/klaviyo", 19, rec, n,
                                out, &m, &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 2, rec, n, out,
                                &m, &err), CRM_E_INVALID);

    /* any byte changed, or cut short */
    rec[CRM_SEAL_NONCE_LEN + 3] ^= 1;
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec, n, out,
                                &m, &err), CRM_E_INVALID);
    rec[CRM_SEAL_NONCE_LEN + 3] ^= 1;
    rec[0] ^= 1;
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec, n, out,
                                &m, &err), CRM_E_INVALID);
    rec[0] ^= 1;
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec, n - 1,
                                out, &m, &err), CRM_E_INVALID);
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec,
                                CRM_SEAL_OVERHEAD - 1, out, &m, &err),
                     CRM_E_INVALID);

    /* an empty secret seals too */
    ck_assert_int_eq(crm_seal(&ring, aad, sizeof(aad) - 1, "", 0, rec, &n,
                              &id, &err), CRM_OK);
    ck_assert_uint_eq(n, CRM_SEAL_OVERHEAD);
    ck_assert_int_eq(crm_unseal(&ring, id, aad, sizeof(aad) - 1, rec, n, out,
                                &m, &err), CRM_OK);
    ck_assert_uint_eq(m, 0);
}
END_TEST


START_TEST(test_seal_rotation)
{
    size_t               n, m;
    crm_error_t          err;
    const char          *old_id, *new_id;
    unsigned char        rec[64], out[64];
    crm_seal_keyring_t   before, after, forgotten;

    /* sealed under A; then B is current and A the previous key */
    check_ring(&before, CHECK_KEY_A, NULL);
    check_ring(&after, CHECK_KEY_B, CHECK_KEY_A);
    check_ring(&forgotten, CHECK_KEY_B, NULL);

    ck_assert_int_eq(crm_seal(&before, "x", 1, "secret", 6, rec, &n, &old_id,
                              &err), CRM_OK);

    ck_assert_int_eq(crm_unseal(&after, old_id, "x", 1, rec, n, out, &m,
                                &err), CRM_OK);
    ck_assert_int_eq(memcmp(out, "secret", 6), 0);

    /* written again, it moves to the current key */
    ck_assert_int_eq(crm_seal(&after, "x", 1, out, m, rec, &n, &new_id, &err),
                     CRM_OK);
    ck_assert_str_eq(new_id, after.current.id);
    ck_assert_str_ne(new_id, old_id);
    ck_assert_int_eq(crm_unseal(&forgotten, new_id, "x", 1, rec, n, out, &m,
                                &err), CRM_OK);

    /* a key no longer configured: refused, naming the id only */
    ck_assert_int_eq(crm_unseal(&forgotten, old_id, "x", 1, rec, n, out, &m,
                                &err), CRM_E_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, old_id));

    /* an id that names the wrong key fails the tag, not the lookup */
    ck_assert_int_eq(crm_unseal(&after, after.previous.id, "x", 1, rec, n,
                                out, &m, &err), CRM_E_INVALID);
}
END_TEST


static Suite *
check_seal_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("seal", &tc);

    tcase_add_test(tc, test_seal_gcm_known_answers);
    tcase_add_test(tc, test_seal_key_parse);
    tcase_add_test(tc, test_seal_round_trip);
    tcase_add_test(tc, test_seal_rotation);

    return s;
}


CRM_CHECK_MAIN(check_seal_suite)
