/*
 * Performance views (docs/openapi.json, tag "Performance"):
 *
 *   GET /performance/me                 the caller's summary
 *   GET /performance/users/{id}         one account's: admins, or itself
 *   GET /performance/leaderboard        admin: accounts ranked by a metric
 *   GET /leads/{id}/compatibility       a lead's score from the parts and
 *                                       weights of pipeline-config/
 *   GET /affiliate/links/{id}/stats     a link's days: clicks, installs,
 *                                       conversions, commission
 *
 * A summary reads the counters kept as events happen
 * (crm_store_stats.h): a handful of rows whatever the account's size.
 * Ranges are whole UTC days, both ends included, at most 366.
 */

#ifndef CRM_PERFORMANCE_H
#define CRM_PERFORMANCE_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_performance_me;
extern const crm_endpoint_t  crm_performance_user;
extern const crm_endpoint_t  crm_performance_leaderboard;
extern const crm_endpoint_t  crm_performance_compatibility;
extern const crm_endpoint_t  crm_performance_link;

#endif /* CRM_PERFORMANCE_H */
