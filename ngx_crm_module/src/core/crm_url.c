/*
 * Affiliate targets; see crm_url.h.
 *
 * The check is narrower than RFC 3986 on purpose.  A stored target is
 * sent to browsers as a Location, so anything a browser might read
 * differently from us is refused: a backslash (read as "/" by browsers),
 * user-info ("https://bank.example@evil.example"), a scheme-relative
 * "//host", raw spaces or control characters, and IPv4 parts with
 * leading zeros (octal to some parsers).  A host name may be in any
 * case; it is checked lower-cased.
 */

#include <arpa/inet.h>
#include <netinet/in.h>

#include "crm_url.h"
#include "crm_validate.h"


typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      overflow;
} crm_url_buf_t;


static const char *crm_url_check_authority(const char *p, const char *end);
static int crm_url_ipv4_valid(const char *p, size_t len);
static int crm_url_ipv6_valid(const char *p, size_t len);
static int crm_url_host_name_valid(const char *p, size_t len);
static int crm_url_port_valid(const char *p, const char *end);
static int crm_url_prefix(crm_str_t s, const char *prefix);
static int crm_url_param_ours(const char *p, size_t len);
static void crm_url_put(crm_url_buf_t *b, const char *p, size_t len);


#define crm_url_lower(c)                                                      \
    (((c) >= 'A' && (c) <= 'Z') ? (char) ((c) | 0x20) : (c))

#define crm_url_digit(c)  ((c) >= '0' && (c) <= '9')


const char *
crm_url_check_target(crm_str_t s)
{
    size_t          i;
    const char     *p, *end, *authority;
    unsigned char   c;

    if (s.len == 0) {
        return "must not be empty";
    }

    if (s.len > CRM_URL_MAX) {
        return "must be at most 2048 characters";
    }

    for (i = 0; i < s.len; i++) {
        c = (unsigned char) s.data[i];

        if (c >= 0x80) {
            return "must be ASCII, other characters percent-encoded";
        }

        if (c <= 0x20 || c == 0x7f || c == '\\') {
            return "must not contain spaces, control characters or "
                   "backslashes";
        }
    }

    if (crm_url_prefix(s, "https://")) {
        authority = s.data + sizeof("https://") - 1;

    } else if (crm_url_prefix(s, "http://")) {
        authority = s.data + sizeof("http://") - 1;

    } else {
        return "must be an absolute http or https URL";
    }

    end = s.data + s.len;

    /* the authority ends where the path, the query or the fragment starts */
    for (p = authority; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            break;
        }
    }

    if (memchr(authority, '@', (size_t) (p - authority)) != NULL) {
        return "must not contain user information";
    }

    return crm_url_check_authority(authority, p);
}


static const char *
crm_url_check_authority(const char *p, const char *end)
{
    const char  *host_end, *port;

    if (p < end && *p == '[') {
        host_end = memchr(p, ']', (size_t) (end - p));

        if (host_end == NULL
            || !crm_url_ipv6_valid(p + 1, (size_t) (host_end - p - 1)))
        {
            return "must have a valid host name or IP address";
        }

        port = host_end + 1;

        if (port < end && *port != ':') {
            return "must have a valid host name or IP address";
        }

    } else {
        host_end = memchr(p, ':', (size_t) (end - p));
        if (host_end == NULL) {
            host_end = end;
        }

        if (!crm_url_ipv4_valid(p, (size_t) (host_end - p))
            && !crm_url_host_name_valid(p, (size_t) (host_end - p)))
        {
            return "must have a valid host name or IP address";
        }

        port = host_end;
    }

    if (port < end && !crm_url_port_valid(port + 1, end)) {
        return "must have a port between 1 and 65535";
    }

    return NULL;
}


/* four decimal parts of 0..255, each "0" or without a leading zero */
static int
crm_url_ipv4_valid(const char *p, size_t len)
{
    size_t    i, parts, digits;
    unsigned  value;

    parts = 0;
    digits = 0;
    value = 0;

    for (i = 0; i <= len; i++) {

        if (i == len || p[i] == '.') {
            if (digits == 0 || value > 255) {
                return 0;
            }

            parts++;
            digits = 0;
            value = 0;
            continue;
        }

        if (!crm_url_digit(p[i]) || digits == 3 || (digits && value == 0)) {
            return 0;
        }

        value = value * 10 + (unsigned) (p[i] - '0');
        digits++;
    }

    return parts == 4;
}


static int
crm_url_ipv6_valid(const char *p, size_t len)
{
    char             text[INET6_ADDRSTRLEN];
    struct in6_addr  addr;

    if (len >= sizeof(text)) {
        return 0;
    }

    memcpy(text, p, len);
    text[len] = '\0';

    return inet_pton(AF_INET6, text, &addr) == 1;
}


static int
crm_url_host_name_valid(const char *p, size_t len)
{
    char    lower[CRM_HOSTNAME_MAX];
    size_t  i;

    if (len > CRM_HOSTNAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        lower[i] = crm_url_lower(p[i]);
    }

    return crm_hostname_valid(lower, len);
}


static int
crm_url_port_valid(const char *p, const char *end)
{
    unsigned  port;

    if (p == end || end - p > 5 || *p == '0') {
        return 0;
    }

    port = 0;

    for ( /* void */ ; p < end; p++) {
        if (!crm_url_digit(*p)) {
            return 0;
        }

        port = port * 10 + (unsigned) (*p - '0');
    }

    return port <= 65535;
}


/* case-insensitive; prefix is lower case */
static int
crm_url_prefix(crm_str_t s, const char *prefix)
{
    size_t  i, n;

    n = strlen(prefix);

    if (s.len < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (crm_url_lower(s.data[i]) != prefix[i]) {
            return 0;
        }
    }

    return 1;
}


const char *
crm_host_pattern_check(crm_str_t pattern)
{
    size_t  i;

    for (i = 0; i < pattern.len; i++) {
        if (pattern.data[i] >= 'A' && pattern.data[i] <= 'Z') {
            return "must be in lower case";
        }
    }

    if (pattern.len > 2 && pattern.data[0] == '*' && pattern.data[1] == '.')
    {
        pattern.data += 2;
        pattern.len -= 2;
    }

    if (pattern.len > 2 && pattern.data[0] == '['
        && pattern.data[pattern.len - 1] == ']')
    {
        return crm_url_ipv6_valid(pattern.data + 1, pattern.len - 2)
               ? NULL : "is not an IPv6 address";
    }

    if (crm_url_ipv4_valid(pattern.data, pattern.len)
        || (pattern.len <= CRM_HOSTNAME_MAX
            && crm_hostname_valid(pattern.data, pattern.len)))
    {
        return NULL;
    }

    return "must be a host name, an address or \"*.\" and a domain";
}


size_t
crm_url_host(crm_str_t target, char *out)
{
    size_t       i, len;
    const char  *p, *end, *host_end;

    p = memchr(target.data, '/', target.len);
    p = (p != NULL) ? p + 2 : target.data;
    end = target.data + target.len;

    for (host_end = p; host_end < end; host_end++) {
        if (*host_end == '/' || *host_end == '?' || *host_end == '#'
            || (*host_end == ':' && *p != '['))
        {
            break;
        }

        if (*host_end == ']') {
            host_end++;
            break;
        }
    }

    len = (size_t) (host_end - p);

    if (len > 1 && p[len - 1] == '.') {
        len--;
    }

    if (len >= CRM_URL_HOST_MAX) {
        len = CRM_URL_HOST_MAX - 1;
    }

    for (i = 0; i < len; i++) {
        out[i] = crm_url_lower(p[i]);
    }

    out[len] = '\0';

    return len;
}


int
crm_host_list_allows(const crm_host_list_t *list, crm_str_t host)
{
    size_t            i;
    const crm_str_t  *e;

    if (list == NULL || list->n == 0) {
        return 1;
    }

    for (i = 0; i < list->n; i++) {
        e = &list->entries[i];

        if (e->len > 2 && e->data[0] == '*' && e->data[1] == '.') {
            /* ".suffix", after at least one character of a label */
            if (host.len > e->len - 1
                && memcmp(host.data + host.len - (e->len - 1), e->data + 1,
                          e->len - 1) == 0)
            {
                return 1;
            }

            continue;
        }

        if (e->len == host.len && memcmp(e->data, host.data, host.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


size_t
crm_url_redirect(crm_str_t target, const char *link_id,
    const char *click_id, char *out, size_t cap)
{
    const char     *p, *amp, *end, *next, *query, *fragment, *param_end;
    crm_url_buf_t   b;

    end = target.data + target.len;

    /* "#" ends the query: a "?" after it is the fragment's */
    fragment = memchr(target.data, '#', target.len);
    if (fragment == NULL) {
        fragment = end;
    }

    query = memchr(target.data, '?', (size_t) (fragment - target.data));

    b.data = out;
    b.len = 0;
    b.cap = cap;
    b.overflow = 0;

    crm_url_put(&b, target.data,
                (size_t) (((query != NULL) ? query : fragment) - target.data));
    crm_url_put(&b, "?", 1);

    /* the target's own parameters, empty ones and ours left out */
    for (p = (query != NULL) ? query + 1 : fragment; p < fragment; p = next) {
        amp = memchr(p, '&', (size_t) (fragment - p));

        param_end = (amp != NULL) ? amp : fragment;
        next = (amp != NULL) ? amp + 1 : fragment;

        if (param_end > p
            && !crm_url_param_ours(p, (size_t) (param_end - p)))
        {
            crm_url_put(&b, p, (size_t) (param_end - p));
            crm_url_put(&b, "&", 1);
        }
    }

    crm_url_put(&b, "ref=", 4);
    crm_url_put(&b, link_id, strlen(link_id));
    crm_url_put(&b, "&click_id=", 10);
    crm_url_put(&b, click_id, strlen(click_id));
    crm_url_put(&b, fragment, (size_t) (end - fragment));

    if (b.overflow) {
        if (cap > 0) {
            out[0] = '\0';
        }

        return 0;
    }

    out[b.len] = '\0';

    return b.len;
}


/* a parameter named "ref" or "click_id", with or without a value */
static int
crm_url_param_ours(const char *p, size_t len)
{
    const char  *eq;
    crm_str_t    name;

    eq = memchr(p, '=', len);

    name.data = p;
    name.len = (eq != NULL) ? (size_t) (eq - p) : len;

    return crm_str_eq(name, "ref") || crm_str_eq(name, "click_id");
}


/* appends, keeping room for the NUL; once out of room, appends nothing */
static void
crm_url_put(crm_url_buf_t *b, const char *p, size_t len)
{
    if (b->overflow || len >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }

    memcpy(b->data + b->len, p, len);
    b->len += len;
}
