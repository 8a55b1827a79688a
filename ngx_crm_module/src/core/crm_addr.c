/*
 * Outbound addresses; see crm_addr.h.  The special-purpose ranges are
 * IANA's registries for IPv4 and IPv6 (RFC 6890 and its updates).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "crm_addr.h"


typedef struct {
    uint32_t  net;
    unsigned  prefix;
} crm_addr_v4_range_t;


/* every IPv4 range that is not public unicast */
static const crm_addr_v4_range_t  crm_addr_v4_special[] = {
    { 0x00000000, 8 },      /* "this network" */
    { 0x0a000000, 8 },      /* private */
    { 0x64400000, 10 },     /* shared address space (CGN) */
    { 0x7f000000, 8 },      /* loopback */
    { 0xa9fe0000, 16 },     /* link-local, cloud metadata */
    { 0xac100000, 12 },     /* private */
    { 0xc0000000, 24 },     /* IETF protocol assignments */
    { 0xc0000200, 24 },     /* documentation (TEST-NET-1) */
    { 0xc0586300, 24 },     /* 6to4 relay anycast */
    { 0xc0a80000, 16 },     /* private */
    { 0xc6120000, 15 },     /* benchmarking */
    { 0xc6336400, 24 },     /* documentation (TEST-NET-2) */
    { 0xcb007100, 24 },     /* documentation (TEST-NET-3) */
    { 0xe0000000, 4 },      /* multicast */
    { 0xf0000000, 4 },      /* reserved, broadcast */
};


static int crm_addr_v4_public(uint32_t a);
static int crm_addr_v6_public(const unsigned char *a);
static int crm_addr_prefix_match(const unsigned char *a,
    const unsigned char *net, unsigned prefix);
static int crm_addr_of(const struct sockaddr *sa, int *family,
    const unsigned char **bytes);
static int crm_addr_ends_with(crm_str_t host, const char *suffix);


const char *
crm_cidr_list_add(crm_cidr_list_t *list, crm_str_t text)
{
    char          buf[64];
    unsigned      max, prefix, i;
    const char   *slash;
    crm_cidr_t   *c;

    if (list->n == CRM_ADDR_CIDRS_MAX) {
        return "too many ranges";
    }

    if (text.len == 0 || text.len >= sizeof(buf)
        || memchr(text.data, '\0', text.len) != NULL)
    {
        return "not an address/prefix";
    }

    memcpy(buf, text.data, text.len);
    buf[text.len] = '\0';

    c = &list->cidrs[list->n];
    memset(c, 0, sizeof(crm_cidr_t));

    slash = strchr(buf, '/');
    if (slash != NULL) {
        buf[slash - buf] = '\0';
    }

    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;

    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;

    } else {
        return "not an address/prefix";
    }

    prefix = max;

    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3) {
            return "not an address/prefix";
        }

        prefix = 0;

        for (i = 1; slash[i] != '\0'; i++) {
            if (slash[i] < '0' || slash[i] > '9') {
                return "not an address/prefix";
            }

            prefix = prefix * 10 + (unsigned) (slash[i] - '0');
        }

        if (prefix > max) {
            return "not an address/prefix";
        }
    }

    /* "10.1.2.3/8" is a typo for something: say so rather than guess */
    for (i = prefix; i < max; i++) {
        if (c->addr[i / 8] & (0x80 >> (i % 8))) {
            return "host bits set";
        }
    }

    c->prefix = prefix;
    list->n++;

    return NULL;
}


int
crm_addr_parse(const char *text, struct sockaddr_storage *ss)
{
    char                  v6[INET6_ADDRSTRLEN + 1];
    size_t                n;
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    memset(ss, 0, sizeof(struct sockaddr_storage));

    sin = (struct sockaddr_in *) ss;

    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return 1;
    }

    n = strlen(text);

    /* a URL's host brackets an IPv6 address */
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        if (n - 2 >= sizeof(v6)) {
            return 0;
        }

        memcpy(v6, text + 1, n - 2);
        v6[n - 2] = '\0';
        text = v6;
    }

    sin6 = (struct sockaddr_in6 *) ss;

    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        return 1;
    }

    return 0;
}


int
crm_cidr_list_match(const crm_cidr_list_t *list, const struct sockaddr *sa)
{
    int                   family;
    size_t                i;
    const unsigned char  *a;

    if (list == NULL || !crm_addr_of(sa, &family, &a)) {
        return 0;
    }

    for (i = 0; i < list->n; i++) {
        if (list->cidrs[i].family == family
            && crm_addr_prefix_match(a, list->cidrs[i].addr,
                                     list->cidrs[i].prefix))
        {
            return 1;
        }
    }

    return 0;
}


int
crm_addr_public(const struct sockaddr *sa)
{
    int                   family;
    const unsigned char  *a;

    if (!crm_addr_of(sa, &family, &a)) {
        return 0;
    }

    if (family == AF_INET) {
        return crm_addr_v4_public((uint32_t) a[0] << 24 | (uint32_t) a[1] << 16
                                  | (uint32_t) a[2] << 8 | a[3]);
    }

    return crm_addr_v6_public(a);
}


const char *
crm_addr_allowed(const crm_cidr_list_t *allow, const struct sockaddr *sa,
    int https)
{
    if (crm_cidr_list_match(allow, sa)) {
        return NULL;
    }

    if (!crm_addr_public(sa)) {
        return "the address is not a public one";
    }

    if (!https) {
        return "plain http is allowed only to the configured ranges";
    }

    return NULL;
}


int
crm_addr_name_refused(crm_str_t host)
{
    return crm_str_eq(host, "localhost")
           || crm_addr_ends_with(host, ".localhost")
           || crm_addr_ends_with(host, ".local")
           || crm_addr_ends_with(host, ".internal");
}


static int
crm_addr_ends_with(crm_str_t host, const char *suffix)
{
    size_t  n;

    n = strlen(suffix);

    return host.len >= n
           && memcmp(host.data + host.len - n, suffix, n) == 0;
}


static int
crm_addr_v4_public(uint32_t a)
{
    size_t    i;
    uint32_t  mask;

    for (i = 0; i < sizeof(crm_addr_v4_special)
                    / sizeof(crm_addr_v4_special[0]); i++)
    {
        mask = 0xffffffffu << (32 - crm_addr_v4_special[i].prefix);

        if ((a & mask) == crm_addr_v4_special[i].net) {
            return 0;
        }
    }

    return 1;
}


/*
 * Only global unicast (2000::/3) outside its special blocks is public; the
 * forms that carry an IPv4 address are judged by that address
 */
static int
crm_addr_v6_public(const unsigned char *a)
{
    static const unsigned char  mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    static const unsigned char  nat64[12] = {
        0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0
    };
    /* whole addresses: a prefix that is not whole bytes reads one more */
    static const unsigned char  ietf[16] = { 0x20, 0x01 };
    static const unsigned char  doc[16] = { 0x20, 0x01, 0x0d, 0xb8 };
    static const unsigned char  doc2[16] = { 0x3f, 0xff };
    static const unsigned char  six_to_four[16] = { 0x20, 0x02 };

    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
        return crm_addr_v4_public((uint32_t) a[12] << 24
                                  | (uint32_t) a[13] << 16
                                  | (uint32_t) a[14] << 8 | a[15]);
    }

    if ((a[0] & 0xe0) != 0x20) {
        return 0;
    }

    if (crm_addr_prefix_match(a, six_to_four, 16)) {
        return crm_addr_v4_public((uint32_t) a[2] << 24
                                  | (uint32_t) a[3] << 16
                                  | (uint32_t) a[4] << 8 | a[5]);
    }

    return !crm_addr_prefix_match(a, ietf, 23)
           && !crm_addr_prefix_match(a, doc, 32)
           && !crm_addr_prefix_match(a, doc2, 20);
}


static int
crm_addr_prefix_match(const unsigned char *a, const unsigned char *net,
    unsigned prefix)
{
    unsigned       bytes, bits;
    unsigned char  mask;

    bytes = prefix / 8;
    bits = prefix % 8;

    if (memcmp(a, net, bytes) != 0) {
        return 0;
    }

    if (bits == 0) {
        return 1;
    }

    mask = (unsigned char) (0xff << (8 - bits));

    return (a[bytes] & mask) == (net[bytes] & mask);
}


static int
crm_addr_of(const struct sockaddr *sa, int *family,
    const unsigned char **bytes)
{
    if (sa->sa_family == AF_INET) {
        *family = AF_INET;
        *bytes = (const unsigned char *)
                 &((const struct sockaddr_in *) sa)->sin_addr;
        return 1;
    }

    if (sa->sa_family == AF_INET6) {
        *family = AF_INET6;
        *bytes = (const unsigned char *)
                 &((const struct sockaddr_in6 *) sa)->sin6_addr;
        return 1;
    }

    return 0;
}
