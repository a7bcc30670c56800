/* direct.h — the direct (1:1) thread of two users.
 *
 * May call: chat/model, chat/events, db. */
#ifndef CHAT_DIRECT_H
#define CHAT_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

/* Finds or creates the direct thread of me and other (me == other gives the
 * one-member "saved messages" thread), in its own transaction; a new thread
 * appends a thread event to both streams and wakes them after the commit.
 * Returns 0 with *thread_id and *created, NOT_FOUND when other does not
 * exist, BLOCKED when a block stands between them, or DB_E*. Any thread. */
int direct_open(int64_t me, int64_t other, int64_t now, int64_t *thread_id, bool *created);

#endif
