/*
 * Normalisation of a lead's identifiers.
 *
 * A lead arrives from a form, an affiliate callback or a provider's
 * webhook, each spelling a phone number or a shop's address its own way;
 * matching them needs one spelling.  The rules are narrow on purpose:
 * what cannot be normalised without guessing (a national number, an IP
 * address, a Unicode host) is refused rather than stored in a form that
 * would never match.
 */

#include "crm_normalize.h"
#include "crm_validate.h"


static int crm_phone_digits(const char *p, const char *end, char *out);
static int crm_domain_host(const char *p, const char *end, const char **host,
    size_t *len);


#define crm_normalize_lower(c)                                               \
    (((c) >= 'A' && (c) <= 'Z') ? (char) ((c) | 0x20) : (c))

#define crm_normalize_alpha(c)                                               \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))

#define crm_normalize_digit(c)  ((c) >= '0' && (c) <= '9')

#define CRM_PHONE_DIGITS_MIN  8
#define CRM_PHONE_DIGITS_MAX  (CRM_PHONE_MAX - 1)


crm_status_e
crm_phone_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err)
{
    const char  *p, *end;

    p = in.data;
    end = in.data + in.len;

    /* spaces separate; at the edges they separate nothing */
    while (p < end && *p == ' ') {
        p++;
    }

    if (end - p >= 1 && p[0] == '+') {
        p++;

    } else if (end - p >= 2 && p[0] == '0' && p[1] == '0') {
        p += 2;

    } else {
        goto invalid;
    }

    out[0] = '+';

    if (crm_phone_digits(p, end, out + 1) != 0) {
        goto invalid;
    }

    return CRM_OK;

invalid:

    out[0] = '\0';

    return crm_error_set(err, CRM_E_INVALID, field,
                         "must be a phone number in international format "
                         "(+ and country code)");
}


/*
 * The digits after the international prefix, separators dropped; one
 * pair of parentheses may group digits, as in "+1 (415) 555-2671".
 * Returns -1 for anything else, or a count outside 8..15, or a country
 * code starting with 0.
 */
static int
crm_phone_digits(const char *p, const char *end, char *out)
{
    int     in_paren, paren_used;
    char    c;
    size_t  n, open_at;

    n = 0;
    open_at = 0;
    in_paren = 0;
    paren_used = 0;

    for ( /* void */ ; p < end; p++) {
        c = *p;

        if (crm_normalize_digit(c)) {

            if (n == CRM_PHONE_DIGITS_MAX) {
                return -1;
            }

            out[n++] = c;
            continue;
        }

        switch (c) {

        case ' ':
        case '.':
        case '-':
        case '/':
            break;

        case '(':
            if (paren_used) {
                return -1;
            }

            paren_used = 1;
            in_paren = 1;
            open_at = n;
            break;

        case ')':
            /* "()" groups nothing: not a number someone wrote */
            if (!in_paren || n == open_at) {
                return -1;
            }

            /*
             * "+44 (0)20 7946 0958": a lone 0 in parentheses is the trunk
             * prefix dialled at home, never part of the international
             * number; keeping it would store a number that does not exist
             */
            if (open_at > 0 && n == open_at + 1 && out[open_at] == '0') {
                n = open_at;
            }

            in_paren = 0;
            break;

        default:
            return -1;
        }
    }

    if (in_paren || n < CRM_PHONE_DIGITS_MIN || out[0] == '0') {
        return -1;
    }

    out[n] = '\0';

    return 0;
}


crm_status_e
crm_domain_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err)
{
    size_t       i, len;
    const char  *host;

    if (crm_domain_host(in.data, in.data + in.len, &host, &len) != 0) {
        goto invalid;
    }

    if (len > 0 && host[len - 1] == '.') {
        len--;
    }

    if (len == 0 || len > CRM_DOMAIN_MAX) {
        goto invalid;
    }

    for (i = 0; i < len; i++) {
        out[i] = crm_normalize_lower(host[i]);
    }

    out[len] = '\0';

    if (!crm_hostname_valid(out, len)) {
        goto invalid;
    }

    return CRM_OK;

invalid:

    out[0] = '\0';

    return crm_error_set(err, CRM_E_INVALID, field,
                         "must be a domain name such as shop.example.com");
}


/*
 * The host of "[http[s]://]host[:port][/path][?query][#fragment]".
 * User-info is refused, not dropped: "shop.com@evil.com" is a trick, and
 * no shop's address is written that way.
 */
static int
crm_domain_host(const char *p, const char *end, const char **host,
    size_t *len)
{
    size_t       i, n;
    const char  *q, *colon;

    static const char  *schemes[] = { "http://", "https://" };

    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        n = strlen(schemes[i]);

        if ((size_t) (end - p) < n) {
            continue;
        }

        for (q = p; q < p + n; q++) {
            if (crm_normalize_lower(*q) != schemes[i][q - p]) {
                break;
            }
        }

        if (q == p + n) {
            p += n;
            break;
        }
    }

    colon = NULL;

    for (q = p; q < end; q++) {

        if (*q == '/' || *q == '?' || *q == '#') {
            break;
        }

        if (*q == '@') {
            return -1;
        }

        if (*q == ':' && colon == NULL) {
            colon = q;
        }
    }

    end = q;

    /* a port is digits, 1 to 5 of them; "ftp://x" and "a:b:c" are not */
    if (colon != NULL) {
        n = (size_t) (end - colon - 1);

        if (n == 0 || n > 5) {
            return -1;
        }

        for (q = colon + 1; q < end; q++) {
            if (!crm_normalize_digit(*q)) {
                return -1;
            }
        }

        end = colon;
    }

    *host = p;
    *len = (size_t) (end - p);

    return 0;
}


crm_status_e
crm_currency_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err)
{
    size_t  i;
    char    c;

    if (in.len != CRM_CURRENCY_LEN) {
        goto invalid;
    }

    for (i = 0; i < CRM_CURRENCY_LEN; i++) {
        c = in.data[i];

        if (!crm_normalize_alpha(c)) {
            goto invalid;
        }

        out[i] = (char) (c & ~0x20);
    }

    out[CRM_CURRENCY_LEN] = '\0';

    return CRM_OK;

invalid:

    out[0] = '\0';

    return crm_error_set(err, CRM_E_INVALID, field,
                         "must be a three-letter currency code such as USD");
}
