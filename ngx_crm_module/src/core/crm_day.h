/*
 * UTC days, as the performance views count them: a day is a number of
 * days since 1970-01-01, written "YYYY-MM-DD".
 */

#ifndef CRM_DAY_H
#define CRM_DAY_H

#include <stdint.h>

#include "crm_str.h"


#define CRM_DAY_LEN  10         /* "YYYY-MM-DD" */


/*
 * The UTC day of a date ("2026-12-01") or of an RFC 3339 time
 * ("2026-12-01T23:30:00-02:00" is 2026-12-02; "Z" or an offset required,
 * fractions of a second allowed, "t" and "z" too, and a space for the
 * "+" of an offset, which a query string decodes so).  Years 1..9999.
 * Returns 0, or -1 when s is none of these.
 */
int crm_day_parse(crm_str_t s, int64_t *day);

/* the day of unix time t */
int64_t crm_day_of(int64_t t);

/* writes "YYYY-MM-DD" and a NUL into out[CRM_DAY_LEN + 1] */
void crm_day_format(int64_t day, char *out);

#endif /* CRM_DAY_H */
