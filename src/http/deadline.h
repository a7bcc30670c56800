/* deadline.h — absolute deadlines for reading a request (slowloris).
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that sends
 * a byte every few seconds keeps a connection, and its memory, for ever.
 * Here every connection is in one phase at a time, and each phase has an
 * absolute duration counted from the phase's start:
 *
 *   DL_HEADERS  from accept (or, on a kept-alive connection, from the next
 *               request line) until the headers are complete
 *   DL_BODY     from the complete headers until the body is complete
 *   DL_IDLE     from an answer until the next request line has arrived
 *   DL_NONE     no deadline: the request is being handled, suspended,
 *               parked in the hub, or its answer is being sent
 *
 * A thread of this module looks every 100 ms; a connection past its
 * phase's deadline gets shutdown(2) on its socket, and the HTTP library
 * then sees the connection end and closes it the usual way (no answer is
 * sent: a client that slow is not waiting for one).
 *
 * Each phase has one duration, so each phase's list is ordered by start:
 * entries join at the tail and expire from the head; every call is O(1).
 * The caller owns the struct dl_entry (embedded in its per-connection
 * record) and must call deadline_close() before the socket is closed.
 *
 * May call: base (log, util), libc (pthreads, sockets). */
#ifndef CHAT_DEADLINE_H
#define CHAT_DEADLINE_H

#include <stdint.h>

enum dl_phase { DL_NONE, DL_HEADERS, DL_BODY, DL_IDLE, DL_NPHASES };

/* One connection's place in its phase's list; private to deadline.c. */
struct dl_entry {
    struct dl_entry *prev, *next;
    int64_t since_ms; /* mono_ms() at the phase's start */
    enum dl_phase phase;
    int fd;
};

/* Starts the watching thread with the phases' durations in ms (> 0).
 * Returns 0, or -1 when the thread cannot be started. Call once. */
int deadline_start(int64_t headers_ms, int64_t body_ms, int64_t idle_ms);

/* A new connection on socket fd: DL_HEADERS from now. Any thread. */
void deadline_open(struct dl_entry *e, int fd);

/* Moves the connection to phase from now (DL_NONE: no deadline); a
 * connection already in that phase keeps its start. Any thread; a
 * connection that was cut stays cut. */
void deadline_enter(struct dl_entry *e, enum dl_phase phase);

/* Forgets the connection; call before its socket is closed. Any thread. */
void deadline_close(struct dl_entry *e);

/* Connections cut so far (for the metrics and tests). */
uint64_t deadline_cuts(void);

/* Stops the thread. */
void deadline_stop(void);

#endif
