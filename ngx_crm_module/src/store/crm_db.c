/*
 * Per-thread PostgreSQL connections: lazy connect, prepare on first use,
 * reconnect after failures with a short back-off.  See crm_db.h for the
 * state table.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "crm_clock.h"
#include "crm_db.h"


/* how long a thread answers 503 without retrying after a failed connect */
#define CRM_DB_RETRY_MS       250

/*
 * how long a connection keeps its prepared statements.  A generic plan
 * made while a table was small (a sequential scan of 200 leads) stays
 * cached as the table grows, until an ANALYZE invalidates it; preparing
 * again lets PostgreSQL plan for the table's present size (it scales its
 * row estimates by the table's current pages even before ANALYZE).
 */
#define CRM_DB_REPREPARE_MS   10000


struct crm_db_s {
    const crm_db_conf_t   *conf;
    PGconn                *conn;
    const crm_stmt_t     **prepared;
    size_t                 nprepared;
    size_t                 prepared_cap;
    int                    in_txn;
    int64_t                failed_at;   /* monotonic ms */
    int64_t                prepared_at; /* monotonic ms of the first */
    crm_db_t              *next;        /* the same thread's others */
    crm_db_t              *next_all;    /* every connection of the process */
};


static void crm_db_key_create(void);
static void crm_db_close(crm_db_t *db);
static int crm_db_idle_alive(crm_db_t *db);
static void crm_db_forget_plans(crm_db_t *db);
static PGconn *crm_db_open(const crm_db_conf_t *conf, const char *role);
static crm_status_e crm_db_connect(crm_db_t *db, crm_error_t *err);
static crm_status_e crm_db_prepare(crm_db_t *db, const crm_stmt_t *stmt,
    crm_error_t *err);
static crm_status_e crm_db_result_error(crm_db_t *db, const PGresult *res,
    crm_error_t *err);
static void crm_db_notice(void *arg, const char *message);


/*
 * The key has no destructor on purpose: nginx lets a worker's main thread
 * go on as soon as each pool thread has begun to exit, and then unloads
 * this module, so a destructor here could run in unmapped code.  The
 * worker closes every connection from its exit handler instead, through
 * the process-wide list.
 */
static pthread_key_t     crm_db_key;
static pthread_once_t    crm_db_key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t   crm_db_all_lock = PTHREAD_MUTEX_INITIALIZER;
static crm_db_t         *crm_db_all;

/*
 * When any thread of the process last connected (monotonic ms): a success
 * after a thread's failure ends that thread's back-off at once, so the
 * database coming back heals every thread, not one at a time.
 */
static int64_t           crm_db_connected_at;

/* told of every connection attempt: the glue counts them for /metrics */
static crm_db_observer_pt  crm_db_observer;
static void               *crm_db_observer_data;


static void
crm_db_key_create(void)
{
    (void) pthread_key_create(&crm_db_key, NULL);
}


PGconn *
crm_db_listen(const crm_db_conf_t *conf, const char *channel,
    crm_error_t *err)
{
    char      sql[80];
    PGconn   *conn;
    PGresult *res;

    conn = crm_db_open(conf, "crm-gateway-listen");
    if (conn == NULL) {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        return NULL;
    }

    if (PQstatus(conn) != CONNECTION_OK) {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        crm_error_cause(err, "connect failed: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }

    /* channel is the caller's constant, an identifier of letters and _ */
    snprintf(sql, sizeof(sql), "LISTEN %s", channel);

    res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        || PQsetnonblocking(conn, 1) != 0)
    {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        crm_error_cause(err, "LISTEN %s failed: %s", channel,
                        PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }

    PQclear(res);

    return conn;
}


void
crm_db_observe(crm_db_observer_pt observer, void *data)
{
    crm_db_observer = observer;
    crm_db_observer_data = data;
}


void
crm_db_close_all(void)
{
    crm_db_t  *db, *next;

    pthread_mutex_lock(&crm_db_all_lock);

    for (db = crm_db_all; db != NULL; db = next) {
        next = db->next_all;
        crm_db_close(db);
        free(db->prepared);
        free(db);
    }

    crm_db_all = NULL;

    pthread_mutex_unlock(&crm_db_all_lock);
}


crm_db_t *
crm_db_for_thread(const crm_db_conf_t *conf)
{
    crm_db_t  *head, *db;

    (void) pthread_once(&crm_db_key_once, crm_db_key_create);

    head = pthread_getspecific(crm_db_key);

    for (db = head; db != NULL; db = db->next) {
        if (db->conf == conf) {
            return db;
        }
    }

    db = calloc(1, sizeof(crm_db_t));
    if (db == NULL) {
        return NULL;
    }

    db->conf = conf;
    db->next = head;

    if (pthread_setspecific(crm_db_key, db) != 0) {
        free(db);
        return NULL;
    }

    pthread_mutex_lock(&crm_db_all_lock);
    db->next_all = crm_db_all;
    crm_db_all = db;
    pthread_mutex_unlock(&crm_db_all_lock);

    return db;
}


static void
crm_db_close(crm_db_t *db)
{
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }

    db->nprepared = 0;
    db->in_txn = 0;
}


crm_status_e
crm_db_conf_init(crm_db_conf_t *conf, crm_error_t *err)
{
    int                 n;
    char               *msg, *nl;
    const char         *theirs, *user, *host, *port, *dbname;
    PQconninfoOption   *opts, *o;

    msg = NULL;

    opts = PQconninfoParse(conf->conninfo, &msg);
    if (opts == NULL) {
        if (msg == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        nl = strchr(msg, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }

        crm_error_set(err, CRM_E_INVALID, "conninfo", "%s", msg);
        PQfreemem(msg);

        return err->code;
    }

    theirs = "";
    user = "";
    host = "";
    port = "";
    dbname = "";

    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (strcmp(o->keyword, "options") == 0) {
            theirs = o->val;

        } else if (strcmp(o->keyword, "user") == 0) {
            user = o->val;

        } else if (strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (strcmp(o->keyword, "port") == 0) {
            port = o->val;

        } else if (strcmp(o->keyword, "dbname") == 0) {
            dbname = o->val;
        }
    }

    snprintf(conf->label, sizeof(conf->label), "%.40s%s%.60s%s%.10s/%.40s",
             user, user[0] ? "@" : "", host, port[0] ? ":" : "", port,
             dbname);

    n = snprintf(conf->options, sizeof(conf->options),
                 "%s%s-c statement_timeout=%u", theirs, theirs[0] ? " " : "",
                 conf->statement_timeout);

    PQconninfoFree(opts);

    if (n < 0 || (size_t) n >= sizeof(conf->options)) {
        return crm_error_set(err, CRM_E_INVALID, "conninfo",
                             "\"options\" is too long");
    }

    return CRM_OK;
}


/*
 * A connection with the settings every connection of the gateway gets;
 * what names it in pg_stat_activity: role, "crm-gateway" for the pools'.
 * NULL only when out of memory; otherwise check PQstatus().
 */
static PGconn *
crm_db_open(const crm_db_conf_t *conf, const char *role)
{
    char         timeout[16], user_timeout[16], app[32];
    const char  *keys[11], *values[11];

    snprintf(timeout, sizeof(timeout), "%u", conf->connect_timeout);

    /*
     * statement_timeout is enforced by the server; these bound what it
     * cannot: a server or network that goes silent mid-query.  Keepalives
     * notice a dead peer while we wait for a result (10 s + 3 x 5 s), the
     * user timeout a peer that stops acknowledging what we send.
     */
    snprintf(user_timeout, sizeof(user_timeout), "%u",
             conf->statement_timeout + 10000);

    /* pg_stat_activity then tells which worker holds a connection */
    snprintf(app, sizeof(app), "%s/%ld", role, (long) getpid());

    /*
     * GSSAPI encryption is off unless the operator's conninfo asks for it
     * (it comes after, so it wins): libpq's default, "prefer", loads
     * Kerberos and looks for credentials at every connect.  The settings
     * after the conninfo override its own, and conf->options already
     * carries its options.
     */
    keys[0] = "gssencmode";
    values[0] = "disable";
    keys[1] = "dbname";
    values[1] = conf->conninfo;
    keys[2] = "connect_timeout";
    values[2] = timeout;
    keys[3] = "options";
    values[3] = conf->options;
    keys[4] = "application_name";
    values[4] = app;
    keys[5] = "keepalives";
    values[5] = "1";
    keys[6] = "keepalives_idle";
    values[6] = "10";
    keys[7] = "keepalives_interval";
    values[7] = "5";
    keys[8] = "keepalives_count";
    values[8] = "3";
    keys[9] = "tcp_user_timeout";
    values[9] = user_timeout;
    keys[10] = NULL;
    values[10] = NULL;

    return PQconnectdbParams(keys, values, 1);
}


static crm_status_e
crm_db_connect(crm_db_t *db, crm_error_t *err)
{
    db->conn = crm_db_open(db->conf, "crm-gateway");

    if (crm_db_observer != NULL) {
        crm_db_observer(crm_db_observer_data,
                        db->conn != NULL
                        && PQstatus(db->conn) == CONNECTION_OK);
    }

    if (db->conn == NULL) {
        return crm_error_set(err, CRM_E_UNAVAILABLE, NULL,
                             "database unavailable");
    }

    if (PQstatus(db->conn) != CONNECTION_OK) {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        crm_error_cause(err, "connect failed: %s",
                        PQerrorMessage(db->conn));
        crm_db_close(db);
        db->failed_at = crm_clock_ms();
        return err->code;
    }

    (void) PQsetNoticeProcessor(db->conn, crm_db_notice, NULL);

    __atomic_store_n(&crm_db_connected_at, crm_clock_ms(), __ATOMIC_RELAXED);

    return CRM_OK;
}


/*
 * PQstatus() learns that the server went away (a restart, an idle timeout,
 * a terminated backend) only when the socket is read, so an idle
 * connection is checked before a unit of work starts on it: one
 * non-blocking peek.  Nothing to read is the healthy case.  End of stream
 * means the server is gone.  Bytes on an idle connection are the server
 * speaking unasked, in practice its termination notice just before it
 * closes: libpq reads them, and the peek is repeated.
 */
static int
crm_db_idle_alive(crm_db_t *db)
{
    int      i;
    char     c;
    ssize_t  n;

    for (i = 0; i < 2; i++) {
        n = recv(PQsocket(db->conn), &c, 1, MSG_PEEK | MSG_DONTWAIT);

        if (n < 0) {
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                   && PQstatus(db->conn) == CONNECTION_OK;
        }

        if (n == 0 || !PQconsumeInput(db->conn)) {
            return 0;
        }
    }

    return PQstatus(db->conn) == CONNECTION_OK;
}


/* between units of work: drops statements older than CRM_DB_REPREPARE_MS */
static void
crm_db_forget_plans(crm_db_t *db)
{
    PGresult  *res;

    if (db->nprepared == 0
        || crm_clock_ms() < db->prepared_at + CRM_DB_REPREPARE_MS)
    {
        return;
    }

    res = PQexec(db->conn, "DEALLOCATE ALL");
    PQclear(res);

    db->nprepared = 0;
}


crm_status_e
crm_db_ready(crm_db_t *db, crm_error_t *err)
{
    if (db->conn != NULL) {
        if (db->in_txn) {
            return CRM_OK;
        }

        if (crm_db_idle_alive(db)) {
            crm_db_forget_plans(db);
            return CRM_OK;
        }

        crm_db_close(db);
    }

    if (db->failed_at != 0
        && crm_clock_ms() < db->failed_at + CRM_DB_RETRY_MS
        && __atomic_load_n(&crm_db_connected_at, __ATOMIC_RELAXED)
           <= db->failed_at)
    {
        return crm_error_set(err, CRM_E_UNAVAILABLE, NULL,
                             "database unavailable");
    }

    return crm_db_connect(db, err);
}


crm_status_e
crm_db_ping(crm_db_t *db, crm_error_t *err)
{
    static const crm_stmt_t  ping = { "db_ping", "SELECT 1", 0 };

    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_exec(db, &ping, NULL, &res, err);
    PQclear(res);

    return rc;
}


crm_status_e
crm_db_wal_position(crm_db_t *db, int *in_recovery, uint64_t *lsn,
    crm_error_t *err)
{
    static const crm_stmt_t  position = { "db_wal_position",
        "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery()"
        " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END",
        0 };

    crm_rows_t     rows;
    const char    *recovery, *at;
    crm_status_e   rc;

    rc = crm_db_query(db, &position, NULL, &rows, err);
    if (rc != CRM_OK) {
        return rc;
    }

    recovery = rows.n == 1 ? crm_rows_value(&rows, 0, 0) : NULL;
    at = rows.n == 1 ? crm_rows_value(&rows, 0, 1) : NULL;

    if (recovery == NULL || at == NULL || crm_wal_lsn_parse(at, lsn) != 0) {
        crm_rows_free(&rows);
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "no WAL position in the answer");
    }

    *in_recovery = recovery[0] == 't';

    crm_rows_free(&rows);

    return CRM_OK;
}


static crm_status_e
crm_db_prepare(crm_db_t *db, const crm_stmt_t *stmt, crm_error_t *err)
{
    size_t             i, cap;
    PGresult          *res;
    crm_status_e       rc;
    const crm_stmt_t **p;

    for (i = 0; i < db->nprepared; i++) {
        if (db->prepared[i] == stmt) {
            return CRM_OK;
        }
    }

    if (db->nprepared == db->prepared_cap) {
        cap = db->prepared_cap ? db->prepared_cap * 2 : 32;
        p = realloc(db->prepared, cap * sizeof(crm_stmt_t *));
        if (p == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }

        db->prepared = p;
        db->prepared_cap = cap;
    }

    res = PQprepare(db->conn, stmt->name, stmt->sql, stmt->nparams, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = crm_db_result_error(db, res, err);
        crm_error_cause(err, "preparing \"%s\": %.200s", stmt->name,
                        err->cause);
        PQclear(res);
        return rc;
    }

    PQclear(res);

    if (db->nprepared == 0) {
        db->prepared_at = crm_clock_ms();
    }

    db->prepared[db->nprepared++] = stmt;

    return CRM_OK;
}


/*
 * Maps a failed result to a typed error.  A broken connection is closed
 * here so that the next call reconnects.  The log-only cause holds the
 * SQLSTATE, the primary message and the constraint: never the DETAIL,
 * which can quote a row (a password hash, someone's address).
 */
static crm_status_e
crm_db_result_error(crm_db_t *db, const PGresult *res, crm_error_t *err)
{
    const char  *state, *primary, *constraint;

    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        crm_error_cause(err, "connection lost: %s",
                        db->conn ? PQerrorMessage(db->conn) : "closed");
        crm_db_close(db);
        return err->code;
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                     : NULL;

    if (state == NULL) {
        state = "";
    }

    if (primary == NULL) {
        /* no server error: libpq's own message, or the result's status */
        primary = res ? PQresStatus(PQresultStatus(res))
                      : PQerrorMessage(db->conn);
    }

    if (strcmp(state, "23505") == 0) {
        crm_error_set(err, CRM_E_CONFLICT, NULL, "conflict");
        crm_error_cause(err, "%s", constraint ? constraint : "");

    } else if (strcmp(state, "57014") == 0 || strcmp(state, "40001") == 0
               || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0
               || strncmp(state, "53", 2) == 0)
    {
        /*
         * retryable: statement timeout, serialization failure, deadlock,
         * lock not available, and insufficient resources (disk, memory,
         * too many connections)
         */
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database busy");
        crm_error_cause(err, "sqlstate %s: %s", state, primary);

    } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0
               || strcmp(state, "25006") == 0)
    {
        /*
         * connection exceptions, server shutdown, and a read-only
         * transaction: after a failover the address may lead to a standby
         * now, so the next call reconnects to find the new primary
         */
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL, "database unavailable");
        crm_error_cause(err, "sqlstate %s: %s", state, primary);
        crm_db_close(db);

    } else {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");

        if (constraint != NULL) {
            crm_error_cause(err, "sqlstate %s: %s (constraint \"%s\")",
                            state, primary, constraint);

        } else {
            crm_error_cause(err, "sqlstate %s: %s", state, primary);
        }
    }

    snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);

    return err->code;
}


int
crm_db_unreachable(const crm_error_t *err)
{
    /* no server's answer, a connection exception, or a shutdown */
    return err->code == CRM_E_UNAVAILABLE
           && (err->sqlstate[0] == '\0'
               || strncmp(err->sqlstate, "08", 2) == 0
               || strncmp(err->sqlstate, "57P", 3) == 0);
}


int
crm_db_refused_data(const crm_error_t *err)
{
    /* data exceptions and integrity constraint violations */
    return strncmp(err->sqlstate, "22", 2) == 0
           || strncmp(err->sqlstate, "23", 2) == 0;
}


crm_status_e
crm_db_exec(crm_db_t *db, const crm_stmt_t *stmt, const char *const *params,
    PGresult **res, crm_error_t *err)
{
    crm_status_e    rc;
    ExecStatusType  st;

    *res = NULL;

    rc = crm_db_ready(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    rc = crm_db_prepare(db, stmt, err);
    if (rc != CRM_OK) {
        return rc;
    }

    *res = PQexecPrepared(db->conn, stmt->name, stmt->nparams, params,
                          NULL, NULL, 0);

    st = *res ? PQresultStatus(*res) : PGRES_FATAL_ERROR;

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return CRM_OK;
    }

    rc = crm_db_result_error(db, *res, err);
    PQclear(*res);
    *res = NULL;

    return rc;
}


crm_status_e
crm_db_query(crm_db_t *db, const crm_stmt_t *stmt, const char *const *params,
    crm_rows_t *out, crm_error_t *err)
{
    crm_status_e  rc;

    out->n = 0;

    rc = crm_db_exec(db, stmt, params, &out->res, err);
    if (rc != CRM_OK) {
        return rc;
    }

    out->n = (size_t) PQntuples(out->res);

    return CRM_OK;
}


void
crm_rows_free(crm_rows_t *rows)
{
    PQclear(rows->res);
    rows->res = NULL;
    rows->n = 0;
}


const char *
crm_rows_value(const crm_rows_t *rows, size_t row, int col)
{
    if (PQgetisnull(rows->res, (int) row, col)) {
        return NULL;
    }

    return PQgetvalue(rows->res, (int) row, col);
}


/*
 * Notices ("relation already exists, skipping") are for interactive
 * clients; libpq would print them on the worker's stderr.
 */
static void
crm_db_notice(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}


crm_status_e
crm_db_command(crm_db_t *db, const char *sql, crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_ready(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    res = PQexec(db->conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = crm_db_result_error(db, res, err);
        PQclear(res);
        return rc;
    }

    PQclear(res);

    return CRM_OK;
}


crm_status_e
crm_db_copy_in(crm_db_t *db, const char *sql, const crm_str_t *chunks,
    size_t n, crm_error_t *err)
{
    size_t         i;
    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_ready(db, err);
    if (rc != CRM_OK) {
        return rc;
    }

    res = PQexec(db->conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        rc = crm_db_result_error(db, res, err);
        PQclear(res);
        return rc;
    }

    PQclear(res);

    for (i = 0; i < n; i++) {
        if (chunks[i].len
            && PQputCopyData(db->conn, chunks[i].data, (int) chunks[i].len)
               != 1)
        {
            break;
        }
    }

    if (PQputCopyEnd(db->conn, i < n ? "sending failed" : NULL) != 1) {
        return crm_db_result_error(db, NULL, err);
    }

    rc = CRM_OK;

    while ((res = PQgetResult(db->conn)) != NULL) {
        if (rc == CRM_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = crm_db_result_error(db, res, err);
        }

        PQclear(res);

        if (db->conn == NULL) {
            break;
        }
    }

    return rc;
}


crm_status_e
crm_db_begin(crm_db_t *db, crm_error_t *err)
{
    crm_status_e  rc;

    rc = crm_db_command(db, "BEGIN", err);
    if (rc == CRM_OK) {
        db->in_txn = 1;
    }

    return rc;
}


/*
 * PostgreSQL answers COMMIT of a transaction that had failed with
 * "ROLLBACK": nothing was written, and the caller must not say otherwise.
 */
crm_status_e
crm_db_commit(crm_db_t *db, crm_error_t *err)
{
    PGresult      *res;
    crm_status_e   rc;

    rc = crm_db_ready(db, err);
    if (rc != CRM_OK) {
        db->in_txn = 0;
        return rc;
    }

    res = PQexec(db->conn, "COMMIT");
    db->in_txn = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = crm_db_result_error(db, res, err);
        PQclear(res);
        return rc;
    }

    if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        crm_error_set(err, CRM_E_UNAVAILABLE, NULL,
                      "the change could not be saved; retry");
        crm_error_cause(err, "COMMIT answered \"%s\": the transaction had "
                        "failed", PQcmdStatus(res));
        PQclear(res);
        return err->code;
    }

    PQclear(res);

    return CRM_OK;
}


void
crm_db_rollback(crm_db_t *db)
{
    PGresult  *res;

    if (!db->in_txn) {
        return;
    }

    db->in_txn = 0;

    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        return;
    }

    res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
}
