/*
 * CRM integrations: POST /crm/validate, POST /crm/connect, GET /crm/list,
 * GET /crm/{type}/status, DELETE /crm/{type}/disconnect,
 * GET /crm/{type}/logs.
 */

#ifndef CRM_INTEGRATIONS_H
#define CRM_INTEGRATIONS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_integrations_validate;
extern const crm_endpoint_t  crm_integrations_connect;
extern const crm_endpoint_t  crm_integrations_list;
extern const crm_endpoint_t  crm_integrations_status;
extern const crm_endpoint_t  crm_integrations_disconnect;
extern const crm_endpoint_t  crm_integrations_logs;
extern const crm_endpoint_t  crm_integrations_retry;

#endif /* CRM_INTEGRATIONS_H */
