/* push.h — push notifications through APNs and FCM (docs/push.md).
 *
 * Producers (the send and read transactions) queue jobs into the durable
 * outbox table push_jobs with push_queue_*; one notifier thread takes due
 * jobs, decides by delivery (a device that acknowledged the message through
 * its inbox cursor means no push), and sends over HTTP/2 with libcurl's multi
 * interface, one long-lived multiplexed connection per provider.
 *
 * May call: push (wire, jwt), db, base, libcurl. */
#ifndef CHAT_PUSH_H
#define CHAT_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"

/* Loads provider credentials from cfg and starts the notifier thread. A
 * provider without credentials is off (logged once). Returns 0, or -1 when
 * configured credentials cannot be read. Call after curl_global_init. */
int push_init(const struct config *cfg);

/* Stops the notifier; jobs in flight stay in the outbox for the next start. */
void push_shutdown(void);

/* Inside the send transaction: one job per member of thread_id other than
 * sender who has a push token, due after the grace period. Returns DB_OK or
 * DB_E*. */
int push_queue_message(int64_t thread_id, int64_t seq, int64_t sender, int64_t now_ms);

/* Inside a batch of sends: push_queue_message for every message listed in
 * `messages`, a JSON array of [thread_id, seq, sender_id, created_at_ms]
 * arrays, in one statement. Returns DB_OK or DB_E*. */
int push_queue_messages(const char *messages);

/* A row of push_queue_messages' list (db.h DB_JT_*): thread, seq, sender,
 * created_at (ms). */
/* clang-format off */
#define PUSH_MESSAGE_ROW(X, S)                                                                \
    X(0, t, BIGINT, "%lld") S X(1, q, BIGINT, "%lld") S X(2, s, BIGINT, "%lld")                 \
    S X(3, n, BIGINT, "%lld")
#define PUSH_MESSAGE_ROW_COLUMNS DB_JT_COLUMNS(PUSH_MESSAGE_ROW)
/* clang-format on */

/* Inside the read transaction: a clear job for user's devices other than
 * reader_session, when any has a token. Returns DB_OK or DB_E*. */
int push_queue_clear(int64_t user_id, int64_t thread_id, int64_t seq, int64_t reader_session,
                     int64_t now_ms);

/* Inside the transaction that deletes message (thread_id, seq) for
 * everyone: a clear job for every member's devices that have a token, so
 * that its preview leaves their lock screens; the message's own pending
 * job, if any, finds it deleted and sends nothing. Returns DB_OK or
 * DB_E*. */
int push_queue_clear_thread(int64_t thread_id, int64_t seq, int64_t now_ms);

/* Inside the transaction that adds actor's reaction emoji to message
 * (thread_id, seq): a job for the message's sender (not actor; with a push
 * token; still a member), due after the grace period, when the
 * push_reactions setting is on. At its time it sends "Reacted <emoji> to:
 * …" unless the reaction was taken back or the message deleted (reason
 * removed) or the thread is muted or set to mentions. Returns DB_OK or
 * DB_E*. */
int push_queue_reaction(int64_t thread_id, int64_t seq, int64_t actor, const char *emoji,
                        int64_t now_ms);

/* The janitor's part: forgets notification log lines older than a week (at
 * most 10,000 rows a call). now in ms. Any thread. */
void push_prune(int64_t now);

#endif
