/* auth.c — Argon2id hashing under a concurrency bound, tokens, sessions.
 *
 * The bound is a counting semaphore: each hash holds one slot for its
 * duration (about 50 ms and 19 MiB). Verification of a bearer token is one
 * indexed lookup by SHA-256; last_seen_at is written only when it is older
 * than LAST_SEEN_STEP_MS so that a busy client does not write on every
 * request. */
#include "chat/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <semaphore.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "live/cluster.h"
#include "base/log.h"
#include "live/presence.h"
#include "base/util.h"

#define OPSLIMIT 2
#define MEMLIMIT (19u * 1024 * 1024)
#define LAST_SEEN_STEP_MS 5000

#define CACHE_BUCKETS 65536 /* a power of two */
#define CACHE_MAX 200000    /* entries; past this the cache starts over */

/* A verified session, by the SHA-256 of its token. */
struct centry {
    unsigned char hash[32];
    int64_t session_id, user_id;
    int64_t last_seen; /* ms, as stored in the database */
    int64_t cached_at; /* ms */
    bool dirty;        /* last_seen is newer than the database's */
    struct centry *next;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct centry *cache[CACHE_BUCKETS];
static size_t cache_n;
static uint64_t cache_gen;

static struct centry **cache_slot(const unsigned char *hash)
{
    uint32_t h;
    memcpy(&h, hash, sizeof h);
    struct centry **p = &cache[h & (CACHE_BUCKETS - 1)];
    while (*p && memcmp((*p)->hash, hash, 32) != 0)
        p = &(*p)->next;
    return p;
}

static void cache_clear(void)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++)
        while (cache[i]) {
            struct centry *e = cache[i];
            cache[i] = e->next;
            free(e);
        }
    cache_n = 0;
}

/* Looks the token up in the cache; true with the entry copied to *out. */
static bool cache_get(const unsigned char *hash, int64_t now, struct centry *out)
{
    pthread_mutex_lock(&cache_mu);
    struct centry **p = cache_slot(hash), *e = *p;
    /* Degraded (a cluster whose bus is down): a logout on another node may
     * not reach us, so trust the cache only briefly. */
    int64_t ttl = cluster_enabled() && !cluster_healthy() ? AUTH_CACHE_TTL_DEGRADED_MS
                                                          : AUTH_CACHE_TTL_MS;
    bool hit = e && now - e->cached_at < ttl;
    if (hit)
        *out = *e;
    else if (e) {
        *p = e->next;
        free(e);
        cache_n--;
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

/* Remembers a session read at generation gen, unless one was forgotten
 * since; or refreshes last_seen of a remembered one (gen 0: false when it
 * is not remembered). */
static bool cache_put(const unsigned char *hash, int64_t session_id, int64_t user_id,
                      int64_t last_seen, int64_t now, uint64_t gen)
{
    pthread_mutex_lock(&cache_mu);
    struct centry **p = cache_slot(hash), *e = *p;
    bool found = e != NULL;
    if (e && gen == 0) {
        e->last_seen = last_seen;
        e->dirty = true;
    } else if (e == NULL && gen == cache_gen) {
        if (cache_n >= CACHE_MAX) {
            cache_clear();
            p = cache_slot(hash);
        }
        e = malloc(sizeof *e);
        if (e) {
            memcpy(e->hash, hash, 32);
            e->session_id = session_id;
            e->user_id = user_id;
            e->last_seen = last_seen;
            e->cached_at = now;
            e->dirty = false;
            e->next = NULL;
            *p = e;
            cache_n++;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return found;
}

void auth_session_forget(int64_t session_id)
{
    pthread_mutex_lock(&cache_mu);
    cache_gen++;
    for (size_t i = 0; i < CACHE_BUCKETS; i++)
        for (struct centry **p = &cache[i]; *p;) {
            if (session_id == 0 || (*p)->session_id == session_id) {
                struct centry *e = *p;
                *p = e->next;
                free(e);
                cache_n--;
            } else {
                p = &(*p)->next;
            }
        }
    pthread_mutex_unlock(&cache_mu);
}

static sem_t hash_slots;
static char dummy_hash[crypto_pwhash_STRBYTES];
static int64_t idle_ms;

static bool slot_take(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += AUTH_HASH_WAIT_MS / 1000;
    while (sem_timedwait(&hash_slots, &ts) != 0) {
        if (errno != EINTR)
            return false;
    }
    return true;
}

int auth_init(int hash_concurrency, int session_idle_days)
{
    if (sodium_init() < 0)
        return -1;
    if (sem_init(&hash_slots, 0, (unsigned)hash_concurrency) != 0)
        return -1;
    idle_ms = (int64_t)session_idle_days * 86400000LL;
    return crypto_pwhash_str_alg(dummy_hash, "not a password", 14, OPSLIMIT, MEMLIMIT,
                                 crypto_pwhash_ALG_ARGON2ID13) == 0
               ? 0
               : -1;
}

int auth_password_hash(const char *password, size_t len, char *out)
{
    if (!slot_take())
        return AUTH_BUSY;
    int rc = crypto_pwhash_str_alg(out, password, len, OPSLIMIT, MEMLIMIT,
                                   crypto_pwhash_ALG_ARGON2ID13);
    sem_post(&hash_slots);
    return rc == 0 ? AUTH_OK : AUTH_FAIL;
}

int auth_password_verify(const char *hash, const char *password, size_t len)
{
    if (!slot_take())
        return AUTH_BUSY;
    int rc = crypto_pwhash_str_verify(hash ? hash : dummy_hash, password, len);
    sem_post(&hash_slots);
    return rc == 0 && hash ? AUTH_OK : AUTH_MISMATCH;
}

void auth_token_new(char *token, unsigned char *hash)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, AUTH_TOKEN_LEN, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    auth_token_hash(token, strlen(token), hash);
}

void auth_token_hash(const char *token, size_t len, unsigned char *hash)
{
    crypto_hash_sha256(hash, (const unsigned char *)token, len);
}

int auth_session_verify(const char *token, size_t len, int64_t *user_id, int64_t *session_id)
{
    if (len != AUTH_TOKEN_LEN - 1)
        return AUTH_MISMATCH;
    unsigned char hash[32];
    auth_token_hash(token, len, hash);
    int64_t now = now_ms();
    struct centry e;
    if (!cache_get(hash, now, &e)) {
        pthread_mutex_lock(&cache_mu);
        uint64_t gen = cache_gen;
        pthread_mutex_unlock(&cache_mu);
        struct db_res *r;
        int rc = db_query("SELECT id, user_id, last_seen_at FROM sessions WHERE token_hash = ?", &r,
                          DB_ARGS(DB_STRN(hash, sizeof hash)));
        if (rc < 0)
            return rc;
        if (r->nrows == 0) {
            db_res_free(r);
            return AUTH_MISMATCH;
        }
        e.session_id = db_int(r, 0, 0);
        e.user_id = db_int(r, 0, 1);
        e.last_seen = db_int(r, 0, 2);
        db_res_free(r);
        if (idle_ms == 0 || now - e.last_seen <= idle_ms)
            cache_put(hash, e.session_id, e.user_id, e.last_seen, now, gen);
    }
    *session_id = e.session_id;
    *user_id = e.user_id;
    presence_touch(*user_id);
    if (idle_ms > 0 && now - e.last_seen > idle_ms) {
        db_exec("DELETE FROM sessions WHERE id = ?", DB_ARGS(DB_INT(*session_id)));
        auth_session_forget(*session_id);
        return AUTH_MISMATCH;
    }
    /* Written by auth_flush_last_seen; directly if not remembered. */
    if (now - e.last_seen > LAST_SEEN_STEP_MS && !cache_put(hash, 0, 0, now, now, 0))
        db_exec("UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                DB_ARGS(DB_INT(now), DB_INT(*session_id)));
    return AUTH_OK;
}

int auth_flush_last_seen(void)
{
    struct sbuf rows = {0};
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < CACHE_BUCKETS; i++)
        for (struct centry *e = cache[i]; e; e = e->next)
            if (e->dirty) {
                sb_item(&rows, "[%lld,%lld]", (long long)e->session_id, (long long)e->last_seen);
                e->dirty = false;
            }
    pthread_mutex_unlock(&cache_mu);
    if (rows.len == 0)
        return DB_OK;
    return db_exec_list("UPDATE JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$[0]', "
                        "t BIGINT PATH '$[1]')) j STRAIGHT_JOIN sessions s ON s.id = j.id "
                        "SET s.last_seen_at = GREATEST(s.last_seen_at, j.t)",
                        &rows);
}

/* Login throttling: failures per username in login_failures (auth.h). */
#define THROTTLE_FAILURES 20
#define THROTTLE_WINDOW_MS (15 * 60 * 1000)

int64_t auth_login_wait_s(const char *username, int64_t now)
{
    struct db_res *r;
    int rc = db_query("SELECT at FROM login_failures WHERE username = ? AND at > ? "
                      "ORDER BY at DESC LIMIT 20",
                      &r, DB_ARGS(DB_STR(username), DB_INT(now - THROTTLE_WINDOW_MS)));
    if (rc < 0)
        return rc;
    int64_t wait = 0;
    if (r->nrows >= THROTTLE_FAILURES) {
        int64_t oldest = db_int(r, THROTTLE_FAILURES - 1, 0);
        wait = (oldest + THROTTLE_WINDOW_MS - now + 999) / 1000;
        if (wait < 1)
            wait = 1;
    }
    db_res_free(r);
    return wait;
}

void auth_login_failed(const char *username, int64_t now)
{
    db_exec("DELETE FROM login_failures WHERE username = ? AND at <= ?",
            DB_ARGS(DB_STR(username), DB_INT(now - THROTTLE_WINDOW_MS)));
    db_exec("INSERT INTO login_failures (username, at) VALUES (?, ?)",
            DB_ARGS(DB_STR(username), DB_INT(now)));
}

void auth_login_succeeded(const char *username)
{
    db_exec("DELETE FROM login_failures WHERE username = ?", DB_ARGS(DB_STR(username)));
}

void auth_prune(int64_t now)
{
    db_exec("DELETE FROM login_failures WHERE at < ? LIMIT 10000",
            DB_ARGS(DB_INT(now - THROTTLE_WINDOW_MS)));
}
