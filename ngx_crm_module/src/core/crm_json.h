/*
 * JSON in and out.  Parsing is yajl's tree parser behind two guards that
 * yajl lacks: a body-size cap and a nesting-depth cap checked before yajl
 * sees the bytes (yajl_tree_free recurses and overflows the stack on very
 * deep documents).  Decoding maps a top-level object onto a C struct from a
 * field table, rejecting unknown, duplicate, missing and mistyped fields.
 */

#ifndef CRM_JSON_H
#define CRM_JSON_H

#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "crm_error.h"
#include "crm_str.h"


typedef struct {
    size_t    max_body;     /* bytes; larger bodies are CRM_E_TOO_LARGE */
    unsigned  max_depth;    /* nesting of arrays/objects; deeper is 400 */
} crm_json_limits_t;


/*
 * Parses buf[0..len) (need not be NUL-terminated).  Errors: CRM_E_TOO_LARGE
 * over max_body; CRM_E_MALFORMED for an empty body, a NUL byte, nesting over
 * max_depth, or anything yajl rejects (with yajl's message, no input echo).
 * On success *root must be released with yajl_tree_free().
 */
crm_status_e crm_json_parse(const char *buf, size_t len,
    const crm_json_limits_t *limits, yajl_val *root, crm_error_t *err);


typedef enum {
    CRM_JSON_STRING,        /* crm_json_value_t.str */
    CRM_JSON_BOOL,          /* crm_json_value_t.boolean */
    CRM_JSON_INT,           /* crm_json_value_t.num, integral numbers only */
    CRM_JSON_OBJECT         /* crm_json_value_t.obj, for a table of its own */
} crm_json_kind_e;


typedef struct {
    unsigned    present:1;  /* the key was in the object */
    unsigned    null:1;     /* its value was null (only if nullable) */
    crm_str_t   str;        /* points into the yajl tree */
    int64_t     num;
    int         boolean;
    yajl_val    obj;        /* points into the yajl tree */
} crm_json_value_t;


typedef struct {
    const char       *name;
    crm_json_kind_e   kind;
    unsigned          required:1;
    unsigned          nullable:1;
    size_t            min_len;      /* strings: UTF-8 characters */
    size_t            max_len;      /* strings: UTF-8 characters, 0 = none */
    int64_t           min_num;      /* integers, used when min_num < max_num */
    int64_t           max_num;
    size_t            offset;       /* of the crm_json_value_t in *out */
    unsigned          multiline:1;  /* strings: tab and newline allowed */
} crm_json_field_t;


/*
 * Decodes root, which must be an object, into out according to fields.
 * Every failure is CRM_E_INVALID with err->field naming the key:
 * not an object ("body"), unknown key, duplicate key, missing required key,
 * wrong type, string length or integer range out of bounds, or a string
 * holding control characters.
 */
crm_status_e crm_json_decode(yajl_val root, const crm_json_field_t *fields,
    size_t nfields, void *out, crm_error_t *err);

/* crm_json_decode() with a field table declared as an array */
#define crm_json_decode_table(root, table, out, err)                          \
    crm_json_decode(root, table, sizeof(table) / sizeof((table)[0]), out, err)


/* a generator that validates UTF-8 and does not beautify; NULL on ENOMEM */
yajl_gen crm_json_gen_new(void);

/* key/value helpers: val == NULL writes null; return 0 or -1 */
int crm_json_gen_key(yajl_gen g, const char *key);
int crm_json_gen_kv_str(yajl_gen g, const char *key, const char *val);
int crm_json_gen_kv_strn(yajl_gen g, const char *key, const char *val,
    size_t len);
int crm_json_gen_kv_int(yajl_gen g, const char *key, int64_t val);
int crm_json_gen_kv_bool(yajl_gen g, const char *key, int val);

/* writes a parsed value (from crm_json_parse(), so of bounded depth) */
int crm_json_gen_value(yajl_gen g, yajl_val v);

/*
 * Copies the generated document into a malloc'd NUL-terminated buffer and
 * frees g in every case.  Returns CRM_OK or CRM_E_INTERNAL.
 */
crm_status_e crm_json_gen_finish(yajl_gen g, char **out, size_t *len);

#endif /* CRM_JSON_H */
