/* db.c — what the harness does straight in MariaDB (libmariadb):
 *
 *  - seeding users: registration costs an Argon2id hash (≈ 50–100 ms, 4 at a
 *    time on the server), so 19,000 users would take many minutes. The
 *    harness registers ONE real user over HTTP (benchseed) and copies its
 *    password hash into bulk-inserted users rows, with their user_streams
 *    and user_acks rows and one session each whose token_hash is SHA-256
 *    of a fresh random 43-character base64url token — exactly what
 *    POST /v1/sessions stores.
 *    Everything after that goes over HTTP.
 *  - seeding history for S5 (messages rows and the thread's last_seq);
 *  - the bare single-row commit ceiling: N connections, each committing one
 *    INSERT at a time (autocommit), nothing else. */
#include "lg.h"

#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *db_open(const char *socket, const char *dbname)
{
    MYSQL *m = mysql_init(NULL);
    if (m == NULL)
        return NULL;
    if (mysql_real_connect(m, NULL, "root", NULL, dbname, 0, socket, 0) == NULL) {
        fprintf(stderr, "loadgen: cannot connect to MariaDB at %s: %s\n", socket, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    mysql_set_character_set(m, "utf8mb4");
    return m;
}

void db_close(void *db)
{
    if (db)
        mysql_close(db);
}

static int exec(MYSQL *m, const char *sql, size_t len)
{
    if (mysql_real_query(m, sql, len) != 0) {
        fprintf(stderr, "loadgen: SQL failed: %s\n  %.200s\n", mysql_error(m), sql);
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(m);
    if (r)
        mysql_free_result(r);
    return 0;
}

/* The first column of the first row of a query, malloc'd, or NULL. */
static char *query_value(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0) {
        fprintf(stderr, "loadgen: SQL failed: %s\n  %s\n", mysql_error(m), sql);
        return NULL;
    }
    MYSQL_RES *r = mysql_store_result(m);
    if (r == NULL)
        return NULL;
    MYSQL_ROW row = mysql_fetch_row(r);
    char *v = row && row[0] ? strdup(row[0]) : NULL;
    mysql_free_result(r);
    return v;
}

char *db_password_hash(void *db, const char *username)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT password_hash FROM users WHERE username = '%s'", username);
    return query_value(db, sql);
}

int db_flush_setting(void *db)
{
    char *v = query_value(db, "SELECT @@GLOBAL.innodb_flush_log_at_trx_commit");
    int r = v ? atoi(v) : -1;
    free(v);
    return r;
}

/* A growable SQL text. */
struct sb {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        if (b->s == NULL) {
            perror("loadgen: sql");
            exit(1);
        }
        b->cap = cap;
    }
}

int db_seed_users(void *db, const char *prefix, int n, const char *pwhash, struct user *out)
{
    MYSQL *m = db;
    if (sodium_init() < 0)
        return -1;
    if (exec(m, "START TRANSACTION", 17) < 0)
        return -1;
    char *maxs = query_value(m, "SELECT COALESCE(MAX(id), 0) FROM users FOR UPDATE");
    if (maxs == NULL)
        return -1;
    int64_t base = strtoll(maxs, NULL, 10) + 1;
    free(maxs);
    int64_t now = wall_ms();
    struct sb b = {0};
    for (int start = 0; start < n; start += BATCH) {
        int end = start + BATCH < n ? start + BATCH : n;
        b.len = 0;
        sb_add(&b,
               "INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ");
        for (int i = start; i < end; i++)
            sb_add(&b, "%s(%lld, '%s%d', 'Bench %d', '%s', %lld)", i > start ? "," : "",
                   (long long)(base + i), prefix, i, i, pwhash, (long long)now);
        if (exec(m, b.s, b.len) < 0)
            goto fail;
        b.len = 0;
        sb_add(&b, "INSERT INTO user_streams (user_id, last_pos) VALUES ");
        for (int i = start; i < end; i++)
            sb_add(&b, "%s(%lld, 0)", i > start ? "," : "", (long long)(base + i));
        if (exec(m, b.s, b.len) < 0)
            goto fail;
        b.len = 0;
        sb_add(&b, "INSERT INTO user_acks (user_id, acked_pos) VALUES ");
        for (int i = start; i < end; i++)
            sb_add(&b, "%s(%lld, 0)", i > start ? "," : "", (long long)(base + i));
        if (exec(m, b.s, b.len) < 0)
            goto fail;
        b.len = 0;
        sb_add(&b, "INSERT INTO sessions (user_id, token_hash, device_name, created_at, "
                   "last_seen_at) VALUES ");
        for (int i = start; i < end; i++) {
            unsigned char raw[32], hash[32];
            randombytes_buf(raw, sizeof raw);
            sodium_bin2base64(out[i].token, sizeof out[i].token, raw, sizeof raw,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            crypto_hash_sha256(hash, (const unsigned char *)out[i].token, strlen(out[i].token));
            char hex[65];
            sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
            out[i].id = base + i;
            sb_add(&b, "%s(%lld, X'%s', 'bench', %lld, %lld)", i > start ? "," : "",
                   (long long)(base + i), hex, (long long)now, (long long)now);
        }
        if (exec(m, b.s, b.len) < 0)
            goto fail;
    }
    free(b.s);
    return exec(m, "COMMIT", 6);
fail:
    free(b.s);
    exec(m, "ROLLBACK", 8);
    return -1;
}

int db_fill_history(void *db, int64_t thread_id, int64_t a, int64_t b_id, int n)
{
    MYSQL *m = db;
    int64_t now = wall_ms() - n;
    struct sb b = {0};
    if (exec(m, "START TRANSACTION", 17) < 0)
        return -1;
    for (int start = 1; start <= n; start += BATCH) {
        int end = start + BATCH - 1 < n ? start + BATCH - 1 : n;
        b.len = 0;
        sb_add(&b, "INSERT INTO messages (thread_id, seq, sender_id, client_msg_id, body, "
                   "created_at) VALUES ");
        for (int s = start; s <= end; s++)
            sb_add(&b,
                   "%s(%lld, %d, %lld, 'h%d', 'history message %d of thread %lld, "
                   "a line of ordinary chat length', %lld)",
                   s > start ? "," : "", (long long)thread_id, s, (long long)(s & 1 ? a : b_id), s,
                   s, (long long)thread_id, (long long)(now + s));
        if (exec(m, b.s, b.len) < 0)
            goto fail;
    }
    b.len = 0;
    sb_add(&b, "UPDATE threads SET last_seq = %d, updated_at = %lld WHERE id = %lld", n,
           (long long)(now + n), (long long)thread_id);
    if (exec(m, b.s, b.len) < 0)
        goto fail;
    free(b.s);
    return exec(m, "COMMIT", 6);
fail:
    free(b.s);
    exec(m, "ROLLBACK", 8);
    return -1;
}

/* ------------------------------------------------- the commit ceiling --- */

struct committer {
    pthread_t tid;
    const char *socket;
    int idx;
    int64_t start_us, warm_us, end_us;
    uint64_t commits, errors;
    struct hist lat;
    int ok;
};

static void *commit_main(void *arg)
{
    struct committer *c = arg;
    MYSQL *m = db_open(c->socket, "benchceil");
    if (m == NULL)
        return NULL;
    c->ok = 1;
    char sql[256];
    uint64_t k = 0;
    for (;;) {
        int64_t t0 = now_us();
        if (t0 >= c->end_us)
            break;
        int len = snprintf(sql, sizeof sql,
                           "INSERT INTO commits (k, v, created_at) VALUES (%d%08llu, "
                           "'a single-row transaction of ordinary chat-message length', %lld)",
                           c->idx, (unsigned long long)k++, (long long)wall_ms());
        if (mysql_real_query(m, sql, (unsigned long)len) != 0) {
            c->errors++;
            continue;
        }
        int64_t t1 = now_us();
        if (t0 >= c->warm_us) {
            c->commits++;
            hist_add(&c->lat, t1 - t0);
        }
    }
    mysql_close(m);
    return NULL;
}

json_t *db_commit_bench(const char *socket, int threads, double seconds, double warm_s)
{
    MYSQL *m = db_open(socket, NULL);
    if (m == NULL)
        return NULL;
    const char *ddl[] = {
        "CREATE DATABASE IF NOT EXISTS benchceil",
        "CREATE TABLE IF NOT EXISTS benchceil.commits (id BIGINT NOT NULL AUTO_INCREMENT "
        "PRIMARY KEY, k BIGINT NOT NULL, v VARCHAR(255) NOT NULL, created_at BIGINT NOT NULL) "
        "ENGINE=InnoDB",
        "TRUNCATE TABLE benchceil.commits",
    };
    for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
        if (exec(m, ddl[i], strlen(ddl[i])) < 0) {
            mysql_close(m);
            return NULL;
        }
    int flush = db_flush_setting(m);
    mysql_close(m);

    struct committer *cs = calloc((size_t)threads, sizeof *cs);
    int64_t start = now_us();
    int64_t warm = start + (int64_t)(warm_s * 1e6), end = warm + (int64_t)(seconds * 1e6);
    for (int i = 0; i < threads; i++) {
        cs[i] = (struct committer){
            .socket = socket, .idx = i + 1, .start_us = start, .warm_us = warm, .end_us = end};
        pthread_create(&cs[i].tid, NULL, commit_main, &cs[i]);
    }
    struct hist *all = calloc(1, sizeof *all);
    uint64_t commits = 0, errors = 0;
    int ok = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(cs[i].tid, NULL);
        commits += cs[i].commits;
        errors += cs[i].errors;
        ok += cs[i].ok;
        hist_merge(all, &cs[i].lat);
    }
    json_t *res = json_pack("{s:s, s:i, s:i, s:f, s:I, s:f, s:I, s:o, s:i}", "mode", "dbcommit",
                            "threads", threads, "connected", ok, "seconds", seconds, "commits",
                            (json_int_t)commits, "commits_per_s", (double)commits / seconds,
                            "errors", (json_int_t)errors, "latency", hist_json(all),
                            "innodb_flush_log_at_trx_commit", flush);
    free(all);
    free(cs);
    return res;
}
