/*
 * Authentication endpoints: POST /auth/register, POST /auth/login,
 * POST /auth/bootstrap (a merchant's first sign-in), GET /auth/me,
 * PATCH /auth/profile.
 */

#ifndef CRM_AUTH_H
#define CRM_AUTH_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_auth_register;
extern const crm_endpoint_t  crm_auth_login;
extern const crm_endpoint_t  crm_auth_me;
extern const crm_endpoint_t  crm_auth_bootstrap;
extern const crm_endpoint_t  crm_auth_profile;

#endif /* CRM_AUTH_H */
