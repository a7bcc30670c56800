/* hub.h — parked long-polls: who waits for which user, and waking them.
 *
 * A parked poll is a struct waiter. Its life cycle, driven by the inbox
 * handler and the HTTP glue:
 *
 *   hub_register()   the handler, before reading events (so that nothing
 *                    committed after the read can be missed: a notify that
 *                    comes in between marks the waiter pending);
 *   hub_begin()      the handler, at the start of each run of it (the first,
 *                    and each after a wake-up): clears pending;
 *   hub_sleep()      the glue, after suspending the connection: resumes it at
 *                    once if something came in meanwhile, else parks it;
 *   hub_release()    when the poll is answered or its connection ends.
 *
 * A wake-up (hub_notify, an ephemeral event, the poll's deadline, a newer
 * poll of the same session, shutdown) resumes a parked connection exactly
 * once, through the resume function the glue gave hub_init; the handler then
 * runs again and reads. The hub holds no thread and no database connection
 * for a parked poll: a record of about 100 bytes.
 *
 * Thread-safety: every function may be called from any thread.
 *
 * May call: base (idmap, metrics, util, log). Knows nothing of presence or of
 * the events it carries: both reach it through callbacks. */
#ifndef CHAT_HUB_H
#define CHAT_HUB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct waiter;

/* Resumes a suspended connection (the glue's MHD_resume_connection). */
typedef void (*hub_resume_fn)(void *conn);

/* Starts the deadline thread and registers the parked-polls gauge. Call
 * once before serving. Returns 0 or -1. */
int hub_init(hub_resume_fn resume);

/* Sets the function told (outside the hub's lock, from the thread that
 * registered or released the poll) whenever the number of polls of a user
 * changes: the presence module's. Call before serving. */
void hub_on_polls_changed(void (*fn)(int64_t user_id));

/* Answers every parked poll (they see hub_should_answer) and stops the
 * deadline thread. New registrations are answered at once from then on. */
void hub_shutdown(void);

/* Registers a poll of user/session that gives up at deadline_ms (monotonic
 * ms). An older poll of the same session is answered at once. Recent
 * ephemeral events for the user that this session has not had are queued to
 * the new waiter. Returns the waiter (owned by the hub until
 * hub_release), or NULL when out of memory. */
struct waiter *hub_register(int64_t user_id, int64_t session_id, int64_t deadline_ms);

/* Marks the start of a handler run: clears the pending flag. */
void hub_begin(struct waiter *w);

/* True when the poll must answer now even without events: its deadline
 * passed, a newer poll of its session came, or the server is stopping. */
bool hub_should_answer(struct waiter *w);

/* Takes the ephemeral events queued for the waiter: a new array reference
 * (possibly empty) the caller owns. */
json_t *hub_take_ephemeral(struct waiter *w);

/* Parks the waiter on the suspended connection conn, or resumes conn at once
 * when a wake-up came since hub_begin. */
void hub_sleep(struct waiter *w, void *conn);

/* Unregisters and frees the waiter. */
void hub_release(struct waiter *w);

/* Notes the cursor the poll read from (its `since`), for
 * hub_parked_cursors. */
void hub_set_cursor(struct waiter *w, int64_t since);

/* Copies (user, cursor) of up to max registered polls into out; returns how
 * many. For the cluster's reconcile loop. */
size_t hub_parked_cursors(int64_t (*out)[2], size_t max);

/* A newer poll of the session started on another node: its poll here, if
 * any, answers now (as for a newer poll on this node). */
void hub_supersede_session(int64_t session_id);

/* The session was logged out: its poll, if any, is woken and
 * hub_revoked() is true for it from then on. */
void hub_end_session(int64_t session_id);

/* True when the waiter's session was logged out. */
bool hub_revoked(struct waiter *w);

/* A counter that moves each time user_id's stream may have grown: every
 * hub_notify for the user moves it (after the commit it reports). A reader
 * that takes it before reading the stream's end, and finds it unchanged
 * later, knows nothing was appended in between. Counters are shared by
 * hashing: a move for another user only costs the reader a read. */
uint32_t hub_stream_version(int64_t user_id);

/* Wakes every parked poll of the given users (new stream events). */
void hub_notify(const int64_t *user_ids, size_t n);

/* Hands an ephemeral event (borrowed; copied) to the parked polls of the
 * given users, and keeps it a few seconds for polls that come just after. */
void hub_emit(const int64_t *user_ids, size_t n, json_t *event);

/* Forgets the ephemeral events kept for, or queued to, the given users for
 * which match(event, ctx) is true (a stored message supersedes its sender's
 * "typing", so that no poll shows "typing" for a message it already has).
 * match runs under the hub's lock: it must only look at the event. */
void hub_drop_ephemeral(const int64_t *user_ids, size_t n, bool (*match)(json_t *ev, void *ctx),
                        void *ctx);

/* Number of polls registered for user (0 when none). */
int hub_user_polls(int64_t user_id);

/* Total polls registered. */
size_t hub_parked_count(void);

#endif
