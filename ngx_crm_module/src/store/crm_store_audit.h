/*
 * The audit log: who did what to which object, written inside the
 * transaction of the change it records.
 */

#ifndef CRM_STORE_AUDIT_H
#define CRM_STORE_AUDIT_H

#include "crm_db.h"


typedef struct {
    const char  *actor_id;          /* NULL for the system */
    const char  *action;            /* "account.register", ... */
    const char  *object_type;
    const char  *object_id;
    const char  *details;           /* a JSON object */
} crm_audit_entry_t;


crm_status_e crm_store_audit(crm_db_t *db, const crm_audit_entry_t *entry,
    crm_error_t *err);

#endif /* CRM_STORE_AUDIT_H */
