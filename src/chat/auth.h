/* auth.h — passwords, session tokens and bearer-token verification.
 *
 * Passwords are hashed with Argon2id (libsodium crypto_pwhash_str_alg,
 * t = 2, m = 19 MiB). At most `hash_concurrency` hashes run at once; the rest
 * wait up to AUTH_HASH_WAIT_MS and are then refused, so that a login storm
 * cannot take the process's memory. (The HTTP glue bounds the queue in
 * front of this for registration and login: hash_queue_max, hash_wait_ms.) Session tokens are 32
 * random bytes in base64url (43 characters); only their SHA-256 is stored, and neither is ever
 * logged.
 *
 * May call: db, live (presence, cluster), base, libsodium. */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_HASH_LEN 128 /* buffer for an encoded password hash */
#define AUTH_TOKEN_LEN 44 /* buffer for a token: 43 characters and NUL */
#define AUTH_HASH_WAIT_MS 1000

enum { AUTH_OK = 0, AUTH_MISMATCH = 1, AUTH_BUSY = -2, AUTH_FAIL = -1 };

/* Initialises libsodium and the hash limiter. Call once before threads.
 * Returns 0 or -1. */
int auth_init(int hash_concurrency, int session_idle_days);

/* Hashes a password (len bytes) into out (AUTH_HASH_LEN bytes). Returns
 * AUTH_OK, AUTH_BUSY when no hashing slot freed up in time, or AUTH_FAIL. */
int auth_password_hash(const char *password, size_t len, char *out);

/* Checks a password against an encoded hash; hash NULL checks against a dummy
 * so that an unknown user costs the same time. Returns AUTH_OK,
 * AUTH_MISMATCH, or AUTH_BUSY. */
int auth_password_verify(const char *hash, const char *password, size_t len);

/* Makes a new token (NUL-terminated into token, AUTH_TOKEN_LEN bytes) and its
 * SHA-256 (32 bytes into hash). */
void auth_token_new(char *token, unsigned char *hash);

/* SHA-256 of a token string of len bytes into hash (32 bytes). */
void auth_token_hash(const char *token, size_t len, unsigned char *hash);

/* Looks up the session of a bearer token. Returns AUTH_OK with the ids,
 * AUTH_MISMATCH for an unknown, revoked or idle-expired token, or a negative
 * DB_E* code when the database failed. Refreshes the session's last_seen_at
 * at most every few seconds. Thread-safe. A verified session is remembered
 * in memory for AUTH_CACHE_TTL_MS, so most requests cost no query; a session
 * ended in this process is forgotten at once (auth_session_forget). */
int auth_session_verify(const char *token, size_t len, int64_t *user_id, int64_t *session_id);

/* How long a verified session is trusted without asking the database (ms):
 * the most a session deleted behind chatd's back stays usable. */
#define AUTH_CACHE_TTL_MS 30000
/* The same while this node is cut off from the cluster's bus (a logout on
 * another node may not reach it). */
#define AUTH_CACHE_TTL_DEGRADED_MS 2000

/* Writes the last_seen_at values that moved since the last call, in one
 * statement. Call about every second (the janitor does) and before reading
 * last_seen_at. Returns DB_OK or DB_E*; a failed write is not retried. */
int auth_flush_last_seen(void);

/* Forgets a session that was just deleted (logout, revocation): its token
 * is looked up in the database again, and refused; session_id 0 forgets
 * every cached session. Thread-safe. */
void auth_session_forget(int64_t session_id);

/* Login throttling, per username (existing or not, so that the answer does
 * not tell which names exist): when the 20 most recent failures all lie
 * within 15 minutes, the name waits until the oldest is 15 minutes old.
 * auth_login_wait_s answers the seconds to wait (0: may try now) or a DB_E*
 * code (< 0); auth_login_failed records a failure at now (ms);
 * auth_login_succeeded forgets the name's failures. Any thread; errors of the
 * last two are logged by db and otherwise ignored. */
int64_t auth_login_wait_s(const char *username, int64_t now);
void auth_login_failed(const char *username, int64_t now);
void auth_login_succeeded(const char *username);

/* The janitor's part: forgets login failures older than the throttle's
 * window (at most 10,000 rows a call). now in ms. */
void auth_prune(int64_t now);

#endif
