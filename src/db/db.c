/* db.c — per-thread MariaDB connections and prepared statements.
 *
 * Life cycle: db_init() once in main (mysql_library_init, database created
 * when missing); each thread's first db_* call opens its connection
 * (connect/read/write timeouts, utf8mb4, READ COMMITTED, UTC); a pthread key
 * destructor closes it when the thread exits.
 *
 * Statements are prepared once per connection and kept in a small hash table
 * keyed by the SQL string's address. Results are copied out as strings so that
 * callers never see MYSQL_BIND. A lost connection (2006, 2013, 2055) drops the
 * connection with its statements; the next call reconnects. READ COMMITTED is
 * chosen so that a statement run after taking a row lock sees what other
 * transactions committed before that lock was granted (the send path relies
 * on this for its idempotency check). */
#include "db/db.h"

#include <ctype.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

#include "base/log.h"

#define STMT_CACHE 256

struct stmt_slot {
    const char *sql;
    MYSQL_STMT *stmt;
};

struct db_conn {
    MYSQL *mysql;
    bool in_tx;
    struct stmt_slot cache[STMT_CACHE];
};

static struct db_config config;
static pthread_key_t conn_key;
static __thread struct db_conn *tl_conn;
static __thread int64_t tl_affected, tl_insert_id;

static void conn_drop(struct db_conn *c)
{
    for (int i = 0; i < STMT_CACHE; i++) {
        if (c->cache[i].stmt)
            mysql_stmt_close(c->cache[i].stmt);
        c->cache[i].stmt = NULL;
        c->cache[i].sql = NULL;
    }
    if (c->mysql)
        mysql_close(c->mysql);
    c->mysql = NULL;
    c->in_tx = false;
}

static void conn_destroy(void *p)
{
    struct db_conn *c = p;
    conn_drop(c);
    free(c);
    tl_conn = NULL;
    mysql_thread_end();
}

/* Errors after which the connection is dropped and another one opened (on
 * the next usable host): lost or refused connections, and Galera's 1047 "WSREP
 * has not yet prepared node for application use" (a node that left the
 * primary component, or is a donor). */
static bool is_conn_error(unsigned err)
{
    return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST || err == 2055 ||
           err == CR_CONNECTION_ERROR || err == CR_CONN_HOST_ERROR || err == ER_UNKNOWN_COM_ERROR;
}

static int classify(unsigned err)
{
    if (err == ER_DUP_ENTRY)
        return DB_EDUP;
    if (err == ER_LOCK_DEADLOCK || err == ER_LOCK_WAIT_TIMEOUT)
        return DB_ERETRY;
    if (is_conn_error(err))
        return DB_ECONN;
    return DB_ERR;
}

/* The host every thread connects to first: the last one found usable. */
static _Atomic int current_host;
static atomic_uint_fast64_t failovers;

int db_current_host(void) { return atomic_load(&current_host); }

/* Reads one row of "name value" pairs (SHOW STATUS / SELECT) into a check:
 * true when the server may take our writes. With wsrep on: ready, Synced
 * (state 4) and in the primary component. With require_durable: every
 * commit flushed. */
static bool server_usable(MYSQL *m, const char *where)
{
    if (mysql_query(m, "SELECT @@wsrep_on, @@innodb_flush_log_at_trx_commit"))
        return false;
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    bool wsrep = row && row[0] && strcmp(row[0], "1") == 0;
    bool durable = row && row[1] && strcmp(row[1], "1") == 0;
    if (r)
        mysql_free_result(r);
    if (row == NULL)
        return false;
    if (config.require_durable && !durable && config.nhosts > 1) {
        log_warn("db: %s does not flush every commit (innodb_flush_log_at_trx_commit); "
                 "skipped",
                 where);
        return false;
    }
    if (!wsrep)
        return true;
    if (mysql_query(m, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', "
                       "'wsrep_local_state', 'wsrep_cluster_status')"))
        return false;
    r = mysql_store_result(m);
    int ok = 0;
    while (r && (row = mysql_fetch_row(r)) != NULL) {
        if (row[0] == NULL || row[1] == NULL)
            continue;
        ok += (strcmp(row[0], "wsrep_ready") == 0 && strcmp(row[1], "ON") == 0) ||
              (strcmp(row[0], "wsrep_local_state") == 0 && strcmp(row[1], "4") == 0) ||
              (strcmp(row[0], "wsrep_cluster_status") == 0 && strcmp(row[1], "Primary") == 0);
    }
    if (r)
        mysql_free_result(r);
    if (ok != 3)
        log_warn("db: %s is not a ready, synced node of the primary component; skipped", where);
    return ok == 3;
}

/* Connects to host i of the list and checks it; NULL when unreachable or
 * not usable. */
static MYSQL *connect_host(int i, const char *db)
{
    MYSQL *m = mysql_init(NULL);
    if (m == NULL)
        return NULL;
    unsigned connect_timeout = 3, io_timeout = 30;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const char *sock = config.socket[0] ? config.socket : NULL;
    char where[300];
    snprintf(where, sizeof where, "%s:%u", config.hosts[i].name, config.hosts[i].port);
    if (!mysql_real_connect(m, config.hosts[i].name, config.user, config.password, db,
                            config.hosts[i].port, sock, 0)) {
        log_warn("db: cannot connect to %s: %s", sock ? sock : where, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    if (config.nhosts > 1 && !server_usable(m, where)) {
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* Opens a connection with our session settings; db may be NULL. Tries the
 * current host, then the others in list order after it; with several hosts,
 * keeps trying for up to failover_wait_ms. */
static MYSQL *open_mysql(const char *db)
{
    int64_t deadline = mono_ms() + (config.nhosts > 1 ? config.failover_wait_ms : 0);
    MYSQL *m = NULL;
    for (int round = 0; m == NULL; round++) {
        int start = atomic_load(&current_host);
        for (int k = 0; k < config.nhosts && m == NULL; k++) {
            int i = (start + k) % config.nhosts;
            m = connect_host(i, db);
            if (m && i != start) {
                /* Every thread moves on with us; the first to see a host fail
                 * decides. */
                int expected = start;
                if (atomic_compare_exchange_strong(&current_host, &expected, i)) {
                    atomic_fetch_add(&failovers, 1);
                    log_warn("db: now writing through %s:%u", config.hosts[i].name,
                             config.hosts[i].port);
                }
            }
        }
        if (m || mono_ms() >= deadline)
            break;
        /* Jittered pause: a cluster drops a dead member within seconds. */
        struct timespec ts = {0, (long)(100 + rand() % 200) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (m == NULL)
        return NULL;
    if (mysql_query(m, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") ||
        mysql_query(m, "SET time_zone = '+00:00', group_concat_max_len = 1048576, "
                       "sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")) {
        log_error("db: session setup failed: %s", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* This thread's connection, opened when needed. NULL when unreachable. */
static struct db_conn *conn_get(void)
{
    if (tl_conn == NULL) {
        tl_conn = calloc(1, sizeof *tl_conn);
        if (tl_conn == NULL)
            return NULL;
        mysql_thread_init();
        pthread_setspecific(conn_key, tl_conn);
    }
    if (tl_conn->mysql == NULL)
        tl_conn->mysql = open_mysql(config.database);
    return tl_conn->mysql ? tl_conn : NULL;
}

static int url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 1 >= outlen)
            return -1;
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[k++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    return 0;
}

/* Parses "host[:port]" of n bytes into hosts[i]. */
static int parse_host(struct db_config *cfg, int i, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    size_t hlen = colon ? (size_t)(colon - p) : n;
    if (hlen == 0 || hlen >= sizeof cfg->hosts[i].name)
        return -1;
    memcpy(cfg->hosts[i].name, p, hlen);
    cfg->hosts[i].name[hlen] = '\0';
    cfg->hosts[i].port = 3306;
    if (colon) {
        char digits[8];
        size_t dlen = n - hlen - 1;
        if (dlen == 0 || dlen >= sizeof digits)
            return -1;
        memcpy(digits, colon + 1, dlen);
        digits[dlen] = '\0';
        char *end;
        long port = strtol(digits, &end, 10);
        if (*end != '\0' || port <= 0 || port > 65535)
            return -1;
        cfg->hosts[i].port = (unsigned)port;
    }
    return 0;
}

int db_parse_url(const char *url, struct db_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->failover_wait_ms = 10000;
    const char *prefix = "mysql://";
    if (strncmp(url, prefix, strlen(prefix)) != 0)
        return -1;
    const char *p = url + strlen(prefix);
    const char *at = strchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at && slash && at < slash) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = (size_t)((colon ? colon : at) - p);
        if (url_decode(p, ulen, cfg->user, sizeof cfg->user) < 0)
            return -1;
        if (colon && url_decode(colon + 1, (size_t)(at - colon - 1), cfg->password,
                                sizeof cfg->password) < 0)
            return -1;
        p = at + 1;
    } else {
        strcpy(cfg->user, "root");
    }
    slash = strchr(p, '/');
    if (slash == NULL)
        return -1;
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma ? comma : slash;
        if (cfg->nhosts == DB_MAX_HOSTS || parse_host(cfg, cfg->nhosts, p, (size_t)(end - p)) < 0)
            return -1;
        cfg->nhosts++;
        p = comma ? comma + 1 : slash;
        if (comma && p == slash)
            return -1; /* a trailing comma */
    }
    if (cfg->nhosts == 0)
        return -1;
    snprintf(cfg->host, sizeof cfg->host, "%s", cfg->hosts[0].name);
    cfg->port = cfg->hosts[0].port;
    p = slash + 1;
    size_t dlen = strcspn(p, "?");
    if (dlen == 0 || dlen >= sizeof cfg->database)
        return -1;
    for (size_t i = 0; i < dlen; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '_')
            return -1;
    memcpy(cfg->database, p, dlen);
    p += dlen;
    if (*p == '?') {
        p++;
        if (strncmp(p, "socket=", 7) != 0)
            return -1;
        if (url_decode(p + 7, strlen(p + 7), cfg->socket, sizeof cfg->socket) < 0)
            return -1;
    }
    return 0;
}

int db_init(const struct db_config *cfg)
{
    config = *cfg;
    if (mysql_library_init(0, NULL, NULL)) {
        log_error("db: cannot initialise the client library");
        return DB_ERR;
    }
    pthread_key_create(&conn_key, conn_destroy);
    MYSQL *m = open_mysql(NULL);
    if (m == NULL)
        return DB_ECONN;
    char sql[160];
    snprintf(sql, sizeof sql,
             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
             config.database);
    int rc = DB_OK;
    if (mysql_query(m, sql)) {
        log_error("db: %s", mysql_error(m));
        rc = DB_ERR;
    }
    mysql_close(m);
    return rc;
}

void db_shutdown(void)
{
    if (tl_conn) {
        conn_destroy(tl_conn);
        pthread_setspecific(conn_key, NULL);
    }
    mysql_library_end();
}

static size_t slot_of(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 24) % STMT_CACHE;
}

/* The prepared statement for sql on c, prepared when needed. *cached tells
 * whether it lives in the cache (else the caller closes it). */
static MYSQL_STMT *stmt_get(struct db_conn *c, const char *sql, bool *cached, unsigned *err)
{
    size_t start = slot_of(sql);
    struct stmt_slot *free_slot = NULL;
    for (size_t k = 0; k < 8; k++) {
        struct stmt_slot *s = &c->cache[(start + k) % STMT_CACHE];
        if (s->sql == sql)
            return *cached = true, s->stmt;
        if (s->sql == NULL && free_slot == NULL)
            free_slot = s;
    }
    MYSQL_STMT *st = mysql_stmt_init(c->mysql);
    if (st == NULL) {
        *err = CR_OUT_OF_MEMORY;
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, strlen(sql))) {
        *err = mysql_stmt_errno(st);
        log_error("db: prepare failed (%u %s): %s", *err, mysql_stmt_error(st), sql);
        mysql_stmt_close(st);
        return NULL;
    }
    my_bool on = 1;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    *cached = free_slot != NULL;
    if (free_slot) {
        free_slot->sql = sql;
        free_slot->stmt = st;
    }
    return st;
}

/* Copies every row of an executed statement into a db_res. */
static int fetch_all(MYSQL_STMT *st, MYSQL_RES *meta, struct db_res **out, unsigned *err)
{
    if (mysql_stmt_store_result(st)) {
        *err = mysql_stmt_errno(st);
        return -1;
    }
    int ncols = (int)mysql_num_fields(meta);
    int nrows = (int)mysql_stmt_num_rows(st);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    struct db_res *res = calloc(1, sizeof *res);
    MYSQL_BIND *bind = calloc((size_t)ncols, sizeof *bind);
    unsigned long *lens = calloc((size_t)ncols, sizeof *lens);
    my_bool *nulls = calloc((size_t)ncols, sizeof *nulls);
    char **bufs = calloc((size_t)ncols, sizeof *bufs);
    int rc = -1;
    if (!res || !bind || !lens || !nulls || !bufs)
        goto done;
    res->ncols = ncols;
    res->cells = calloc((size_t)(nrows * ncols) + 1, sizeof *res->cells);
    if (res->cells == NULL)
        goto done;
    for (int c = 0; c < ncols; c++) {
        unsigned long size = fields[c].max_length > 32 ? fields[c].max_length : 32;
        bufs[c] = malloc(size + 1);
        if (bufs[c] == NULL)
            goto done;
        bind[c].buffer_type = MYSQL_TYPE_STRING;
        bind[c].buffer = bufs[c];
        bind[c].buffer_length = size + 1;
        bind[c].length = &lens[c];
        bind[c].is_null = &nulls[c];
    }
    if (mysql_stmt_bind_result(st, bind)) {
        *err = mysql_stmt_errno(st);
        goto done;
    }
    int r = 0, f;
    while ((f = mysql_stmt_fetch(st)) == 0) {
        for (int c = 0; c < ncols && r < nrows; c++) {
            if (nulls[c])
                continue;
            char *cell = malloc(lens[c] + 1);
            if (cell == NULL)
                goto done;
            memcpy(cell, bufs[c], lens[c]);
            cell[lens[c]] = '\0';
            res->cells[r * ncols + c] = cell;
        }
        r++;
    }
    if (f != MYSQL_NO_DATA) {
        *err = f == MYSQL_DATA_TRUNCATED ? CR_UNKNOWN_ERROR : mysql_stmt_errno(st);
        log_error("db: fetch failed (%d)", f);
        goto done;
    }
    res->nrows = r;
    *out = res;
    res = NULL;
    rc = 0;
done:
    mysql_stmt_free_result(st);
    for (int c = 0; bufs && c < ncols; c++)
        free(bufs[c]);
    free(bufs);
    free(nulls);
    free(lens);
    free(bind);
    if (res) {
        res->nrows = nrows;
        db_res_free(res);
    }
    if (rc < 0 && *err == 0)
        *err = CR_OUT_OF_MEMORY;
    return rc;
}

/* Prepares (cached), binds, executes and, when out is not NULL, fetches. */
static int run_once(struct db_conn *c, const char *sql, struct db_res **out, int nargs,
                    const struct db_arg *args, unsigned *err)
{
    bool cached = false;
    MYSQL_STMT *st = stmt_get(c, sql, &cached, err);
    if (st == NULL)
        return -1;
    MYSQL_BIND bind[32];
    int rc = -1;
    if (nargs > 32) {
        *err = CR_UNKNOWN_ERROR;
        goto done;
    }
    memset(bind, 0, sizeof bind);
    for (int i = 0; i < nargs; i++) {
        switch (args[i].type) {
        case DB_ARG_INT:
            bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            bind[i].buffer = (void *)&args[i].i;
            break;
        case DB_ARG_STR:
            bind[i].buffer_type = MYSQL_TYPE_STRING;
            bind[i].buffer = (void *)args[i].s;
            bind[i].buffer_length = args[i].len;
            bind[i].length = (unsigned long *)&args[i].len;
            break;
        case DB_ARG_NULL: bind[i].buffer_type = MYSQL_TYPE_NULL; break;
        }
    }
    if ((nargs && mysql_stmt_bind_param(st, bind)) || mysql_stmt_execute(st)) {
        *err = mysql_stmt_errno(st);
        goto done;
    }
    tl_affected = (int64_t)mysql_stmt_affected_rows(st);
    tl_insert_id = (int64_t)mysql_stmt_insert_id(st);
    if (out) {
        MYSQL_RES *meta = mysql_stmt_result_metadata(st);
        if (meta == NULL) {
            *err = CR_UNKNOWN_ERROR;
            log_error("db: statement returns no rows: %s", sql);
            goto done;
        }
        rc = fetch_all(st, meta, out, err);
        mysql_free_result(meta);
    } else {
        rc = 0;
    }
done:
    if (!cached)
        mysql_stmt_close(st);
    return rc;
}

static int run(const char *sql, struct db_res **out, int nargs, const struct db_arg *args)
{
    if (out)
        *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct db_conn *c = conn_get();
        if (c == NULL)
            return DB_ECONN;
        bool in_tx = c->in_tx;
        unsigned err = 0;
        if (run_once(c, sql, out, nargs, args, &err) == 0)
            return DB_OK;
        int rc = classify(err);
        if (rc == DB_ECONN) {
            log_warn("db: connection lost (%u)", err);
            conn_drop(c);
            /* Only a read outside a transaction is safe to run again. */
            if (!in_tx && attempt == 0 && strncmp(sql, "SELECT", 6) == 0)
                continue;
        } else if (rc == DB_ERR) {
            log_error("db: error %u: %s in: %.200s", err, c->mysql ? mysql_error(c->mysql) : "",
                      sql);
        }
        return rc;
    }
    return DB_ECONN;
}

int db_exec(const char *sql, int nargs, const struct db_arg *args)
{
    return run(sql, NULL, nargs, args);
}

int db_query(const char *sql, struct db_res **out, int nargs, const struct db_arg *args)
{
    return run(sql, out, nargs, args);
}

int db_exec_list(const char *sql, struct sbuf *list)
{
    const char *s = sb_done(list);
    int rc = s ? db_exec(sql, DB_ARGS(DB_STR(s))) : DB_ERR;
    free(list->s);
    list->s = NULL;
    return rc;
}

int db_query_list(const char *sql, struct sbuf *list, struct db_res **out)
{
    const char *s = sb_done(list);
    int rc = s ? db_query(sql, out, DB_ARGS(DB_STR(s))) : DB_ERR;
    free(list->s);
    list->s = NULL;
    return rc;
}

int64_t db_affected(void) { return tl_affected; }

int64_t db_insert_id(void) { return tl_insert_id; }

const char *db_str(const struct db_res *res, int row, int col)
{
    return res->cells[row * res->ncols + col];
}

int64_t db_int(const struct db_res *res, int row, int col)
{
    const char *s = db_str(res, row, col);
    return s ? strtoll(s, NULL, 10) : 0;
}

void db_res_free(struct db_res *res)
{
    if (res == NULL)
        return;
    for (int i = 0; res->cells && i < res->nrows * res->ncols; i++)
        free(res->cells[i]);
    free(res->cells);
    free(res);
}

/* Runs a plain statement on the connection (no user data). */
static int simple(struct db_conn *c, const char *sql)
{
    if (mysql_query(c->mysql, sql) == 0)
        return DB_OK;
    unsigned err = mysql_errno(c->mysql);
    int rc = classify(err);
    if (rc == DB_ECONN)
        conn_drop(c);
    else if (rc == DB_ERR)
        log_error("db: %s: %s", sql, mysql_error(c->mysql));
    return rc;
}

int db_tx(db_tx_fn fn, void *ctx)
{
    int rc = DB_ERR;
    for (int attempt = 0; attempt < 8; attempt++) {
        if (attempt > 0) {
            /* Jittered pause so that two deadlocked peers do not meet again. */
            struct timespec ts = {0, (long)(1 + rand() % (2 << attempt)) * 1000000L};
            nanosleep(&ts, NULL);
        }
        struct db_conn *c = conn_get();
        if (c == NULL)
            return DB_ECONN;
        rc = simple(c, "START TRANSACTION");
        if (rc == DB_ECONN && attempt == 0)
            continue;
        if (rc < 0)
            return rc;
        c->in_tx = true;
        rc = fn(ctx);
        if (rc == 0) {
            if (mysql_commit(c->mysql) == 0) {
                c->in_tx = false;
                return 0;
            }
            unsigned err = mysql_errno(c->mysql);
            rc = classify(err);
            if (rc == DB_ECONN) {
                /* The commit may or may not have happened: never run it twice. */
                log_warn("db: connection lost during COMMIT (%u): outcome unknown", err);
                conn_drop(c);
                return DB_ECOMMIT;
            }
            log_warn("db: commit failed (%u)", err);
        }
        if (c->mysql) {
            mysql_rollback(c->mysql);
            c->in_tx = false;
        }
        if (rc == DB_ERETRY || (rc == DB_ECONN && attempt == 0)) {
            log_debug("db: transaction retried (%d)", rc);
            continue;
        }
        return rc;
    }
    log_warn("db: transaction gave up after 8 attempts");
    return rc;
}

bool db_ping(void)
{
    struct db_res *r;
    if (db_query("SELECT 1", &r, DB_NOARGS) < 0)
        return false;
    db_res_free(r);
    return true;
}

int db_script(const char *sql, size_t len)
{
    struct db_conn *c = conn_get();
    if (c == NULL)
        return DB_ECONN;
    mysql_set_server_option(c->mysql, MYSQL_OPTION_MULTI_STATEMENTS_ON);
    int rc = DB_OK;
    if (mysql_real_query(c->mysql, sql, (unsigned long)len)) {
        rc = DB_ERR;
    } else {
        int more;
        do {
            MYSQL_RES *r = mysql_store_result(c->mysql);
            if (r)
                mysql_free_result(r);
            more = mysql_next_result(c->mysql);
        } while (more == 0);
        if (more > 0)
            rc = DB_ERR;
    }
    if (rc < 0)
        log_error("db: script failed: %s", mysql_error(c->mysql));
    mysql_set_server_option(c->mysql, MYSQL_OPTION_MULTI_STATEMENTS_OFF);
    return rc;
}

int db_server_var(const char *name, char *buf, size_t len)
{
    struct db_res *r;
    int rc = db_query("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
                      "WHERE VARIABLE_NAME = UPPER(?)",
                      &r, DB_ARGS(DB_STR(name)));
    if (rc < 0)
        return rc;
    snprintf(buf, len, "%s", r->nrows && db_str(r, 0, 0) ? db_str(r, 0, 0) : "");
    db_res_free(r);
    return DB_OK;
}
