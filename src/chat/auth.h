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
 * May call: db, live (presence, cluster, hub), base, libsodium, cracklib. */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

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

/* Limits of accounts and logins (the config table's keys of the same
 * names). */
struct auth_limits {
    int sessions_max;                /* sessions per user */
    int login_free_failures;         /* per username, before the backoff */
    int login_address_free_failures; /* per client address, before the backoff */
    int login_delay_max_s;           /* the backoff's cap, s */
    int audit_retention_days;        /* auth_audit rows kept, days */
};

/* Sets the limits (copied). Call once before threads, after auth_init. */
void auth_set_limits(const struct auth_limits *limits);

/* Whether password (len bytes, UTF-8) may be a new password of username:
 * NULL when it may, or a sentence saying why not (for the problem's detail;
 * the calling thread's, valid until its next call). The rules: at least
 * AUTH_PASSWORD_MIN characters (code points), at most 256 bytes, and not
 * refused by cracklib (its dictionary of common passwords and words, also
 * with digits or symbols around them or repeated, and its checks of
 * simplistic patterns; from 16 characters on, its "simplistic" verdict
 * stands only when most neighbouring characters are steps like "ab" or
 * "98", since it refuses many long random passwords). Thread-safe (a mutex
 * guards cracklib). */
#define AUTH_PASSWORD_MIN 12
const char *auth_password_weak(const char *password, size_t len, const char *username);

/* One login attempt, for the backoff. username is the lower-case name as
 * given (existing or not, so that the answer does not tell which names
 * exist); address the client's address ("" unknown); device true when the
 * attempt presented a valid device key of the account, whose SHA-256 is
 * device_hash. */
struct auth_attempt {
    const char *username;
    const char *address;
    bool device;
    unsigned char device_hash[32];
};

/* Login backoff. Failures of the last hour are counted per username and
 * per address (attempts without a device key) or per device key (attempts
 * with one, which skip the other two counters). Past a counter's free
 * failures, each further attempt waits 2^(n - free) s after the counter's
 * latest failure (n failures so far), at most login_delay_max_s. A
 * loopback address (a local tool or test; behind nginx the address is
 * X-Forwarded-For's) has no address counter.
 * auth_login_wait_s answers the seconds to wait (0: may try now) or a DB_E*
 * code (< 0); auth_login_failed records a failure at now (ms);
 * auth_login_succeeded forgets the device key's failures (with a device
 * key) or the username's (without one); an address's stay (it may serve
 * many users). Any thread; errors of the last two are logged by db and
 * otherwise ignored. */
int64_t auth_login_wait_s(const struct auth_attempt *a, int64_t now);
void auth_login_failed(const struct auth_attempt *a, int64_t now);
void auth_login_succeeded(const struct auth_attempt *a);

/* Device keys: 32 random bytes in base64url (43 characters), handed out
 * at login and shown back by the client at its next logins. Only their
 * SHA-256 is stored, per user. auth_device_key_check answers 1 when key
 * (len bytes) is a device key of user_id (its SHA-256 into hash, 32
 * bytes, and its use noted at now ms), 0 when it is not, or DB_E*.
 * auth_device_key_new makes one for user_id into key (AUTH_TOKEN_LEN
 * bytes) and answers DB_OK or DB_E*. */
int auth_device_key_check(const char *key, size_t len, int64_t user_id, int64_t now,
                          unsigned char *hash);
int auth_device_key_new(int64_t user_id, int64_t now, char *key);

/* Starts a session for user_id: a new token into token (AUTH_TOKEN_LEN
 * bytes), its id into *session_id, the login audited with address. When
 * the user then has more than sessions_max sessions, the longest idle ones
 * are ended (audited as session_revoked). Returns DB_OK or DB_E*. */
int auth_session_start(int64_t user_id, const char *device_name, const char *address, int64_t now,
                       char *token, int64_t *session_id);

/* Ends session_id of user_id everywhere: the row, this node's auth cache
 * and poll, and the other nodes' (cluster_revoke_session); audits event
 * ("logout" or "session_revoked") with address. Returns DB_OK, NOT_FOUND
 * (1: no such session of this user) or DB_E*. */
int auth_session_end(int64_t user_id, int64_t session_id, const char *event, const char *address);

/* The password hash of user_id into hash (AUTH_HASH_LEN bytes) and the
 * username into name (33 bytes). Returns DB_OK, NOT_FOUND (1) or DB_E*. */
int auth_user_secret(int64_t user_id, char *hash, char *name);

/* Stores a new password hash for user_id, audits password_changed with
 * session_id and address and, when end_others, ends every other session of
 * the user (each audited as session_revoked). Returns DB_OK or DB_E*. */
int auth_password_set(int64_t user_id, const char *hash, int64_t session_id, bool end_others,
                      const char *address);

/* Appends an authentication event of user_id (session_id 0: none) at now
 * ms. event is one of login, login_failed, login_throttled, logout,
 * session_revoked, password_changed, password_change_failed; address the
 * client's. Never pass a secret. A login_throttled right after another
 * (within a minute, nothing between) is not written. Errors are logged by
 * db and ignored. */
void auth_audit(int64_t user_id, int64_t session_id, const char *event, const char *address,
                int64_t now);

/* The user's newest `limit` authentication events, newest first, as a new
 * JSON array (caller owns) of {id, at, event, session_id|null, address}
 * into *out. Returns DB_OK or DB_E*. */
int auth_audit_list(int64_t user_id, int limit, json_t **out);

/* Copies a valid username into out (33 bytes) in lower case. Returns false
 * for anything that is not 3..32 of [A-Za-z0-9_.-]. */
bool auth_username_normalise(const char *in, char *out);

/* Copies display name s (len bytes of valid UTF-8) into out (257 bytes)
 * without the spaces at its ends. Returns false when what remains is not
 * 1..64 characters of clean text (text_is_clean). */
bool auth_display_name_clean(const char *s, size_t len, char *out);

/* Creates a user: username (normalised), display name (clean), password
 * hash (auth_password_hash's), and the user's event stream, in one
 * transaction; its id into *user_id. Returns DB_OK, DB_EDUP (the name is
 * taken) or DB_E*. */
int auth_user_create(const char *username, const char *display, const char *hash, int64_t *user_id);

/* Deactivates (on) or reactivates (!on) user_id: a deactivated user cannot
 * log in (403 account_deactivated after the right password) and every
 * session of theirs ends (audited as session_revoked, address "admin").
 * Returns DB_OK, NOT_FOUND (1) or DB_E*. */
int auth_user_deactivate(int64_t user_id, bool on);

/* The janitor's part: forgets login failures older than an hour, audit
 * events past audit_retention_days and device keys unused for a year (at
 * most 10,000 rows each a call). now in ms. */
void auth_prune(int64_t now);

#endif
