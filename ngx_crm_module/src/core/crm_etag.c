/*
 * Entity tags and If-Match.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm_etag.h"


/* at most this many tags are honoured; more is not a real client */
#define CRM_IF_MATCH_TAGS  16


static const char *crm_etag_skip_space(const char *p, const char *end);


void
crm_etag_format(int version, char *out)
{
    snprintf(out, CRM_ETAG_MAX, "\"%d\"", version);
}


static const char *
crm_etag_skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
        p++;
    }

    return p;
}


int
crm_if_match_versions(crm_str_t header, char *out)
{
    int          ntags, good;
    size_t       n, digits;
    const char  *p, *end, *tag;

    p = header.data;
    end = header.data + header.len;

    p = crm_etag_skip_space(p, end);

    if (p == end) {
        return 0;
    }

    if (*p == '*' && crm_etag_skip_space(p + 1, end) == end) {
        return 0;
    }

    n = 0;
    out[n++] = '{';
    ntags = 0;

    while (p < end) {

        /* one entity-tag: [W/] DQUOTE etagc* DQUOTE */
        good = 1;

        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            good = 0;
            p += 2;
        }

        if (p == end || *p != '"') {
            break;
        }

        tag = ++p;

        while (p < end && *p != '"') {
            p++;
        }

        if (p == end) {
            break;
        }

        digits = (size_t) (p - tag);
        p++;

        if (digits == 0 || digits > 9 || (digits > 1 && tag[0] == '0')
            || strspn(tag, "0123456789") < digits)
        {
            good = 0;
        }

        if (good && ntags < CRM_IF_MATCH_TAGS) {
            if (ntags++ > 0) {
                out[n++] = ',';
            }

            memcpy(out + n, tag, digits);
            n += digits;
        }

        p = crm_etag_skip_space(p, end);
    }

    out[n++] = '}';
    out[n] = '\0';

    return 1;
}


int
crm_if_match_has(const char *versions, int version)
{
    long         v;
    char        *end;
    const char  *p;

    for (p = versions + 1; *p != '\0' && *p != '}'; p = end) {
        v = strtol(p, &end, 10);

        if (end == p) {
            return 0;
        }

        if (v == version) {
            return 1;
        }

        if (*end == ',') {
            end++;
        }
    }

    return 0;
}
