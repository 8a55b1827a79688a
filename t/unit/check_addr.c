/*
 * crm_addr: the outbound-address rules against request forgery.  Every
 * special-purpose range is probed at its edges (the last address before,
 * the first and last inside, the first after), the IPv6 forms that carry
 * an IPv4 address are judged by it, and the operator's allow list parses,
 * refuses and matches exactly what it says.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "crm_check.h"
#include "crm_addr.h"


#define CHECK_ADDR_NOT_PUBLIC  "the address is not a public one"
#define CHECK_ADDR_PLAIN_HTTP                                                 \
    "plain http is allowed only to the configured ranges"
#define CHECK_ADDR_BAD         "not an address/prefix"
#define CHECK_ADDR_HOST_BITS   "host bits set"
#define CHECK_ADDR_TOO_MANY    "too many ranges"

#define check_addr_n(a)        (sizeof(a) / sizeof((a)[0]))


static const struct sockaddr *check_addr_sa(const char *text,
    struct sockaddr_storage *ss);
static void check_addr_public(const char *text, int want);
static void check_addr_all_public(const char *const *texts, size_t n,
    int want);
static void check_addr_add(crm_cidr_list_t *list, const char *text,
    const char *want);
static void check_addr_match(const crm_cidr_list_t *list, const char *text,
    int want);
static void check_addr_allowed(const crm_cidr_list_t *allow,
    const char *text, int https, const char *want);
static void check_addr_refused(const char *host, int want);
static Suite *check_addr_suite(void);


/* an AF_INET or AF_INET6 socket address from its text */
static const struct sockaddr *
check_addr_sa(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    memset(ss, 0, sizeof(struct sockaddr_storage));

    sin = (struct sockaddr_in *) ss;
    sin6 = (struct sockaddr_in6 *) ss;

    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(443);

    } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);

    } else {
        ck_abort_msg("the test's own address \"%s\" does not parse", text);
    }

    return (const struct sockaddr *) ss;
}


static void
check_addr_public(const char *text, int want)
{
    struct sockaddr_storage  ss;

    ck_assert_msg(crm_addr_public(check_addr_sa(text, &ss)) == want,
                  "%s is %s", text, want ? "public" : "not public");
}


static void
check_addr_all_public(const char *const *texts, size_t n, int want)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        check_addr_public(texts[i], want);
    }
}


static void
check_addr_add(crm_cidr_list_t *list, const char *text, const char *want)
{
    size_t       n;
    const char  *got;

    n = list->n;
    got = crm_cidr_list_add(list, crm_str_c(text));

    if (want == NULL) {
        ck_assert_msg(got == NULL, "\"%s\" refused: %s", text, got);
        ck_assert_uint_eq(list->n, n + 1);

    } else {
        ck_assert_msg(got != NULL && strcmp(got, want) == 0,
                      "\"%s\": \"%s\", not \"%s\"", text,
                      got != NULL ? got : "(accepted)", want);
        ck_assert_uint_eq(list->n, n);
    }
}


static void
check_addr_match(const crm_cidr_list_t *list, const char *text, int want)
{
    struct sockaddr_storage  ss;

    ck_assert_msg(crm_cidr_list_match(list, check_addr_sa(text, &ss))
                  == want, "%s %s", text,
                  want ? "is in the list" : "is not in the list");
}


static void
check_addr_allowed(const crm_cidr_list_t *allow, const char *text,
    int https, const char *want)
{
    const char               *got;
    struct sockaddr_storage   ss;

    got = crm_addr_allowed(allow, check_addr_sa(text, &ss), https);

    if (want == NULL) {
        ck_assert_msg(got == NULL, "%s over %s refused: %s", text,
                      https ? "https" : "http", got);

    } else {
        ck_assert_msg(got != NULL && strcmp(got, want) == 0,
                      "%s over %s: \"%s\", not \"%s\"", text,
                      https ? "https" : "http",
                      got != NULL ? got : "(allowed)", want);
    }
}


static void
check_addr_refused(const char *host, int want)
{
    ck_assert_msg(crm_addr_name_refused(crm_str_c(host)) == want,
                  "\"%s\" is %s", host, want ? "refused" : "not refused");
}


START_TEST(test_addr_v4_edges)
{
    /* public: the neighbours of every special range, and well-known hosts */
    static const char *const  yes[] = {
        "1.0.0.0", "9.255.255.255", "11.0.0.0",
        "100.63.255.255", "100.128.0.0",
        "126.255.255.255", "128.0.0.0",
        "169.253.255.255", "169.255.0.0",
        "172.15.255.255", "172.32.0.0",
        "191.255.255.255", "192.0.1.0", "192.0.1.255", "192.0.3.0",
        "192.88.98.255", "192.88.100.0",
        "192.167.255.255", "192.169.0.0",
        "198.17.255.255", "198.20.0.0",
        "198.51.99.255", "198.51.101.0",
        "203.0.112.255", "203.0.114.0",
        "223.255.255.255",
        "8.8.8.8", "1.1.1.1", "93.184.216.34"
    };

    /* not public: the first and last address of every special range */
    static const char *const  no[] = {
        "0.0.0.0", "0.255.255.255",
        "10.0.0.0", "10.0.0.1", "10.255.255.255",
        "100.64.0.0", "100.127.255.255",
        "127.0.0.0", "127.0.0.1", "127.255.255.255",
        "169.254.0.0", "169.254.169.254", "169.254.255.255",
        "172.16.0.0", "172.20.1.1", "172.31.255.255",
        "192.0.0.0", "192.0.0.255",
        "192.0.2.0", "192.0.2.255",
        "192.88.99.0", "192.88.99.255",
        "192.168.0.0", "192.168.1.1", "192.168.255.255",
        "198.18.0.0", "198.19.255.255",
        "198.51.100.0", "198.51.100.255",
        "203.0.113.0", "203.0.113.255",
        "224.0.0.0", "239.255.255.255",
        "240.0.0.0", "255.255.255.254", "255.255.255.255"
    };

    check_addr_all_public(yes, check_addr_n(yes), 1);
    check_addr_all_public(no, check_addr_n(no), 0);
}
END_TEST


START_TEST(test_addr_v6_global)
{
    static const char *const  yes[] = {
        "2606:4700::1111", "2a00:1450:4001::1", "2001:4860:4860::8888",
        "2000::", "2000::1", "3ffe:ffff::1",
        "3fff:1000::", "3fff:1000::1",
        "2001:200::", "2001:200::1",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
        "2003::1", "2001:ffff::1"
    };

    static const char *const  no[] = {
        "::", "::1", "::2", "::127.0.0.1", "::8.8.8.8",
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "4000::", "4000::1", "5f00::1", "e000::1",
        "fc00::", "fc00::1", "fd00::1", "fdff::1",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::", "fe80::1", "febf::1",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::1", "ff00::", "ff02::1", "ff0e::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::", "2001:db8::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001::", "2001:0::1", "2001:1::1", "2001:2::1", "2001:20::1",
        "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff::", "3fff::1",
        "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"
    };

    check_addr_all_public(yes, check_addr_n(yes), 1);
    check_addr_all_public(no, check_addr_n(no), 0);
}
END_TEST


START_TEST(test_addr_v6_embedded_v4)
{
    static const char *const  yes[] = {
        "::ffff:8.8.8.8", "::ffff:1.1.1.1", "::ffff:172.32.0.0",
        "::ffff:100.128.0.0", "::ffff:223.255.255.255",
        "64:ff9b::808:808", "64:ff9b::8.8.8.8", "64:ff9b::ac20:0",
        "2002:808:808::", "2002:808:808:1::1", "2002:101:101::",
        "2002:ac20::1"
    };

    static const char *const  no[] = {
        /* IPv4-mapped */
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:0.0.0.0",
        "::ffff:169.254.169.254", "::ffff:172.16.0.0",
        "::ffff:100.64.0.0", "::ffff:192.168.0.1",
        "::ffff:224.0.0.1", "::ffff:255.255.255.255",

        /* NAT64 64:ff9b::/96 */
        "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
        "64:ff9b::c0a8:1", "64:ff9b::",

        /* nothing else near NAT64 is global unicast */
        "64:ff9b:1::808:808", "64:ff9b::1:0:808:808",
        "::fffe:808:808", "::ffff:0:808:808",

        /* 6to4 */
        "2002:7f00:1::", "2002:a00:1::", "2002:a9fe:a9fe::",
        "2002:c0a8:101::", "2002:c058:6301::", "2002:ac10::",
        "2002::", "2002:e000::", "2002:ffff:ffff::"
    };

    check_addr_all_public(yes, check_addr_n(yes), 1);
    check_addr_all_public(no, check_addr_n(no), 0);
}
END_TEST


START_TEST(test_addr_other_family)
{
    crm_cidr_list_t     list;
    struct sockaddr     sa;
    struct sockaddr_un  un;

    memset(&list, 0, sizeof(list));
    check_addr_add(&list, "0.0.0.0/0", NULL);
    check_addr_add(&list, "::/0", NULL);

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/tmp/crm.sock");

    ck_assert_int_eq(crm_addr_public((const struct sockaddr *) &un), 0);
    ck_assert_int_eq(crm_cidr_list_match(&list,
                                         (const struct sockaddr *) &un), 0);
    ck_assert_str_eq(crm_addr_allowed(&list, (const struct sockaddr *) &un,
                                      1), CHECK_ADDR_NOT_PUBLIC);

    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNSPEC;

    ck_assert_int_eq(crm_addr_public(&sa), 0);
    ck_assert_int_eq(crm_cidr_list_match(&list, &sa), 0);
    ck_assert_str_eq(crm_addr_allowed(&list, &sa, 1), CHECK_ADDR_NOT_PUBLIC);
    ck_assert_str_eq(crm_addr_allowed(NULL, &sa, 0), CHECK_ADDR_NOT_PUBLIC);
}
END_TEST


START_TEST(test_addr_cidr_parsed)
{
    crm_cidr_list_t  list;

    static const unsigned char  v4[16] = { 10, 1 };
    static const unsigned char  v4host[16] = { 192, 168, 1, 5 };
    static const unsigned char  v6[16] = {
        0x20, 0x01, 0x0d, 0xb8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char  v6lo[16] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
    };
    static const unsigned char  zero[16] = { 0 };
    static const unsigned char  ones[16] = { 255, 255, 255, 255 };

    memset(&list, 0xa5, sizeof(list));
    list.n = 0;

    check_addr_add(&list, "10.1.0.0/16", NULL);
    check_addr_add(&list, "192.168.1.5", NULL);
    check_addr_add(&list, "2001:db8:8000::/33", NULL);
    check_addr_add(&list, "::1", NULL);
    check_addr_add(&list, "::1/128", NULL);
    check_addr_add(&list, "0.0.0.0/0", NULL);
    check_addr_add(&list, "::/0", NULL);
    check_addr_add(&list, "255.255.255.255/32", NULL);
    check_addr_add(&list, "10.0.0.0/7", NULL);
    check_addr_add(&list, "255.255.255.254/31", NULL);
    ck_assert_uint_eq(list.n, 10);

    ck_assert_int_eq(list.cidrs[0].family, AF_INET);
    ck_assert_uint_eq(list.cidrs[0].prefix, 16);
    ck_assert_int_eq(memcmp(list.cidrs[0].addr, v4, 16), 0);

    /* a bare address is a host route; the unused bytes are zero */
    ck_assert_int_eq(list.cidrs[1].family, AF_INET);
    ck_assert_uint_eq(list.cidrs[1].prefix, 32);
    ck_assert_int_eq(memcmp(list.cidrs[1].addr, v4host, 16), 0);

    ck_assert_int_eq(list.cidrs[2].family, AF_INET6);
    ck_assert_uint_eq(list.cidrs[2].prefix, 33);
    ck_assert_int_eq(memcmp(list.cidrs[2].addr, v6, 16), 0);

    ck_assert_int_eq(list.cidrs[3].family, AF_INET6);
    ck_assert_uint_eq(list.cidrs[3].prefix, 128);
    ck_assert_int_eq(memcmp(list.cidrs[3].addr, v6lo, 16), 0);

    ck_assert_int_eq(list.cidrs[4].family, AF_INET6);
    ck_assert_uint_eq(list.cidrs[4].prefix, 128);
    ck_assert_int_eq(memcmp(list.cidrs[4].addr, v6lo, 16), 0);

    ck_assert_int_eq(list.cidrs[5].family, AF_INET);
    ck_assert_uint_eq(list.cidrs[5].prefix, 0);
    ck_assert_int_eq(memcmp(list.cidrs[5].addr, zero, 16), 0);

    ck_assert_int_eq(list.cidrs[6].family, AF_INET6);
    ck_assert_uint_eq(list.cidrs[6].prefix, 0);
    ck_assert_int_eq(memcmp(list.cidrs[6].addr, zero, 16), 0);

    ck_assert_int_eq(list.cidrs[7].family, AF_INET);
    ck_assert_uint_eq(list.cidrs[7].prefix, 32);
    ck_assert_int_eq(memcmp(list.cidrs[7].addr, ones, 16), 0);

    ck_assert_uint_eq(list.cidrs[8].prefix, 7);
    ck_assert_uint_eq(list.cidrs[9].prefix, 31);
}
END_TEST


START_TEST(test_addr_cidr_refused)
{
    crm_cidr_list_t  list;

    static const char *const  bad[] = {
        "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/99",
        "10.0.0.0/100", "10.0.0.0/0008", "::/129", "::/1000",
        "::1/1280", "10.0.0.0/8/8", "10.0.0.0//8", "10.0.0.0/-1",
        "10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/8 ", " 10.0.0.0/8",
        "10.0.0.0 /8", "10.0.0.0/1a", "10.0.0.0/a", "10.0.0.0/0x8",
        "10.0.0/24", "10.0.0.256", "10.0.0.0.0", "10.1", "10",
        "example.com", "localhost", "fe80::1%eth0", "fe80::1%1/64",
        "::g", "1:2:3:4:5:6:7:8:9", "2001:db8:::1", "[::1]", "[::1]/128",
        "10.0.0.0\\8", "*", "any",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/128",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:d/128"
    };

    size_t  i;

    memset(&list, 0, sizeof(list));

    for (i = 0; i < check_addr_n(bad); i++) {
        check_addr_add(&list, bad[i], CHECK_ADDR_BAD);
    }

    /* an embedded NUL or a length past the text is not read */
    ck_assert_str_eq(crm_cidr_list_add(&list, (crm_str_t) { "10.0.0.0/8",
                                                            0 }),
                     CHECK_ADDR_BAD);
    ck_assert_ptr_null(crm_cidr_list_add(&list, (crm_str_t) { "10.0.0.0/8x",
                                                              10 }));
    ck_assert_uint_eq(list.n, 1);
    ck_assert_uint_eq(list.cidrs[0].prefix, 8);

    /* the longest text that still parses */
    check_addr_add(&list, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
                   NULL);
}
END_TEST


START_TEST(test_addr_cidr_host_bits)
{
    crm_cidr_list_t  list;

    static const char *const  bad[] = {
        "10.1.2.3/8", "10.0.0.1/31", "10.0.0.1/24", "11.0.0.0/7",
        "1.2.3.4/0", "0.0.0.1/0", "128.0.0.0/0", "172.16.0.0/11",
        "255.255.255.255/31", "192.168.1.128/24", "::1/127", "::1/0",
        "fe80::1/64", "2001:db8::1/32", "2001:db8:8000::/32",
        "8000::/0", "::ffff:10.0.0.1/96"
    };

    size_t  i;

    memset(&list, 0, sizeof(list));

    for (i = 0; i < check_addr_n(bad); i++) {
        check_addr_add(&list, bad[i], CHECK_ADDR_HOST_BITS);
    }

    check_addr_add(&list, "172.16.0.0/12", NULL);
    check_addr_add(&list, "192.168.1.128/25", NULL);
    check_addr_add(&list, "2001:db8::/32", NULL);
    check_addr_add(&list, "8000::/1", NULL);
    check_addr_add(&list, "::ffff:10.0.0.0/104", NULL);
    check_addr_add(&list, "::1/128", NULL);
    ck_assert_uint_eq(list.n, 6);
}
END_TEST


START_TEST(test_addr_cidr_too_many)
{
    char             text[32];
    unsigned         i;
    crm_cidr_list_t  list;

    memset(&list, 0, sizeof(list));

    for (i = 0; i < CRM_ADDR_CIDRS_MAX; i++) {
        /* a refusal does not use up a place */
        check_addr_add(&list, "10.0.0.1/24", CHECK_ADDR_HOST_BITS);
        check_addr_add(&list, "garbage", CHECK_ADDR_BAD);

        snprintf(text, sizeof(text), "10.0.%u.0/24", i);
        check_addr_add(&list, text, NULL);
    }

    ck_assert_uint_eq(list.n, CRM_ADDR_CIDRS_MAX);

    check_addr_add(&list, "10.0.200.0/24", CHECK_ADDR_TOO_MANY);
    check_addr_add(&list, "::1", CHECK_ADDR_TOO_MANY);
    check_addr_add(&list, "garbage", CHECK_ADDR_TOO_MANY);

    check_addr_match(&list, "10.0.0.1", 1);
    check_addr_match(&list, "10.0.31.255", 1);
    check_addr_match(&list, "10.0.32.0", 0);
    check_addr_match(&list, "10.0.200.1", 0);
    check_addr_match(&list, "::1", 0);
}
END_TEST


START_TEST(test_addr_cidr_match_v4)
{
    crm_cidr_list_t  list;

    memset(&list, 0, sizeof(list));
    check_addr_match(&list, "10.1.0.0", 0);
    check_addr_match(NULL, "10.1.0.0", 0);

    check_addr_add(&list, "10.1.0.0/16", NULL);
    check_addr_match(&list, "10.0.255.255", 0);
    check_addr_match(&list, "10.1.0.0", 1);
    check_addr_match(&list, "10.1.200.7", 1);
    check_addr_match(&list, "10.1.255.255", 1);
    check_addr_match(&list, "10.2.0.0", 0);
    check_addr_match(&list, "11.1.0.0", 0);

    check_addr_add(&list, "172.16.0.0/12", NULL);
    check_addr_match(&list, "172.15.255.255", 0);
    check_addr_match(&list, "172.16.0.0", 1);
    check_addr_match(&list, "172.31.255.255", 1);
    check_addr_match(&list, "172.32.0.0", 0);

    check_addr_add(&list, "192.168.1.5", NULL);
    check_addr_match(&list, "192.168.1.4", 0);
    check_addr_match(&list, "192.168.1.5", 1);
    check_addr_match(&list, "192.168.1.6", 0);
    check_addr_match(&list, "192.168.1.0", 0);

    check_addr_add(&list, "100.64.0.0/31", NULL);
    check_addr_match(&list, "100.64.0.0", 1);
    check_addr_match(&list, "100.64.0.1", 1);
    check_addr_match(&list, "100.64.0.2", 0);

    check_addr_add(&list, "128.0.0.0/1", NULL);
    check_addr_match(&list, "127.255.255.255", 0);
    check_addr_match(&list, "128.0.0.0", 1);
    check_addr_match(&list, "255.255.255.255", 1);

    memset(&list, 0, sizeof(list));
    check_addr_add(&list, "0.0.0.0/0", NULL);
    check_addr_match(&list, "0.0.0.0", 1);
    check_addr_match(&list, "8.8.8.8", 1);
    check_addr_match(&list, "255.255.255.255", 1);
}
END_TEST


START_TEST(test_addr_cidr_match_v6)
{
    crm_cidr_list_t  list;

    memset(&list, 0, sizeof(list));

    check_addr_add(&list, "::1/128", NULL);
    check_addr_match(&list, "::1", 1);
    check_addr_match(&list, "::", 0);
    check_addr_match(&list, "::2", 0);
    check_addr_match(&list, "1::1", 0);

    check_addr_add(&list, "2001:db8::/33", NULL);
    check_addr_match(&list, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0);
    check_addr_match(&list, "2001:db8::", 1);
    check_addr_match(&list, "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff", 1);
    check_addr_match(&list, "2001:db8:8000::", 0);

    check_addr_add(&list, "fd00::/8", NULL);
    check_addr_match(&list, "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0);
    check_addr_match(&list, "fd00::", 1);
    check_addr_match(&list, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1);
    check_addr_match(&list, "fe00::", 0);

    check_addr_add(&list, "fe80::/10", NULL);
    check_addr_match(&list, "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0);
    check_addr_match(&list, "fe80::1", 1);
    check_addr_match(&list, "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1);
    check_addr_match(&list, "fec0::", 0);

    check_addr_add(&list, "2a00::1:0/127", NULL);
    check_addr_match(&list, "2a00::ffff", 0);
    check_addr_match(&list, "2a00::1:0", 1);
    check_addr_match(&list, "2a00::1:1", 1);
    check_addr_match(&list, "2a00::1:2", 0);

    memset(&list, 0, sizeof(list));
    check_addr_add(&list, "::/0", NULL);
    check_addr_match(&list, "::", 1);
    check_addr_match(&list, "::1", 1);
    check_addr_match(&list, "2606:4700::1111", 1);
    check_addr_match(&list, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1);
}
END_TEST


START_TEST(test_addr_cidr_match_family)
{
    crm_cidr_list_t  v4, v6;

    memset(&v4, 0, sizeof(v4));
    memset(&v6, 0, sizeof(v6));

    /* a v4 range never matches a v6 address, nor one that embeds v4 */
    check_addr_add(&v4, "0.0.0.0/0", NULL);
    check_addr_add(&v4, "10.0.0.0/8", NULL);
    check_addr_match(&v4, "10.0.0.1", 1);
    check_addr_match(&v4, "::", 0);
    check_addr_match(&v4, "::1", 0);
    check_addr_match(&v4, "::a00:1", 0);
    check_addr_match(&v4, "::ffff:10.0.0.1", 0);
    check_addr_match(&v4, "64:ff9b::a00:1", 0);
    check_addr_match(&v4, "2002:a00:1::", 0);
    check_addr_match(&v4, "a00:1::", 0);

    /* nor a v6 range a v4 address with the same leading bytes */
    check_addr_add(&v6, "::/0", NULL);
    check_addr_add(&v6, "a00::/8", NULL);
    check_addr_add(&v6, "::ffff:10.0.0.0/104", NULL);
    check_addr_match(&v6, "::ffff:10.0.0.1", 1);
    check_addr_match(&v6, "0.0.0.0", 0);
    check_addr_match(&v6, "10.0.0.1", 0);
    check_addr_match(&v6, "8.8.8.8", 0);
}
END_TEST


START_TEST(test_addr_allowed)
{
    crm_cidr_list_t  none, allow;

    memset(&none, 0, sizeof(none));
    memset(&allow, 0, sizeof(allow));
    check_addr_add(&allow, "127.0.0.0/8", NULL);
    check_addr_add(&allow, "::1", NULL);
    check_addr_add(&allow, "192.168.10.0/24", NULL);
    check_addr_add(&allow, "8.8.8.0/24", NULL);

    /* in the list: through, whatever the address and the scheme */
    check_addr_allowed(&allow, "127.0.0.1", 1, NULL);
    check_addr_allowed(&allow, "127.0.0.1", 0, NULL);
    check_addr_allowed(&allow, "::1", 0, NULL);
    check_addr_allowed(&allow, "192.168.10.99", 0, NULL);
    check_addr_allowed(&allow, "8.8.8.8", 0, NULL);
    check_addr_allowed(&allow, "8.8.8.8", 1, NULL);

    /* not in the list and not public: refused over either scheme */
    check_addr_allowed(&allow, "192.168.11.1", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&allow, "192.168.11.1", 0, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&allow, "::2", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&allow, "::ffff:127.0.0.1", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "127.0.0.1", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "127.0.0.1", 0, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "169.254.169.254", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "10.0.0.1", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "fd00::1", 1, CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(&none, "64:ff9b::a9fe:a9fe", 1,
                       CHECK_ADDR_NOT_PUBLIC);
    check_addr_allowed(NULL, "127.0.0.1", 1, CHECK_ADDR_NOT_PUBLIC);

    /* public and not in the list: https only */
    check_addr_allowed(&allow, "8.8.4.4", 1, NULL);
    check_addr_allowed(&allow, "8.8.4.4", 0, CHECK_ADDR_PLAIN_HTTP);
    check_addr_allowed(&none, "93.184.216.34", 1, NULL);
    check_addr_allowed(&none, "93.184.216.34", 0, CHECK_ADDR_PLAIN_HTTP);
    check_addr_allowed(&none, "2606:4700::1111", 1, NULL);
    check_addr_allowed(&none, "2606:4700::1111", 0, CHECK_ADDR_PLAIN_HTTP);
    check_addr_allowed(&none, "::ffff:8.8.8.8", 1, NULL);
    check_addr_allowed(NULL, "1.1.1.1", 1, NULL);
    check_addr_allowed(NULL, "1.1.1.1", 0, CHECK_ADDR_PLAIN_HTTP);

    /* https is any non-zero value */
    check_addr_allowed(&none, "1.1.1.1", 2, NULL);
}
END_TEST


START_TEST(test_addr_name_refused)
{
    static const char *const  yes[] = {
        "localhost", "a.localhost", "x.y.localhost", "printer.local",
        "a.b.local", "metadata.google.internal", "db.internal",
        ".local", ".internal", ".localhost"
    };

    static const char *const  no[] = {
        "notlocalhost", "local", "internal", "localhostx", "localhost.com",
        "localhost.example.com", "local.example.com",
        "internal.example.com", "example.com", "mylocal", "my-local",
        "example.internalx", "example.locals", "example.localhos",
        "example.intern", "xinternal", "", "l", "a.localnet"
    };

    size_t  i;

    for (i = 0; i < check_addr_n(yes); i++) {
        check_addr_refused(yes[i], 1);
    }

    for (i = 0; i < check_addr_n(no); i++) {
        check_addr_refused(no[i], 0);
    }

    /* the span is what counts, not the NUL */
    ck_assert_int_eq(crm_addr_name_refused((crm_str_t) { "localhostx", 9 }),
                     1);
    ck_assert_int_eq(crm_addr_name_refused((crm_str_t) { "a.localx", 7 }),
                     1);
    ck_assert_int_eq(crm_addr_name_refused((crm_str_t) { "localhost", 8 }),
                     0);
    ck_assert_int_eq(crm_addr_name_refused((crm_str_t) { "a.local", 6 }),
                     0);
}
END_TEST


START_TEST(test_addr_parse)
{
    struct sockaddr_storage  ss;

    ck_assert_int_eq(crm_addr_parse("10.1.2.3", &ss), 1);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(crm_addr_parse("::1", &ss), 1);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(crm_addr_parse("[::1]", &ss), 1);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(crm_addr_public((struct sockaddr *) &ss), 0);

    ck_assert_int_eq(crm_addr_parse("[10.1.2.3]", &ss), 0);
    ck_assert_int_eq(crm_addr_parse("example.com", &ss), 0);
    ck_assert_int_eq(crm_addr_parse("[", &ss), 0);
    ck_assert_int_eq(crm_addr_parse("[]", &ss), 0);
    ck_assert_int_eq(crm_addr_parse("", &ss), 0);
}
END_TEST


static Suite *
check_addr_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("addr", &tc);

    tcase_add_test(tc, test_addr_v4_edges);
    tcase_add_test(tc, test_addr_v6_global);
    tcase_add_test(tc, test_addr_v6_embedded_v4);
    tcase_add_test(tc, test_addr_other_family);
    tcase_add_test(tc, test_addr_cidr_parsed);
    tcase_add_test(tc, test_addr_cidr_refused);
    tcase_add_test(tc, test_addr_cidr_host_bits);
    tcase_add_test(tc, test_addr_cidr_too_many);
    tcase_add_test(tc, test_addr_cidr_match_v4);
    tcase_add_test(tc, test_addr_cidr_match_v6);
    tcase_add_test(tc, test_addr_cidr_match_family);
    tcase_add_test(tc, test_addr_allowed);
    tcase_add_test(tc, test_addr_parse);
    tcase_add_test(tc, test_addr_name_refused);

    return s;
}


CRM_CHECK_MAIN(check_addr_suite)
