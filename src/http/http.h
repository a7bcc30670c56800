/* http.h — the HTTP server: libmicrohttpd glue, the only file that uses it.
 *
 * http_start() runs an epoll thread pool with suspend/resume enabled. For
 * each request it reads the body (at most HTTP_MAX_BODY bytes, refused early
 * when Content-Length says more), matches the route table, parses the JSON
 * body, authenticates the bearer token, calls the handler, and sends its
 * struct response. Paths outside /v1, /healthz, /readyz and /metrics go to
 * the static file handler.
 *
 * May call: chat/auth, live/hub, http (router, static, jsonv, request), base, libmicrohttpd (the
 * only module that does). */
#ifndef CHAT_HTTP_H
#define CHAT_HTTP_H

#include "base/config.h"

#define HTTP_MAX_BODY (1024 * 1024)

/* Starts serving per cfg (listen, threads, connection_limit,
 * connection_timeout_s). Returns 0, or -1 with the reason logged. */
int http_start(const struct config *cfg);

/* The TCP port actually bound (useful when listen asked for port 0). */
unsigned http_port(void);

/* Stops accepting, answers what is in flight, and stops the threads. */
void http_stop(void);

#endif
