/*
 * Leads and their stage history in PostgreSQL.  Every statement that takes
 * a lead id also takes the owner's id (NULL only for an admin's view of
 * all accounts), so another account's lead is simply not found.
 *
 * Reads return rows (crm_rows_t): lead fields point into the result and
 * stay valid until crm_rows_free().
 */

#ifndef CRM_STORE_LEADS_H
#define CRM_STORE_LEADS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_pipeline.h"
#include "crm_page.h"
#include "crm_validate.h"


typedef struct {
    const char  *id;
    const char  *owner_id;
    const char  *name;
    const char  *email;                 /* NULL when not set */
    const char  *phone;
    const char  *company;
    const char  *shop_domain;
    const char  *source;
    const char  *stage;
    const char  *substage;
    int          score;
    int64_t      value_cents;
    const char  *currency;
    const char  *notes;
    const char  *affiliate_link_id;
    int          version;
    const char  *created_at;            /* RFC 3339, UTC */
    const char  *updated_at;
    int64_t      created_us;            /* for cursors */
    int64_t      updated_us;
} crm_lead_t;


/* the fields a lead is created with; NULL leaves a nullable field unset */
typedef struct {
    const char  *owner_id;
    const char  *name;
    const char  *email;
    const char  *phone;
    const char  *company;
    const char  *shop_domain;
    const char  *source;
    const char  *stage;
    const char  *substage;
    int          score;
    int64_t      value_cents;
    const char  *currency;
    const char  *notes;
    const char  *affiliate_link_id;     /* set for source "affiliate" */
    const char  *outcome;               /* the substage's, or NULL */
    const char  *actor_id;              /* who creates it; NULL: the system */
} crm_lead_new_t;


/* a partial update: a field is written when its bit is in set */
enum {
    CRM_LEAD_NAME        = 0x01,
    CRM_LEAD_EMAIL       = 0x02,
    CRM_LEAD_PHONE       = 0x04,
    CRM_LEAD_COMPANY     = 0x08,
    CRM_LEAD_SHOP_DOMAIN = 0x10,
    CRM_LEAD_VALUE       = 0x20,
    CRM_LEAD_CURRENCY    = 0x40,
    CRM_LEAD_NOTES       = 0x80
};

typedef struct {
    unsigned     set;
    const char  *name;
    const char  *email;                 /* NULL clears */
    const char  *phone;
    const char  *company;
    const char  *shop_domain;
    int64_t      value_cents;
    const char  *currency;
    const char  *notes;
} crm_lead_patch_t;


typedef struct {
    const char  *owner_id;              /* NULL: every account (admin) */
    const char  *stage;                 /* NULL: any */
    const char  *q;                     /* NULL: no text filter */
} crm_lead_filter_t;


/* one history row */
typedef struct {
    const char  *id;
    const char  *actor_id;              /* NULL for the system */
    const char  *from_stage;            /* NULL for the creation */
    const char  *from_substage;
    const char  *to_stage;
    const char  *to_substage;
    int          score;
    const char  *created_at;
    int64_t      created_us;
} crm_lead_event_t;


void crm_lead_row(const crm_rows_t *rows, size_t i, crm_lead_t *out);
void crm_lead_event_row(const crm_rows_t *rows, size_t i,
    crm_lead_event_t *out);

/* inserts the lead and the first row of its history, its creation */
crm_status_e crm_store_lead_insert(crm_db_t *db, const crm_lead_new_t *in,
    crm_rows_t *out, crm_error_t *err);

/* a live lead of owner_id; rows->n is 0 when there is none */
crm_status_e crm_store_lead_get(crm_db_t *db, const char *owner_id,
    const char *id, crm_rows_t *out, crm_error_t *err);

/* crm_store_lead_get(), locking the row until the transaction ends */
crm_status_e crm_store_lead_lock(crm_db_t *db, const char *owner_id,
    const char *id, crm_rows_t *out, crm_error_t *err);

/*
 * The read of GET /leads/{id} in one statement: *active is 1 when the
 * caller exists and is active, and rows->n is 1 with the caller's live
 * lead, or 0.
 */
crm_status_e crm_store_lead_get_as(crm_db_t *db, const char *caller_id,
    const char *id, crm_rows_t *out, int *active, crm_error_t *err);

/*
 * Up to page->limit + 1 live leads, newest first, after the cursor;
 * filter->q is matched as a literal substring of name, email or company.
 */
crm_status_e crm_store_leads_list(crm_db_t *db,
    const crm_lead_filter_t *filter, const crm_page_t *page, crm_rows_t *out,
    crm_error_t *err);

/*
 * Updates a live lead when its version is one of versions (an int array
 * literal from crm_if_match_versions(); NULL: any), incrementing the
 * version.  rows->n is 0 when nothing matched: the caller tells a missing
 * lead from a stale version with crm_store_lead_get().
 */
crm_status_e crm_store_lead_update(crm_db_t *db, const char *owner_id,
    const char *id, const char *versions, const crm_lead_patch_t *patch,
    crm_rows_t *out, crm_error_t *err);

/* sets deleted_at, the same way; *done is 0 when nothing matched */
crm_status_e crm_store_lead_delete(crm_db_t *db, const char *owner_id,
    const char *id, const char *versions, int *done, crm_error_t *err);

/*
 * Moves a live lead to a substage of stage (its score and outcome), the
 * same way, and returns it with its previous stage and substage in
 * from_stage and from_substage.
 */
crm_status_e crm_store_lead_move(crm_db_t *db, const char *owner_id,
    const char *id, const char *versions, const crm_stage_t *stage,
    const crm_substage_t *substage, crm_rows_t *out,
    const char **from_stage, const char **from_substage, crm_error_t *err);

/* the history row of a move to a substage of stage */
crm_status_e crm_store_lead_event(crm_db_t *db, const char *lead_id,
    const char *actor_id, const char *from_stage, const char *from_substage,
    const crm_stage_t *stage, const crm_substage_t *substage,
    crm_error_t *err);

/* up to page->limit + 1 events of a lead, oldest first, after the cursor */
crm_status_e crm_store_lead_history(crm_db_t *db, const char *lead_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err);

#endif /* CRM_STORE_LEADS_H */
