/*
 * Affiliate links and their counters.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_links.h"


/*
 * the columns crm_link_row() reads, from a link l joined to its stats s
 * and its owner's account a
 */
#define CRM_LINK_COLS                                                         \
    "l.id, l.owner_id, l.merchant_id, l.name, l.target_url, l.status, "       \
    "l.install_cents, l.conversion_bps, l.currency, l.version, "              \
    CRM_SQL_RFC3339("l.created_at") ", " CRM_SQL_RFC3339("l.updated_at")      \
    ", " CRM_SQL_EPOCH_US("l.created_at") ", s.clicks, s.installs, "          \
    "s.conversions, s.earnings_cents, " CRM_SQL_RFC3339("s.last_click_at")    \
    ", l.admin_disabled, a.is_active"

#define CRM_LINK_JOINS                                                        \
    " JOIN crm.affiliate_link_stats s ON s.link_id = l.id"                    \
    " JOIN crm.accounts a ON a.id = l.owner_id"

#define CRM_LINK_FROM  " FROM crm.affiliate_links l" CRM_LINK_JOINS


/*
 * The link, its counters and the merchant check in one statement: a
 * merchant_id that names no merchant inserts nothing.
 */
static const crm_stmt_t  crm_link_insert = {
    "link_insert",
    "WITH l AS (INSERT INTO crm.affiliate_links (id, owner_id, merchant_id,"
    " name, target_url, install_cents, conversion_bps, currency)"
    " SELECT $1::text, $2::uuid, $3::uuid, $4::text, $5::text, $6::bigint,"
    " $7::int, $8::text"
    " WHERE $3::uuid IS NULL OR EXISTS (SELECT 1 FROM crm.accounts"
    " WHERE id = $3::uuid AND role = 'merchant') RETURNING *),"
    " s AS (INSERT INTO crm.affiliate_link_stats (link_id)"
    " SELECT id FROM l RETURNING *)"
    " SELECT " CRM_LINK_COLS " FROM l JOIN s ON s.link_id = l.id"
    " JOIN crm.accounts a ON a.id = l.owner_id",
    8
};

/*
 * One account makes its links one at a time: the quota below counts
 * what committed before this transaction took the lock.
 */
static const crm_stmt_t  crm_link_quota_lock = {
    "link_quota_lock",
    "SELECT pg_advisory_xact_lock(hashtextextended('crm.link_quota:' || $1,"
    " 0))",
    1
};

/*
 * The seconds until the account may make another link: 0 while fewer
 * than $2 were made in the last $3 seconds, else until the oldest of the
 * last $2 leaves that window.
 */
static const crm_stmt_t  crm_link_quota = {
    "link_quota",
    "SELECT coalesce((SELECT greatest(1, ceil(extract(epoch FROM"
    " c.created_at + $3::bigint * interval '1 second' - now())))::bigint"
    " FROM (SELECT created_at FROM crm.affiliate_links"
    " WHERE owner_id = $1::uuid ORDER BY created_at DESC, id DESC"
    " OFFSET $2::bigint - 1 LIMIT 1) c"
    " WHERE c.created_at > now() - $3::bigint * interval '1 second'), 0)",
    3
};

static const crm_stmt_t  crm_link_get = {
    "link_get",
    "SELECT " CRM_LINK_COLS CRM_LINK_FROM
    " WHERE l.id = $1 AND l.owner_id = $2",
    2
};

static const crm_stmt_t  crm_links_first = {
    "links_first",
    "SELECT " CRM_LINK_COLS CRM_LINK_FROM " WHERE l.owner_id = $1"
    " ORDER BY l.created_at DESC, l.id DESC LIMIT $2",
    2
};

static const crm_stmt_t  crm_links_next = {
    "links_next",
    "SELECT " CRM_LINK_COLS CRM_LINK_FROM " WHERE l.owner_id = $1"
    " AND (l.created_at, l.id) < (" CRM_SQL_FROM_EPOCH_US("$2") ", $3)"
    " ORDER BY l.created_at DESC, l.id DESC LIMIT $4",
    4
};

static const crm_stmt_t  crm_link_update = {
    "link_update",
    "WITH l AS (UPDATE crm.affiliate_links SET"
    " target_url = CASE WHEN $4::int & 1 <> 0 THEN $5 ELSE target_url END,"
    " name = CASE WHEN $4::int & 2 <> 0 THEN $6 ELSE name END,"
    " status = CASE WHEN $4::int & 4 <> 0 THEN $7 ELSE status END,"
    " version = version + 1, updated_at = clock_timestamp()"
    " WHERE id = $1 AND owner_id = $2"
    " AND ($3::int[] IS NULL OR version = ANY ($3::int[]))"
    " AND NOT ($4::int & 4 <> 0 AND $7 = 'active' AND admin_disabled)"
    " RETURNING *)"
    " SELECT " CRM_LINK_COLS " FROM l" CRM_LINK_JOINS,
    7
};

/* an administrator's decision on any account's link */
static const crm_stmt_t  crm_link_admin_update = {
    "link_admin_update",
    "WITH l AS (UPDATE crm.affiliate_links SET admin_disabled = $2,"
    " version = version + 1, updated_at = clock_timestamp()"
    " WHERE id = $1 AND ($3::int[] IS NULL OR version = ANY ($3::int[]))"
    " RETURNING *)"
    " SELECT " CRM_LINK_COLS " FROM l" CRM_LINK_JOINS,
    3
};

static const crm_stmt_t  crm_link_exists = {
    "link_exists",
    "SELECT 1 FROM crm.affiliate_links WHERE id = $1",
    1
};

static const crm_stmt_t  crm_link_terms = {
    "link_terms",
    "SELECT " CRM_LINK_TERMS_COLS " FROM crm.affiliate_links l"
    " JOIN crm.accounts o ON o.id = l.owner_id WHERE l.id = $1",
    1
};

static const crm_stmt_t  crm_links_of_owner = {
    "links_of_owner",
    "SELECT id FROM crm.affiliate_links WHERE owner_id = $1",
    1
};

static const crm_stmt_t  crm_link_count = {
    "link_count",
    "UPDATE crm.affiliate_link_stats SET installs = installs + $2::int,"
    " conversions = conversions + $3::int,"
    " earnings_cents = earnings_cents + $4::bigint WHERE link_id = $1",
    4
};


void
crm_link_row(const crm_rows_t *rows, size_t i, crm_link_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->owner_id = crm_rows_value(rows, i, 1);
    out->merchant_id = crm_rows_value(rows, i, 2);
    out->name = crm_rows_value(rows, i, 3);
    out->target_url = crm_rows_value(rows, i, 4);
    out->status = crm_rows_value(rows, i, 5);
    out->install_cents = strtoll(crm_rows_value(rows, i, 6), NULL, 10);
    out->conversion_bps = strtoll(crm_rows_value(rows, i, 7), NULL, 10);
    out->currency = crm_rows_value(rows, i, 8);
    out->version = atoi(crm_rows_value(rows, i, 9));
    out->created_at = crm_rows_value(rows, i, 10);
    out->updated_at = crm_rows_value(rows, i, 11);
    out->created_us = strtoll(crm_rows_value(rows, i, 12), NULL, 10);
    out->clicks = strtoll(crm_rows_value(rows, i, 13), NULL, 10);
    out->installs = strtoll(crm_rows_value(rows, i, 14), NULL, 10);
    out->conversions = strtoll(crm_rows_value(rows, i, 15), NULL, 10);
    out->earnings_cents = strtoll(crm_rows_value(rows, i, 16), NULL, 10);
    out->last_click_at = crm_rows_value(rows, i, 17);
    out->admin_disabled = crm_rows_value(rows, i, 18)[0] == 't';
    out->owner_active = crm_rows_value(rows, i, 19)[0] == 't';
}


const char *
crm_link_disabled_by(const crm_link_t *link)
{
    return !link->owner_active ? "account"
           : link->admin_disabled ? "admin"
           : strcmp(link->status, "active") != 0 ? "owner"
           : NULL;
}


crm_status_e
crm_store_link_insert(crm_db_t *db, const crm_link_new_t *in,
    crm_rows_t *out, crm_error_t *err)
{
    char         install[24], bps[24];
    const char  *params[8];

    snprintf(install, sizeof(install), "%lld", (long long) in->install_cents);
    snprintf(bps, sizeof(bps), "%lld", (long long) in->conversion_bps);

    params[0] = in->id;
    params[1] = in->owner_id;
    params[2] = in->merchant_id;
    params[3] = in->name;
    params[4] = in->target_url;
    params[5] = install;
    params[6] = bps;
    params[7] = in->currency;

    return crm_db_query(db, &crm_link_insert, params, out, err);
}


crm_status_e
crm_store_link_get(crm_db_t *db, const char *owner_id, const char *id,
    crm_rows_t *out, crm_error_t *err)
{
    const char  *params[2];

    params[0] = id;
    params[1] = owner_id;

    return crm_db_query(db, &crm_link_get, params, out, err);
}


crm_status_e
crm_store_links_list(crm_db_t *db, const char *owner_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         ts[24], limit[16];
    const char  *params[4];

    snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = owner_id;

    if (!page->has_cursor) {
        params[1] = limit;
        return crm_db_query(db, &crm_links_first, params, out, err);
    }

    params[1] = ts;
    params[2] = page->cursor.id;
    params[3] = limit;

    return crm_db_query(db, &crm_links_next, params, out, err);
}


crm_status_e
crm_store_link_update(crm_db_t *db, const char *owner_id, const char *id,
    const char *versions, const crm_link_patch_t *patch, crm_rows_t *out,
    crm_error_t *err)
{
    char         set[16];
    const char  *params[7];

    snprintf(set, sizeof(set), "%u", patch->set);

    params[0] = id;
    params[1] = owner_id;
    params[2] = versions;
    params[3] = set;
    params[4] = patch->target_url;
    params[5] = patch->name;
    params[6] = patch->status;

    return crm_db_query(db, &crm_link_update, params, out, err);
}


void
crm_link_terms_row(const crm_rows_t *rows, size_t i, crm_link_terms_t *out)
{
    snprintf(out->id, sizeof(out->id), "%s", crm_rows_value(rows, i, 0));
    snprintf(out->owner_id, sizeof(out->owner_id), "%s",
             crm_rows_value(rows, i, 1));
    out->install_cents = strtoll(crm_rows_value(rows, i, 2), NULL, 10);
    out->conversion_bps = strtoll(crm_rows_value(rows, i, 3), NULL, 10);
    snprintf(out->currency, sizeof(out->currency), "%s",
             crm_rows_value(rows, i, 4));
    out->earns = crm_rows_value(rows, i, 5)[0] == 't';
}


crm_status_e
crm_store_link_terms(crm_db_t *db, const char *id, crm_link_terms_t *out,
    int *found, crm_error_t *err)
{
    crm_rows_t     rows;
    const char    *params[1];
    crm_status_e   rc;

    params[0] = id;

    rc = crm_db_query(db, &crm_link_terms, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *found = rows.n > 0;

    if (*found) {
        crm_link_terms_row(&rows, 0, out);
    }

    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_link_admin_update(crm_db_t *db, const char *id,
    const char *versions, int disabled, crm_rows_t *out, crm_error_t *err)
{
    const char  *params[3];

    params[0] = id;
    params[1] = disabled ? "true" : "false";
    params[2] = versions;

    return crm_db_query(db, &crm_link_admin_update, params, out, err);
}


crm_status_e
crm_store_link_exists(crm_db_t *db, const char *id, int *exists,
    crm_error_t *err)
{
    crm_rows_t     rows;
    const char    *params[1];
    crm_status_e   rc;

    params[0] = id;

    rc = crm_db_query(db, &crm_link_exists, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *exists = rows.n > 0;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_link_quota(crm_db_t *db, const char *owner_id, int64_t limit,
    int64_t period, int64_t *wait, crm_error_t *err)
{
    char           n[24], secs[24];
    PGresult      *res;
    const char    *params[3];
    crm_status_e   rc;

    params[0] = owner_id;

    rc = crm_db_exec(db, &crm_link_quota_lock, params, &res, err);
    if (rc != CRM_OK) {
        return rc;
    }

    PQclear(res);

    snprintf(n, sizeof(n), "%lld", (long long) limit);
    snprintf(secs, sizeof(secs), "%lld", (long long) period);

    params[1] = n;
    params[2] = secs;

    rc = crm_db_exec(db, &crm_link_quota, params, &res, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *wait = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    return CRM_OK;
}


crm_status_e
crm_store_links_of_owner(crm_db_t *db, const char *owner_id,
    crm_rows_t *out, crm_error_t *err)
{
    const char  *params[1];

    params[0] = owner_id;

    return crm_db_query(db, &crm_links_of_owner, params, out, err);
}


crm_status_e
crm_store_link_count(crm_db_t *db, const char *id, int installs,
    int conversions, int64_t earnings_cents, crm_error_t *err)
{
    char           ins[16], conv[16], earn[24];
    PGresult      *res;
    const char    *params[4];
    crm_status_e   rc;

    snprintf(ins, sizeof(ins), "%d", installs);
    snprintf(conv, sizeof(conv), "%d", conversions);
    snprintf(earn, sizeof(earn), "%lld", (long long) earnings_cents);

    params[0] = id;
    params[1] = ins;
    params[2] = conv;
    params[3] = earn;

    rc = crm_db_exec(db, &crm_link_count, params, &res, err);
    PQclear(res);

    return rc;
}
