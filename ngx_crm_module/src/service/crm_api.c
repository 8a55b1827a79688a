/*
 * The API's route table: every path the gateway answers, and the endpoint
 * that answers it.
 */

#include "crm_accounts.h"
#include "crm_auth.h"
#include "crm_health.h"


const crm_route_t  crm_api_routes[] = {
    { CRM_M_GET,   "/healthz",            &crm_health },
    { CRM_M_POST,  "/auth/register",      &crm_auth_register },
    { CRM_M_POST,  "/auth/login",         &crm_auth_login },
    { CRM_M_GET,   "/auth/me",            &crm_auth_me },
    { CRM_M_GET,   "/admin/users",        &crm_accounts_list },
    { CRM_M_PATCH, "/admin/users/{id}",   &crm_accounts_update },
};

const size_t  crm_api_nroutes = sizeof(crm_api_routes)
                                / sizeof(crm_api_routes[0]);
