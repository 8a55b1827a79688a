/*
 * base64url without padding (RFC 4648 section 5), and base64 (section 4).
 * Decoding is strict so that one value has exactly one text: a token or a
 * cursor cannot be re-spelt with padding, other alphabets or stray
 * trailing bits.
 */

#include <stdint.h>

#include "crm_base64.h"


static const char  crm_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char  crm_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


static size_t crm_base64_encode_with(const char *alphabet,
    const unsigned char *src, size_t len, char *dst);
static int crm_base64_decode_with(const char *alphabet, const char *src,
    size_t len, unsigned char *dst, size_t *out_len);
static int crm_base64_value(const char *alphabet, unsigned char c);


size_t
crm_base64url_encode(const unsigned char *src, size_t len, char *dst)
{
    return crm_base64_encode_with(crm_base64url_alphabet, src, len, dst);
}


size_t
crm_base64_encode(const unsigned char *src, size_t len, char *dst)
{
    size_t  n;

    n = crm_base64_encode_with(crm_base64_alphabet, src, len, dst);

    while (n % 4) {
        dst[n++] = '=';
    }

    return n;
}


int
crm_base64url_decode(const char *src, size_t len, unsigned char *dst,
    size_t *out_len)
{
    return crm_base64_decode_with(crm_base64url_alphabet, src, len, dst,
                                  out_len);
}


int
crm_base64_decode(const char *src, size_t len, unsigned char *dst,
    size_t *out_len)
{
    size_t  n;

    n = len;

    while (n > 0 && len - n < 2 && src[n - 1] == '=') {
        n--;
    }

    if (n < len && len % 4 != 0) {
        return -1;
    }

    return crm_base64_decode_with(crm_base64_alphabet, src, n, dst, out_len);
}


static size_t
crm_base64_encode_with(const char *alphabet, const unsigned char *src,
    size_t len, char *dst)
{
    char      *p;
    size_t     i;
    uint32_t   v;

    p = dst;

    for (i = 0; i + 2 < len; i += 3) {
        v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8)
            | src[i + 2];

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
        *p++ = alphabet[v & 0x3f];
    }

    if (len - i == 1) {
        v = (uint32_t) src[i] << 16;

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];

    } else if (len - i == 2) {
        v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8);

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
    }

    return (size_t) (p - dst);
}


static int
crm_base64_decode_with(const char *alphabet, const char *src, size_t len,
    unsigned char *dst, size_t *out_len)
{
    int             c;
    size_t          i, rest;
    uint32_t        v;
    unsigned char  *p;

    if (len % 4 == 1) {
        return -1;
    }

    p = dst;
    v = 0;

    for (i = 0; i < len; i++) {
        c = crm_base64_value(alphabet, (unsigned char) src[i]);
        if (c < 0) {
            return -1;
        }

        v = (v << 6) | (uint32_t) c;

        if (i % 4 == 3) {
            *p++ = (unsigned char) (v >> 16);
            *p++ = (unsigned char) (v >> 8);
            *p++ = (unsigned char) v;
            v = 0;
        }
    }

    rest = len % 4;

    /* the bits below the last whole byte must be zero */
    if (rest == 2) {
        if (v & 0x0f) {
            return -1;
        }

        *p++ = (unsigned char) (v >> 4);

    } else if (rest == 3) {
        if (v & 0x03) {
            return -1;
        }

        *p++ = (unsigned char) (v >> 10);
        *p++ = (unsigned char) (v >> 2);
    }

    *out_len = (size_t) (p - dst);

    return 0;
}


static int
crm_base64_value(const char *alphabet, unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == (unsigned char) alphabet[62]) {
        return 62;
    }

    if (c == (unsigned char) alphabet[63]) {
        return 63;
    }

    return -1;
}
