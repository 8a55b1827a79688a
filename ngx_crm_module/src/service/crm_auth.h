/*
 * Authentication endpoints: POST /auth/register, POST /auth/login,
 * GET /auth/me.
 */

#ifndef CRM_AUTH_H
#define CRM_AUTH_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_auth_register;
extern const crm_endpoint_t  crm_auth_login;
extern const crm_endpoint_t  crm_auth_me;

#endif /* CRM_AUTH_H */
