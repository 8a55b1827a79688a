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

    /* the second's text is made once a second, per thread */
    static __thread time_t  last_sec = -1;
    static __thread char    last_text[20];

    if (c->click_id == NULL || strlen(c->click_id) != CRM_CLICK_ID_LEN
        || c->at_us < 0)
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

    if (sec != last_sec) {
        if (gmtime_r(&sec, &tm) == NULL
            || strftime(last_text, sizeof(last_text), "%Y-%m-%d %H:%M:%S",
                        &tm)
               != sizeof(last_text) - 1)
        {
            return 0;
        }

        last_sec = sec;
    }

    memcpy(p, last_text, sizeof(last_text) - 1);
    p += sizeof(last_text) - 1;

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
