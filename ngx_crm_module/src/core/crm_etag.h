/*
 * Entity tags for versioned objects: the tag of version 7 is "7" (quoted).
 * If-Match (RFC 9110, section 13.1.1) compares strongly, so a weak tag
 * never matches; the versions it names become a PostgreSQL int array that
 * the update checks in its WHERE clause, atomically.
 */

#ifndef CRM_ETAG_H
#define CRM_ETAG_H

#include "crm_str.h"


#define CRM_ETAG_MAX        16      /* "\"" 10 digits "\"" and NUL */
#define CRM_IF_MATCH_MAX    256     /* the array literal */


/* writes "\"<version>\"" into out[CRM_ETAG_MAX] */
void crm_etag_format(int version, char *out);

/*
 * Reads an If-Match value.  Returns 0 when it sets no condition (absent,
 * empty, or "*": any current version); otherwise 1, with out the versions
 * it names as an array literal such as "{3,5}" - "{}" when no tag could
 * match (weak, malformed, too many).  out has CRM_IF_MATCH_MAX bytes.
 */
int crm_if_match_versions(crm_str_t header, char *out);

/* 1 when version is in an array literal from crm_if_match_versions() */
int crm_if_match_has(const char *versions, int version);

#endif /* CRM_ETAG_H */
