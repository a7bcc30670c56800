/* static.h — the browser app's files, served by the HTTP glue for every
 * path outside the API.
 *
 * May call: base. */
#ifndef CHAT_STATIC_H
#define CHAT_STATIC_H

#include "http/request.h"

/* Remembers root (a directory; resolved to an absolute path) as the app's
 * files. Call once from main before serving. Returns 0, or -1 when root
 * cannot be resolved (logged). */
int static_init(const char *root);

/* The handler for GET/HEAD of a non-API path: the file under the root, or
 * index.html for a path that names no file (client-side routes); 404
 * problem otherwise. Never opens a file outside the root. Any thread. */
enum handler_status static_serve(struct request *req, struct response *res);

#endif
