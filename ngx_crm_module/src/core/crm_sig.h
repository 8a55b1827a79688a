/*
 * Signed callbacks: HMAC-SHA256 over "<timestamp>.<raw body>", sent as
 * "X-CRM-Signature: t=<unix seconds>,v1=<64 lower- or upper-case hex>".
 */

#ifndef CRM_SIG_H
#define CRM_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "crm_error.h"
#include "crm_str.h"


#define CRM_SIG_TOLERANCE  300      /* seconds either side of now */
#define CRM_SIG_HEX_LEN    64


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

#endif /* CRM_SIG_H */
