/*
 * What the providers share; see crm_provider.h.
 */

#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>

#include "crm_json.h"
#include "crm_provider.h"


extern const crm_provider_t  crm_provider_klaviyo;
extern const crm_provider_t  crm_provider_salesforce;
extern const crm_provider_t  crm_provider_creatio;


const crm_provider_t  *const crm_providers[] = {
    &crm_provider_klaviyo,
    &crm_provider_salesforce,
    &crm_provider_creatio,
    NULL
};


void
crm_provider_init(void)
{
    /* before any parse, in the process's main thread (libxml2's rule) */
    xmlInitParser();
}


const crm_provider_t *
crm_provider_find(crm_str_t type)
{
    const crm_provider_t  *const *p;

    for (p = crm_providers; *p != NULL; p++) {
        if (crm_str_eq(type, (*p)->type)) {
            return *p;
        }
    }

    return NULL;
}


crm_status_e
crm_provider_request(crm_provider_op_t *op, const char *method,
    const char *url, crm_error_t *err)
{
    memset(&op->req, 0, sizeof(crm_http_request_t));

    op->req.method = method;
    op->req.url = crm_arena_strdup(op->arena, crm_str_c(url));
    op->req.provider = op->provider->name;

    if (op->req.url == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    return CRM_OK;
}


crm_status_e
crm_provider_settings(yajl_val settings, const crm_json_field_t *fields,
    size_t nfields, void *out, crm_error_t *err)
{
    char          field[sizeof(err->field)];
    crm_status_e  rc;

    if (settings == NULL) {
        return CRM_OK;
    }

    rc = crm_json_decode(settings, fields, nfields, out, err);

    if (rc == CRM_E_INVALID && err->field[0] != '\0') {
        snprintf(field, sizeof(field), "settings.%.50s", err->field);
        memcpy(err->field, field, sizeof(field));
    }

    return rc;
}


crm_status_e
crm_provider_failed(crm_provider_op_t *op, const crm_http_response_t *res,
    crm_error_t *err)
{
    const char  *name;

    name = op->provider->name;

    switch (res->outcome) {

    case CRM_HTTP_ANSWERED:
        break;

    case CRM_HTTP_TIMED_OUT:
        crm_error_set(err, CRM_E_GATEWAY_TIMEOUT, NULL,
                      "%s did not answer in time", name);
        return crm_error_cause(err, "%s", res->error);

    case CRM_HTTP_REFUSED:
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s cannot be called there: %s", name, res->error);
        return err->code;

    case CRM_HTTP_TOO_LARGE:
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s answered more than 1 MiB", name);

    default:
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s cannot be reached", name);
        return crm_error_cause(err, "%s", res->error);
    }

    if (res->status == 429) {
        crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                      "%s is limiting the rate of calls", name);
        err->retry_after = crm_http_retry_after(res);
        return err->code;
    }

    if (res->status >= 300 && res->status < 400) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s answered with a redirect, which is not "
                             "followed", name);
    }

    if (res->status >= 500) {
        return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                             "%s failed (HTTP %u)", name, res->status);
    }

    return crm_error_set(err, CRM_E_BAD_GATEWAY, NULL,
                         "%s gave an answer that cannot be read (HTTP %u)",
                         name, res->status);
}


yajl_val
crm_provider_json(const crm_http_response_t *res)
{
    yajl_val            root;
    crm_error_t         err;
    crm_json_limits_t   limits;

    if (res->body == NULL) {
        return NULL;
    }

    limits.max_body = CRM_HTTP_BODY_MAX;
    limits.max_depth = 32;

    if (crm_json_parse(res->body, res->len, &limits, &root, &err) != CRM_OK)
    {
        return NULL;
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return NULL;
    }

    return root;
}


crm_status_e
crm_provider_account(crm_provider_op_t *op, const char *name,
    const char *value, crm_error_t *err)
{
    crm_provider_field_t  *f;

    f = crm_arena_alloc(op->arena, sizeof(crm_provider_field_t));
    if (f == NULL) {
        return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
    }

    f->name = name;

    if (value != NULL) {
        f->value = crm_arena_strdup(op->arena, crm_str_c(value));
        if (f->value == NULL) {
            return crm_error_set(err, CRM_E_INTERNAL, NULL, "out of memory");
        }
    }

    if (op->account_last != NULL) {
        op->account_last->next = f;

    } else {
        op->account = f;
    }

    op->account_last = f;

    return CRM_OK;
}


const char *
crm_provider_string(yajl_val root, const char **path)
{
    yajl_val  v;

    v = yajl_tree_get(root, path, yajl_t_string);

    return v != NULL ? v->u.string : NULL;
}
