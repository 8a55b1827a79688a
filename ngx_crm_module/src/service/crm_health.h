/*
 * GET /healthz: whether this worker can reach PostgreSQL.
 */

#ifndef CRM_HEALTH_H
#define CRM_HEALTH_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_health;

#endif /* CRM_HEALTH_H */
