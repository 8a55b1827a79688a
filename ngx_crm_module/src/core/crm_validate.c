/*
 * Validation and normalisation of identifiers and free text.
 *
 * The email rules are deliberately narrower than RFC 5322: no quoted local
 * parts, no comments, no IP literals, ASCII only.  Every address the old
 * service stored passes them, and a narrow rule leaves nothing for a CRM
 * provider or a mail relay to interpret differently.
 */

#include <stdint.h>
#include <string.h>

#include "crm_validate.h"


static size_t crm_utf8_decode(const unsigned char *p, size_t len,
    uint32_t *cp);
static int crm_email_local_valid(const char *p, size_t len);
static int crm_hostname_label_valid(const char *p, size_t len, int last);


#define crm_validate_space(c)                                                \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\v'                  \
     || (c) == '\f' || (c) == '\r')

#define crm_validate_lower(c)                                                \
    (((c) >= 'A' && (c) <= 'Z') ? (char) ((c) | 0x20) : (c))

#define crm_validate_alpha(c)  ((c) >= 'a' && (c) <= 'z')
#define crm_validate_digit(c)  ((c) >= '0' && (c) <= '9')


crm_status_e
crm_email_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err)
{
    size_t       i, len, local;
    const char  *p, *end, *at;

    p = in.data;
    end = in.data + in.len;

    while (p < end && crm_validate_space(*p)) {
        p++;
    }

    while (end > p && crm_validate_space(end[-1])) {
        end--;
    }

    len = (size_t) (end - p);

    if (len == 0 || len > CRM_EMAIL_MAX) {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        out[i] = crm_validate_lower(p[i]);
    }

    out[len] = '\0';

    /* a second '@' fails later: it is not a domain character */
    at = memchr(out, '@', len);
    if (at == NULL) {
        goto invalid;
    }

    local = (size_t) (at - out);

    if (!crm_email_local_valid(out, local)
        || !crm_hostname_valid(at + 1, len - local - 1))
    {
        goto invalid;
    }

    return CRM_OK;

invalid:

    out[0] = '\0';

    return crm_error_set(err, CRM_E_INVALID, field,
                         "must be a valid email address");
}


static int
crm_email_local_valid(const char *p, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > 64 || p[0] == '.' || p[len - 1] == '.') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (crm_validate_alpha(c) || crm_validate_digit(c)) {
            continue;
        }

        if (c == '.') {
            if (p[i + 1] == '.') {
                return 0;
            }

            continue;
        }

        if (c == '\0' || strchr("!#$%&'*+/=?^_`{|}~-", c) == NULL) {
            return 0;
        }
    }

    return 1;
}


int
crm_hostname_valid(const char *p, size_t len)
{
    size_t       labels;
    const char  *end, *dot;

    if (len == 0 || len > CRM_HOSTNAME_MAX) {
        return 0;
    }

    end = p + len;
    labels = 0;

    for ( ;; ) {
        dot = memchr(p, '.', (size_t) (end - p));

        if (!crm_hostname_label_valid(p, dot != NULL ? (size_t) (dot - p)
                                                     : (size_t) (end - p),
                                      dot == NULL))
        {
            return 0;
        }

        labels++;

        if (dot == NULL) {
            break;
        }

        p = dot + 1;
    }

    return labels >= 2;
}


static int
crm_hostname_label_valid(const char *p, size_t len, int last)
{
    int     idn;
    size_t  i;
    char    c;

    if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-') {
        return 0;
    }

    if (last && len < 2) {
        return 0;
    }

    /*
     * an alphabetic top label keeps IP addresses out ("user@10.0.0.1");
     * an internationalised one is punycode, "xn--p1ai", digits and all
     */
    idn = (len > 4 && memcmp(p, "xn--", 4) == 0);

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c >= 'a' && c <= 'z') {
            continue;
        }

        if ((last && !idn) || (!crm_validate_digit(c) && c != '-')) {
            return 0;
        }
    }

    return 1;
}


int
crm_uuid_valid(crm_str_t s)
{
    int            lower, upper;
    size_t         i;
    unsigned char  c;

    if (s.len != CRM_UUID_LEN) {
        return 0;
    }

    lower = 0;
    upper = 0;

    for (i = 0; i < CRM_UUID_LEN; i++) {
        c = (unsigned char) s.data[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return 0;
            }

            continue;
        }

        if (c >= '0' && c <= '9') {
            continue;
        }

        if (c >= 'a' && c <= 'f') {
            lower = 1;

        } else if (c >= 'A' && c <= 'F') {
            upper = 1;

        } else {
            return 0;
        }
    }

    /* mixed case is not a canonical form; ids are compared as text */
    return !(lower && upper);
}


int
crm_uuid_canonical(crm_str_t s, char *out)
{
    size_t  i;
    char    c, lower[CRM_UUID_LEN];

    if (s.len != CRM_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < CRM_UUID_LEN; i++) {
        c = s.data[i];
        lower[i] = (c >= 'A' && c <= 'F') ? (char) (c - 'A' + 'a') : c;
    }

    if (!crm_uuid_valid((crm_str_t) { lower, CRM_UUID_LEN })) {
        return 0;
    }

    memcpy(out, lower, CRM_UUID_LEN);
    out[CRM_UUID_LEN] = '\0';

    return 1;
}


size_t
crm_utf8_length(crm_str_t s)
{
    size_t                n, k;
    uint32_t              cp;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s.data;
    end = p + s.len;
    n = 0;

    while (p < end) {
        k = crm_utf8_decode(p, (size_t) (end - p), &cp);
        if (k == 0) {
            return (size_t) -1;
        }

        p += k;
        n++;
    }

    return n;
}


crm_status_e
crm_text_check(crm_str_t s, const char *field, size_t min, size_t max,
    int multiline, crm_error_t *err)
{
    size_t                n, k;
    uint32_t              cp;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s.data;
    end = p + s.len;
    n = 0;

    while (p < end) {
        k = crm_utf8_decode(p, (size_t) (end - p), &cp);
        if (k == 0) {
            return crm_error_set(err, CRM_E_INVALID, field,
                                 "must be valid UTF-8");
        }

        /* C0, DEL and the C1 range U+0080..U+009F */
        if ((cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            && !(multiline && (cp == '\t' || cp == '\n')))
        {
            return crm_error_set(err, CRM_E_INVALID, field,
                                 "must not contain control characters");
        }

        p += k;
        n++;
    }

    if (min > 0 && max > 0) {

        if (n >= min && n <= max) {
            return CRM_OK;
        }

        if (min == max) {
            return crm_error_set(err, CRM_E_INVALID, field,
                                 "must be exactly %zu characters", min);
        }

        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be between %zu and %zu characters",
                             min, max);
    }

    if (max > 0 && n > max) {
        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be at most %zu characters", max);
    }

    if (n < min) {

        if (min == 1) {
            return crm_error_set(err, CRM_E_INVALID, field,
                                 "must not be empty");
        }

        return crm_error_set(err, CRM_E_INVALID, field,
                             "must be at least %zu characters", min);
    }

    return CRM_OK;
}


/*
 * Decodes one character; returns its length in bytes, or 0 for anything
 * that is not well-formed UTF-8 (RFC 3629): stray continuation bytes,
 * truncated sequences, overlong forms, surrogates, or beyond U+10FFFF.
 */
static size_t
crm_utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c, min;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        c &= 0x1f;

    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        c &= 0x0f;

    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;

    return n;
}


size_t
crm_text_printable(crm_str_t s, char *out, size_t size)
{
    size_t  i, n;

    n = s.len < size - 1 ? s.len : size - 1;

    for (i = 0; i < n; i++) {
        out[i] = (s.data[i] >= 0x20 && s.data[i] < 0x7f) ? s.data[i] : '?';
    }

    out[n] = '\0';

    return n;
}
