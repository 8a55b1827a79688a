/*
 * JSON in and out.
 *
 * Input goes through crm_json_scan() before yajl sees a byte: yajl builds
 * its tree without recursion but frees it recursively, and it accepts
 * comments in tree mode, so a linear pre-scan enforces the depth cap,
 * refuses comments, NUL bytes and "\u0000" escapes (yajl's tree keeps
 * strings NUL-terminated, so an escaped NUL would silently cut a value).
 * Output is yajl_gen with UTF-8 validation on.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_json.h"
#include "crm_validate.h"


static crm_status_e crm_json_scan(const char *buf, size_t len,
    unsigned max_depth, crm_error_t *err);
static const crm_json_field_t *crm_json_find_field(
    const crm_json_field_t *fields, size_t nfields, const char *key);
static void crm_json_key_field(const char *key, char *field, size_t size);
static crm_status_e crm_json_decode_value(const crm_json_field_t *f,
    yajl_val val, crm_json_value_t *v, crm_error_t *err);


crm_status_e
crm_json_parse(const char *buf, size_t len, const crm_json_limits_t *limits,
    yajl_val *root, crm_error_t *err)
{
    char          *copy, *nl;
    char           errbuf[128];
    crm_status_e   rc;

    *root = NULL;

    if (len > limits->max_body) {
        return crm_error_set(err, CRM_E_TOO_LARGE, NULL,
                             "request body is larger than %zu bytes",
                             limits->max_body);
    }

    rc = crm_json_scan(buf, len, limits->max_depth, err);
    if (rc != CRM_OK) {
        return rc;
    }

    /* yajl_tree_parse() takes a C string; the scan proved there is no NUL */
    copy = malloc(len + 1);
    if (copy == NULL) {
        crm_error_set(err, CRM_E_INTERNAL, NULL, "internal error");
        return crm_error_cause(err, "malloc(%zu) failed", len + 1);
    }

    memcpy(copy, buf, len);
    copy[len] = '\0';

    errbuf[0] = '\0';
    *root = yajl_tree_parse(copy, errbuf, sizeof(errbuf));

    free(copy);

    if (*root == NULL) {

        /* yajl's verbose message quotes the input after the first line */
        nl = strchr(errbuf, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }

        if (errbuf[0] == '\0') {
            return crm_error_set(err, CRM_E_MALFORMED, NULL,
                                 "malformed JSON");
        }

        return crm_error_set(err, CRM_E_MALFORMED, NULL, "%s", errbuf);
    }

    return CRM_OK;
}


/*
 * One pass, no recursion: depth counts only brackets outside strings, so
 * "[" inside a string or after a backslash does not count and an attacker
 * cannot hide nesting in either.  A closing bracket at depth 0 is left for
 * yajl, which stops at it before any deeper input.
 */
static crm_status_e
crm_json_scan(const char *buf, size_t len, unsigned max_depth,
    crm_error_t *err)
{
    int            in_string, blank;
    size_t         i;
    unsigned       depth;
    unsigned char  c;

    depth = 0;
    in_string = 0;
    blank = 1;

    for (i = 0; i < len; i++) {
        c = (unsigned char) buf[i];

        if (c == '\0') {
            goto nul;
        }

        if (in_string) {

            if (c == '"') {
                in_string = 0;

            } else if (c == '\\') {

                if (len - i >= 6 && buf[i + 1] == 'u'
                    && memcmp(&buf[i + 2], "0000", 4) == 0)
                {
                    return crm_error_set(err, CRM_E_MALFORMED, NULL,
                                         "\\u0000 is not allowed in "
                                         "strings");
                }

                /* the escaped byte cannot end the string */
                i++;

                if (i < len && buf[i] == '\0') {
                    goto nul;
                }
            }

            continue;
        }

        switch (c) {

        case ' ':
        case '\t':
        case '\n':
        case '\r':
            continue;

        case '"':
            in_string = 1;
            break;

        case '{':
        case '[':
            if (++depth > max_depth) {
                return crm_error_set(err, CRM_E_MALFORMED, NULL,
                                     "JSON nesting is deeper than %u",
                                     max_depth);
            }
            break;

        case '}':
        case ']':
            if (depth > 0) {
                depth--;
            }
            break;

        case '/':
            return crm_error_set(err, CRM_E_MALFORMED, NULL,
                                 "comments are not allowed in JSON");

        default:
            break;
        }

        blank = 0;
    }

    if (blank) {
        return crm_error_set(err, CRM_E_MALFORMED, NULL,
                             "request body is empty");
    }

    return CRM_OK;

nul:

    return crm_error_set(err, CRM_E_MALFORMED, NULL,
                         "request body contains a NUL byte");
}


crm_status_e
crm_json_decode(yajl_val root, const crm_json_field_t *fields,
    size_t nfields, void *out, crm_error_t *err)
{
    char                     field[sizeof(err->field)];
    size_t                   i;
    yajl_val                 val;
    const char              *key;
    crm_status_e             rc;
    crm_json_value_t        *v;
    const crm_json_field_t  *f;

    /* "present" doubles as the duplicate detector, so start clean */
    for (i = 0; i < nfields; i++) {
        memset((char *) out + fields[i].offset, 0, sizeof(crm_json_value_t));
    }

    if (!YAJL_IS_OBJECT(root)) {
        return crm_error_set(err, CRM_E_INVALID, "body",
                             "must be a JSON object");
    }

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];
        val = root->u.object.values[i];

        f = crm_json_find_field(fields, nfields, key);
        if (f == NULL) {
            crm_json_key_field(key, field, sizeof(field));
            return crm_error_set(err, CRM_E_INVALID, field, "unknown field");
        }

        v = (crm_json_value_t *) ((char *) out + f->offset);

        if (v->present) {
            return crm_error_set(err, CRM_E_INVALID, f->name,
                                 "duplicate field");
        }

        v->present = 1;

        rc = crm_json_decode_value(f, val, v, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    for (i = 0; i < nfields; i++) {
        v = (crm_json_value_t *) ((char *) out + fields[i].offset);

        if (fields[i].required && !v->present) {
            return crm_error_set(err, CRM_E_INVALID, fields[i].name,
                                 "is required");
        }
    }

    return CRM_OK;
}


static const crm_json_field_t *
crm_json_find_field(const crm_json_field_t *fields, size_t nfields,
    const char *key)
{
    size_t  i;

    for (i = 0; i < nfields; i++) {
        if (strcmp(fields[i].name, key) == 0) {
            return &fields[i];
        }
    }

    return NULL;
}


/*
 * An unknown key is the client's text: it can be megabytes long or hold
 * bytes that are not UTF-8, and it goes back in the problem body, so it is
 * cut to the field buffer and reduced to printable ASCII.
 */
static void
crm_json_key_field(const char *key, char *field, size_t size)
{
    size_t         i, len, n;
    unsigned char  c;

    len = strlen(key);

    if (len == 0) {
        (void) snprintf(field, size, "(empty)");
        return;
    }

    n = len < size ? len : size - 4;

    for (i = 0; i < n; i++) {
        c = (unsigned char) key[i];
        field[i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }

    if (n < len) {
        memcpy(&field[n], "...", 3);
        n += 3;
    }

    field[n] = '\0';
}


static crm_status_e
crm_json_decode_value(const crm_json_field_t *f, yajl_val val,
    crm_json_value_t *v, crm_error_t *err)
{
    const char  *type;

    switch (f->kind) {
    case CRM_JSON_STRING:
        type = "must be a string";
        break;
    case CRM_JSON_BOOL:
        type = "must be a boolean";
        break;
    case CRM_JSON_OBJECT:
        type = "must be an object";
        break;
    default:
        type = "must be an integer";
        break;
    }

    if (YAJL_IS_NULL(val)) {

        if (!f->nullable) {
            return crm_error_set(err, CRM_E_INVALID, f->name, "%s", type);
        }

        v->null = 1;
        return CRM_OK;
    }

    switch (f->kind) {

    case CRM_JSON_STRING:
        if (!YAJL_IS_STRING(val)) {
            break;
        }

        v->str.data = val->u.string;
        v->str.len = strlen(val->u.string);

        return crm_text_check(v->str, f->name, f->min_len, f->max_len,
                              f->multiline, err);

    case CRM_JSON_BOOL:
        if (!YAJL_IS_TRUE(val) && !YAJL_IS_FALSE(val)) {
            break;
        }

        v->boolean = YAJL_IS_TRUE(val);
        return CRM_OK;

    case CRM_JSON_INT:

        /* yajl marks 1.0, 1e3 and out-of-range numbers as not integral */
        if (!YAJL_IS_INTEGER(val)) {
            break;
        }

        v->num = YAJL_GET_INTEGER(val);

        if (f->min_num < f->max_num
            && (v->num < f->min_num || v->num > f->max_num))
        {
            return crm_error_set(err, CRM_E_INVALID, f->name,
                                 "must be between %lld and %lld",
                                 (long long) f->min_num,
                                 (long long) f->max_num);
        }

        return CRM_OK;

    case CRM_JSON_OBJECT:
        if (!YAJL_IS_OBJECT(val)) {
            break;
        }

        v->obj = val;
        return CRM_OK;
    }

    return crm_error_set(err, CRM_E_INVALID, f->name, "%s", type);
}


yajl_gen
crm_json_gen_new(void)
{
    yajl_gen  g;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NULL;
    }

    if (!yajl_gen_config(g, yajl_gen_validate_utf8, 1)) {
        yajl_gen_free(g);
        return NULL;
    }

    return g;
}


int
crm_json_gen_key(yajl_gen g, const char *key)
{
    if (yajl_gen_string(g, (const unsigned char *) key, strlen(key))
        != yajl_gen_status_ok)
    {
        return -1;
    }

    return 0;
}


int
crm_json_gen_kv_str(yajl_gen g, const char *key, const char *val)
{
    return crm_json_gen_kv_strn(g, key, val, val != NULL ? strlen(val) : 0);
}


int
crm_json_gen_kv_strn(yajl_gen g, const char *key, const char *val,
    size_t len)
{
    yajl_gen_status  st;

    if (crm_json_gen_key(g, key) != 0) {
        return -1;
    }

    if (val == NULL) {
        st = yajl_gen_null(g);

    } else {
        st = yajl_gen_string(g, (const unsigned char *) val, len);
    }

    return st == yajl_gen_status_ok ? 0 : -1;
}


int
crm_json_gen_kv_int(yajl_gen g, const char *key, int64_t val)
{
    if (crm_json_gen_key(g, key) != 0) {
        return -1;
    }

    if (yajl_gen_integer(g, (long long) val) != yajl_gen_status_ok) {
        return -1;
    }

    return 0;
}


int
crm_json_gen_kv_bool(yajl_gen g, const char *key, int val)
{
    if (crm_json_gen_key(g, key) != 0) {
        return -1;
    }

    if (yajl_gen_bool(g, val != 0) != yajl_gen_status_ok) {
        return -1;
    }

    return 0;
}


int
crm_json_gen_value(yajl_gen g, yajl_val v)
{
    size_t  i;

    switch (v->type) {

    case yajl_t_string:
        return yajl_gen_string(g, (const unsigned char *) v->u.string,
                               strlen(v->u.string)) == yajl_gen_status_ok
               ? 0 : -1;

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r))
               == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_true:
    case yajl_t_false:
        return yajl_gen_bool(g, v->type == yajl_t_true) == yajl_gen_status_ok
               ? 0 : -1;

    case yajl_t_null:
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_array:
        if (yajl_gen_array_open(g) != yajl_gen_status_ok) {
            return -1;
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (crm_json_gen_value(g, v->u.array.values[i]) != 0) {
                return -1;
            }
        }

        return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;

    case yajl_t_object:
        if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
            return -1;
        }

        for (i = 0; i < v->u.object.len; i++) {
            if (crm_json_gen_key(g, v->u.object.keys[i]) != 0
                || crm_json_gen_value(g, v->u.object.values[i]) != 0)
            {
                return -1;
            }
        }

        return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;

    default:
        return -1;
    }
}


crm_status_e
crm_json_gen_finish(yajl_gen g, char **out, size_t *len)
{
    char                 *p;
    size_t                n;
    crm_status_e          rc;
    const unsigned char  *buf;

    *out = NULL;
    *len = 0;

    if (g == NULL) {
        return CRM_E_INTERNAL;
    }

    rc = CRM_E_INTERNAL;

    if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok) {
        goto done;
    }

    p = malloc(n + 1);
    if (p == NULL) {
        goto done;
    }

    memcpy(p, buf, n);
    p[n] = '\0';

    *out = p;
    *len = n;
    rc = CRM_OK;

done:

    yajl_gen_free(g);

    return rc;
}
