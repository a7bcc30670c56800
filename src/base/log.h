/* log.h — leveled logging to stderr, one line per call, thread-safe.
 *
 * Lines look like `2026-11-20T10:00:00.123Z warn db: connection lost`.
 * Never log secrets (passwords, tokens, token hashes).
 *
 * May call: libc. */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the lowest level that is printed. Call before starting threads. */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug" into *out. Returns 0, or -1 for
 * an unknown name (and leaves *out alone). */
int log_level_parse(const char *name, enum log_level *out);

/* Prints one line at `level` when that level is enabled; printf format. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
