/*
 * application/x-www-form-urlencoded, for the OAuth2 password form and for
 * query strings.
 */

#ifndef CRM_FORM_H
#define CRM_FORM_H

#include "crm_error.h"
#include "crm_str.h"


/* err->message when a value does not fit the caller's buffer */
#define CRM_FORM_MSG_TOO_LONG  "is too long"


/*
 * Looks up name in an urlencoded string and percent-decodes its value
 * ('+' is a space) into out (out_size bytes including the NUL).
 * Returns CRM_OK with *found set (0 when absent); CRM_E_MALFORMED for a bad
 * percent escape or a decoded NUL; CRM_E_INVALID when the name occurs twice
 * or the value does not fit (err->field = name).
 */
crm_status_e crm_form_get(crm_str_t form, const char *name, char *out,
    size_t out_size, int *found, crm_error_t *err);

/*
 * CRM_OK when every name in form is one of names (a NULL-terminated list);
 * otherwise CRM_E_INVALID naming the first unknown one.
 */
crm_status_e crm_form_check_names(crm_str_t form, const char *const *names,
    crm_error_t *err);

#endif /* CRM_FORM_H */
