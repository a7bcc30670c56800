/* response.c — the one place that writes problem details and JSON answers.
 *
 * Every error a client sees comes from resp_problem(), so the format
 * (RFC 9457: status, code, title, detail) lives here alone. */
#define _GNU_SOURCE /* vasprintf */
#include "http/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

void resp_init(struct response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 500;
    res->fd = -1;
}

void resp_clear(struct response *res)
{
    if (res->json)
        json_decref(res->json);
    res->json = NULL;
    free(res->text);
    res->text = NULL;
    if (res->fd >= 0)
        close(res->fd);
    res->fd = -1;
    for (int i = 0; i < res->nheaders; i++)
        free(res->headers[i].value);
    res->nheaders = 0;
}

void resp_header(struct response *res, const char *name, const char *fmt, ...)
{
    if (res->nheaders >= RESP_MAX_HEADERS) {
        log_error("http: too many headers; %s dropped", name);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int n = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    res->headers[res->nheaders].name = name;
    res->headers[res->nheaders].value = v;
    res->nheaders++;
}

/* Drops the body the response has (JSON or text). */
static void drop_body(struct response *res)
{
    if (res->json)
        json_decref(res->json);
    res->json = NULL;
    free(res->text);
    res->text = NULL;
}

enum handler_status resp_json(struct response *res, int status, json_t *body)
{
    drop_body(res);
    res->status = status;
    res->json = body;
    res->content_type = "application/json";
    return HANDLER_DONE;
}

enum handler_status resp_json_text(struct response *res, int status, char *text, size_t len)
{
    drop_body(res);
    res->status = status;
    res->text = text;
    res->text_len = len;
    res->content_type = "application/json";
    return HANDLER_DONE;
}

enum handler_status resp_empty(struct response *res, int status)
{
    drop_body(res);
    res->status = status;
    return HANDLER_DONE;
}

static const char *status_title(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* Replaces, in place, every byte of s that does not start a valid UTF-8
 * character with '?': a detail quotes what the client sent (a path decoded
 * from %A9, a method), and vsnprintf may cut a character in two, while
 * jansson refuses a string that is not UTF-8 (and the answer would go out
 * without its problem body). */
static void utf8_scrub(char *s)
{
    while (*s) {
        unsigned char c = (unsigned char)*s;
        size_t n = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        if (n > 0 && strnlen(s, n) == n && utf8_valid(s, n)) {
            s += n;
        } else {
            *s++ = '?';
        }
    }
}

enum handler_status resp_problem(struct response *res, int status, const char *code,
                                 const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    utf8_scrub(detail);
    resp_json(res, status,
              json_pack("{s:i, s:s, s:s, s:s}", "status", status, "code", code, "title",
                        status_title(status), "detail", detail));
    res->content_type = "application/problem+json";
    return HANDLER_DONE;
}

enum handler_status resp_internal(struct response *res)
{
    return resp_problem(res, 500, "internal", "the server failed; nothing was changed");
}

void req_state_set(struct request *req, void *state, void (*state_free)(void *state))
{
    req->state = state;
    req->state_free = state_free;
}

const char *req_query(const struct request *req, const char *key)
{
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value;
    return NULL;
}

const char *req_path_text(const struct request *req, int i, size_t *len)
{
    const char *s = req->path + req->params[i];
    *len = strcspn(s, "/");
    return s;
}

bool req_query_int(const struct request *req, struct response *res, const char *key, int64_t def,
                   int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = req_query(req, key);
    if (v == NULL) {
        *out = def;
        return true;
    }
    int64_t n;
    if (parse_int(v, &n) < 0 || n < lo || n > hi) {
        resp_problem(res, 400, "invalid_request",
                     "query parameter '%s' must be an integer in %lld..%lld", key, (long long)lo,
                     (long long)hi);
        return false;
    }
    *out = n;
    return true;
}

json_t *req_body(const struct request *req, struct response *res)
{
    if (req->body == NULL)
        resp_problem(res, 400, "invalid_json", "this call needs a JSON object body");
    return req->body;
}
