/*
 * Hexadecimal; see crm_hex.h.
 */

#include "crm_hex.h"


static int crm_hex_nibble(char c);


void
crm_hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t  i;

    static const char  digits[] = "0123456789abcdef";

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


int
crm_hex_decode(crm_str_t hex, unsigned char *out, size_t n)
{
    int     hi, lo;
    size_t  i;

    if (hex.len != 2 * n) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        hi = crm_hex_nibble(hex.data[2 * i]);
        lo = crm_hex_nibble(hex.data[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


static int
crm_hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}
