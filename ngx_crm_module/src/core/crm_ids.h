/*
 * The short, URL-safe ids of the affiliate edge.
 *
 * A link id is 12 base62 characters: 10 random ones and 2 check
 * characters computed from them, so that a mistyped or made-up id is
 * refused by the redirect without a database lookup (about 1 in 3,844
 * random strings passes the check).
 *
 * A click id is 26 base62 characters: the link id (12), the click's unix
 * second (6, most significant first) and 8 random characters.  It names its
 * link and its time, so a callback can be attributed even before the click
 * has reached the database, and the click's row is found by its key and
 * its partition.
 */

#ifndef CRM_IDS_H
#define CRM_IDS_H

#include <stddef.h>
#include <stdint.h>


#define CRM_LINK_ID_LEN   12
#define CRM_CLICK_ID_LEN  26


/* out needs CRM_LINK_ID_LEN + 1; 0, or -1 when the random source fails */
int crm_link_id_generate(char *out);

/* 1 when s is a well-formed link id (length, alphabet and check) */
int crm_link_id_valid(const char *s, size_t len);

/*
 * out needs CRM_CLICK_ID_LEN + 1; link_id must be a valid link id
 * (CRM_LINK_ID_LEN characters) and now between 0 and 62^6 - 1 (the year
 * 3769).  Thread-safe; 0, or -1 when the random source fails or an
 * argument is out of range.
 */
int crm_click_id_generate(const char *link_id, int64_t now, char *out);

/*
 * 1 when s is a well-formed click id; then link_id (CRM_LINK_ID_LEN + 1)
 * and *ts (unix seconds) are set when not NULL.
 */
int crm_click_id_parse(const char *s, size_t len, char *link_id,
    int64_t *ts);

#endif /* CRM_IDS_H */
