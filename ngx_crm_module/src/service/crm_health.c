/*
 * GET /healthz answers in the event loop from what the last probe of the
 * location's database found (the glue probes each database every second
 * on the edge's pool), so a flood of probes costs no query each and a
 * busy pool cannot make a healthy host look down.  Only before this
 * worker's first probe has answered does a request ask the database
 * itself, on the pool.  Its body is not a problem document: load
 * balancers and the FastAPI-era probes read "status".
 */

#include "crm_clock.h"
#include "crm_health.h"


static crm_status_e crm_health_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_health_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_health_reply(crm_call_t *call, int up,
    crm_error_t *err);


const crm_endpoint_t  crm_health = {
    .body = CRM_BODY_NONE,
    .parse = crm_health_parse,
    .run = crm_health_run
};


static crm_status_e
crm_health_parse(crm_call_t *call, crm_error_t *err)
{
    const crm_db_health_t  *h;

    h = call->conf->db->health;

    if (h->up < 0) {
        return CRM_OK;
    }

    return crm_health_reply(call,
                            h->up && crm_clock_ms() - h->checked_ms
                                     <= CRM_HEALTH_STALE_MS,
                            err);
}


/* before the first probe answered */
static crm_status_e
crm_health_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    crm_error_t  ping;

    return crm_health_reply(call, crm_db_ping(db, &ping) == CRM_OK, err);
}


static crm_status_e
crm_health_reply(crm_call_t *call, int up, crm_error_t *err)
{
    yajl_gen     g;
    const char  *status, *db;

    status = up ? "ok" : "degraded";
    db = up ? "ok" : "down";

    g = crm_json_gen_new();
    if (g == NULL
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "status", status) != 0
        || crm_json_gen_kv_str(g, "db", db) != 0
        || crm_json_gen_kv_str(g, "version", CRM_VERSION) != 0
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        if (g != NULL) {
            yajl_gen_free(g);
        }

        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (!up && crm_call_add_header(call, "Retry-After", "1") != CRM_OK) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return crm_call_reply_json(call, up ? 200 : 503, g, err);
}
