/*
 * base64url without padding (RFC 4648 section 5).  Decoding is strict so
 * that one value has exactly one text: a token or a cursor cannot be
 * re-spelt with padding, other alphabets or stray trailing bits.
 */

#include <stdint.h>

#include "crm_base64.h"


static const char  crm_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static int crm_base64url_value(unsigned char c);


size_t
crm_base64url_encode(const unsigned char *src, size_t len, char *dst)
{
    char      *p;
    size_t     i;
    uint32_t   v;

    p = dst;

    for (i = 0; i + 2 < len; i += 3) {
        v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8)
            | src[i + 2];

        *p++ = crm_base64url_alphabet[(v >> 18) & 0x3f];
        *p++ = crm_base64url_alphabet[(v >> 12) & 0x3f];
        *p++ = crm_base64url_alphabet[(v >> 6) & 0x3f];
        *p++ = crm_base64url_alphabet[v & 0x3f];
    }

    if (len - i == 1) {
        v = (uint32_t) src[i] << 16;

        *p++ = crm_base64url_alphabet[(v >> 18) & 0x3f];
        *p++ = crm_base64url_alphabet[(v >> 12) & 0x3f];

    } else if (len - i == 2) {
        v = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8);

        *p++ = crm_base64url_alphabet[(v >> 18) & 0x3f];
        *p++ = crm_base64url_alphabet[(v >> 12) & 0x3f];
        *p++ = crm_base64url_alphabet[(v >> 6) & 0x3f];
    }

    return (size_t) (p - dst);
}


int
crm_base64url_decode(const char *src, size_t len, unsigned char *dst,
    size_t *out_len)
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
        c = crm_base64url_value((unsigned char) src[i]);
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
crm_base64url_value(unsigned char c)
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

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}
