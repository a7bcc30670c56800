/* acks.h — acknowledgements of inbox cursors, stored in batches (group
 * commit, docs/group-commit.md).
 *
 * A poll with `since` acknowledges its user's stream up to that position:
 * every message between the user's previous acknowledgement mark and the new
 * one counts as delivered, moving the member's delivered_seq and appending
 * receipt events (the receipt rule of chat/receipts.h). Acknowledgements that
 * arrive together are stored in one transaction; several of one user count
 * once, with the furthest position.
 *
 * May call: chat/events, live (hub, tail), db, base. */
#ifndef CHAT_ACKS_H
#define CHAT_ACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/batchq.h"

/* Starts `workers` threads taking up to batch_max acknowledgements at a
 * time; 0 workers stores each in its caller's thread. Returns 0 or -1. */
int acks_start(int workers, int batch_max);

/* Stores what is queued and stops the workers; later acknowledgements run
 * in their caller's thread. */
void acks_stop(void);

/* *rc of a cursor that is past the stream's end or older than what is kept. */
#define ACK_CURSOR_EXPIRED 1

/* What an acknowledgement found. */
struct ack_result {
    int rc;             /* DB_OK, ACK_CURSOR_EXPIRED or DB_E* */
    int64_t stream_end; /* with DB_OK: the stream's last position */
    uint32_t version;   /* with DB_OK: hub_stream_version(user_id) taken before
                           stream_end was read, so that a later equal version
                           proves the stream has not grown since */
};

/* Checks that pos is a cursor of user_id's stream (from its pruned
 * horizon up to its end, chat/events.h), and if so records that a
 * device of user_id acknowledged its stream up to pos. On a cluster, first
 * joins the user (and claims the polling session) in the user→node map, so
 * that commits on other nodes wake this one from then on (live/cluster.h).
 * Fills *out. Returns
 * true when done already (in the caller's thread: no workers, or memory
 * short); or false when queued: a worker then fills *out and calls
 * done.fn(done.arg), and *out must live until then. Any thread. */
bool acks_submit(int64_t user_id, int64_t session_id, int64_t pos, struct ack_result *out,
                 struct completion done);

/* Notes what a read of user_id's stream found between positions from
 * (exclusive) and to (inclusive): the newest message seq per thread, n pairs
 * of (thread_id, seq). When the next acknowledgement covers exactly that
 * range, the batch takes the moves from the note instead of reading the
 * stream again (the events at those positions never change). Keeps one note
 * per user (the last), for up to 8 threads; others are not noted. */
void acks_note_read(int64_t user_id, int64_t from, int64_t to, const int64_t (*moves)[2], int n);

#endif
