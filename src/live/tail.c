/* tail.c — the newest events of each active user's stream (tail.h).
 *
 * A table of slots, one user each: a user may take one of two slots chosen
 * by hashing its id (a free one, else the one whose user was idle longer);
 * a slot is allocated on first use and taken over by another user.
 * A slot holds up to TAIL_EVENTS entries, each an event with its position
 * and its previous one; a new event takes a free entry or the oldest one.
 * Locks are striped by slot. */
#include "live/tail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64

struct entry {
    int64_t pos, prev; /* pos 0: free */
    struct tail_blob *blob;
};

struct slot {
    int64_t user_id;
    struct entry ev[TAIL_EVENTS];
};

static struct slot **slots;
static size_t nslots; /* a power of two; 0 = off */
static pthread_mutex_t stripes[STRIPES];
static _Atomic uint64_t forget_gen;
static _Atomic int64_t hits, misses; /* tail_read answered / could not (the database did) */

int64_t tail_hits(void) { return atomic_load(&hits); }
int64_t tail_misses(void) { return atomic_load(&misses); }

uint64_t tail_forget_gen(void) { return atomic_load(&forget_gen); }

bool tail_enabled(void) { return nslots > 0; }

struct tail_blob *tail_blob_of(const json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s == NULL)
        return NULL;
    size_t len = strlen(s);
    struct tail_blob *b = malloc(sizeof *b + len + 1);
    if (b == NULL) {
        free(s);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->len = len;
    memcpy(b->json, s, len + 1);
    free(s);
    const json_t *m = json_object_get(ev, "message");
    b->thread_id = json_integer_value(json_object_get(m, "thread_id"));
    b->seq = json_integer_value(json_object_get(m, "seq"));
    return b;
}

struct tail_blob *tail_blob_ref(struct tail_blob *b)
{
    if (b)
        atomic_fetch_add(&b->refs, 1);
    return b;
}

void tail_blob_unref(struct tail_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

int tail_init(int users)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);
    if (users <= 0)
        return 0;
    size_t n = 1;
    while (n < (size_t)users)
        n *= 2;
    slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    nslots = n;
    return 0;
}

static void slot_clear(struct slot *s)
{
    for (int i = 0; i < TAIL_EVENTS; i++) {
        tail_blob_unref(s->ev[i].blob);
        s->ev[i].blob = NULL;
        s->ev[i].pos = 0;
        s->ev[i].prev = 0;
    }
}

void tail_shutdown(void)
{
    for (size_t i = 0; i < nslots; i++)
        if (slots[i]) {
            slot_clear(slots[i]);
            free(slots[i]);
        }
    free(slots);
    slots = NULL;
    nslots = 0;
}

/* The two slots user_id may take (two choices keep far fewer users
 * evicting each other than one); both under the same stripe, so one lock
 * covers the choice. Tables of at most STRIPES slots have one choice. */
static void slot_pair(int64_t user_id, size_t *a, size_t *b)
{
    uint64_t h = (uint64_t)user_id * 0x9E3779B97F4A7C15ull;
    *a = (size_t)(h >> 20) & (nslots - 1);
    size_t rows = nslots / STRIPES;
    *b = rows < 2 ? *a : (*a + (1 + (size_t)((h >> 44) % (rows - 1))) * STRIPES) & (nslots - 1);
}

/* The slot holding user_id, or NULL. Under the pair's stripe. */
static struct slot *slot_of(int64_t user_id, size_t a, size_t b)
{
    if (slots[a] && slots[a]->user_id == user_id)
        return slots[a];
    if (slots[b] && slots[b]->user_id == user_id)
        return slots[b];
    return NULL;
}

/* The newest position a slot holds (positions come from one clock: the
 * higher, the more recently its user had an event). */
static int64_t slot_newest(const struct slot *s)
{
    int64_t newest = 0;
    for (int k = 0; k < TAIL_EVENTS; k++)
        if (s->ev[k].pos > newest)
            newest = s->ev[k].pos;
    return newest;
}

void tail_put(int64_t user_id, int64_t pos, int64_t prev, struct tail_blob *b)
{
    if (nslots == 0 || b == NULL || pos <= 0 || prev < 0 || prev >= pos)
        return;
    size_t a, i;
    slot_pair(user_id, &a, &i);
    pthread_mutex_t *mu = &stripes[a % STRIPES];
    pthread_mutex_lock(mu);
    struct slot *s = slot_of(user_id, a, i);
    if (s == NULL) {
        /* A free one of the two, else the one idle for longer. */
        if (slots[a] == NULL || (slots[i] && slot_newest(slots[a]) <= slot_newest(slots[i])))
            i = a;
        s = slots[i];
    }
    if (s == NULL) {
        s = slots[i] = calloc(1, sizeof *s);
        if (s == NULL) {
            pthread_mutex_unlock(mu);
            return;
        }
        s->user_id = user_id;
    } else if (s->user_id != user_id) {
        slot_clear(s); /* another user hashes here: evict */
        s->user_id = user_id;
    }
    /* The entry that holds pos already, else a free one, else the oldest —
     * unless every entry is newer (never replace a newer event with an
     * older one). */
    struct entry *e = NULL;
    for (int k = 0; k < TAIL_EVENTS; k++) {
        struct entry *x = &s->ev[k];
        if (x->pos == pos) {
            e = x;
            break;
        }
        if (e == NULL || x->pos < e->pos)
            e = x;
    }
    if (e->pos <= pos) {
        tail_blob_unref(e->blob);
        e->blob = tail_blob_ref(b);
        e->pos = pos;
        e->prev = prev;
    }
    pthread_mutex_unlock(mu);
}

void tail_forget(int64_t user_id)
{
    atomic_fetch_add(&forget_gen, 1);
    if (nslots == 0)
        return;
    size_t a, b;
    slot_pair(user_id, &a, &b);
    pthread_mutex_t *mu = &stripes[a % STRIPES];
    pthread_mutex_lock(mu);
    struct slot *s = slot_of(user_id, a, b);
    if (s)
        slot_clear(s);
    pthread_mutex_unlock(mu);
}

void tail_forget_all(void)
{
    atomic_fetch_add(&forget_gen, 1);
    for (size_t i = 0; i < nslots; i++) {
        pthread_mutex_t *mu = &stripes[i % STRIPES];
        pthread_mutex_lock(mu);
        if (slots[i])
            slot_clear(slots[i]);
        pthread_mutex_unlock(mu);
    }
}

int tail_read(int64_t user_id, int64_t since, int limit, struct tail_blob *out[TAIL_EVENTS],
              int64_t *next)
{
    if (nslots == 0) {
        atomic_fetch_add(&misses, 1);
        return 0;
    }
    int n = 0;
    size_t a, b;
    slot_pair(user_id, &a, &b);
    pthread_mutex_t *mu = &stripes[a % STRIPES];
    pthread_mutex_lock(mu);
    struct slot *s = slot_of(user_id, a, b);
    int64_t at = since;
    if (s)
        while (n < limit && n < TAIL_EVENTS) {
            struct entry *e = NULL;
            for (int k = 0; k < TAIL_EVENTS && e == NULL; k++)
                if (s->ev[k].pos > 0 && s->ev[k].prev == at && s->ev[k].blob)
                    e = &s->ev[k];
            if (e == NULL)
                break;
            out[n++] = tail_blob_ref(e->blob);
            at = e->pos;
        }
    pthread_mutex_unlock(mu);
    if (n > 0)
        *next = at;
    atomic_fetch_add(n > 0 ? &hits : &misses, 1);
    return n;
}
