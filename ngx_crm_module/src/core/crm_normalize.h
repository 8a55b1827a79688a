/*
 * Normalisation of the identifiers a lead carries, before they are stored
 * or matched: what two spellings of the same thing have in common.
 */

#ifndef CRM_NORMALIZE_H
#define CRM_NORMALIZE_H

#include "crm_error.h"
#include "crm_str.h"


#define CRM_PHONE_MAX     16        /* "+" and up to 15 digits (E.164) */
#define CRM_DOMAIN_MAX    253
#define CRM_CURRENCY_LEN  3


/*
 * A phone number in international form to E.164: "+1 (415) 555-2671",
 * "+44 20 7946 0958", "0044 20 7946 0958" and "+1.415.555.2671" all give
 * "+14155552671" / "+442079460958".  Spaces, dots, hyphens, slashes and
 * one pair of parentheses are separators; the number must start with "+"
 * or "00"; then 8 to 15 digits, the first not 0.  National numbers
 * without a country code cannot be normalised and are refused, as are
 * letters, extensions and anything else.  out needs CRM_PHONE_MAX + 1.
 * Failure: CRM_E_INVALID on field, "must be a phone number in
 * international format (+ and country code)".
 */
crm_status_e crm_phone_normalize(crm_str_t in, const char *field, char *out,
    crm_error_t *err);

/*
 * A shop's domain reduced to its bare lower-case host:
 * "https://Foo.myshopify.com/admin" -> "foo.myshopify.com".  Accepts an
 * optional http:// or https:// scheme (any case), drops a path, query,
 * fragment, port and one trailing dot; refuses user-info ("a@b"), IP
 * addresses, and hosts that are not at least two dot-separated labels of
 * 1..63 letters, digits and inner hyphens with an alphabetic last label of
 * 2+ (or an "xn--" one), at most 253 in all.  out needs
 * CRM_DOMAIN_MAX + 1.  Failure: CRM_E_INVALID on field,
 * "must be a domain name such as shop.example.com".
 */
crm_status_e crm_domain_normalize(crm_str_t in, const char *field,
    char *out, crm_error_t *err);

/*
 * An ISO 4217-shaped currency code, upper-cased: "usd" -> "USD".  Three
 * ASCII letters, nothing else.  out needs CRM_CURRENCY_LEN + 1.
 */
crm_status_e crm_currency_normalize(crm_str_t in, const char *field,
    char *out, crm_error_t *err);

#endif /* CRM_NORMALIZE_H */
