/* migrate.c — the migration runner (see migrate.h). */
#include "db/migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static int apply(const char *dir, const char *name)
{
    struct db_res *r;
    if (db_query("SELECT 1 FROM schema_migrations WHERE name = ?", &r, DB_ARGS(DB_STR(name))) < 0)
        return -1;
    bool done = r->nrows > 0;
    db_res_free(r);
    if (done)
        return 0;
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

int migrate_run(const char *dir)
{
    if (db_exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL, "
                "name VARCHAR(255) NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) "
                "ENGINE=InnoDB",
                DB_NOARGS) < 0)
        return -1;
    struct db_res *lock;
    if (db_query("SELECT GET_LOCK('chatd_migrate', 60)", &lock, DB_NOARGS) < 0)
        return -1;
    bool locked = lock->nrows && db_int(lock, 0, 0) == 1;
    db_res_free(lock);
    if (!locked) {
        log_error("migrate: another chatd holds the migration lock");
        return -1;
    }
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
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && apply(dir, names[i]) < 0)
            rc = -1;
        free(names[i]);
    }
    struct db_res *unlock;
    if (db_query("SELECT RELEASE_LOCK('chatd_migrate')", &unlock, DB_NOARGS) == 0)
        db_res_free(unlock);
    return rc;
}
