/*
 * GET /admin/audit-logs: who did what to which object, newest first.
 */

#ifndef CRM_AUDIT_H
#define CRM_AUDIT_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_audit_list;

#endif /* CRM_AUDIT_H */
