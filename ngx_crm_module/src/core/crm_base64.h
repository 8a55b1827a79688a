/*
 * base64url (RFC 4648 section 5) without padding, as JWTs and our opaque
 * cursors use it.
 */

#ifndef CRM_BASE64_H
#define CRM_BASE64_H

#include <stddef.h>


#define crm_base64url_encoded_len(n)  (((n) * 4 + 2) / 3)
#define crm_base64url_decoded_max(n)  (((n) * 3) / 4)

/* writes crm_base64url_encoded_len(len) bytes, no NUL; returns that count */
size_t crm_base64url_encode(const unsigned char *src, size_t len, char *dst);

/*
 * Decodes into dst (room for crm_base64url_decoded_max(len) bytes).
 * Rejects padding, characters outside the url alphabet, a length of 1 mod 4
 * and non-zero trailing bits.  Returns 0 and sets *out_len, or -1.
 */
int crm_base64url_decode(const char *src, size_t len, unsigned char *dst,
    size_t *out_len);

#endif /* CRM_BASE64_H */
