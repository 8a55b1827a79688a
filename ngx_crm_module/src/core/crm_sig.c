/*
 * Signed callbacks and webhooks; see crm_sig.h.
 *
 * The MAC is computed over its parts ("<t>", ".", "<body>") in one HMAC
 * context, so the body is never copied.  Every signature sent is compared
 * with every key's, in constant time, even after one has matched.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crm_base64.h"
#include "crm_hex.h"
#include "crm_sig.h"


#define CRM_SIG_MD_LEN   32
#define CRM_SIG_B64_LEN  44         /* crm_base64_encoded_len(32) */
#define CRM_SIG_T_MAX    12         /* digits: far beyond any real time */
#define CRM_SIG_V1_MAX   8          /* a rotation sends two */
#define CRM_WHSEC_MIN    24         /* a whsec_ secret's bytes */
#define CRM_WHSEC_MAX    64


static int crm_sig_mac(const unsigned char *key, size_t key_len,
    const crm_str_t *parts, size_t nparts, unsigned char *md);
static crm_status_e crm_sig_timestamp(crm_str_t ts, int64_t now,
    int64_t tolerance, crm_error_t *err);
static crm_status_e crm_webhook_key(crm_webhook_source_t *src,
    crm_str_t line, crm_error_t *err);
static crm_status_e crm_webhook_match(const crm_webhook_source_t *src,
    const crm_str_t *parts, size_t nparts, const crm_str_t *sigs,
    size_t nsigs, crm_error_t *err);
static crm_status_e crm_sig_fail(crm_error_t *err, const char *what);


crm_status_e
crm_sig_verify(const unsigned char *key, size_t key_len, crm_str_t header,
    crm_str_t body, int64_t now, int64_t tolerance, crm_error_t *err)
{
    int             nt, match;
    size_t          i, n, nv;
    crm_str_t       elt, name, value, ts, parts[3];
    crm_status_e    rc;
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

    if (nt != 1 || nv == 0) {
        goto malformed;
    }

    rc = crm_sig_timestamp(ts, now, tolerance, err);
    if (rc != CRM_OK) {
        return rc;
    }

    parts[0] = ts;
    parts[1] = (crm_str_t) { ".", 1 };
    parts[2] = body;

    if (crm_sig_mac(key, key_len, parts, 3, md) != 0) {
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
    crm_str_t       parts[3];
    unsigned char   md[CRM_SIG_MD_LEN];

    n = snprintf(ts, sizeof(ts), "%lld", (long long) t);
    if (n <= 0 || (size_t) n >= sizeof(ts)) {
        return -1;
    }

    parts[0] = (crm_str_t) { ts, (size_t) n };
    parts[1] = (crm_str_t) { ".", 1 };
    parts[2] = body;

    if (crm_sig_mac(key, key_len, parts, 3, md) != 0) {
        return -1;
    }

    crm_hex_encode(md, CRM_SIG_MD_LEN, out);

    return 0;
}


crm_status_e
crm_webhook_source_init(crm_webhook_source_t *src, crm_str_t name,
    crm_str_t scheme, crm_str_t secrets, crm_error_t *err)
{
    size_t        i, n;
    crm_str_t     line;
    crm_status_e  rc;

    memset(src, 0, sizeof(crm_webhook_source_t));

    if (name.len == 0 || name.len > CRM_WEBHOOK_NAME_MAX) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "the source name must have 1 to %d characters",
                             CRM_WEBHOOK_NAME_MAX);
    }

    for (i = 0; i < name.len; i++) {
        if (!((name.data[i] >= 'a' && name.data[i] <= 'z')
              || (name.data[i] >= '0' && name.data[i] <= '9')
              || name.data[i] == '_' || name.data[i] == '-'))
        {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "the source name may hold lower-case "
                                 "letters, digits, \"_\" and \"-\" only");
        }
    }

    memcpy(src->name, name.data, name.len);

    if (crm_str_eq(scheme, "standard")) {
        src->scheme = CRM_WEBHOOK_STANDARD;

    } else if (crm_str_eq(scheme, "shopify")) {
        src->scheme = CRM_WEBHOOK_SHOPIFY;

    } else {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "unknown scheme \"%.*s\": \"standard\" or "
                             "\"shopify\"", (int) (scheme.len > 32
                                                   ? 32 : scheme.len),
                             scheme.data);
    }

    while (secrets.len > 0) {
        for (n = 0; n < secrets.len && secrets.data[n] != '\n'; n++) {
            /* void */
        }

        line = (crm_str_t) { secrets.data, n };

        while (line.len > 0 && (line.data[line.len - 1] == '\r'
                                || line.data[line.len - 1] == ' '
                                || line.data[line.len - 1] == '\t'))
        {
            line.len--;
        }

        if (line.len > 0) {
            rc = crm_webhook_key(src, line, err);
            if (rc != CRM_OK) {
                return rc;
            }
        }

        n = n < secrets.len ? n + 1 : n;
        secrets.data += n;
        secrets.len -= n;
    }

    if (src->nkeys == 0) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "the secret file holds no secret");
    }

    return CRM_OK;
}


/* one line of a secret file: the secret number src->nkeys + 1 */
static crm_status_e
crm_webhook_key(crm_webhook_source_t *src, crm_str_t line, crm_error_t *err)
{
    size_t              i, n;
    crm_webhook_key_t  *key;
    unsigned char       buf[crm_base64url_decoded_max(
                            crm_base64_encoded_len(CRM_WEBHOOK_KEY_MAX))];

    n = src->nkeys + 1;

    if (src->nkeys == CRM_WEBHOOK_KEYS_MAX) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "more than %d secrets", CRM_WEBHOOK_KEYS_MAX);
    }

    key = &src->keys[src->nkeys];

    if (src->scheme == CRM_WEBHOOK_SHOPIFY) {
        if (line.len < CRM_WEBHOOK_SHOPIFY_MIN
            || line.len > CRM_WEBHOOK_KEY_MAX)
        {
            return crm_error_set(err, CRM_E_INVALID, NULL,
                                 "secret %zu: a Shopify client secret has "
                                 "%d to %d characters, not %zu", n,
                                 CRM_WEBHOOK_SHOPIFY_MIN,
                                 CRM_WEBHOOK_KEY_MAX, line.len);
        }

        for (i = 0; i < line.len; i++) {
            if (line.data[i] <= ' ' || line.data[i] > '~') {
                return crm_error_set(err, CRM_E_INVALID, NULL,
                                     "secret %zu: holds a character that "
                                     "is not printable ASCII", n);
            }
        }

        memcpy(key->data, line.data, line.len);
        key->len = line.len;
        src->nkeys++;

        return CRM_OK;
    }

    if (line.len < 6 || memcmp(line.data, "whsec_", 6) != 0
        || line.len - 6 > crm_base64_encoded_len(CRM_WEBHOOK_KEY_MAX)
        || crm_base64_decode(line.data + 6, line.len - 6, buf, &key->len)
           != 0)
    {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "secret %zu: must be \"whsec_\" and base64",
                             n);
    }

    if (key->len < CRM_WHSEC_MIN || key->len > CRM_WHSEC_MAX) {
        return crm_error_set(err, CRM_E_INVALID, NULL,
                             "secret %zu: decodes to %zu bytes, %d to %d "
                             "are required", n, key->len, CRM_WHSEC_MIN,
                             CRM_WHSEC_MAX);
    }

    memcpy(key->data, buf, key->len);
    src->nkeys++;

    return CRM_OK;
}


crm_status_e
crm_webhook_verify_standard(const crm_webhook_source_t *src, crm_str_t id,
    crm_str_t timestamp, crm_str_t signatures, crm_str_t body, int64_t now,
    int64_t tolerance, crm_error_t *err)
{
    size_t        i, n, nsigs;
    crm_str_t     entry, parts[5], sigs[CRM_SIG_V1_MAX];
    crm_status_e  rc;

    if (id.len == 0 || timestamp.len == 0 || signatures.len == 0) {
        return crm_sig_fail(err, "missing signature");
    }

    if (id.len > CRM_WEBHOOK_ID_MAX) {
        return crm_sig_fail(err, "malformed signature");
    }

    for (i = 0; i < id.len; i++) {
        if (id.data[i] <= ' ' || id.data[i] > '~') {
            return crm_sig_fail(err, "malformed signature");
        }
    }

    nsigs = 0;

    for (n = 0; ; n++) {
        while (signatures.len > 0 && signatures.data[0] == ' ') {
            signatures.data++;
            signatures.len--;
        }

        if (signatures.len == 0) {
            break;
        }

        for (i = 0; i < signatures.len && signatures.data[i] != ' '; i++) {
            /* void */
        }

        entry = (crm_str_t) { signatures.data, i };
        signatures.data += i;
        signatures.len -= i;

        for (i = 0; i < entry.len && entry.data[i] != ','; i++) {
            /* void */
        }

        if (n == CRM_SIG_V1_MAX || i == 0 || i + 1 >= entry.len) {
            return crm_sig_fail(err, "malformed signature");
        }

        if (i == 2 && memcmp(entry.data, "v1", 2) == 0) {
            sigs[nsigs++] = (crm_str_t) { entry.data + 3, entry.len - 3 };
        }
    }

    if (n == 0) {
        return crm_sig_fail(err, "malformed signature");
    }

    rc = crm_sig_timestamp(timestamp, now, tolerance, err);
    if (rc != CRM_OK) {
        return rc;
    }

    parts[0] = id;
    parts[1] = (crm_str_t) { ".", 1 };
    parts[2] = timestamp;
    parts[3] = parts[1];
    parts[4] = body;

    return crm_webhook_match(src, parts, 5, sigs, nsigs, err);
}


crm_status_e
crm_webhook_verify_shopify(const crm_webhook_source_t *src, crm_str_t hmac,
    crm_str_t body, crm_error_t *err)
{
    while (hmac.len > 0 && hmac.data[hmac.len - 1] == ' ') {
        hmac.len--;
    }

    if (hmac.len == 0) {
        return crm_sig_fail(err, "missing signature");
    }

    return crm_webhook_match(src, &body, 1, &hmac, 1, err);
}


/* any of sigs (base64) against the MAC of parts under any key */
static crm_status_e
crm_webhook_match(const crm_webhook_source_t *src, const crm_str_t *parts,
    size_t nparts, const crm_str_t *sigs, size_t nsigs, crm_error_t *err)
{
    int            match;
    char           b64[CRM_SIG_B64_LEN];
    size_t         k, i;
    unsigned char  md[CRM_SIG_MD_LEN];

    match = 0;

    for (k = 0; k < src->nkeys; k++) {
        if (crm_sig_mac(src->keys[k].data, src->keys[k].len, parts, nparts,
                        md) != 0)
        {
            crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
            return crm_error_cause(err, "HMAC failed");
        }

        (void) crm_base64_encode(md, CRM_SIG_MD_LEN, b64);

        for (i = 0; i < nsigs; i++) {
            if (sigs[i].len == CRM_SIG_B64_LEN
                && CRYPTO_memcmp(sigs[i].data, b64, CRM_SIG_B64_LEN) == 0)
            {
                match = 1;
            }
        }
    }

    if (!match) {
        return crm_sig_fail(err, "invalid signature");
    }

    return CRM_OK;
}


/* unix seconds as 1..12 digits, within tolerance of now either way */
static crm_status_e
crm_sig_timestamp(crm_str_t ts, int64_t now, int64_t tolerance,
    crm_error_t *err)
{
    size_t   i;
    int64_t  t;

    if (ts.len == 0 || ts.len > CRM_SIG_T_MAX) {
        return crm_sig_fail(err, "malformed signature");
    }

    t = 0;

    for (i = 0; i < ts.len; i++) {
        if (ts.data[i] < '0' || ts.data[i] > '9') {
            return crm_sig_fail(err, "malformed signature");
        }

        t = t * 10 + (ts.data[i] - '0');
    }

    if (t < now - tolerance || t > now + tolerance) {
        return crm_sig_fail(err, "stale signature");
    }

    return CRM_OK;
}


static crm_status_e
crm_sig_fail(crm_error_t *err, const char *what)
{
    return crm_error_set(err, CRM_E_UNAUTHORIZED, NULL, "%s", what);
}


static int
crm_sig_mac(const unsigned char *key, size_t key_len, const crm_str_t *parts,
    size_t nparts, unsigned char *md)
{
    int           rc;
    size_t        i, len;
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

    rc = EVP_MAC_init(ctx, key, key_len, params) == 1;

    for (i = 0; rc && i < nparts; i++) {
        rc = EVP_MAC_update(ctx, (const unsigned char *) parts[i].data,
                            parts[i].len) == 1;
    }

    rc = rc && EVP_MAC_final(ctx, md, &len, CRM_SIG_MD_LEN) == 1
         && len == CRM_SIG_MD_LEN;

    EVP_MAC_CTX_free(ctx);

    return rc ? 0 : -1;
}
