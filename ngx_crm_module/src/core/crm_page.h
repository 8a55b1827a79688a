/*
 * Keyset pagination: ?limit= (1..200, default 50) and an opaque ?cursor=
 * that encodes the (created_at, id) of the last row of the previous page.
 */

#ifndef CRM_PAGE_H
#define CRM_PAGE_H

#include <stdint.h>

#include "crm_error.h"
#include "crm_str.h"


#define CRM_PAGE_DEFAULT   50
#define CRM_PAGE_MAX       200
#define CRM_CURSOR_MAX     96


/* what the rows of a list are keyed by, after created_at */
typedef enum {
    CRM_PAGE_UUID = 0,
    CRM_PAGE_NUMERIC,       /* an identity column */
    CRM_PAGE_LINK_ID        /* crm_ids.h */
} crm_page_ids_e;


typedef struct {
    int64_t   ts_us;        /* created_at, microseconds since the epoch */
    char      id[37];       /* a UUID, a positive decimal or a link id */
    unsigned  numeric:1;
    unsigned  link_id:1;    /* both can be set: a link id may be digits */
} crm_cursor_t;


typedef struct {
    unsigned      limit;
    unsigned      has_cursor:1;
    crm_cursor_t  cursor;
} crm_page_t;


/*
 * Reads limit and cursor from a query string.  A limit outside 1..200 or
 * not a plain decimal is CRM_E_INVALID on "limit"; an undecodable cursor,
 * or one whose id is not of the kind the list uses, is CRM_E_INVALID on
 * "cursor".
 */
crm_status_e crm_page_parse(crm_str_t query, crm_page_ids_e ids,
    crm_page_t *page, crm_error_t *err);

/* writes the opaque text (NUL-terminated) into out[CRM_CURSOR_MAX] */
void crm_cursor_encode(const crm_cursor_t *c, char *out);

crm_status_e crm_cursor_decode(crm_str_t text, crm_cursor_t *c,
    crm_error_t *err);

#endif /* CRM_PAGE_H */
