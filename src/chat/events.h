/* events.h — the per-user event streams: appending in the database (one
 * appender for every kind of event), reading, and waking after a commit.
 *
 * Every transaction that appends events gathers them in a struct
 * event_batch and flushes it once, just before it commits: it takes one
 * range of positions from the clock (below) for all of them, a user's
 * events in the order they were added, and inserts them. After the commit,
 * evb_finish() links each event to its user's previous position and hands
 * them to the in-memory tails (live/tail.h), then wakes their users' polls;
 * nothing is published or woken before the commit, or at all after a
 * rollback. events_tx() runs a transaction that way.
 *
 * Positions come from one clock (stream_clock, migration 018): a flush
 * takes a range for all its events just before the commit and holds the
 * clock's row until then, so positions are handed out in commit order. A
 * user's positions grow, with gaps (another user's events, a rolled-back
 * transaction); a reader never sees a position below one it has seen
 * appear later. A cursor is the position of the last event a device has
 * seen, as a decimal string (chat/cursor.h).
 *
 * A user's stream is its own events (user_events) merged with the logs of
 * the big groups it is or was a member of (thread_log, read through the
 * membership intervals in log_members; migration 019): a message into such
 * a group is one log row, whoever reads it. Reads, stream ends and the
 * tails' links all take the merged stream.
 *
 * May call: chat/model, live (hub, tail), db, base. Every function may be
 * called from any thread; a batch belongs to one thread at a time. */
#ifndef CHAT_EVENTS_H
#define CHAT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* The kinds of stored events (user_events.type). A message_edited event
 * names its message and is rendered from the message row when read; the
 * kinds from EVENT_MESSAGE_DELETED on carry their JSON (evb_add_payload). */
enum event_type {
    EVENT_MESSAGE = 1,
    EVENT_THREAD = 2,
    EVENT_RECEIPT = 3,
    EVENT_MESSAGE_EDITED = 4,
    EVENT_MESSAGE_DELETED = 5,
    EVENT_MESSAGE_HIDDEN = 6,
    EVENT_MESSAGE_UNHIDDEN = 7,
    EVENT_REACTION = 8,
    EVENT_HISTORY_PURGED = 9
};

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

/* The events one transaction appends, and the users it will wake.
 * Zero-initialise; evb_free when done. */
struct tail_blob;
struct evb_item;
struct evb_delivery;
struct event_batch {
    struct evb_item *items;
    size_t n, cap;
    char **snapshots; /* thread snapshots the thread events point to, owned */
    size_t nsnapshots;
    struct wake_list wake; /* filled by evb_flush */
    int64_t (*drops)[2];   /* (thread, typer) whose "typing" the commit supersedes */
    size_t ndrops;
    int64_t *syncs; /* logged threads whose intervals evb_flush syncs (evb_sync_log) */
    size_t nsyncs;
    struct evb_delivery *deliv; /* after the commit: each event per reader, for the tails */
    size_t ndeliv;
    bool failed;       /* memory ran out: evb_flush fails */
    bool forget_tails; /* a message was deleted: evb_finish forgets the users' tails */
    uint64_t gen;      /* tail_forget_gen() when the transaction started (evb_reset) */
};

/* Notes that typer's message in thread_id supersedes typer's "typing":
 * once the transaction commits, evb_finish drops it from the users' polls,
 * on this node and the others. */
void evb_drop_typing(struct event_batch *b, int64_t thread_id, int64_t typer);

/* Adds a message or receipt event for user_id. For EVENT_MESSAGE, seq is
 * the message; for EVENT_RECEIPT, actor's receipts moved to delivered/read
 * (pass 0 for what does not apply). now is the event's time (ms). blob,
 * when not NULL, is the event as the API shows it (a reference is taken; one
 * blob may serve every recipient); an event without a blob is not published
 * to the tails. */
void evb_add(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
             int64_t seq, int64_t actor, int64_t delivered, int64_t read, int64_t now,
             struct tail_blob *blob);

/* Adds an event of the given type about message seq to the log of
 * thread_id, a logged group (sendq.h), instead of one event per member: one
 * thread_log row. members (n ids, copied) are the members as the caller's
 * transaction, holding a lock on the thread row, read them — the users
 * whose open intervals the event falls in; they are woken and get it in
 * their tails. blob as for evb_add (not NULL); payload: stored as the
 * blob's JSON (as evb_add_payload). */
void evb_add_log(struct event_batch *b, int64_t thread_id, enum event_type type, int64_t seq,
                 int64_t now, struct tail_blob *blob, bool payload, const int64_t *members,
                 size_t n);

/* Notes that thread_id's membership may have changed, or that it becomes
 * logged (then the caller sets threads.logged): if the thread is logged,
 * evb_flush brings its open membership intervals (log_members) in line with
 * thread_members, at a position of its own taken under the clock — members
 * who left get their interval closed there, new ones one opened. The
 * caller's transaction holds the thread row's lock. Called by
 * evb_add_thread. */
void evb_sync_log(struct event_batch *b, int64_t thread_id);

/* Adds an event that carries its own JSON: blob (a reference is taken;
 * not NULL) is the event as the API shows it, stored as it is (at most
 * 1,024 bytes) and published to the tails. For the kinds from
 * EVENT_MESSAGE_DELETED on. */
void evb_add_payload(struct event_batch *b, int64_t user_id, enum event_type type,
                     int64_t thread_id, int64_t seq, int64_t now, struct tail_blob *blob);

/* Adds ev (the event as the API shows it; stolen; NULL fails) of the given
 * type about message (thread_id, seq) for every member of thread_id
 * (user_id 0) or for user_id alone, the members read inside the caller's
 * transaction. For every member of a logged group it is one event in the
 * group's log (evb_add_log), read under a shared lock on the thread row so
 * that no membership change or send interleaves. payload: its JSON is
 * stored with it (evb_add_payload); else it names (thread_id, seq) and is
 * rendered from the message when read. Returns DB_OK or DB_E*. */
int evb_add_to(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
               int64_t seq, int64_t now, json_t *ev, bool payload);

/* Adds a thread event for every member of thread_id (evb_add_thread), or
 * for user_id alone (evb_add_thread_to: after a change of the user's own
 * settings, or for a user who just left): the thread as of now (a snapshot
 * shared by all) with each reader's own settings, so that every device that
 * reads it later sees the same. Reads the thread and its members inside the
 * caller's transaction. Returns DB_OK or DB_E*. */
int evb_add_thread(struct event_batch *b, int64_t thread_id, int64_t now);
int evb_add_thread_to(struct event_batch *b, int64_t thread_id, int64_t user_id, int64_t now);

/* Appends every added event inside the caller's transaction and learns
 * their positions; adds their users to b->wake. Call once, last, in the
 * transaction. Returns DB_OK or DB_E*. */
int evb_flush(struct event_batch *b);

/* After the transaction, with what db_tx returned: when it committed (0),
 * puts the flushed events into the tails, drops the superseded typing, then
 * wakes their users — here, and through the cluster on the nodes where they
 * poll; when its
 * outcome is unknown (DB_ECOMMIT: the connection was lost during COMMIT), it
 * wakes them all the same — a spurious wake costs a read, a lost one a
 * message that waits for the poll's timeout — but publishes nothing; else it
 * forgets both. Either way the batch is empty afterwards, ready for reuse. */
void evb_finish(struct event_batch *b, int rc);

/* Empties the batch (a transaction starts, or starts over) / frees its
 * memory. */
void evb_reset(struct event_batch *b);
void evb_free(struct event_batch *b);

/* Runs fn(ctx) in a transaction (db_tx) whose events are gathered in *b
 * (zero-initialised): fn must evb_reset(b) first (a retried transaction
 * starts over) and end with evb_flush(b). Then evb_finish(b, rc) and
 * evb_free(b). Returns what db_tx returns. */
int events_tx(db_tx_fn fn, void *ctx, struct event_batch *b);

/* Stream events as the API shows them (new references): a message event
 * and a message_edited event around `message` (a reference is taken), and a
 * receipt event. Every
 * path that renders an event — the database read, the in-memory tail, the
 * batches — uses these. */
json_t *events_message_view(json_t *message);
json_t *events_edited_view(json_t *message);
json_t *events_receipt_view(int64_t thread_id, int64_t actor, int64_t delivered, int64_t read);

/* The ephemeral "typer is typing in thread_id" event (new reference), and a
 * hub_drop_ephemeral predicate matching it (ctx: int64_t[2] = {thread_id,
 * typer}). */
json_t *events_typing_view(int64_t thread_id, int64_t typer);
bool events_is_typing(json_t *ev, void *ctx);

/* SQL: the end of the stream of the user whose id is the SQL expression
 * `user`: the position of its last event — its own, or one of the logs of
 * its groups it reads (below) — or where pruning (pruned_pos) or the move to
 * the clock (the frozen last_pos) left it. The query must join user_streams
 * as s (LEFT JOIN: a user without the row reads as 0).
 * EVENTS_STREAM_END_BELOW: the same among the events with a position below
 * the SQL expression `bound` (the end before a given event).
 *
 * A membership interval that closed below the bound counts as ending at its
 * until_pos, an event-less position (a cursor there is as good as any: the
 * next event is linked to it), so no log row is read for a group the user
 * left. For an open one the log's newest row below the bound counts if it
 * lies inside: that row depends on the thread and the bound only, read
 * newest first (a row or two: the bound is at or near the log's end
 * wherever this is used). Bounded below by from_pos inside the subquery,
 * MariaDB would scan the thread's whole log when nothing lies between. */
#define EVENTS_POS_MAX "9223372036854775807"
#define EVENTS_LOG_NEWEST_BELOW_(bound)                                                  \
    "(SELECT l.pos FROM thread_log l WHERE l.thread_id = g.thread_id AND l.pos < " bound \
    " ORDER BY l.pos DESC LIMIT 1)"
#define EVENTS_LOG_END_BELOW_(user, bound)                                                        \
    "COALESCE((SELECT MAX(IF(g.until_pos < " bound ", g.until_pos, IF(" EVENTS_LOG_NEWEST_BELOW_( \
        bound) " > g.from_pos, " EVENTS_LOG_NEWEST_BELOW_(bound) ", 0))) FROM log_members g "     \
                                                                 "WHERE g.user_id = " user        \
                                                                 " AND g.from_pos < " bound       \
                                                                 "), 0)"
#define EVENTS_STREAM_END_WHERE_(user, cond, bound)                                        \
    "GREATEST(COALESCE(s.last_pos, 0), COALESCE(s.pruned_pos, 0), COALESCE((SELECT e.pos " \
    "FROM user_events e WHERE e.user_id = " user cond                                      \
    " ORDER BY e.pos DESC LIMIT 1), 0), " EVENTS_LOG_END_BELOW_(user, bound) ")"
#define EVENTS_STREAM_END(user) EVENTS_STREAM_END_WHERE_(user, "", EVENTS_POS_MAX)
#define EVENTS_STREAM_END_BELOW(user, bound) \
    EVENTS_STREAM_END_WHERE_(user, " AND e.pos < " bound, bound)

/* SQL: the rows of the group logs the user `?` reads, with a position in
 * (`?`, `?`]: a range of (thread, pos) per membership interval of the user,
 * as the FROM of a query over thread_log l (and log_members g). Its
 * parameters, in order: after, up_to, up_to, user, after. The condition on
 * thread_id is two bounds, not `=`, so that MariaDB cannot take it as a
 * lookup of the whole thread's log and filter it, but ranges over
 * (thread, pos) for each interval ("range checked for each record"). */
#define EVENTS_LOG_ROWS                                                                       \
    "log_members g STRAIGHT_JOIN thread_log l FORCE INDEX (PRIMARY) ON l.thread_id >= "       \
    "g.thread_id AND l.thread_id <= g.thread_id AND l.pos > GREATEST(?, g.from_pos) AND "     \
    "l.pos <= LEAST(?, COALESCE(g.until_pos, ?)) AND g.user_id = ? AND (g.until_pos IS NULL " \
    "OR g.until_pos > ?)"

/* Creates the stream and the acknowledgement mark of a new user, inside
 * the caller's transaction. Returns DB_OK or DB_E*. */
int events_stream_create(int64_t user_id);

/* The stream's state: its end (EVENTS_STREAM_END), and the highest
 * position pruned (a cursor below it has missed events). Returns DB_OK, or
 * DB_E*; a user without a stream reads as empty. */
int events_head(int64_t user_id, int64_t *last_pos, int64_t *pruned_pos);

/* The streams' ends (EVENTS_STREAM_END) and pruned horizons of the users
 * in ids_json (a JSON array of ids): rows (user, end, pruned_pos) in *out,
 * which the caller frees (db_res_free). Returns DB_OK or DB_E*. For the
 * acknowledgements' cursor check and the cluster's safety net. */
int events_stream_ends(const char *ids_json, struct db_res **out);

/* Up to limit events of user after position `after`, oldest first, as API
 * event objects appended to the array out; *next is the position of the last
 * one returned (unchanged when none). Returns DB_OK or DB_E*. */
int events_read(int64_t user_id, int64_t after, int limit, json_t *out, int64_t *next);

/* Deletes events older than cutoff_ms, at most batch rows per call (one
 * transaction), moving their users' pruned_pos past them; returns the
 * number deleted or DB_E*. */
int64_t events_prune(int64_t cutoff_ms, int batch);

#endif
