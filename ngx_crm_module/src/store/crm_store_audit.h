/*
 * The audit log: who did what to which object, written inside the
 * transaction of the change it records.
 */

#ifndef CRM_STORE_AUDIT_H
#define CRM_STORE_AUDIT_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_page.h"


typedef struct {
    const char  *actor_id;          /* NULL for the system */
    const char  *action;            /* "account.register", ... */
    const char  *object_type;
    const char  *object_id;
    const char  *details;           /* a JSON object */
} crm_audit_entry_t;


/* NULL members do not filter */
typedef struct {
    const char  *actor_id;
    const char  *action;
    const char  *object_type;
    const char  *object_id;
} crm_audit_filter_t;


/* one row of a list */
typedef struct {
    const char  *id;
    const char  *actor_id;              /* NULL for the system */
    const char  *action;
    const char  *object_type;
    const char  *object_id;
    const char  *details;               /* a JSON object */
    const char  *created_at;
    int64_t      created_us;
} crm_audit_row_t;


crm_status_e crm_store_audit(crm_db_t *db, const crm_audit_entry_t *entry,
    crm_error_t *err);

/*
 * Up to page->limit + 1 entries, newest first, after the cursor (whose id
 * is numeric: the identity column).
 */
crm_status_e crm_store_audit_list(crm_db_t *db,
    const crm_audit_filter_t *filter, const crm_page_t *page,
    crm_rows_t *out, crm_error_t *err);

void crm_audit_row(const crm_rows_t *rows, size_t i, crm_audit_row_t *out);

#endif /* CRM_STORE_AUDIT_H */
