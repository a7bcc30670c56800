/* ratelimit.c — token buckets in a fixed table (ratelimit.h).
 *
 * The table is split into stripes of consecutive slots, each with its own
 * mutex; a key probes RL_PROBE slots from its hash within one stripe, so a
 * take locks one mutex and touches at most RL_PROBE slots. Tokens are kept
 * in thousandths, refilled lazily from the time of the last take. */
#include "base/ratelimit.h"

#include <pthread.h>
#include <string.h>

#define RL_STRIPES 256
#define RL_PROBE 8

struct bucket {
    uint64_t id;   /* (kind, key) mixed; 0 = free */
    int64_t milli; /* tokens × 1000 at `at` */
    int64_t at;    /* ms up to which refills are counted */
    int64_t seen;  /* ms of the last take, refused or not: the stalest goes first */
};

static struct rl_setting limits[RL_KINDS];
static struct bucket table[RATELIMIT_SLOTS];
static pthread_mutex_t stripes[RL_STRIPES];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_mutexes(void)
{
    for (int i = 0; i < RL_STRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);
}

void ratelimit_init(const struct rl_setting settings[RL_KINDS])
{
    pthread_once(&once, init_mutexes);
    memcpy(limits, settings, sizeof limits);
    size_t per_stripe = RATELIMIT_SLOTS / RL_STRIPES;
    for (int i = 0; i < RL_STRIPES; i++) {
        pthread_mutex_lock(&stripes[i]);
        memset(&table[(size_t)i * per_stripe], 0, per_stripe * sizeof table[0]);
        pthread_mutex_unlock(&stripes[i]);
    }
}

uint64_t ratelimit_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* splitmix64: spreads (kind, key) over the table; never 0. */
static uint64_t mix(enum rl_kind kind, uint64_t key)
{
    uint64_t z = key + 0x9e3779b97f4a7c15ULL * (uint64_t)(kind + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z ? z : 1;
}

bool ratelimit_take(enum rl_kind kind, uint64_t key, int64_t now_ms, int *retry_after_s)
{
    struct rl_setting lim = limits[kind];
    if (lim.per_min <= 0)
        return true;
    int64_t cap = (int64_t)(lim.burst > 0 ? lim.burst : 1) * 1000;
    uint64_t id = mix(kind, key);
    size_t per_stripe = RATELIMIT_SLOTS / RL_STRIPES;
    size_t stripe = (size_t)(id % RL_STRIPES);
    size_t base = stripe * per_stripe, start = (size_t)((id >> 8) % per_stripe);
    pthread_mutex_lock(&stripes[stripe]);
    struct bucket *b = NULL, *free_slot = NULL, *stalest = NULL;
    for (size_t i = 0; i < RL_PROBE; i++) {
        struct bucket *s = &table[base + (start + i) % per_stripe];
        if (s->id == id) {
            b = s;
            break;
        }
        if (s->id == 0) {
            if (free_slot == NULL)
                free_slot = s;
        } else if (stalest == NULL || s->seen < stalest->seen) {
            stalest = s;
        }
    }
    if (b == NULL) { /* a new key: a full bucket in a free or the stalest slot */
        b = free_slot ? free_slot : stalest;
        *b = (struct bucket){.id = id, .milli = cap, .at = now_ms};
    }
    b->seen = now_ms;
    /* per_min tokens a minute = per_min thousandths every 60 ms; the time
     * that earned less than a thousandth stays to be counted next time. */
    int64_t gain = now_ms > b->at ? (now_ms - b->at) * lim.per_min / 60 : 0;
    if (b->milli + gain >= cap) {
        b->milli = cap;
        b->at = now_ms;
    } else if (gain > 0) {
        b->milli += gain;
        b->at += gain * 60 / lim.per_min;
    }
    bool ok = b->milli >= 1000;
    if (ok)
        b->milli -= 1000;
    else if (retry_after_s) {
        int64_t ms = ((1000 - b->milli) * 60 + lim.per_min - 1) / lim.per_min;
        *retry_after_s = (int)((ms + 999) / 1000);
        if (*retry_after_s < 1)
            *retry_after_s = 1;
    }
    pthread_mutex_unlock(&stripes[stripe]);
    return ok;
}
