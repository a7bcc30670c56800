/* account.h — what a user takes away and how they leave: the export of
 * their data, and the deletion of their account (API.md "Retention and
 * accounts"; app stores require both).
 *
 * May call: chat (model, events, attachments, search, auth), live
 * (cluster), push, db, base. Any thread. */
#ifndef CHAT_ACCOUNT_H
#define CHAT_ACCOUNT_H

#include <jansson.h>
#include <stdint.h>

/* The most messages an export holds (it says "truncated" past them). */
#define EXPORT_MESSAGES_MAX 100000

/* Everything of user's as a new JSON object: {exported_at, user, contacts,
 * blocks, threads: [thread view + messages: [message]], truncated}. The
 * messages are those of the user's threads as the user sees them now (from
 * where history starts; a hidden one as {thread_id, seq, hidden}). Returns
 * 0, NOT_FOUND or DB_E*. */
int account_export(int64_t user, json_t **out);

/* Deletes user's account at now_ms: the name is freed (the row stays as
 * "deleted-ID", display name "Deleted user", no password), contacts and
 * blocks both ways go, every message of theirs becomes a tombstone (with
 * its attachments and index entries), they leave their groups (the others
 * get thread events), their uploads, pushes and event stream go, and every
 * session ends. Returns 0, NOT_FOUND or DB_E*. */
int account_delete(int64_t user, int64_t now_ms);

#endif
