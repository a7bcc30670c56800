/* http.c — libmicrohttpd glue: read, parse, route, authenticate, handle,
 * respond, log. The whole request pipeline is admit(), dispatch() and
 * proceed() below; run_handler() is the one place a handler is called.
 *
 * MHD calls access_cb() several times per request. First with the headers:
 * we allocate a struct exchange and admit() the request — framing checks
 * (NUL bytes, conflicting Content-Length, Content-Length with chunked),
 * route, body limit, bearer token — before a byte of the body is read, so
 * that an unknown route, a missing token or an oversized Content-Length is
 * answered at once and its body never read. Then with body chunks (appended
 * to our own buffer, capped: a chunked body past the cap ends the
 * connection). Then once with no data, when we dispatch(): the JSON body is
 * parsed and the handler runs. A handler that returns HANDLER_RERUN or
 * HANDLER_PARK gets the connection suspended; when it is resumed (the worker
 * finished, the hub woke the poll) MHD calls access_cb() once more and we
 * run the handler again. completed_cb() frees the exchange and the handler's
 * state.
 *
 * Every connection has a struct conn (MHD's socket context, from
 * notify_conn()): its absolute deadline for the request line, headers and
 * body (deadline.h), and what the request line looked like before MHD cut
 * it into strings (for the NUL check).
 *
 * May call: chat (auth), live (hub), base. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include "chat/auth.h"
#include "base/batchq.h"
#include "live/hub.h"
#include "http/deadline.h"
#include "http/jsonv.h"
#include "base/log.h"
#include "base/metrics.h"
#include "http/request.h"
#include "http/router.h"
#include "http/static.h"
#include "base/util.h"

/* Paths outside the API are static files: a route of their own, so that
 * every request runs through run_handler(). */
static const struct route static_route = {"GET", "/", static_serve, false, false, false, false};

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
    uint64_t body_seen;     /* bytes of body received, kept or not */
    uint64_t body_max;      /* the most this request may send */
    bool keep_body;         /* POST, PUT, PATCH or DELETE on a route: the body is buffered */
    bool stream;            /* a stream_body route: the body goes to req.body_fd */
    int64_t stream_seen_ms; /* when the body deadline was last pushed on */
    bool answered;          /* admit() filled the response: sent at the last call */
    bool sent;              /* the response was queued before the body */
    bool queued;            /* a response was queued (else the client left first) */
    int64_t started_us;
    int64_t queued_ms;               /* when handed to the slow-work pool */
    const struct route *route;       /* set once routed: a resumed request runs it again */
    size_t slot;                     /* metrics slot */
    enum wait wait;                  /* why the connection is suspended */
    enum handler_status pool_status; /* what the handler returned in the slow-work pool */
    struct defer defer;
};

/* One TCP connection: MHD's socket context, made by notify_conn(). */
struct conn {
    struct dl_entry dl;     /* its deadline */
    const char *raw_target; /* the request target as received, up to the first NUL */
    size_t raw_target_len;
    bool nul_in_target; /* a %00 decoded in the path or the query */
};

static struct MHD_Daemon *daemon_;
static bool access_log;          /* log one line per request */
static uint64_t request_id_base; /* random upper half of the ids made here */
static _Atomic uint32_t request_id_next;
static int hash_queue_max, hash_concurrency, hash_wait_ms;
static _Atomic int slow_in_pool; /* exchanges handed to the pool and not done */

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
    log_set_request_id(ex->req.request_id);
    enum handler_status st = ex->route->handler(&ex->req, &ex->res);
    log_set_request_id(NULL);
    ex->req.runs++;
    return st;
}

/* The answer of a slow route when the hashing slots are all taken. */
static enum handler_status hash_busy(struct response *res)
{
    resp_problem(res, 503, "unavailable", "too many logins at once; try again");
    res->retry_after_s = 1;
    return HANDLER_DONE;
}

/* Slow routes answer in one run (they hand nothing on and never park). One
 * that waited past hash_wait_ms for its turn is answered 503 instead: its
 * client has waited long enough, and it would delay the ones behind it. */
static void run_slow(void **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        struct exchange *ex = jobs[i];
        if (mono_ms() - ex->queued_ms > hash_wait_ms)
            ex->pool_status = hash_busy(&ex->res);
        else
            ex->pool_status = run_handler(ex);
        atomic_fetch_sub(&slow_in_pool, 1);
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

/* Turns the exchange's response into MHD's and queues it, with the
 * request id. */
static enum MHD_Result send_response(struct MHD_Connection *conn, struct exchange *ex, bool close)
{
    struct response *res = &ex->res;
    struct MHD_Response *r;
    bool has_body = res->fd >= 0 || res->text || res->json;
    if (res->fd >= 0) {
        r = MHD_create_response_from_fd_at_offset64((uint64_t)res->fd_size, res->fd,
                                                    (uint64_t)res->fd_offset);
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
    MHD_add_response_header(r, "X-Request-Id", ex->req.request_id);
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES)
        ex->queued = true;
    return ret;
}

/* Paths the API owns; everything else is the browser app. */
static bool is_api_path(const char *path)
{
    return strcmp(path, "/v1") == 0 || strncmp(path, "/v1/", 4) == 0 ||
           strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           strcmp(path, "/metrics") == 0;
}

/* The conn of a connection (MHD's socket context). */
static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* What the headers say about the body, gathered in one pass over them. */
struct framing {
    int content_lengths, transfer_encodings;
    const char *content_length, *transfer_encoding;
    bool nul;           /* a header line held a NUL byte (or was folded) */
    bool bare_cr;       /* a header value held a CR not followed by LF */
    const char *expect; /* where the next header line must start */
};

#if MHD_VERSION < 0x00097600
/* libmicrohttpd 0.9.75 keeps the request line and the header lines in place
 * in its read buffer, each line ended by a NUL where its CR LF (or LF) was,
 * and hands out pointers into them. A header line that holds a NUL byte is
 * therefore cut short, and its rest never reaches us: a value that does not
 * end where the next line begins had a NUL in it (or was folded over two
 * lines, which RFC 9112 lets a server refuse too). Later versions refuse
 * NUL bytes themselves. */
static void check_adjacent(struct framing *f, const char *line)
{
    if (f->expect && line != f->expect + 1 && line != f->expect + 2)
        f->nul = true;
}
#else
static void check_adjacent(struct framing *f, const char *line) { (void)f, (void)line; }
#endif

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                       size_t key_size, const char *value, size_t value_size)
{
    (void)kind, (void)key_size;
    struct framing *f = cls;
    check_adjacent(f, key);
    f->expect = value ? value + value_size : key + key_size;
    if (value && memchr(value, '\r', value_size))
        f->bare_cr = true; /* a line end to some proxies, not to MHD */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->content_lengths++;
        f->content_length = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encodings++;
        f->transfer_encoding = value;
    }
    return MHD_YES;
}

/* Refuses what a proxy in front could read differently from us (request
 * smuggling) and what a C string would cut short: NUL bytes in the method,
 * target or headers (raw or as %00), a bare CR or a folded line in a
 * header, Content-Length given twice, both Content-Length and
 * Transfer-Encoding, a transfer coding other than chunked. Sets *has_body.
 * Returns true, or false with the response filled. */
static bool check_framing(struct MHD_Connection *mc, struct conn *c, const char *version,
                          struct exchange *ex, bool *has_body)
{
    struct response *res = &ex->res;
    const char *method = ex->req.method;
    struct framing f = {0};
#if MHD_VERSION < 0x00097600
    /* The request line: METHOD SP+ target SP version, with NULs where MHD
     * cut it; anything else means the client sent a NUL. */
    if (c) {
        bool line_ok = c->raw_target && c->raw_target + c->raw_target_len + 1 == version;
        for (const char *p = method + strlen(method) + 1; line_ok && p < c->raw_target; p++)
            line_ok = *p == ' ';
        if (!line_ok)
            f.nul = true;
    }
    f.expect = version + strlen(version);
#else
    (void)version;
#endif
    MHD_get_connection_values_n(mc, MHD_HEADER_KIND, collect_framing, &f);
#if MHD_VERSION < 0x00097600
    /* After the last header line comes the empty line, and then the end of
     * the header block. */
    const union MHD_ConnectionInfo *hs =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (hs) {
        const char *end = method + hs->header_size;
        if (end - f.expect < 2 || end - f.expect > 4)
            f.nul = true;
    }
#endif
    /* Whatever the verdict, a refusal is answered before such a body. */
    *has_body = f.transfer_encodings > 0 ||
                (f.content_length && strtoull(f.content_length, NULL, 10) > 0);
    if (f.nul || (c && c->nul_in_target)) {
        resp_problem(res, 400, "invalid_request",
                     "a NUL byte (or a folded header line) in the request line or headers");
        return false;
    }
    if (f.bare_cr) {
        resp_problem(res, 400, "invalid_request", "a header value holds a bare CR");
        return false;
    }
    if (f.content_lengths > 1) {
        resp_problem(res, 400, "invalid_request", "Content-Length is given more than once");
        return false;
    }
    if (f.transfer_encodings > 0 && f.content_lengths > 0) {
        resp_problem(res, 400, "invalid_request",
                     "Content-Length and Transfer-Encoding exclude each other");
        return false;
    }
    if (f.transfer_encodings > 1 ||
        (f.transfer_encodings == 1 && strcasecmp(f.transfer_encoding, "chunked") != 0)) {
        resp_problem(res, 501, "not_implemented", "the only transfer coding taken is chunked");
        return false;
    }
    return true;
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

const struct route *http_route(struct request *req, struct response *res, size_t *slot)
{
    if (!is_api_path(req->path)) {
        *slot = metrics_route_static();
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            strcpy(res->allow, "GET, HEAD");
            resp_problem(res, 405, "method_not_allowed", "static files are read with GET");
            return NULL;
        }
        return &static_route;
    }

    const struct route *route = NULL;
    *slot = metrics_route_unmatched();
    switch (router_match(routes, routes_count, req->method, req->path, &route, req->params,
                         &req->nparams, res->allow, sizeof res->allow)) {
    case ROUTER_NOT_FOUND:
        resp_problem(res, 404, "not_found", "no such resource: %s", req->path);
        return NULL;
    case ROUTER_BAD_METHOD:
        resp_problem(res, 405, "method_not_allowed", "%s is not allowed here; see Allow",
                     req->method);
        return NULL;
    case ROUTER_FOUND: break;
    }
    *slot = (size_t)(route - routes);
    req->route = route->pattern;
    return route;
}

/* Answers 413 when Content-Length says more than the request may send. */
static bool body_fits(struct MHD_Connection *conn, struct exchange *ex)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL || strtoull(cl, NULL, 10) <= ex->body_max)
        return true;
    resp_problem(&ex->res, 413, "payload_too_large", "the body is over %llu bytes",
                 (unsigned long long)ex->body_max);
    return false;
}

static bool takes_body(const char *method)
{
    /* DELETE too: DELETE /v1/me carries the password (others ignore one). */
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* The first half of the pipeline, run when the headers are complete and
 * before any of the body is read: framing, route, body limit, token.
 * Returns true when the request may go on (its body is read next), or
 * false with the response filled. Sets *has_body. */
static bool admit(struct MHD_Connection *conn, struct conn *c, const char *version,
                  struct exchange *ex, bool *has_body)
{
    struct request *req = &ex->req;
    struct response *res = &ex->res;
    ex->slot = metrics_route_unmatched();
    ex->body_max = HTTP_MAX_PUBLIC_BODY;
    if (!check_framing(conn, c, version, ex, has_body))
        return false;

    const struct route *route = http_route(req, res, &ex->slot);
    if (route == NULL)
        return false;
    if (route == &static_route) {
        ex->route = route;
        return body_fits(conn, ex);
    }
    ex->keep_body = takes_body(req->method) && !route->stream_body;
    if (route->needs_auth && ex->keep_body)
        ex->body_max = HTTP_MAX_BODY;

    if (!route->stream_body && !body_fits(conn, ex))
        return false;
    bool token = route->needs_auth ||
                 (route->auth_optional &&
                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
    if (token && !authenticate(conn, req, res))
        return false;
    ex->route = route;
    if (!route->stream_body)
        return true;
    /* The handler's first run decides, before a byte of the body is read,
     * whether to take it and where it goes (request.h). */
    enum handler_status st = run_handler(ex);
    if (st != HANDLER_DONE || req->body_fd < 0) {
        if (st != HANDLER_DONE) {
            log_error("http: %s must answer its first run", route->pattern);
            resp_internal(res);
        }
        return false;
    }
    resp_clear(res);
    resp_init(res);
    ex->stream = true;
    ex->body_max = req->body_max;
    ex->stream_seen_ms = mono_ms();
    return body_fits(conn, ex);
}

/* The second half, once the body is in: parse it, run the handler (or hand
 * it to the slow-work pool, setting WAIT_SLOW_POOL). Returns what the
 * handler returned (HANDLER_DONE for an answer of the glue's own). */
static enum handler_status dispatch(struct MHD_Connection *conn, struct exchange *ex)
{
    struct request *req = &ex->req;
    struct response *res = &ex->res;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, req);
    if (ex->keep_body && ex->body_len > 0) {
        const char *why;
        if (json_body_parse(ex->body, ex->body_len, &req->body, &why) < 0)
            return resp_problem(res, 400, "invalid_json", "%s", why);
    }
    if (ex->route->slow) {
        /* A bounded queue: a storm of logins is answered 503 at once, and a
         * login never waits behind more than hash_queue_max others. */
        if (atomic_fetch_add(&slow_in_pool, 1) >= hash_concurrency + hash_queue_max) {
            atomic_fetch_sub(&slow_in_pool, 1);
            return hash_busy(res);
        }
        ex->queued_ms = mono_ms();
        ex->wait = WAIT_SLOW_POOL; /* before the hand-over: the pool may finish at once */
        if (batchq_push(&slow_pool, ex))
            return HANDLER_RERUN;
        atomic_fetch_sub(&slow_in_pool, 1);
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
    enum MHD_Result ret = send_response(conn, ex, false);
    metrics_observe(ex->slot, ex->res.status, mono_us() - ex->started_us);
    return ret;
}

static void resume_conn(void *conn) { MHD_resume_connection(conn); }

/* The client's address into out (46 bytes): the peer's; when the peer is
 * on loopback (nginx in front), the last entry of X-Forwarded-For, which
 * that proxy appended. "" when unknown. */
static void client_address(struct MHD_Connection *conn, char *out)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    bool loopback = false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, out, 46);
        loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, out, 46);
        loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    const char *xff = loopback
                          ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For")
                          : NULL;
    if (xff == NULL)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    size_t n = strcspn(last, " ");
    unsigned char bin[sizeof(struct in6_addr)];
    char addr[46];
    if (n == 0 || n >= sizeof addr)
        return;
    memcpy(addr, last, n);
    addr[n] = '\0';
    /* Only a well-formed address is taken; anything else keeps the peer's. */
    if (inet_pton(AF_INET, addr, bin) == 1 || inet_pton(AF_INET6, addr, bin) == 1)
        memcpy(out, addr, n + 1);
}

/* The request's id into out (65 bytes): the X-Request-Id nginx sent when
 * it is 1..64 characters of [A-Za-z0-9._-], else a new one, 16 hex digits
 * unique in this process and unlikely to repeat across nodes. */
static void request_id(struct MHD_Connection *conn, char *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = v ? strlen(v) : 0;
    if (n > 0 && n <= 64 &&
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-") == n) {
        memcpy(out, v, n + 1);
        return;
    }
    uint32_t seq = atomic_fetch_add(&request_id_next, 1);
    snprintf(out, 65, "%016llx", (unsigned long long)(request_id_base + seq));
}

static int64_t cuts_gauge(void) { return (int64_t)deadline_cuts(); }
static int64_t hash_queue_gauge(void) { return atomic_load(&slow_in_pool); }

/* The first call, with the headers: make the exchange and admit the
 * request. A refusal is answered at once when a body follows (MHD then
 * reads none of it and closes the connection), else at the last call, so
 * that the connection stays open for the next request. */
static enum MHD_Result first_call(struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, void **con_cls)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    if (ex == NULL)
        return MHD_NO;
    ex->started_us = mono_us();
    ex->req.method = method;
    ex->req.path = url;
    ex->req.defer = &ex->defer;
    client_address(conn, ex->req.client_addr);
    request_id(conn, ex->req.request_id);
    ex->req.body_fd = -1;
    ex->req.range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    ex->req.content_range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Range");
    ex->req.if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    atomic_init(&ex->defer.state, DEFER_PENDING);
    resp_init(&ex->res);
    *con_cls = ex;
    struct conn *c = conn_of(conn);
    bool has_body = false;
    if (admit(conn, c, version, ex, &has_body)) {
        if (c)
            deadline_enter(&c->dl, has_body ? DL_BODY : DL_NONE);
        return MHD_YES;
    }
    if (c)
        deadline_enter(&c->dl, DL_NONE);
    if (!has_body) {
        ex->answered = true;
        return MHD_YES;
    }
    ex->sent = true;
    metrics_observe(ex->slot, ex->res.status, mono_us() - ex->started_us);
    return send_response(conn, ex, true);
}

/* A piece of a streamed body: written to the handler's file. A body that
 * keeps coming has its deadline pushed on (at most once a second): an
 * upload may take long, but may not stall for request_body_timeout_s. */
static enum MHD_Result stream_part(struct MHD_Connection *conn, struct exchange *ex,
                                   const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(ex->req.body_fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_warn("http: %s: writing the body failed: %s", ex->req.path, strerror(errno));
            return MHD_NO;
        }
        data += w;
        n -= (size_t)w;
        ex->req.body_received += (uint64_t)w;
    }
    int64_t now = mono_ms();
    struct conn *c = conn_of(conn);
    if (c && now - ex->stream_seen_ms >= 1000) {
        ex->stream_seen_ms = now;
        deadline_enter(&c->dl, DL_BODY);
    }
    return MHD_YES;
}

/* A piece of the body: kept (up to body_max) or, for a method that takes
 * none, counted and dropped. Past body_max — only a chunked body gets
 * there, a Content-Length over it was refused by admit() — the connection
 * ends: MHD can answer only before the body or after all of it. */
static enum MHD_Result body_part(struct MHD_Connection *conn, struct exchange *ex, const char *data,
                                 size_t n)
{
    ex->body_seen += n;
    if (ex->body_seen > ex->body_max) {
        log_debug("http: %s %s: body over %llu bytes; closing", ex->req.method, ex->req.path,
                  (unsigned long long)ex->body_max);
        return MHD_NO;
    }
    if (ex->stream)
        return stream_part(conn, ex, data, n);
    if (!ex->keep_body)
        return MHD_YES;
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
    memcpy(ex->body + ex->body_len, data, n);
    ex->body_len += n;
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    struct exchange *ex = *con_cls;
    if (ex == NULL)
        return first_call(conn, url, method, version, con_cls);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return ex->sent ? MHD_YES : body_part(conn, ex, upload_data, n);
    }
    if (ex->sent)
        return MHD_YES;        /* already answered on the first call */
    if (ex->wait != WAIT_NONE) /* resumed */
        return proceed(conn, ex, resumed(ex));
    struct conn *c = conn_of(conn);
    if (c)
        deadline_enter(&c->dl, DL_NONE);
    if (ex->answered)
        return proceed(conn, ex, HANDLER_DONE);
    return proceed(conn, ex, dispatch(conn, ex));
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    /* Kept alive: the next request line has until the idle deadline. */
    struct conn *c = conn_of(conn);
    if (c)
        deadline_enter(&c->dl, DL_IDLE);
    struct exchange *ex = *con_cls;
    if (ex == NULL)
        return;
    if (access_log)
        log_access(&(struct log_access){
            ex->req.request_id, ex->req.method, ex->req.path, ex->req.client_addr,
            ex->queued && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ex->res.status : 499,
            mono_us() - ex->started_us, ex->req.user_id});
    if (ex->req.state_free)
        ex->req.state_free(ex->req.state);
    if (ex->req.body)
        json_decref(ex->req.body);
    resp_clear(&ex->res);
    free(ex->body);
    free(ex);
    *con_cls = NULL;
}

/* A connection opened or closed: its struct conn and its deadline. */
static void notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (c == NULL || ci == NULL) {
            free(c);
            return; /* no deadline for this one; everything else works */
        }
        deadline_open(&c->dl, ci->connect_fd);
        *socket_context = c;
    } else if (*socket_context) {
        struct conn *c = *socket_context;
        deadline_close(&c->dl);
        free(c);
        *socket_context = NULL;
    }
}

/* The request line has arrived (MHD's URI log callback, before it cuts
 * the target into path and query): a kept-alive connection's next request
 * starts its header deadline here, and the raw target is noted for the
 * NUL check. Returns the exchange to start with: none yet. */
static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    struct conn *c = conn_of(conn);
    if (c) {
        deadline_enter(&c->dl, DL_HEADERS); /* from now, when it was waiting */
        c->raw_target = uri;
        c->raw_target_len = uri ? strlen(uri) : 0;
        c->nul_in_target = false;
    }
    return NULL;
}

/* Percent-decoding of the path and query: as MHD's own, except that a
 * string whose decoding holds a NUL (%00) stays encoded, so that it can never
 * be read as a shorter path ("/v1/threads/1%00/x" is not "/v1/threads/1"),
 * and the request is refused (check_framing). */
static size_t unescape_cb(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return len;
    memcpy(copy, s, len + 1);
    size_t n = MHD_http_unescape(copy);
    if (memchr(copy, '\0', n) == NULL) {
        memcpy(s, copy, n + 1);
        len = n;
    } else {
        struct conn *c = conn_of(conn);
        if (c)
            c->nul_in_target = true;
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
    hash_concurrency = cfg->hash_concurrency;
    access_log = cfg->access_log;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)getpid() ^ (uint32_t)mono_us();
    request_id_base = (uint64_t)r << 32;
    hash_queue_max = cfg->hash_queue_max;
    hash_wait_ms = cfg->hash_wait_ms;
    int64_t header_ms = (int64_t)cfg->header_timeout_s * 1000;
    if (deadline_start(header_ms, (int64_t)cfg->body_timeout_s * 1000,
                       (int64_t)cfg->connection_timeout_s * 1000 + header_ms) < 0)
        return -1;
    if (metrics_gauge("chatd_http_deadline_cuts",
                      "Connections closed past their request line, header or body deadline.",
                      cuts_gauge) < 0 ||
        metrics_gauge("chatd_hash_queue", "Registrations and logins hashing or waiting to.",
                      hash_queue_gauge) < 0) {
        log_error("http: out of memory");
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
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_address_limit,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_NOTIFY_CONNECTION, notify_conn,
        NULL, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb,
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
    deadline_stop();
}
