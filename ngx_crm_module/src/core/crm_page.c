/*
 * Keyset pagination.  The cursor is base64url("<ts_us>:<id>"): opaque to
 * clients, but nothing secret, so it is not signed; it is only ever used
 * as a bound in "(created_at, id) < ($1, $2)", and decoding is strict so
 * that what reaches the query is a canonical integer and a canonical id
 * (a UUID, an identity number or a link id with valid check characters).
 */

#include <inttypes.h>
#include <stdio.h>

#include "crm_base64.h"
#include "crm_form.h"
#include "crm_ids.h"
#include "crm_page.h"
#include "crm_validate.h"


#define CRM_CURSOR_TS_LIMIT  ((int64_t) 1 << 53)

/* "-9223372036854775808:" plus a UUID */
#define CRM_CURSOR_RAW_MAX  (20 + 1 + CRM_UUID_LEN)


static crm_status_e crm_page_limit(const char *text, unsigned *limit,
    crm_error_t *err);
static int crm_page_too_long(const crm_error_t *err);
static int crm_cursor_parse_ts(const char *p, size_t len, int64_t *ts);
static int crm_cursor_numeric_id(crm_str_t id);


crm_status_e
crm_page_parse(crm_str_t query, crm_page_ids_e ids, crm_page_t *page,
    crm_error_t *err)
{
    int           found, kind;
    char          limit[16], cursor[CRM_CURSOR_MAX];
    crm_status_e  rc;

    page->limit = CRM_PAGE_DEFAULT;
    page->has_cursor = 0;
    memset(&page->cursor, 0, sizeof(crm_cursor_t));

    rc = crm_form_get(query, "limit", limit, sizeof(limit), &found, err);

    /* a limit too long for the buffer cannot be in range anyway */
    if (rc == CRM_E_INVALID && crm_page_too_long(err)) {
        return crm_page_limit("", &page->limit, err);
    }

    if (rc != CRM_OK) {
        return rc;
    }

    if (found) {
        rc = crm_page_limit(limit, &page->limit, err);
        if (rc != CRM_OK) {
            return rc;
        }
    }

    rc = crm_form_get(query, "cursor", cursor, sizeof(cursor), &found, err);

    if (rc == CRM_E_INVALID && crm_page_too_long(err)) {
        return crm_error_set(err, CRM_E_INVALID, "cursor",
                             "must be a valid cursor");
    }

    if (rc != CRM_OK) {
        return rc;
    }

    if (found) {
        rc = crm_cursor_decode(crm_str_c(cursor), &page->cursor, err);
        if (rc != CRM_OK) {
            return rc;
        }

        switch (ids) {

        case CRM_PAGE_NUMERIC:
            kind = page->cursor.numeric;
            break;

        case CRM_PAGE_LINK_ID:
            kind = page->cursor.link_id;
            break;

        default:
            kind = crm_uuid_valid(crm_str_c(page->cursor.id));
            break;
        }

        if (!kind) {
            return crm_error_set(err, CRM_E_INVALID, "cursor",
                                 "must be a valid cursor");
        }

        page->has_cursor = 1;
    }

    return CRM_OK;
}


/* digits only: no sign, no space, no "1e2", nothing strtoul would allow */
static crm_status_e
crm_page_limit(const char *text, unsigned *limit, crm_error_t *err)
{
    unsigned     n;
    const char  *p;

    n = 0;

    for (p = text; *p != '\0'; p++) {

        if (*p < '0' || *p > '9') {
            goto invalid;
        }

        n = n * 10 + (unsigned) (*p - '0');

        if (n > CRM_PAGE_MAX) {
            goto invalid;
        }
    }

    if (p == text || n == 0) {
        goto invalid;
    }

    *limit = n;

    return CRM_OK;

invalid:

    return crm_error_set(err, CRM_E_INVALID, "limit",
                         "must be an integer between 1 and %d",
                         CRM_PAGE_MAX);
}


/* crm_form_get() reports a value over the buffer this way */
static int
crm_page_too_long(const crm_error_t *err)
{
    return strcmp(err->message, CRM_FORM_MSG_TOO_LONG) == 0;
}


void
crm_cursor_encode(const crm_cursor_t *c, char *out)
{
    int     n;
    char    raw[CRM_CURSOR_RAW_MAX + 1];
    size_t  len;

    n = snprintf(raw, sizeof(raw), "%" PRId64 ":%.*s", c->ts_us,
                 CRM_UUID_LEN, c->id);

    if (n < 0 || (size_t) n >= sizeof(raw)) {
        out[0] = '\0';
        return;
    }

    /* 57 raw bytes encode to 76 characters, within CRM_CURSOR_MAX */
    len = crm_base64url_encode((const unsigned char *) raw, (size_t) n, out);
    out[len] = '\0';
}


crm_status_e
crm_cursor_decode(crm_str_t text, crm_cursor_t *c, crm_error_t *err)
{
    size_t          len;
    crm_str_t       id;
    const char     *colon;
    unsigned char   raw[crm_base64url_decoded_max(CRM_CURSOR_MAX)];

    if (text.len == 0 || text.len >= CRM_CURSOR_MAX
        || crm_base64url_decode(text.data, text.len, raw, &len) != 0)
    {
        goto invalid;
    }

    colon = memchr(raw, ':', len);
    if (colon == NULL) {
        goto invalid;
    }

    id.data = colon + 1;
    id.len = len - (size_t) (colon - (const char *) raw) - 1;

    c->numeric = crm_cursor_numeric_id(id);
    c->link_id = crm_link_id_shaped(id.data, id.len);

    if ((!c->numeric && !c->link_id && !crm_uuid_valid(id))
        || crm_cursor_parse_ts((const char *) raw,
                               (size_t) (colon - (const char *) raw),
                               &c->ts_us)
           != 0)
    {
        goto invalid;
    }

    /*
     * a timestamp is only ever a row's created_at, well inside +-2^53 us
     * (years 1685..2255): outside it PostgreSQL's timestamp range ends,
     * and the bigint * interval arithmetic of the query stops being exact
     */
    if (c->ts_us > CRM_CURSOR_TS_LIMIT || c->ts_us < -CRM_CURSOR_TS_LIMIT) {
        goto invalid;
    }

    memcpy(c->id, id.data, id.len);
    c->id[id.len] = '\0';

    return CRM_OK;

invalid:

    memset(c, 0, sizeof(crm_cursor_t));

    return crm_error_set(err, CRM_E_INVALID, "cursor",
                         "must be a valid cursor");
}


/* a row id from an identity column: 1..18 digits, no leading zero */
static int
crm_cursor_numeric_id(crm_str_t id)
{
    size_t  i;

    if (id.len == 0 || id.len > 18 || id.data[0] == '0') {
        return 0;
    }

    for (i = 0; i < id.len; i++) {
        if (id.data[i] < '0' || id.data[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* the canonical decimal that crm_cursor_encode() writes, nothing else */
static int
crm_cursor_parse_ts(const char *p, size_t len, int64_t *ts)
{
    int       neg;
    size_t    i;
    uint64_t  n, max;

    neg = (len > 0 && p[0] == '-');
    i = neg ? 1 : 0;

    if (i == len) {
        return -1;
    }

    /* no leading zeros, and no "-0" */
    if (p[i] == '0' && (len - i > 1 || neg)) {
        return -1;
    }

    max = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    n = 0;

    for ( /* void */ ; i < len; i++) {

        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        if (n > (max - (uint64_t) (p[i] - '0')) / 10) {
            return -1;
        }

        n = n * 10 + (uint64_t) (p[i] - '0');
    }

    *ts = neg ? (int64_t) (0 - n) : (int64_t) n;

    return 0;
}
