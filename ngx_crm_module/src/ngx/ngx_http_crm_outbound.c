/*
 * Outbound HTTP on the event loop; see ngx_http_crm_outbound.h.
 *
 * Each worker has one curl multi handle.  libcurl tells us which sockets
 * to watch (the socket callback) and when to call it back (the timer
 * callback); each socket gets an nginx connection whose read and write
 * events, level-triggered, hand readiness back to curl_multi_socket_action.
 * The multi handle keeps connections alive per host between calls.
 *
 *   start      easy handle, options, curl_multi_add_handle
 *   open       the address curl is about to connect: refused unless the
 *              policy allows it (crm_addr_allowed), whatever name led there
 *   event      curl_multi_socket_action on the socket, then finished()
 *   timer      curl_multi_socket_action on CURL_SOCKET_TIMEOUT, finished()
 *   finished   each completed transfer: fill the response, free the easy
 *              handle, then call done (after the loop over curl's messages)
 *
 * The timer is not cancelable: a worker told to quit waits for its calls,
 * which their total timeout bounds.
 */

#include "ngx_http_crm_outbound.h"

#include <curl/curl.h>


struct ngx_http_crm_outbound_s {
    CURL                           *easy;
    struct curl_slist              *headers;
    crm_http_response_t            *res;
    ngx_http_crm_outbound_done_pt   done;
    void                           *data;
    const crm_cidr_list_t          *allow;
    ngx_msec_t                      started;
    ngx_queue_t                     queue;
    unsigned                        https:1;
    unsigned                        refused:1;
    unsigned                        too_large:1;
    unsigned                        failed:1;       /* by nginx's side */
    char                            why[128];
    char                            errbuf[CURL_ERROR_SIZE];
};


static int ngx_http_crm_outbound_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_crm_outbound_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_crm_outbound_event(ngx_event_t *ev);
static void ngx_http_crm_outbound_timeout(ngx_event_t *ev);
static void ngx_http_crm_outbound_finished(void);
static void ngx_http_crm_outbound_result(ngx_http_crm_outbound_t *call,
    CURLcode code);
static curl_socket_t ngx_http_crm_outbound_open(void *clientp,
    curlsocktype purpose, struct curl_sockaddr *addr);
static int ngx_http_crm_outbound_prereq(void *clientp, char *primary_ip,
    char *local_ip, int primary_port, int local_port);
static int ngx_http_crm_outbound_watch_failed(CURL *easy);
static void ngx_http_crm_outbound_reap(ngx_event_t *ev);
static size_t ngx_http_crm_outbound_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static size_t ngx_http_crm_outbound_header(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static void ngx_http_crm_outbound_free(ngx_http_crm_outbound_t *call);
static void ngx_http_crm_outbound_unwatch(ngx_connection_t *c);


static CURLM        *ngx_http_crm_multi;
static ngx_event_t   ngx_http_crm_multi_timer;
static ngx_event_t   ngx_http_crm_reaper;
static ngx_queue_t   ngx_http_crm_calls;
static ngx_log_t    *ngx_http_crm_outbound_log;


ngx_int_t
ngx_http_crm_outbound_init(ngx_cycle_t *cycle)
{
    long                       per_host;
    ngx_http_crm_main_conf_t  *mcf;

    ngx_queue_init(&ngx_http_crm_calls);
    ngx_http_crm_outbound_log = cycle->log;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_crm_module);
    per_host = mcf != NULL ? (long) mcf->outbound_host_connections : 128;

    ngx_http_crm_multi = curl_multi_init();
    if (ngx_http_crm_multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_multi_init() failed");
        return NGX_ERROR;
    }

    if (curl_multi_setopt(ngx_http_crm_multi, CURLMOPT_SOCKETFUNCTION,
                          ngx_http_crm_outbound_socket) != CURLM_OK
        || curl_multi_setopt(ngx_http_crm_multi, CURLMOPT_TIMERFUNCTION,
                             ngx_http_crm_outbound_timer) != CURLM_OK
        || curl_multi_setopt(ngx_http_crm_multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                             per_host) != CURLM_OK
        || curl_multi_setopt(ngx_http_crm_multi, CURLMOPT_MAXCONNECTS,
                             2 * per_host) != CURLM_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_multi_setopt() failed");
        return NGX_ERROR;
    }

    ngx_http_crm_multi_timer.handler = ngx_http_crm_outbound_timeout;
    ngx_http_crm_multi_timer.log = cycle->log;
    ngx_http_crm_multi_timer.data = NULL;

    ngx_http_crm_reaper.handler = ngx_http_crm_outbound_reap;
    ngx_http_crm_reaper.log = cycle->log;

    return NGX_OK;
}


/*
 * What is still running when the process exits (worker_shutdown_timeout
 * closed its requests) is dropped: its requesters are gone
 */
void
ngx_http_crm_outbound_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t              *q;
    ngx_http_crm_outbound_t  *call;

    if (ngx_http_crm_multi == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_crm_calls)) {
        q = ngx_queue_head(&ngx_http_crm_calls);
        call = ngx_queue_data(q, ngx_http_crm_outbound_t, queue);

        ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                      "crm: outbound call to %s dropped at exit",
                      call->res->error[0] ? call->res->error : "a provider");

        ngx_http_crm_outbound_cancel(call);
    }

    if (ngx_http_crm_multi_timer.timer_set) {
        ngx_del_timer(&ngx_http_crm_multi_timer);
    }

    if (ngx_http_crm_reaper.posted) {
        ngx_delete_posted_event(&ngx_http_crm_reaper);
    }

    curl_multi_cleanup(ngx_http_crm_multi);
    ngx_http_crm_multi = NULL;
}


ngx_http_crm_outbound_t *
ngx_http_crm_outbound_start(const crm_http_request_t *req,
    crm_http_response_t *res, const ngx_http_crm_outbound_policy_t *policy,
    ngx_http_crm_outbound_done_pt done, void *data, ngx_log_t *log)
{
    CURL                     *easy;
    u_char                   *line, *p;
    size_t                    len;
    CURLcode                  rc;
    struct curl_slist        *list;
    const crm_http_header_t  *h;
    ngx_http_crm_outbound_t  *call;

    ngx_memzero(res, sizeof(crm_http_response_t));

    call = ngx_calloc(sizeof(ngx_http_crm_outbound_t), log);
    easy = curl_easy_init();

    if (call == NULL || easy == NULL || ngx_http_crm_multi == NULL) {
        ngx_free(call);
        curl_easy_cleanup(easy);
        res->outcome = CRM_HTTP_FAILED;
        ngx_cpystrn((u_char *) res->error, (u_char *) "out of memory",
                    sizeof(res->error));
        return NULL;
    }

    call->easy = easy;
    call->res = res;
    call->done = done;
    call->data = data;
    call->allow = policy->allow;
    call->https = ngx_strncasecmp((u_char *) req->url, (u_char *) "https://",
                                  8) == 0;

    for (h = req->headers; h != NULL; h = h->next) {

        /* a value from a provider's answer must not add a header line */
        if (strpbrk(h->value, "\r\n") != NULL) {
            ngx_cpystrn((u_char *) res->error,
                        (u_char *) "a header value holds a line break",
                        sizeof(res->error));
            goto failed;
        }

        len = ngx_strlen(h->name) + ngx_strlen(h->value) + 3;

        line = ngx_alloc(len, log);
        if (line == NULL) {
            goto failed;
        }

        p = ngx_sprintf(line, "%s: %s", h->name, h->value);
        *p = '\0';

        /* curl copies the line */
        list = curl_slist_append(call->headers, (char *) line);
        ngx_free(line);

        if (list == NULL) {
            goto failed;
        }

        call->headers = list;
    }

    /* libcurl adds these unless told not to: no provider wants them */
    list = curl_slist_append(call->headers, "Expect:");
    if (list == NULL) {
        goto failed;
    }

    call->headers = list;

    rc = CURLE_OK;

#define ngx_http_crm_setopt(opt, val)                                         \
    if (rc == CURLE_OK) { rc = curl_easy_setopt(easy, opt, val); }

    ngx_http_crm_setopt(CURLOPT_URL, req->url);
    ngx_http_crm_setopt(CURLOPT_CUSTOMREQUEST, req->method);
    ngx_http_crm_setopt(CURLOPT_HTTPHEADER, call->headers);
    ngx_http_crm_setopt(CURLOPT_PRIVATE, call);
    ngx_http_crm_setopt(CURLOPT_ERRORBUFFER, call->errbuf);
    ngx_http_crm_setopt(CURLOPT_NOSIGNAL, 1L);
    ngx_http_crm_setopt(CURLOPT_PROTOCOLS_STR, "http,https");
    ngx_http_crm_setopt(CURLOPT_FOLLOWLOCATION, 0L);
    ngx_http_crm_setopt(CURLOPT_SSL_VERIFYPEER, 1L);
    ngx_http_crm_setopt(CURLOPT_SSL_VERIFYHOST, 2L);
    ngx_http_crm_setopt(CURLOPT_CONNECTTIMEOUT_MS,
                        (long) policy->connect_timeout);
    ngx_http_crm_setopt(CURLOPT_TIMEOUT_MS, (long) policy->timeout);
    ngx_http_crm_setopt(CURLOPT_TCP_KEEPALIVE, 1L);
    ngx_http_crm_setopt(CURLOPT_OPENSOCKETFUNCTION,
                        ngx_http_crm_outbound_open);
    ngx_http_crm_setopt(CURLOPT_OPENSOCKETDATA, call);
    ngx_http_crm_setopt(CURLOPT_PREREQFUNCTION,
                        ngx_http_crm_outbound_prereq);
    ngx_http_crm_setopt(CURLOPT_PREREQDATA, call);
    ngx_http_crm_setopt(CURLOPT_WRITEFUNCTION, ngx_http_crm_outbound_write);
    ngx_http_crm_setopt(CURLOPT_WRITEDATA, call);
    ngx_http_crm_setopt(CURLOPT_HEADERFUNCTION,
                        ngx_http_crm_outbound_header);
    ngx_http_crm_setopt(CURLOPT_HEADERDATA, call);
    ngx_http_crm_setopt(CURLOPT_USERAGENT, "crm-gateway/" CRM_VERSION);

    if (req->body != NULL) {
        ngx_http_crm_setopt(CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) req->body_len);
        ngx_http_crm_setopt(CURLOPT_COPYPOSTFIELDS, req->body);
    }

#undef ngx_http_crm_setopt

    if (rc != CURLE_OK) {
        ngx_cpystrn((u_char *) res->error, (u_char *) curl_easy_strerror(rc),
                    sizeof(res->error));
        goto failed;
    }

    if (curl_multi_add_handle(ngx_http_crm_multi, easy) != CURLM_OK) {
        goto failed;
    }

    call->started = ngx_current_msec;
    ngx_queue_insert_tail(&ngx_http_crm_calls, &call->queue);

    return call;

failed:

    res->outcome = CRM_HTTP_FAILED;

    if (res->error[0] == '\0') {
        ngx_cpystrn((u_char *) res->error, (u_char *) "out of memory",
                    sizeof(res->error));
    }

    curl_slist_free_all(call->headers);
    curl_easy_cleanup(easy);
    ngx_free(call);

    return NULL;
}


void
ngx_http_crm_outbound_cancel(ngx_http_crm_outbound_t *call)
{
    ngx_queue_remove(&call->queue);
    curl_multi_remove_handle(ngx_http_crm_multi, call->easy);
    ngx_http_crm_outbound_free(call);
}


static void
ngx_http_crm_outbound_free(ngx_http_crm_outbound_t *call)
{
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    ngx_free(call);
}


static int
ngx_http_crm_outbound_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_connection_t  *c = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            ngx_http_crm_outbound_unwatch(c);
            curl_multi_assign(ngx_http_crm_multi, s, NULL);
        }

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_http_crm_outbound_log);
        if (c == NULL) {
            return ngx_http_crm_outbound_watch_failed(easy);
        }

        c->log = ngx_http_crm_outbound_log;
        c->read->log = c->log;
        c->write->log = c->log;
        c->read->handler = ngx_http_crm_outbound_event;
        c->write->handler = ngx_http_crm_outbound_event;

        curl_multi_assign(ngx_http_crm_multi, s, c);
    }

    /* level-triggered (flags 0): curl may leave data it did not read */
    if (((what & CURL_POLL_IN) && !c->read->active
         && ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK)
        || (!(what & CURL_POLL_IN) && c->read->active
            && ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK)
        || ((what & CURL_POLL_OUT) && !c->write->active
            && ngx_add_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK)
        || (!(what & CURL_POLL_OUT) && c->write->active
            && ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK))
    {
        return ngx_http_crm_outbound_watch_failed(easy);
    }

    return 0;
}


/*
 * nginx cannot watch a socket (no free connection, an event error): that
 * call fails, from the loop.  Returning -1 instead would make libcurl
 * give up the whole multi handle, and every later call of the worker.
 */
static int
ngx_http_crm_outbound_watch_failed(CURL *easy)
{
    ngx_http_crm_outbound_t  *call;

    call = NULL;
    (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, &call);

    if (call != NULL) {
        call->failed = 1;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_http_crm_outbound_log, 0,
                  "crm: an outbound call's socket cannot be watched "
                  "(worker_connections?)");

    if (!ngx_http_crm_reaper.posted) {
        ngx_post_event(&ngx_http_crm_reaper, &ngx_posted_events);
    }

    return 0;
}


/* the calls that failed on nginx's side end here, in the loop */
static void
ngx_http_crm_outbound_reap(ngx_event_t *ev)
{
    ngx_queue_t              *q, *next;
    ngx_http_crm_outbound_t  *call;

    for (q = ngx_queue_head(&ngx_http_crm_calls);
         q != ngx_queue_sentinel(&ngx_http_crm_calls);
         q = next)
    {
        next = ngx_queue_next(q);
        call = ngx_queue_data(q, ngx_http_crm_outbound_t, queue);

        if (!call->failed) {
            continue;
        }

        ngx_queue_remove(&call->queue);
        curl_multi_remove_handle(ngx_http_crm_multi, call->easy);

        call->res->outcome = CRM_HTTP_FAILED;
        ngx_cpystrn((u_char *) call->res->error,
                    (u_char *) "the gateway could not watch the connection",
                    sizeof(call->res->error));

        call->done(call->data);
        ngx_http_crm_outbound_free(call);

        /* done() may have started or cancelled calls: from the top */
        next = ngx_queue_head(&ngx_http_crm_calls);
    }
}


/*
 * the socket stays curl's to close: only nginx's watch on it ends (freed
 * first and the descriptor forgotten after, as ngx_close_connection does)
 */
static void
ngx_http_crm_outbound_unwatch(ngx_connection_t *c)
{
    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static int
ngx_http_crm_outbound_timer(CURLM *multi, long timeout_ms, void *userp)
{
    if (timeout_ms < 0) {
        if (ngx_http_crm_multi_timer.timer_set) {
            ngx_del_timer(&ngx_http_crm_multi_timer);
        }

        return 0;
    }

    /*
     * 0 means at once: from the loop, not from within curl's call.  The
     * timer is set anew: ngx_add_timer() keeps a deadline that is less
     * than 300 ms from the new one (NGX_TIMER_LAZY_DELAY), and curl asks
     * for an earlier one when a call starts beside a slow one
     */
    if (ngx_http_crm_multi_timer.timer_set) {
        ngx_del_timer(&ngx_http_crm_multi_timer);
    }

    ngx_add_timer(&ngx_http_crm_multi_timer,
                  timeout_ms > 0 ? (ngx_msec_t) timeout_ms : 1);

    return 0;
}


static void
ngx_http_crm_outbound_event(ngx_event_t *ev)
{
    int                running;
    ngx_connection_t  *c;

    c = ev->data;

    /* curl may close this socket, and free c, in the call */
    (void) curl_multi_socket_action(ngx_http_crm_multi, c->fd,
                                    ev->write ? CURL_CSELECT_OUT
                                              : CURL_CSELECT_IN,
                                    &running);

    ngx_http_crm_outbound_finished();
}


static void
ngx_http_crm_outbound_timeout(ngx_event_t *ev)
{
    int  running;

    (void) curl_multi_socket_action(ngx_http_crm_multi, CURL_SOCKET_TIMEOUT,
                                    0, &running);

    ngx_http_crm_outbound_finished();
}


static void
ngx_http_crm_outbound_finished(void)
{
    int                       left;
    CURLMsg                  *msg;
    ngx_queue_t               done, *q;
    ngx_http_crm_outbound_t  *call;

    ngx_queue_init(&done);

    while ((msg = curl_multi_info_read(ngx_http_crm_multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        call = NULL;
        (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);

        if (call == NULL) {
            continue;
        }

        ngx_http_crm_outbound_result(call, msg->data.result);

        ngx_queue_remove(&call->queue);
        ngx_queue_insert_tail(&done, &call->queue);
    }

    /* the callbacks may start calls: curl's message list is left alone */
    while (!ngx_queue_empty(&done)) {
        q = ngx_queue_head(&done);
        ngx_queue_remove(q);
        call = ngx_queue_data(q, ngx_http_crm_outbound_t, queue);

        curl_multi_remove_handle(ngx_http_crm_multi, call->easy);
        call->done(call->data);
        ngx_http_crm_outbound_free(call);
    }
}


static void
ngx_http_crm_outbound_result(ngx_http_crm_outbound_t *call, CURLcode code)
{
    long                  status;
    crm_http_response_t  *res;

    res = call->res;
    res->duration_ms = (int64_t) (ngx_current_msec - call->started);

    if (code == CURLE_OK) {
        status = 0;
        (void) curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);

        res->outcome = CRM_HTTP_ANSWERED;
        res->status = (unsigned) status;
        return;
    }

    /* refused where the connection was made, not a failure after it */
    if (call->refused
        && (code == CURLE_COULDNT_CONNECT || code == CURLE_ABORTED_BY_CALLBACK))
    {
        res->outcome = CRM_HTTP_REFUSED;
        ngx_cpystrn((u_char *) res->error, (u_char *) call->why,
                    sizeof(res->error));
        return;
    }

    if (call->too_large) {
        res->outcome = CRM_HTTP_TOO_LARGE;
        ngx_cpystrn((u_char *) res->error,
                    (u_char *) "the answer is larger than 1 MiB",
                    sizeof(res->error));
        return;
    }

    switch (code) {

    case CURLE_OPERATION_TIMEDOUT:
        res->outcome = CRM_HTTP_TIMED_OUT;
        break;

    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        res->outcome = CRM_HTTP_UNREACHABLE;
        break;

    default:
        res->outcome = CRM_HTTP_FAILED;
    }

    ngx_cpystrn((u_char *) res->error,
                (u_char *) (call->errbuf[0] ? call->errbuf
                                            : curl_easy_strerror(code)),
                sizeof(res->error));
}


/*
 * The address curl is about to connect, after it resolved the name: the
 * place where the policy holds, whatever the name or any redirect said
 */
static curl_socket_t
ngx_http_crm_outbound_open(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *addr)
{
    const char               *why;
    ngx_http_crm_outbound_t  *call = clientp;

    why = crm_addr_allowed(call->allow, &addr->addr, call->https);

    if (why != NULL) {
        call->refused = 1;
        ngx_cpystrn((u_char *) call->why, (u_char *) why, sizeof(call->why));
        return CURL_SOCKET_BAD;
    }

    return socket(addr->family, addr->socktype, addr->protocol);
}


/*
 * Every transfer, on a new connection or one the multi handle kept: the
 * address it is about to use must pass this call's policy too (another
 * call, under a wider allow list, may have opened it)
 */
static int
ngx_http_crm_outbound_prereq(void *clientp, char *primary_ip,
    char *local_ip, int primary_port, int local_port)
{
    const char               *why;
    struct sockaddr_storage   ss;
    ngx_http_crm_outbound_t  *call = clientp;

    why = crm_addr_parse(primary_ip, &ss)
          ? crm_addr_allowed(call->allow, (struct sockaddr *) &ss,
                             call->https)
          : "the address connected cannot be read";

    if (why == NULL) {
        return CURL_PREREQFUNC_OK;
    }

    call->refused = 1;
    ngx_cpystrn((u_char *) call->why, (u_char *) why, sizeof(call->why));

    return CURL_PREREQFUNC_ABORT;
}


static size_t
ngx_http_crm_outbound_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    char                     *body;
    size_t                    n;
    crm_http_response_t      *res;
    ngx_http_crm_outbound_t  *call = userdata;

    res = call->res;
    n = size * nmemb;

    if (res->len + n > CRM_HTTP_BODY_MAX) {
        call->too_large = 1;
        return 0;
    }

    body = realloc(res->body, res->len + n + 1);
    if (body == NULL) {
        return 0;
    }

    ngx_memcpy(body + res->len, ptr, n);
    res->body = body;
    res->len += n;
    res->body[res->len] = '\0';

    return n;
}


static size_t
ngx_http_crm_outbound_header(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_crm_outbound_t  *call = userdata;

    if (crm_http_response_header_line(call->res, ptr, size * nmemb) != 0) {
        return 0;
    }

    return size * nmemb;
}
