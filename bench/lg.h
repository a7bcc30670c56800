/* lg.h — the load generator's shared declarations (bench/).
 *
 *   loop.c     one epoll loop: non-blocking HTTP/1.1 keep-alive client
 *              connections, a tiny response parser, timers
 *   stats.c    log-linear latency histograms, /proc sampling, JSON helpers
 *   db.c       seeding users/sessions and history in MariaDB; the bare
 *              single-row commit ceiling (libmariadb, one thread per connection)
 *   bare.c     a bare libmicrohttpd long-poll server (the "anchor" ceiling)
 *   loadgen.c  main, the scenarios */
#ifndef LG_H
#define LG_H

#define _GNU_SOURCE
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- time --- */
int64_t now_us(void);

/* ---------------------------------------------------------------- loop --- */
struct conn;
/* A complete answer: status, body (not NUL-terminated; valid during the call). */
typedef void (*resp_fn)(struct conn *c, int status, const char *body, size_t len, void *arg);
/* The connection failed with a request outstanding (connect refused, reset,
 * EOF, timeout). The connection is closed; a new request reopens it. */
typedef void (*err_fn)(struct conn *c, int err, void *arg);

struct conn {
    uint32_t id, gen;
    int fd;
    int state;        /* C_CLOSED, C_CONNECTING, C_OPEN */
    bool busy;        /* a request is outstanding */
    bool close_after; /* the answer said Connection: close */
    uint32_t evmask;
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
    resp_fn on_resp;
    err_fn on_err;
    void *arg;
    int64_t t_sent; /* µs, when the request was issued */
    int src;        /* source address index */
    uint64_t nreq;
};
enum { C_CLOSED, C_CONNECTING, C_OPEN };

/* host: IPv4 literal; src_ips: NULL or comma-separated IPv4 source addresses
 * to bind to round-robin (for more than one 4-tuple space). */
int loop_init(const char *host, int port, const char *src_ips);
struct conn *conn_new(void);
/* Issues one request (no pipelining: the conn must not be busy). Opens the
 * connection when closed. body may be NULL. Returns 0 or -1. */
int conn_request(struct conn *c, const char *method, const char *path, const char *token,
                 const char *body, size_t blen, resp_fn on_resp, err_fn on_err, void *arg);
void conn_close(struct conn *c);
typedef bool (*until_fn)(void *arg);
/* Runs the loop until done(arg) is true (checked every iteration) or the
 * deadline (µs, 0 = none) passes. Returns true when done. */
bool loop_run(until_fn done, void *arg, int64_t deadline_us);
/* One-shot timer at an absolute time (µs). */
void timer_at(int64_t at_us, void (*fn)(void *), void *arg);
/* Connection-level error counts (connect failures, resets, EOFs). */
extern uint64_t loop_conn_errors, loop_connects;
/* Open connections right now. */
extern uint64_t loop_open_conns;

/* --------------------------------------------------------------- stats --- */
#define HIST_SUB 64
#define HIST_NB (40 * HIST_SUB)
struct hist {
    uint64_t b[HIST_NB];
    uint64_t n;
    int64_t min, max;
    double sum;
};
void hist_add(struct hist *h, int64_t us);
void hist_merge(struct hist *into, const struct hist *from);
int64_t hist_pct(const struct hist *h, double p); /* p in 0..100 */
json_t *hist_json(const struct hist *h);

struct psample {
    int64_t wall_us;
    double cpu_s; /* utime + stime */
    int64_t rss_kb;
    int threads;
    bool ok;
};
struct psample proc_sample(pid_t pid);
/* CPU % of one core between two samples. */
double proc_cpu_pct(const struct psample *a, const struct psample *b);
double self_cpu_s(void);
json_t *proc_json(const struct psample *a, const struct psample *b);

/* ------------------------------------------------------------------ db --- */
struct user {
    int64_t id;
    char token[48];
};
/* Connects over the unix socket; NULL on failure (prints why). */
void *db_open(const char *socket, const char *dbname);
void db_close(void *db);
/* The Argon2id hash of a real registered user (benchseed), or NULL. */
char *db_password_hash(void *db, const char *username);
/* Seeds n users (username prefix+i), their user_streams row and one session
 * each, straight in SQL; fills out[i]. Returns 0 or -1. */
int db_seed_users(void *db, const char *prefix, int n, const char *pwhash, struct user *out);
/* Stores n messages (seq 1..n, alternately from a and b) in a thread and
 * moves its last_seq; history for S5. */
int db_fill_history(void *db, int64_t thread_id, int64_t a, int64_t b, int n);
/* The bare single-row commit ceiling: threads connections, each committing
 * one INSERT at a time for seconds (after warm_s); returns the result. */
json_t *db_commit_bench(const char *socket, int threads, double seconds, double warm_s);
/* innodb_flush_log_at_trx_commit as the server reports it, or -1. */
int db_flush_setting(void *db);

/* ---------------------------------------------------------------- bare --- */
int bare_server_main(int argc, char **argv);

#endif
