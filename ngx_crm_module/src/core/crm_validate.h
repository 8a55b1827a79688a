/*
 * Validation and normalisation of identifiers and free text.
 */

#ifndef CRM_VALIDATE_H
#define CRM_VALIDATE_H

#include "crm_error.h"
#include "crm_str.h"


#define CRM_EMAIL_MAX   254
#define CRM_UUID_LEN    36


/*
 * Trims ASCII white space, lower-cases, and checks the result is a plain
 * addr-spec: local part 1..64 of letters, digits and !#$%&'*+/=?^_`{|}~.-
 * (no leading, trailing or doubled dot); domain of at least two
 * dot-separated labels of 1..63 letters, digits and inner hyphens, the last
 * one alphabetic of 2+; total at most 254.  out needs CRM_EMAIL_MAX + 1.
 * Failure: CRM_E_INVALID on field "must be a valid email address".
 */
crm_status_e crm_email_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err);

#define CRM_HOSTNAME_MAX  253


/*
 * 1 when p[0..len) is a lower-case host name: at most 253 bytes, two or
 * more dot-separated labels of 1..63 letters, digits and inner hyphens,
 * the last alphabetic of 2+ or punycode ("xn--"), so never an IP address.
 */
int crm_hostname_valid(const char *p, size_t len);

/* 1 when s is a canonical lower- or upper-case 8-4-4-4-12 hex UUID */
int crm_uuid_valid(crm_str_t s);

/*
 * 1 when s is a UUID in any case, written in canonical lower case into
 * out[CRM_UUID_LEN + 1] (which may be s itself); 0, out untouched,
 * otherwise.  Ids that enter through a path or a query are stored and
 * compared in this form.
 */
int crm_uuid_canonical(crm_str_t s, char *out);

/* number of UTF-8 characters in s, or (size_t) -1 if s is not valid UTF-8 */
size_t crm_utf8_length(crm_str_t s);

/*
 * Checks free text: valid UTF-8, no control characters other than
 * tab/newline when multiline, length in min..max characters (max 0 = none).
 */
crm_status_e crm_text_check(crm_str_t s, const char *field, size_t min,
    size_t max, int multiline, crm_error_t *err);

/*
 * Copies at most size - 1 bytes of s into out as printable ASCII, each
 * other byte replaced by '?', and NUL-terminates: client-supplied text
 * made safe for a log line or a text column.  Returns the length.
 */
size_t crm_text_printable(crm_str_t s, char *out, size_t size);

#endif /* CRM_VALIDATE_H */
