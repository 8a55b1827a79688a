/*
 * The short, URL-safe ids of the affiliate edge.
 *
 * A link id is 12 base62 characters: 10 random ones and 2 check
 * characters, an HMAC-SHA256 of them under the operator's secret, so that
 * a mistyped or made-up id is refused by the redirect without a database
 * lookup.  Without the secret nobody can make ids that pass: a guess
 * passes about once in 3,844 tries.  Every host of a deployment must hold
 * the same secret, and it must never change (every link id depends on
 * it).
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


/* the secret of the check characters */
typedef struct {
    const unsigned char  *data;
    size_t                len;
} crm_link_key_t;


/* out needs CRM_LINK_ID_LEN + 1; 0, or -1 when the random source fails */
int crm_link_id_generate(const crm_link_key_t *key, char *out);

/* 1 when s is a link id: its length, alphabet and check characters */
int crm_link_id_valid(const crm_link_key_t *key, const char *s, size_t len);

/* 1 when s has a link id's length and alphabet (the check is not read) */
int crm_link_id_shaped(const char *s, size_t len);

/*
 * out needs CRM_CLICK_ID_LEN + 1; link_id must have a link id's shape
 * (CRM_LINK_ID_LEN characters) and now be between 0 and 62^6 - 1 (the
 * year 3769).  Thread-safe; 0, or -1 when the random source fails or an
 * argument is out of range.
 */
int crm_click_id_generate(const char *link_id, int64_t now, char *out);

/*
 * 1 when s is a click id of a valid link id; then link_id
 * (CRM_LINK_ID_LEN + 1) and *ts (unix seconds) are set when not NULL.
 */
int crm_click_id_parse(const crm_link_key_t *key, const char *s,
    size_t len, char *link_id, int64_t *ts);

#endif /* CRM_IDS_H */
