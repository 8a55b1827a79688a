/*
 * One libpq connection per thread-pool thread.
 *
 * A thread finds its connection with crm_db_for_thread(); the connection is
 * opened lazily on first use, statements are prepared on first use, and a
 * connection that fails is dropped and reopened by the next call after a
 * short back-off, so a PostgreSQL restart heals without touching nginx.
 * connect_timeout and statement_timeout are always set, because a thread
 * stuck in libpq would block worker shutdown and therefore reloads.
 *
 *   state        meaning                       transition
 *   ---------    ---------------------------   ---------------------------
 *   CLOSED   ->  READY     crm_db_ready(): connect succeeded
 *   CLOSED   ->  CLOSED    crm_db_ready(): connect failed, back-off starts
 *   READY    ->  CLOSED    crm_db_exec(): connection lost (PQstatus bad)
 *   READY    ->  READY     crm_db_exec(): statement ok or SQL error
 *   READY    ->  READY     crm_db_ready(): statements 10 s old dropped
 */

#ifndef CRM_DB_H
#define CRM_DB_H

#include <libpq-fe.h>

#include "crm_error.h"
#include "crm_str.h"
#include "crm_wal.h"


/*
 * What the last probe of a database found (crm_db_ping()), kept by the
 * process that probes it and read by /healthz: never a query per request.
 */
typedef struct {
    int          up;                    /* -1 before the first probe */
    int64_t      checked_ms;            /* crm_clock_ms() of its answer */
    /* a primary's WAL positions, for its replicas' lag (crm_wal.h) */
    crm_wal_history_t  wal;
    /* a replica's lag behind its primary, or -1: unknown (neither probed
       yet) or not a replica any more (promoted) */
    int64_t      lag_ms;
} crm_db_health_t;


typedef struct crm_db_conf_s {
    const char       *conninfo;
    unsigned          connect_timeout;  /* seconds, libpq's minimum is 2 */
    unsigned          statement_timeout;    /* milliseconds, not 0 */
    char              options[512];     /* set by crm_db_conf_init() */
    char              label[160];       /* for logs: user@host:port/db,
                                           never a password */
    crm_db_health_t  *health;           /* the process's, mutable */
    /* a streaming replica's (reads that may lag): of this primary */
    const struct crm_db_conf_s  *primary;
} crm_db_conf_t;


typedef struct {
    const char  *name;                  /* prepared statement name */
    const char  *sql;
    int          nparams;
} crm_stmt_t;


typedef struct crm_db_s  crm_db_t;


/* a timestamptz column as RFC 3339 in UTC, to the microsecond */
#define CRM_SQL_RFC3339(col)                                                  \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* a timestamptz column as microseconds since the epoch, for cursors */
#define CRM_SQL_EPOCH_US(col)                                                 \
    "(extract(epoch FROM " col ") * 1000000)::bigint"

/* the inverse, for a $n bigint parameter */
#define CRM_SQL_FROM_EPOCH_US(param)                                          \
    "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"


/*
 * Checks conf->conninfo (a libpq key/value string or URI) and prepares the
 * server options: the operator's own "options", if any, followed by the
 * statement timeout, and the label that logs name the database by.
 * CRM_E_INVALID with libpq's reason on a bad conninfo.
 */
crm_status_e crm_db_conf_init(crm_db_conf_t *conf, crm_error_t *err);

/* the calling thread's connection for conf; NULL only on ENOMEM */
crm_db_t *crm_db_for_thread(const crm_db_conf_t *conf);

/*
 * A connection of its own, in non-blocking mode, that listens on channel
 * (LISTEN): the caller reads notifications with PQconsumeInput() and
 * PQnotifies() as its socket becomes readable, and PQfinish()es it.
 * Blocks while it connects: a pool thread's work.  NULL and err when it
 * cannot; pg_stat_activity names it "crm-gateway-listen/<pid>".
 */
PGconn *crm_db_listen(const crm_db_conf_t *conf, const char *channel,
    crm_error_t *err);

/* called on the connecting thread after each attempt: ok 1 or 0 */
typedef void (*crm_db_observer_pt)(void *data, int ok);

/*
 * Sets the process's observer of connection attempts (NULL: none); before
 * any thread connects, or it may miss some.
 */
void crm_db_observe(crm_db_observer_pt observer, void *data);

/*
 * Closes every connection of the process.  Only when no thread uses them
 * any more: in nginx, at worker exit after the thread pools have drained.
 */
void crm_db_close_all(void);

/* connects if needed; CRM_E_UNAVAILABLE when PostgreSQL cannot be reached */
crm_status_e crm_db_ready(crm_db_t *db, crm_error_t *err);

/* one round trip: whether the database answers on this connection */
crm_status_e crm_db_ping(crm_db_t *db, crm_error_t *err);

/*
 * One round trip, the probe's: whether the server is in recovery (a
 * standby), and its WAL position: a primary's current one, a standby's
 * last replayed one
 */
crm_status_e crm_db_wal_position(crm_db_t *db, int *in_recovery,
    uint64_t *lsn, crm_error_t *err);

/*
 * Runs a prepared statement with text parameters (NULL = SQL NULL).  On
 * CRM_OK *res holds the result (PQclear it).  A unique violation is
 * CRM_E_CONFLICT with the constraint name in err->cause; a lost connection
 * or a statement timeout is CRM_E_UNAVAILABLE; anything else CRM_E_INTERNAL.
 * err->sqlstate holds PostgreSQL's code of the failure.
 */
crm_status_e crm_db_exec(crm_db_t *db, const crm_stmt_t *stmt,
    const char *const *params, PGresult **res, crm_error_t *err);

/* the rows of a query; fields read from them live until crm_rows_free() */
typedef struct {
    PGresult    *res;
    size_t       n;
} crm_rows_t;


/* crm_db_exec() into rows; out->n is the number of rows */
crm_status_e crm_db_query(crm_db_t *db, const crm_stmt_t *stmt,
    const char *const *params, crm_rows_t *out, crm_error_t *err);

void crm_rows_free(crm_rows_t *rows);

/* the value at (row, col), or NULL for SQL NULL */
const char *crm_rows_value(const crm_rows_t *rows, size_t row, int col);

/* runs sql, a command without parameters or rows, such as DDL */
crm_status_e crm_db_command(crm_db_t *db, const char *sql, crm_error_t *err);

/*
 * Runs sql, a "COPY ... FROM STDIN", feeding it the n chunks in order: the
 * chunks need not end at row boundaries, only the whole must.  Errors as
 * crm_db_exec().
 */
crm_status_e crm_db_copy_in(crm_db_t *db, const char *sql,
    const crm_str_t *chunks, size_t n, crm_error_t *err);

/*
 * whether a failed statement was refused for the data it was given (a
 * data exception or a constraint), rather than for the state of the
 * database (an outage, a lock, a missing table or privilege)
 */
int crm_db_refused_data(const crm_error_t *err);

/*
 * whether a failed statement failed for its connection (lost, refused, the
 * server shutting down) rather than for itself
 */
int crm_db_unreachable(const crm_error_t *err);

crm_status_e crm_db_begin(crm_db_t *db, crm_error_t *err);

/*
 * CRM_E_UNAVAILABLE when PostgreSQL answers "ROLLBACK": the transaction
 * had failed, and nothing was written
 */
crm_status_e crm_db_commit(crm_db_t *db, crm_error_t *err);

/* rolls back if a transaction is open; never fails the caller */
void crm_db_rollback(crm_db_t *db);


#endif /* CRM_DB_H */
