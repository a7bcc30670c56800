/* auth.c — Argon2id hashing under a concurrency bound, tokens, sessions.
 *
 * The bound is a counting semaphore: each hash holds one slot for its
 * duration (about 50 ms and 19 MiB). Verification of a bearer token is one
 * indexed lookup by SHA-256; last_seen_at is written only when it is older
 * than LAST_SEEN_STEP_MS so that a busy client does not write on every
 * request. */
#include "chat/auth.h"

#include <crack.h> /* after stddef.h: it uses size_t */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/events.h"
#include "db/db.h"
#include "live/cluster.h"
#include "base/log.h"
#include "live/hub.h"
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
    char dict[512];
    snprintf(dict, sizeof dict, "%s.pwd", GetDefaultCracklibDict());
    if (access(dict, R_OK) != 0) {
        log_error("auth: no cracklib dictionary at %s (install cracklib-runtime: "
                  "scripts/deps.sh run)",
                  dict);
        return -1;
    }
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

/* --- limits, password policy --- */

static struct auth_limits limits = {100, 5, 20, 300, 90};

void auth_set_limits(const struct auth_limits *l) { limits = *l; }

static pthread_mutex_t crack_mu = PTHREAD_MUTEX_INITIALIZER; /* cracklib is not thread-safe */

/* cracklib's verdict on pw with username, or NULL (under crack_mu). */
static const char *crack_check(const char *pw, const char *username)
{
    return FascistCheckUser(pw, GetDefaultCracklibDict(), username, NULL);
}

/* The part of pw that is left when digits and punctuation around it are
 * taken off, and a repeated word once ("password1234", "!!iloveyou",
 * "abcabcabc"), into core (len + 1 bytes). */
static void password_core(const char *pw, size_t len, char *core)
{
    size_t a = 0, b = len;
    while (a < b && (isdigit((unsigned char)pw[a]) || ispunct((unsigned char)pw[a])))
        a++;
    while (b > a && (isdigit((unsigned char)pw[b - 1]) || ispunct((unsigned char)pw[b - 1])))
        b--;
    size_t n = b - a;
    for (size_t unit = 1; unit <= n / 2; unit++) {
        if (n % unit != 0)
            continue;
        size_t i = unit;
        while (i < n && memcmp(pw + a + i, pw + a, unit) == 0)
            i += unit;
        if (i == n) {
            n = unit;
            break;
        }
    }
    memcpy(core, pw + a, n);
    core[n] = '\0';
}

/* True when s is ASCII letters only. */
static bool all_letters(const char *s)
{
    for (; *s; s++)
        if (!isalpha((unsigned char)*s))
            return false;
    return true;
}

/* True when more than half of the neighbouring bytes of pw differ by one. */
static bool mostly_steps(const char *pw, size_t len)
{
    size_t steps = 0;
    for (size_t i = 1; i < len; i++)
        steps += pw[i] == pw[i - 1] + 1 || pw[i] == pw[i - 1] - 1;
    return steps * 2 > len - 1;
}

const char *auth_password_weak(const char *password, size_t len, const char *username)
{
    static _Thread_local char why[160]; /* one per thread: returned after the unlock */
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)password[i] & 0xC0) != 0x80;
    if (chars < AUTH_PASSWORD_MIN)
        return "a password needs at least 12 characters";
    if (len > 256)
        return "a password has at most 256 bytes";
    if (memchr(password, '\0', len))
        return "a password has no NUL character";
    char *core = malloc(len + 1);
    if (core == NULL)
        return "out of memory";
    password_core(password, len, core);
    const char *msg = NULL;
    pthread_mutex_lock(&crack_mu);
    msg = crack_check(password, username);
    /* cracklib refuses more than 4 neighbouring steps ("ab", "98") at any
     * length, which refuses many long random passwords; from 16 characters
     * on, only when most neighbours are steps. */
    if (msg && strstr(msg, "simplistic") && chars >= 16 && !mostly_steps(password, len))
        msg = NULL;
    /* cracklib lets "password1234" through: check the word inside too. */
    if (msg == NULL && strlen(core) >= 6 && strlen(core) < len && all_letters(core)) {
        /* Only a core of letters, and only its words count: the core of a
         * random password may well look "simplistic" or hold a short word. */
        const char *core_msg = crack_check(core, username);
        if (core_msg && (strstr(core_msg, "dictionary") || strstr(core_msg, "user")))
            msg = "it is a common word with digits or symbols around it, or repeated";
    }
    if (msg)
        snprintf(why, sizeof why, "this password is too easy to guess: %s", msg);
    pthread_mutex_unlock(&crack_mu);
    free(core);
    return msg ? why : NULL;
}

/* --- login backoff (see auth.h) --- */

#define LOGIN_WINDOW_MS (60 * 60 * 1000)

/* The wait (s) of one counter: n failures, the latest at last (ms). */
static int64_t backoff_s(int64_t n, int64_t last, int free_failures, int64_t now)
{
    if (n < free_failures)
        return 0;
    int64_t step = n - free_failures;
    int64_t delay_s = step >= 20 ? limits.login_delay_max_s : (int64_t)1 << step;
    if (delay_s > limits.login_delay_max_s)
        delay_s = limits.login_delay_max_s;
    int64_t wait_ms = last + delay_s * 1000 - now;
    return wait_ms > 0 ? (wait_ms + 999) / 1000 : 0;
}

/* The wait (s) of the counter the statement sql reads (count, latest), or
 * DB_E*. */
static int64_t counter_wait_s(const char *sql, struct db_arg key, int free_failures, int64_t now)
{
    struct db_res *r;
    int rc = db_query(sql, &r, DB_ARGS(key, DB_INT(now - LOGIN_WINDOW_MS)));
    if (rc < 0)
        return rc;
    int64_t wait = r->nrows ? backoff_s(db_int(r, 0, 0), db_int(r, 0, 1), free_failures, now) : 0;
    db_res_free(r);
    return wait;
}

int64_t auth_login_wait_s(const struct auth_attempt *a, int64_t now)
{
    if (a->device)
        return counter_wait_s("SELECT COUNT(*), MAX(at) FROM login_failures "
                              "WHERE device_hash = ? AND at > ?",
                              DB_STRN(a->device_hash, 32), limits.login_free_failures, now);
    int64_t w = counter_wait_s("SELECT COUNT(*), MAX(at) FROM login_failures "
                               "WHERE username = ? AND at > ? AND device_hash IS NULL",
                               DB_STR(a->username), limits.login_free_failures, now);
    /* A loopback client without a proxy's X-Forwarded-For is a local tool
     * or test, not a stranger: no address counter. */
    if (w < 0 || a->address[0] == '\0' || strncmp(a->address, "127.", 4) == 0 ||
        strcmp(a->address, "::1") == 0)
        return w;
    int64_t wa = counter_wait_s("SELECT COUNT(*), MAX(at) FROM login_failures "
                                "WHERE address = ? AND at > ? AND device_hash IS NULL",
                                DB_STR(a->address), limits.login_address_free_failures, now);
    return wa < 0 || wa > w ? wa : w;
}

void auth_login_failed(const struct auth_attempt *a, int64_t now)
{
    db_exec("INSERT INTO login_failures (username, at, address, device_hash) VALUES (?, ?, ?, ?)",
            DB_ARGS(DB_STR(a->username), DB_INT(now), DB_STR(a->address),
                    a->device ? DB_STRN(a->device_hash, 32)
                              : (struct db_arg){.type = DB_ARG_NULL}));
}

void auth_login_succeeded(const struct auth_attempt *a)
{
    /* A known device's login says nothing about the strangers: their
     * count stands. */
    if (a->device) {
        db_exec("DELETE FROM login_failures WHERE device_hash = ?",
                DB_ARGS(DB_STRN(a->device_hash, 32)));
        return;
    }
    db_exec("DELETE FROM login_failures WHERE username = ? AND device_hash IS NULL",
            DB_ARGS(DB_STR(a->username)));
}

/* --- device keys --- */

int auth_device_key_check(const char *key, size_t len, int64_t user_id, int64_t now,
                          unsigned char *hash)
{
    if (len != AUTH_TOKEN_LEN - 1)
        return 0;
    auth_token_hash(key, len, hash);
    int rc = db_exec("UPDATE device_keys SET last_used_at = ? WHERE key_hash = ? AND user_id = ?",
                     DB_ARGS(DB_INT(now), DB_STRN(hash, 32), DB_INT(user_id)));
    if (rc < 0)
        return rc;
    /* A row whose last_used_at was already now counts as found too. */
    if (db_affected() > 0)
        return 1;
    struct db_res *r;
    rc = db_query("SELECT 1 FROM device_keys WHERE key_hash = ? AND user_id = ?", &r,
                  DB_ARGS(DB_STRN(hash, 32), DB_INT(user_id)));
    if (rc < 0)
        return rc;
    int found = r->nrows > 0;
    db_res_free(r);
    return found;
}

int auth_device_key_new(int64_t user_id, int64_t now, char *key)
{
    unsigned char hash[32];
    auth_token_new(key, hash);
    return db_exec("INSERT INTO device_keys (key_hash, user_id, created_at, last_used_at) "
                   "VALUES (?, ?, ?, ?)",
                   DB_ARGS(DB_STRN(hash, 32), DB_INT(user_id), DB_INT(now), DB_INT(now)));
}

/* --- sessions --- */

int auth_session_start(int64_t user_id, const char *device_name, const char *address, int64_t now,
                       char *token, int64_t *session_id)
{
    unsigned char hash[32];
    auth_token_new(token, hash);
    int rc =
        db_exec("INSERT INTO sessions (user_id, token_hash, device_name, created_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                DB_ARGS(DB_INT(user_id), DB_STRN(hash, sizeof hash), DB_STR(device_name),
                        DB_INT(now), DB_INT(now)));
    if (rc < 0)
        return rc;
    *session_id = db_insert_id();
    auth_audit(user_id, *session_id, "login", address, now);
    /* The cap: end the longest idle sessions beyond it (never this one). */
    auth_flush_last_seen();
    struct db_res *r;
    rc = db_query("SELECT id FROM sessions WHERE user_id = ? AND id <> ? "
                  "ORDER BY last_seen_at DESC, id DESC LIMIT 1000 OFFSET ?",
                  &r,
                  DB_ARGS(DB_INT(user_id), DB_INT(*session_id), DB_INT(limits.sessions_max - 1)));
    if (rc < 0)
        return DB_OK; /* the login stands; the next one trims */
    for (int i = 0; i < r->nrows; i++)
        auth_session_end(user_id, db_int(r, i, 0), "session_revoked", address);
    db_res_free(r);
    return DB_OK;
}

int auth_session_end(int64_t user_id, int64_t session_id, const char *event, const char *address)
{
    int rc = db_exec("DELETE FROM sessions WHERE id = ? AND user_id = ?",
                     DB_ARGS(DB_INT(session_id), DB_INT(user_id)));
    if (rc < 0)
        return rc;
    if (db_affected() == 0)
        return 1; /* NOT_FOUND */
    auth_session_forget(session_id);
    hub_end_session(session_id);
    cluster_revoke_session(session_id);
    auth_audit(user_id, session_id, event, address, now_ms());
    return DB_OK;
}

int auth_user_secret(int64_t user_id, char *hash, char *name)
{
    struct db_res *r;
    int rc = db_query("SELECT password_hash, username FROM users WHERE id = ?", &r,
                      DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return 1; /* NOT_FOUND */
    }
    snprintf(hash, AUTH_HASH_LEN, "%s", db_str(r, 0, 0));
    snprintf(name, 33, "%s", db_str(r, 0, 1));
    db_res_free(r);
    return DB_OK;
}

int auth_password_set(int64_t user_id, const char *hash, int64_t session_id, bool end_others,
                      const char *address)
{
    int rc = db_exec("UPDATE users SET password_hash = ? WHERE id = ?",
                     DB_ARGS(DB_STR(hash), DB_INT(user_id)));
    if (rc < 0)
        return rc;
    auth_audit(user_id, session_id, "password_changed", address, now_ms());
    if (!end_others)
        return DB_OK;
    struct db_res *r;
    rc = db_query("SELECT id FROM sessions WHERE user_id = ? AND id <> ?", &r,
                  DB_ARGS(DB_INT(user_id), DB_INT(session_id)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows && rc >= 0; i++) {
        rc = auth_session_end(user_id, db_int(r, i, 0), "session_revoked", address);
        if (rc == 1)
            rc = DB_OK; /* ended meanwhile */
    }
    db_res_free(r);
    return rc;
}

/* --- the audit log --- */

#define AUDIT_THROTTLED_EVERY_MS 60000

void auth_audit(int64_t user_id, int64_t session_id, const char *event, const char *address,
                int64_t now)
{
    /* A guesser hammering a delayed login would write a row per try: one
     * login_throttled a minute is enough to tell the user. */
    if (strcmp(event, "login_throttled") == 0) {
        struct db_res *r;
        if (db_query("SELECT event, at FROM auth_audit WHERE user_id = ? ORDER BY id DESC LIMIT 1",
                     &r, DB_ARGS(DB_INT(user_id))) < 0)
            return;
        bool recent = r->nrows && strcmp(db_str(r, 0, 0), event) == 0 &&
                      now - db_int(r, 0, 1) < AUDIT_THROTTLED_EVERY_MS;
        db_res_free(r);
        if (recent)
            return;
    }
    db_exec("INSERT INTO auth_audit (user_id, session_id, at, event, address) "
            "VALUES (?, ?, ?, ?, ?)",
            DB_ARGS(DB_INT(user_id),
                    session_id ? DB_INT(session_id) : (struct db_arg){.type = DB_ARG_NULL},
                    DB_INT(now), DB_STR(event), DB_STR(address ? address : "")));
}

int auth_audit_list(int64_t user_id, int limit, json_t **out)
{
    struct db_res *r;
    int rc = db_query("SELECT id, at, event, session_id, address FROM auth_audit "
                      "WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                      &r, DB_ARGS(DB_INT(user_id), DB_INT(limit)));
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(
            list, json_pack("{s:I, s:I, s:s, s:o, s:s}", "id", (json_int_t)db_int(r, i, 0), "at",
                            (json_int_t)db_int(r, i, 1), "event", db_str(r, i, 2), "session_id",
                            db_str(r, i, 3) ? json_integer(db_int(r, i, 3)) : json_null(),
                            "address", db_str(r, i, 4)));
    db_res_free(r);
    *out = list;
    return DB_OK;
}

void auth_prune(int64_t now)
{
    db_exec("DELETE FROM login_failures WHERE at < ? LIMIT 10000",
            DB_ARGS(DB_INT(now - LOGIN_WINDOW_MS)));
    db_exec("DELETE FROM auth_audit WHERE at < ? LIMIT 10000",
            DB_ARGS(DB_INT(now - (int64_t)limits.audit_retention_days * 86400000LL)));
    db_exec("DELETE FROM device_keys WHERE last_used_at < ? LIMIT 10000",
            DB_ARGS(DB_INT(now - 365LL * 86400000LL)));
}

/* --- accounts --- */

bool auth_username_normalise(const char *in, char *out)
{
    size_t n = in ? strlen(in) : 0;
    if (n < 3 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return true;
}

bool auth_display_name_clean(const char *s, size_t len, char *out)
{
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (len == 0 || len > 64 * 4 || utf8_chars(s, len) > 64 || !text_is_clean(s, len))
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

struct create_ctx {
    const char *username, *display, *hash;
    int64_t user_id;
};

static int create_tx(void *arg)
{
    struct create_ctx *c = arg;
    int rc = db_exec("INSERT INTO users (username, display_name, password_hash, created_at) "
                     "VALUES (?, ?, ?, ?)",
                     DB_ARGS(DB_STR(c->username), DB_STR(c->display), DB_STR(c->hash),
                             DB_INT(now_ms())));
    if (rc < 0)
        return rc;
    c->user_id = db_insert_id();
    return events_stream_create(c->user_id);
}

int auth_user_create(const char *username, const char *display, const char *hash, int64_t *user_id)
{
    struct create_ctx c = {.username = username, .display = display, .hash = hash};
    int rc = db_tx(create_tx, &c);
    if (rc == 0)
        *user_id = c.user_id;
    return rc;
}

int auth_user_deactivate(int64_t user_id, bool on)
{
    int rc = on ? db_exec("UPDATE users SET deactivated_at = COALESCE(deactivated_at, ?) "
                          "WHERE id = ?",
                          DB_ARGS(DB_INT(now_ms()), DB_INT(user_id)))
                : db_exec("UPDATE users SET deactivated_at = NULL WHERE id = ?",
                          DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    struct db_res *r;
    rc = db_query("SELECT id FROM users WHERE id = ?", &r, DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    bool found = r->nrows > 0;
    db_res_free(r);
    if (!found)
        return 1;
    if (!on)
        return DB_OK;
    rc = db_query("SELECT id FROM sessions WHERE user_id = ?", &r, DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows && rc >= 0; i++) {
        rc = auth_session_end(user_id, db_int(r, i, 0), "session_revoked", "admin");
        if (rc == 1)
            rc = DB_OK;
    }
    db_res_free(r);
    return rc;
}
