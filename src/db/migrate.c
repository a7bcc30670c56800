/* migrate.c — the migration runner (see migrate.h). */
#include "db/migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "base/log.h"
#include "base/util.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *b = realloc(buf, cap);
            if (b == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Applies one file unless recorded. Returns 0 or -1. */
static int applied(const char *name);

static int apply(const char *dir, const char *name)
{
    int done = applied(name);
    if (done != 0)
        return done < 0 ? -1 : 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *sql = read_file(path, &len);
    if (sql == NULL) {
        log_error("migrate: cannot read %s", path);
        return -1;
    }
    int rc = db_script(sql, len);
    free(sql);
    if (rc < 0) {
        log_error("migrate: %s failed", name);
        return -1;
    }
    if (db_exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                DB_ARGS(DB_INT(atoi(name)), DB_STR(name), DB_INT(now_ms()))) < 0)
        return -1;
    log_info("migrate: applied %s", name);
    return 0;
}

/* True when name is recorded as applied; -1 on error. */
static int applied(const char *name)
{
    struct db_res *r;
    if (db_query("SELECT 1 FROM schema_migrations WHERE name = ?", &r, DB_ARGS(DB_STR(name))) < 0)
        return -1;
    int done = r->nrows > 0;
    db_res_free(r);
    return done;
}

#define LOCK_HOLD_MS 120000 /* a holder that died frees the lock after this */
#define LOCK_WAIT_MS 150000 /* longer than a dead holder's lock lasts */

/* Creates a table unless it exists. On Galera even a CREATE … IF NOT EXISTS
 * of an existing table is replicated to every node (total order), where it
 * can abort another node's lock statements: look first. */
static int ensure_table(const char *name, const char *create)
{
    struct db_res *r;
    if (db_query("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                 "AND TABLE_NAME = ?",
                 &r, DB_ARGS(DB_STR(name))) < 0)
        return -1;
    bool exists = r->nrows > 0;
    db_res_free(r);
    return exists ? 0 : db_exec(create, DB_NOARGS) < 0 ? -1 : 0;
}

/* Takes the lock row for `me`: one INSERT … ON DUPLICATE KEY UPDATE that
 * overwrites only an expired holder (or renews our own), then a read of who
 * holds it. Waits up to LOCK_WAIT_MS for another holder. Returns 0 or -1. */
static int lock_take(const char *me)
{
    if (ensure_table("schema_lock",
                     "CREATE TABLE IF NOT EXISTS schema_lock (id TINYINT NOT NULL PRIMARY KEY, "
                     "holder VARCHAR(128) NOT NULL, until_ms BIGINT NOT NULL) ENGINE=InnoDB") < 0)
        return -1;
    int64_t deadline = mono_ms() + LOCK_WAIT_MS;
    for (;;) {
        int64_t now = now_ms();
        /* Assignments run left to right: once holder is ours, until moves. */
        int rc =
            db_exec("INSERT INTO schema_lock (id, holder, until_ms) VALUES (1, ?, ?) "
                    "ON DUPLICATE KEY UPDATE holder = IF(until_ms < ?, VALUES(holder), holder), "
                    "until_ms = IF(holder = VALUES(holder), VALUES(until_ms), until_ms)",
                    DB_ARGS(DB_STR(me), DB_INT(now + LOCK_HOLD_MS), DB_INT(now)));
        if (rc == DB_ERETRY && mono_ms() < deadline) { /* aborted by another node's: again */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc < 0)
            return -1;
        struct db_res *r;
        if (db_query("SELECT holder FROM schema_lock WHERE id = 1", &r, DB_NOARGS) < 0)
            return -1;
        bool mine = r->nrows && strcmp(db_str(r, 0, 0), me) == 0;
        db_res_free(r);
        if (mine)
            return 0;
        if (mono_ms() >= deadline) {
            log_error("migrate: another chatd holds the migration lock");
            return -1;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void lock_release(const char *me)
{
    /* A deadlock (another node's statement aborted ours) is retried. */
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = db_exec("DELETE FROM schema_lock WHERE id = 1 AND holder = ?",
                         DB_ARGS(DB_STR(me)));
        if (rc == 0)
            return;
        log_warn("migrate: releasing the lock failed (%d); trying again", rc);
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_error("migrate: could not release the lock; it expires in %d s", LOCK_HOLD_MS / 1000);
}

int migrate_run(const char *dir, bool apply_them)
{
    if (ensure_table("schema_migrations",
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL, "
                     "name VARCHAR(255) NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) "
                     "ENGINE=InnoDB") < 0)
        return -1;
    char me[128], host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(me, sizeof me, "%s:%d:%lld", host, (int)getpid(), (long long)now_ms());
    if (apply_them && lock_take(me) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (d == NULL) {
        log_error("migrate: cannot open %s", dir);
        return -1;
    }
    char *names[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0 && e->d_name[0] >= '0' &&
            e->d_name[0] <= '9')
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int rc = 0, pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && apply_them && apply(dir, names[i]) < 0)
            rc = -1;
        if (rc == 0 && !apply_them) {
            int done = applied(names[i]);
            if (done < 0)
                rc = -1;
            else if (done == 0) {
                log_error("migrate: %s is not applied (run chatd --migrate)", names[i]);
                pending++;
            }
        }
        free(names[i]);
    }
    if (apply_them)
        lock_release(me);
    return rc < 0 || pending ? -1 : 0;
}
