/*
 * Accounts as the API shows them, and their administration:
 * GET /admin/users, PATCH /admin/users/{id}.
 */

#ifndef CRM_ACCOUNTS_H
#define CRM_ACCOUNTS_H

#include "crm_call.h"


extern const crm_endpoint_t  crm_accounts_list;
extern const crm_endpoint_t  crm_accounts_update;


/*
 * Creates an admin account for email with password, or promotes and
 * activates the existing account (its password is left alone); one
 * transaction with its audit row.  *created tells which happened.
 */
crm_status_e crm_accounts_make_admin(crm_db_t *db, const char *email,
    const char *password, const crm_argon2_params_t *argon2,
    crm_account_t *out, int *created, crm_error_t *err);

/*
 * writes {id, email, full_name, role, is_active, created_at, display_name,
 * company, phone}, and for a merchant merchant_id and identity {issuer,
 * subject}; 0 or -1
 */
int crm_account_render(yajl_gen g, const crm_account_t *acct);

/* makes acct the call's JSON reply with status */
crm_status_e crm_account_reply(crm_call_t *call, unsigned status,
    const crm_account_t *acct, crm_error_t *err);

#endif /* CRM_ACCOUNTS_H */
