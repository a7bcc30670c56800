/* log.h — leveled logging to stderr, one line per call, thread-safe.
 *
 * Text lines look like `2026-11-20T10:00:00.123Z warn db: connection lost`,
 * with ` [rid=…]` at the end when the calling thread is serving a request.
 * With the JSON format (log_format = json) each line is one JSON object:
 * {"ts":"2026-11-20T10:00:00.123Z","level":"warn","msg":"db: connection lost",
 *  "request_id":"…"}. Access lines (log_access) are `info` lines with their
 * own fields. Never log secrets (passwords, tokens, token hashes) or the
 * query string of a request (it may hold a search).
 *
 * May call: libc, jansson. */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

/* The longest request id kept (characters, without the NUL). */
#define LOG_REQUEST_ID_MAX 64

/* Sets the lowest level that is printed. Call before starting threads. */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug" into *out. Returns 0, or -1 for
 * an unknown name (and leaves *out alone). */
int log_level_parse(const char *name, enum log_level *out);

/* Sets the line format. Call before starting threads. */
void log_set_format(enum log_format format);

/* Parses "text" or "json" into *out. Returns 0, or -1 (and leaves *out
 * alone). */
int log_format_parse(const char *name, enum log_format *out);

/* Names the request the calling thread works for, so that its log lines
 * carry the id; NULL when it is done. The string must live until cleared.
 * Thread-local: any thread. */
void log_set_request_id(const char *id);

/* Prints one line at `level` when that level is enabled; printf format. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* One answered (or abandoned) HTTP request, for the access log. Strings are
 * borrowed for the call; path is the decoded path without the query, and
 * any byte outside printable ASCII is written as '?'. */
struct log_access {
    const char *request_id;
    const char *method;
    const char *path;
    const char *addr;    /* client address, "" unknown */
    int status;          /* HTTP status; 499 when the connection ended before the
                            answer was sent in full (nginx's code) */
    int64_t duration_us; /* from the request's headers to its end, µs */
    int64_t user_id;     /* authenticated user, 0 none */
};

/* Prints an access line (at info level, whatever the level is set to:
 * the access log has its own switch, access_log). Any thread. */
void log_access(const struct log_access *a);

#endif
