/* cluster.h — several chatd nodes sharing their real-time state through
 * Redis (docs/scale-out.md). The only module that calls hiredis.
 *
 * The database stays the truth: Redis only carries hints with positions, so
 * a lost hint costs latency, never a message.
 *
 *   wake-ups   after a commit, the node that stored events publishes them
 *              (user, position, rendered event) to the nodes where those
 *              users poll, found through a user→node map (chatd:r:<uid>, a
 *              hash node → joined_at) that a node joins before its
 *              acknowledgement batch reads the stream; the receiving node
 *              fills its tail and wakes its polls, as a local commit would.
 *   ephemeral  typing and presence events go to the nodes of their users.
 *   sessions   a logout is broadcast (every node forgets the token and ends
 *              the session's poll); a session's poll on a new node answers
 *              the older one on another node (chatd:s:<sid>).
 *   presence   one sorted set for the cluster (chatd:pres: user → online
 *              until, in Redis time): a touch that finds a user absent is
 *              the one "online" transition, and the sweep that pops an
 *              expired user is the one "offline" transition, whichever node
 *              does it.
 *   leader     a named lock with a lease (the janitor runs on one node).
 *   safety net a reconcile loop compares each parked poll's cursor with its
 *              stream's end in the database: every 5 s, every 1 s while the
 *              bus is down, so a lost hint costs at most that.
 *
 * Health: the subscriber proves the bus every second by a ping through its
 * own channel; a node without Redis, or whose ping did not come back within
 * 3 s, is degraded (cluster_healthy() false): it keeps serving, delivery
 * across nodes goes through the reconcile loop, and it reconnects by itself.
 *
 * With redis_url empty every function is a cheap no-op and the node runs
 * alone, exactly as before.
 *
 * Threads: the subscriber and the reconcile thread are the module's own;
 * every other function may be called from any thread (each thread gets its
 * own Redis connection, opened on first use, as db.c does).
 *
 * May call: live (hub, tail), db, base, hiredis. */
#ifndef CHAT_CLUSTER_H
#define CHAT_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tail_blob;

/* Starts the subscriber and reconcile threads for redis_url
 * ("redis://host:port", or "" for a single node) as node_id (unique in the
 * cluster; "" takes hostname:pid). Returns 0 or -1 (logged); an unreachable
 * Redis is not an error: the node starts degraded and reconnects. */
int cluster_start(const char *redis_url, const char *node_id, int presence_window_s);

/* Stops the threads and closes the calling thread's connection. */
void cluster_stop(void);

/* True when several nodes share state through Redis (redis_url set). */
bool cluster_enabled(void);

/* True when the bus works now (enabled, subscribed, the last self-ping came
 * back in time). */
bool cluster_healthy(void);

/* This node's name. */
const char *cluster_node(void);

/* One event appended to a user's stream, for cluster_publish_wake. */
struct cluster_event {
    int64_t user_id, pos, prev; /* prev: the user's position before it */
    struct tail_blob *blob;     /* the event as the API shows it, or NULL */
};

/* After a commit: tells the nodes where users[0..n) poll that their streams
 * grew, with the events (ev[0..nev)) so that they answer from memory, and
 * the (thread, typer) pairs (drops[0..ndrops)) whose "typing" the commit
 * superseded. Blocking (two round trips); errors are counted and left to
 * the reconcile loop. */
void cluster_publish_wake(const int64_t *users, size_t n, const struct cluster_event *ev,
                          size_t nev, const int64_t (*drops)[2], size_t ndrops);

/* Before reading users' stream positions (the acknowledgement batch): puts
 * this node in their entries of the user→node map, so that any commit whose
 * wake looks them up afterwards reaches this node. Only users not joined in
 * the last minutes cost a (pipelined) round trip. sessions[0..n) are the
 * polling sessions (0: none): a session seen polling on another node is
 * told to answer its older poll there. */
void cluster_join(const int64_t *users, const int64_t *sessions, size_t n);

/* After a commit that deleted a message: forgets the in-memory tails of
 * users[0..n) here (tail_forget) and on every other node, so that no tail
 * serves the message's old body again. A node that was off the bus forgets
 * all its tails when it comes back. Blocking (one PUBLISH). */
void cluster_forget_tails(const int64_t *users, size_t n);

/* Hands an ephemeral event (borrowed) to the parked polls of users on
 * every node: here (hub_emit) and on the nodes where they poll. */
void cluster_emit(const int64_t *users, size_t n, json_t *event);

/* After a logout committed: every other node forgets the session (the
 * revoke function) and ends its poll. */
void cluster_revoke_session(int64_t session_id);

/* What to do on this node when another revoked a session (the auth cache's
 * forget; the hub's end_session is done here); session 0 means "forget
 * every cached session" (the bus had a gap: a revocation may have been
 * missed). Call before cluster_start. */
void cluster_on_revoke(void (*fn)(int64_t session_id));

/* The predicate for the (thread, typer) drops of a wake message (ctx:
 * int64_t[2]): events_is_typing. Call before cluster_start. */
void cluster_on_drop(bool (*match)(json_t *ev, void *ctx));

/* How the safety net reads the streams' ends of the users in ids_json (a
 * JSON array of ids): rows (user, end) — events_stream_ends. Call before
 * cluster_start. */
struct db_res;
void cluster_on_stream_ends(int (*fn)(const char *ids_json, struct db_res **out));

/* True when this node holds (or just took, or renewed) the lease `name` for
 * ttl_ms; true as well when there is no cluster or the bus is down (the
 * work it guards must be safe to run twice). */
bool cluster_lead(const char *name, int ttl_ms);

/* Presence across the cluster. presence_touch_many marks users[0..n) active
 * now (online for window_s); it returns, in *online (malloc'd, caller frees)
 * and *nonline, those that were not online before. presence_sweep pops the
 * users whose window ended: *offline (malloc'd) holds pairs (user,
 * last_seen_at ms). presence_state reads one user: returns 1 and sets
 * *last_seen_at (ms) when known, 0 when unknown, -1 when the bus is down.
 * *is_online tells the state. */
int cluster_presence_touch(const int64_t *users, size_t n, int64_t **online, size_t *nonline);
int cluster_presence_sweep(int64_t (**offline)[2], size_t *noffline);
int cluster_presence_state(int64_t user_id, bool *is_online, int64_t *last_seen_at);

#endif
