/*
 * crm_bot: User-Agents of crawlers, previewers, monitors and HTTP
 * libraries as their senders spell them, and browsers that must pass.
 */

#include "crm_bot.h"
#include "crm_check.h"


static void check_bot_is(const char *ua, int want);
static Suite *check_bot_suite(void);


static void
check_bot_is(const char *ua, int want)
{
    ck_assert_msg(crm_bot_user_agent(crm_str_c(ua)) == want,
                  "\"%s\" is %s", ua, want ? "not a bot" : "a bot");
}


START_TEST(test_bot_known)
{
    check_bot_is("Mozilla/5.0 (compatible; Googlebot/2.1; "
                 "+http://www.google.com/bot.html)", 1);
    check_bot_is("Mozilla/5.0 (compatible; bingbot/2.0; "
                 "+http://www.bing.com/bingbot.htm)", 1);
    check_bot_is("Mozilla/5.0 (compatible; Yahoo! Slurp; "
                 "http://help.yahoo.com/help/us/ysearch/slurp)", 1);
    check_bot_is("Mozilla/5.0 (compatible; Baiduspider/2.0)", 1);
    check_bot_is("facebookexternalhit/1.1 "
                 "(+http://www.facebook.com/externalhit_uatext.php)", 1);
    check_bot_is("Twitterbot/1.0", 1);
    check_bot_is("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                 1);
    check_bot_is("TelegramBot (like TwitterBot)", 1);
    check_bot_is("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview "
                 "Preview/0.5", 1);
    check_bot_is("Mozilla/5.0 (compatible; Embedly/0.2; "
                 "+http://support.embed.ly/)", 1);
    check_bot_is("CCBot/2.0 (https://commoncrawl.org/faq/)", 1);
    check_bot_is("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", 1);
    check_bot_is("Mozilla/5.0 (compatible; UptimeRobot/2.0)", 1);
    check_bot_is("Site24x7 monitor", 1);
    check_bot_is("curl/8.5.0", 1);
    check_bot_is("Wget/1.21.3", 1);
    check_bot_is("python-requests/2.31.0", 1);
    check_bot_is("Python-urllib/3.11", 1);
    check_bot_is("Go-http-client/1.1", 1);
    check_bot_is("okhttp/4.12.0", 1);
    check_bot_is("Java/17.0.2", 1);
    check_bot_is("libwww-perl/6.72", 1);
    check_bot_is("Apache-HttpClient/4.5.14 (Java/17.0.2)", 1);
    check_bot_is("axios/1.6.2", 1);
    check_bot_is("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", 1);
    check_bot_is("Scrapy/2.11.0 (+https://scrapy.org)", 1);
    check_bot_is("PostmanRuntime/7.36.0", 1);
    check_bot_is("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
                 "Safari/537.36", 1);
    check_bot_is("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 "
                 "(KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", 1);
    check_bot_is("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/119.0.0.0 Mobile Safari/537.36 "
                 "Chrome-Lighthouse", 1);
}
END_TEST


START_TEST(test_bot_case_and_place)
{
    check_bot_is("BOT", 1);
    check_bot_is("bOt", 1);
    check_bot_is("CURL/7.0", 1);
    check_bot_is("xx-crawler-xx", 1);
    check_bot_is("FACEBOOKEXTERNALHIT", 1);

    /* a marker cut by the end of the string */
    check_bot_is("Mozilla/5.0 b", 0);
    check_bot_is("Mozilla/5.0 bo", 0);
    check_bot_is("Mozilla/5.0 curl", 0);
    check_bot_is("Mozilla/5.0 facebookexternalhi", 0);

    /* the "/" is part of these markers: "curl" alone is a word */
    check_bot_is("Mozilla/5.0 (curling club app)", 0);
    check_bot_is("Mozilla/5.0 javascript", 0);
}
END_TEST


START_TEST(test_bot_empty)
{
    check_bot_is("", 1);
    ck_assert_int_eq(crm_bot_user_agent((crm_str_t) { NULL, 0 }), 1);
}
END_TEST


START_TEST(test_bot_people)
{
    check_bot_is("Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Safari/537.36", 0);
    check_bot_is("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                 "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
                 "Mobile/15E148 Safari/604.1", 0);
    check_bot_is("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:120.0) "
                 "Gecko/20100101 Firefox/120.0", 0);
    check_bot_is("Mozilla/5.0 (Linux; Android 14; SM-S918B) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/119.0.6045.163 Mobile Safari/537.36", 0);
    check_bot_is("Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", 0);

    /* in-app browsers: a person is behind them */
    check_bot_is("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                 "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
                 "[FBAN/FBIOS;FBAV/441.0.0.30.113;FBBV/539000000]", 0);
    check_bot_is("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                 "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
                 "Instagram 307.0.0.34.111", 0);

    /* bytes that are not ASCII letters are skipped, not mistaken */
    check_bot_is("Mozilla/5.0 \xc3\xa9\xff\x80 [{}]~", 0);
}
END_TEST


START_TEST(test_bot_long)
{
    char    *ua;
    size_t   len;

    len = 16 * 1024;

    ua = malloc(len + sizeof("Googlebot"));
    ck_assert_ptr_nonnull(ua);

    memset(ua, 'B', len);
    ua[len] = '\0';
    check_bot_is(ua, 0);

    memcpy(ua + len, "Googlebot", sizeof("Googlebot"));
    check_bot_is(ua, 1);

    free(ua);
}
END_TEST


static Suite *
check_bot_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = crm_check_suite("bot", &tc);

    tcase_add_test(tc, test_bot_known);
    tcase_add_test(tc, test_bot_case_and_place);
    tcase_add_test(tc, test_bot_empty);
    tcase_add_test(tc, test_bot_people);
    tcase_add_test(tc, test_bot_long);

    return s;
}


CRM_CHECK_MAIN(check_bot_suite)
