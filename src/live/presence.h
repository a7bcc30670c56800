/* presence.h — who is online, and telling their contacts and co-members.
 *
 * A user is online while one of its sessions has a registered inbox poll
 * (the hub reports changes) or made an authenticated request within the
 * window (presence_window_s); otherwise offline since the last such moment.
 * A sweeper thread compares each user's state with the state last published
 * every PRESENCE_TICK_MS and publishes changes as ephemeral `presence` events
 * to the users allowed to see them (those who have the user as a contact, and
 * members of a thread the user is in). Publishing only net changes per tick
 * coalesces reconnect storms: a poll that ends and comes back publishes
 * nothing. State lives in memory; after a restart users are offline until
 * they are seen again, and last_seen_at falls back to the sessions table.
 *
 * May call: live/hub, db, base. */
#ifndef CHAT_PRESENCE_H
#define CHAT_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#define PRESENCE_TICK_MS 200

/* Starts the sweeper with the online window (seconds). Returns 0 or -1. */
int presence_init(int window_s);

/* Stops the sweeper and frees the state. */
void presence_shutdown(void);

/* Records an authenticated request of user now. Thread-safe, no I/O. */
void presence_touch(int64_t user_id);

/* The in-memory state of user: returns false when nothing is known since the
 * start; else *online and *last_seen_at (ms since the epoch; now when online). */
bool presence_get(int64_t user_id, bool *online, int64_t *last_seen_at);

#endif
