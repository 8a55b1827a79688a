/*
 * A byte span: a pointer and a length, not necessarily NUL-terminated.
 */

#ifndef CRM_STR_H
#define CRM_STR_H

#include <stddef.h>
#include <string.h>


typedef struct {
    const char  *data;
    size_t       len;
} crm_str_t;


#define crm_str_lit(s)  ((crm_str_t) { (s), sizeof(s) - 1 })
#define crm_str_c(s)    ((crm_str_t) { (s), strlen(s) })

static inline int
crm_str_eq(crm_str_t a, const char *lit)
{
    size_t  n = strlen(lit);

    return a.len == n && memcmp(a.data, lit, n) == 0;
}

#endif /* CRM_STR_H */
