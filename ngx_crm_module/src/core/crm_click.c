/*
 * Click lines; see crm_click.h.
 */

#include <string.h>
#include <time.h>

#include "crm_click.h"
#include "crm_ids.h"


static char *crm_click_text(char *p, crm_str_t s, size_t max);


size_t
crm_click_line(const crm_click_t *c, char *out)
{
    int         i;
    char       *p;
    time_t      sec;
    int64_t     us;
    struct tm   tm;

    if (c->click_id == NULL
        || !crm_click_id_parse(c->click_id, strlen(c->click_id), NULL, NULL))
    {
        return 0;
    }

    p = out;

    memcpy(p, c->click_id, CRM_CLICK_ID_LEN);
    p += CRM_CLICK_ID_LEN;
    *p++ = '\t';

    memcpy(p, c->click_id, CRM_LINK_ID_LEN);
    p += CRM_LINK_ID_LEN;
    *p++ = '\t';

    sec = (time_t) (c->at_us / 1000000);
    us = c->at_us % 1000000;

    if (gmtime_r(&sec, &tm) == NULL) {
        return 0;
    }

    p += strftime(p, 32, "%Y-%m-%d %H:%M:%S", &tm);

    *p++ = '.';

    for (i = 5; i >= 0; i--) {
        p[i] = (char) ('0' + us % 10);
        us /= 10;
    }

    p += 6;
    memcpy(p, "+00\t", 4);
    p += 4;

    if (c->shop.len) {
        p = crm_click_text(p, c->shop, 253);

    } else {
        memcpy(p, "\\N", 2);
        p += 2;
    }

    *p++ = '\t';
    p = crm_click_text(p, c->ip, CRM_CLICK_IP_MAX);
    *p++ = '\t';
    p = crm_click_text(p, c->user_agent, CRM_CLICK_UA_MAX);
    *p++ = '\t';
    p = crm_click_text(p, c->referer, CRM_CLICK_REFERER_MAX);
    *p++ = '\t';
    *p++ = c->bot ? 't' : 'f';
    *p++ = '\t';
    *p++ = c->head ? 't' : 'f';
    *p++ = '\n';

    return (size_t) (p - out);
}


/* COPY's text escaping; only the backslash can occur in printable ASCII */
static char *
crm_click_text(char *p, crm_str_t s, size_t max)
{
    size_t         i;
    unsigned char  ch;

    if (s.len > max) {
        s.len = max;
    }

    for (i = 0; i < s.len; i++) {
        ch = (unsigned char) s.data[i];

        if (ch == '\\') {
            *p++ = '\\';
            *p++ = '\\';

        } else if (ch < 0x20 || ch > 0x7e) {
            *p++ = '?';

        } else {
            *p++ = (char) ch;
        }
    }

    return p;
}


size_t
crm_click_count(crm_str_t lines)
{
    size_t       n;
    const char  *p, *end;

    n = 0;
    p = lines.data;
    end = lines.data + lines.len;

    while (p < end && (p = memchr(p, '\n', (size_t) (end - p))) != NULL) {
        n++;
        p++;
    }

    return n;
}
