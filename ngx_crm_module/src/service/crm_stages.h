/*
 * The pipeline as loaded now: GET /pipeline/stages and
 * GET /pipeline/stages/{stage}.
 */

#ifndef CRM_STAGES_H
#define CRM_STAGES_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_stages_list;
extern const crm_endpoint_t  crm_stages_get;

#endif /* CRM_STAGES_H */
