/*
 * nginx answers some requests of an API location itself, before or instead
 * of the module: a body over the limit (413, checked by nginx against
 * crm_max_body_size), limit_req (429), a failure inside nginx (500).  Its
 * answers are HTML pages; API clients parse problem+json.  This filter
 * replaces those pages, in API locations only, by the problem document for
 * the same status.  The module's own responses never pass through here:
 * they do not set r->err_status.
 */

#include "ngx_http_crm_error_filter.h"
#include "ngx_http_crm_reply.h"


static ngx_int_t ngx_http_crm_error_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_crm_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_crm_error_render(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_uint_t ngx_http_crm_error_replaced(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_crm_problem_type =
    ngx_string("application/problem+json");


ngx_int_t
ngx_http_crm_error_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_crm_error_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_crm_error_body_filter;

    return NGX_OK;
}


/*
 * A problem document for nginx's own error status, in the request pool.
 * Both filters call it, the header filter for the length and the body
 * filter for the bytes: the module's context slot may already hold the
 * request's call, so the document is rendered again rather than kept.
 */
static ngx_int_t
ngx_http_crm_error_render(ngx_http_request_t *r, ngx_str_t *body)
{
    char                     *json;
    size_t                    len;
    crm_error_t               err;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    ngx_memzero(&err, sizeof(crm_error_t));
    err.code = crm_error_for_http_status(r->err_status);

    if (err.code == CRM_E_TOO_LARGE) {
        crm_error_set(&err, err.code, NULL,
                      "request body is larger than %zu bytes",
                      lcf->max_body_size);
    }

    if (crm_problem_render(&err, ngx_http_crm_request_id(r), &json, &len)
        != CRM_OK)
    {
        return NGX_ERROR;
    }

    body->data = ngx_pnalloc(r->pool, len);
    if (body->data == NULL) {
        free(json);
        return NGX_ERROR;
    }

    ngx_memcpy(body->data, json, len);
    body->len = len;
    free(json);

    return NGX_OK;
}


static ngx_int_t
ngx_http_crm_error_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                 body;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    if (!lcf->api
        || r != r->main
        || r->err_status < NGX_HTTP_BAD_REQUEST
        || r->headers_out.content_type.len != sizeof("text/html") - 1
        || ngx_strncmp(r->headers_out.content_type.data, "text/html",
                       sizeof("text/html") - 1) != 0
        || crm_error_for_http_status(r->err_status) == CRM_OK)
    {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_crm_error_render(r, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    r->headers_out.content_type = ngx_http_crm_problem_type;
    r->headers_out.content_type_len = ngx_http_crm_problem_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    /* the same headers as the module's own problem documents */
    if (ngx_http_crm_add_header(r, "Cache-Control", "no-store") != NGX_OK) {
        return NGX_ERROR;
    }

    if ((r->err_status == NGX_HTTP_SERVICE_UNAVAILABLE
         || r->err_status == NGX_HTTP_TOO_MANY_REQUESTS)
        && ngx_http_crm_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_uint_t
ngx_http_crm_error_replaced(ngx_http_request_t *r)
{
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    return lcf->api
           && r == r->main
           && r->err_status >= NGX_HTTP_BAD_REQUEST
           && r->headers_out.content_type.data
              == ngx_http_crm_problem_type.data;
}


/* drops nginx's page and sends the document instead, with its last buffer */
static ngx_int_t
ngx_http_crm_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t    *b;
    ngx_str_t     body;
    ngx_uint_t    last;
    ngx_chain_t  *cl, out;

    if (in == NULL || !ngx_http_crm_error_replaced(r)) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
    }

    if (!last) {
        return NGX_OK;
    }

    if (ngx_http_crm_error_render(r, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
