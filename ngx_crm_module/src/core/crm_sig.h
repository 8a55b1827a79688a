/*
 * Signed callbacks: HMAC-SHA256 over "<timestamp>.<raw body>", sent as
 * "X-CRM-Signature: t=<unix seconds>,v1=<64 lower- or upper-case hex>".
 *
 * Signed webhooks from configured sources, in one of two schemes:
 *   standard  Standard Webhooks 1.0: "webhook-id", "webhook-timestamp",
 *             "webhook-signature: v1,<base64 HMAC-SHA256 of
 *             "id.timestamp.body">" (space-separated entries, any v1 one
 *             may match), secret "whsec_<base64 of 24..64 bytes>"
 *   shopify   "X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>",
 *             keyed with the app's client secret as text
 */

#ifndef CRM_SIG_H
#define CRM_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "crm_error.h"
#include "crm_str.h"


#define CRM_SIG_TOLERANCE  300      /* seconds either side of now */
#define CRM_SIG_HEX_LEN    64

#define CRM_WEBHOOK_NAME_MAX     32     /* [a-z0-9_-] */
#define CRM_WEBHOOK_KEYS_MAX     4      /* a rotation's old and new, ... */
#define CRM_WEBHOOK_KEY_MAX      256
#define CRM_WEBHOOK_ID_MAX       255    /* a sender's event id */
#define CRM_WEBHOOK_SHOPIFY_MIN  16     /* a client secret's characters */


typedef enum {
    CRM_WEBHOOK_STANDARD = 1,
    CRM_WEBHOOK_SHOPIFY
} crm_webhook_scheme_e;


typedef struct {
    unsigned char  data[CRM_WEBHOOK_KEY_MAX];
    size_t         len;
} crm_webhook_key_t;


typedef struct {
    char                  name[CRM_WEBHOOK_NAME_MAX + 1];
    crm_webhook_scheme_e  scheme;
    crm_webhook_key_t     keys[CRM_WEBHOOK_KEYS_MAX];
    size_t                nkeys;
} crm_webhook_source_t;


/*
 * Checks header (the X-CRM-Signature value; empty when absent) for body
 * with key at time now.  The header is comma-separated "name=value"
 * elements, optional spaces after commas, none empty; "t" must appear
 * once, as 1..12 digits; 1..8 "v1" elements of 64 hex digits may appear
 * (a sender rotating its secret sends two), and one matching is enough;
 * other names are ignored.  The timestamp must be within tolerance
 * seconds of now, in either direction.  The comparison is constant-time
 * and no JSON is read.  Failure: CRM_E_UNAUTHORIZED with "missing
 * signature", "malformed signature" (the header breaks these rules),
 * "stale signature" or "invalid signature" (no v1 matches).
 */
crm_status_e crm_sig_verify(const unsigned char *key, size_t key_len,
    crm_str_t header, crm_str_t body, int64_t now, int64_t tolerance,
    crm_error_t *err);

/* the v1 value for body at timestamp t, as lower-case hex; out needs 65 */
int crm_sig_sign(const unsigned char *key, size_t key_len, int64_t t,
    crm_str_t body, char *out);

/*
 * A source from its directive's arguments and the text of its secret
 * file: one secret per non-empty line (trailing spaces and CR ignored),
 * 1..CRM_WEBHOOK_KEYS_MAX of them, any of which verifies.  standard: each
 * "whsec_" and base64 of 24..64 bytes; shopify: at least
 * CRM_WEBHOOK_SHOPIFY_MIN printable characters.  Failure: CRM_E_INVALID
 * saying what is wrong (never quoting a secret).
 */
crm_status_e crm_webhook_source_init(crm_webhook_source_t *src,
    crm_str_t name, crm_str_t scheme, crm_str_t secrets, crm_error_t *err);

/*
 * Standard Webhooks: id, timestamp and signatures are the three headers
 * (empty when absent).  The id is 1..CRM_WEBHOOK_ID_MAX printable ASCII
 * characters, the timestamp 1..12 digits within tolerance of now, the
 * signatures 1..8 space-separated "<version>,<value>" entries; entries
 * of other versions than v1 (v1a: asymmetric) are skipped.  Failure:
 * CRM_E_UNAUTHORIZED with "missing signature", "malformed signature",
 * "stale signature" or "invalid signature" (no v1 entry matches a key).
 */
crm_status_e crm_webhook_verify_standard(const crm_webhook_source_t *src,
    crm_str_t id, crm_str_t timestamp, crm_str_t signatures, crm_str_t body,
    int64_t now, int64_t tolerance, crm_error_t *err);

/* Shopify: hmac is X-Shopify-Hmac-Sha256; the same failures */
crm_status_e crm_webhook_verify_shopify(const crm_webhook_source_t *src,
    crm_str_t hmac, crm_str_t body, crm_error_t *err);

#endif /* CRM_SIG_H */
