/*
 * Responses the glue writes itself; see ngx_http_crm_reply.h.
 */

#include "ngx_http_crm_reply.h"


static ngx_int_t  ngx_http_crm_request_id_index = NGX_ERROR;


ngx_int_t
ngx_http_crm_reply_init(ngx_conf_t *cf)
{
    ngx_str_t  name = ngx_string("request_id");

    ngx_http_crm_request_id_index = ngx_http_get_variable_index(cf, &name);

    return ngx_http_crm_request_id_index == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


const char *
ngx_http_crm_request_id(ngx_http_request_t *r)
{
    u_char                     *id;
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *v;

    v = ngx_http_get_indexed_variable(r, ngx_http_crm_request_id_index);
    if (v == NULL || v->not_found || v->len == 0) {
        return NULL;
    }

    h = ngx_http_crm_header(&r->headers_out.headers, "X-Request-Id");
    if (h != NULL) {
        return (const char *) h->value.data;
    }

    id = ngx_pnalloc(r->pool, v->len + 1);
    if (id == NULL) {
        return NULL;
    }

    ngx_memcpy(id, v->data, v->len);
    id[v->len] = '\0';

    if (ngx_http_crm_add_header(r, "X-Request-Id", (const char *) id)
        != NGX_OK)
    {
        return NULL;
    }

    return (const char *) id;
}


ngx_table_elt_t *
ngx_http_crm_header(ngx_list_t *headers, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        /* a header whose hash is 0 was deleted */
        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_crm_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


ngx_int_t
ngx_http_crm_problem(ngx_http_request_t *r, crm_status_e code,
    const char *detail)
{
    char         *json;
    u_char       *body;
    size_t        len;
    crm_error_t   err;

    ngx_memzero(&err, sizeof(crm_error_t));
    crm_error_set(&err, code, NULL, "%s", detail);

    if (crm_problem_render(&err, ngx_http_crm_request_id(r), &json, &len)
        != CRM_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        free(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, json, len);
    free(json);

    if ((code == CRM_E_UNAVAILABLE || code == CRM_E_RATE_LIMITED)
        && ngx_http_crm_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_crm_add_header(r, "Cache-Control", "no-store") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_crm_send(r, crm_error_http_status(code),
                             "application/problem+json", body, len);
}


ngx_int_t
ngx_http_crm_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *content_type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (content_type != NULL) {
        r->headers_out.content_type.data = (u_char *) content_type;
        r->headers_out.content_type.len = ngx_strlen(content_type);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
