/*
 * Hexadecimal, as signatures and key files write bytes.
 */

#ifndef CRM_HEX_H
#define CRM_HEX_H

#include <stddef.h>

#include "crm_str.h"


/* n bytes as 2n lower-case digits and a NUL: out needs 2n + 1 */
void crm_hex_encode(const unsigned char *in, size_t n, char *out);

/*
 * Exactly 2n digits of either case into n bytes; -1 for another length or
 * any other character (out then holds nothing usable)
 */
int crm_hex_decode(crm_str_t hex, unsigned char *out, size_t n);

#endif /* CRM_HEX_H */
