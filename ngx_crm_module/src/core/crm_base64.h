/*
 * base64url (RFC 4648 section 5) without padding, as JWTs and our opaque
 * cursors use it; and base64 (section 4) with padding, as webhook
 * senders write their secrets and signatures.
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

#define crm_base64_encoded_len(n)  ((((n) + 2) / 3) * 4)

/* writes crm_base64_encoded_len(len) bytes with padding, no NUL */
size_t crm_base64_encode(const unsigned char *src, size_t len, char *dst);

/*
 * base64 with the standard alphabet: padding to a multiple of 4 may be
 * there or not; otherwise as strict as crm_base64url_decode()
 */
int crm_base64_decode(const char *src, size_t len, unsigned char *dst,
    size_t *out_len);

#endif /* CRM_BASE64_H */
