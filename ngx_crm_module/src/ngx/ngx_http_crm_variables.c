/*
 * Variables about a request of a crm_api location.  They are not
 * cacheable: a call learns more as it goes (an identity provider's user
 * becomes an account, a role comes from the database), and a log line
 * should say what the call ended with.
 *
 * $crm_account_id before the content handler (limit_req runs in the
 * preaccess phase) makes the request's call and verifies its credential
 * there; the content handler goes on with that call.  Once the response
 * has begun no call is made: a request nginx answered itself has none.
 */

#include "ngx_http_crm_api.h"
#include "ngx_http_crm_variables.h"


typedef enum {
    NGX_HTTP_CRM_VAR_ACCOUNT_ID = 0,
    NGX_HTTP_CRM_VAR_ROLE,
    NGX_HTTP_CRM_VAR_ROUTE,
    NGX_HTTP_CRM_VAR_STATUS_DETAIL
} ngx_http_crm_variable_e;


static ngx_int_t ngx_http_crm_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static crm_call_t *ngx_http_crm_variable_call(ngx_http_request_t *r);
static ngx_int_t ngx_http_crm_variable_account(ngx_http_request_t *r,
    crm_call_t *call, ngx_str_t *value);
static const char *ngx_http_crm_variable_role(crm_call_t *call);


static ngx_http_variable_t  ngx_http_crm_variables[] = {

    { ngx_string("crm_account_id"), NULL, ngx_http_crm_variable,
      NGX_HTTP_CRM_VAR_ACCOUNT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("crm_role"), NULL, ngx_http_crm_variable,
      NGX_HTTP_CRM_VAR_ROLE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("crm_route"), NULL, ngx_http_crm_variable,
      NGX_HTTP_CRM_VAR_ROUTE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("crm_status_detail"), NULL, ngx_http_crm_variable,
      NGX_HTTP_CRM_VAR_STATUS_DETAIL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_crm_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_crm_variables; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t                 value;
    crm_call_t               *call;
    const char               *text;
    const crm_route_t        *route;
    ngx_http_crm_loc_conf_t  *lcf;

    v->not_found = 1;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    if (!lcf->api) {
        return NGX_OK;
    }

    text = NULL;
    ngx_str_null(&value);

    switch (data) {

    case NGX_HTTP_CRM_VAR_ACCOUNT_ID:
        call = ngx_http_crm_variable_call(r);
        if (call != NULL
            && ngx_http_crm_variable_account(r, call, &value) != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    case NGX_HTTP_CRM_VAR_ROLE:
        call = ngx_http_crm_variable_call(r);
        if (call != NULL) {
            text = ngx_http_crm_variable_role(call);
        }

        break;

    case NGX_HTTP_CRM_VAR_ROUTE:
        route = ngx_http_crm_api_route(r);
        if (route != NULL) {
            text = route->pattern;
        }

        break;

    default: /* NGX_HTTP_CRM_VAR_STATUS_DETAIL */
        call = ngx_http_get_module_ctx(r, ngx_http_crm_module);
        if (call == NULL) {
            break;
        }

        if (call->rc == CRM_OK) {
            text = call->outcome;
            break;
        }

        value.data = ngx_pnalloc(r->pool, CRM_ERROR_DETAIL_SIZE);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        crm_error_detail(&call->error, (char *) value.data,
                         CRM_ERROR_DETAIL_SIZE);
        value.len = ngx_strlen(value.data);

        break;
    }

    if (text != NULL) {
        value.data = (u_char *) text;
        value.len = ngx_strlen(text);
    }

    if (value.len == 0) {
        return NGX_OK;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The request's call: made (or made again, after a rewrite) only while
 * the request is still to run
 */
static crm_call_t *
ngx_http_crm_variable_call(ngx_http_request_t *r)
{
    crm_call_t  *call;

    call = ngx_http_get_module_ctx(r, ngx_http_crm_module);

    /* nginx answered, or the client left (444, 499): nothing to run */
    if (r->header_sent || r->headers_out.status || r->err_status
        || r != r->main)
    {
        return call;
    }

    return ngx_http_crm_api_call(r);
}


/*
 * The account a verified token names: the gateway's own tokens name it;
 * an identity provider's names its user, "idp:<sub>", until the call has
 * found the user's account
 */
static ngx_int_t
ngx_http_crm_variable_account(ngx_http_request_t *r, crm_call_t *call,
    ngx_str_t *value)
{
    size_t  len;

    if (call->account_id[0] != '\0') {
        value->data = (u_char *) call->account_id;
        value->len = ngx_strlen(call->account_id);
        return NGX_OK;
    }

    if (!call->idp || call->refusal != NULL) {
        return NGX_OK;
    }

    len = ngx_strlen(call->claims.sub);

    value->data = ngx_pnalloc(r->pool, sizeof("idp:") - 1 + len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_cpymem(ngx_cpymem(value->data, "idp:", 4),
                            call->claims.sub, len)
                 - value->data;

    return NGX_OK;
}


/* the database's role once the call has run; until then the token's */
static const char *
ngx_http_crm_variable_role(crm_call_t *call)
{
    if (call->ran && call->caller != NULL) {
        return crm_role_name(call->caller->role);
    }

    if (call->idp) {
        return call->refusal == NULL ? "merchant" : NULL;
    }

    return call->account_id[0] != '\0' ? call->claims.role : NULL;
}
