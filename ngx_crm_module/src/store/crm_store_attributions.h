/*
 * Attributions (an install credited to a link) and conversions (a
 * purchase credited to a link) in PostgreSQL.  Both are idempotent through
 * their unique keys: an insert that meets an existing row, even one that
 * a concurrent transaction is still writing, waits for it and then inserts
 * nothing, and the caller answers with the row that was there first.
 */

#ifndef CRM_STORE_ATTRIBUTIONS_H
#define CRM_STORE_ATTRIBUTIONS_H

#include <stdint.h>

#include "crm_db.h"
#include "crm_ids.h"
#include "crm_store_links.h"
#include "crm_validate.h"


typedef struct {
    const char  *link_id;
    const char  *owner_id;
    const char  *lead_id;
    const char  *shop_domain;
    const char  *click_id;              /* NULL when not sent */
    const char  *event_id;              /* NULL when not sent */
} crm_attribution_new_t;


typedef struct {
    char         id[CRM_UUID_LEN + 1];
    char         lead_id[CRM_UUID_LEN + 1];
    char         link_id[CRM_LINK_ID_LEN + 1];
} crm_attribution_t;


typedef struct {
    const char  *order_id;
    const char  *link_id;
    const char  *owner_id;
    const char  *attribution_id;        /* NULL: the link's for the shop */
    const char  *click_id;              /* NULL when not sent */
    const char  *shop_domain;           /* NULL when not sent */
    int64_t      amount_cents;
    const char  *currency;
    int64_t      commission_cents;
} crm_conversion_new_t;


typedef struct {
    char         id[CRM_UUID_LEN + 1];
    int64_t      commission_cents;
} crm_conversion_t;


/* an install, as crm.install() (schema/005-install.sql) takes it */
typedef struct {
    const char  *link_id;
    const char  *shop_domain;
    const char  *click_id;              /* NULL when not sent */
    const char  *event_id;              /* NULL when not sent */
    const char  *lead_name;             /* for a new lead */
    const char  *email;                 /* NULL when not sent */
    const char  *stage;                 /* a new lead's place */
    const char  *substage;
    int          score;
} crm_install_new_t;


/*
 * An install in one statement, its own transaction: the attribution and
 * whether this call created it (*created), or a repeat's first one.
 * CRM_E_NOT_FOUND for an unknown link; CRM_E_CONFLICT when a concurrent
 * repeat got there first (nothing written: read it) or when the owner's
 * wallet holds another currency than the link's (err->field "currency").
 */
crm_status_e crm_store_install(crm_db_t *db, const crm_install_new_t *in,
    crm_attribution_t *out, int *created, crm_error_t *err);

/*
 * The attribution with event_id (NULL: none) or else the one of link_id
 * and shop_domain; *found is 0 when neither exists.
 */
crm_status_e crm_store_attribution_find(crm_db_t *db, const char *link_id,
    const char *shop_domain, const char *event_id, crm_attribution_t *out,
    int *found, crm_error_t *err);

/* the shop's most recent attribution; *found is 0 when it has none */
crm_status_e crm_store_attribution_latest(crm_db_t *db,
    const char *shop_domain, crm_attribution_t *out, int *found,
    crm_error_t *err);

/* the conversion of order_id; *found is 0 when there is none */
crm_status_e crm_store_conversion_find(crm_db_t *db, const char *order_id,
    crm_conversion_t *out, int *found, crm_error_t *err);

/* inserts unless order_id is taken: then *created is 0 */
crm_status_e crm_store_conversion_insert(crm_db_t *db,
    const crm_conversion_new_t *in, crm_conversion_t *out, int *created,
    crm_error_t *err);

#endif /* CRM_STORE_ATTRIBUTIONS_H */
