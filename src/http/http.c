/* http.c — libmicrohttpd glue: read, parse, route, authenticate, handle,
 * respond, log. The whole request pipeline is dispatch() below.
 *
 * MHD calls access() several times per request: first with the headers
 * (we allocate a struct exchange and may refuse an oversized body at once),
 * then with body chunks (appended to our own buffer, capped), then once with
 * no data, when we dispatch. completed() frees the exchange. */
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
#include "base/util.h"

/* Serves static files (handlers/static.c). */
void static_serve(struct request *req, struct response *res);

/* A deferred answer's hand-over between the HTTP thread (which suspends the
 * connection) and the thread that completes the work (which resumes it):
 * whichever comes second resumes, so there is exactly one resume per
 * suspend whatever the order. */
enum { DEFER_PENDING, DEFER_SLEEPING, DEFER_DONE };
struct defer {
    _Atomic int state;
    struct MHD_Connection *conn;
};

/* One request in flight. */
struct exchange {
    struct request req;
    struct response res;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    int64_t started_us;
    const struct route *route; /* set once routed: a resumed long-poll runs it again */
    size_t slot;               /* metrics slot */
    struct defer defer;
};

static struct MHD_Daemon *daemon_;

/* The slow-work pool: handlers of routes marked slow (registration and
 * login: an Argon2id hash each) run here, so that an HTTP thread — which
 * also wakes the parked polls of its connections — never waits ~50 ms on a
 * hash. One job is one exchange; its answer is deferred. */
static struct batchq slow_pool;

static void run_slow(void **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        struct exchange *ex = jobs[i];
        ex->route->handler(&ex->req, &ex->res);
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
static enum MHD_Result send_response(struct MHD_Connection *conn, struct response *res,
                                     bool close)
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

/* The pipeline: route, check body, authenticate, handle. Fills ex->res;
 * res.parked means the handler wants the connection suspended. */
static size_t dispatch(struct MHD_Connection *conn, struct exchange *ex)
{
    struct request *req = &ex->req;
    struct response *res = &ex->res;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, req);

    if (!is_api_path(req->path)) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            resp_problem(res, 405, "method_not_allowed", "static files are read with GET");
            strcpy(res->allow, "GET, HEAD");
        } else {
            static_serve(req, res);
        }
        return metrics_route_static();
    }

    const struct route *route = NULL;
    switch (router_match(routes, routes_count, req->method, req->path, &route, req->params,
                         &req->nparams, res->allow, sizeof res->allow)) {
    case ROUTER_NOT_FOUND:
        resp_problem(res, 404, "not_found", "no such resource: %s", req->path);
        return metrics_route_unmatched();
    case ROUTER_BAD_METHOD:
        resp_problem(res, 405, "method_not_allowed", "%s is not allowed here; see Allow",
                     req->method);
        return metrics_route_unmatched();
    case ROUTER_FOUND:
        break;
    }
    size_t slot = (size_t)(route - routes);
    req->route = route->pattern;

    if (ex->too_large) {
        resp_problem(res, 413, "payload_too_large", "the body is over %d bytes", HTTP_MAX_BODY);
        return slot;
    }
    if (route->needs_auth && !authenticate(conn, req, res))
        return slot;
    bool takes_body = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0 ||
                      strcmp(req->method, "PATCH") == 0;
    if (takes_body && ex->body_len > 0) {
        const char *why;
        if (json_body_parse(ex->body, ex->body_len, &req->body, &why) < 0) {
            resp_problem(res, 400, "invalid_json", "%s", why);
            return slot;
        }
    }
    ex->route = route;
    if (route->slow) {
        res->deferred = true; /* before the hand-over: the pool may answer at once */
        if (batchq_push(&slow_pool, ex))
            return slot;
        res->deferred = false;
    }
    route->handler(req, res);
    return slot;
}

void req_defer_done(struct defer *d)
{
    if (atomic_exchange(&d->state, DEFER_DONE) == DEFER_SLEEPING)
        MHD_resume_connection(d->conn);
}

/* Sends the answer, or suspends the connection and hands it to the hub, or
 * (a deferred answer not yet done) suspends it until req_defer_done(). */
static enum MHD_Result finish(struct MHD_Connection *conn, struct exchange *ex)
{
    while (ex->res.deferred) {
        if (atomic_load(&ex->defer.state) != DEFER_DONE) {
            ex->defer.conn = conn;
            MHD_suspend_connection(conn);
            int expected = DEFER_PENDING;
            if (!atomic_compare_exchange_strong(&ex->defer.state, &expected, DEFER_SLEEPING))
                MHD_resume_connection(conn); /* done meanwhile */
            return MHD_YES;
        }
        ex->res.deferred = false;
        atomic_store(&ex->defer.state, DEFER_PENDING);
        if (!ex->res.rerun)
            break;
        resp_clear(&ex->res);
        resp_init(&ex->res);
        ex->route->handler(&ex->req, &ex->res);
    }
    if (ex->res.parked) {
        ex->res.parked = false;
        MHD_suspend_connection(conn);
        hub_sleep(ex->req.park, conn);
        return MHD_YES;
    }
    enum MHD_Result ret = send_response(conn, &ex->res, false);
    metrics_observe(ex->slot, ex->res.status, mono_us() - ex->started_us);
    return ret;
}

static void resume_conn(void *conn)
{
    MHD_resume_connection(conn);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
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
        return MHD_YES; /* already answered on the first call */
    if (ex->res.deferred) /* resumed: the deferred answer is ready */
        return finish(conn, ex);
    if (ex->req.park) {
        /* A parked long-poll was resumed: run its handler again. */
        resp_clear(&ex->res);
        resp_init(&ex->res);
        ex->route->handler(&ex->req, &ex->res);
        return finish(conn, ex);
    }
    ex->slot = dispatch(conn, ex);
    return finish(conn, ex);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct exchange *ex = *con_cls;
    if (ex == NULL)
        return;
    if (ex->req.park)
        hub_release(ex->req.park);
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
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) != 1) {
        log_error("http: bad IPv4 address '%s'", host);
        return -1;
    }
    unsigned limit = fit_fd_limit((unsigned)cfg->connection_limit);
    if (batchq_start(&slow_pool, "slow", cfg->hash_concurrency, 1, run_slow) < 0) {
        log_error("http: cannot start the slow-work pool");
        return -1;
    }
    if (hub_init(resume_conn) < 0) {
        log_error("http: cannot start the hub");
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    daemon_ = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, access_cb, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_kb * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_cb, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_END);
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
