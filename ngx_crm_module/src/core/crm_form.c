/*
 * application/x-www-form-urlencoded (the WHATWG URL standard's parser,
 * minus its tolerance): pairs separated by '&', name and value by the
 * first '=', '+' is a space, and every '%' must start a two-digit hex
 * escape.  The whole string is checked on every lookup, so a form gets the
 * same answer whichever name is asked for.
 */

#include <stdio.h>

#include "crm_form.h"


typedef struct {
    crm_str_t  name;        /* still encoded */
    crm_str_t  value;       /* still encoded */
} crm_form_pair_t;


static int crm_form_next(crm_str_t *rest, crm_form_pair_t *pair);
static int crm_form_decode(crm_str_t in, char *out, size_t size,
    size_t *len);
static int crm_form_char(crm_str_t in, size_t *i, unsigned char *c);
static int crm_form_hex(unsigned char c);
static int crm_form_name_eq(crm_str_t encoded, const char *name);
static void crm_form_name_field(crm_str_t encoded, char *field,
    size_t size);


#define CRM_FORM_BAD_ESCAPE   -1
#define CRM_FORM_NUL          -2
#define CRM_FORM_TOO_LONG     -3


crm_status_e
crm_form_get(crm_str_t form, const char *name, char *out, size_t out_size,
    int *found, crm_error_t *err)
{
    int              rc;
    size_t           len;
    crm_str_t        rest;
    crm_form_pair_t  pair;

    *found = 0;

    if (out_size > 0) {
        out[0] = '\0';
    }

    rest = form;

    while (crm_form_next(&rest, &pair)) {

        rc = crm_form_name_eq(pair.name, name);
        if (rc < 0) {
            goto malformed;
        }

        if (rc == 0) {

            /* not ours, but still has to be well-formed */
            rc = crm_form_decode(pair.value, NULL, 0, NULL);
            if (rc < 0) {
                goto malformed;
            }

            continue;
        }

        if (*found) {
            return crm_error_set(err, CRM_E_INVALID, name,
                                 "must not be repeated");
        }

        *found = 1;

        rc = crm_form_decode(pair.value, out, out_size, &len);

        if (rc == CRM_FORM_TOO_LONG) {
            if (out_size > 0) {
                out[0] = '\0';
            }

            return crm_error_set(err, CRM_E_INVALID, name,
                                 CRM_FORM_MSG_TOO_LONG);
        }

        if (rc < 0) {
            goto malformed;
        }
    }

    return CRM_OK;

malformed:

    *found = 0;

    if (out_size > 0) {
        out[0] = '\0';
    }

    if (rc == CRM_FORM_NUL) {
        return crm_error_set(err, CRM_E_MALFORMED, NULL,
                             "form data contains a NUL byte");
    }

    return crm_error_set(err, CRM_E_MALFORMED, NULL,
                         "invalid percent-encoding in form data");
}


crm_status_e
crm_form_check_names(crm_str_t form, const char *const *names,
    crm_error_t *err)
{
    int                 rc;
    char                field[sizeof(err->field)];
    crm_str_t           rest;
    crm_form_pair_t     pair;
    const char *const  *n;

    rest = form;

    while (crm_form_next(&rest, &pair)) {

        rc = 0;

        for (n = names; *n != NULL; n++) {
            rc = crm_form_name_eq(pair.name, *n);
            if (rc != 0) {
                break;
            }
        }

        if (rc < 0) {
            return crm_error_set(err, CRM_E_MALFORMED, NULL,
                                 rc == CRM_FORM_NUL
                                 ? "form data contains a NUL byte"
                                 : "invalid percent-encoding in form data");
        }

        if (rc == 0) {
            crm_form_name_field(pair.name, field, sizeof(field));
            return crm_error_set(err, CRM_E_INVALID, field,
                                 "unknown parameter");
        }
    }

    return CRM_OK;
}


/* empty pairs ("a=1&&b=2", a trailing '&') are skipped, as browsers do */
static int
crm_form_next(crm_str_t *rest, crm_form_pair_t *pair)
{
    const char  *p, *end, *amp, *eq;

    p = rest->data;
    end = rest->data + rest->len;

    while (p < end && *p == '&') {
        p++;
    }

    if (p == end) {
        rest->data = end;
        rest->len = 0;
        return 0;
    }

    amp = memchr(p, '&', (size_t) (end - p));
    if (amp == NULL) {
        amp = end;
    }

    eq = memchr(p, '=', (size_t) (amp - p));

    pair->name.data = p;

    if (eq != NULL) {
        pair->name.len = (size_t) (eq - p);
        pair->value.data = eq + 1;
        pair->value.len = (size_t) (amp - eq - 1);

    } else {
        pair->name.len = (size_t) (amp - p);
        pair->value.data = amp;
        pair->value.len = 0;
    }

    rest->data = amp;
    rest->len = (size_t) (end - amp);

    return 1;
}


/*
 * Decodes into out (size bytes with the NUL) and sets *len; with
 * out == NULL it only validates.  Returns 0 or a CRM_FORM_* code.
 */
static int
crm_form_decode(crm_str_t in, char *out, size_t size, size_t *len)
{
    int            rc;
    size_t         i, n;
    unsigned char  c;

    n = 0;

    for (i = 0; i < in.len; /* void */) {
        rc = crm_form_char(in, &i, &c);
        if (rc != 0) {
            return rc;
        }

        if (out != NULL) {
            if (n + 1 >= size) {
                return CRM_FORM_TOO_LONG;
            }

            out[n] = (char) c;
        }

        n++;
    }

    if (out != NULL) {
        out[n] = '\0';
        *len = n;
    }

    return 0;
}


/* decodes the character at in.data[*i] and moves *i past it */
static int
crm_form_char(crm_str_t in, size_t *i, unsigned char *c)
{
    int  hi, lo;

    *c = (unsigned char) in.data[*i];

    if (*c == '+') {
        *c = ' ';
        *i += 1;

    } else if (*c == '%') {

        if (in.len - *i < 3) {
            return CRM_FORM_BAD_ESCAPE;
        }

        hi = crm_form_hex((unsigned char) in.data[*i + 1]);
        lo = crm_form_hex((unsigned char) in.data[*i + 2]);

        if (hi < 0 || lo < 0) {
            return CRM_FORM_BAD_ESCAPE;
        }

        *c = (unsigned char) (hi << 4 | lo);
        *i += 3;

    } else {
        *i += 1;
    }

    return *c == '\0' ? CRM_FORM_NUL : 0;
}


static int
crm_form_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * 1 when the encoded name decodes to name, 0 when not, or a negative
 * CRM_FORM_* code; decodes on the fly, so no name is too long to check.
 */
static int
crm_form_name_eq(crm_str_t encoded, const char *name)
{
    int            rc;
    size_t         i, k;
    unsigned char  c;

    /*
     * validate all of it first: a bad escape is an error even past a
     * mismatch, so the answer does not depend on the name asked for
     */
    rc = crm_form_decode(encoded, NULL, 0, NULL);
    if (rc < 0) {
        return rc;
    }

    k = 0;

    for (i = 0; i < encoded.len; /* void */) {
        (void) crm_form_char(encoded, &i, &c);

        /* c is never NUL here, so this also stops at the end of name */
        if ((unsigned char) name[k] != c) {
            return 0;
        }

        k++;
    }

    return name[k] == '\0';
}


/* the name goes back to the client: cut it and keep it printable ASCII */
static void
crm_form_name_field(crm_str_t encoded, char *field, size_t size)
{
    size_t         i, n;
    unsigned char  c;

    n = 0;

    for (i = 0; i < encoded.len; /* void */) {

        if (n == size - 4) {
            memcpy(&field[n], "...", 3);
            n += 3;
            break;
        }

        (void) crm_form_char(encoded, &i, &c);
        field[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }

    field[n] = '\0';

    if (n == 0) {
        (void) snprintf(field, size, "(empty)");
    }
}
