/*
 * crm_json: the size and depth guards in front of yajl, the field-table
 * decoder and the generator helpers.
 */

#include <stddef.h>

#include "crm_check.h"
#include "crm_json.h"


typedef struct {
    crm_json_value_t  name;
    crm_json_value_t  email;
    crm_json_value_t  age;
    crm_json_value_t  active;
    crm_json_value_t  notes;
    crm_json_value_t  address;
} check_json_lead_t;


static crm_status_e check_json_parse(const char *text,
    const crm_json_limits_t *limits, crm_error_t *err);
static crm_status_e check_json_decode(const char *text,
    check_json_lead_t *lead, crm_error_t *err);
static void check_json_teardown(void);
static char *check_json_nested(size_t depth, size_t *len);
static Suite *check_json_suite(void);


static const crm_json_limits_t  check_json_limits = { 1024, 8 };

/* the tree of the last decode: the decoded strings point into it */
static yajl_val  check_json_root;

static const crm_json_field_t  check_json_fields[] = {
    { .name = "name", .kind = CRM_JSON_STRING, .required = 1,
      .min_len = 1, .max_len = 10,
      .offset = offsetof(check_json_lead_t, name) },
    { .name = "email", .kind = CRM_JSON_STRING, .nullable = 1,
      .offset = offsetof(check_json_lead_t, email) },
    { .name = "age", .kind = CRM_JSON_INT, .min_num = 0, .max_num = 150,
      .offset = offsetof(check_json_lead_t, age) },
    { .name = "active", .kind = CRM_JSON_BOOL,
      .offset = offsetof(check_json_lead_t, active) },
    { .name = "notes", .kind = CRM_JSON_STRING, .max_len = 20,
      .multiline = 1, .offset = offsetof(check_json_lead_t, notes) },
    { .name = "address", .kind = CRM_JSON_OBJECT,
      .offset = offsetof(check_json_lead_t, address) }
};


/* parses and frees; only the status and the error matter */
static crm_status_e
check_json_parse(const char *text, const crm_json_limits_t *limits,
    crm_error_t *err)
{
    yajl_val      root;
    crm_status_e  rc;

    rc = crm_json_parse(text, strlen(text), limits, &root, err);

    if (rc == CRM_OK) {
        ck_assert_ptr_nonnull(root);
        yajl_tree_free(root);

    } else {
        ck_assert_ptr_null(root);
    }

    return rc;
}


static crm_status_e
check_json_decode(const char *text, check_json_lead_t *lead,
    crm_error_t *err)
{
    check_json_teardown();

    ck_assert_int_eq(crm_json_parse(text, strlen(text), &check_json_limits,
                                    &check_json_root, err), CRM_OK);

    return crm_json_decode(check_json_root, check_json_fields,
                           sizeof(check_json_fields)
                           / sizeof(check_json_fields[0]),
                           lead, err);
}


static void
check_json_teardown(void)
{
    yajl_tree_free(check_json_root);
    check_json_root = NULL;
}


/* "[[[...]]]" with depth brackets each side */
static char *
check_json_nested(size_t depth, size_t *len)
{
    char  *p;

    p = malloc(2 * depth + 1);
    ck_assert_ptr_nonnull(p);

    memset(p, '[', depth);
    memset(p + depth, ']', depth);
    p[2 * depth] = '\0';

    *len = 2 * depth;

    return p;
}


START_TEST(test_json_parse_ok)
{
    yajl_val     root, v;
    crm_error_t  err;

    static const char  *path[] = { "a", NULL };
    static const char   text[] = "  {\"a\": [1, \"x\", true, null]}\n";

    ck_assert_int_eq(crm_json_parse(text, sizeof(text) - 1,
                                    &check_json_limits, &root, &err),
                     CRM_OK);

    v = yajl_tree_get(root, path, yajl_t_array);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->u.array.len, 4);

    yajl_tree_free(root);
}
END_TEST


START_TEST(test_json_parse_not_nul_terminated)
{
    yajl_val     root;
    crm_error_t  err;

    /* the parser must stop at len, not at a NUL that is not there */
    static const char  text[] = "{\"a\":1}garbage";

    ck_assert_int_eq(crm_json_parse(text, 7, &check_json_limits, &root,
                                    &err), CRM_OK);
    yajl_tree_free(root);
}
END_TEST


START_TEST(test_json_parse_size_limit)
{
    char               *buf;
    yajl_val            root;
    crm_error_t         err;
    crm_json_limits_t   limits = { 64, 8 };

    buf = malloc(limits.max_body + 2);
    ck_assert_ptr_nonnull(buf);

    /* exactly max_body bytes: fine */
    memset(buf, ' ', limits.max_body);
    memcpy(buf, "{\"a\":1}", 7);

    ck_assert_int_eq(crm_json_parse(buf, limits.max_body, &limits, &root,
                                    &err), CRM_OK);
    yajl_tree_free(root);

    /* one more byte: 413, before anything looks at the content */
    buf[limits.max_body] = ' ';

    ck_assert_int_eq(crm_json_parse(buf, limits.max_body + 1, &limits,
                                    &root, &err), CRM_E_TOO_LARGE);
    ck_assert_ptr_null(root);
    crm_check_error(&err, CRM_E_TOO_LARGE, "",
                    "request body is larger than 64 bytes");

    free(buf);
}
END_TEST


START_TEST(test_json_parse_empty_and_nul)
{
    yajl_val     root;
    crm_error_t  err;

    ck_assert_int_eq(check_json_parse("", &check_json_limits, &err),
                     CRM_E_MALFORMED);
    crm_check_error(&err, CRM_E_MALFORMED, "", "request body is empty");

    ck_assert_int_eq(check_json_parse(" \t\r\n ", &check_json_limits, &err),
                     CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "request body is empty");

    ck_assert_int_eq(crm_json_parse("{\"a\":\"x\0y\"}", 11,
                                    &check_json_limits, &root, &err),
                     CRM_E_MALFORMED);
    crm_check_error(&err, CRM_E_MALFORMED, "",
                    "request body contains a NUL byte");

    ck_assert_int_eq(crm_json_parse("{}\0", 3, &check_json_limits, &root,
                                    &err), CRM_E_MALFORMED);

    /* a NUL right after a backslash must not be skipped as "escaped" */
    ck_assert_int_eq(crm_json_parse("[\"\\\0\"]", 6, &check_json_limits,
                                    &root, &err), CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "request body contains a NUL byte");

    /* an escaped NUL would cut yajl's C strings */
    ck_assert_int_eq(check_json_parse("{\"a\":\"x\\u0000y\"}",
                                      &check_json_limits, &err),
                     CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "\\u0000 is not allowed in strings");

    /* other escapes are fine */
    ck_assert_int_eq(check_json_parse("{\"a\":\"x\\u0041\\\\u0000\"}",
                                      &check_json_limits, &err), CRM_OK);
}
END_TEST


START_TEST(test_json_parse_malformed)
{
    crm_error_t  err;

    static const char  *bad[] = {
        "{\"a\":",
        "{\"a\" 1}",
        "{\"topsecret\": x}",
        "[1,]",
        "{} {}",
        "'single'",
        "\xef\xbb\xbf{}",
        "{\"a\":\"\xff\"}",
        "]",
        "NaN"
    };

    size_t  i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_json_parse(bad[i], &check_json_limits, &err)
                      == CRM_E_MALFORMED, "accepted %s", bad[i]);

        /* yajl's short message: one line, no echo of the input */
        ck_assert_int_eq(err.code, CRM_E_MALFORMED);
        ck_assert_str_eq(err.field, "");
        ck_assert_uint_gt(strlen(err.message), 0);
        ck_assert_ptr_null(strchr(err.message, '\n'));
        ck_assert_ptr_null(strstr(err.message, "topsecret"));
    }

    ck_assert_int_eq(check_json_parse("{\"a\":1}}", &check_json_limits,
                                      &err), CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "parse error: trailing garbage");
}
END_TEST


START_TEST(test_json_parse_comments)
{
    crm_error_t  err;

    /* yajl's tree parser allows comments; we do not */
    ck_assert_int_eq(check_json_parse("{\"a\":1 /* x */}",
                                      &check_json_limits, &err),
                     CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "comments are not allowed in JSON");

    ck_assert_int_eq(check_json_parse("// x\n{}", &check_json_limits, &err),
                     CRM_E_MALFORMED);

    /* a slash inside a string is just a character */
    ck_assert_int_eq(check_json_parse("{\"url\":\"http://x/y\"}",
                                      &check_json_limits, &err), CRM_OK);
}
END_TEST


START_TEST(test_json_parse_depth)
{
    char               *buf;
    size_t              len;
    yajl_val            root;
    crm_error_t         err;
    crm_json_limits_t   limits = { 4 * 1024 * 1024, 32 };

    /* exactly max_depth: accepted */
    buf = check_json_nested(32, &len);
    ck_assert_int_eq(crm_json_parse(buf, len, &limits, &root, &err), CRM_OK);
    yajl_tree_free(root);
    free(buf);

    buf = check_json_nested(33, &len);
    ck_assert_int_eq(crm_json_parse(buf, len, &limits, &root, &err),
                     CRM_E_MALFORMED);
    crm_check_error(&err, CRM_E_MALFORMED, "",
                    "JSON nesting is deeper than 32");
    free(buf);

    /* far past anything yajl_tree_free() survives */
    buf = check_json_nested(10000, &len);
    ck_assert_int_eq(crm_json_parse(buf, len, &limits, &root, &err),
                     CRM_E_MALFORMED);
    ck_assert_ptr_null(root);
    free(buf);

    buf = check_json_nested(1000000, &len);
    ck_assert_int_eq(crm_json_parse(buf, len, &limits, &root, &err),
                     CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "JSON nesting is deeper than 32");
    free(buf);

    /* objects count too, mixed with arrays */
    ck_assert_int_eq(check_json_parse("{\"a\":[{\"b\":[]}]}",
                                      &(crm_json_limits_t) { 100, 4 },
                                      &err), CRM_OK);
    ck_assert_int_eq(check_json_parse("{\"a\":[{\"b\":[{}]}]}",
                                      &(crm_json_limits_t) { 100, 4 },
                                      &err), CRM_E_MALFORMED);
}
END_TEST


START_TEST(test_json_parse_depth_strings)
{
    crm_error_t         err;
    crm_json_limits_t   limits = { 1024, 2 };

    /* brackets inside strings do not nest */
    ck_assert_int_eq(check_json_parse("{\"a\":\"[[[[[[{{{{\"}", &limits,
                                      &err), CRM_OK);

    /* an escaped quote does not end the string */
    ck_assert_int_eq(check_json_parse("{\"a\":\"\\\"[[[[\"}", &limits, &err),
                     CRM_OK);

    /* closing brackets in strings cannot hide real nesting */
    ck_assert_int_eq(check_json_parse("[\"]]]]]]\",[[[]]]]", &limits, &err),
                     CRM_E_MALFORMED);
    ck_assert_str_eq(err.message, "JSON nesting is deeper than 2");

    /* nor can a stray closer before the document */
    ck_assert_int_eq(check_json_parse("]]]][[[[]]]]", &limits, &err),
                     CRM_E_MALFORMED);
}
END_TEST


START_TEST(test_json_decode_ok)
{
    crm_error_t        err;
    check_json_lead_t  lead;

    memset(&lead, 0xff, sizeof(lead));

    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"Ana\",\"email\":null,\"age\":42,\"active\":true,"
        "\"notes\":\"line 1\\nline\\t2\"}", &lead, &err), CRM_OK);

    ck_assert(lead.name.present);
    ck_assert(!lead.name.null);
    ck_assert_uint_eq(lead.name.str.len, 3);
    ck_assert_int_eq(memcmp(lead.name.str.data, "Ana", 3), 0);

    ck_assert(lead.email.present);
    ck_assert(lead.email.null);

    ck_assert(lead.age.present);
    ck_assert_int_eq(lead.age.num, 42);

    ck_assert(lead.active.present);
    ck_assert_int_eq(lead.active.boolean, 1);

    ck_assert(lead.notes.present);
    ck_assert_uint_eq(lead.notes.str.len, 13);

    /* an object is handed on as it is, for a table of its own */
    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"Ana\",\"address\":{\"city\":\"Porto\"}}", &lead,
        &err), CRM_OK);
    ck_assert(lead.address.present);
    ck_assert(YAJL_IS_OBJECT(lead.address.obj));
    ck_assert_uint_eq(lead.address.obj->u.object.len, 1);

    /* optional fields left out are zeroed, not left as they were */
    ck_assert_int_eq(check_json_decode("{\"name\":\"Bo\",\"active\":false}",
                                       &lead, &err), CRM_OK);
    ck_assert(!lead.email.present);
    ck_assert(!lead.age.present);
    ck_assert_int_eq(lead.age.num, 0);
    ck_assert(lead.active.present);
    ck_assert_int_eq(lead.active.boolean, 0);
}
END_TEST


START_TEST(test_json_decode_not_object)
{
    crm_error_t        err;
    check_json_lead_t  lead;

    ck_assert_int_eq(check_json_decode("[]", &lead, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "body", "must be a JSON object");

    ck_assert_int_eq(check_json_decode("\"x\"", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "body", "must be a JSON object");

    ck_assert_int_eq(check_json_decode("null", &lead, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "body", "must be a JSON object");
}
END_TEST


START_TEST(test_json_decode_unknown_duplicate_missing)
{
    crm_error_t        err;
    check_json_lead_t  lead;

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\",\"role\":\"admin\"}",
                                       &lead, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "role", "unknown field");

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\",\"name\":\"b\"}",
                                       &lead, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name", "duplicate field");

    ck_assert_int_eq(check_json_decode("{\"age\":1}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name", "is required");

    ck_assert_int_eq(check_json_decode("{}", &lead, &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name", "is required");

    /* keys are case-sensitive */
    ck_assert_int_eq(check_json_decode("{\"Name\":\"a\"}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "Name", "unknown field");
}
END_TEST


START_TEST(test_json_decode_unknown_key_sanitised)
{
    char               *buf;
    size_t              n, len;
    yajl_val            root;
    crm_error_t         err;
    check_json_lead_t   lead;
    crm_json_limits_t   limits = { 1024 * 1024, 8 };

    /* a 100,000-byte key cannot overflow field[64] */
    n = 100000;
    buf = malloc(n + 16);
    ck_assert_ptr_nonnull(buf);

    buf[0] = '{';
    buf[1] = '"';
    memset(buf + 2, 'k', n);
    memcpy(buf + 2 + n, "\":1}", 5);
    len = n + 6;

    ck_assert_int_eq(crm_json_parse(buf, len, &limits, &root, &err), CRM_OK);
    ck_assert_int_eq(crm_json_decode(root, check_json_fields, 5, &lead,
                                     &err), CRM_E_INVALID);
    yajl_tree_free(root);
    free(buf);

    ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
    ck_assert_str_eq(err.field + sizeof(err.field) - 4, "...");
    ck_assert_str_eq(err.message, "unknown field");

    /* non-ASCII and control characters are replaced, not echoed */
    ck_assert_int_eq(check_json_decode("{\"\\u00e9x\\n\":1}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "??x?", "unknown field");

    ck_assert_int_eq(check_json_decode("{\"\":1}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "(empty)", "unknown field");
}
END_TEST


START_TEST(test_json_decode_types)
{
    size_t             i;
    crm_error_t        err;
    check_json_lead_t  lead;

    static const struct {
        const char  *text;
        const char  *field;
        const char  *message;
    } cases[] = {
        { "{\"name\":5}", "name", "must be a string" },
        { "{\"name\":[\"a\"]}", "name", "must be a string" },
        { "{\"name\":null}", "name", "must be a string" },
        { "{\"name\":\"a\",\"active\":\"yes\"}", "active",
          "must be a boolean" },
        { "{\"name\":\"a\",\"active\":1}", "active", "must be a boolean" },
        { "{\"name\":\"a\",\"active\":null}", "active", "must be a boolean" },
        { "{\"name\":\"a\",\"age\":\"1\"}", "age", "must be an integer" },
        { "{\"name\":\"a\",\"age\":1.5}", "age", "must be an integer" },
        { "{\"name\":\"a\",\"age\":1.0}", "age", "must be an integer" },
        { "{\"name\":\"a\",\"age\":1e2}", "age", "must be an integer" },
        { "{\"name\":\"a\",\"age\":99999999999999999999}", "age",
          "must be an integer" },
        { "{\"name\":\"a\",\"age\":true}", "age", "must be an integer" },
        { "{\"name\":\"a\",\"age\":151}", "age",
          "must be between 0 and 150" },
        { "{\"name\":\"a\",\"age\":-1}", "age",
          "must be between 0 and 150" },
        { "{\"name\":\"a\",\"address\":[]}", "address",
          "must be an object" },
        { "{\"name\":\"a\",\"address\":\"x\"}", "address",
          "must be an object" },
        { "{\"name\":\"a\",\"address\":null}", "address",
          "must be an object" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(check_json_decode(cases[i].text, &lead, &err)
                      == CRM_E_INVALID, "accepted %s", cases[i].text);
        crm_check_error(&err, CRM_E_INVALID, cases[i].field,
                        cases[i].message);
    }

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\",\"age\":150}",
                                       &lead, &err), CRM_OK);
    ck_assert_int_eq(lead.age.num, 150);

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\",\"age\":-0}",
                                       &lead, &err), CRM_OK);
    ck_assert_int_eq(lead.age.num, 0);
}
END_TEST


START_TEST(test_json_decode_int_unbounded)
{
    yajl_val          root;
    crm_error_t       err;
    crm_json_value_t  v;

    /* min_num == max_num: no range, the whole int64 */
    static const crm_json_field_t  f[] = {
        { .name = "n", .kind = CRM_JSON_INT, .offset = 0 }
    };

    static const char  text[] = "{\"n\":-9223372036854775807}";

    ck_assert_int_eq(crm_json_parse(text, sizeof(text) - 1,
                                    &check_json_limits, &root, &err),
                     CRM_OK);
    ck_assert_int_eq(crm_json_decode(root, f, 1, &v, &err), CRM_OK);
    ck_assert(v.num == -INT64_MAX);
    yajl_tree_free(root);
}
END_TEST


START_TEST(test_json_decode_strings)
{
    crm_error_t        err;
    check_json_lead_t  lead;

    /* lengths are characters, not bytes: 10 two-byte letters fit */
    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &lead, &err),
        CRM_OK);
    ck_assert_uint_eq(lead.name.str.len, 20);

    /* \u escapes count as the character they decode to */
    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac"
        "\\u20ac\\u20ac\\u20ac\\u20ac\"}", &lead, &err), CRM_OK);

    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &lead, &err),
        CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must be between 1 and 10 characters");

    ck_assert_int_eq(check_json_decode("{\"name\":\"\"}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must be between 1 and 10 characters");

    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"a\",\"notes\":\"123456789012345678901\"}", &lead, &err),
        CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "notes",
                    "must be at most 20 characters");

    /* control characters: none in one-line fields */
    ck_assert_int_eq(check_json_decode("{\"name\":\"a\\tb\"}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must not contain control characters");

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\\nb\"}", &lead, &err),
                     CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name",
                    "must not contain control characters");

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\\u007f\"}", &lead,
                                       &err), CRM_E_INVALID);
    ck_assert_str_eq(err.message, "must not contain control characters");

    ck_assert_int_eq(check_json_decode("{\"name\":\"a\\u0085\"}", &lead,
                                       &err), CRM_E_INVALID);
    ck_assert_str_eq(err.message, "must not contain control characters");

    /* multi-line fields take tab and newline, and nothing else */
    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"a\",\"notes\":\"a\\tb\\nc\"}", &lead, &err), CRM_OK);

    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"a\",\"notes\":\"a\\u0001\"}", &lead, &err),
        CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "notes",
                    "must not contain control characters");

    ck_assert_int_eq(check_json_decode(
        "{\"name\":\"a\",\"notes\":\"a\\r\\n\"}", &lead, &err),
        CRM_E_INVALID);

    /* yajl passes overlong UTF-8 through; the length check does not */
    ck_assert_int_eq(check_json_decode("{\"name\":\"\xc0\xaf\"}", &lead,
                                       &err), CRM_E_INVALID);
    crm_check_error(&err, CRM_E_INVALID, "name", "must be valid UTF-8");
}
END_TEST


START_TEST(test_json_gen)
{
    char      *out;
    size_t     len;
    yajl_gen   g;

    g = crm_json_gen_new();
    ck_assert_ptr_nonnull(g);

    ck_assert_int_eq(yajl_gen_map_open(g), yajl_gen_status_ok);
    ck_assert_int_eq(crm_json_gen_kv_str(g, "s", "a\"b\\c\n"), 0);
    ck_assert_int_eq(crm_json_gen_kv_str(g, "n", NULL), 0);
    ck_assert_int_eq(crm_json_gen_kv_strn(g, "p", "abcdef", 3), 0);
    ck_assert_int_eq(crm_json_gen_kv_int(g, "i", -9007199254740993LL), 0);
    ck_assert_int_eq(crm_json_gen_kv_bool(g, "t", 7), 0);
    ck_assert_int_eq(crm_json_gen_kv_bool(g, "f", 0), 0);
    ck_assert_int_eq(crm_json_gen_key(g, "k"), 0);
    ck_assert_int_eq(yajl_gen_integer(g, 1), yajl_gen_status_ok);

    /* invalid UTF-8 is refused, never written */
    ck_assert_int_eq(crm_json_gen_kv_str(g, "bad", "\xff"), -1);

    ck_assert_int_eq(crm_json_gen_finish(g, &out, &len), CRM_OK);

    /* the key went out, the refused value did not */
    ck_assert_str_eq(out,
        "{\"s\":\"a\\\"b\\\\c\\n\",\"n\":null,\"p\":\"abc\","
        "\"i\":-9007199254740993,\"t\":true,\"f\":false,\"k\":1,"
        "\"bad\"");
    ck_assert_uint_eq(len, strlen(out));
    free(out);

    g = crm_json_gen_new();
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(yajl_gen_array_open(g), yajl_gen_status_ok);
    ck_assert_int_eq(yajl_gen_array_close(g), yajl_gen_status_ok);
    ck_assert_int_eq(crm_json_gen_finish(g, &out, &len), CRM_OK);
    ck_assert_str_eq(out, "[]");
    free(out);

    ck_assert_int_eq(crm_json_gen_finish(NULL, &out, &len), CRM_E_INTERNAL);
    ck_assert_ptr_null(out);
}
END_TEST


static Suite *
check_json_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("json", &tc);
    tcase_add_checked_fixture(tc, NULL, check_json_teardown);

    tcase_add_test(tc, test_json_parse_ok);
    tcase_add_test(tc, test_json_parse_not_nul_terminated);
    tcase_add_test(tc, test_json_parse_size_limit);
    tcase_add_test(tc, test_json_parse_empty_and_nul);
    tcase_add_test(tc, test_json_parse_malformed);
    tcase_add_test(tc, test_json_parse_comments);
    tcase_add_test(tc, test_json_parse_depth);
    tcase_add_test(tc, test_json_parse_depth_strings);
    tcase_add_test(tc, test_json_decode_ok);
    tcase_add_test(tc, test_json_decode_not_object);
    tcase_add_test(tc, test_json_decode_unknown_duplicate_missing);
    tcase_add_test(tc, test_json_decode_unknown_key_sanitised);
    tcase_add_test(tc, test_json_decode_types);
    tcase_add_test(tc, test_json_decode_int_unbounded);
    tcase_add_test(tc, test_json_decode_strings);
    tcase_add_test(tc, test_json_gen);

    return s;
}


CRM_CHECK_MAIN(check_json_suite)
