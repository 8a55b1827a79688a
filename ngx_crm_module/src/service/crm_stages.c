/*
 * The pipeline's stages as the API shows them.  They come from the
 * configuration this worker runs with, so after "nginx -s reload" a new
 * worker shows the new pipeline while an old one finishes its requests
 * with the old.
 */

#include "crm_form.h"
#include "crm_stages.h"
#include "crm_verify.h"


static crm_status_e crm_stages_list_parse(crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_stages_get_parse(crm_call_t *call, crm_error_t *err);
static crm_status_e crm_stages_list_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static crm_status_e crm_stages_get_run(crm_db_t *db, crm_call_t *call,
    crm_error_t *err);
static int crm_stages_render(yajl_gen g, const crm_stage_t *stage);


/* neither takes a query parameter: any is a mistake worth saying */
static const char *const  crm_stages_params[] = { NULL };


const crm_endpoint_t  crm_stages_list = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_stages_list_parse,
    .run = crm_stages_list_run
};

const crm_endpoint_t  crm_stages_get = {
    .verifier = &crm_verify_bearer,
    .body = CRM_BODY_NONE,
    .parse = crm_stages_get_parse,
    .run = crm_stages_get_run
};


static int
crm_stages_render(yajl_gen g, const crm_stage_t *stage)
{
    size_t                 i;
    const crm_substage_t  *ss;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || crm_json_gen_kv_str(g, "stage", stage->name) != 0
        || crm_json_gen_kv_int(g, "position", stage->position) != 0
        || crm_json_gen_key(g, "substages") != 0
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    for (i = 0; i < stage->nsubstages; i++) {
        ss = &stage->substages[i];

        if (yajl_gen_map_open(g) != yajl_gen_status_ok
            || crm_json_gen_kv_str(g, "status", ss->status) != 0
            || crm_json_gen_kv_str(g, "description", ss->description) != 0
            || crm_json_gen_kv_int(g, "score", ss->score) != 0
            || crm_json_gen_kv_str(g, "notes", ss->notes) != 0
            || crm_json_gen_kv_str(g, "outcome", crm_outcome_name(ss->outcome))
               != 0
            || yajl_gen_map_close(g) != yajl_gen_status_ok)
        {
            return -1;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || yajl_gen_map_close(g) != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


static crm_status_e
crm_stages_list_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    size_t                 i;
    yajl_gen               g;
    const crm_pipeline_t  *pipeline;

    (void) db;

    pipeline = call->conf->pipeline;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (yajl_gen_array_open(g) != yajl_gen_status_ok) {
        goto failed;
    }

    for (i = 0; i < pipeline->nstages; i++) {
        if (crm_stages_render(g, &pipeline->stages[i]) != 0) {
            goto failed;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok) {
        goto failed;
    }

    return crm_call_reply_json(call, 200, g, err);

failed:

    yajl_gen_free(g);

    return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
}


static crm_status_e
crm_stages_list_parse(crm_call_t *call, crm_error_t *err)
{
    return crm_form_check_names(call->query, crm_stages_params, err);
}


static crm_status_e
crm_stages_get_parse(crm_call_t *call, crm_error_t *err)
{
    crm_status_e        rc;
    const crm_stage_t  *stage;

    rc = crm_form_check_names(call->query, crm_stages_params, err);
    if (rc != CRM_OK) {
        return rc;
    }

    stage = crm_pipeline_stage(call->conf->pipeline, call->match.params[0]);
    if (stage == NULL) {
        return crm_error_set(err, CRM_E_NOT_FOUND, NULL, "no such stage");
    }

    call->input = (void *) stage;

    return CRM_OK;
}


static crm_status_e
crm_stages_get_run(crm_db_t *db, crm_call_t *call, crm_error_t *err)
{
    yajl_gen  g;

    (void) db;

    g = crm_json_gen_new();
    if (g == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    if (crm_stages_render(g, call->input) != 0) {
        yajl_gen_free(g);
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "could not render");
    }

    return crm_call_reply_json(call, 200, g, err);
}
