/* request.h — what a handler gets and what it gives back.
 *
 * A handler is `enum handler_status h(struct request *, struct response *)`:
 * the HTTP glue (http.c) fills the request — method, path ids, query, parsed
 * JSON body, the authenticated user — runs the handler, and acts on the
 * status it returns:
 *
 *   HANDLER_DONE   the response is filled: send it.
 *   HANDLER_RERUN  the handler handed work to another thread (a batch
 *                  worker) with req->defer; that thread calls
 *                  req_defer_done(req->defer) exactly once when finished.
 *                  Meanwhile the connection is suspended (no HTTP thread
 *                  waits); then the glue runs the handler again, with a fresh
 *                  response, and the handler answers from its state.
 *   HANDLER_PARK   a long-poll: the handler registered req->waiter with the
 *                  hub and found nothing to answer. The glue suspends the
 *                  connection and parks it (hub_sleep); a wake-up runs the
 *                  handler again.
 *
 * Routes marked stream_body (uploads) run their handler once more, first:
 * when the headers are in and before a byte of the body is read, with
 * req->body_fd = -1 and runs = 0. It either answers (a refusal: the body is
 * never read, and the connection closes) or sets req->body_fd to a file
 * open for writing at the right offset and req->body_max to the bytes it
 * takes, and returns HANDLER_DONE with the response untouched. The glue
 * then writes the body there as it arrives (on the HTTP thread, a few KiB
 * at a time; a body past body_max ends the connection), counts it in
 * req->body_received, and runs the handler again (runs = 1) once the body
 * is complete. The request's state_free closes the file, however the
 * request ends.
 *
 * A handler that runs more than once keeps what it needs between runs in
 * req->state, one typed struct of its own that it allocates on the first run
 * with req_state_set(); the glue frees it through the given function when the
 * request ends, however it ends (answered, connection lost, shutdown). That
 * function is the one place where what the state holds (a hub waiter, a send
 * job) is released.
 *
 * The resp_* helpers return HANDLER_DONE, so a handler ends an answer with
 * `return resp_problem(res, 404, …);`.
 *
 * A handler never sees libmicrohttpd, so it can be called from a unit test.
 * Handlers run on an HTTP thread (or, for routes marked slow, a slow-work
 * pool thread); never on two threads at once for one request.
 *
 * Ownership: everything in a request belongs to the glue and lives until the
 * response is sent. A handler gives the response its JSON body with
 * resp_json(), which steals the reference.
 *
 * May call: base. */
#ifndef CHAT_REQUEST_H
#define CHAT_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define REQ_MAX_PARAMS 4
#define REQ_MAX_QUERY 16

struct response;
struct waiter;

struct kv {
    const char *key;
    const char *value;
};

struct request {
    const char *method;             /* "GET", "POST", … */
    const char *path;               /* decoded path, without the query */
    int64_t params[REQ_MAX_PARAMS]; /* the {id} segments of the route, in order */
    int nparams;
    struct kv query[REQ_MAX_QUERY]; /* query arguments, decoded */
    int nquery;
    json_t *body;                    /* parsed JSON object, or NULL without a body */
    int64_t user_id;                 /* authenticated user, 0 on public routes */
    int64_t session_id;              /* the caller's session, 0 on public routes */
    const char *route;               /* the route's pattern, for metrics */
    char client_addr[46];            /* the client's IP address, "" unknown: the peer's, or
                                        behind a proxy on loopback X-Forwarded-For's last */
    char request_id[65];             /* X-Request-Id: nginx's when it sent a well-formed one
                                        (1..64 of [A-Za-z0-9._-]), else made here (16 hex) */
    const char *range;               /* the Range header, or NULL */
    const char *content_range;       /* the Content-Range header, or NULL */
    const char *if_none_match;       /* the If-None-Match header, or NULL */
    int body_fd;                     /* stream_body routes: where the body goes; -1 none */
    uint64_t body_max;               /* stream_body routes: the most body bytes taken */
    uint64_t body_received;          /* stream_body routes: body bytes written */
    int runs;                        /* how many times the handler ran before this run */
    void *state;                     /* the handler's state across runs (req_state_set) */
    void (*state_free)(void *state); /* frees state when the request ends */
    struct waiter *waiter;           /* HANDLER_PARK: the hub waiter to park */
    struct defer *defer;             /* HANDLER_RERUN: the glue's hand-over, for the worker */
};

/* What a handler asks of the glue (see the top of this file). */
enum handler_status { HANDLER_DONE, HANDLER_RERUN, HANDLER_PARK };

/* A handler: one per route (handlers/routes.c). */
typedef enum handler_status (*handler_fn)(struct request *req, struct response *res);

/* Gives the request the handler's state: state_free(state) runs once when
 * the request ends. Call at most once per request. */
void req_state_set(struct request *req, void *state, void (*state_free)(void *state));

#define RESP_MAX_HEADERS 8

/* How the glue answers: a JSON body, a file, or nothing. */
struct response {
    int status;               /* HTTP status; handlers start from 500 */
    json_t *json;             /* body, owned; NULL for no body */
    const char *content_type; /* static string; default application/json */
    char *text;               /* a malloc'd non-JSON body (metrics), owned */
    size_t text_len;
    int fd;            /* a file to send (static files), owned; -1 none */
    int64_t fd_size;   /* bytes of it to send */
    int64_t fd_offset; /* from this offset (a range) */
    char allow[64];    /* Allow header for 405 */
    int retry_after_s; /* Retry-After header when > 0 */
    int nheaders;      /* extra headers (resp_header) */
    struct {
        const char *name; /* static string */
        char *value;      /* owned */
    } headers[RESP_MAX_HEADERS];
};

/* The other side of HANDLER_RERUN: the worker that took the handler's work
 * calls this exactly once when it is finished (with d = the request's
 * defer), and touches neither the request nor its state afterwards. Any
 * thread. Its void * form suits a struct completion (base/batchq.h). */
struct defer;
void req_defer_done(void *d);

/* Initialises a response: status 500, no body, no file. */
void resp_init(struct response *res);

/* Frees what the response owns. Safe to call twice. */
void resp_clear(struct response *res);

/* Answers `status` with `body` as JSON. Steals the reference to body.
 * Returns HANDLER_DONE (as every resp_* answer does). */
enum handler_status resp_json(struct response *res, int status, json_t *body);

/* Answers `status` with a body of JSON the caller encoded: text (len
 * bytes, malloc'd) is taken over and freed with the response, also when
 * a problem replaces it. Returns HANDLER_DONE. */
enum handler_status resp_json_text(struct response *res, int status, char *text, size_t len);

/* Adds a header to the response: name a static string, the value printf
 * format (copied). Headers beyond RESP_MAX_HEADERS are dropped (logged).
 * Kept when the handler then answers a problem. */
void resp_header(struct response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers `status` with no body (204 and the like). */
enum handler_status resp_empty(struct response *res, int status);

/* Answers with RFC 9457 problem details: status, the stable snake_case
 * `code`, a title derived from the status, and `detail` (printf format).
 * Replaces whatever body the response had. Returns HANDLER_DONE. */
enum handler_status resp_problem(struct response *res, int status, const char *code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Answers 500 `internal`; nothing a handler did was committed. */
enum handler_status resp_internal(struct response *res);

/* The query argument `key`, or NULL when absent. */
const char *req_query(const struct request *req, const char *key);

/* The {text} path segment whose offset is params[i] (router.h): a pointer
 * into req->path (borrowed), *len bytes long, not NUL-terminated. */
const char *req_path_text(const struct request *req, int i, size_t *len);

/* Reads the query argument `key` as an integer in lo..hi into *out, or `def`
 * when absent. Returns true; on a malformed or out-of-range value answers
 * 400 invalid_request and returns false. */
bool req_query_int(const struct request *req, struct response *res, const char *key, int64_t def,
                   int64_t lo, int64_t hi, int64_t *out);

/* The request's JSON object body. Answers 400 invalid_json and returns NULL
 * when there is none. The reference stays the request's. */
json_t *req_body(const struct request *req, struct response *res);

#endif
