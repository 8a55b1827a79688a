/*
 * Affiliate links and their counters in PostgreSQL.  Every statement that
 * an account's request runs takes the owner's id beside the link's, so
 * another account's link is simply not found; the callbacks, which come
 * from a signed sender rather than an account, read a link's terms by id.
 *
 * Reads return rows (crm_rows_t): link fields point into the result and
 * stay valid until crm_rows_free().
 */

#ifndef CRM_STORE_LINKS_H
#define CRM_STORE_LINKS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_ids.h"
#include "crm_page.h"
#include "crm_validate.h"


/* a link with its counters, as the API shows it */
typedef struct {
    const char  *id;
    const char  *owner_id;
    const char  *merchant_id;           /* NULL when not set */
    const char  *name;
    const char  *target_url;
    const char  *status;                /* "active" or "disabled" */
    int64_t      install_cents;
    int64_t      conversion_bps;
    const char  *currency;
    int          version;
    const char  *created_at;            /* RFC 3339, UTC */
    const char  *updated_at;
    int64_t      created_us;            /* for cursors */
    int64_t      clicks;
    int64_t      installs;
    int64_t      conversions;
    int64_t      earnings_cents;
    const char  *last_click_at;         /* NULL before the first click */
    int          admin_disabled;        /* by an administrator */
    int          owner_active;          /* the owner's account */
} crm_link_t;


typedef struct {
    const char  *id;                    /* crm_link_id_generate() */
    const char  *owner_id;
    const char  *merchant_id;           /* NULL: none */
    const char  *name;
    const char  *target_url;
    int64_t      install_cents;
    int64_t      conversion_bps;
    const char  *currency;
} crm_link_new_t;


/* a partial update: a field is written when its bit is in set */
enum {
    CRM_LINK_TARGET = 0x01,
    CRM_LINK_NAME   = 0x02,
    CRM_LINK_STATUS = 0x04
};

typedef struct {
    unsigned     set;
    const char  *target_url;
    const char  *name;
    const char  *status;
} crm_link_patch_t;


/* what a callback needs of a link, copied out of the result */
typedef struct {
    char         id[CRM_LINK_ID_LEN + 1];
    char         owner_id[CRM_UUID_LEN + 1];
    int64_t      install_cents;
    int64_t      conversion_bps;
    char         currency[4];

    /* an administrator's block or a deactivated owner: no commission */
    int          earns;
} crm_link_terms_t;


/*
 * The terms' columns, from a link l joined to its owner's account o, as
 * crm_link_terms_row() reads them: id, owner, install, bps, currency,
 * earns
 */
#define CRM_LINK_TERMS_COLS                                                   \
    "l.id, l.owner_id, l.install_cents, l.conversion_bps, l.currency,"        \
    " o.is_active AND NOT l.admin_disabled"

#define CRM_LINK_TERMS_NCOLS  6

void crm_link_terms_row(const crm_rows_t *rows, size_t i,
    crm_link_terms_t *out);


void crm_link_row(const crm_rows_t *rows, size_t i, crm_link_t *out);

/*
 * Why a link does not redirect: "account" (its owner is deactivated),
 * "admin", "owner" (its status), or NULL when it does
 */
const char *crm_link_disabled_by(const crm_link_t *link);

/*
 * Inserts a link and its counters.  rows->n is 0 when in->merchant_id is
 * not a merchant's account; CRM_E_CONFLICT with err->cause
 * "affiliate_links_pkey" when the id is taken.
 */
crm_status_e crm_store_link_insert(crm_db_t *db, const crm_link_new_t *in,
    crm_rows_t *out, crm_error_t *err);

/* a link of owner_id; rows->n is 0 when there is none */
crm_status_e crm_store_link_get(crm_db_t *db, const char *owner_id,
    const char *id, crm_rows_t *out, crm_error_t *err);

/* up to page->limit + 1 links of owner_id, newest first, after the cursor */
crm_status_e crm_store_links_list(crm_db_t *db, const char *owner_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err);

/*
 * Updates a link when its version is one of versions (from
 * crm_if_match_versions(); NULL: any), incrementing the version.  rows->n
 * is 0 when nothing matched, or when the patch would activate a link that
 * an administrator disabled.
 */
crm_status_e crm_store_link_update(crm_db_t *db, const char *owner_id,
    const char *id, const char *versions, const crm_link_patch_t *patch,
    crm_rows_t *out, crm_error_t *err);

/*
 * Sets a link's administrative block, whoever owns it, when its version is
 * one of versions (NULL: any); rows->n is 0 when nothing matched
 */
crm_status_e crm_store_link_admin_update(crm_db_t *db, const char *id,
    const char *versions, int disabled, crm_rows_t *out, crm_error_t *err);

/* whether any account has the link id */
crm_status_e crm_store_link_exists(crm_db_t *db, const char *id, int *exists,
    crm_error_t *err);

/*
 * Inside a transaction, before a link is made: *wait is 0 when owner_id
 * made fewer than limit links in the last period seconds, else the
 * seconds until it may make another.  Holds the owner's quota lock until
 * the transaction ends.
 */
crm_status_e crm_store_link_quota(crm_db_t *db, const char *owner_id,
    int64_t limit, int64_t period, int64_t *wait, crm_error_t *err);

/* the ids of every link of owner_id, in column 0 */
crm_status_e crm_store_links_of_owner(crm_db_t *db, const char *owner_id,
    crm_rows_t *out, crm_error_t *err);

/* a link's terms by id alone, for a callback; *found is 0 when unknown */
crm_status_e crm_store_link_terms(crm_db_t *db, const char *id,
    crm_link_terms_t *out, int *found, crm_error_t *err);

/* adds to a link's install and conversion counters and its earnings */
crm_status_e crm_store_link_count(crm_db_t *db, const char *id,
    int installs, int conversions, int64_t earnings_cents, crm_error_t *err);

#endif /* CRM_STORE_LINKS_H */
