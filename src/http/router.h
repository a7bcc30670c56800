/* router.h — one static table of routes and the matcher over it.
 *
 * A route is {method, pattern, handler, needs_auth}. Patterns are literal
 * segments, `{id}` segments and `{text}` segments; an `{id}` matches a
 * decimal id 1..2^53 and lands in request.params in order; a `{text}`
 * matches any segment of 1..255 bytes (of the decoded path) and its params
 * entry is the byte offset where the segment starts in the path
 * (req_path_text reads it). Literal routes listed before an `{id}`
 * route win (`/v1/sessions/current` before `/v1/sessions/{id}`). The table
 * itself is in routes.c.
 *
 * May call: http/request, base. */
#ifndef CHAT_ROUTER_H
#define CHAT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

struct route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/v1/threads/{id}/messages" */
    handler_fn handler;
    bool needs_auth;    /* a valid bearer token is required */
    bool slow;          /* runs in the slow-work pool (password hashing), never
                           in an HTTP thread: see http.c */
    bool auth_optional; /* !needs_auth: a bearer token, when sent, is checked and
                           sets user_id (signed attachment links come without) */
    bool stream_body;   /* the body is raw bytes streamed into a file the
                           handler opens (req->body_fd), never buffered: see
                           request.h */
};

/* The application's routes (routes.c) and their count. */
extern const struct route routes[];
extern const size_t routes_count;

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_BAD_METHOD };

/* Finds the route for method and path in table (n rows). FOUND: *out is the
 * route and params[0..*nparams) the ids (params holds REQ_MAX_PARAMS).
 * BAD_METHOD: the path exists for other methods, listed in allow as
 * "GET, POST" (allow_len bytes). NOT_FOUND otherwise. HEAD matches GET. */
enum router_result router_match(const struct route *table, size_t n, const char *method,
                                const char *path, const struct route **out, int64_t *params,
                                int *nparams, char *allow, size_t allow_len);

#endif
