/*
 * Accounts and the login log in PostgreSQL.
 */

#ifndef CRM_STORE_ACCOUNTS_H
#define CRM_STORE_ACCOUNTS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_normalize.h"
#include "crm_page.h"
#include "crm_password.h"
#include "crm_validate.h"


#define CRM_FULL_NAME_MAX  200      /* characters */
#define CRM_PROFILE_MAX    200      /* display_name, company: characters */
#define CRM_ISSUER_MAX     254
#define CRM_SUBJECT_MAX    128


typedef enum {
    CRM_ROLE_NONE = 0,
    CRM_ROLE_ADMIN,
    CRM_ROLE_MEMBER,
    CRM_ROLE_MERCHANT
} crm_role_e;


typedef struct {
    char        id[CRM_UUID_LEN + 1];
    char        email[CRM_EMAIL_MAX + 1];
    char        full_name[CRM_FULL_NAME_MAX * 4 + 1];
    crm_role_e  role;
    int         is_active;
    char        created_at[32];             /* RFC 3339, UTC */
    int64_t     created_us;                 /* for cursors */
    char        password_hash[CRM_PASSWORD_HASH_SIZE];
    char        display_name[CRM_PROFILE_MAX * 4 + 1];
    char        company[CRM_PROFILE_MAX * 4 + 1];
    char        phone[CRM_PHONE_MAX + 1];
    char        idp_issuer[CRM_ISSUER_MAX + 1];    /* "": not a merchant's */
    char        idp_subject[CRM_SUBJECT_MAX + 1];
} crm_account_t;


/* a merchant as its first ID token describes it */
typedef struct {
    const char  *issuer;
    const char  *subject;
    const char  *email;                     /* NULL: none given */
    const char  *full_name;
    const char  *display_name;
    const char  *company;
} crm_merchant_new_t;


/* the profile fields a PATCH sets; NULL leaves one as it is */
typedef struct {
    const char  *full_name;
    const char  *display_name;
    const char  *company;
    const char  *phone;
} crm_profile_t;


typedef struct {
    const char  *account_id;                /* NULL when unknown */
    const char  *email;                     /* NULL: not an address */
    int          success;
    const char  *reason;
    const char  *ip;
    const char  *user_agent;
} crm_login_attempt_t;


const char *crm_role_name(crm_role_e role);
crm_role_e crm_role_parse(const char *name, size_t len);

/* CRM_E_CONFLICT when the email is taken */
crm_status_e crm_store_account_insert(crm_db_t *db, const char *email,
    const char *full_name, crm_role_e role, const char *password_hash,
    crm_account_t *out, crm_error_t *err);

/* *found is 0 when there is no such account */
crm_status_e crm_store_account_by_email(crm_db_t *db, const char *email,
    crm_account_t *out, int *found, crm_error_t *err);
crm_status_e crm_store_account_by_id(crm_db_t *db, const char *id,
    crm_account_t *out, int *found, crm_error_t *err);

/* the merchant signed in with (issuer, subject) */
crm_status_e crm_store_account_by_identity(crm_db_t *db, const char *issuer,
    const char *subject, crm_account_t *out, int *found, crm_error_t *err);

/*
 * The merchant of (issuer, subject): created, or the existing one with its
 * email brought up to date.  *created tells which.  Safe under any number
 * of concurrent calls for the same identity.
 */
crm_status_e crm_store_merchant_bootstrap(crm_db_t *db,
    const crm_merchant_new_t *m, crm_account_t *out, int *created,
    crm_error_t *err);

crm_status_e crm_store_account_profile(crm_db_t *db, const char *id,
    const crm_profile_t *p, crm_account_t *out, int *found, crm_error_t *err);

crm_status_e crm_store_account_set_password(crm_db_t *db, const char *id,
    const char *password_hash, crm_error_t *err);

/* role CRM_ROLE_NONE and is_active < 0 leave those columns as they are */
crm_status_e crm_store_account_update(crm_db_t *db, const char *id,
    crm_role_e role, int is_active, crm_account_t *out, int *found,
    crm_error_t *err);

/* creates an admin, or promotes and activates the existing account */
crm_status_e crm_store_account_make_admin(crm_db_t *db, const char *email,
    const char *password_hash, crm_account_t *out, int *created,
    crm_error_t *err);

/*
 * Up to limit + 1 accounts after the cursor, oldest first, into out (room
 * for limit + 1); *n is how many were read.
 */
crm_status_e crm_store_accounts_page(crm_db_t *db, const crm_page_t *page,
    crm_account_t *out, size_t *n, crm_error_t *err);

crm_status_e crm_store_login_log(crm_db_t *db,
    const crm_login_attempt_t *attempt, crm_error_t *err);

#endif /* CRM_STORE_ACCOUNTS_H */
