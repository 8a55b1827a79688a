/*
 * Leads and their stage history.
 *
 * A list has up to four optional parts (owner, stage, text, cursor), and a
 * generic plan of one statement with "$n IS NULL OR ..." guards would scan
 * instead of using the indexes; so each of the 16 shapes is its own
 * prepared statement, its text put together from the fixed fragments below
 * once per process.  Values are always parameters.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_store_leads.h"


#define CRM_LEAD_COLS(t)                                                      \
    t "id, " t "owner_id, " t "name, " t "email, " t "phone, "                \
    t "company, " t "shop_domain, " t "source, " t "stage, " t "substage, "   \
    t "score, " t "value_cents, " t "currency, " t "notes, "                  \
    t "affiliate_link_id, " t "version, "                                     \
    CRM_SQL_RFC3339(t "created_at") ", " CRM_SQL_RFC3339(t "updated_at")      \
    ", " CRM_SQL_EPOCH_US(t "created_at") ", "                                \
    CRM_SQL_EPOCH_US(t "updated_at")

#define CRM_LEAD_NCOLS       20

#define CRM_LEADS_OWNER      0x01
#define CRM_LEADS_STAGE      0x02
#define CRM_LEADS_TEXT       0x04
#define CRM_LEADS_CURSOR     0x08
#define CRM_LEADS_SHAPES     16

#define CRM_LEADS_Q_MAX      1024


typedef struct {
    crm_stmt_t   stmt;
    char         name[24];
    char         sql[1024];
} crm_leads_list_stmt_t;


static void crm_leads_list_init(void);
static size_t crm_leads_like_pattern(const char *q, char *out, size_t size);


/* the lead and its history's first row, its creation, in one statement */
static const crm_stmt_t  crm_lead_insert = {
    "lead_insert",
    "WITH l AS (INSERT INTO crm.leads (owner_id, name, email, phone, company,"
    " shop_domain, source, stage, substage, score, value_cents, currency,"
    " notes, affiliate_link_id, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7,"
    " $8, $9, $10, $11, $12, $13, $14, $16) RETURNING *),"
    " e AS (INSERT INTO crm.lead_stage_events (lead_id, actor_id, to_stage,"
    " to_substage, score, outcome) SELECT id, $15::uuid, stage, substage,"
    " score, outcome FROM l)"
    " SELECT " CRM_LEAD_COLS("") " FROM l",
    16
};

static const crm_stmt_t  crm_lead_get = {
    "lead_get",
    "SELECT " CRM_LEAD_COLS("") " FROM crm.leads"
    " WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL",
    2
};

static const crm_stmt_t  crm_lead_lock = {
    "lead_lock",
    "SELECT " CRM_LEAD_COLS("") " FROM crm.leads"
    " WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL FOR UPDATE",
    2
};

/*
 * one row whenever the caller exists: its state, and the lead's columns,
 * all NULL when the caller has no such live lead
 */
static const crm_stmt_t  crm_lead_get_as = {
    "lead_get_as",
    "SELECT " CRM_LEAD_COLS("l.") ", a.is_active FROM crm.accounts a"
    " LEFT JOIN crm.leads l ON l.id = $2 AND l.owner_id = a.id"
    " AND l.deleted_at IS NULL WHERE a.id = $1",
    2
};

static const crm_stmt_t  crm_lead_update = {
    "lead_update",
    "UPDATE crm.leads SET"
    " name = CASE WHEN $4::int & 1 <> 0 THEN $5 ELSE name END,"
    " email = CASE WHEN $4::int & 2 <> 0 THEN $6 ELSE email END,"
    " phone = CASE WHEN $4::int & 4 <> 0 THEN $7 ELSE phone END,"
    " company = CASE WHEN $4::int & 8 <> 0 THEN $8 ELSE company END,"
    " shop_domain = CASE WHEN $4::int & 16 <> 0 THEN $9"
    " ELSE shop_domain END,"
    " value_cents = CASE WHEN $4::int & 32 <> 0 THEN $10::bigint"
    " ELSE value_cents END,"
    " currency = CASE WHEN $4::int & 64 <> 0 THEN $11 ELSE currency END,"
    " notes = CASE WHEN $4::int & 128 <> 0 THEN $12 ELSE notes END,"
    " version = version + 1, updated_at = clock_timestamp()"
    " WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL"
    " AND ($3::int[] IS NULL OR version = ANY ($3::int[]))"
    " RETURNING " CRM_LEAD_COLS(""),
    12
};

static const crm_stmt_t  crm_lead_delete = {
    "lead_delete",
    "UPDATE crm.leads SET deleted_at = clock_timestamp(),"
    " updated_at = clock_timestamp(), version = version + 1"
    " WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL"
    " AND ($3::int[] IS NULL OR version = ANY ($3::int[])) RETURNING id",
    3
};

/* the previous stage comes back beside the moved lead, for the history */
static const crm_stmt_t  crm_lead_move = {
    "lead_move",
    "WITH old AS (SELECT id, stage, substage FROM crm.leads"
    " WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL"
    " AND ($3::int[] IS NULL OR version = ANY ($3::int[])) FOR UPDATE)"
    " UPDATE crm.leads l SET stage = $4, substage = $5, score = $6::int,"
    " outcome = $7, version = l.version + 1, updated_at = clock_timestamp()"
    " FROM old WHERE l.id = old.id"
    " RETURNING " CRM_LEAD_COLS("l.") ", old.stage, old.substage",
    7
};

static const crm_stmt_t  crm_lead_event_insert = {
    "lead_event_insert",
    "INSERT INTO crm.lead_stage_events (lead_id, actor_id, from_stage,"
    " from_substage, to_stage, to_substage, score, outcome)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::int, $8)",
    8
};

#define CRM_LEAD_EVENT_COLS                                                   \
    "id, actor_id, from_stage, from_substage, to_stage, to_substage, score, " \
    CRM_SQL_RFC3339("created_at") ", " CRM_SQL_EPOCH_US("created_at")

static const crm_stmt_t  crm_lead_history_first = {
    "lead_history_first",
    "SELECT " CRM_LEAD_EVENT_COLS " FROM crm.lead_stage_events"
    " WHERE lead_id = $1 ORDER BY created_at, id LIMIT $2",
    2
};

static const crm_stmt_t  crm_lead_history_next = {
    "lead_history_next",
    "SELECT " CRM_LEAD_EVENT_COLS " FROM crm.lead_stage_events"
    " WHERE lead_id = $1"
    " AND (created_at, id) > (" CRM_SQL_FROM_EPOCH_US("$2") ", $3::uuid)"
    " ORDER BY created_at, id LIMIT $4",
    4
};


static pthread_once_t          crm_leads_list_once = PTHREAD_ONCE_INIT;
static crm_leads_list_stmt_t   crm_leads_list_stmts[CRM_LEADS_SHAPES];


/* the text of each list shape; only fragments, never values, go in */
static void
crm_leads_list_init(void)
{
    int                     n, p;
    char                   *sql;
    size_t                  size;
    unsigned                shape;
    crm_leads_list_stmt_t  *s;

    for (shape = 0; shape < CRM_LEADS_SHAPES; shape++) {
        s = &crm_leads_list_stmts[shape];
        sql = s->sql;
        size = sizeof(s->sql);
        p = 1;

        n = snprintf(sql, size, "SELECT " CRM_LEAD_COLS("")
                     " FROM crm.leads WHERE deleted_at IS NULL");

        if (shape & CRM_LEADS_OWNER) {
            n += snprintf(sql + n, size - n, " AND owner_id = $%d", p++);
        }

        if (shape & CRM_LEADS_STAGE) {
            n += snprintf(sql + n, size - n, " AND stage = $%d", p++);
        }

        if (shape & CRM_LEADS_TEXT) {
            n += snprintf(sql + n, size - n,
                          " AND (name ILIKE $%d ESCAPE '\\'"
                          " OR email ILIKE $%d ESCAPE '\\'"
                          " OR company ILIKE $%d ESCAPE '\\')", p, p, p);
            p++;
        }

        if (shape & CRM_LEADS_CURSOR) {
            n += snprintf(sql + n, size - n,
                          " AND (created_at, id) < ('epoch'::timestamptz"
                          " + $%d::bigint * interval '1 microsecond',"
                          " $%d::uuid)", p, p + 1);
            p += 2;
        }

        snprintf(sql + n, size - n,
                 " ORDER BY created_at DESC, id DESC LIMIT $%d", p);

        snprintf(s->name, sizeof(s->name), "leads_list_%u", shape);

        s->stmt.name = s->name;
        s->stmt.sql = s->sql;
        s->stmt.nparams = p;
    }
}


/* "%<q with \, % and _ escaped>%": q is matched literally */
static size_t
crm_leads_like_pattern(const char *q, char *out, size_t size)
{
    size_t  n;

    n = 0;
    out[n++] = '%';

    for ( /* void */ ; *q != '\0' && n + 4 < size; q++) {
        if (*q == '\\' || *q == '%' || *q == '_') {
            out[n++] = '\\';
        }

        out[n++] = *q;
    }

    out[n++] = '%';
    out[n] = '\0';

    return n;
}


void
crm_lead_row(const crm_rows_t *rows, size_t i, crm_lead_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->owner_id = crm_rows_value(rows, i, 1);
    out->name = crm_rows_value(rows, i, 2);
    out->email = crm_rows_value(rows, i, 3);
    out->phone = crm_rows_value(rows, i, 4);
    out->company = crm_rows_value(rows, i, 5);
    out->shop_domain = crm_rows_value(rows, i, 6);
    out->source = crm_rows_value(rows, i, 7);
    out->stage = crm_rows_value(rows, i, 8);
    out->substage = crm_rows_value(rows, i, 9);
    out->score = atoi(crm_rows_value(rows, i, 10));
    out->value_cents = strtoll(crm_rows_value(rows, i, 11), NULL, 10);
    out->currency = crm_rows_value(rows, i, 12);
    out->notes = crm_rows_value(rows, i, 13);
    out->affiliate_link_id = crm_rows_value(rows, i, 14);
    out->version = atoi(crm_rows_value(rows, i, 15));
    out->created_at = crm_rows_value(rows, i, 16);
    out->updated_at = crm_rows_value(rows, i, 17);
    out->created_us = strtoll(crm_rows_value(rows, i, 18), NULL, 10);
    out->updated_us = strtoll(crm_rows_value(rows, i, 19), NULL, 10);
}


void
crm_lead_event_row(const crm_rows_t *rows, size_t i, crm_lead_event_t *out)
{
    out->id = crm_rows_value(rows, i, 0);
    out->actor_id = crm_rows_value(rows, i, 1);
    out->from_stage = crm_rows_value(rows, i, 2);
    out->from_substage = crm_rows_value(rows, i, 3);
    out->to_stage = crm_rows_value(rows, i, 4);
    out->to_substage = crm_rows_value(rows, i, 5);
    out->score = atoi(crm_rows_value(rows, i, 6));
    out->created_at = crm_rows_value(rows, i, 7);
    out->created_us = strtoll(crm_rows_value(rows, i, 8), NULL, 10);
}


crm_status_e
crm_store_lead_insert(crm_db_t *db, const crm_lead_new_t *in,
    crm_rows_t *out, crm_error_t *err)
{
    char         score[16], value[24];
    const char  *params[16];

    snprintf(score, sizeof(score), "%d", in->score);
    snprintf(value, sizeof(value), "%lld", (long long) in->value_cents);

    params[0] = in->owner_id;
    params[1] = in->name;
    params[2] = in->email;
    params[3] = in->phone;
    params[4] = in->company;
    params[5] = in->shop_domain;
    params[6] = in->source;
    params[7] = in->stage;
    params[8] = in->substage;
    params[9] = score;
    params[10] = value;
    params[11] = in->currency;
    params[12] = in->notes;
    params[13] = in->affiliate_link_id;

    params[14] = in->actor_id;
    params[15] = in->outcome;

    return crm_db_query(db, &crm_lead_insert, params, out, err);
}


crm_status_e
crm_store_lead_get(crm_db_t *db, const char *owner_id, const char *id,
    crm_rows_t *out, crm_error_t *err)
{
    const char  *params[2];

    params[0] = id;
    params[1] = owner_id;

    return crm_db_query(db, &crm_lead_get, params, out, err);
}


crm_status_e
crm_store_lead_lock(crm_db_t *db, const char *owner_id, const char *id,
    crm_rows_t *out, crm_error_t *err)
{
    const char  *params[2];

    params[0] = id;
    params[1] = owner_id;

    return crm_db_query(db, &crm_lead_lock, params, out, err);
}


crm_status_e
crm_store_lead_get_as(crm_db_t *db, const char *caller_id, const char *id,
    crm_rows_t *out, int *active, crm_error_t *err)
{
    const char    *params[2];
    crm_status_e   rc;

    params[0] = caller_id;
    params[1] = id;

    rc = crm_db_query(db, &crm_lead_get_as, params, out, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *active = out->n > 0
              && crm_rows_value(out, 0, CRM_LEAD_NCOLS)[0] == 't';

    if (out->n > 0 && crm_rows_value(out, 0, 0) == NULL) {
        out->n = 0;
    }

    return CRM_OK;
}


crm_status_e
crm_store_leads_list(crm_db_t *db, const crm_lead_filter_t *filter,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    int          n;
    char         q[CRM_LEADS_Q_MAX], ts[24], limit[16];
    unsigned     shape;
    const char  *params[6];

    (void) pthread_once(&crm_leads_list_once, crm_leads_list_init);

    shape = 0;
    n = 0;

    if (filter->owner_id != NULL) {
        shape |= CRM_LEADS_OWNER;
        params[n++] = filter->owner_id;
    }

    if (filter->stage != NULL) {
        shape |= CRM_LEADS_STAGE;
        params[n++] = filter->stage;
    }

    if (filter->q != NULL) {
        shape |= CRM_LEADS_TEXT;
        crm_leads_like_pattern(filter->q, q, sizeof(q));
        params[n++] = q;
    }

    if (page->has_cursor) {
        shape |= CRM_LEADS_CURSOR;
        snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
        params[n++] = ts;
        params[n++] = page->cursor.id;
    }

    snprintf(limit, sizeof(limit), "%u", page->limit + 1);
    params[n] = limit;

    return crm_db_query(db, &crm_leads_list_stmts[shape].stmt, params, out,
                        err);
}


crm_status_e
crm_store_lead_update(crm_db_t *db, const char *owner_id, const char *id,
    const char *versions, const crm_lead_patch_t *patch, crm_rows_t *out,
    crm_error_t *err)
{
    char         set[16], value[24];
    const char  *params[12];

    snprintf(set, sizeof(set), "%u", patch->set);
    snprintf(value, sizeof(value), "%lld", (long long) patch->value_cents);

    params[0] = id;
    params[1] = owner_id;
    params[2] = versions;
    params[3] = set;
    params[4] = patch->name;
    params[5] = patch->email;
    params[6] = patch->phone;
    params[7] = patch->company;
    params[8] = patch->shop_domain;
    params[9] = value;
    params[10] = patch->currency;
    params[11] = patch->notes;

    return crm_db_query(db, &crm_lead_update, params, out, err);
}


crm_status_e
crm_store_lead_delete(crm_db_t *db, const char *owner_id, const char *id,
    const char *versions, int *done, crm_error_t *err)
{
    crm_rows_t     rows;
    const char    *params[3];
    crm_status_e   rc;

    params[0] = id;
    params[1] = owner_id;
    params[2] = versions;

    rc = crm_db_query(db, &crm_lead_delete, params, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *done = rows.n > 0;
    crm_rows_free(&rows);

    return CRM_OK;
}


crm_status_e
crm_store_lead_move(crm_db_t *db, const char *owner_id, const char *id,
    const char *versions, const crm_stage_t *stage,
    const crm_substage_t *substage, crm_rows_t *out, const char **from_stage,
    const char **from_substage, crm_error_t *err)
{
    char           sc[16];
    const char    *params[7];
    crm_status_e   rc;

    snprintf(sc, sizeof(sc), "%d", substage->score);

    params[0] = id;
    params[1] = owner_id;
    params[2] = versions;
    params[3] = stage->name;
    params[4] = substage->status;
    params[5] = sc;
    params[6] = crm_outcome_name(substage->outcome);

    rc = crm_db_query(db, &crm_lead_move, params, out, err);
    if (rc != CRM_OK || out->n == 0) {
        return rc;
    }

    *from_stage = crm_rows_value(out, 0, CRM_LEAD_NCOLS);
    *from_substage = crm_rows_value(out, 0, CRM_LEAD_NCOLS + 1);

    return CRM_OK;
}


crm_status_e
crm_store_lead_event(crm_db_t *db, const char *lead_id, const char *actor_id,
    const char *from_stage, const char *from_substage,
    const crm_stage_t *stage, const crm_substage_t *substage,
    crm_error_t *err)
{
    char           sc[16];
    PGresult      *res;
    const char    *params[8];
    crm_status_e   rc;

    snprintf(sc, sizeof(sc), "%d", substage->score);

    params[0] = lead_id;
    params[1] = actor_id;
    params[2] = from_stage;
    params[3] = from_substage;
    params[4] = stage->name;
    params[5] = substage->status;
    params[6] = sc;
    params[7] = crm_outcome_name(substage->outcome);

    rc = crm_db_exec(db, &crm_lead_event_insert, params, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_store_lead_history(crm_db_t *db, const char *lead_id,
    const crm_page_t *page, crm_rows_t *out, crm_error_t *err)
{
    char         ts[24], limit[16];
    const char  *params[4];

    snprintf(ts, sizeof(ts), "%lld", (long long) page->cursor.ts_us);
    snprintf(limit, sizeof(limit), "%u", page->limit + 1);

    params[0] = lead_id;

    if (!page->has_cursor) {
        params[1] = limit;
        return crm_db_query(db, &crm_lead_history_first, params, out, err);
    }

    params[1] = ts;
    params[2] = page->cursor.id;
    params[3] = limit;

    return crm_db_query(db, &crm_lead_history_next, params, out, err);
}
