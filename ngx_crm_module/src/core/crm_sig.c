/*
 * Signed callbacks; see crm_sig.h.
 *
 * The MAC is computed over "<t>.<body>" in one HMAC context, fed in
 * parts, so the body is never copied.  Every v1 element is compared, in
 * constant time, even after one has matched.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crm_hex.h"
#include "crm_sig.h"


#define CRM_SIG_MD_LEN   32
#define CRM_SIG_T_MAX    12         /* digits: far beyond any real time */
#define CRM_SIG_V1_MAX   8          /* a rotation sends two */


static int crm_sig_mac(const unsigned char *key, size_t key_len,
    crm_str_t t, crm_str_t body, unsigned char *md);


crm_status_e
crm_sig_verify(const unsigned char *key, size_t key_len, crm_str_t header,
    crm_str_t body, int64_t now, int64_t tolerance, crm_error_t *err)
{
    int             nt, match;
    size_t          i, n, nv;
    int64_t         t;
    crm_str_t       elt, name, value, ts;
    unsigned char   md[CRM_SIG_MD_LEN], v1[CRM_SIG_V1_MAX][CRM_SIG_MD_LEN];

    if (header.len == 0) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "missing signature");
    }

    nt = 0;
    nv = 0;
    ts = (crm_str_t) { NULL, 0 };

    /* an empty element, a trailing comma's included, is malformed */
    for ( ;; ) {
        for (n = 0; n < header.len && header.data[n] != ','; n++) {
            /* void */
        }

        elt = (crm_str_t) { header.data, n };

        for (i = 0; i < elt.len && elt.data[i] != '='; i++) {
            /* void */
        }

        if (i == elt.len) {
            goto malformed;
        }

        name = (crm_str_t) { elt.data, i };
        value = (crm_str_t) { elt.data + i + 1, elt.len - i - 1 };

        if (crm_str_eq(name, "t")) {
            ts = value;
            nt++;

        } else if (crm_str_eq(name, "v1")) {
            if (nv == CRM_SIG_V1_MAX
                || crm_hex_decode(value, v1[nv], CRM_SIG_MD_LEN) != 0)
            {
                goto malformed;
            }

            nv++;
        }

        if (n == header.len) {
            break;
        }

        header.data += n + 1;
        header.len -= n + 1;

        while (header.len && header.data[0] == ' ') {
            header.data++;
            header.len--;
        }
    }

    if (nt != 1 || nv == 0 || ts.len == 0 || ts.len > CRM_SIG_T_MAX) {
        goto malformed;
    }

    t = 0;

    for (i = 0; i < ts.len; i++) {
        if (ts.data[i] < '0' || ts.data[i] > '9') {
            goto malformed;
        }

        t = t * 10 + (ts.data[i] - '0');
    }

    if (t < now - tolerance || t > now + tolerance) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "stale signature");
    }

    if (crm_sig_mac(key, key_len, ts, body, md) != 0) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "HMAC failed");
    }

    match = 0;

    for (i = 0; i < nv; i++) {
        if (CRYPTO_memcmp(md, v1[i], CRM_SIG_MD_LEN) == 0) {
            match = 1;
        }
    }

    if (!match) {
        return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                             "invalid signature");
    }

    return CRM_OK;

malformed:

    return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL,
                         "malformed signature");
}


int
crm_sig_sign(const unsigned char *key, size_t key_len, int64_t t,
    crm_str_t body, char *out)
{
    int             n;
    char            ts[24];
    unsigned char   md[CRM_SIG_MD_LEN];

    n = snprintf(ts, sizeof(ts), "%lld", (long long) t);
    if (n <= 0 || (size_t) n >= sizeof(ts)) {
        return -1;
    }

    if (crm_sig_mac(key, key_len, (crm_str_t) { ts, (size_t) n }, body, md)
        != 0)
    {
        return -1;
    }

    crm_hex_encode(md, CRM_SIG_MD_LEN, out);

    return 0;
}


static int
crm_sig_mac(const unsigned char *key, size_t key_len, crm_str_t t,
    crm_str_t body, unsigned char *md)
{
    int           rc;
    size_t        len;
    EVP_MAC      *mac;
    EVP_MAC_CTX  *ctx;
    OSSL_PARAM    params[2];

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        return -1;
    }

    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    if (ctx == NULL) {
        return -1;
    }

    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256",
                                                 0);
    params[1] = OSSL_PARAM_construct_end();

    rc = EVP_MAC_init(ctx, key, key_len, params) == 1
         && EVP_MAC_update(ctx, (const unsigned char *) t.data, t.len) == 1
         && EVP_MAC_update(ctx, (const unsigned char *) ".", 1) == 1
         && EVP_MAC_update(ctx, (const unsigned char *) body.data, body.len)
            == 1
         && EVP_MAC_final(ctx, md, &len, CRM_SIG_MD_LEN) == 1
         && len == CRM_SIG_MD_LEN;

    EVP_MAC_CTX_free(ctx);

    return rc ? 0 : -1;
}
