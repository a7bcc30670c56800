/* events.h — the per-user event stream in the database, and the list of
 * users to wake once a transaction that appended events has committed.
 *
 * Append functions run inside the caller's transaction (db_tx) and add the
 * users they wrote to to a wake_list; after COMMIT the caller hands the list
 * to wake_flush(), which tells the hub. Nothing is woken before the commit.
 *
 * Positions are integers per user, 1, 2, 3 …; a cursor is the position of
 * the last event a device has seen, as a decimal string. */
#ifndef CHAT_EVENTS_H
#define CHAT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

enum event_type { EVENT_MESSAGE = 1, EVENT_THREAD = 2, EVENT_RECEIPT = 3 };

/* Users to wake after a commit. Zero-initialise; wake_flush frees. */
struct wake_list {
    int64_t *ids;
    size_t n, cap;
};

/* Adds one user (duplicates are harmless). */
void wake_add(struct wake_list *w, int64_t user_id);

/* Empties the list without waking anyone (the transaction rolled back). */
void wake_reset(struct wake_list *w);

/* Wakes the listed users' parked polls and empties the list. */
void wake_flush(struct wake_list *w);

/* Runs fn(ctx) in a transaction (db_tx) and wakes the users in *wake once it
 * committed; the list is emptied either way. fn must wake_reset(wake) first,
 * since a retried transaction starts over. Returns what db_tx returns. */
int wake_tx(db_tx_fn fn, void *ctx, struct wake_list *wake);

/* Events gathered by a batch (of sends, of acknowledgements) and appended in
 * two statements whatever their number: each stream is bumped once by its
 * count, and its events take the positions just below its new end, in the
 * order they were added. After the commit, evb_publish hands them to the
 * in-memory tails (tail.h) so that woken polls need not read them back.
 * Zero-initialise. */
struct tail_blob;
struct event_batch {
    struct evb_item *items;
    size_t n, cap;
    bool failed; /* memory ran out: evb_flush fails */
};

/* Adds one event for user_id (fields as in events_to_members). blob, when
 * not NULL, is the event as the API shows it (a reference is taken; one blob
 * may serve every recipient); an event without a blob is not published. */
void evb_add(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
             int64_t seq, int64_t actor, int64_t delivered, int64_t read, int64_t now,
             struct tail_blob *blob);

/* Appends every added event inside the caller's transaction and learns
 * their positions; adds their users to wake. The events stay in the batch
 * for evb_publish. Returns DB_OK or DB_E*. */
int evb_flush(struct event_batch *b, struct wake_list *wake);

/* After the commit: puts the flushed events into the tails, then empties the
 * batch. */
void evb_publish(struct event_batch *b);

/* Empties the batch (a transaction is being retried, or rolled back) /
 * frees its memory. */
void evb_reset(struct event_batch *b);
void evb_free(struct event_batch *b);

/* Stream events as the API shows them (new references): a message event
 * around `message` (a reference is taken), and a receipt event. Every
 * path that renders an event — the database read, the in-memory tail, the
 * send batch — uses these. */
json_t *events_message_view(json_t *message);
json_t *events_receipt_view(int64_t thread_id, int64_t actor, int64_t delivered, int64_t read);

/* The ephemeral "typer is typing in thread_id" event (new reference), and a
 * hub_drop_ephemeral predicate matching it (ctx: int64_t[2] = {thread_id,
 * typer}). */
json_t *events_typing_view(int64_t thread_id, int64_t typer);
bool events_is_typing(json_t *ev, void *ctx);

/* Appends one event to the stream of every member of thread_id. For
 * EVENT_MESSAGE seq is the message; for EVENT_RECEIPT actor, delivered and
 * read describe the member whose receipts moved; otherwise pass 0. An
 * EVENT_THREAD is a snapshot of the thread as of now (with each member's own
 * settings), so that every device that reads it later sees the same. Adds the
 * members to wake. Returns DB_OK or DB_E*. Call inside a transaction. */
int events_to_members(int64_t thread_id, enum event_type type, int64_t seq, int64_t actor,
                      int64_t delivered, int64_t read, int64_t now, struct wake_list *wake);

/* Sets the largest group whose members all get each other's receipt events
 * (see events_receipt). Call once at start-up. Batched acknowledgements
 * (acks.c) follow the same rule. */
void events_init(int receipt_fanout_max);

/* The receipts of member `actor` in thread_id moved to delivered/read; the
 * messages newly covered are those with seq in (from_seq, to_seq]. In a
 * thread of at most receipt_fanout_max members every member gets a receipt
 * event (API.md); in a larger group only the actor's own devices and the
 * senders of the newly covered messages do — the ones whose ticks change —
 * so that one message to a big group does not cost members² events. Inside a
 * transaction; users to wake go into wake. Returns DB_OK or DB_E*. */
int events_receipt(int64_t thread_id, int64_t actor, int64_t from_seq, int64_t to_seq,
                   int64_t delivered, int64_t read, int64_t now, struct wake_list *wake);

/* Appends a thread event to one user's stream: after a change of the user's
 * own settings, or for a user who was just removed from the thread. */
int events_thread_to_user(int64_t user_id, int64_t thread_id, int64_t now,
                          struct wake_list *wake);

/* Creates the stream of a new user. Returns DB_OK or DB_E*. */
int events_stream_create(int64_t user_id);

/* The stream's state: the last position, and the oldest position still kept
 * (0 when none is kept). Returns DB_OK, or DB_E*; a user without a stream
 * reads as empty. */
int events_head(int64_t user_id, int64_t *last_pos, int64_t *oldest_pos);

/* Up to limit events of user after position `after`, oldest first, as API
 * event objects appended to the array out; *next is the position of the last
 * one returned (unchanged when none). Returns DB_OK or DB_E*. */
int events_read(int64_t user_id, int64_t after, int limit, json_t *out, int64_t *next);

/* Deletes events older than cutoff_ms, at most batch rows per call; returns
 * the number deleted or DB_E*. */
int64_t events_prune(int64_t cutoff_ms, int batch);

#endif
