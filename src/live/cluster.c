/* cluster.c — the Redis bus between chatd nodes (see cluster.h).
 *
 * Keys and channels (Redis 7, one instance):
 *   chatd:alive        ZSET node → heartbeat (ms, Redis time), every second
 *   chatd:r:<uid>      HASH node → joined_at: where the user polls (1 h TTL)
 *   chatd:s:<sid>      the node where the session polls (2 min TTL)
 *   chatd:pres         ZSET uid → online until (ms, Redis time)
 *   chatd:lock:<name>  a leader's lease
 *   chatd:n:<node>     the node's channel: W (wake), E (ephemeral), S
 *                      (supersede a session's poll), P (self-ping)
 *   chatd:all          every node: R (revoke a session)
 *
 * A wake message is "W" and JSON: {"u":[users], "e":[[user,pos,i,prev]…],
 * "b":[event…], "d":[[thread,typer]…]} (e's i indexes b: an event rendered
 * once for all its recipients; prev is the user's position before pos, and
 * an event without it is not put into tails); the receiver puts the events into its tails, drops
 * the superseded typing, then wakes the users — the order of a local commit.
 *
 * Connections: one per thread that sends commands (thread-local, opened on
 * first use, reopened after an error), and the subscriber's own. The
 * subscriber reads with poll() so that it can ping, heartbeat and stop. */
#include "live/cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/idmap.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "db/db.h"
#include "live/hub.h"
#include "live/tail.h"

#define PING_EVERY_MS 1000
#define PING_LOST_MS 3000
#define NODE_DEAD_MS 5000
#define ROUTE_TTL_MS 3600000
#define REJOIN_MS 600000 /* a user joined longer ago is joined again */
#define SESSION_TTL_MS 120000
#define RECONCILE_MS 5000
#define RECONCILE_DEGRADED_MS 1000
#define RECONCILE_CHUNK 500

static char host[256];
static int port;
static char node[128];
static bool enabled;
static int64_t window_ms;
static void (*on_revoke)(int64_t session_id);
static bool (*drop_match)(json_t *ev, void *ctx);
static int (*stream_ends)(const char *ids_json, struct db_res **out); /* cluster_on_stream_ends */

static atomic_bool running, healthy, got_pong;
static _Atomic int64_t last_pong_ms;
static pthread_t subscriber, reconciler;
static pthread_key_t conn_key;

/* Users (and sessions) joined from here lately: id → mono ms of the join. */
static pthread_mutex_t joined_mu = PTHREAD_MUTEX_INITIALIZER;
static struct idmap joined_users, joined_sessions;

static atomic_uint_fast64_t publishes, publish_errors, wakes_received, reconcile_wakes, gaps;

/* --- connections --- */

/* A connection with a 1 s connect and a 500 ms command timeout: a Redis
 * that hangs costs a caller at most that, and the node turns degraded. */
static redisContext *connect_redis(void)
{
    struct timeval tv = {1, 0}, io = {0, 500000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, io);
    return c;
}

static __thread redisContext *tl_conn;
static __thread int tl_conn_epoch;
/* Moves at each new epoch (the bus reconnected): every thread's command
 * connection, likely dead with the old Redis, is reopened on next use. */
static atomic_int conn_epoch;

static void conn_destroy(void *p)
{
    if (p)
        redisFree(p);
    tl_conn = NULL;
}

/* This thread's command connection, or NULL when Redis is unreachable. */
static redisContext *conn(void)
{
    if (tl_conn && tl_conn_epoch != atomic_load(&conn_epoch)) {
        redisFree(tl_conn);
        tl_conn = NULL;
    }
    if (tl_conn == NULL) {
        tl_conn_epoch = atomic_load(&conn_epoch);
        tl_conn = connect_redis();
        if (tl_conn)
            pthread_setspecific(conn_key, tl_conn);
    }
    return tl_conn;
}

/* Drops this thread's connection after an error. */
static void conn_failed(void)
{
    if (tl_conn)
        redisFree(tl_conn);
    tl_conn = NULL;
    pthread_setspecific(conn_key, NULL);
}

/* Runs one command (argv form); NULL on error (the connection is dropped).
 * A connection found dead is replaced and the command sent once more. */
static redisReply *command(int argc, const char **argv, const size_t *lens)
{
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
        redisContext *c = conn();
        if (c == NULL)
            return NULL;
        r = redisCommandArgv(c, argc, argv, lens);
        if (r == NULL || c->err) {
            if (r)
                freeReplyObject(r);
            r = NULL;
            conn_failed();
        }
    }
    if (r == NULL)
        return NULL;
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("cluster: redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* PUBLISH channel message (len bytes). Returns 0 or -1. */
static int publish(const char *channel, const char *msg, size_t len)
{
    const char *argv[3] = {"PUBLISH", channel, msg};
    size_t lens[3] = {7, strlen(channel), len};
    redisReply *r = command(3, argv, lens);
    atomic_fetch_add(r ? &publishes : &publish_errors, 1);
    if (r)
        freeReplyObject(r);
    return r ? 0 : -1;
}

/* --- scripts (EVAL: Redis caches them by their text) --- */

/* ARGV: self, dead_ms, uid…; returns per uid the other alive nodes where it
 * polls, and forgets dead nodes' fields. */
static const char route_lua[] =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local alive = {} local out = {} "
    "for i = 3, #ARGV do "
    "  local key = 'chatd:r:' .. ARGV[i] local nodes = {} "
    "  for _, n in ipairs(redis.call('HKEYS', key)) do "
    "    if n ~= ARGV[1] then "
    "      local a = alive[n] "
    "      if a == nil then local s = redis.call('ZSCORE', 'chatd:alive', n) "
    "        a = s ~= false and now - tonumber(s) < tonumber(ARGV[2]) alive[n] = a end "
    "      if a then nodes[#nodes + 1] = n else redis.call('HDEL', key, n) end "
    "    end "
    "  end "
    "  out[#out + 1] = nodes "
    "end return out";

static const char heartbeat_lua[] =
    "local t = redis.call('TIME') "
    "redis.call('ZADD', 'chatd:alive', t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1]) "
    "return 1";

/* ARGV: window_ms, uid…; returns the uids that were not online. */
static const char touch_lua[] =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local until_ms = now + tonumber(ARGV[1]) local out = {} "
    "for i = 2, #ARGV do "
    "  local s = redis.call('ZSCORE', 'chatd:pres', ARGV[i]) "
    "  if s == false or tonumber(s) < now then out[#out + 1] = ARGV[i] end "
    "  redis.call('ZADD', 'chatd:pres', 'GT', until_ms, ARGV[i]) "
    "end return out";

/* ARGV: limit; pops the users whose window ended: [uid, until, …]. */
static const char sweep_lua[] =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local r = redis.call('ZRANGEBYSCORE', 'chatd:pres', '-inf', now, 'WITHSCORES', 'LIMIT', 0, "
    "ARGV[1]) "
    "for i = 1, #r, 2 do redis.call('ZREM', 'chatd:pres', r[i]) end return r";

/* ARGV: uid; returns {until or -1, now}. */
static const char state_lua[] =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "local s = redis.call('ZSCORE', 'chatd:pres', ARGV[1]) "
    "return {s == false and -1 or math.floor(tonumber(s)), now}";

/* EVAL script with no keys and the given string arguments. */
static redisReply *eval(const char *script, int nargs, const char **args)
{
    const char **argv = malloc((size_t)(nargs + 3) * sizeof *argv);
    size_t *lens = malloc((size_t)(nargs + 3) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv), free(lens);
        return NULL;
    }
    argv[0] = "EVAL", argv[1] = script, argv[2] = "0";
    for (int i = 0; i < nargs; i++)
        argv[i + 3] = args[i];
    for (int i = 0; i < nargs + 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = command(nargs + 3, argv, lens);
    free(argv), free(lens);
    return r;
}

/* ids as decimal strings for script arguments: one buffer, n pointers. */
struct idargs {
    char *buf;
    const char **args;
    int n;
};

static bool idargs_make(struct idargs *a, const char *const *head, int nhead, const int64_t *ids,
                        size_t n)
{
    a->buf = malloc(n * 24 + 1);
    a->args = malloc((n + (size_t)nhead) * sizeof *a->args);
    if (a->buf == NULL || a->args == NULL) {
        free(a->buf), free(a->args);
        return false;
    }
    a->n = nhead + (int)n;
    for (int i = 0; i < nhead; i++)
        a->args[i] = head[i];
    char *p = a->buf;
    for (size_t i = 0; i < n; i++) {
        a->args[nhead + (int)i] = p;
        p += sprintf(p, "%lld", (long long)ids[i]) + 1;
    }
    return true;
}

static void idargs_free(struct idargs *a) { free(a->buf), free(a->args); }

/* The other alive nodes where each of users[0..n) polls: route[i] is an
 * array reply element (owned by the returned reply). NULL on error. */
static redisReply *route(const int64_t *users, size_t n)
{
    char dead[16];
    snprintf(dead, sizeof dead, "%d", NODE_DEAD_MS);
    const char *head[2] = {node, dead};
    struct idargs a;
    if (!idargs_make(&a, head, 2, users, n))
        return NULL;
    redisReply *r = eval(route_lua, a.n, a.args);
    idargs_free(&a);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != n)) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* --- publishing --- */

/* One message being built per target node: its users, its events, and
 * the distinct rendered events they point to (one blob serves every
 * recipient of a message, so it travels once per node). */
struct outbox {
    char name[128];
    struct sbuf users, events, blobs;
    struct idmap blob_index; /* blob address → index + 1 in blobs */
    int64_t nblobs;
};

static struct outbox *outbox_of(struct outbox *boxes, size_t *nboxes, size_t max, const char *name)
{
    for (size_t i = 0; i < *nboxes; i++)
        if (strcmp(boxes[i].name, name) == 0)
            return &boxes[i];
    if (*nboxes == max)
        return NULL;
    struct outbox *b = &boxes[(*nboxes)++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    return b;
}

#define MAX_NODES 64

void cluster_publish_wake(const int64_t *users, size_t n, const struct cluster_event *ev,
                          size_t nev, const int64_t (*drops)[2], size_t ndrops)
{
    /* While the bus is down the reconcile loop delivers; a hung Redis must
     * not hold every commit for a timeout. */
    if (!enabled || n == 0 || !atomic_load(&healthy))
        return;
    redisReply *r = route(users, n);
    if (r == NULL) {
        atomic_fetch_add(&publish_errors, 1);
        return;
    }
    struct outbox *boxes = calloc(MAX_NODES, sizeof *boxes);
    size_t nboxes = 0;
    struct idmap user_index = {0}; /* user → index + 1 in users */
    for (size_t i = 0; boxes && i < n; i++) {
        redisReply *nodes = r->element[i];
        idmap_put(&user_index, users[i], (void *)(intptr_t)(i + 1));
        for (size_t k = 0; k < nodes->elements; k++) {
            struct outbox *b = outbox_of(boxes, &nboxes, MAX_NODES, nodes->element[k]->str);
            if (b)
                sb_item(&b->users, "%lld", (long long)users[i]);
        }
    }
    for (size_t e = 0; boxes && e < nev; e++) {
        size_t i = (size_t)(intptr_t)idmap_get(&user_index, ev[e].user_id);
        if (i == 0 || ev[e].blob == NULL)
            continue;
        redisReply *nodes = r->element[i - 1];
        for (size_t k = 0; k < nodes->elements; k++) {
            struct outbox *b = outbox_of(boxes, &nboxes, MAX_NODES, nodes->element[k]->str);
            if (b == NULL)
                continue;
            int64_t key = (int64_t)(intptr_t)ev[e].blob;
            int64_t x = (int64_t)(intptr_t)idmap_get(&b->blob_index, key);
            if (x == 0) {
                x = ++b->nblobs;
                idmap_put(&b->blob_index, key, (void *)(intptr_t)x);
                sb_item(&b->blobs, "%.*s", (int)ev[e].blob->len, ev[e].blob->json);
            }
            sb_item(&b->events, "[%lld,%lld,%lld,%lld]", (long long)ev[e].user_id,
                    (long long)ev[e].pos, (long long)(x - 1), (long long)ev[e].prev);
        }
    }
    idmap_free(&user_index);
    freeReplyObject(r);
    struct sbuf dropped = {0};
    for (size_t d = 0; d < ndrops; d++)
        sb_item(&dropped, "[%lld,%lld]", (long long)drops[d][0], (long long)drops[d][1]);
    const char *ds = sb_done(&dropped);
    for (size_t i = 0; i < nboxes; i++) {
        struct outbox *b = &boxes[i];
        const char *us = sb_done(&b->users), *es = sb_done(&b->events), *bs = sb_done(&b->blobs);
        struct sbuf msg = {0};
        if (us && es && bs && ds)
            sb_printf(&msg, "W{\"u\":%s,\"e\":%s,\"b\":%s,\"d\":%s}", us, es, bs, ds);
        char channel[160];
        snprintf(channel, sizeof channel, "chatd:n:%s", b->name);
        if (msg.s && !msg.failed)
            publish(channel, msg.s, msg.len);
        else
            atomic_fetch_add(&publish_errors, 1);
        free(msg.s), free(b->users.s), free(b->events.s), free(b->blobs.s);
        idmap_free(&b->blob_index);
    }
    free(dropped.s);
    free(boxes);
}

void cluster_emit(const int64_t *users, size_t n, json_t *event)
{
    hub_emit(users, n, event);
    if (!enabled || n == 0 || !atomic_load(&healthy))
        return;
    redisReply *r = route(users, n);
    if (r == NULL)
        return;
    char *ev = json_dumps(event, JSON_COMPACT);
    struct outbox *boxes = calloc(MAX_NODES, sizeof *boxes);
    size_t nboxes = 0;
    for (size_t i = 0; boxes && ev && i < n; i++)
        for (size_t k = 0; k < r->element[i]->elements; k++) {
            struct outbox *b = outbox_of(boxes, &nboxes, MAX_NODES, r->element[i]->element[k]->str);
            if (b)
                sb_item(&b->users, "%lld", (long long)users[i]);
        }
    freeReplyObject(r);
    for (size_t i = 0; i < nboxes; i++) {
        struct sbuf msg = {0};
        const char *us = sb_done(&boxes[i].users);
        if (us)
            sb_printf(&msg, "E{\"u\":%s,\"ev\":%s}", us, ev);
        char channel[160];
        snprintf(channel, sizeof channel, "chatd:n:%s", boxes[i].name);
        if (msg.s && !msg.failed)
            publish(channel, msg.s, msg.len);
        free(msg.s), free(boxes[i].users.s);
    }
    free(boxes);
    free(ev);
}

void cluster_forget_tails(const int64_t *users, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tail_forget(users[i]);
    if (!enabled || n == 0)
        return;
    if (!atomic_load(&healthy)) {
        atomic_fetch_add(&publish_errors, 1);
        log_warn("cluster: off the bus; other nodes forget their tails when they reconnect");
        return;
    }
    struct sbuf ids = {0}, msg = {0};
    for (size_t i = 0; i < n; i++)
        sb_item(&ids, "%lld", (long long)users[i]);
    const char *list = sb_done(&ids);
    if (list)
        sb_printf(&msg, "X%s", list);
    if (msg.s && !msg.failed)
        publish("chatd:all", msg.s, msg.len);
    else
        atomic_fetch_add(&publish_errors, 1);
    free(ids.s), free(msg.s);
}

/* Users whose tails another node had us forget, with when (mono ms): the
 * subscriber thread's own. A wake that another node published just before
 * the forget may arrive just after it, holding the deleted body; for
 * FORGET_HOLD_MS the tails of these users take nothing from wakes (their
 * polls read the database). */
#define FORGET_HOLD_MS 10000
static struct idmap forgotten;
static int64_t forgotten_swept;

static bool recently_forgotten(int64_t user, int64_t now)
{
    int64_t at = (int64_t)(intptr_t)idmap_get(&forgotten, user);
    return at != 0 && now - at < FORGET_HOLD_MS;
}

/* Another node deleted a message: forget the listed users' tails. */
static void on_forget(const char *json)
{
    json_t *users = json_loads(json, 0, NULL);
    int64_t now = mono_ms();
    if (now - forgotten_swept > FORGET_HOLD_MS) {
        for (size_t k = 0; k < forgotten.cap; k++) {
            if (forgotten.keys[k] == 0 ||
                now - (int64_t)(intptr_t)forgotten.values[k] < FORGET_HOLD_MS)
                continue;
            idmap_del(&forgotten, forgotten.keys[k]);
            k--; /* backward-shift deletion may have moved another entry here */
        }
        forgotten_swept = now;
    }
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) {
        tail_forget(json_integer_value(u));
        idmap_put(&forgotten, json_integer_value(u), (void *)(intptr_t)(now ? now : 1));
    }
    json_decref(users);
}

void cluster_revoke_session(int64_t session_id)
{
    /* While the bus is down, other nodes trust their caches for 2 s only. */
    if (!enabled || !atomic_load(&healthy))
        return;
    char msg[192];
    int len = snprintf(msg, sizeof msg, "R %lld %s", (long long)session_id, node);
    publish("chatd:all", msg, (size_t)len);
}

void cluster_on_revoke(void (*fn)(int64_t session_id)) { on_revoke = fn; }

void cluster_on_drop(bool (*match)(json_t *ev, void *ctx)) { drop_match = match; }

void cluster_on_stream_ends(int (*fn)(const char *ids_json, struct db_res **out))
{
    stream_ends = fn;
}

/* --- joining the user→node map --- */

/* True (and noted) when id was not joined from here in the last
 * REJOIN_MS. */
static bool join_due(struct idmap *m, int64_t id, int64_t now)
{
    if (id == 0)
        return false;
    pthread_mutex_lock(&joined_mu);
    int64_t at = (int64_t)(intptr_t)idmap_get(m, id);
    bool due = at == 0 || now - at > REJOIN_MS;
    if (due)
        idmap_put(m, id, (void *)(intptr_t)now);
    pthread_mutex_unlock(&joined_mu);
    return due;
}

/* Forgets every join (a new epoch: Redis may have lost them). */
static void joins_forget(void)
{
    pthread_mutex_lock(&joined_mu);
    idmap_free(&joined_users);
    idmap_free(&joined_sessions);
    pthread_mutex_unlock(&joined_mu);
}

/* Drops the joins older than REJOIN_MS from m (under joined_mu): such an
 * entry is due again anyway, and ended sessions must not stay forever. */
static void joins_sweep(struct idmap *m, int64_t now)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0 || now - (int64_t)(intptr_t)m->values[i] <= REJOIN_MS)
            continue;
        idmap_del(m, m->keys[i]);
        i--; /* backward-shift deletion may have moved another entry here */
    }
}

void cluster_join(const int64_t *users, const int64_t *sessions, size_t n)
{
    static int64_t next_sweep; /* mono ms */
    if (mono_ms() >= next_sweep) {
        pthread_mutex_lock(&joined_mu);
        if (mono_ms() >= next_sweep) {
            joins_sweep(&joined_users, mono_ms());
            joins_sweep(&joined_sessions, mono_ms());
            next_sweep = mono_ms() + REJOIN_MS;
        }
        pthread_mutex_unlock(&joined_mu);
    }
    if (!enabled || !atomic_load(&healthy))
        return;
    redisContext *c = conn();
    if (c == NULL)
        return;
    int64_t now = mono_ms();
    char ttl[16], at[24];
    snprintf(ttl, sizeof ttl, "%d", ROUTE_TTL_MS);
    snprintf(at, sizeof at, "%lld", (long long)now_ms());
    int sent = 0;
    int64_t *claimed = malloc(n * sizeof *claimed), *marked = malloc(n * sizeof *marked);
    size_t nclaimed = 0, nmarked = 0;
    for (size_t i = 0; i < n; i++) {
        char key[48];
        if (marked && join_due(&joined_users, users[i], now)) {
            marked[nmarked++] = users[i];
            snprintf(key, sizeof key, "chatd:r:%lld", (long long)users[i]);
            redisAppendCommand(c, "HSET %s %s %s", key, node, at);
            redisAppendCommand(c, "PEXPIRE %s %s", key, ttl);
            sent += 2;
        }
        if (claimed && join_due(&joined_sessions, sessions[i], now)) {
            snprintf(key, sizeof key, "chatd:s:%lld", (long long)sessions[i]);
            redisAppendCommand(c, "SET %s %s PX %d GET", key, node, SESSION_TTL_MS);
            claimed[nclaimed++] = sessions[i];
            sent++;
        }
    }
    /* Replies in order: the joins' are only checked for errors; a claim's
     * is the session's previous node. */
    size_t k = 0;
    bool failed = false;
    for (int i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            conn_failed();
            failed = true;
            break;
        }
        if (r->type == REDIS_REPLY_STRING && strcmp(r->str, node) != 0 && r->str[0]) {
            /* A SET … GET answer naming another node: supersede there. The
             * claims' replies are the only string replies here. */
            char channel[160], msg[48];
            snprintf(channel, sizeof channel, "chatd:n:%s", r->str);
            int len = snprintf(msg, sizeof msg, "S %lld", (long long)claimed[k]);
            freeReplyObject(r);
            publish(channel, msg, (size_t)len);
            k++;
            continue;
        }
        if (r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_STRING)
            k++;
        freeReplyObject(r);
    }
    if (failed) {
        /* Not joined after all: the next batch tries again. */
        pthread_mutex_lock(&joined_mu);
        for (size_t i = 0; i < nmarked; i++)
            idmap_del(&joined_users, marked[i]);
        for (size_t i = 0; i < nclaimed; i++)
            idmap_del(&joined_sessions, claimed[i]);
        pthread_mutex_unlock(&joined_mu);
    }
    free(claimed);
    free(marked);
}

/* --- the leader's lease --- */

bool cluster_lead(const char *name, int ttl_ms)
{
    if (!enabled || !atomic_load(&healthy))
        return true;
    char key[128], ttl[16];
    snprintf(key, sizeof key, "chatd:lock:%s", name);
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    /* Take it when free, or renew it when ours. */
    const char *argv[] = {"EVAL",
                          "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
                          "return 1 end "
                          "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                          "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end return 0",
                          "1",
                          key,
                          node,
                          ttl};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = command(6, argv, lens);
    bool mine = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return r ? mine : true;
}

/* --- presence --- */

int cluster_presence_touch(const int64_t *users, size_t n, int64_t **online, size_t *nonline)
{
    *online = NULL;
    *nonline = 0;
    if (n == 0)
        return 0;
    char win[24];
    snprintf(win, sizeof win, "%lld", (long long)window_ms);
    const char *head[1] = {win};
    struct idargs a;
    if (!idargs_make(&a, head, 1, users, n))
        return -1;
    redisReply *r = eval(touch_lua, a.n, a.args);
    idargs_free(&a);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    *online = malloc((r->elements + 1) * sizeof **online);
    for (size_t i = 0; *online && i < r->elements; i++)
        (*online)[(*nonline)++] = strtoll(r->element[i]->str, NULL, 10);
    freeReplyObject(r);
    return 0;
}

int cluster_presence_sweep(int64_t (**offline)[2], size_t *noffline)
{
    *offline = NULL;
    *noffline = 0;
    const char *args[1] = {"500"};
    redisReply *r = eval(sweep_lua, 1, args);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    *offline = malloc((r->elements / 2 + 1) * sizeof **offline);
    for (size_t i = 0; *offline && i + 1 < r->elements; i += 2) {
        (*offline)[*noffline][0] = strtoll(r->element[i]->str, NULL, 10);
        (*offline)[*noffline][1] = strtoll(r->element[i + 1]->str, NULL, 10) - window_ms;
        (*noffline)++;
    }
    freeReplyObject(r);
    return 0;
}

int cluster_presence_state(int64_t user_id, bool *is_online, int64_t *last_seen_at)
{
    if (!atomic_load(&healthy))
        return -1;
    char uid[24];
    snprintf(uid, sizeof uid, "%lld", (long long)user_id);
    const char *args[1] = {uid};
    redisReply *r = eval(state_lua, 1, args);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int64_t until = r->element[0]->integer, now = r->element[1]->integer;
    freeReplyObject(r);
    if (until < 0)
        return 0;
    *is_online = until > now;
    *last_seen_at = *is_online ? now_ms() : until - window_ms;
    return 1;
}

/* --- receiving --- */

/* A wake message from another node. */
static void on_wake(const char *json)
{
    json_t *m = json_loads(json, 0, NULL);
    if (m == NULL)
        return;
    size_t i;
    json_t *e;
    /* Each distinct event rendered once, shared by its recipients' tails. */
    json_t *views = json_object_get(m, "b");
    size_t nviews = json_array_size(views);
    struct tail_blob **blobs = calloc(nviews + 1, sizeof *blobs);
    for (i = 0; blobs && i < nviews; i++)
        blobs[i] = tail_blob_of(json_array_get(views, i));
    int64_t now = mono_ms();
    json_array_foreach(json_object_get(m, "e"), i, e) {
        json_int_t x = json_integer_value(json_array_get(e, 2));
        if (blobs && x >= 0 && (size_t)x < nviews && blobs[x] &&
            !recently_forgotten(json_integer_value(json_array_get(e, 0)), now))
            tail_put(json_integer_value(json_array_get(e, 0)),
                     json_integer_value(json_array_get(e, 1)),
                     json_is_integer(json_array_get(e, 3))
                         ? json_integer_value(json_array_get(e, 3))
                         : -1,
                     blobs[x]);
    }
    for (i = 0; blobs && i < nviews; i++)
        tail_blob_unref(blobs[i]);
    free(blobs);
    json_t *users = json_object_get(m, "u");
    size_t n = json_array_size(users);
    int64_t *ids = malloc((n + 1) * sizeof *ids);
    for (i = 0; ids && i < n; i++)
        ids[i] = json_integer_value(json_array_get(users, i));
    json_array_foreach(json_object_get(m, "d"), i, e) {
        int64_t of[2] = {json_integer_value(json_array_get(e, 0)),
                         json_integer_value(json_array_get(e, 1))};
        if (ids)
            if (drop_match)
                hub_drop_ephemeral(ids, n, drop_match, of);
    }
    if (ids)
        hub_notify(ids, n);
    atomic_fetch_add(&wakes_received, 1);
    free(ids);
    json_decref(m);
}

/* An ephemeral event from another node. */
static void on_ephemeral(const char *json)
{
    json_t *m = json_loads(json, 0, NULL);
    json_t *users = json_object_get(m, "u"), *ev = json_object_get(m, "ev");
    size_t n = json_array_size(users);
    int64_t *ids = malloc((n + 1) * sizeof *ids);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = json_integer_value(json_array_get(users, i));
    if (ids && ev)
        hub_emit(ids, n, ev);
    free(ids);
    json_decref(m);
}

static void on_message(const char *msg, size_t len)
{
    if (len == 0)
        return;
    switch (msg[0]) {
    case 'W': on_wake(msg + 1); break;
    case 'E': on_ephemeral(msg + 1); break;
    case 'X': on_forget(msg + 1); break;
    case 'S': hub_supersede_session(strtoll(msg + 1, NULL, 10)); break;
    case 'R': {
        char from[128] = "";
        long long sid = 0;
        if (sscanf(msg + 1, "%lld %127s", &sid, from) >= 1 && strcmp(from, node) != 0) {
            if (on_revoke)
                on_revoke(sid);
            hub_end_session(sid);
        }
        break;
    }
    case 'P':
        atomic_store(&last_pong_ms, mono_ms());
        atomic_store(&got_pong, true);
        break;
    }
}

/* A new epoch: Redis may have lost what we told it, and we may have missed
 * what it carried. */
static void new_epoch(void)
{
    atomic_fetch_add(&gaps, 1);
    atomic_fetch_add(&conn_epoch, 1);
    joins_forget();
    tail_forget_all(); /* a forget (X) may have been lost */
    if (on_revoke)
        on_revoke(0); /* 0: forget every cached session */
}

static void heartbeat(void)
{
    const char *args[1] = {node};
    redisReply *r = eval(heartbeat_lua, 1, args);
    if (r)
        freeReplyObject(r);
}

/* Subscribes and reads until an error or a lost ping; then reconnects with
 * a growing pause. */
static void *subscriber_main(void *arg)
{
    (void)arg;
    char own[160];
    snprintf(own, sizeof own, "chatd:n:%s", node);
    int backoff_ms = 100;
    while (atomic_load(&running)) {
        redisContext *c = connect_redis();
        redisReply *r = c ? redisCommand(c, "SUBSCRIBE %s chatd:all", own) : NULL;
        if (r)
            freeReplyObject(r);
        /* Two subscribe confirmations. */
        bool ok = r != NULL && c->err == 0;
        for (int k = 0; ok && k < 1; k++) {
            redisReply *conf = NULL;
            ok = redisGetReply(c, (void **)&conf) == REDIS_OK;
            if (conf)
                freeReplyObject(conf);
        }
        if (!ok) {
            if (c)
                redisFree(c);
            atomic_store(&healthy, false);
            struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2;
            continue;
        }
        backoff_ms = 100;
        new_epoch();
        int64_t next_ping = 0;
        atomic_store(&last_pong_ms, mono_ms());
        atomic_store(&got_pong, false);
        bool was_healthy = false;
        while (atomic_load(&running)) {
            void *reply = NULL;
            if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
                break;
            if (reply) {
                redisReply *m = reply;
                if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                    m->element[2]->type == REDIS_REPLY_STRING)
                    on_message(m->element[2]->str, m->element[2]->len);
                freeReplyObject(m);
                continue;
            }
            int64_t now = mono_ms();
            if (now >= next_ping) {
                next_ping = now + PING_EVERY_MS;
                heartbeat();
                publish(own, "P", 1);
            }
            bool fresh = now - atomic_load(&last_pong_ms) < PING_LOST_MS;
            if (!fresh) {
                log_warn("cluster: the bus lost our ping; reconnecting");
                break;
            }
            if (!was_healthy && atomic_load(&got_pong)) {
                atomic_store(&healthy, true);
                was_healthy = true;
                log_info("cluster: node %s on the bus", node);
            }
            struct pollfd p = {c->fd, POLLIN, 0};
            int k = poll(&p, 1, 100);
            if (k < 0 && errno != EINTR)
                break;
            if (k > 0 && redisBufferRead(c) != REDIS_OK)
                break;
        }
        atomic_store(&healthy, false);
        redisFree(c);
        if (atomic_load(&running))
            log_warn("cluster: lost the bus; delivery across nodes through the database");
    }
    return NULL;
}

/* --- the safety net --- */

static void reconcile_once(void)
{
    size_t max = hub_parked_count() + 64;
    int64_t(*cur)[2] = malloc(max * sizeof *cur);
    if (cur == NULL)
        return;
    size_t n = hub_parked_cursors(cur, max);
    for (size_t from = 0; from < n; from += RECONCILE_CHUNK) {
        size_t k = n - from < RECONCILE_CHUNK ? n - from : RECONCILE_CHUNK;
        struct sbuf ids = {0};
        for (size_t i = 0; i < k; i++)
            sb_item(&ids, "%lld", (long long)cur[from + i][0]);
        struct db_res *r;
        const char *list = sb_done(&ids);
        int rc = list && stream_ends ? stream_ends(list, &r) : DB_ERR;
        free(ids.s);
        if (rc < 0)
            break;
        int64_t *wake = malloc((size_t)r->nrows * sizeof *wake + 1);
        size_t nwake = 0;
        for (int row = 0; wake && row < r->nrows; row++) {
            int64_t user = db_int(r, row, 0), last = db_int(r, row, 1);
            for (size_t i = 0; i < k; i++)
                if (cur[from + i][0] == user && cur[from + i][1] < last) {
                    wake[nwake++] = user;
                    break;
                }
        }
        db_res_free(r);
        if (nwake) {
            hub_notify(wake, nwake);
            atomic_fetch_add(&reconcile_wakes, nwake);
        }
        free(wake);
    }
    free(cur);
}

static void *reconciler_main(void *arg)
{
    (void)arg;
    int64_t next = mono_ms() + RECONCILE_DEGRADED_MS;
    while (atomic_load(&running)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (mono_ms() < next)
            continue;
        next = mono_ms() + (atomic_load(&healthy) ? RECONCILE_MS : RECONCILE_DEGRADED_MS);
        reconcile_once();
    }
    return NULL;
}

/* --- start, stop, metrics --- */

static int64_t healthy_gauge(void) { return atomic_load(&healthy); }
static int64_t publishes_counter(void) { return (int64_t)atomic_load(&publishes); }
static int64_t publish_errors_counter(void) { return (int64_t)atomic_load(&publish_errors); }
static int64_t wakes_counter(void) { return (int64_t)atomic_load(&wakes_received); }
static int64_t reconcile_counter(void) { return (int64_t)atomic_load(&reconcile_wakes); }
static int64_t gaps_counter(void) { return (int64_t)atomic_load(&gaps); }

bool cluster_enabled(void) { return enabled; }
bool cluster_healthy(void) { return enabled && atomic_load(&healthy); }
const char *cluster_node(void) { return node; }

/* Parses redis://host:port[/db] (a db other than 0 is not used). */
static int parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0)
        return -1;
    p += 8;
    const char *colon = strchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strcspn(p, "/");
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    port = 6379;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (v <= 0 || v > 65535 || (*end != '\0' && *end != '/'))
            return -1;
        port = (int)v;
    }
    return 0;
}

int cluster_start(const char *redis_url, const char *node_id, int presence_window_s)
{
    window_ms = (int64_t)presence_window_s * 1000;
    if (redis_url == NULL || redis_url[0] == '\0')
        return 0;
    if (parse_url(redis_url) < 0) {
        log_error("cluster: redis_url must be redis://host:port, not '%s'", redis_url);
        return -1;
    }
    if (node_id && node_id[0])
        snprintf(node, sizeof node, "%s", node_id);
    else {
        char hn[64] = "";
        gethostname(hn, sizeof hn - 1);
        snprintf(node, sizeof node, "%s:%d", hn, (int)getpid());
    }
    pthread_key_create(&conn_key, conn_destroy);
    enabled = true;
    atomic_store(&running, true);
    if (metrics_gauge("chatd_cluster_bus_up", "1 while this node's bus works.", healthy_gauge) <
            0 ||
        metrics_counter("chatd_cluster_publish_total", "Messages published to other nodes.",
                        publishes_counter) < 0 ||
        metrics_counter("chatd_cluster_publish_errors_total", "Publishes that failed.",
                        publish_errors_counter) < 0 ||
        metrics_counter("chatd_cluster_wakes_received_total", "Wake messages from other nodes.",
                        wakes_counter) < 0 ||
        metrics_counter("chatd_cluster_reconcile_wakes_total",
                        "Polls woken by the database check (0 while the bus works).",
                        reconcile_counter) < 0 ||
        metrics_counter("chatd_cluster_gaps_total", "Times the bus was (re)joined.", gaps_counter) <
            0)
        log_warn("cluster: too many gauges");
    if (pthread_create(&subscriber, NULL, subscriber_main, NULL) != 0 ||
        pthread_create(&reconciler, NULL, reconciler_main, NULL) != 0) {
        log_error("cluster: cannot start threads");
        return -1;
    }
    /* Start on the bus when it is there: wait a moment for the first ping. */
    for (int i = 0; i < 30 && !atomic_load(&healthy); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_info("cluster: node %s, redis %s:%d, %s", node, host, port,
             atomic_load(&healthy) ? "on the bus" : "bus not reached yet (degraded)");
    return 0;
}

void cluster_stop(void)
{
    if (!enabled)
        return;
    atomic_store(&running, false);
    pthread_join(subscriber, NULL);
    pthread_join(reconciler, NULL);
    conn_destroy(tl_conn);
    pthread_setspecific(conn_key, NULL);
    joins_forget();
    idmap_free(&forgotten);
    enabled = false;
}
