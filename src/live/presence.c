/* presence.c — presence state and the sweeper that publishes changes.
 *
 * One node: the state is here (polls and last activity per user), and the
 * sweeper publishes each change of a user's state once.
 *
 * Several nodes (live/cluster.h): the truth is Redis's sorted set, shared by
 * all. The sweeper tells it which users were active here (every tick for
 * new activity, every window/3 for users still polling), and publishes an
 * "online" for each user the set did not hold, and an "offline" for each
 * user whose window ended that its sweep popped — so every transition is
 * published once, by one node, however a user's devices are spread. While
 * the bus is down it falls back to the local state. */
#include "live/presence.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/util.h"

#define FORGET_AFTER_MS (10 * 60 * 1000)

struct presence_entry {
    int64_t last_active_ms; /* wall clock: last request, or when the last poll ended */
    int64_t told_ms;        /* cluster: when Redis last heard of this user from here */
    int polls;
    bool published_online;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct idmap entries;
static int64_t window_ms = 60000;
static pthread_t sweeper;
static atomic_bool running;

static struct presence_entry *entry_get(int64_t user_id)
{
    struct presence_entry *e = idmap_get(&entries, user_id);
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (e && idmap_put(&entries, user_id, e) < 0) {
            free(e);
            e = NULL;
        }
    }
    return e;
}

void presence_touch(int64_t user_id)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&lock);
    struct presence_entry *e = entry_get(user_id);
    if (e)
        e->last_active_ms = now;
    pthread_mutex_unlock(&lock);
}

static bool local_state(int64_t user_id, bool *online, int64_t *last_seen_at);

/* The hub's number of polls for user changed (hub_on_polls_changed). */
static void presence_polls_changed(int64_t user_id)
{
    int64_t now = now_ms();
    /* The count is read under our lock, so that two changes racing each other
     * cannot leave a stale count behind. Lock order: presence, then hub (the
     * hub never calls in here while holding its own lock). */
    pthread_mutex_lock(&lock);
    struct presence_entry *e = entry_get(user_id);
    if (e) {
        e->polls = hub_user_polls(user_id);
        e->last_active_ms = now;
    }
    pthread_mutex_unlock(&lock);
}

static bool is_online(const struct presence_entry *e, int64_t now)
{
    return e->polls > 0 || now - e->last_active_ms < window_ms;
}

bool presence_get(int64_t user_id, bool *online, int64_t *last_seen_at)
{
    if (cluster_healthy()) {
        /* Redis learns of this node's activity within a tick: until then
         * what this node knows of the user now wins. */
        bool here = false;
        int64_t here_seen = 0;
        if (local_state(user_id, &here, &here_seen) && here) {
            *online = true;
            *last_seen_at = here_seen;
            return true;
        }
        int known = cluster_presence_state(user_id, online, last_seen_at);
        if (known >= 0)
            return known == 1;
    }
    return local_state(user_id, online, last_seen_at);
}

/* This node's own view of user_id; false when it knows nothing. */
static bool local_state(int64_t user_id, bool *online, int64_t *last_seen_at)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&lock);
    struct presence_entry *e = idmap_get(&entries, user_id);
    if (e) {
        *online = is_online(e, now);
        *last_seen_at = *online ? now : e->last_active_ms;
    }
    pthread_mutex_unlock(&lock);
    return e != NULL;
}

/* Sends user's new state to everyone allowed to see it (mutual contacts and
 * co-members, never across a block): their parked polls
 * get it now, and polls that come in the next seconds get it from the hub. */
static void publish(int64_t user_id, bool online, int64_t last_seen_at)
{
    struct db_res *r;
    /* Mutual contacts and co-members, none across a block (the rule of
     * PRESENCE_VISIBLE in chat/model.h). */
    if (db_query("SELECT x.id FROM (SELECT c.owner_id AS id FROM contacts c JOIN contacts back "
                 "ON back.owner_id = c.contact_id AND back.contact_id = c.owner_id "
                 "WHERE c.contact_id = ? UNION "
                 "SELECT tm2.owner_id FROM thread_members tm1 JOIN thread_members tm2 "
                 "ON tm2.thread_id = tm1.thread_id WHERE tm1.owner_id = ? AND tm2.owner_id <> ?"
                 ") x WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.owner_id = x.id AND "
                 "b.blocked_id = ?) OR (b.owner_id = ? AND b.blocked_id = x.id))",
                 &r,
                 DB_ARGS(DB_INT(user_id), DB_INT(user_id), DB_INT(user_id), DB_INT(user_id),
                         DB_INT(user_id))) < 0)
        return;
    int64_t *ids = malloc(((size_t)r->nrows + 1) * sizeof *ids);
    size_t n = 0;
    for (int i = 0; ids && i < r->nrows; i++)
        ids[n++] = db_int(r, i, 0);
    db_res_free(r);
    if (n) {
        json_t *ev = json_pack("{s:s, s:I, s:s, s:I}", "type", "presence", "user_id",
                               (json_int_t)user_id, "state", online ? "online" : "offline",
                               "last_seen_at", (json_int_t)last_seen_at);
        cluster_emit(ids, n, ev);
        json_decref(ev);
    }
    free(ids);
}

struct change {
    int64_t user_id, last_seen_at;
    bool online;
};

/* Forgets one user long inactive (one per tick keeps the scan simple).
 * Under the lock. */
static void forget_one(int64_t now)
{
    for (size_t i = 0; i < entries.cap; i++) {
        struct presence_entry *e = entries.values[i];
        if (entries.keys[i] && e->polls == 0 && (!e->published_online || cluster_healthy()) &&
            now - e->last_active_ms > FORGET_AFTER_MS) {
            free(idmap_del(&entries, entries.keys[i]));
            return;
        }
    }
}

/* One tick on a cluster whose bus works: tell Redis, publish what it says
 * changed. Returns false when Redis failed (the tick falls back to local). */
static bool cluster_tick(int64_t now)
{
    int64_t *users = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < entries.cap; i++) {
        struct presence_entry *e = entries.values[i];
        if (entries.keys[i] == 0)
            continue;
        /* New here at once; then at most every 5 s while active, and every
         * window/3 while polling (the set forgets a user after the window). */
        bool active = e->told_ms == 0 ||
                      (e->last_active_ms > e->told_ms && now - e->told_ms > 5000) ||
                      (e->polls > 0 && now - e->told_ms > window_ms / 3);
        if (!active || !is_online(e, now))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *u = realloc(users, cap * sizeof *u);
            if (u == NULL)
                break;
            users = u;
        }
        users[n++] = entries.keys[i];
        e->told_ms = now;
        e->published_online = true;
    }
    forget_one(now);
    pthread_mutex_unlock(&lock);
    int64_t *online = NULL;
    size_t nonline = 0;
    int64_t(*offline)[2] = NULL;
    size_t noffline = 0;
    bool ok = cluster_presence_touch(users, n, &online, &nonline) == 0 &&
              cluster_presence_sweep(&offline, &noffline) == 0;
    free(users);
    for (size_t i = 0; i < nonline; i++)
        publish(online[i], true, now);
    for (size_t i = 0; i < noffline; i++)
        publish(offline[i][0], false, offline[i][1]);
    free(online);
    free(offline);
    if (!ok) {
        /* Redis did not hear us: tell it again next tick. */
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < entries.cap; i++)
            if (entries.keys[i])
                ((struct presence_entry *)entries.values[i])->told_ms = 0;
        pthread_mutex_unlock(&lock);
    }
    return ok;
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    while (running) {
        usleep(PRESENCE_TICK_MS * 1000);
        if (cluster_healthy() && cluster_tick(now_ms()))
            continue;
        struct change *changes = NULL;
        size_t n = 0, cap = 0;
        int64_t now = now_ms();
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < entries.cap; i++) {
            int64_t user_id = entries.keys[i];
            struct presence_entry *e = entries.values[i];
            if (user_id == 0)
                continue;
            bool online = is_online(e, now);
            if (online == e->published_online)
                continue;
            e->published_online = online;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                struct change *c = realloc(changes, cap * sizeof *c);
                if (c == NULL)
                    break;
                changes = c;
            }
            changes[n++] = (struct change){user_id, online ? now : e->last_active_ms, online};
        }
        forget_one(now);
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++)
            publish(changes[i].user_id, changes[i].online, changes[i].last_seen_at);
        free(changes);
    }
    return NULL;
}

int presence_init(int window_s)
{
    window_ms = (int64_t)window_s * 1000;
    running = true;
    hub_on_polls_changed(presence_polls_changed);
    return pthread_create(&sweeper, NULL, sweeper_main, NULL) == 0 ? 0 : -1;
}

void presence_shutdown(void)
{
    running = false;
    pthread_join(sweeper, NULL);
    for (size_t i = 0; i < entries.cap; i++)
        if (entries.keys[i])
            free(entries.values[i]);
    idmap_free(&entries);
}
