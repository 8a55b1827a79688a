/*
 * UTC days; see crm_day.h.  The civil calendar's conversions are the
 * proleptic Gregorian ones (era of 400 years, March-based years).
 */

#include <stdio.h>

#include "crm_day.h"


static int crm_day_digits(const char *s, size_t n, int *out);
static int64_t crm_day_from_civil(int64_t y, int m, int d);


int
crm_day_parse(crm_str_t s, int64_t *day)
{
    int          y, mo, d, h, mi, sec, oh, om, sign, mdays;
    size_t       i;
    int64_t      t;
    const char  *p;

    static const int  month_days[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    p = s.data;

    if (s.len < CRM_DAY_LEN || p[4] != '-' || p[7] != '-'
        || crm_day_digits(p, 4, &y) != 0 || crm_day_digits(p + 5, 2, &mo) != 0
        || crm_day_digits(p + 8, 2, &d) != 0
        || y < 1 || mo < 1 || mo > 12 || d < 1)
    {
        return -1;
    }

    mdays = month_days[mo - 1];

    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        mdays = 29;
    }

    if (d > mdays) {
        return -1;
    }

    t = crm_day_from_civil(y, mo, d) * 86400;

    if (s.len == CRM_DAY_LEN) {
        *day = t / 86400;
        return 0;
    }

    /* "THH:MM:SS" */
    if (s.len < 20 || (p[10] != 'T' && p[10] != 't') || p[13] != ':'
        || p[16] != ':' || crm_day_digits(p + 11, 2, &h) != 0
        || crm_day_digits(p + 14, 2, &mi) != 0
        || crm_day_digits(p + 17, 2, &sec) != 0
        || h > 23 || mi > 59 || sec > 60)
    {
        return -1;
    }

    t += h * 3600 + mi * 60 + sec;

    i = 19;

    if (p[i] == '.') {
        for (i++; i < s.len && p[i] >= '0' && p[i] <= '9'; i++) {
            /* void */
        }

        if (i == 20) {
            return -1;
        }
    }

    if (i + 1 == s.len && (p[i] == 'Z' || p[i] == 'z')) {
        *day = crm_day_of(t);
        return 0;
    }

    if (i + 6 != s.len || (p[i] != '+' && p[i] != '-' && p[i] != ' ')
        || p[i + 3] != ':' || crm_day_digits(p + i + 1, 2, &oh) != 0
        || crm_day_digits(p + i + 4, 2, &om) != 0 || oh > 23 || om > 59)
    {
        return -1;
    }

    sign = p[i] == '-' ? -1 : 1;

    /* local time minus its offset is UTC */
    t -= sign * (oh * 3600 + om * 60);

    *day = crm_day_of(t);

    return 0;
}


int64_t
crm_day_of(int64_t t)
{
    return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}


void
crm_day_format(int64_t day, char *out)
{
    int64_t  z, era, doe, yoe, y, doy, mp, d, m;

    z = day + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    snprintf(out, CRM_DAY_LEN + 1, "%04d-%02d-%02d", (int) y, (int) m,
             (int) d);
}


static int
crm_day_digits(const char *s, size_t n, int *out)
{
    size_t  i;

    *out = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *out = *out * 10 + (s[i] - '0');
    }

    return 0;
}


static int64_t
crm_day_from_civil(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}
