/* request.h — what a handler gets and what it gives back.
 *
 * A handler is a plain function `void h(struct request *, struct response *)`:
 * the HTTP glue (http.c) fills the request — method, path ids, query, parsed
 * JSON body, the authenticated user — and turns the response into HTTP. A
 * handler never sees libmicrohttpd, so it can be called from a unit test.
 *
 * Ownership: everything in a request belongs to the glue and lives until the
 * response is sent. A handler gives the response its JSON body with
 * resp_json(), which steals the reference. */
#ifndef CHAT_REQUEST_H
#define CHAT_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define REQ_MAX_PARAMS 4
#define REQ_MAX_QUERY 16

struct kv {
    const char *key;
    const char *value;
};

struct request {
    const char *method;                 /* "GET", "POST", … */
    const char *path;                   /* decoded path, without the query */
    int64_t params[REQ_MAX_PARAMS];     /* the {id} segments of the route, in order */
    int nparams;
    struct kv query[REQ_MAX_QUERY];     /* query arguments, decoded */
    int nquery;
    json_t *body;                       /* parsed JSON object, or NULL without a body */
    int64_t user_id;                    /* authenticated user, 0 on public routes */
    int64_t session_id;                 /* the caller's session, 0 on public routes */
    const char *route;                  /* the route's pattern, for metrics */
    void *park;                         /* glue's handle for a parked long-poll */
    struct defer *defer;                /* glue's handle for a deferred answer */
    int stage;                          /* the handler's progress across runs, from 0 */
    int defer_rc;                       /* the result of deferred work, for the next run */
    int64_t defer_val[2];               /* values deferred work hands to the next run */
};

/* How the glue answers: a JSON body, a file, or nothing. */
struct response {
    int status;               /* HTTP status; handlers start from 500 */
    json_t *json;             /* body, owned; NULL for no body */
    const char *content_type; /* static string; default application/json */
    char *text;               /* a malloc'd non-JSON body (metrics), owned */
    size_t text_len;
    int fd;                   /* a file to send (static files), owned; -1 none */
    int64_t fd_size;
    char allow[64];           /* Allow header for 405 */
    int retry_after_s;        /* Retry-After header when > 0 */
    bool parked;              /* the handler parked the request (long-poll) */
    bool deferred;            /* another thread answers later: req_defer_done() */
    bool rerun;               /* with deferred: once done, run the handler again */
};

/* A deferred answer: a handler that hands its work to another thread sets
 * res->deferred before handing it over and then leaves the response alone;
 * the other thread fills the response and calls req_defer_done(req->defer)
 * exactly once, after which it must touch neither the request nor the
 * response. The glue suspends the connection meanwhile (no HTTP thread
 * waits) and sends the answer once both sides are done; callable from any
 * thread. With res->rerun also set, the glue does not send the response but
 * runs the handler again (with a fresh response; req->stage tells it where it
 * was, req->defer_rc may carry the other thread's result). */
struct defer;
void req_defer_done(struct defer *d);

/* Initialises a response: status 500, no body, no file. */
void resp_init(struct response *res);

/* Frees what the response owns. Safe to call twice. */
void resp_clear(struct response *res);

/* Answers `status` with `body` as JSON. Steals the reference to body. */
void resp_json(struct response *res, int status, json_t *body);

/* Answers `status` with no body (204 and the like). */
void resp_empty(struct response *res, int status);

/* Answers with RFC 9457 problem details: status, the stable snake_case
 * `code`, a title derived from the status, and `detail` (printf format).
 * Replaces whatever body the response had. */
void resp_problem(struct response *res, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers 500 `internal`; nothing a handler did was committed. */
void resp_internal(struct response *res);

/* The query argument `key`, or NULL when absent. */
const char *req_query(const struct request *req, const char *key);

/* Reads the query argument `key` as an integer in lo..hi into *out, or `def`
 * when absent. Returns true; on a malformed or out-of-range value answers
 * 400 invalid_request and returns false. */
bool req_query_int(const struct request *req, struct response *res, const char *key,
                   int64_t def, int64_t lo, int64_t hi, int64_t *out);

/* The request's JSON object body. Answers 400 invalid_json and returns NULL
 * when there is none. The reference stays the request's. */
json_t *req_body(const struct request *req, struct response *res);

#endif
