/*
 * CORS for browsers that call the API from other origins.
 *
 * Where crm_cors_origins allows origins, every answer of the location
 * varies by Origin, and an answer to an allowed origin says so
 * (Access-Control-Allow-Origin, and -Credentials when on), whatever its
 * status and whoever wrote it: the module, or nginx itself (413, 429),
 * since browsers hide from scripts any answer without it.  A preflight
 * (OPTIONS with Access-Control-Request-Method) needs no credential: its
 * origin, method and headers are checked against the lists, and its path
 * routed for the method it asks about.
 */

#include "ngx_http_crm_cors.h"
#include "ngx_http_crm_reply.h"


#define ngx_http_crm_cors_alnum(c)                                            \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z')                 \
     || ((c) >= 'A' && (c) <= 'Z'))


static ngx_int_t ngx_http_crm_cors_header_filter(ngx_http_request_t *r);
static ngx_uint_t ngx_http_crm_cors_allowed(ngx_http_crm_cors_conf_t *cc,
    ngx_str_t *origin);
static ngx_str_t *ngx_http_crm_cors_listed(ngx_array_t *list, u_char *name,
    size_t len);
static ngx_array_t *ngx_http_crm_cors_defaults(ngx_conf_t *cf,
    const char *const *names);
static ngx_int_t ngx_http_crm_cors_join(ngx_conf_t *cf, ngx_array_t *list,
    ngx_str_t *text);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


const char *const  ngx_http_crm_cors_methods[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL
};

static const char *const  ngx_http_crm_cors_default_methods[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", NULL
};

static const char *const  ngx_http_crm_cors_default_headers[] = {
    "Authorization", "Content-Type", "Idempotency-Key", "If-Match",
    "If-None-Match", NULL
};

static const char *const  ngx_http_crm_cors_default_expose[] = {
    "ETag", "Location", "Retry-After", "X-Request-Id", "WWW-Authenticate",
    NULL
};


ngx_int_t
ngx_http_crm_cors_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_crm_cors_header_filter;

    return NGX_OK;
}


void
ngx_http_crm_cors_create(ngx_http_crm_cors_conf_t *conf)
{
    conf->origins = NGX_CONF_UNSET_PTR;
    conf->methods = NGX_CONF_UNSET_PTR;
    conf->headers = NGX_CONF_UNSET_PTR;
    conf->expose = NGX_CONF_UNSET_PTR;
    conf->credentials = NGX_CONF_UNSET;
    conf->max_age = NGX_CONF_UNSET;
}


char *
ngx_http_crm_cors_merge(ngx_conf_t *cf, ngx_http_crm_cors_conf_t *prev,
    ngx_http_crm_cors_conf_t *conf)
{
    if (conf->origins == NGX_CONF_UNSET_PTR) {
        conf->origins = prev->origins;
        conf->any = prev->any;
    }

    ngx_conf_merge_ptr_value(conf->origins, NULL, NULL);
    ngx_conf_merge_ptr_value(conf->methods, prev->methods, NULL);
    ngx_conf_merge_ptr_value(conf->headers, prev->headers, NULL);
    ngx_conf_merge_ptr_value(conf->expose, prev->expose, NULL);
    ngx_conf_merge_value(conf->credentials, prev->credentials, 0);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 600);

    if (conf->origins == NULL) {
        return NGX_CONF_OK;
    }

    /*
     * "*" lets every page on the web read the answers; with credentials,
     * the user's own: browsers refuse it, and so does nginx -t
     */
    if (conf->any && conf->credentials) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"crm_cors_credentials on\" cannot be used "
                           "with \"crm_cors_origins *\": name the origins "
                           "that may send credentials");
        return NGX_CONF_ERROR;
    }

    if (conf->methods == NULL) {
        conf->methods = ngx_http_crm_cors_defaults(cf,
                            ngx_http_crm_cors_default_methods);
    }

    if (conf->headers == NULL) {
        conf->headers = ngx_http_crm_cors_defaults(cf,
                            ngx_http_crm_cors_default_headers);
    }

    if (conf->expose == NULL) {
        conf->expose = ngx_http_crm_cors_defaults(cf,
                           ngx_http_crm_cors_default_expose);
    }

    if (conf->methods == NULL || conf->headers == NULL
        || conf->expose == NULL
        || ngx_http_crm_cors_join(cf, conf->methods, &conf->methods_text)
           != NGX_OK
        || ngx_http_crm_cors_join(cf, conf->headers, &conf->headers_text)
           != NGX_OK
        || ngx_http_crm_cors_join(cf, conf->expose, &conf->expose_text)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->max_age_text.data = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN + 1);
    if (conf->max_age_text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->max_age_text.len = ngx_sprintf(conf->max_age_text.data, "%T%Z",
                                         conf->max_age)
                             - conf->max_age_text.data - 1;

    return NGX_CONF_OK;
}


/* "crm_cors_origins origin ...": scheme://host[:port], *.suffix or "*" */
char *
ngx_http_crm_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_crm_cors_conf_t  *cc = (void *) ((char *) conf + cmd->offset);

    ngx_str_t     *value;
    ngx_uint_t     i, j;
    crm_origin_t  *o, *seen;

    if (cc->origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cc->origins = ngx_array_create(cf->pool, cf->args->nelts,
                                   sizeof(crm_origin_t));
    if (cc->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 1 && value[i].data[0] == '*') {
            if (cf->args->nelts > 2) {
                return "\"*\" cannot be combined with other origins";
            }

            cc->any = 1;
            continue;
        }

        o = ngx_array_push(cc->origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        if (crm_origin_parse((crm_str_t) { (const char *) value[i].data,
                                           value[i].len }, 1, o)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": expected "
                               "http(s)://host[:port], "
                               "https://*.domain or \"*\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        seen = cc->origins->elts;

        for (j = 0; j + 1 < cc->origins->nelts; j++) {
            if (seen[j].pattern == o->pattern && seen[j].len == o->len
                && ngx_strncmp(seen[j].text, o->text, o->len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate origin \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    return NGX_CONF_OK;
}


/* crm_cors_methods, crm_cors_headers, crm_cors_expose_headers */
char *
ngx_http_crm_cors_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **list = (void *) ((char *) conf + cmd->offset);

    u_char              *p;
    ngx_str_t           *value, *name;
    ngx_uint_t           i, k, methods;
    const char *const   *known;

    if (*list != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *list = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (*list == NULL) {
        return NGX_CONF_ERROR;
    }

    /* crm_cors_methods names its list of known methods */
    methods = cmd->post != NULL;
    known = cmd->post;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (methods) {
            for (k = 0; known[k] != NULL; k++) {
                if (ngx_strcmp(value[i].data, known[k]) == 0) {
                    break;
                }
            }

            if (known[k] == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown method \"%V\": expected GET, "
                                   "HEAD, POST, PUT, PATCH or DELETE",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

        } else {
            for (p = value[i].data; p < value[i].data + value[i].len; p++) {
                if (!(ngx_http_crm_cors_alnum(*p)
                      || ngx_strlchr((u_char *) "!#$%&'*+-.^_`|~",
                                     (u_char *) "!#$%&'*+-.^_`|~" + 15, *p)))
                {
                    break;
                }
            }

            if (value[i].len == 0 || p < value[i].data + value[i].len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid header name \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (ngx_http_crm_cors_listed(*list, value[i].data, value[i].len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is listed twice", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(*list);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_crm_cors_is_preflight(ngx_http_request_t *r, ngx_str_t *method)
{
    ngx_table_elt_t          *h;
    ngx_http_crm_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);

    if (lcf->cors.origins == NULL || r->method != NGX_HTTP_OPTIONS
        || ngx_http_crm_header(&r->headers_in.headers, "Origin") == NULL)
    {
        return 0;
    }

    h = ngx_http_crm_header(&r->headers_in.headers,
                            "Access-Control-Request-Method");
    if (h == NULL) {
        return 0;
    }

    if (method != NULL) {
        *method = h->value;
    }

    return 1;
}


ngx_int_t
ngx_http_crm_cors_preflight(ngx_http_request_t *r, crm_call_t *call)
{
    u_char                    *p, *last, *name;
    ngx_str_t                  method;
    ngx_table_elt_t           *origin, *h;
    ngx_http_crm_loc_conf_t   *lcf;
    ngx_http_crm_cors_conf_t  *cc;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);
    cc = &lcf->cors;

    origin = ngx_http_crm_header(&r->headers_in.headers, "Origin");
    (void) ngx_http_crm_cors_is_preflight(r, &method);

    if (!ngx_http_crm_cors_allowed(cc, &origin->value)) {
        (void) crm_call_fail(call, CRM_E_FORBIDDEN,
                             "origin %.*s is not allowed",
                             (int) ngx_min(origin->value.len, 200),
                             origin->value.data);
        return NGX_DECLINED;
    }

    if (ngx_http_crm_cors_listed(cc->methods, method.data, method.len)
        == NULL)
    {
        (void) crm_call_fail(call, CRM_E_FORBIDDEN,
                             "method %.*s is not allowed from other origins",
                             (int) ngx_min(method.len, 32), method.data);
        return NGX_DECLINED;
    }

    h = ngx_http_crm_header(&r->headers_in.headers,
                            "Access-Control-Request-Headers");

    if (h != NULL) {
        p = h->value.data;
        last = p + h->value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            name = p;

            while (p < last && *p != ',' && *p != ' ' && *p != '\t') {
                p++;
            }

            if (p > name
                && ngx_http_crm_cors_listed(cc->headers, name, p - name)
                   == NULL)
            {
                (void) crm_call_fail(call, CRM_E_FORBIDDEN,
                                     "header %.*s is not allowed from "
                                     "other origins",
                                     (int) ngx_min(p - name, 64), name);
                return NGX_DECLINED;
            }
        }
    }

    if (ngx_http_crm_add_header(r, "Access-Control-Allow-Methods",
                                (char *) cc->methods_text.data) != NGX_OK
        || ngx_http_crm_add_header(r, "Access-Control-Allow-Headers",
                                   (char *) cc->headers_text.data) != NGX_OK
        || ngx_http_crm_add_header(r, "Access-Control-Max-Age",
                                   (char *) cc->max_age_text.data) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_crm_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL, 0);
}


static ngx_int_t
ngx_http_crm_cors_header_filter(ngx_http_request_t *r)
{
    u_char                    *echo;
    ngx_uint_t                 preflight;
    ngx_table_elt_t           *origin;
    ngx_http_crm_loc_conf_t   *lcf;
    ngx_http_crm_cors_conf_t  *cc;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_crm_module);
    cc = &lcf->cors;

    if (cc->origins == NULL || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    preflight = ngx_http_crm_cors_is_preflight(r, NULL);

    /* caches must keep one answer per origin */
    if (ngx_http_crm_add_header(r, "Vary",
            preflight ? "Origin, Access-Control-Request-Method, "
                        "Access-Control-Request-Headers"
                      : "Origin")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    origin = ngx_http_crm_header(&r->headers_in.headers, "Origin");

    if (origin == NULL || !ngx_http_crm_cors_allowed(cc, &origin->value)) {
        return ngx_http_next_header_filter(r);
    }

    /* the origin as the browser sent it, which is what it compares */
    echo = ngx_pnalloc(r->pool, origin->value.len + 1);
    if (echo == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(echo, origin->value.data, origin->value.len) = '\0';

    if (ngx_http_crm_add_header(r, "Access-Control-Allow-Origin",
                                cc->any ? "*" : (char *) echo)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cc->credentials
        && ngx_http_crm_add_header(r, "Access-Control-Allow-Credentials",
                                   "true")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!preflight && cc->expose_text.len
        && ngx_http_crm_add_header(r, "Access-Control-Expose-Headers",
                                   (char *) cc->expose_text.data)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_uint_t
ngx_http_crm_cors_allowed(ngx_http_crm_cors_conf_t *cc, ngx_str_t *origin)
{
    ngx_uint_t     i;
    crm_origin_t   o, *allowed;

    if (cc->any) {
        return 1;
    }

    /* "null" and anything but an origin fail to parse */
    if (crm_origin_parse((crm_str_t) { (const char *) origin->data,
                                       origin->len }, 0, &o)
        != 0)
    {
        return 0;
    }

    allowed = cc->origins->elts;

    for (i = 0; i < cc->origins->nelts; i++) {
        if (crm_origin_matches(&allowed[i], &o)) {
            return 1;
        }
    }

    return 0;
}


/* the list's entry for name, compared without case; NULL when absent */
static ngx_str_t *
ngx_http_crm_cors_listed(ngx_array_t *list, u_char *name, size_t len)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (s[i].len == len && ngx_strncasecmp(s[i].data, name, len) == 0) {
            return &s[i];
        }
    }

    return NULL;
}


static ngx_array_t *
ngx_http_crm_cors_defaults(ngx_conf_t *cf, const char *const *names)
{
    ngx_str_t    *s;
    ngx_uint_t    i;
    ngx_array_t  *list;

    list = ngx_array_create(cf->pool, 8, sizeof(ngx_str_t));
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; names[i] != NULL; i++) {
        s = ngx_array_push(list);
        if (s == NULL) {
            return NULL;
        }

        s->data = (u_char *) names[i];
        s->len = ngx_strlen(names[i]);
    }

    return list;
}


/* "a, b, c", zero-terminated for ngx_http_crm_add_header() */
static ngx_int_t
ngx_http_crm_cors_join(ngx_conf_t *cf, ngx_array_t *list, ngx_str_t *text)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = list->elts;
    len = 1;

    for (i = 0; i < list->nelts; i++) {
        len += s[i].len + 2;
    }

    text->data = ngx_pnalloc(cf->pool, len);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    p = text->data;

    for (i = 0; i < list->nelts; i++) {
        if (i > 0) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = ngx_cpymem(p, s[i].data, s[i].len);
    }

    *p = '\0';
    text->len = p - text->data;

    return NGX_OK;
}
