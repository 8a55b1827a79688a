/*
 * GET /healthz: whether this worker reaches PostgreSQL, as its last probe
 * found.  A probe older than CRM_HEALTH_STALE_MS (one that hangs on a
 * silent network) counts as down.
 */

#ifndef CRM_HEALTH_H
#define CRM_HEALTH_H

#include "crm_call.h"


#define CRM_HEALTH_PROBE_MS  1000
#define CRM_HEALTH_STALE_MS  10000


extern const crm_endpoint_t  crm_health;

#endif /* CRM_HEALTH_H */
