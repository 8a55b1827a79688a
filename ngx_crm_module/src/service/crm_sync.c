/*
 * The CRM sync's work on one lease; see crm_sync.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_hex.h"
#include "crm_json.h"
#include "crm_store_sync.h"
#include "crm_sync.h"


#define CRM_SYNC_BACKOFF_MAX_MS  3600000
#define CRM_SYNC_BACKOFF_MIN_MS  250


enum {
    CRM_SYNC_UPSERT = 0,
    CRM_SYNC_EVENTS,
    CRM_SYNC_DONE
};


static crm_sync_lease_t *crm_sync_lease_new(const crm_rows_t *rows,
    size_t row, crm_error_t *err);
static crm_status_e crm_sync_job(crm_sync_lease_t *lease,
    const crm_rows_t *rows, size_t row, crm_sync_job_t *job,
    crm_error_t *err);
static void crm_sync_unseal(crm_sync_lease_t *lease,
    const crm_seal_keyring_t *ring, const char *key_id, const char *hex);
static const char *crm_sync_text(crm_sync_lease_t *lease, yajl_val root,
    const char *name);
static void crm_sync_settle(crm_sync_lease_t *lease, crm_status_e rc,
    const crm_error_t *err, unsigned max_attempts, uint64_t rnd);
static void crm_sync_hold(crm_sync_lease_t *lease, const char *why);
static char *crm_sync_done_json(crm_sync_lease_t *lease);
static int crm_sync_lease_cmp(const void *a, const void *b);


static const struct {
    const char  *kind;
    const char  *name;
}  crm_sync_events[] = {
    { "created", "Lead Created" },
    { "updated", "Lead Updated" },
    { "deleted", "Lead Deleted" },
    { "stage_changed", "Lead Stage Changed" },
    { "install", "App Installed" },
    { "conversion", "Order Converted" },
};


const char *
crm_sync_event_name(const char *kind)
{
    size_t  i;

    for (i = 0; i < sizeof(crm_sync_events) / sizeof(crm_sync_events[0]);
         i++)
    {
        if (strcmp(kind, crm_sync_events[i].kind) == 0) {
            return crm_sync_events[i].name;
        }
    }

    return "Lead Event";
}


int64_t
crm_sync_backoff_ms(unsigned n, uint64_t rnd)
{
    int64_t  cap;

    cap = n >= 22 ? CRM_SYNC_BACKOFF_MAX_MS : (int64_t) 1000 << (n - 1);

    if (cap > CRM_SYNC_BACKOFF_MAX_MS) {
        cap = CRM_SYNC_BACKOFF_MAX_MS;
    }

    /* full jitter: anywhere up to the cap, never a busy loop */
    cap = (int64_t) (rnd % (uint64_t) (cap + 1));

    return cap < CRM_SYNC_BACKOFF_MIN_MS ? CRM_SYNC_BACKOFF_MIN_MS : cap;
}


crm_sync_lease_t *
crm_sync_leases(const crm_rows_t *rows, const crm_seal_keyring_t *ring,
    crm_error_t *err)
{
    size_t             row, first, n;
    crm_sync_lease_t  *head, **tail, *lease;

    head = NULL;
    tail = &head;

    for (first = 0; first < rows->n; first = row) {

        /* a lease's rows are together, its jobs in order */
        for (row = first + 1;
             row < rows->n
             && strcmp(crm_rows_value(rows, row, CRM_SYNC_COL_TOKEN),
                       crm_rows_value(rows, first, CRM_SYNC_COL_TOKEN)) == 0;
             row++)
        {
            /* the lease's last row */
        }

        lease = crm_sync_lease_new(rows, first, err);
        if (lease == NULL) {
            crm_sync_leases_free(head);
            return NULL;
        }

        *tail = lease;
        tail = &lease->next;

        n = row - first;
        lease->jobs = crm_arena_alloc(&lease->arena,
                                      n * sizeof(crm_sync_job_t));
        if (lease->jobs == NULL) {
            crm_sync_leases_free(head);
            crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
            return NULL;
        }

        for (lease->njobs = 0; lease->njobs < n; lease->njobs++) {
            if (crm_sync_job(lease, rows, first + lease->njobs,
                             &lease->jobs[lease->njobs], err) != CRM_OK)
            {
                crm_sync_leases_free(head);
                return NULL;
            }
        }

        crm_sync_unseal(lease, ring,
                        crm_rows_value(rows, first, CRM_SYNC_COL_KEY_ID),
                        crm_rows_value(rows, first, CRM_SYNC_COL_SEALED));
    }

    return head;
}


static crm_sync_lease_t *
crm_sync_lease_new(const crm_rows_t *rows, size_t row, crm_error_t *err)
{
    crm_arena_t        arena;
    crm_sync_lease_t  *lease;

    arena.head = NULL;

    lease = crm_arena_alloc(&arena, sizeof(crm_sync_lease_t));
    if (lease == NULL) {
        crm_arena_free(&arena);
        crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        return NULL;
    }

    lease->arena = arena;

#define crm_sync_copy(col)                                                    \
    crm_arena_strdup(&lease->arena,                                           \
                     crm_str_c(crm_rows_value(rows, row, col)))

    lease->account_id = crm_sync_copy(CRM_SYNC_COL_ACCOUNT);
    lease->crm_type = crm_sync_copy(CRM_SYNC_COL_TYPE);
    lease->lead_id = crm_sync_copy(CRM_SYNC_COL_LEAD);
    lease->token = crm_sync_copy(CRM_SYNC_COL_TOKEN);
    lease->seq = crm_sync_copy(CRM_SYNC_COL_SEQ);
    lease->settings = crm_sync_copy(CRM_SYNC_COL_SETTINGS);

#undef crm_sync_copy

    if (lease->account_id == NULL || lease->crm_type == NULL
        || lease->lead_id == NULL || lease->token == NULL
        || lease->seq == NULL || lease->settings == NULL)
    {
        crm_arena_free(&lease->arena);
        crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        return NULL;
    }

    return lease;
}


/* a job's row: its event, and the lead as the trigger saw it */
static crm_status_e
crm_sync_job(crm_sync_lease_t *lease, const crm_rows_t *rows, size_t row,
    crm_sync_job_t *job, crm_error_t *err)
{
    yajl_val            root, score;
    const char         *contact, *value;
    crm_json_limits_t   limits = { 65536, 8 };

    static const char  *score_path[] = { "score", NULL };

    contact = crm_rows_value(rows, row, CRM_SYNC_COL_CONTACT);

    if (crm_json_parse(contact, strlen(contact), &limits, &root, err)
        != CRM_OK)
    {
        return err->code;
    }

    job->id = crm_arena_strdup(&lease->arena,
                  crm_str_c(crm_rows_value(rows, row, CRM_SYNC_COL_JOB)));
    job->kind = crm_arena_strdup(&lease->arena,
                  crm_str_c(crm_rows_value(rows, row, CRM_SYNC_COL_EVENT)));
    job->attempts = (unsigned) strtoul(crm_rows_value(rows, row,
                                                  CRM_SYNC_COL_ATTEMPTS),
                                       NULL, 10);

    job->contact.lead_id = lease->lead_id;
    job->contact.name = crm_sync_text(lease, root, "name");
    job->contact.email = crm_sync_text(lease, root, "email");
    job->contact.phone = crm_sync_text(lease, root, "phone");
    job->contact.company = crm_sync_text(lease, root, "company");
    job->contact.shop_domain = crm_sync_text(lease, root, "shop_domain");
    job->contact.source = crm_sync_text(lease, root, "source");
    job->contact.stage = crm_sync_text(lease, root, "stage");
    job->contact.substage = crm_sync_text(lease, root, "substage");

    score = yajl_tree_get(root, score_path, yajl_t_number);
    job->contact.score = score != NULL && YAJL_IS_INTEGER(score)
                         ? YAJL_GET_INTEGER(score) : 0;

    yajl_tree_free(root);

    job->event.id = crm_arena_strdup(&lease->arena,
                  crm_str_c(crm_rows_value(rows, row,
                                           CRM_SYNC_COL_EVENT_ID)));
    job->event.time = crm_arena_strdup(&lease->arena,
                  crm_str_c(crm_rows_value(rows, row,
                                           CRM_SYNC_COL_EVENT_AT)));
    job->event.resent = job->attempts > 0;

    value = crm_rows_value(rows, row, CRM_SYNC_COL_VALUE);
    job->event.value_cents = value != NULL ? strtoll(value, NULL, 10) : -1;
    job->event.currency = value != NULL
        ? crm_arena_strdup(&lease->arena,
                  crm_str_c(crm_rows_value(rows, row,
                                           CRM_SYNC_COL_CURRENCY)))
        : NULL;

    if (job->id == NULL || job->kind == NULL || job->event.id == NULL
        || job->event.time == NULL || job->contact.name == NULL
        || job->contact.source == NULL || job->contact.stage == NULL
        || job->contact.substage == NULL
        || (value != NULL && job->event.currency == NULL))
    {
        return crm_error_set(err, CRM_E_INTERNAL, NULL,
                             "a sync job that cannot be read");
    }

    job->event.name = crm_sync_event_name(job->kind);
    job->outcome = "wait";

    return CRM_OK;
}


/* a string member of the lead, copied; NULL when null or absent */
static const char *
crm_sync_text(crm_sync_lease_t *lease, yajl_val root, const char *name)
{
    const char  *path[2];
    yajl_val     v;

    path[0] = name;
    path[1] = NULL;

    v = yajl_tree_get(root, path, yajl_t_string);

    return v != NULL ? crm_arena_strdup(&lease->arena,
                                        crm_str_c(v->u.string))
                     : NULL;
}


/* the credentials, as connect sealed them for this account and type */
static void
crm_sync_unseal(crm_sync_lease_t *lease, const crm_seal_keyring_t *ring,
    const char *key_id, const char *hex)
{
    char            aad[128];
    size_t          n, len;
    unsigned char  *record;

    n = hex != NULL ? strlen(hex) / 2 : 0;

    record = crm_arena_alloc(&lease->arena, n + 1);
    lease->credentials = crm_arena_alloc(&lease->arena, n + 1);

    if (record == NULL || lease->credentials == NULL || key_id == NULL
        || crm_hex_decode(crm_str_c(hex), record, n) != 0)
    {
        crm_error_set(&lease->err, CRM_E_INTERNAL, NULL,
                      "the stored credentials cannot be read");
        lease->credentials = NULL;
        return;
    }

    snprintf(aad, sizeof(aad), "%s/%s", lease->account_id, lease->crm_type);
    snprintf(lease->fingerprint, sizeof(lease->fingerprint), "%.24s", hex);

    if (crm_unseal(ring, key_id, aad, strlen(aad), record, n,
                   (unsigned char *) lease->credentials, &len, &lease->err)
        != CRM_OK)
    {
        lease->credentials = NULL;
        return;
    }

    lease->credentials[len] = '\0';
    lease->credentials_len = len;
}


void
crm_sync_leases_free(crm_sync_lease_t *leases)
{
    crm_sync_lease_t  *lease, *next;

    for (lease = leases; lease != NULL; lease = next) {
        next = lease->next;

        if (lease->credentials != NULL) {
            explicit_bzero(lease->credentials, lease->credentials_len);
        }

        crm_arena_free(&lease->arena);
    }
}


crm_status_e
crm_sync_start(crm_sync_lease_t *lease, const crm_provider_conf_t *conf)
{
    yajl_val               creds, settings;
    crm_status_e           rc;
    crm_json_limits_t      limits = { 65536, 8 };
    const crm_provider_t  *provider;

    provider = crm_provider_find(crm_str_c(lease->crm_type));

    if (lease->credentials == NULL || provider == NULL) {
        crm_sync_hold(lease, lease->err.message[0]
                             ? lease->err.message
                             : "the stored credentials cannot be read");
        return CRM_E_INTERNAL;
    }

    creds = NULL;
    settings = NULL;

    rc = crm_json_parse(lease->credentials, lease->credentials_len, &limits,
                        &creds, &lease->err);

    explicit_bzero(lease->credentials, lease->credentials_len);
    lease->credentials = NULL;

    if (rc == CRM_OK) {
        rc = crm_json_parse(lease->settings, strlen(lease->settings),
                            &limits, &settings, &lease->err);
    }

    if (rc == CRM_OK) {
        lease->op.provider = provider;
        lease->op.conf = conf;
        lease->op.arena = &lease->arena;

        rc = provider->parse(&lease->op, creds, settings, &lease->err);
    }

    yajl_tree_free(creds);
    yajl_tree_free(settings);

    if (rc != CRM_OK) {
        /* stored settings the provider no longer takes: the user's to fix */
        crm_sync_hold(lease, lease->err.message);
        return rc;
    }

    lease->phase = CRM_SYNC_UPSERT;

    return CRM_OK;
}


crm_op_step_e
crm_sync_step(crm_sync_lease_t *lease, const crm_http_response_t *res,
    unsigned max_attempts, uint64_t rnd, const crm_http_request_t **req)
{
    crm_error_t            err;
    crm_status_e           rc;
    crm_op_step_e          step;
    crm_sync_job_t        *job;
    crm_provider_op_t     *op;

    op = &lease->op;
    *req = NULL;

    if (res != NULL) {
        op->http_status = res->outcome == CRM_HTTP_ANSWERED ? res->status : 0;
        op->duration_ms += res->duration_ms;
    }

    while (lease->phase != CRM_SYNC_DONE) {
        memset(&err, 0, sizeof(err));

        if (lease->phase == CRM_SYNC_UPSERT) {
            /* pending updates collapse: the lead as it is last */
            op->contact = &lease->jobs[lease->njobs - 1].contact;
            rc = op->provider->upsert_contact(op, res, &step, &err);

        } else {
            job = &lease->jobs[lease->current];
            op->contact = &job->contact;
            op->event = &job->event;
            rc = op->provider->send_event(op, res, &step, &err);
        }

        if (step == CRM_OP_MORE && rc == CRM_OK) {
            *req = &op->req;
            return CRM_OP_MORE;
        }

        res = NULL;

        if (rc != CRM_OK) {
            crm_sync_settle(lease, rc, &err, max_attempts, rnd);
            break;
        }

        /* the next operation starts afresh, the session kept */
        op->step = 0;
        op->relogged = 0;

        if (lease->phase == CRM_SYNC_UPSERT) {
            lease->phase = CRM_SYNC_EVENTS;
            continue;
        }

        job = &lease->jobs[lease->current];
        job->outcome = "ok";
        job->http_status = op->http_status;
        job->duration_ms = op->duration_ms;
        op->duration_ms = 0;

        if (++lease->current == lease->njobs) {
            lease->phase = CRM_SYNC_DONE;
        }
    }

    lease->phase = CRM_SYNC_DONE;

    return CRM_OP_DONE;
}


/*
 * What a failed operation means for the job it was for (the first whose
 * event was not sent; the head when the upsert failed): the jobs after it
 * wait
 */
static void
crm_sync_settle(crm_sync_lease_t *lease, crm_status_e rc,
    const crm_error_t *err, unsigned max_attempts, uint64_t rnd)
{
    crm_sync_job_t  *job;

    job = &lease->jobs[lease->current];
    job->http_status = lease->op.http_status;
    job->duration_ms = lease->op.duration_ms;
    snprintf(job->error, sizeof(job->error), "%s", err->message);

    switch (rc) {

    case CRM_E_UNAUTHORIZED:
        job->outcome = "held";
        snprintf(lease->refused, sizeof(lease->refused), "%s",
                 err->message);
        return;

    case CRM_E_INVALID:
        job->outcome = "dead";
        return;

    default:
        break;
    }

    job->log_outcome = rc == CRM_E_GATEWAY_TIMEOUT ? "timeout" : "failed";

    if (job->attempts + 1 >= max_attempts) {
        job->outcome = "dead";
        return;
    }

    job->outcome = "failed";

    if (err->retry_after > 0) {
        /* no earlier than the provider asked, for all of the account */
        job->next_ms = (int64_t) err->retry_after * 1000;
        lease->paused_ms = job->next_ms;
        return;
    }

    job->next_ms = crm_sync_backoff_ms(job->attempts + 1, rnd);
}


/* a lease that cannot start: its credentials are the user's to fix */
static void
crm_sync_hold(crm_sync_lease_t *lease, const char *why)
{
    crm_sync_job_t  *job;

    job = &lease->jobs[0];
    job->outcome = "held";
    snprintf(job->error, sizeof(job->error), "%s", why);
    snprintf(lease->refused, sizeof(lease->refused), "%s", why);

    lease->phase = CRM_SYNC_DONE;
}


char *
crm_sync_session(crm_sync_lease_t *lease)
{
    const crm_provider_t  *p;

    p = lease->op.provider;

    if (p == NULL || p->session_save == NULL || lease->refused[0]) {
        return NULL;
    }

    return p->session_save(&lease->op);
}


void
crm_sync_resume(crm_sync_lease_t *lease, const char *saved)
{
    const crm_provider_t  *p;

    p = lease->op.provider;

    if (p != NULL && p->session_load != NULL && lease->phase != CRM_SYNC_DONE)
    {
        /* one that cannot be read is no session: the lease logs in */
        (void) p->session_load(&lease->op, saved);
    }
}


/*
 * In the order of the rows' keys, so that two workers recording at once
 * lock the same rows in the same order and never deadlock
 */
crm_status_e
crm_sync_record(crm_db_t *db, crm_sync_lease_t *leases, crm_error_t *err)
{
    char               *done;
    size_t              i, n;
    crm_status_e        rc;
    crm_sync_lease_t   *lease, **sorted;

    for (n = 0, lease = leases; lease != NULL; lease = lease->next) {
        n++;
    }

    sorted = malloc(n * sizeof(crm_sync_lease_t *) + 1);
    if (sorted == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    for (i = 0, lease = leases; lease != NULL; lease = lease->next) {
        sorted[i++] = lease;
    }

    qsort(sorted, n, sizeof(crm_sync_lease_t *), crm_sync_lease_cmp);

    rc = crm_db_begin(db, err);

    for (i = 0; rc == CRM_OK && i < n; i++) {
        lease = sorted[i];

        done = crm_sync_done_json(lease);
        if (done == NULL) {
            rc = crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
            break;
        }

        rc = crm_store_sync_finish(db, lease->account_id, lease->crm_type,
                                   lease->lead_id, lease->token, lease->seq,
                                   done, err);
        free(done);
    }

    free(sorted);

    if (rc != CRM_OK) {
        crm_db_rollback(db);
        return rc;
    }

    return crm_db_commit(db, err);
}


static int
crm_sync_lease_cmp(const void *a, const void *b)
{
    int                      c;
    const crm_sync_lease_t  *x, *y;

    x = *(const crm_sync_lease_t *const *) a;
    y = *(const crm_sync_lease_t *const *) b;

    c = strcmp(x->account_id, y->account_id);
    if (c == 0) {
        c = strcmp(x->crm_type, y->crm_type);
    }

    return c != 0 ? c : strcmp(x->lead_id, y->lead_id);
}


/* crm.sync_finish()'s p_done; malloc'd, NULL on ENOMEM */
static char *
crm_sync_done_json(crm_sync_lease_t *lease)
{
    char            *out;
    size_t           i, len;
    yajl_gen         g;
    crm_sync_job_t  *job;

    g = crm_json_gen_new();
    if (g == NULL) {
        return NULL;
    }

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_key(g, "jobs") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return NULL;
    }

    for (i = 0; i < lease->njobs; i++) {
        job = &lease->jobs[i];

        if (strcmp(job->outcome, "wait") == 0) {
            continue;
        }

        if (yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "id", job->id) != 0
            || crm_json_gen_kv_str(g, "outcome", job->outcome) != 0
            || crm_json_gen_kv_str(g, "log_outcome", job->log_outcome) != 0
            || crm_json_gen_kv_str(g, "operation", job->kind) != 0
            || (job->http_status
                && crm_json_gen_kv_int(g, "http_status", job->http_status)
                   != 0)
            || crm_json_gen_kv_int(g, "duration_ms", job->duration_ms) != 0
            || crm_json_gen_kv_int(g, "next_ms", job->next_ms) != 0
            || crm_json_gen_kv_str(g, "error",
                                   job->error[0] ? job->error : NULL) != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok)
        {
            yajl_gen_free(g);
            return NULL;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || (lease->refused[0]
            && crm_json_gen_kv_str(g, "refused", lease->refused) != 0)
        || (lease->paused_ms > 0
            && crm_json_gen_kv_int(g, "paused_ms", lease->paused_ms) != 0)
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        yajl_gen_free(g);
        return NULL;
    }

    if (crm_json_gen_finish(g, &out, &len) != CRM_OK) {
        return NULL;
    }

    return out;
}
