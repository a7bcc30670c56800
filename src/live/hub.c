/* hub.c — the table of parked polls (see hub.h).
 *
 * One mutex guards everything: the user map (user → list of waiters), the
 * session map (session → its waiter), the deadline heap, the recent
 * ephemeral events and each waiter's flags. Work under the lock is a few
 * pointer moves; resuming a connection is done after dropping it.
 *
 * A waiter's state: RUNNING while a handler runs for it, PARKED while its
 * connection is suspended, WOKEN between a resume and the next handler run.
 * Only a PARKED waiter is ever resumed, and it leaves PARKED under the lock,
 * so each suspend gets exactly one resume. */
#include "live/hub.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/idmap.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

#define EPHEMERAL_KEEP_MS 5000
#define EPHEMERAL_RING 16

enum waiter_state { W_RUNNING, W_PARKED, W_WOKEN };

struct waiter {
    int64_t user_id, session_id;
    int64_t deadline_ms;
    int64_t since; /* the poll's cursor (hub_set_cursor), for reconciling */
    enum waiter_state state;
    bool pending, timed_out, superseded, revoked;
    int64_t notified_us; /* when a commit woke it, for the commit→wake metric */
    void *conn;
    json_t *ephemeral;   /* events queued for this poll; NULL until the first */
    struct waiter *next; /* in the user's list */
    size_t heap_index;   /* in the deadline heap */
};

struct user_entry {
    struct waiter *waiters;
    int count;
    struct {
        int64_t id, at_ms;
        json_t *event;
    } ring[EPHEMERAL_RING];
    int ring_next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick = PTHREAD_COND_INITIALIZER;
/* session_seen: the last ephemeral id each session took; emptied of ids
 * too old to matter (forget_stale_seen) and of ended sessions. */
static struct idmap users, sessions, session_seen;
static int64_t seen_floor; /* ephemeral_next_id at the previous sweep */
static struct waiter **heap;
static size_t heap_len, heap_cap, total;
static hub_resume_fn resume_conn;
static void (*polls_changed)(int64_t user_id); /* set before serving */
static bool stopping;
static int64_t ephemeral_next_id = 1;
static pthread_t timer;

/* --- the deadline heap (min-heap on deadline_ms) --- */

static void heap_swap(size_t a, size_t b)
{
    struct waiter *t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_index = a;
    heap[b]->heap_index = b;
}

static void heap_up(size_t i)
{
    while (i > 0 && heap[(i - 1) / 2]->deadline_ms > heap[i]->deadline_ms) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->deadline_ms < heap[m]->deadline_ms)
            m = l;
        if (r < heap_len && heap[r]->deadline_ms < heap[m]->deadline_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static int heap_push(struct waiter *w)
{
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 1024;
        struct waiter **h = realloc(heap, cap * sizeof *h);
        if (h == NULL)
            return -1;
        heap = h;
        heap_cap = cap;
    }
    w->heap_index = heap_len;
    heap[heap_len++] = w;
    heap_up(w->heap_index);
    return 0;
}

static void heap_remove(struct waiter *w)
{
    size_t i = w->heap_index;
    if (i >= heap_len || heap[i] != w)
        return;
    heap_len--;
    if (i != heap_len) {
        heap[i] = heap[heap_len];
        heap[i]->heap_index = i;
        heap_down(i);
        heap_up(i);
    }
}

/* --- waking --- */

/* Marks w woken; returns the connection to resume after unlocking, or NULL. */
static void *wake_locked(struct waiter *w)
{
    if (w->state == W_PARKED) {
        w->state = W_WOKEN;
        return w->conn;
    }
    if (w->state == W_RUNNING)
        w->pending = true;
    return NULL;
}

/* Conns to resume, gathered under the lock and resumed after it. */
struct resume_batch {
    void **conns;
    size_t n, cap;
};

static void batch_add(struct resume_batch *b, void *conn)
{
    if (conn == NULL)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        void **c = realloc(b->conns, cap * sizeof *c);
        if (c == NULL) {
            /* Cannot defer it: resume now, under the lock (rare, still correct). */
            resume_conn(conn);
            return;
        }
        b->conns = c;
        b->cap = cap;
    }
    b->conns[b->n++] = conn;
}

static void batch_run(struct resume_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        resume_conn(b->conns[i]);
    free(b->conns);
}

/* Frees user entries with no poll and no ephemeral event still worth
 * keeping; called under the lock every few seconds. */
static void forget_idle_users(int64_t now)
{
    for (size_t i = 0; i < users.cap; i++) {
        struct user_entry *u = users.values[i];
        if (users.keys[i] == 0 || u->waiters)
            continue;
        bool fresh = false;
        for (int k = 0; k < EPHEMERAL_RING && !fresh; k++)
            fresh = u->ring[k].event && now - u->ring[k].at_ms < EPHEMERAL_KEEP_MS;
        if (fresh)
            continue;
        for (int k = 0; k < EPHEMERAL_RING; k++)
            if (u->ring[k].event)
                json_decref(u->ring[k].event);
        idmap_del(&users, users.keys[i]);
        free(u);
        i--; /* backward-shift deletion may have moved another entry here */
    }
}

/* Drops the session_seen entries below every ephemeral event still kept:
 * such an entry queues the same events as no entry. Called under the lock
 * every 5 s (>= EPHEMERAL_KEEP_MS): events younger than that were made
 * after the previous sweep, so their ids are >= seen_floor. */
static void forget_stale_seen(void)
{
    for (size_t i = 0; i < session_seen.cap; i++) {
        if (session_seen.keys[i] == 0 || (intptr_t)session_seen.values[i] >= seen_floor)
            continue;
        idmap_del(&session_seen, session_seen.keys[i]);
        i--; /* backward-shift deletion may have moved another entry here */
    }
    seen_floor = ephemeral_next_id;
}

static void *timer_main(void *arg)
{
    (void)arg;
    int64_t next_sweep = 0;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        if (mono_ms() >= next_sweep) {
            forget_idle_users(mono_ms());
            forget_stale_seen();
            next_sweep = mono_ms() + EPHEMERAL_KEEP_MS;
        }
        struct resume_batch batch = {0};
        int64_t now = mono_ms();
        while (heap_len > 0 && heap[0]->deadline_ms <= now) {
            struct waiter *w = heap[0];
            heap_remove(w);
            w->timed_out = true;
            batch_add(&batch, wake_locked(w));
        }
        if (batch.n) {
            pthread_mutex_unlock(&lock);
            batch_run(&batch);
            pthread_mutex_lock(&lock);
            continue;
        }
        free(batch.conns);
        /* Sleep until the next deadline, at most 100 ms. */
        int64_t wait = heap_len ? heap[0]->deadline_ms - now : 100;
        if (wait > 100)
            wait = 100;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(wait > 0 ? wait : 1) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&tick, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int64_t parked_gauge(void) { return (int64_t)hub_parked_count(); }

int hub_init(hub_resume_fn resume)
{
    resume_conn = resume;
    stopping = false;
    if (metrics_gauge("chatd_parked_polls", "Inbox long-polls registered now.", parked_gauge) < 0)
        return -1;
    return pthread_create(&timer, NULL, timer_main, NULL) == 0 ? 0 : -1;
}

void hub_on_polls_changed(void (*fn)(int64_t user_id)) { polls_changed = fn; }

void hub_shutdown(void)
{
    struct resume_batch batch = {0};
    pthread_mutex_lock(&lock);
    stopping = true;
    for (size_t i = 0; i < heap_len; i++)
        batch_add(&batch, wake_locked(heap[i]));
    pthread_cond_broadcast(&tick);
    pthread_mutex_unlock(&lock);
    batch_run(&batch);
    pthread_join(timer, NULL);
}

/* Queues an ephemeral event (borrowed) to a waiter; under the lock. */
static void queue_ephemeral(struct waiter *w, json_t *event)
{
    if (w->ephemeral == NULL)
        w->ephemeral = json_array();
    json_array_append(w->ephemeral, event);
}

/* --- registration --- */

static struct user_entry *user_get(int64_t user_id, bool create)
{
    struct user_entry *u = idmap_get(&users, user_id);
    if (u == NULL && create) {
        u = calloc(1, sizeof *u);
        if (u && idmap_put(&users, user_id, u) < 0) {
            free(u);
            u = NULL;
        }
    }
    return u;
}

struct waiter *hub_register(int64_t user_id, int64_t session_id, int64_t deadline_ms)
{
    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->user_id = user_id;
    w->session_id = session_id;
    w->deadline_ms = deadline_ms;
    w->state = W_RUNNING;

    void *resume = NULL;
    pthread_mutex_lock(&lock);
    struct user_entry *u = user_get(user_id, true);
    if (u == NULL || heap_push(w) < 0) {
        pthread_mutex_unlock(&lock);
        free(w);
        return NULL;
    }
    struct waiter *old = idmap_get(&sessions, session_id);
    if (old) {
        old->superseded = true;
        resume = wake_locked(old);
    }
    idmap_put(&sessions, session_id, w);
    w->next = u->waiters;
    u->waiters = w;
    u->count++;
    total++;
    w->timed_out = stopping;
    /* Ephemeral events of the last few seconds this session has not had. */
    int64_t seen = (int64_t)(intptr_t)idmap_get(&session_seen, session_id);
    int64_t now = mono_ms();
    for (int k = 0; k < EPHEMERAL_RING; k++) {
        int i = (u->ring_next + k) % EPHEMERAL_RING;
        if (u->ring[i].event && u->ring[i].id > seen && now - u->ring[i].at_ms < EPHEMERAL_KEEP_MS)
            queue_ephemeral(w, u->ring[i].event);
    }
    pthread_mutex_unlock(&lock);
    if (resume)
        resume_conn(resume);
    if (polls_changed)
        polls_changed(user_id);
    return w;
}

void hub_begin(struct waiter *w)
{
    pthread_mutex_lock(&lock);
    w->state = W_RUNNING;
    w->pending = false;
    int64_t notified = w->notified_us;
    w->notified_us = 0;
    pthread_mutex_unlock(&lock);
    if (notified)
        metrics_stage(STAGE_COMMIT_WAKE, mono_us() - notified);
}

bool hub_should_answer(struct waiter *w)
{
    pthread_mutex_lock(&lock);
    bool answer = w->timed_out || w->superseded || stopping;
    pthread_mutex_unlock(&lock);
    return answer;
}

json_t *hub_take_ephemeral(struct waiter *w)
{
    pthread_mutex_lock(&lock);
    json_t *events = w->ephemeral ? w->ephemeral : json_array();
    w->ephemeral = NULL;
    /* Remember the newest ephemeral id this session has had. */
    int64_t newest = ephemeral_next_id - 1;
    if (json_array_size(events) > 0)
        idmap_put(&session_seen, w->session_id, (void *)(intptr_t)newest);
    pthread_mutex_unlock(&lock);
    return events;
}

void hub_sleep(struct waiter *w, void *conn)
{
    void *resume = NULL;
    pthread_mutex_lock(&lock);
    w->conn = conn;
    w->state = W_PARKED;
    if (w->pending || w->timed_out || w->superseded || w->revoked || stopping ||
        json_array_size(w->ephemeral) > 0)
        resume = wake_locked(w);
    pthread_mutex_unlock(&lock);
    if (resume)
        resume_conn(resume);
}

void hub_release(struct waiter *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&lock);
    heap_remove(w);
    if (idmap_get(&sessions, w->session_id) == w)
        idmap_del(&sessions, w->session_id);
    struct user_entry *u = user_get(w->user_id, false);
    if (u) {
        for (struct waiter **p = &u->waiters; *p; p = &(*p)->next)
            if (*p == w) {
                *p = w->next;
                u->count--;
                total--;
                break;
            }
    }
    pthread_mutex_unlock(&lock);
    json_decref(w->ephemeral);
    int64_t user_id = w->user_id;
    free(w);
    if (polls_changed)
        polls_changed(user_id);
}

void hub_set_cursor(struct waiter *w, int64_t since)
{
    pthread_mutex_lock(&lock);
    w->since = since;
    pthread_mutex_unlock(&lock);
}

size_t hub_parked_cursors(int64_t (*out)[2], size_t max)
{
    pthread_mutex_lock(&lock);
    size_t n = 0;
    for (size_t i = 0; i < heap_len && n < max; i++) {
        out[n][0] = heap[i]->user_id;
        out[n][1] = heap[i]->since;
        n++;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

void hub_supersede_session(int64_t session_id)
{
    void *resume = NULL;
    pthread_mutex_lock(&lock);
    struct waiter *w = idmap_get(&sessions, session_id);
    if (w) {
        w->superseded = true;
        resume = wake_locked(w);
    }
    pthread_mutex_unlock(&lock);
    if (resume)
        resume_conn(resume);
}

void hub_end_session(int64_t session_id)
{
    void *resume = NULL;
    pthread_mutex_lock(&lock);
    idmap_del(&session_seen, session_id);
    struct waiter *w = idmap_get(&sessions, session_id);
    if (w) {
        w->revoked = true;
        resume = wake_locked(w);
    }
    pthread_mutex_unlock(&lock);
    if (resume)
        resume_conn(resume);
}

bool hub_revoked(struct waiter *w)
{
    pthread_mutex_lock(&lock);
    bool revoked = w->revoked;
    pthread_mutex_unlock(&lock);
    return revoked;
}

#define STREAM_VERSIONS 65536 /* a power of two */
static _Atomic uint32_t stream_versions[STREAM_VERSIONS];

uint32_t hub_stream_version(int64_t user_id)
{
    return atomic_load(&stream_versions[(uint64_t)user_id & (STREAM_VERSIONS - 1)]);
}

void hub_notify(const int64_t *user_ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add(&stream_versions[(uint64_t)user_ids[i] & (STREAM_VERSIONS - 1)], 1);
    struct resume_batch batch = {0};
    int64_t now = mono_us();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        struct user_entry *u = user_get(user_ids[i], false);
        for (struct waiter *w = u ? u->waiters : NULL; w; w = w->next) {
            if (w->state == W_PARKED && w->notified_us == 0)
                w->notified_us = now;
            batch_add(&batch, wake_locked(w));
        }
    }
    pthread_mutex_unlock(&lock);
    batch_run(&batch);
}

void hub_emit(const int64_t *user_ids, size_t n, json_t *event)
{
    struct resume_batch batch = {0};
    int64_t now = mono_ms();
    pthread_mutex_lock(&lock);
    int64_t id = ephemeral_next_id++;
    for (size_t i = 0; i < n; i++) {
        struct user_entry *u = user_get(user_ids[i], true);
        if (u == NULL)
            continue;
        int slot = u->ring_next;
        if (u->ring[slot].event)
            json_decref(u->ring[slot].event);
        u->ring[slot].event = json_incref(event);
        u->ring[slot].id = id;
        u->ring[slot].at_ms = now;
        u->ring_next = (slot + 1) % EPHEMERAL_RING;
        for (struct waiter *w = u->waiters; w; w = w->next) {
            queue_ephemeral(w, event);
            batch_add(&batch, wake_locked(w));
        }
    }
    pthread_mutex_unlock(&lock);
    batch_run(&batch);
}

void hub_drop_ephemeral(const int64_t *user_ids, size_t n, bool (*match)(json_t *ev, void *ctx),
                        void *ctx)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        struct user_entry *u = user_get(user_ids[i], false);
        if (u == NULL)
            continue;
        for (int k = 0; k < EPHEMERAL_RING; k++)
            if (u->ring[k].event && match(u->ring[k].event, ctx)) {
                json_decref(u->ring[k].event);
                u->ring[k].event = NULL;
            }
        for (struct waiter *w = u->waiters; w; w = w->next)
            for (size_t e = json_array_size(w->ephemeral); e-- > 0;)
                if (match(json_array_get(w->ephemeral, e), ctx))
                    json_array_remove(w->ephemeral, e);
    }
    pthread_mutex_unlock(&lock);
}

int hub_user_polls(int64_t user_id)
{
    pthread_mutex_lock(&lock);
    struct user_entry *u = user_get(user_id, false);
    int n = u ? u->count : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t hub_parked_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = total;
    pthread_mutex_unlock(&lock);
    return n;
}
