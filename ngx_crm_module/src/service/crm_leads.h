/*
 * Leads: the caller's own, moved through the configured pipeline.
 *
 *   POST /leads/                create
 *   GET /leads/                 list (?stage=, ?q=, paginated)
 *   GET /leads/{id}             one, with its ETag
 *   PUT /leads/{id}             partial update, If-Match
 *   DELETE /leads/{id}          soft delete, If-Match
 *   PUT /leads/{id}/stage       move to a stage and substage
 *   GET /leads/{id}/history     the moves, oldest first
 *   GET /admin/leads            any account's (?owner_id=)
 *
 * Every change writes its audit row (and a move its history row) in the
 * transaction of the change.  A lead of another account answers exactly
 * like a missing one.
 */

#ifndef CRM_LEADS_H
#define CRM_LEADS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_leads_create;
extern const crm_endpoint_t  crm_leads_list;
extern const crm_endpoint_t  crm_leads_get;
extern const crm_endpoint_t  crm_leads_update;
extern const crm_endpoint_t  crm_leads_delete;
extern const crm_endpoint_t  crm_leads_move;
extern const crm_endpoint_t  crm_leads_history;
extern const crm_endpoint_t  crm_leads_admin_list;


/* CRM_OK when id is a live lead of owner_id, else CRM_E_NOT_FOUND */
crm_status_e crm_leads_owned(crm_db_t *db, const char *owner_id,
    const char *id, crm_error_t *err);

#endif /* CRM_LEADS_H */
