/*
 * Attributions and conversions.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_attributions.h"


static void crm_attribution_copy(const crm_rows_t *rows, int col,
    crm_attribution_t *out);
static crm_status_e crm_store_attribution_one(crm_db_t *db,
    const crm_stmt_t *stmt, const char *const *params,
    crm_attribution_t *out, int *found, crm_error_t *err);
static crm_status_e crm_store_conversion_one(crm_db_t *db,
    const crm_stmt_t *stmt, const char *const *params,
    crm_conversion_t *out, int *found, crm_error_t *err);


/* an event id names its attribution even when link or shop differ */
static const crm_stmt_t  crm_attribution_find = {
    "attribution_find",
    "SELECT id, lead_id, link_id FROM crm.attributions"
    " WHERE (link_id = $1 AND shop_domain = $2) OR event_id = $3"
    " ORDER BY (event_id = $3) IS TRUE DESC LIMIT 1",
    3
};

/* columns as crm_attribution_copy() reads them, then whether created */
static const crm_stmt_t  crm_attribution_install = {
    "attribution_install",
    "SELECT r_attribution, r_lead, $1, r_created"
    " FROM crm.install($1, $2, $3, $4, $5, $6, $7, $8, $9::int)",
    9
};

static const crm_stmt_t  crm_attribution_latest = {
    "attribution_latest",
    "SELECT id, lead_id, link_id FROM crm.attributions"
    " WHERE shop_domain = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    1
};

static const crm_stmt_t  crm_conversion_find = {
    "conversion_find",
    "SELECT id, commission_cents FROM crm.conversions WHERE order_id = $1",
    1
};

static const crm_stmt_t  crm_conversion_insert = {
    "conversion_insert",
    "INSERT INTO crm.conversions (order_id, link_id, owner_id,"
    " attribution_id, click_id, shop_domain, amount_cents, currency,"
    " commission_cents) VALUES ($1, $2, $3, coalesce($4::uuid,"
    " (SELECT id FROM crm.attributions WHERE link_id = $2"
    " AND shop_domain = $6)), $5, $6, $7::bigint, $8, $9::bigint)"
    " ON CONFLICT (order_id) DO NOTHING RETURNING id, commission_cents",
    9
};


/* id, lead_id and link_id from the result's columns col .. col + 2 */
static void
crm_attribution_copy(const crm_rows_t *rows, int col, crm_attribution_t *out)
{
    snprintf(out->id, sizeof(out->id), "%s", crm_rows_value(rows, 0, col));
    snprintf(out->lead_id, sizeof(out->lead_id), "%s",
             crm_rows_value(rows, 0, col + 1));
    snprintf(out->link_id, sizeof(out->link_id), "%s",
             crm_rows_value(rows, 0, col + 2));
}


static crm_status_e
crm_store_attribution_one(crm_db_t *db, const crm_stmt_t *stmt,
    const char *const *params, crm_attribution_t *out, int *found,
    crm_error_t *err)
{
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_db_query(db, stmt, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *found = rows.n > 0;

    if (*found) {
        crm_attribution_copy(&rows, 0, out);
    }

    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_attribution_find(crm_db_t *db, const char *link_id,
    const char *shop_domain, const char *event_id, crm_attribution_t *out,
    int *found, crm_error_t *err)
{
    const char  *params[3];

    params[0] = link_id;
    params[1] = shop_domain;
    params[2] = event_id;

    return crm_store_attribution_one(db, &crm_attribution_find, params, out,
                                     found, err);
}


crm_status_e
crm_store_install(crm_db_t *db, const crm_install_new_t *in,
    crm_attribution_t *out, int *created, crm_error_t *err)
{
    char           score[16];
    crm_rows_t     rows;
    const char    *params[9];
    crm_status_e   rc;

    snprintf(score, sizeof(score), "%d", in->score);

    params[0] = in->link_id;
    params[1] = in->shop_domain;
    params[2] = in->click_id;
    params[3] = in->event_id;
    params[4] = in->lead_name;
    params[5] = in->email;
    params[6] = in->stage;
    params[7] = in->substage;
    params[8] = score;

    rc = crm_db_query(db, &crm_attribution_install, params, &rows, err);

    /* the function's refusals (schema/005-install.sql) */
    if (rc != CRM_OK) {
        if (strcmp(err->sqlstate, "CRML1") == 0) {
            return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such link");
        }

        if (strcmp(err->sqlstate, "CRML2") == 0) {
            crm_error_set(err, CRM_E_CONFLICT, NULL, "concurrent install");
            return crm_error_cause(err, "a concurrent repeat got there "
                                   "first");
        }

        if (strcmp(err->sqlstate, "CRML3") == 0) {
            crm_error_set(err, CRM_E_CONFLICT, "currency",
                          "the link's owner has a wallet in another "
                          "currency than the link's");
            return crm_error_cause(err, "link \"%s\"", in->link_id);
        }

        return rc;
    }

    crm_attribution_copy(&rows, 0, out);
    *created = crm_rows_value(&rows, 0, 3)[0] == 't';
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_attribution_latest(crm_db_t *db, const char *shop_domain,
    crm_attribution_t *out, int *found, crm_error_t *err)
{
    const char  *params[1];

    params[0] = shop_domain;

    return crm_store_attribution_one(db, &crm_attribution_latest, params,
                                     out, found, err);
}


static crm_status_e
crm_store_conversion_one(crm_db_t *db, const crm_stmt_t *stmt,
    const char *const *params, crm_conversion_t *out, int *found,
    crm_error_t *err)
{
    crm_rows_t     rows;
    crm_status_e   rc;

    rc = crm_db_query(db, stmt, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *found = rows.n > 0;

    if (*found) {
        snprintf(out->id, sizeof(out->id), "%s",
                 crm_rows_value(&rows, 0, 0));
        out->commission_cents = strtoll(crm_rows_value(&rows, 0, 1), NULL,
                                        10);
    }

    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_conversion_find(crm_db_t *db, const char *order_id,
    crm_conversion_t *out, int *found, crm_error_t *err)
{
    const char  *params[1];

    params[0] = order_id;

    return crm_store_conversion_one(db, &crm_conversion_find, params, out,
                                    found, err);
}


crm_status_e
crm_store_conversion_insert(crm_db_t *db, const crm_conversion_new_t *in,
    crm_conversion_t *out, int *created, crm_error_t *err)
{
    char         amount[24], commission[24];
    const char  *params[9];

    snprintf(amount, sizeof(amount), "%lld", (long long) in->amount_cents);
    snprintf(commission, sizeof(commission), "%lld",
             (long long) in->commission_cents);

    params[0] = in->order_id;
    params[1] = in->link_id;
    params[2] = in->owner_id;
    params[3] = in->attribution_id;
    params[4] = in->click_id;
    params[5] = in->shop_domain;
    params[6] = amount;
    params[7] = in->currency;
    params[8] = commission;

    return crm_store_conversion_one(db, &crm_conversion_insert, params, out,
                                    created, err);
}
