/* tail.h — the newest events of each active user's stream, in memory, as
 * the API shows them, so that a woken long-poll answers without reading the
 * database.
 *
 * The database stays the stream: every appender (chat/events.h: sends,
 * acknowledgements, read receipts, thread events) publishes what it appended
 * here after its commit and before the wake-up; a reader that finds a
 * position missing (evicted, or appended before a restart) reads the
 * database instead. Positions have gaps (chat/events.h), so each event
 * comes with the position of the user's event before it: a read from since
 * takes the event whose previous position is since, then the one after
 * that, for as long as the tail holds the chain, so it returns a prefix of
 * what the database holds, never something else. Bounded: a fixed number of
 * users (two hashed choices of slot each; a newcomer evicts the one idle
 * longer) with the newest TAIL_EVENTS events each.
 *
 * May call: nothing but jansson and libc. */
#ifndef CHAT_TAIL_H
#define CHAT_TAIL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAIL_EVENTS 16

/* One event's JSON, shared by every tail that holds it: a poll answers
 * with the text as it is, without parsing it again. */
struct tail_blob {
    _Atomic int refs;
    int64_t thread_id, seq; /* an event with a `message`: that message's
                               thread and seq (what the acknowledgement
                               notes); 0 and 0 for other events */
    size_t len;             /* bytes of json, without the NUL */
    char json[];            /* NUL-terminated */
};

/* A new blob of the compact JSON of ev (not stolen), one reference; NULL
 * when memory is short. */
struct tail_blob *tail_blob_of(const json_t *ev);

/* Takes one more reference / drops one (frees at zero; NULL is ignored). */
struct tail_blob *tail_blob_ref(struct tail_blob *b);
void tail_blob_unref(struct tail_blob *b);

/* Allocates the table: `users` slots (rounded up to a power of two; 0 turns
 * the tail off). Returns 0 or -1. */
int tail_init(int users);

/* Whether tails are kept (tail_init with users > 0). Thread-safe. */
bool tail_enabled(void);

/* Frees everything. */
void tail_shutdown(void);

/* Holds b (a new reference) as the event at pos of user_id's stream, whose
 * previous event is at prev (0 <= prev < pos). Only for an event that is
 * committed. Thread-safe. */
void tail_put(int64_t user_id, int64_t pos, int64_t prev, struct tail_blob *b);

/* Forgets everything the tail holds for user_id, so that the next read of
 * any position goes to the database: after a message is deleted, its body
 * may sit in rendered events (the message, an edit, a reply's snippet, a
 * thread's last message). Thread-safe. */
void tail_forget(int64_t user_id);

/* How many forgets there have been: an appender reads it when its
 * transaction starts and puts nothing into the tails when it changed by
 * the time it would (what it rendered may hold a body deleted meanwhile). */
uint64_t tail_forget_gen(void);

/* Forgets every user's events (a node that may have missed forgets).
 * Thread-safe. */
void tail_forget_all(void);

/* Takes the events of user_id that follow since, one after the other, for
 * as long as the tail holds them, at most limit (and TAIL_EVENTS): out[i]
 * gets a reference to the i-th, which the caller drops (tail_blob_unref),
 * and *next the position of the last one. Returns how many (0: read the
 * database; *next is left alone). Thread-safe. */
int tail_read(int64_t user_id, int64_t since, int limit, struct tail_blob *out[TAIL_EVENTS],
              int64_t *next);

/* How many tail_read calls answered, and how many did not (the poll read
 * the database), since the start; for the metrics. Any thread. */
int64_t tail_hits(void);
int64_t tail_misses(void);

#endif
