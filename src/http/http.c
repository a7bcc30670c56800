/* http.c — libmicrohttpd glue: read, parse, route, authenticate, handle,
 * respond, log. The whole request pipeline is dispatch() and proceed()
 * below; run_handler() is the one place a handler is called.
 *
 * MHD calls access_cb() several times per request: first with the headers
 * (we allocate a struct exchange and may refuse an oversized body at once),
 * then with body chunks (appended to our own buffer, capped), then once with
 * no data, when we dispatch. A handler that returns HANDLER_RERUN or
 * HANDLER_PARK gets the connection suspended; when it is resumed (the worker
 * finished, the hub woke the poll) MHD calls access_cb() once more and we
 * run the handler again. completed_cb() frees the exchange and the handler's
 * state.
 *
 * May call: chat (auth), live (hub), base. */
#include "http/http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chat/auth.h"
#include "base/batchq.h"
#include "live/hub.h"
#include "http/jsonv.h"
#include "base/log.h"
#include "base/metrics.h"
#include "http/request.h"
#include "http/router.h"
#include "http/static.h"
#include "base/util.h"

/* Paths outside the API are static files: a route of their own, so that
 * every request runs through run_handler(). */
static const struct route static_route = {"GET", "/", static_serve, false, false};

/* A deferred answer's hand-over between the HTTP thread (which suspends the
 * connection) and the thread that completes the work (which resumes it):
 * whichever comes second resumes, so there is exactly one resume per
 * suspend whatever the order. */
enum { DEFER_PENDING, DEFER_SLEEPING, DEFER_DONE };
struct defer {
    _Atomic int state;
    struct MHD_Connection *conn;
};

/* What a suspended exchange waits for. */
enum wait { WAIT_NONE, WAIT_WORKER, WAIT_SLOW_POOL, WAIT_HUB };

/* One request in flight. */
struct exchange {
    struct request req;
    struct response res;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    int64_t started_us;
    const struct route *route;       /* set once routed: a resumed request runs it again */
    size_t slot;                     /* metrics slot */
    enum wait wait;                  /* why the connection is suspended */
    enum handler_status pool_status; /* what the handler returned in the slow-work pool */
    struct defer defer;
};

static struct MHD_Daemon *daemon_;

/* The slow-work pool: handlers of routes marked slow (registration and
 * login: an Argon2id hash each) run here, so that an HTTP thread — which
 * also wakes the parked polls of its connections — never waits ~50 ms on a
 * hash. One job is one exchange; its answer is deferred. */
static struct batchq slow_pool;

/* Runs the exchange's handler: the one place a handler is called. A run
 * after the first gets a fresh response. */
static enum handler_status run_handler(struct exchange *ex)
{
    if (ex->req.runs > 0) {
        resp_clear(&ex->res);
        resp_init(&ex->res);
    }
    enum handler_status st = ex->route->handler(&ex->req, &ex->res);
    ex->req.runs++;
    return st;
}

/* Slow routes answer in one run (they hand nothing on and never park). */
static void run_slow(void **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        struct exchange *ex = jobs[i];
        ex->pool_status = run_handler(ex);
        req_defer_done(&ex->defer);
    }
}
static unsigned bound_port;

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct request *req = cls;
    if (req->nquery < REQ_MAX_QUERY) {
        req->query[req->nquery].key = key;
        req->query[req->nquery].value = value ? value : "";
        req->nquery++;
    }
    return MHD_YES;
}

/* Turns a struct response into MHD's and queues it. */
static enum MHD_Result send_response(struct MHD_Connection *conn, struct response *res, bool close)
{
    struct MHD_Response *r;
    bool has_body = res->fd >= 0 || res->text || res->json;
    if (res->fd >= 0) {
        r = MHD_create_response_from_fd64((uint64_t)res->fd_size, res->fd);
        if (r)
            res->fd = -1; /* MHD closes it */
    } else if (res->text) {
        r = MHD_create_response_from_buffer(res->text_len, res->text, MHD_RESPMEM_MUST_FREE);
        if (r)
            res->text = NULL;
    } else if (res->json) {
        char *buf = json_dumps(res->json, JSON_COMPACT);
        if (buf == NULL)
            return MHD_NO;
        r = MHD_create_response_from_buffer(strlen(buf), buf, MHD_RESPMEM_MUST_FREE);
        if (r == NULL)
            free(buf);
    } else {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    if (has_body)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                res->content_type ? res->content_type : "application/json");
    if (res->allow[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
    if (res->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", res->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (res->fd_size == 0 && res->content_type && strncmp(res->content_type, "text/html", 9) != 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Paths the API owns; everything else is the browser app. */
static bool is_api_path(const char *path)
{
    return strcmp(path, "/v1") == 0 || strncmp(path, "/v1/", 4) == 0 ||
           strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           strcmp(path, "/metrics") == 0;
}

/* Authenticates the bearer token of the request into req. Returns true, or
 * false with the response filled. */
static bool authenticate(struct MHD_Connection *conn, struct request *req, struct response *res)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *prefix = "Bearer ";
    if (h == NULL || strncasecmp(h, prefix, strlen(prefix)) != 0) {
        resp_problem(res, 401, "unauthorized", "an Authorization: Bearer token is required");
        return false;
    }
    const char *token = h + strlen(prefix);
    int rc = auth_session_verify(token, strlen(token), &req->user_id, &req->session_id);
    if (rc == AUTH_OK)
        return true;
    if (rc == AUTH_MISMATCH)
        resp_problem(res, 401, "unauthorized", "the token is unknown, expired or revoked");
    else {
        resp_problem(res, 503, "unavailable", "the database does not answer");
        res->retry_after_s = 1;
    }
    return false;
}

/* The pipeline: route, check body, authenticate, handle. Returns what
 * the handler returned (HANDLER_DONE for an answer of the glue's own), or
 * WAIT_SLOW_POOL in *wait when the handler was handed to the slow-work
 * pool. */
static enum handler_status dispatch(struct MHD_Connection *conn, struct exchange *ex)
{
    struct request *req = &ex->req;
    struct response *res = &ex->res;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, req);

    if (!is_api_path(req->path)) {
        ex->slot = metrics_route_static();
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            strcpy(res->allow, "GET, HEAD");
            return resp_problem(res, 405, "method_not_allowed", "static files are read with GET");
        }
        ex->route = &static_route;
        return run_handler(ex);
    }

    const struct route *route = NULL;
    ex->slot = metrics_route_unmatched();
    switch (router_match(routes, routes_count, req->method, req->path, &route, req->params,
                         &req->nparams, res->allow, sizeof res->allow)) {
    case ROUTER_NOT_FOUND:
        return resp_problem(res, 404, "not_found", "no such resource: %s", req->path);
    case ROUTER_BAD_METHOD:
        return resp_problem(res, 405, "method_not_allowed", "%s is not allowed here; see Allow",
                            req->method);
    case ROUTER_FOUND: break;
    }
    ex->slot = (size_t)(route - routes);
    req->route = route->pattern;

    if (ex->too_large)
        return resp_problem(res, 413, "payload_too_large", "the body is over %d bytes",
                            HTTP_MAX_BODY);
    if (route->needs_auth && !authenticate(conn, req, res))
        return HANDLER_DONE;
    bool takes_body = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 ||
                      strcmp(req->method, "PATCH") == 0;
    if (takes_body && ex->body_len > 0) {
        const char *why;
        if (json_body_parse(ex->body, ex->body_len, &req->body, &why) < 0)
            return resp_problem(res, 400, "invalid_json", "%s", why);
    }
    ex->route = route;
    if (route->slow) {
        ex->wait = WAIT_SLOW_POOL; /* before the hand-over: the pool may finish at once */
        if (batchq_push(&slow_pool, ex))
            return HANDLER_RERUN;
        ex->wait = WAIT_NONE;
    }
    return run_handler(ex);
}

void req_defer_done(void *arg)
{
    struct defer *d = arg;
    if (atomic_exchange(&d->state, DEFER_DONE) == DEFER_SLEEPING)
        MHD_resume_connection(d->conn);
}

/* Suspends conn until req_defer_done(). Returns false, with nothing
 * suspended, when that was called already. */
static bool defer_wait(struct MHD_Connection *conn, struct exchange *ex)
{
    if (atomic_load(&ex->defer.state) == DEFER_DONE) {
        atomic_store(&ex->defer.state, DEFER_PENDING);
        return false;
    }
    ex->defer.conn = conn;
    MHD_suspend_connection(conn);
    int expected = DEFER_PENDING;
    if (!atomic_compare_exchange_strong(&ex->defer.state, &expected, DEFER_SLEEPING))
        MHD_resume_connection(conn); /* done meanwhile: access_cb runs again at once */
    return true;
}

/* The exchange was resumed, or its hand-over finished: what its handler
 * says now. */
static enum handler_status resumed(struct exchange *ex)
{
    enum wait w = ex->wait;
    ex->wait = WAIT_NONE;
    if (w == WAIT_SLOW_POOL)
        return ex->pool_status;
    if (w == WAIT_WORKER)
        atomic_store(&ex->defer.state, DEFER_PENDING);
    return run_handler(ex);
}

/* Acts on what the handler returned: sends the answer, or suspends the
 * connection until the worker is done (then runs the handler again), or
 * parks it in the hub. A hand-over that finished before we could suspend
 * runs the handler again at once. */
static enum MHD_Result proceed(struct MHD_Connection *conn, struct exchange *ex,
                               enum handler_status st)
{
    for (;;) {
        switch (st) {
        case HANDLER_RERUN:
            if (ex->wait == WAIT_NONE)
                ex->wait = WAIT_WORKER;
            if (defer_wait(conn, ex))
                return MHD_YES;
            st = resumed(ex);
            continue;
        case HANDLER_PARK:
            ex->wait = WAIT_HUB;
            MHD_suspend_connection(conn);
            hub_sleep(ex->req.waiter, conn);
            return MHD_YES;
        case HANDLER_DONE: break;
        }
        break;
    }
    enum MHD_Result ret = send_response(conn, &ex->res, false);
    metrics_observe(ex->slot, ex->res.status, mono_us() - ex->started_us);
    return ret;
}

static void resume_conn(void *conn) { MHD_resume_connection(conn); }

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls, (void)version;
    struct exchange *ex = *con_cls;
    if (ex == NULL) {
        ex = calloc(1, sizeof *ex);
        if (ex == NULL)
            return MHD_NO;
        ex->started_us = mono_us();
        ex->req.method = method;
        ex->req.path = url;
        ex->req.defer = &ex->defer;
        atomic_init(&ex->defer.state, DEFER_PENDING);
        resp_init(&ex->res);
        *con_cls = ex;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
            /* Refuse before reading: MHD closes the connection after this. */
            resp_problem(&ex->res, 413, "payload_too_large", "the body is over %d bytes",
                         HTTP_MAX_BODY);
            ex->too_large = true;
            return send_response(conn, &ex->res, true);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (ex->too_large || ex->body_len + n > HTTP_MAX_BODY) {
            ex->too_large = true;
            return MHD_YES;
        }
        if (ex->body_len + n > ex->body_cap) {
            size_t cap = ex->body_cap ? ex->body_cap : 1024;
            while (cap < ex->body_len + n)
                cap *= 2;
            char *b = realloc(ex->body, cap);
            if (b == NULL)
                return MHD_NO;
            ex->body = b;
            ex->body_cap = cap;
        }
        memcpy(ex->body + ex->body_len, upload_data, n);
        ex->body_len += n;
        return MHD_YES;
    }
    if (ex->res.status == 413 && ex->too_large && ex->res.json)
        return MHD_YES;        /* already answered on the first call */
    if (ex->wait != WAIT_NONE) /* resumed */
        return proceed(conn, ex, resumed(ex));
    return proceed(conn, ex, dispatch(conn, ex));
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct exchange *ex = *con_cls;
    if (ex == NULL)
        return;
    if (ex->req.state_free)
        ex->req.state_free(ex->req.state);
    if (ex->req.body)
        json_decref(ex->req.body);
    resp_clear(&ex->res);
    free(ex->body);
    free(ex);
    *con_cls = NULL;
}

/* Percent-decoding of the path and query: as MHD's own, except that a
 * string whose decoding holds a NUL (%00) stays encoded, so that it can never
 * be read as a shorter path ("/v1/threads/1%00/x" is not "/v1/threads/1"). */
static size_t unescape_cb(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return len;
    memcpy(copy, s, len + 1);
    size_t n = MHD_http_unescape(copy);
    if (memchr(copy, '\0', n) == NULL) {
        memcpy(s, copy, n + 1);
        len = n;
    }
    free(copy);
    return len;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("http: %s", msg);
}

/* "METHOD pattern" of every route, for the metrics' labels: made once,
 * kept for the life of the process. NULL when out of memory. */
static const char *const *route_labels(void)
{
    static char **labels;
    if (labels)
        return (const char *const *)labels;
    labels = calloc(routes_count ? routes_count : 1, sizeof *labels);
    for (size_t i = 0; labels && i < routes_count; i++) {
        size_t n = strlen(routes[i].method) + strlen(routes[i].pattern) + 2;
        labels[i] = malloc(n);
        if (labels[i] == NULL)
            return NULL;
        snprintf(labels[i], n, "%s %s", routes[i].method, routes[i].pattern);
    }
    return (const char *const *)labels;
}

/* Raises the open-file limit to cover the connection limit, as far as the
 * hard limit allows, and returns the usable number of connections. */
static unsigned fit_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rlim_t need = (rlim_t)want + 256;
    if (rl.rlim_cur < need) {
        rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need) {
        unsigned fit = rl.rlim_cur > 512 ? (unsigned)(rl.rlim_cur - 256) : 256;
        log_warn("http: open-file limit %llu allows %u connections, not %u",
                 (unsigned long long)rl.rlim_cur, fit, want);
        return fit;
    }
    return want;
}

int http_start(const struct config *cfg)
{
    char host[64];
    const char *colon = strrchr(cfg->listen, ':');
    if (colon == NULL || (size_t)(colon - cfg->listen) >= sizeof host) {
        log_error("http: listen must be address:port, not '%s'", cfg->listen);
        return -1;
    }
    memcpy(host, cfg->listen, (size_t)(colon - cfg->listen));
    host[colon - cfg->listen] = '\0';
    int64_t port;
    if (parse_int(colon + 1, &port) < 0 || port > 65535) {
        log_error("http: bad port in '%s'", cfg->listen);
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) !=
        1) {
        log_error("http: bad IPv4 address '%s'", host);
        return -1;
    }
    unsigned limit = fit_fd_limit((unsigned)cfg->connection_limit);
    if (metrics_init(route_labels(), routes_count) < 0) {
        log_error("http: out of memory");
        return -1;
    }
    if (batchq_start(&slow_pool, "slow", cfg->hash_concurrency, 1, run_slow) < 0) {
        log_error("http: cannot start the slow-work pool");
        return -1;
    }
    if (hub_init(resume_conn) < 0) {
        log_error("http: cannot start the hub");
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, access_cb, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_kb * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb,
        NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_END);
    if (daemon_ == NULL) {
        log_error("http: cannot listen on %s", cfg->listen);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    bound_port = info ? info->port : (unsigned)port;
    return 0;
}

unsigned http_port(void) { return bound_port; }

void http_stop(void)
{
    if (daemon_ == NULL)
        return;
    /* Stop accepting, answer every parked poll, give the answers a moment to
     * leave, then stop. */
    MHD_quiesce_daemon(daemon_);
    batchq_stop(&slow_pool); /* answers what it holds; later ones run here */
    hub_shutdown();
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
