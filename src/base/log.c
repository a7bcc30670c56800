/* log.c — leveled logging to stderr, as text or JSON lines.
 *
 * One fprintf per line under stdio's own FILE lock, so lines from several
 * threads never interleave. Level and format are set once at start-up. */
#include "base/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;
static enum log_format current_format = LOG_TEXT;
static _Thread_local const char *request_id;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level) { current_level = level; }

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_set_format(enum log_format format) { current_format = format; }

int log_format_parse(const char *name, enum log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LOG_JSON;
    else
        return -1;
    return 0;
}

void log_set_request_id(const char *id) { request_id = id; }

/* The current UTC time as 2026-11-20T10:00:00.123Z into out (32 bytes). */
static void timestamp(char *out)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(tv.tv_usec / 1000) % 1000);
}

/* Copies s into out (n bytes) with every byte outside printable ASCII as
 * '?': a log line stays one line of valid UTF-8 whatever a client sent. */
static void printable(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

/* Writes obj as one line and frees it. */
static void put_json(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(obj);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char stamp[32];
    timestamp(stamp);
    if (current_format == LOG_JSON) {
        char clean[sizeof msg];
        json_t *o = json_pack("{s:s, s:s}", "ts", stamp, "level", level_names[level]);
        /* Messages may quote client bytes: jansson takes only UTF-8. */
        json_t *m = json_string(msg);
        if (m == NULL) {
            printable(msg, clean, sizeof clean);
            m = json_string(clean);
        }
        json_object_set_new(o, "msg", m);
        if (request_id)
            json_object_set_new(o, "request_id", json_string(request_id));
        put_json(o);
    } else if (request_id) {
        fprintf(stderr, "%s %s %s [rid=%s]\n", stamp, level_names[level], msg, request_id);
    } else {
        fprintf(stderr, "%s %s %s\n", stamp, level_names[level], msg);
    }
}

void log_access(const struct log_access *a)
{
    char stamp[32], path[512], method[16];
    timestamp(stamp);
    printable(a->path, path, sizeof path);
    printable(a->method, method, sizeof method);
    const char *addr = a->addr && a->addr[0] ? a->addr : "-";
    double ms = (double)a->duration_us / 1000.0;
    if (current_format == LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:s}", "ts", stamp, "level",
                              "info", "type", "access", "request_id", a->request_id, "method",
                              method, "path", path, "status", a->status, "ms",
                              (double)(a->duration_us / 10) / 100.0, "addr", addr);
        if (o && a->user_id)
            json_object_set_new(o, "user_id", json_integer(a->user_id));
        if (o)
            put_json(o);
    } else {
        char user[24] = "-";
        if (a->user_id)
            snprintf(user, sizeof user, "%lld", (long long)a->user_id);
        fprintf(stderr, "%s info access %s %s %s %d %.2fms user=%s addr=%s\n", stamp, a->request_id,
                method, path, a->status, ms, user, addr);
    }
}
