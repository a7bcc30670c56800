/* ratelimit.h — token buckets per (kind, key): how often one account or one
 * client address may do one kind of thing.
 *
 * A bucket holds up to `burst` tokens and gains `per_min` tokens a minute;
 * each action takes one; an action that finds no whole token is refused,
 * and the caller answers 429 with Retry-After (the seconds until a token).
 * Memory is fixed (RATELIMIT_SLOTS buckets, set at init): a new key takes a
 * free slot near its hash, or the stalest of those slots (the one used least
 * recently: a key refused again and again stays). Each node keeps its own
 * buckets: on a cluster a limit is per node (nginx's limit_req, in front of
 * every node, is the shared layer per address; docs/security.md).
 *
 * May call: libc. Every function may be called from any thread. */
#ifndef CHAT_RATELIMIT_H
#define CHAT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* What is limited. Per account unless the name says address. */
enum rl_kind {
    RL_SEND,           /* messages sent */
    RL_THREAD_CHANGE,  /* threads created, renamed, members added or removed */
    RL_TYPING,         /* typing notices */
    RL_USER_LOOKUP,    /* user searches and lookups */
    RL_REGISTER_ADDR,  /* registrations per client address */
    RL_LOGIN_ADDR,     /* logins per client address */
    RL_UPLOAD,         /* uploads started */
    RL_MESSAGE_ACTION, /* edits, deletes, hides, reactions */
    RL_KINDS
};

/* One kind's setting: tokens gained per minute, and the most kept. per_min
 * 0 = unlimited. */
struct rl_setting {
    int per_min, burst;
};

#define RATELIMIT_SLOTS 65536 /* buckets kept in all (a power of two) */

/* Sets the limits (copied) and empties every bucket. Call once before any
 * ratelimit_take, or again from a test. */
void ratelimit_init(const struct rl_setting settings[RL_KINDS]);

/* Takes a token from the bucket of (kind, key) at now_ms (a monotonic
 * clock, ms). Returns true when the action may go on; false when it is
 * refused, with *retry_after_s the whole seconds (at least 1) until a token
 * is there. */
bool ratelimit_take(enum rl_kind kind, uint64_t key, int64_t now_ms, int *retry_after_s);

/* A key for a string (a client address): 64-bit FNV-1a. */
uint64_t ratelimit_key(const char *s);

#endif
