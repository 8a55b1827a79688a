/*
 * The audit log.
 */

#include <stddef.h>

#include "crm_store_audit.h"


static const crm_stmt_t  crm_audit_insert = {
    "audit_insert",
    "INSERT INTO crm.audit_log (actor_id, action, object_type, object_id,"
    " details) VALUES ($1, $2, $3, $4, $5::jsonb)",
    5
};


crm_status_e
crm_store_audit(crm_db_t *db, const crm_audit_entry_t *entry,
    crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;
    const char    *params[5];

    params[0] = entry->actor_id;
    params[1] = entry->action;
    params[2] = entry->object_type;
    params[3] = entry->object_id;
    params[4] = entry->details ? entry->details : "{}";

    rc = crm_db_exec(db, &crm_audit_insert, params, &res, err);
    PQclear(res);

    return rc;
}
