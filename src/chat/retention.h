/* retention.h — history that ends: retention (a prefix of a thread's
 * history removed) and disappearing messages (each message a tombstone
 * when its timer runs out). API.md "Retention and accounts",
 * docs/retention.md.
 *
 * Both run in the janitor (one node of a cluster). A purge removes, per
 * thread and round, at most RETENTION_BATCH of the oldest messages older
 * than the thread's retention, with their attachments, edits, reactions
 * and index entries, moves the thread's oldest_seq, and gives every member
 * one history_purged {thread_id, up_to_seq} event; the members' in-memory
 * tails are forgotten (they may hold the bodies). Expired messages go
 * exactly as deletes for everyone do (actions.h message_expire).
 *
 * May call: chat (model, events, actions, attachments, search), db, base. */
#ifndef CHAT_RETENTION_H
#define CHAT_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

/* The most messages one thread loses in one purge (one transaction). */
#define RETENTION_BATCH 5000

/* The settings: the server's retention (days, 0 = forever), a short
 * disappearing timer tests may allow besides 1, 7 and 90 days (s, 0 =
 * none), and the length of a retention "day" in seconds (86,400; tests
 * shorten it). Call once at start-up. */
void retention_init(int server_days, int disappearing_test_s, int day_s);

/* The server's retention in days (0: forever). */
int retention_server_days(void);

/* Whether days is a retention a thread may set: 1 up to the server's
 * retention (when it has one), else up to 36,500. */
bool retention_days_ok(int64_t days);

/* Whether s is a disappearing timer a thread may set: 0 (off), 1 day, 7
 * days, 90 days, or the test setting. */
bool disappearing_ok(int64_t s);

/* One round of expiry at now_ms: at most batch expired messages become
 * tombstones. Returns how many, or DB_E*. */
int retention_expire(int64_t now_ms, int batch);

/* One round of purging at now_ms over every thread with a retention.
 * Returns the messages removed, or DB_E*. */
int64_t retention_purge(int64_t now_ms);

#endif
