/* chatctl.c — the operator's command: accounts and sessions, straight in
 * the database (docs/chatctl.md).
 *
 *   chatctl [--config FILE] user create USERNAME [--display-name NAME]
 *   chatctl [--config FILE] user reset-password USERNAME
 *   chatctl [--config FILE] user deactivate|reactivate USERNAME
 *   chatctl [--config FILE] session list USERNAME [--json]
 *   chatctl [--config FILE] session revoke SESSION_ID | --all USERNAME
 *   chatctl [--config FILE] counts [--json]
 *
 * It reads the settings as chatd does (the file, then CHAT_* variables) and
 * uses the same rules and functions as the API (usernames, display names,
 * the password policy, Argon2id hashes, session ends with their audit
 * rows). Passwords come from standard input, never from the command line
 * (which other users of the host can read in /proc). A session ended here
 * is refused by a running chatd once its cache of verified tokens forgets
 * it: within 30 s (AUTH_CACHE_TTL_MS).
 *
 * Exit status: 0 done, 1 usage, 2 not found, 3 refused (a weak password, a
 * taken name, an invalid name), 4 the database failed.
 *
 * Like main.c, it may include every layer. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "chat/auth.h"
#include "db/db.h"

enum { EXIT_DONE = 0, EXIT_USAGE = 1, EXIT_NOT_FOUND = 2, EXIT_REFUSED = 3, EXIT_DB = 4 };

static void usage(FILE *out)
{
    fprintf(out, "usage: chatctl [--config FILE] COMMAND\n\n"
                 "  user create USERNAME [--display-name NAME]   password from standard input\n"
                 "  user reset-password USERNAME                 password from standard input;\n"
                 "                                               ends every session of the user\n"
                 "  user deactivate USERNAME                     no more logins; sessions end\n"
                 "  user reactivate USERNAME\n"
                 "  session list USERNAME [--json]\n"
                 "  session revoke SESSION_ID | --all USERNAME\n"
                 "  counts [--json]\n\n"
                 "Settings as chatd's: FILE (default chatd.conf when present), then CHAT_*.\n"
                 "Exit status: 0 done, 1 usage, 2 not found, 3 refused, 4 database error.\n");
}

/* Reads the settings as chatd does. Returns 0 or -1 (reported). */
static int load_settings(const char *path, bool required, struct config *cfg)
{
    char err[512];
    if (getenv("CHAT_CONFIG")) {
        path = getenv("CHAT_CONFIG");
        required = true;
    }
    config_defaults(cfg);
    if (config_load_file(cfg, path, required, err, sizeof err) < 0 ||
        config_load_env(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "chatctl: %s\n", err);
        return -1;
    }
    return 0;
}

/* The exit status for a DB_E* code, reported. */
static int db_failed(int rc)
{
    fprintf(stderr, "chatctl: the database failed (%d)\n", rc);
    return EXIT_DB;
}

/* The id of user `name` into *id. Returns EXIT_DONE, EXIT_NOT_FOUND or
 * EXIT_DB (reported). */
static int find_user(const char *name, int64_t *id)
{
    char username[33];
    if (!auth_username_normalise(name, username)) {
        fprintf(stderr, "chatctl: no user %s\n", name);
        return EXIT_NOT_FOUND;
    }
    struct db_res *r;
    int rc = db_query("SELECT id FROM users WHERE username = ?", &r, DB_ARGS(DB_STR(username)));
    if (rc < 0)
        return db_failed(rc);
    bool found = r->nrows > 0;
    if (found)
        *id = db_int(r, 0, 0);
    db_res_free(r);
    if (!found)
        fprintf(stderr, "chatctl: no user %s\n", username);
    return found ? EXIT_DONE : EXIT_NOT_FOUND;
}

/* A password from standard input (its first line, without the newline)
 * into buf (len bytes), checked against the policy for username, and
 * hashed into hash. Returns EXIT_DONE, EXIT_USAGE or EXIT_REFUSED
 * (reported). */
static int read_password(const char *username, char *hash)
{
    char buf[1024];
    if (fgets(buf, sizeof buf, stdin) == NULL) {
        fprintf(stderr, "chatctl: give the password on standard input\n");
        return EXIT_USAGE;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t len = strlen(buf);
    const char *weak = len > 256 ? "a password has at most 256 bytes"
                                 : auth_password_weak(buf, len, username);
    if (weak) {
        fprintf(stderr, "chatctl: refused: %s\n", weak);
        sodium_memzero(buf, sizeof buf);
        return EXIT_REFUSED;
    }
    int rc = auth_password_hash(buf, len, hash);
    sodium_memzero(buf, sizeof buf);
    if (rc != AUTH_OK) {
        fprintf(stderr, "chatctl: hashing the password failed\n");
        return EXIT_DB;
    }
    return EXIT_DONE;
}

static int user_create(int argc, char **argv)
{
    if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--display-name") == 0))
        return EXIT_USAGE;
    char username[33], display[257];
    if (!auth_username_normalise(argv[0], username)) {
        fprintf(stderr, "chatctl: refused: a username is 3..32 characters of A-Z a-z 0-9 _ . -\n");
        return EXIT_REFUSED;
    }
    const char *name = argc == 3 ? argv[2] : argv[0];
    if (!auth_display_name_clean(name, strlen(name), display)) {
        fprintf(stderr, "chatctl: refused: a display name is 1..64 characters of clean text\n");
        return EXIT_REFUSED;
    }
    char hash[AUTH_HASH_LEN];
    int st = read_password(username, hash);
    if (st != EXIT_DONE)
        return st;
    int64_t id;
    int rc = auth_user_create(username, display, hash, &id);
    if (rc == DB_EDUP) {
        fprintf(stderr, "chatctl: refused: the username %s is taken\n", username);
        return EXIT_REFUSED;
    }
    if (rc < 0)
        return db_failed(rc);
    printf("created user %lld %s\n", (long long)id, username);
    return EXIT_DONE;
}

static int user_reset_password(int argc, char **argv)
{
    if (argc != 1)
        return EXIT_USAGE;
    int64_t id;
    int st = find_user(argv[0], &id);
    if (st != EXIT_DONE)
        return st;
    char username[33], hash[AUTH_HASH_LEN];
    auth_username_normalise(argv[0], username);
    if ((st = read_password(username, hash)) != EXIT_DONE)
        return st;
    int rc = auth_password_set(id, hash, 0, true, "admin");
    if (rc < 0)
        return db_failed(rc);
    printf("password of %s reset; every session ended\n", username);
    return EXIT_DONE;
}

static int user_activation(int argc, char **argv, bool deactivate)
{
    if (argc != 1)
        return EXIT_USAGE;
    int64_t id;
    int st = find_user(argv[0], &id);
    if (st != EXIT_DONE)
        return st;
    int rc = auth_user_deactivate(id, deactivate);
    if (rc < 0)
        return db_failed(rc);
    printf("user %lld %s\n", (long long)id,
           deactivate ? "deactivated; every session ended" : "reactivated");
    return EXIT_DONE;
}

static int session_list(int argc, char **argv)
{
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc != 1 && !json)
        return EXIT_USAGE;
    int64_t id;
    int st = find_user(argv[0], &id);
    if (st != EXIT_DONE)
        return st;
    struct db_res *r;
    int rc = db_query("SELECT id, COALESCE(device_name, ''), created_at, last_seen_at, "
                      "push_provider IS NOT NULL FROM sessions WHERE user_id = ? ORDER BY id",
                      &r, DB_ARGS(DB_INT(id)));
    if (rc < 0)
        return db_failed(rc);
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++) {
        if (json)
            json_array_append_new(
                list, json_pack("{s:I, s:s, s:I, s:I, s:b}", "id", (json_int_t)db_int(r, i, 0),
                                "device_name", db_str(r, i, 1), "created_at",
                                (json_int_t)db_int(r, i, 2), "last_seen_at",
                                (json_int_t)db_int(r, i, 3), "push", (int)db_int(r, i, 4)));
        else
            printf("%lld\t%s\tcreated %lld\tlast seen %lld%s\n", (long long)db_int(r, i, 0),
                   db_str(r, i, 1)[0] ? db_str(r, i, 1) : "-", (long long)db_int(r, i, 2),
                   (long long)db_int(r, i, 3), db_int(r, i, 4) ? "\tpush" : "");
    }
    db_res_free(r);
    if (json) {
        char *s = json_dumps(list, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    }
    json_decref(list);
    return EXIT_DONE;
}

static int session_revoke(int argc, char **argv)
{
    int64_t user_id = 0, session_id = 0;
    struct db_res *r;
    if (argc == 2 && strcmp(argv[0], "--all") == 0) {
        int st = find_user(argv[1], &user_id);
        if (st != EXIT_DONE)
            return st;
    } else if (argc == 1 && parse_int(argv[0], &session_id) == 0 && session_id > 0) {
        int rc = db_query("SELECT user_id FROM sessions WHERE id = ?", &r,
                          DB_ARGS(DB_INT(session_id)));
        if (rc < 0)
            return db_failed(rc);
        user_id = r->nrows ? db_int(r, 0, 0) : 0;
        db_res_free(r);
        if (user_id == 0) {
            fprintf(stderr, "chatctl: no session %lld\n", (long long)session_id);
            return EXIT_NOT_FOUND;
        }
    } else {
        return EXIT_USAGE;
    }
    int rc = db_query("SELECT id FROM sessions WHERE user_id = ? AND (? = 0 OR id = ?)", &r,
                      DB_ARGS(DB_INT(user_id), DB_INT(session_id), DB_INT(session_id)));
    if (rc < 0)
        return db_failed(rc);
    int ended = 0;
    for (int i = 0; i < r->nrows && rc >= 0; i++) {
        rc = auth_session_end(user_id, db_int(r, i, 0), "session_revoked", "admin");
        if (rc == DB_OK)
            ended++;
        else if (rc == 1)
            rc = DB_OK;
    }
    db_res_free(r);
    if (rc < 0)
        return db_failed(rc);
    printf("%d session%s ended\n", ended, ended == 1 ? "" : "s");
    return EXIT_DONE;
}

static int counts(int argc, char **argv)
{
    bool json = argc == 1 && strcmp(argv[0], "--json") == 0;
    if (argc != 0 && !json)
        return EXIT_USAGE;
    static const char *const names[] = {"users",       "active_users_30d", "deactivated_users",
                                        "sessions",    "threads",          "messages",
                                        "push_tokens", "attachments",      "stored_bytes"};
    static const char *const sql[] = {
        "SELECT COUNT(*) FROM users",
        "SELECT COUNT(DISTINCT user_id) FROM sessions WHERE last_seen_at > ?",
        "SELECT COUNT(*) FROM users WHERE deactivated_at IS NOT NULL",
        "SELECT COUNT(*) FROM sessions",
        "SELECT COUNT(*) FROM threads",
        "SELECT COALESCE(SUM(last_seq), 0) FROM threads",
        "SELECT COUNT(*) FROM sessions WHERE push_token IS NOT NULL",
        "SELECT COUNT(*) FROM attachments WHERE state = 'attached'",
        "SELECT COALESCE(SUM(size), 0) FROM blobs"};
    json_t *out = json_object();
    int64_t since = now_ms() - 30LL * 86400000;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct db_res *r;
        int rc = i == 1 ? db_query(sql[i], &r, DB_ARGS(DB_INT(since)))
                        : db_query(sql[i], &r, DB_NOARGS);
        if (rc < 0) {
            json_decref(out);
            return db_failed(rc);
        }
        int64_t v = db_int(r, 0, 0);
        db_res_free(r);
        if (json)
            json_object_set_new(out, names[i], json_integer(v));
        else
            printf("%-18s %lld\n", names[i], (long long)v);
    }
    if (json) {
        char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "{}");
        free(s);
    }
    json_decref(out);
    return EXIT_DONE;
}

/* Runs the command in argv[0..argc). */
static int run(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[0], "user") == 0) {
        if (strcmp(argv[1], "create") == 0 && argc >= 3)
            return user_create(argc - 2, argv + 2);
        if (strcmp(argv[1], "reset-password") == 0)
            return user_reset_password(argc - 2, argv + 2);
        if (strcmp(argv[1], "deactivate") == 0)
            return user_activation(argc - 2, argv + 2, true);
        if (strcmp(argv[1], "reactivate") == 0)
            return user_activation(argc - 2, argv + 2, false);
    } else if (argc >= 2 && strcmp(argv[0], "session") == 0) {
        if (strcmp(argv[1], "list") == 0 && argc >= 3)
            return session_list(argc - 2, argv + 2);
        if (strcmp(argv[1], "revoke") == 0)
            return session_revoke(argc - 2, argv + 2);
    } else if (argc >= 1 && strcmp(argv[0], "counts") == 0) {
        return counts(argc - 1, argv + 1);
    }
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    const char *path = "chatd.conf";
    bool required = false;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "--config") == 0) {
        path = argv[2];
        required = true;
        i = 3;
    }
    if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
        usage(i >= argc ? stderr : stdout);
        return i >= argc ? EXIT_USAGE : EXIT_DONE;
    }
    struct config cfg;
    if (load_settings(path, required, &cfg) < 0)
        return EXIT_USAGE;
    log_set_level(LOG_WARN);
    struct db_config dbc;
    if (db_parse_url(cfg.db_url, &dbc) < 0) {
        fprintf(stderr, "chatctl: db_url is not mysql://user:pass@host:port/db\n");
        return EXIT_USAGE;
    }
    dbc.failover_wait_ms = cfg.db_failover_wait_ms;
    dbc.require_durable = false;
    if (db_init(&dbc) < 0 || auth_init(1, cfg.session_idle_days) < 0)
        return EXIT_DB;
    int rc = run(argc - i, argv + i);
    if (rc == EXIT_USAGE)
        usage(stderr);
    db_shutdown();
    return rc;
}
