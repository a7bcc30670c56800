/* auth.c — Argon2id hashing under a concurrency bound, tokens, sessions.
 *
 * The bound is a counting semaphore: each hash holds one slot for its
 * duration (about 50 ms and 19 MiB). Verification of a bearer token is one
 * indexed lookup by SHA-256; last_seen_at is written only when it is older
 * than LAST_SEEN_STEP_MS so that a busy client does not write on every
 * request. */
#include "auth.h"

#include <errno.h>
#include <semaphore.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "presence.h"
#include "util.h"

#define OPSLIMIT 2
#define MEMLIMIT (19u * 1024 * 1024)
#define LAST_SEEN_STEP_MS 5000

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
    struct db_res *r;
    int rc = db_query("SELECT id, user_id, last_seen_at FROM sessions WHERE token_hash = ?", &r,
                      DB_ARGS(DB_STRN(hash, sizeof hash)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return AUTH_MISMATCH;
    }
    *session_id = db_int(r, 0, 0);
    *user_id = db_int(r, 0, 1);
    int64_t last_seen = db_int(r, 0, 2);
    db_res_free(r);
    int64_t now = now_ms();
    presence_touch(*user_id);
    if (idle_ms > 0 && now - last_seen > idle_ms) {
        db_exec("DELETE FROM sessions WHERE id = ?", DB_ARGS(DB_INT(*session_id)));
        return AUTH_MISMATCH;
    }
    if (now - last_seen > LAST_SEEN_STEP_MS)
        db_exec("UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                DB_ARGS(DB_INT(now), DB_INT(*session_id)));
    return AUTH_OK;
}
