/* http.h — the HTTP server: libmicrohttpd glue, the only file that uses it.
 *
 * http_start() runs an epoll thread pool with suspend/resume enabled. For
 * each request, once its headers are in and before any of its body is read,
 * it refuses NUL bytes and ambiguous framing (400), matches the route table
 * (404, 405), checks Content-Length against the route's limit (413) and
 * authenticates the bearer token (401); then it reads the body (at most
 * HTTP_MAX_BODY bytes on routes that need a token, HTTP_MAX_PUBLIC_BODY on
 * the others; a chunked body past it ends the connection), parses the JSON
 * body, calls the handler, and sends its struct response. Paths outside /v1,
 * /healthz, /readyz and /metrics go to the static file handler. Request
 * line and headers must arrive within request_header_timeout_s, a body
 * within request_body_timeout_s (deadline.h).
 *
 * May call: chat/auth, live/hub, http (router, static, jsonv, request, deadline), base,
 * libmicrohttpd (the only module that does). */
#ifndef CHAT_HTTP_H
#define CHAT_HTTP_H

#include <stddef.h>

#include "base/config.h"
#include "http/request.h"
#include "http/router.h"

#define HTTP_MAX_BODY (1024 * 1024)
/* The body limit of routes without a token (registration, login): what
 * nobody has vouched for costs little memory. */
#define HTTP_MAX_PUBLIC_BODY (16 * 1024)

/* Starts serving per cfg (listen, threads, connection_limit,
 * connection_timeout_s). Returns 0, or -1 with the reason logged. */
int http_start(const struct config *cfg);

/* The TCP port actually bound (useful when listen asked for port 0). */
unsigned http_port(void);

/* The routing step of the pipeline (dispatch() in http.c), apart so that
 * fuzz/fuzz_http.c can drive it without a connection: req->method and
 * req->path (decoded) in; returns the route to run (the static-file route for
 * paths outside the API) with req->params, req->nparams and req->route set,
 * or NULL with the 404/405 problem answer in res. *slot gets the metrics
 * slot. Touches no database; any thread. */
const struct route *http_route(struct request *req, struct response *res, size_t *slot);

/* Stops accepting, answers what is in flight, and stops the threads. */
void http_stop(void);

#endif
