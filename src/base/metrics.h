/* metrics.h — counters and histograms, exposed as Prometheus text.
 *
 * Per route (by index into the route table, plus one slot for static files
 * and one for unmatched paths): requests by status class and a latency
 * histogram. Updates are lock-free atomics; rendering takes a consistent
 * enough snapshot for monitoring. Modules above (the hub, …) register their
 * own gauges, so that this module knows none of them.
 *
 * May call: nothing but libc. */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Allocates the per-route slots: labels[0..n) name the routes ("GET
 * /v1/threads", borrowed: they must live as long as the process), and two
 * slots follow for static files and unmatched paths. Call once before
 * serving. Returns 0 or -1. */
int metrics_init(const char *const *labels, size_t n);

/* Registers a gauge: read() is called at each render, from the thread that
 * renders; name and help are borrowed (string literals). Call before
 * serving; at most 16 in all. Returns 0 or -1. */
int metrics_gauge(const char *name, const char *help, int64_t (*read)(void));

/* The same for a counter (a value that only grows; rendered as such). */
int metrics_counter(const char *name, const char *help, int64_t (*read)(void));

/* Records one request: route index (see metrics_route_*), HTTP status,
 * duration in microseconds. Thread-safe. */
void metrics_observe(size_t route, int status, int64_t duration_us);

/* The slot for static files and for requests that matched no route. */
size_t metrics_route_static(void);
size_t metrics_route_unmatched(void);

/* Outcomes of a request to a push provider. */
enum push_result {
    PUSH_RESULT_OK,
    PUSH_RESULT_UNREGISTERED,
    PUSH_RESULT_BAD_TOKEN,
    PUSH_RESULT_RETRY,
    PUSH_RESULT_FAILED,
    PUSH_RESULT_COUNT
};

/* Records one provider answer: provider 0 = apns, 1 = fcm; latency_ms from
 * the message being stored to the answer. Thread-safe. */
void metrics_push_result(int provider, int result, int64_t latency_ms);

/* Sets the outbox depth gauge (jobs waiting). */
void metrics_push_outbox(int64_t depth);

/* Stages of the send and wake paths, timed in microseconds. */
enum metrics_stage {
    STAGE_SEND_COMMIT, /* a send request arrived → its transaction committed */
    STAGE_COMMIT_WAKE, /* a commit notified the hub → the woken poll's handler runs */
    STAGE_COUNT
};

/* Records one stage duration. Thread-safe. */
void metrics_stage(enum metrics_stage stage, int64_t duration_us);

/* Counts events handed to clients by inbox answers. */
void metrics_events_delivered(size_t n);

/* Renders everything in Prometheus text format. Returns a malloc'd string
 * (caller frees) and its length in *len, or NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
