/*
 * GET /healthz answers from a pool thread with that thread's connection,
 * so it reports what an API call would meet.  Its body is not a problem
 * document: load balancers and the FastAPI-era probes read "status".
 */

#include "crm_health.h"


static crm_status_e crm_health_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);


static const crm_stmt_t  crm_health_ping = {
    "health_ping", "SELECT 1", 0
};


const crm_endpoint_t  crm_health = {
    .auth = CRM_AUTH_NONE,
    .body = CRM_BODY_NONE,
    .run = crm_health_run
};


static crm_status_e
crm_health_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    int           up;
    yajl_gen      g;
    PGresult     *res;
    crm_error_t   ping;

    up = crm_db_exec(db, &crm_health_ping, NULL, &res, &ping) == CRM_OK;
    PQclear(res);

    g = crm_json_gen_new();
    if (g == NULL
        || yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "status", up ? "ok" : "degraded") != 0
        || crm_json_gen_kv_str(g, "db", up ? "ok" : "down") != 0
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
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "too many headers");
    }

    return crm_call_reply_json(call, up ? 200 : 503, g, err);
}
