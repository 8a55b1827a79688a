/*
 * Known automated clients; see crm_bot.h.
 *
 * This runs on every redirect, in nginx's event loop, over a User-Agent
 * that may be kilobytes long, so it makes one pass without copying: the
 * markers are filed under their first letter, and at each position of
 * the User-Agent only the few filed under that letter are compared.
 *
 * A marker is a substring, so "bot" also finds "Googlebot" and
 * "TelegramBot" (and "Cubot", a phone maker: a rare person flagged is the
 * price of a short list).  In-app browsers ("FBAN", "Instagram") are
 * absent on purpose: a person is behind those.
 */

#include "crm_bot.h"


#define CRM_BOT_PER_LETTER  8


static int crm_bot_rest_matches(const char *p, size_t len,
    const char *rest);


#define crm_bot_lower(c)                                                      \
    (((c) >= 'A' && (c) <= 'Z') ? (char) ((c) | 0x20) : (c))


/* lower case, each under its first letter */
static const char *const  crm_bot_markers[26][CRM_BOT_PER_LETTER] = {
    ['a' - 'a'] = { "aiohttp", "axios/", "archiver" },
    ['b' - 'a'] = { "bot" },
    ['c' - 'a'] = { "crawl", "curl/", "check_http" },
    ['d' - 'a'] = { "dart:io" },
    ['e' - 'a'] = { "embedly" },
    ['f' - 'a'] = { "facebookexternalhit", "facebookcatalog",
                    "feedfetcher" },
    ['g' - 'a'] = { "go-http-client", "googleother", "guzzlehttp" },
    ['h' - 'a'] = { "headlesschrome", "httpclient", "httpie/" },
    ['i' - 'a'] = { "inspectiontool" },
    ['j' - 'a'] = { "java/" },
    ['l' - 'a'] = { "libwww", "lighthouse" },
    ['m' - 'a'] = { "monitor", "mediapartners", "masscan" },
    ['n' - 'a'] = { "node-fetch", "nmap" },
    ['o' - 'a'] = { "okhttp" },
    ['p' - 'a'] = { "preview", "python-requests", "python-urllib",
                    "python-httpx", "phantomjs", "pingdom",
                    "postmanruntime" },
    ['s' - 'a'] = { "spider", "slurp", "scrapy", "statuscake" },
    ['u' - 'a'] = { "undici" },
    ['v' - 'a'] = { "validator", "vkshare" },
    ['w' - 'a'] = { "wget/" },
    ['z' - 'a'] = { "zgrab" },
};


int
crm_bot_user_agent(crm_str_t ua)
{
    char                 c;
    size_t               i, k;
    const char *const   *markers;

    if (ua.len == 0) {
        return 1;
    }

    for (i = 0; i < ua.len; i++) {
        c = crm_bot_lower(ua.data[i]);

        if (c < 'a' || c > 'z') {
            continue;
        }

        markers = crm_bot_markers[c - 'a'];

        for (k = 0; k < CRM_BOT_PER_LETTER && markers[k] != NULL; k++) {
            if (crm_bot_rest_matches(ua.data + i + 1, ua.len - i - 1,
                                     markers[k] + 1))
            {
                return 1;
            }
        }
    }

    return 0;
}


/* 1 when p[0..len) starts with rest, compared case-insensitively */
static int
crm_bot_rest_matches(const char *p, size_t len, const char *rest)
{
    size_t  i;

    for (i = 0; rest[i] != '\0'; i++) {
        if (i == len || crm_bot_lower(p[i]) != rest[i]) {
            return 0;
        }
    }

    return 1;
}
