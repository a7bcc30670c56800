/* db.h — MariaDB/MySQL access: per-thread connections, cached prepared
 * statements, transactions with bounded retry. The only module that calls
 * libmariadb.
 *
 * Every thread that calls db_* gets its own connection, opened on first use
 * and closed when the thread exits; connections are never shared. Every
 * query with user data is a prepared statement, cached per connection by its
 * SQL text's address, so pass string literals.
 *
 *     struct db_res *r;
 *     if (db_query("SELECT id, username FROM users WHERE id = ?", &r,
 *                  DB_ARGS(DB_INT(id))) < 0)
 *         goto fail;
 *     ... db_str(r, 0, 1) ...
 *     db_res_free(r);
 *
 * Errors are classified (see STYLE.md): a lost connection is reopened and a
 * read outside a transaction retried once; a deadlock or lock wait timeout
 * makes db_tx() run the whole transaction again, a bounded number of times.
 *
 * Several hosts (a Galera cluster): every thread of the process writes
 * through one server, the first of the list that accepts a connection and,
 * when wsrep is on, is ready, Synced and in the primary component (and
 * durable, with require_durable). It keeps that server until it fails; then
 * every thread moves on to the next usable one, waiting up to
 * failover_wait_ms. Error 1047 (a node that is not ready) counts as a lost
 * connection.
 *
 * May call: base, libmariadb (the only module that does). */
#ifndef CHAT_DB_H
#define CHAT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Result codes: 0 or a negative DB_E*. */
enum {
    DB_OK = 0,
    DB_ERR = -1,     /* anything unclassified: answer 500 */
    DB_EDUP = -2,    /* a unique key refused the row (1062) */
    DB_ERETRY = -3,  /* deadlock (1213) or lock wait timeout (1205): retry the transaction */
    DB_ECONN = -4,   /* the server could not be reached or the connection was lost */
    DB_ECOMMIT = -5, /* the connection was lost during COMMIT: it may or may not have
                        happened (settle by idempotency; wake readers anyway) */
};

enum db_arg_type { DB_ARG_INT, DB_ARG_STR, DB_ARG_NULL };

/* One parameter of a prepared statement. Strings are borrowed. */
struct db_arg {
    enum db_arg_type type;
    long long i;
    const char *s;
    unsigned long len;
};

#define DB_INT(v) ((struct db_arg){.type = DB_ARG_INT, .i = (long long)(v)})
#define DB_STR(v) ((struct db_arg){.type = DB_ARG_STR, .s = (v), .len = strlen(v)})
#define DB_STRN(v, n) ((struct db_arg){.type = DB_ARG_STR, .s = (const char *)(v), .len = (n)})
/* A string that may be NULL (stored as SQL NULL). */
#define DB_STR_OR_NULL(v) ((v) ? DB_STR(v) : ((struct db_arg){.type = DB_ARG_NULL}))
#define DB_ARGS(...)                                                       \
    (int)(sizeof((struct db_arg[]){__VA_ARGS__}) / sizeof(struct db_arg)), \
        ((const struct db_arg[]){__VA_ARGS__})
#define DB_NOARGS 0, NULL

/* A result set copied into memory; every cell is a NUL-terminated string or
 * NULL for SQL NULL. Owned by the caller: db_res_free(). */
struct db_res {
    int nrows;
    int ncols;
    char **cells; /* nrows * ncols, row-major */
};

#define DB_MAX_HOSTS 8

/* Connection settings, from the db_url setting (and db_failover_wait_ms,
 * db_require_durable). host/port are the first of hosts[]. */
struct db_config {
    char host[256], user[128], password[256], database[64], socket[512];
    unsigned port;
    struct {
        char name[256];
        unsigned port;
    } hosts[DB_MAX_HOSTS]; /* in order of preference */
    int nhosts;
    int failover_wait_ms; /* how long a call waits for a usable server (several hosts) */
    bool require_durable; /* refuse a server with innodb_flush_log_at_trx_commit != 1 */
};

/* Parses mysql://user[:password]@host[:port][,host[:port]…]/database
 * [?socket=PATH] into *cfg (user, password and path may be %-encoded; at
 * most DB_MAX_HOSTS hosts, tried in that order). Returns 0, or -1 when the
 * URL is malformed or the database name is not [A-Za-z0-9_]+. */
int db_parse_url(const char *url, struct db_config *cfg);

/* Index into cfg->hosts of the server this process writes through now
 * (several hosts: the first one found usable, kept until it fails). */
int db_current_host(void);

/* Initialises the client library and remembers cfg. Creates the database when
 * it does not exist. Call once from main before any thread. Returns 0 or a
 * DB_E* code (logged). */
int db_init(const struct db_config *cfg);

/* Closes the calling thread's connection and the client library. */
void db_shutdown(void);

/* Runs a statement that returns no rows. Returns DB_OK or DB_E*. The number
 * of affected rows and the insert id are then in db_affected()/db_insert_id(). */
int db_exec(const char *sql, int nargs, const struct db_arg *args);

/* Runs a statement that returns rows into *out (caller frees with
 * db_res_free). Returns DB_OK or DB_E*; *out is NULL on error. */
int db_query(const char *sql, struct db_res **out, int nargs, const struct db_arg *args);

/* db_exec / db_query of a statement whose one parameter is the JSON list
 * built in `list` (sb_item…, read here with sb_done), for statements over
 * JSON_TABLE(?, …). Frees the list's string whatever happens. DB_ERR when
 * building the list ran out of memory. */
struct sbuf;
int db_exec_list(const char *sql, struct sbuf *list);
int db_query_list(const char *sql, struct sbuf *list, struct db_res **out);

/* Statements over JSON lists (JSON_TABLE). A list of plain ids, "[3,7,12]",
 * is the table j(id): */
#define DB_IDS_TABLE "JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j"

/* A list of rows (arrays built with sb_item) is described once, as an
 * X-macro LIST(X, S) that names each field — X(index, name, SQL type,
 * printf format) — with S between fields:
 *
 *     #define MOVE_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, q, BIGINT, "%lld")
 *     #define MOVE_ROW_COLUMNS DB_JT_COLUMNS(MOVE_ROW)
 *     sb_item(&list, DB_JT_ROW(MOVE_ROW), (long long)user, (long long)seq);
 *     "… JSON_TABLE(?, '$[*]' " MOVE_ROW_COLUMNS ") j …"
 *
 * (the list between clang-format off/on, and its COLUMNS named once, so that
 * the formatter leaves the SQL alone). DB_JT_ROW is the printf format of one
 * row and DB_JT_COLUMNS the COLUMNS
 * clause that reads it, by name: the two cannot disagree. */
#define DB_JT_FMT_(i, name, type, fmt) fmt
#define DB_JT_COL_(i, name, type, fmt) #name " " #type " PATH '$[" #i "]'"
#define DB_JT_ROW(LIST) "[" LIST(DB_JT_FMT_, ",") "]"
#define DB_JT_COLUMNS(LIST) "COLUMNS (" LIST(DB_JT_COL_, ", ") ")"

/* Rows changed by this thread's last db_exec. */
int64_t db_affected(void);

/* AUTO_INCREMENT id made by this thread's last db_exec. */
int64_t db_insert_id(void);

/* Cell (row, col) as a string, or NULL for SQL NULL. Borrowed from res. */
const char *db_str(const struct db_res *res, int row, int col);

/* Cell (row, col) as an integer; 0 for SQL NULL. */
int64_t db_int(const struct db_res *res, int row, int col);

/* Frees a result set; NULL is fine. */
void db_res_free(struct db_res *res);

/* The body of a transaction. Returns 0 to commit, a positive value to roll
 * back and hand that value to db_tx's caller, or a DB_E* code. */
typedef int (*db_tx_fn)(void *ctx);

/* Runs fn(ctx) inside a transaction: commits when it returns 0. On a deadlock
 * or lock wait timeout, or a connection lost before the commit was sent, rolls
 * back and runs fn again (at most 8 times, with a short jittered pause). fn
 * must therefore keep no state across runs except through ctx fields it
 * resets itself. Returns 0, fn's positive value, or a DB_E* code. */
int db_tx(db_tx_fn fn, void *ctx);

/* True when the database answers a trivial query now. */
bool db_ping(void);

/* Runs a script of several statements (a migration) on this thread's
 * connection, outside prepared statements. Returns DB_OK or DB_E* with the
 * server's message logged. */
int db_script(const char *sql, size_t len);

/* Reads a server variable such as "innodb_flush_log_at_trx_commit" into buf
 * (len bytes). Returns DB_OK or DB_E*. */
int db_server_var(const char *name, char *buf, size_t len);

#endif
