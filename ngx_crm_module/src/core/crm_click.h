/*
 * A click as the redirect records it: one line of PostgreSQL's COPY text
 * format, in the column order of crm.clicks.  The same bytes go into the
 * shared-memory queue, into the spool file when the queue is full, and to
 * COPY, so a batch is sent as it lies in memory or on disk.
 */

#ifndef CRM_CLICK_H
#define CRM_CLICK_H

#include <stddef.h>
#include <stdint.h>

#include "crm_str.h"


#define CRM_CLICK_IP_MAX       64
#define CRM_CLICK_UA_MAX       512
#define CRM_CLICK_REFERER_MAX  1024

/* every field at its longest, each byte escaped */
#define CRM_CLICK_LINE_MAX     4096


typedef struct {
    const char  *click_id;      /* from crm_click_id_generate() */
    int64_t      at_us;         /* unix time in microseconds */
    crm_str_t    shop;          /* normalised domain, or empty: NULL */
    crm_str_t    ip;
    crm_str_t    user_agent;
    crm_str_t    referer;
    unsigned     bot:1;
    unsigned     head:1;
} crm_click_t;


/*
 * Writes c as one COPY text line ending in "\n" into out (at least
 * CRM_CLICK_LINE_MAX bytes) and returns its length, or 0 when the click
 * id has not a click id's length or the time is before 1970.  Client
 * text is cut to its maximum and reduced to printable ASCII (other bytes
 * become "?"), so a line is always valid UTF-8 and holds no tab or
 * newline of its own.
 */
size_t crm_click_line(const crm_click_t *c, char *out);

/* the number of lines (clicks) in a span of whole lines */
size_t crm_click_count(crm_str_t lines);

#endif /* CRM_CLICK_H */
