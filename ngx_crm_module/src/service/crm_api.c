/*
 * The API's route table: every path the gateway answers, and the endpoint
 * that answers it.
 */

#include "crm_accounts.h"
#include "crm_audit.h"
#include "crm_auth.h"
#include "crm_callbacks.h"
#include "crm_health.h"
#include "crm_integrations.h"
#include "crm_leads.h"
#include "crm_links.h"
#include "crm_performance.h"
#include "crm_stages.h"
#include "crm_wallets.h"
#include "crm_webhooks.h"


const crm_route_t  crm_api_routes[] = {
    { CRM_M_GET,   "/healthz",            &crm_health },
    { CRM_M_POST,  "/auth/register",      &crm_auth_register },
    { CRM_M_POST,  "/auth/login",         &crm_auth_login },
    { CRM_M_GET,   "/auth/me",            &crm_auth_me },
    { CRM_M_POST,  "/auth/bootstrap",     &crm_auth_bootstrap },
    { CRM_M_PATCH, "/auth/profile",       &crm_auth_profile },
    { CRM_M_GET,   "/admin/users",        &crm_accounts_list },
    { CRM_M_PATCH, "/admin/users/{id}",   &crm_accounts_update },
    { CRM_M_GET,   "/admin/leads",        &crm_leads_admin_list },
    { CRM_M_GET,   "/admin/audit-logs",   &crm_audit_list },
    { CRM_M_PATCH, "/admin/links/{id}",   &crm_links_admin_update },
    { CRM_M_POST,  "/leads/",             &crm_leads_create },
    { CRM_M_GET,   "/leads/",             &crm_leads_list },
    { CRM_M_GET,   "/leads/{id}",         &crm_leads_get },
    { CRM_M_PUT,   "/leads/{id}",         &crm_leads_update },
    { CRM_M_DELETE, "/leads/{id}",        &crm_leads_delete },
    { CRM_M_PUT,   "/leads/{id}/stage",   &crm_leads_move },
    { CRM_M_GET,   "/leads/{id}/history", &crm_leads_history },
    { CRM_M_GET,   "/pipeline/stages",    &crm_stages_list },
    { CRM_M_GET,   "/pipeline/stages/{stage}", &crm_stages_get },
    { CRM_M_POST,  "/affiliate/links",    &crm_links_create },
    { CRM_M_GET,   "/affiliate/links",    &crm_links_list },
    { CRM_M_GET,   "/affiliate/links/{id}", &crm_links_get },
    { CRM_M_PATCH, "/affiliate/links/{id}", &crm_links_update },
    { CRM_M_GET,   "/affiliate/links/{id}/stats", &crm_performance_link },
    { CRM_M_POST,  "/callbacks/install",  &crm_callbacks_install },
    { CRM_M_POST,  "/callbacks/conversion", &crm_callbacks_conversion },
    { CRM_M_POST,  "/integrations/webhooks/{source}", &crm_webhooks_receive },
    { CRM_M_GET,   "/integrations/events", &crm_webhooks_list },
    { CRM_M_GET,   "/leads/{id}/events", &crm_webhooks_of_lead },
    { CRM_M_GET,   "/leads/{id}/compatibility",
                   &crm_performance_compatibility },
    { CRM_M_GET,   "/performance/me",     &crm_performance_me },
    { CRM_M_GET,   "/performance/users/{id}", &crm_performance_user },
    { CRM_M_GET,   "/performance/leaderboard", &crm_performance_leaderboard },
    { CRM_M_GET,   "/wallet",             &crm_wallets_get },
    { CRM_M_GET,   "/wallet/transactions", &crm_wallets_transactions },
    { CRM_M_POST,  "/admin/wallets/{id}/payouts", &crm_wallets_payout },
    { CRM_M_POST,  "/crm/validate",       &crm_integrations_validate },
    { CRM_M_POST,  "/crm/connect",        &crm_integrations_connect },
    { CRM_M_GET,   "/crm/list",           &crm_integrations_list },
    { CRM_M_GET,   "/crm/{type}/status",  &crm_integrations_status },
    { CRM_M_DELETE, "/crm/{type}/disconnect", &crm_integrations_disconnect },
    { CRM_M_GET,   "/crm/{type}/logs",    &crm_integrations_logs },
    { CRM_M_POST,  "/crm/{type}/retry",   &crm_integrations_retry },
};

const size_t  crm_api_nroutes = sizeof(crm_api_routes)
                                / sizeof(crm_api_routes[0]);
