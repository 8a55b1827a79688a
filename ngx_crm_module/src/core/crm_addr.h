/*
 * Where outbound calls may connect: the public-address rule that keeps a
 * URL a user supplies (a CRM's instance_url) from reaching the gateway's
 * own network, and the operator's list of address ranges let through
 * anyway (local test servers).
 *
 * The rule is applied to the address actually connected, after name
 * resolution (crm_addr_allowed() from libcurl's open-socket callback), so
 * that a name which resolves, or is made to resolve, to 127.0.0.1 is
 * refused like the literal address: DNS rebinding gains nothing.
 */

#ifndef CRM_ADDR_H
#define CRM_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "crm_str.h"


#define CRM_ADDR_CIDRS_MAX  32


typedef struct {
    int            family;          /* AF_INET or AF_INET6 */
    unsigned char  addr[16];
    unsigned       prefix;          /* bits */
} crm_cidr_t;


typedef struct {
    size_t      n;
    crm_cidr_t  cidrs[CRM_ADDR_CIDRS_MAX];
} crm_cidr_list_t;


/*
 * Adds "10.1.0.0/16", "::1/128" or a bare address (a host route) to the
 * list; NULL, or why not ("not an address/prefix", "host bits set",
 * "too many ranges").
 */
const char *crm_cidr_list_add(crm_cidr_list_t *list, crm_str_t text);

/*
 * An address literal ("10.0.0.1", "::1", "[::1]") into ss; 1, or 0 when
 * text is not one
 */
int crm_addr_parse(const char *text, struct sockaddr_storage *ss);

/* 1 when sa (AF_INET or AF_INET6) falls in one of the list's ranges */
int crm_cidr_list_match(const crm_cidr_list_t *list,
    const struct sockaddr *sa);

/*
 * 1 when sa is a public unicast address: not loopback, private (10/8,
 * 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10),
 * carrier-grade NAT (100.64/10), "this network" (0/8), documentation,
 * benchmarking, multicast, reserved or broadcast ranges, nor an IPv6
 * address that embeds an IPv4 one that is not public (v4-mapped, NAT64,
 * 6to4)
 */
int crm_addr_public(const struct sockaddr *sa);

/*
 * The decision for one connection: through when the address is in allow;
 * otherwise only a public address, and only for https (plain http goes
 * to allowed ranges alone).  NULL, or why not, for the sync log.
 */
const char *crm_addr_allowed(const crm_cidr_list_t *allow,
    const struct sockaddr *sa, int https);

/*
 * Names refused whatever they resolve to: "localhost" and names under
 * ".localhost", ".local" and ".internal" (lower case, no trailing dot,
 * as crm_url_host() gives them).  1 when refused.
 */
int crm_addr_name_refused(crm_str_t host);

#endif /* CRM_ADDR_H */
