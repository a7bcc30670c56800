/* loadgen.c — the load generator for `make bench` (see docs/BENCHMARKS.md).
 *
 * One process, one thread, one epoll loop (loop.c) drives chatd over HTTP on
 * loopback. Each mode prints one JSON object (to --out or stdout):
 *
 *   init        register the one real user whose password hash seeding copies
 *   http        closed loop GET on a path (the /healthz and nginx ceilings)
 *   dbcommit    bare MariaDB single-row commits at a concurrency (db.c)
 *   park        S1: N parked long-polls (optionally over several processes):
 *               chatd's RSS per parked poll and idle CPU
 *   latency     S2: open-loop 1:1 sends at fixed rates with N parked:
 *               send→deliver percentiles
 *   throughput  S3: closed loop, S senders, 1:1 or groups of G, every member
 *               parked: messages stored/s and deliveries/s
 *   fanout      S4: one group of M members, all parked: 201 → last member
 *   history     S5: pages of 50 (GET …/messages?before=&limit=50), closed loop
 *   bare-server the anchor: a bare libmicrohttpd long-poll server (bare.c)
 *
 * Every delivery is checked: each device keeps, per thread, a bitmap of the
 * seqs it has received. A seq seen twice is a duplicate, a seq other than the
 * lowest one not yet seen is out of order, and what a member's device never
 * got of what the sends stored (201/200) is lost. A message's client_msg_id
 * carries its phase, sender, number and send time (µs, this process's
 * monotonic clock), and its body is derived from the id, so send→deliver
 * latency needs no table and a changed body is caught. */
#include "lg.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILLER "a benchmark message of ordinary chat length, checked on delivery"
#define SEED_USER "benchseed"
#define SEED_PASSWORD "benchseed-password-1"

/* ------------------------------------------------------------- options --- */

static struct {
    char host[64];
    int port;
    const char *src;
    const char *db_socket, *db_name;
    pid_t server_pid, db_pid;
    const char *out;
    const char *label;
    bool bare;
    int poll_timeout;
    int ramp;       /* devices starting at once */
    int setup_conc; /* setup requests at once */
    /* mode parameters */
    int n, procs, conns, senders, group, members, messages, threads, depth, max_send_conns;
    double seconds, warm, idle, drain, settle, final_drain, deliver_cap;
    const char *path, *rates;
} opt = {
    .host = "127.0.0.1",
    .port = 8080,
    .db_name = "chatbench",
    .poll_timeout = 60,
    .ramp = 256,
    .setup_conc = 32,
    .n = 1000,
    .procs = 1,
    .conns = 64,
    .senders = 64,
    .group = 1,
    .members = 1000,
    .messages = 10,
    .threads = 32,
    .depth = 2000,
    .max_send_conns = 512,
    .seconds = 10,
    .warm = 1,
    .idle = 5,
    .drain = 10,
    .settle = 30,
    .final_drain = 30,
    .deliver_cap = 30,
    .path = "/healthz",
    .rates = "1000,5000",
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen[%d]: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void emit(json_t *res)
{
    FILE *f = stdout;
    if (opt.out && (f = fopen(opt.out, "w")) == NULL)
        die("cannot write %s: %s", opt.out, strerror(errno));
    json_dumpf(res, f, JSON_INDENT(1) | JSON_SORT_KEYS);
    fputc('\n', f);
    if (f != stdout)
        fclose(f);
    json_decref(res);
}

/* ------------------------------------------------------ error counting --- */

static json_t *errors; /* "what" → count */

static void count_error(const char *what)
{
    json_t *v = json_object_get(errors, what);
    json_object_set_new(errors, what, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void count_status(const char *what, int status)
{
    char k[64];
    snprintf(k, sizeof k, "%s %d", what, status);
    count_error(k);
}

/* ---------------------------------------------------- threads, devices --- */

struct tstate {
    int64_t thread_id;
    uint8_t *bits;
    uint32_t nbytes;
    int64_t next; /* lowest seq not yet received */
    int64_t got;
};

struct device {
    int idx;
    struct user u;
    struct conn *c;
    char cursor[32];
    bool have_cursor, active, counted_cursor;
    bool reading; /* the end-of-run read of the stream (timeout=0) */
    struct tstate *ts;
    int nts;
    uint64_t polls;
};

struct thr {
    int64_t id;
    int *members; /* device indexes */
    int nmembers;
    int64_t stored;
    uint8_t *seq_phase; /* by seq: 0 = no answer seen for it, else 1 + its phase */
    int64_t seq_cap;
};

static struct device *devs;
static int ndevs;
static struct thr *thrs;
static int nthrs;

/* thread id → struct thr, open addressing */
static int64_t *tmap_keys;
static int *tmap_vals;
static size_t tmap_cap;

static void tmap_put(int64_t id, int idx)
{
    if (tmap_cap == 0) {
        tmap_cap = 1;
        while (tmap_cap < (size_t)nthrs * 2 + 16)
            tmap_cap *= 2;
        tmap_keys = calloc(tmap_cap, sizeof *tmap_keys);
        tmap_vals = calloc(tmap_cap, sizeof *tmap_vals);
    }
    size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & (tmap_cap - 1);
    while (tmap_keys[i] && tmap_keys[i] != id)
        i = (i + 1) & (tmap_cap - 1);
    tmap_keys[i] = id;
    tmap_vals[i] = idx;
}

static struct thr *tmap_get(int64_t id)
{
    if (tmap_cap == 0)
        return NULL;
    size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & (tmap_cap - 1);
    while (tmap_keys[i]) {
        if (tmap_keys[i] == id)
            return &thrs[tmap_vals[i]];
        i = (i + 1) & (tmap_cap - 1);
    }
    return NULL;
}

static struct tstate *ts_get(struct device *d, int64_t tid)
{
    for (int i = 0; i < d->nts; i++)
        if (d->ts[i].thread_id == tid)
            return &d->ts[i];
    d->ts = realloc(d->ts, (size_t)(d->nts + 1) * sizeof *d->ts);
    struct tstate *t = &d->ts[d->nts++];
    *t = (struct tstate){.thread_id = tid, .next = 1};
    return t;
}

static bool ts_has(struct tstate *t, int64_t seq)
{
    return seq >= 0 && (uint64_t)seq / 8 < t->nbytes && (t->bits[seq / 8] >> (seq % 8)) & 1;
}

static void ts_set(struct tstate *t, int64_t seq)
{
    if ((uint64_t)seq / 8 >= t->nbytes) {
        uint32_t n = t->nbytes ? t->nbytes : 16;
        while ((uint64_t)seq / 8 >= n)
            n *= 2;
        t->bits = realloc(t->bits, n);
        memset(t->bits + t->nbytes, 0, n - t->nbytes);
        t->nbytes = n;
    }
    t->bits[seq / 8] |= (uint8_t)(1u << (seq % 8));
}

/* -------------------------------------------------------------- phases --- */

struct phase {
    char name[48];
    double rate; /* open loop: messages/s; 0 = closed loop */
    int64_t t0, win0, win1, t_end;
    uint64_t sends, stored, stored_200, send_err, send_retry;
    uint64_t expected, delivered, dup, ooo, corrupt;
    uint64_t stored_in_win, delivered_in_win, inflight;
    uint64_t delivered_at_drain, expected_at_drain, dropped, unanswered;
    uint64_t lost_final; /* stored seqs a member's device never got (computed at the end) */
    bool lost_known;
    struct hist send_lat, deliver_lat, lag;
    struct psample srv0, srv1, db0, db1;
    double self0, self1;
    int64_t drain_us;
    json_t *errors;
};

#define MAX_PHASES 16
static struct phase *phases[MAX_PHASES];
static int nphases;

static struct phase *phase_new(const char *name)
{
    if (nphases == MAX_PHASES)
        die("too many phases");
    struct phase *p = calloc(1, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->errors = json_object();
    phases[nphases++] = p;
    return p;
}

static void phase_begin(struct phase *p, double warm_s, double seconds)
{
    p->t0 = now_us();
    p->win0 = p->t0 + (int64_t)(warm_s * 1e6);
    p->win1 = p->win0 + (int64_t)(seconds * 1e6);
}

/* Samples CPU/RSS at the edges of the measurement window. */
static void phase_sample(struct phase *p, bool start)
{
    if (start) {
        p->srv0 = proc_sample(opt.server_pid);
        p->db0 = proc_sample(opt.db_pid);
        p->self0 = self_cpu_s();
    } else {
        p->srv1 = proc_sample(opt.server_pid);
        p->db1 = proc_sample(opt.db_pid);
        p->self1 = self_cpu_s();
    }
}

static void phase_error(struct phase *p, const char *what, int status)
{
    char k[64];
    snprintf(k, sizeof k, "%s %d", what, status);
    json_t *v = json_object_get(p->errors, k);
    json_object_set_new(p->errors, k, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static json_t *phase_json(struct phase *p)
{
    double win = (double)(p->win1 - p->win0) / 1e6;
    double self_wall = (double)(p->srv1.wall_us - p->srv0.wall_us) / 1e6;
    uint64_t lost = p->lost_known ? p->lost_final
                                  : (p->expected > p->delivered ? p->expected - p->delivered : 0);
    /* of what was stored by the end of the drain, what came only after it */
    uint64_t upto = p->delivered < p->expected_at_drain ? p->delivered : p->expected_at_drain;
    uint64_t late = upto > p->delivered_at_drain ? upto - p->delivered_at_drain : 0;
    json_t *j = json_pack(
        "{s:s, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f,"
        " s:o, s:o, s:o, s:o, s:o, s:f, s:f, s:O}",
        "name", p->name, "rate", p->rate, "window_s", win, "sends", (json_int_t)p->sends, "stored",
        (json_int_t)p->stored, "stored_200", (json_int_t)p->stored_200, "send_errors",
        (json_int_t)p->send_err, "send_retries", (json_int_t)p->send_retry, "expected_deliveries",
        (json_int_t)p->expected, "delivered", (json_int_t)p->delivered, "lost", (json_int_t)lost,
        "duplicated", (json_int_t)p->dup, "out_of_order", (json_int_t)p->ooo, "corrupted",
        (json_int_t)p->corrupt, "stored_in_window", (json_int_t)p->stored_in_win, "stored_per_s",
        win > 0 ? (double)p->stored_in_win / win : 0.0, "deliveries_per_s",
        win > 0 ? (double)p->delivered_in_win / win : 0.0, "send_latency", hist_json(&p->send_lat),
        "deliver_latency", hist_json(&p->deliver_lat), "send_lag", hist_json(&p->lag), "server",
        proc_json(&p->srv0, &p->srv1), "db", proc_json(&p->db0, &p->db1), "loadgen_cpu_pct",
        self_wall > 0 ? (p->self1 - p->self0) / self_wall * 100.0 : 0.0, "drain_s",
        (double)p->drain_us / 1e6, "errors", p->errors);
    json_object_set_new(j, "late", json_integer((json_int_t)late));
    json_object_set_new(j, "not_sent", json_integer((json_int_t)p->dropped));
    json_object_set_new(j, "unanswered", json_integer((json_int_t)p->unanswered));
    return j;
}

/* ------------------------------------------------ fan-out bookkeeping --- */

struct fmsg {
    int64_t t_send, t_201, t_first, t_last;
    int delivered;
};
static struct fmsg *fmsgs;
static int nfmsgs;

/* ----------------------------------------------------- counters (global) -- */

static uint64_t ev_message, ev_receipt, ev_thread, ev_presence, ev_typing, ev_other;
static uint64_t poll_answers, poll_empty, foreign_msgs, cursor_resets, cursors_done;
static int devices_reading;
static int64_t last_poll_answer_us;

/* ------------------------------------------------------------- polling --- */

static void poll_issue(struct device *d);

static void poll_retry(void *arg)
{
    struct device *d = arg;
    if (d->active && !d->reading && !d->c->busy)
        poll_issue(d);
}

static void on_message(struct device *d, json_t *m, int64_t now)
{
    int64_t tid = json_integer_value(json_object_get(m, "thread_id"));
    int64_t seq = json_integer_value(json_object_get(m, "seq"));
    const char *cmid = json_string_value(json_object_get(m, "client_msg_id"));
    const char *body = json_string_value(json_object_get(m, "body"));
    int p;
    long long s, n, t;
    if (cmid == NULL || sscanf(cmid, "%d.%lld.%lld.%lld", &p, &s, &n, &t) != 4 || p < 0 ||
        p >= nphases || seq < 1) {
        foreign_msgs++;
        return;
    }
    struct phase *ph = phases[p];
    if (tmap_get(tid) == NULL) {
        foreign_msgs++;
        return;
    }
    size_t cl = strlen(cmid);
    if (body == NULL || strncmp(body, cmid, cl) != 0 || body[cl] != ' ' ||
        strcmp(body + cl + 1, FILLER) != 0)
        ph->corrupt++;
    struct tstate *ts = ts_get(d, tid);
    if (ts_has(ts, seq)) {
        ph->dup++;
        return;
    }
    ts_set(ts, seq);
    ts->got++;
    if (seq != ts->next)
        ph->ooo++;
    while (ts_has(ts, ts->next))
        ts->next++;
    ph->delivered++;
    hist_add(&ph->deliver_lat, now - t);
    if (now >= ph->win0 && now < ph->win1)
        ph->delivered_in_win++;
    if (fmsgs && n >= 0 && n < nfmsgs) {
        struct fmsg *f = &fmsgs[n];
        if (f->delivered++ == 0)
            f->t_first = now;
        f->t_last = now;
    }
}

static void poll_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c;
    struct device *d = arg;
    int64_t now = now_us();
    last_poll_answer_us = now;
    if (status != 200) {
        count_status("inbox", status);
        if (d->reading) { /* the read is over for this device */
            d->reading = false;
            devices_reading--;
            return;
        }
        if (status == 410) {
            d->have_cursor = false;
            cursor_resets++;
        }
        if (d->active)
            timer_at(now + (status == 503 ? 1000000 : 200000), poll_retry, d);
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *next = root ? json_string_value(json_object_get(root, "next")) : NULL;
    json_t *events = root ? json_object_get(root, "events") : NULL;
    if (next == NULL || !json_is_array(events) || strlen(next) >= sizeof d->cursor) {
        count_error("inbox: unreadable answer");
        json_decref(root);
        if (d->active)
            timer_at(now + 200000, poll_retry, d);
        return;
    }
    if (!d->have_cursor) {
        d->have_cursor = true;
        if (!d->counted_cursor) {
            d->counted_cursor = true;
            cursors_done++;
        }
    } else {
        poll_answers++;
        d->polls++;
        if (json_array_size(events) == 0)
            poll_empty++;
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev) {
            const char *type = json_string_value(json_object_get(ev, "type"));
            if (type == NULL)
                ev_other++;
            else if (strcmp(type, "message") == 0) {
                ev_message++;
                on_message(d, json_object_get(ev, "message"), now);
            } else if (strcmp(type, "receipt") == 0)
                ev_receipt++;
            else if (strcmp(type, "thread") == 0)
                ev_thread++;
            else if (strcmp(type, "presence") == 0)
                ev_presence++;
            else if (strcmp(type, "typing") == 0)
                ev_typing++;
            else
                ev_other++;
        }
    }
    memcpy(d->cursor, next, strlen(next) + 1);
    bool more = json_array_size(events) > 0;
    json_decref(root);
    if (d->reading) {
        if (more)
            poll_issue(d);
        else {
            d->reading = false;
            devices_reading--;
        }
    } else if (d->active)
        poll_issue(d);
}

static void poll_err(struct conn *c, int err, void *arg)
{
    (void)c;
    struct device *d = arg;
    char k[64];
    snprintf(k, sizeof k, "inbox: connection: %s", strerror(err));
    count_error(k);
    if (d->reading) {
        d->reading = false;
        devices_reading--;
        return;
    }
    if (d->active)
        timer_at(now_us() + 100000, poll_retry, d);
}

static void poll_issue(struct device *d)
{
    char path[128];
    if (!d->have_cursor)
        snprintf(path, sizeof path, "/v1/inbox");
    else
        snprintf(path, sizeof path, "/v1/inbox?since=%s&timeout=%d&limit=500", d->cursor,
                 d->reading ? 0 : opt.poll_timeout);
    conn_request(d->c, "GET", path, d->u.token, NULL, 0, poll_resp, poll_err, d);
}

/* The ramp: devices [from, to) take their first cursor and park, at most
 * opt.ramp at a time (a device leaves the ramp when its cursor arrives). */
static volatile sig_atomic_t got_term;
static int ramp_next, ramp_end, ramp_from;
static uint64_t ramp_base, ramp_target;

static void ramp_fill(void)
{
    while (ramp_next < ramp_end &&
           (uint64_t)(ramp_next - ramp_from) < (cursors_done - ramp_base) + (uint64_t)opt.ramp) {
        struct device *d = &devs[ramp_next++];
        d->active = true;
        poll_issue(d);
    }
}

static bool ramp_done(void *arg)
{
    (void)arg;
    if (got_term)
        exit(1);
    ramp_fill();
    return cursors_done >= ramp_target;
}

static void park_devices(int from, int to, double timeout_s)
{
    for (int i = from; i < to; i++)
        if (devs[i].c == NULL)
            devs[i].c = conn_new();
    ramp_next = ramp_from = from;
    ramp_end = to;
    ramp_base = cursors_done;
    ramp_target = cursors_done + (uint64_t)(to - from);
    /* Gives up after timeout_s, or after 30 s without a new cursor. */
    int64_t end = now_us() + (int64_t)(timeout_s * 1e6), last_change = now_us();
    uint64_t last = cursors_done;
    while (!loop_run(ramp_done, NULL, now_us() + 1000000)) {
        if (cursors_done != last) {
            last = cursors_done;
            last_change = now_us();
        }
        if (now_us() >= end || now_us() - last_change > 30000000)
            break;
    }
    uint64_t got = cursors_done - ramp_base;
    if (got < (uint64_t)(to - from)) {
        /* Where the devices without a cursor are: still connecting, or
         * connected with the request written and no answer. */
        int connecting = 0, waiting = 0, idle = 0, unsent = 0;
        int64_t oldest = 0, now = now_us();
        for (int i = from; i < ramp_next; i++) {
            struct device *d = &devs[i];
            if (d->have_cursor || d->counted_cursor)
                continue;
            if (d->c->state == C_CONNECTING)
                connecting++;
            else if (d->c->busy && d->c->out_len > d->c->out_off)
                unsent++;
            else if (d->c->busy)
                waiting++;
            else
                idle++;
            if (d->c->busy && now - d->c->t_sent > oldest)
                oldest = now - d->c->t_sent;
        }
        char *e = json_dumps(errors, JSON_COMPACT);
        note("ramp: only %llu of %d devices got a cursor (not started %d; connecting %d, "
             "request not fully written %d, written and unanswered %d, between tries %d; "
             "oldest request %.1f s); errors: %s",
             (unsigned long long)got, to - from, ramp_end - ramp_next, connecting, unsent, waiting,
             idle, (double)oldest / 1e6, e);
        free(e);
        count_error("ramp: devices without a cursor");
        if (got == 0)
            die("no device got an inbox cursor: is the server working?");
    }
}

/* ----------------------------------------------------- /metrics scrape --- */

static struct conn *mconn;
static int64_t metric_parked = -1;
static bool metric_busy;

static void metrics_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c, (void)arg;
    metric_busy = false;
    if (status != 200)
        return;
    const char *key = "\nchatd_parked_polls ";
    const char *p = memmem(body, len, key, strlen(key));
    if (p)
        metric_parked = strtoll(p + strlen(key), NULL, 10);
}

static void metrics_err(struct conn *c, int err, void *arg)
{
    (void)c, (void)err, (void)arg;
    metric_busy = false;
}

static int64_t parked_wanted, parked_baseline;
static int64_t next_scrape;
static bool never_parked(void *arg)
{
    (void)arg;
    return metric_parked >= 0;
}

static bool parked_done(void *arg)
{
    (void)arg;
    if (metric_parked >= parked_wanted)
        return true;
    int64_t now = now_us();
    if (!metric_busy && now >= next_scrape) {
        if (mconn == NULL)
            mconn = conn_new();
        metric_busy = true;
        next_scrape = now + 200000;
        conn_request(mconn, "GET", "/metrics", NULL, NULL, 0, metrics_resp, metrics_err, NULL);
    }
    return false;
}

/* Reads the server's parked count now, as the baseline for wait_parked()
 * (polls of an earlier client that went away stay parked until their timeout:
 * a suspended connection is not watched for a close). */
static void parked_base(void)
{
    parked_wanted = INT64_MAX;
    metric_parked = -1;
    next_scrape = 0;
    int64_t end = now_us() + 10000000;
    while (metric_parked < 0 && now_us() < end) {
        parked_done(NULL);
        loop_run(never_parked, NULL, now_us() + 50000);
    }
    parked_baseline = metric_parked > 0 ? metric_parked : 0;
}

/* Waits until the server reports at least want parked polls (more than the baseline). */
static bool wait_parked(int64_t want, double timeout_s)
{
    want += parked_baseline;
    parked_wanted = want;
    metric_parked = -1;
    next_scrape = 0;
    /* Gives up after timeout_s, or after 20 s without the count moving. */
    int64_t end = now_us() + (int64_t)(timeout_s * 1e6), last_change = now_us();
    int64_t last = metric_parked;
    bool ok;
    while (!(ok = loop_run(parked_done, NULL, now_us() + 1000000))) {
        if (metric_parked != last) {
            last = metric_parked;
            last_change = now_us();
        }
        if (now_us() >= end || now_us() - last_change > 20000000)
            break;
    }
    if (!ok)
        note("the server reports %lld parked polls, not %lld, after %.0f s",
             (long long)metric_parked, (long long)want,
             (double)(now_us() - (end - (int64_t)(timeout_s * 1e6))) / 1e6);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void run_for(double seconds) { loop_run(never, NULL, now_us() + (int64_t)(seconds * 1e6)); }

/* ------------------------------------------------------- setup requests --- */

/* A queue of setup requests (thread creation), opt.setup_conc at a time,
 * retried on 5xx and connection errors. */
struct job {
    char method[8];
    char path[96];
    const char *token;
    char *body;
    void (*done)(struct job *j, int status, json_t *answer);
    int tries;
    int a, b; /* caller's */
};
static struct job *jobs;
static int njobs, jobs_next, jobs_done;
static struct conn **job_conns;

static void job_start(struct conn *c);

static void job_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    struct job *j = arg;
    if ((status >= 500 || status == 429) && j->tries++ < 5) {
        count_status("setup retry", status);
        conn_request(c, j->method, j->path, j->token, j->body, j->body ? strlen(j->body) : 0,
                     job_resp, NULL, j);
        return;
    }
    json_t *root = json_loadb(body, len, 0, NULL);
    j->done(j, status, root);
    json_decref(root);
    jobs_done++;
    job_start(c);
}

static void job_err_retry(void *arg);

static void job_err(struct conn *c, int err, void *arg)
{
    (void)c;
    struct job *j = arg;
    char k[64];
    snprintf(k, sizeof k, "setup: connection: %s", strerror(err));
    count_error(k);
    if (j->tries++ < 5) {
        timer_at(now_us() + 200000, job_err_retry, j);
        return;
    }
    j->done(j, 0, NULL);
    jobs_done++;
}

static void job_err_retry(void *arg)
{
    struct job *j = arg;
    /* find a free connection: the one that failed is closed and idle */
    for (int i = 0; i < opt.setup_conc; i++)
        if (!job_conns[i]->busy) {
            conn_request(job_conns[i], j->method, j->path, j->token, j->body,
                         j->body ? strlen(j->body) : 0, job_resp, job_err, j);
            return;
        }
    timer_at(now_us() + 100000, job_err_retry, j);
}

static void job_start(struct conn *c)
{
    if (jobs_next >= njobs)
        return;
    struct job *j = &jobs[jobs_next++];
    conn_request(c, j->method, j->path, j->token, j->body, j->body ? strlen(j->body) : 0, job_resp,
                 job_err, j);
}

static bool jobs_finished(void *arg)
{
    (void)arg;
    return jobs_done >= njobs;
}

static void run_jobs(double timeout_s)
{
    if (job_conns == NULL) {
        job_conns = calloc((size_t)opt.setup_conc, sizeof *job_conns);
        for (int i = 0; i < opt.setup_conc; i++)
            job_conns[i] = conn_new();
    }
    jobs_next = jobs_done = 0;
    for (int i = 0; i < opt.setup_conc; i++)
        job_start(job_conns[i]);
    if (!loop_run(jobs_finished, NULL, now_us() + (int64_t)(timeout_s * 1e6)))
        die("setup: %d of %d requests done in %.0f s", jobs_done, njobs, timeout_s);
    for (int i = 0; i < njobs; i++)
        free(jobs[i].body);
    free(jobs);
    jobs = NULL;
    njobs = 0;
}

static int setup_failures;

static void thread_created(struct job *j, int status, json_t *answer)
{
    json_t *t = answer ? json_object_get(answer, "thread") : NULL;
    int64_t id = t ? json_integer_value(json_object_get(t, "id")) : 0;
    if ((status != 200 && status != 201) || id <= 0) {
        count_status("setup: create thread", status);
        setup_failures++;
        return;
    }
    thrs[j->a].id = id;
}

/* Creates thrs[i] (members already filled; the first member creates it):
 * a direct thread for two members, else a group. */
static void create_threads(void)
{
    jobs = calloc((size_t)nthrs, sizeof *jobs);
    njobs = nthrs;
    for (int i = 0; i < nthrs; i++) {
        struct thr *t = &thrs[i];
        struct job *j = &jobs[i];
        strcpy(j->method, "POST");
        strcpy(j->path, "/v1/threads");
        j->token = devs[t->members[0]].u.token;
        j->done = thread_created;
        j->a = i;
        size_t cap = 64 + (size_t)t->nmembers * 24;
        j->body = malloc(cap);
        size_t off = (size_t)snprintf(j->body, cap, "{\"member_ids\":[");
        for (int k = 1; k < t->nmembers; k++)
            off += (size_t)snprintf(j->body + off, cap - off, "%s%lld", k > 1 ? "," : "",
                                    (long long)devs[t->members[k]].u.id);
        if (t->nmembers == 2)
            snprintf(j->body + off, cap - off, "]}");
        else
            snprintf(j->body + off, cap - off, "],\"title\":\"bench group %d\"}", i);
    }
    int64_t t0 = now_us();
    run_jobs(600);
    if (setup_failures)
        die("setup: %d threads could not be created", setup_failures);
    for (int i = 0; i < nthrs; i++)
        tmap_put(thrs[i].id, i);
    note("setup: %d threads in %.1f s", nthrs, (double)(now_us() - t0) / 1e6);
}

/* --------------------------------------------------------------- users --- */

static char run_tag[16];

static void make_devices(int n)
{
    devs = calloc((size_t)n, sizeof *devs);
    ndevs = n;
    struct user *us = calloc((size_t)n, sizeof *us);
    if (opt.bare) {
        /* The bare server takes "bare-<id>" as the token of user <id>. */
        int64_t base = 1 + (int64_t)(getpid() % 4000) * 100000;
        for (int i = 0; i < n; i++) {
            us[i].id = base + i;
            snprintf(us[i].token, sizeof us[i].token, "bare-%lld", (long long)us[i].id);
        }
    } else {
        void *db = db_open(opt.db_socket, opt.db_name);
        if (db == NULL)
            die("no database (--db-socket)");
        char *hash = db_password_hash(db, SEED_USER);
        if (hash == NULL)
            die("no user %s to copy a password hash from: run `loadgen init` first", SEED_USER);
        char prefix[24];
        snprintf(prefix, sizeof prefix, "b%s_", run_tag);
        int64_t t0 = now_us();
        if (db_seed_users(db, prefix, n, hash, us) < 0)
            die("seeding %d users failed", n);
        note("seeded %d users in SQL in %.2f s", n, (double)(now_us() - t0) / 1e6);
        free(hash);
        db_close(db);
    }
    for (int i = 0; i < n; i++) {
        devs[i].idx = i;
        devs[i].u = us[i];
    }
    free(us);
}

/* --------------------------------------------------------------- sends --- */

struct sendreq {
    struct phase *ph;
    int phase_idx;
    struct thr *t;
    struct device *sender;
    uint64_t n;
    int64_t t_sched, t_issue;
    int tries;
    char cmid[80];
    struct conn *c;
    void (*done)(struct sendreq *sr); /* after the answer (or giving up) */
    void *owner;
};

static void send_issue(struct sendreq *sr);

static void send_retry_timer(void *arg) { send_issue(arg); }

static void send_finish(struct sendreq *sr)
{
    sr->ph->inflight--;
    sr->done(sr);
}

static void send_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c;
    struct sendreq *sr = arg;
    struct phase *ph = sr->ph;
    int64_t now = now_us();
    if (status == 201 || status == 200) {
        json_t *root = json_loadb(body, len, 0, NULL);
        int64_t seq = json_integer_value(json_object_get(json_object_get(root, "message"), "seq"));
        json_decref(root);
        struct thr *t = sr->t;
        if (seq < 1 || seq > (int64_t)1 << 30)
            count_error("send: answer without a seq");
        else {
            if (seq >= t->seq_cap) {
                int64_t cap = t->seq_cap ? t->seq_cap : 64;
                while (cap <= seq)
                    cap *= 2;
                t->seq_phase = realloc(t->seq_phase, (size_t)cap);
                memset(t->seq_phase + t->seq_cap, 0, (size_t)(cap - t->seq_cap));
                t->seq_cap = cap;
            }
            if (t->seq_phase[seq])
                count_error("send: two answers for one seq");
            t->seq_phase[seq] = (uint8_t)(sr->phase_idx + 1);
        }
        ph->stored++;
        if (status == 200)
            ph->stored_200++;
        ph->expected += (uint64_t)sr->t->nmembers;
        sr->t->stored++;
        hist_add(&ph->send_lat, now - sr->t_sched);
        if (now >= ph->win0 && now < ph->win1)
            ph->stored_in_win++;
        if (fmsgs && sr->n < (uint64_t)nfmsgs)
            fmsgs[sr->n].t_201 = now;
        send_finish(sr);
        return;
    }
    ph->send_err++;
    phase_error(ph, "send", status);
    if ((status >= 500 || status == 429 || status == 0) && sr->tries++ < 5) {
        ph->send_retry++;
        timer_at(now + 100000, send_retry_timer, sr);
        return;
    }
    send_finish(sr);
}

static void send_err(struct conn *c, int err, void *arg)
{
    (void)c;
    struct sendreq *sr = arg;
    char k[64];
    snprintf(k, sizeof k, "send: connection: %s", strerror(err));
    count_error(k);
    sr->ph->send_retry++;
    if (sr->tries++ < 5) {
        timer_at(now_us() + 100000, send_retry_timer, sr);
        return;
    }
    sr->ph->send_err++;
    send_finish(sr);
}

static void send_issue(struct sendreq *sr)
{
    char path[64], body[256];
    snprintf(path, sizeof path, "/v1/threads/%lld/messages", (long long)sr->t->id);
    int n = snprintf(body, sizeof body, "{\"client_msg_id\":\"%s\",\"body\":\"%s %s\"}", sr->cmid,
                     sr->cmid, FILLER);
    if (sr->tries == 0) {
        sr->t_issue = now_us();
        hist_add(&sr->ph->lag, sr->t_issue - sr->t_sched);
    }
    conn_request(sr->c, "POST", path, sr->sender->u.token, body, (size_t)n, send_resp, send_err,
                 sr);
}

/* Starts a send of message n of sender (device) into t, scheduled at t_sched. */
static void send_start(struct sendreq *sr, struct phase *ph, struct thr *t, struct device *sender,
                       uint64_t n, int64_t t_sched)
{
    sr->ph = ph;
    sr->t = t;
    sr->sender = sender;
    sr->n = n;
    sr->t_sched = t_sched;
    sr->tries = 0;
    sr->phase_idx = -1;
    for (int i = 0; i < nphases; i++)
        if (phases[i] == ph)
            sr->phase_idx = i;
    snprintf(sr->cmid, sizeof sr->cmid, "%d.%d.%llu.%lld", sr->phase_idx, sender->idx,
             (unsigned long long)n, (long long)t_sched);
    ph->sends++;
    ph->inflight++;
    send_issue(sr);
}

/* Waits until every stored message of ph reached every member device (or the
 * drain time passes) and no send is in flight. */
static struct phase *drain_ph;
static bool drained(void *arg)
{
    (void)arg;
    /* sends still unanswered are not waited for: what they stored is
     * counted when (if) their answer comes */
    return drain_ph->delivered >= drain_ph->expected;
}

static void drain(struct phase *ph)
{
    int64_t t0 = now_us();
    drain_ph = ph;
    loop_run(drained, NULL, t0 + (int64_t)(opt.drain * 1e6));
    ph->drain_us = now_us() - t0;
    ph->t_end = now_us();
    ph->delivered_at_drain = ph->delivered;
    ph->expected_at_drain = ph->expected;
}

/* At the end of a run: whatever a phase's drain did not see may still come
 * (a server far behind); wait for it a while longer, so that what is then
 * still missing is lost and what came is counted late. */
static bool all_delivered(void *arg)
{
    (void)arg;
    for (int i = 0; i < nphases; i++)
        if (phases[i]->delivered < phases[i]->expected)
            return false;
    return true;
}

static bool reads_done(void *arg)
{
    (void)arg;
    return devices_reading == 0;
}

static int stream_reads;

/* Then the devices still missing messages read their stream to its end
 * (timeout=0) on a fresh connection, the parked one closed unread: what the
 * stream holds arrives (late), and what is still missing after that was
 * never written to the member's stream — lost. */
static void read_streams(void)
{
    for (int i = 0; i < nthrs; i++) {
        struct thr *t = &thrs[i];
        for (int k = 0; k < t->nmembers; k++) {
            struct device *d = &devs[t->members[k]];
            if (d->reading || !d->have_cursor)
                continue;
            int64_t got = 0;
            for (int x = 0; x < d->nts; x++)
                if (d->ts[x].thread_id == t->id)
                    got = d->ts[x].got;
            if (got >= t->stored)
                continue;
            d->active = false;
            conn_close(d->c);
            d->c->busy = false;
            d->reading = true;
            devices_reading++;
            stream_reads++;
            poll_issue(d);
        }
    }
    if (devices_reading)
        loop_run(reads_done, NULL, now_us() + 60000000);
}

static double final_drain(void)
{
    int64_t t0 = now_us();
    loop_run(all_delivered, NULL, t0 + (int64_t)(opt.final_drain * 1e6));
    if (!all_delivered(NULL))
        read_streams();
    return (double)(now_us() - t0) / 1e6;
}

/* ------------------------------------------------------------- results --- */

static json_t *common_json(const char *mode)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:i, s:f, s:f}", "mode", mode, "label",
                     opt.label ? opt.label : "", "target", opt.bare ? "bare-mhd" : "chatd", "bare",
                     opt.bare, "poll_timeout_s", opt.poll_timeout, "drain_cap_s", opt.drain,
                     "final_drain_cap_s", opt.final_drain);
}

static json_t *events_json(void)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "message",
                     (json_int_t)ev_message, "receipt", (json_int_t)ev_receipt, "thread",
                     (json_int_t)ev_thread, "presence", (json_int_t)ev_presence, "typing",
                     (json_int_t)ev_typing, "other", (json_int_t)ev_other, "poll_answers",
                     (json_int_t)poll_answers, "poll_empty", (json_int_t)poll_empty,
                     "foreign_messages", (json_int_t)foreign_msgs, "cursor_resets",
                     (json_int_t)cursor_resets);
}

/* The end-of-run check over every thread and member device: every seq a
 * send was answered for (201/200) must be in every member device's bitmap;
 * each one missing is lost, charged to the phase that sent it. */
static json_t *final_check(void)
{
    uint64_t expected = 0, got = 0, lost = 0, gaps = 0, unacked = 0;
    for (int p = 0; p < nphases; p++) {
        phases[p]->lost_final = 0;
        phases[p]->lost_known = true;
    }
    for (int i = 0; i < nthrs; i++) {
        struct thr *t = &thrs[i];
        for (int k = 0; k < t->nmembers; k++) {
            struct device *d = &devs[t->members[k]];
            struct tstate *ts = NULL;
            for (int x = 0; x < d->nts; x++)
                if (d->ts[x].thread_id == t->id)
                    ts = &d->ts[x];
            for (int64_t seq = 1; seq < t->seq_cap; seq++) {
                if (!t->seq_phase[seq])
                    continue;
                expected++;
                if (ts && ts_has(ts, seq))
                    got++;
                else {
                    lost++;
                    int p = t->seq_phase[seq] - 1;
                    if (p >= 0 && p < nphases)
                        phases[p]->lost_final++;
                }
            }
            if (ts) {
                if (ts->next - 1 != ts->got)
                    gaps++;
                /* received, but no answer to its send was ever seen */
                for (int64_t seq = 1; seq < (int64_t)ts->nbytes * 8; seq++)
                    if (ts_has(ts, seq) && (seq >= t->seq_cap || !t->seq_phase[seq]))
                        unacked++;
            }
        }
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "expected", (json_int_t)expected, "received",
                     (json_int_t)got, "lost", (json_int_t)lost, "devices_with_gaps",
                     (json_int_t)gaps, "received_without_answer", (json_int_t)unacked);
}

static json_t *loop_json(void)
{
    return json_pack("{s:I, s:I, s:O}", "connects", (json_int_t)loop_connects, "connection_errors",
                     (json_int_t)loop_conn_errors, "errors", errors);
}

/* ---------------------------------------------------------------- init --- */

static int init_status;
static void init_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c, (void)body, (void)len, (void)arg;
    init_status = status;
}
static void init_err(struct conn *c, int err, void *arg)
{
    (void)c, (void)arg;
    init_status = -err;
}
static bool init_done(void *arg)
{
    (void)arg;
    return init_status != 0;
}

static void mode_init(void)
{
    struct conn *c = conn_new();
    const char *body = "{\"username\":\"" SEED_USER "\",\"password\":\"" SEED_PASSWORD "\"}";
    conn_request(c, "POST", "/v1/users", NULL, body, strlen(body), init_resp, init_err, NULL);
    loop_run(init_done, NULL, now_us() + 30000000);
    if (init_status != 201 && init_status != 409)
        die("registering %s answered %d", SEED_USER, init_status);
    emit(json_pack("{s:s, s:i}", "mode", "init", "status", init_status));
}

/* -------------------------------------------------- http (the ceilings) --- */

struct hclient {
    struct conn *c;
    int64_t t0;
};
static struct phase *hph;
static bool hstop;

static void http_issue(struct hclient *h);
static void http_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c, (void)body, (void)len;
    struct hclient *h = arg;
    int64_t now = now_us();
    if (status >= 200 && status < 300) {
        if (now >= hph->win0 && now < hph->win1) {
            hph->stored_in_win++;
            hist_add(&hph->send_lat, now - h->t0);
        }
    } else {
        hph->send_err++;
        phase_error(hph, "http", status);
    }
    if (!hstop)
        http_issue(h);
}
static void http_retry(void *arg) { http_issue(arg); }
static void http_err(struct conn *c, int err, void *arg)
{
    (void)c;
    hph->send_err++;
    phase_error(hph, "http connection", err);
    if (!hstop)
        timer_at(now_us() + 10000, http_retry, arg);
}
static void http_issue(struct hclient *h)
{
    h->t0 = now_us();
    conn_request(h->c, "GET", opt.path, NULL, NULL, 0, http_resp, http_err, h);
}

static void mode_http(void)
{
    struct hclient *hs = calloc((size_t)opt.conns, sizeof *hs);
    hph = phase_new("http");
    phase_begin(hph, opt.warm, opt.seconds);
    for (int i = 0; i < opt.conns; i++) {
        hs[i].c = conn_new();
        http_issue(&hs[i]);
    }
    loop_run(never, NULL, hph->win0);
    phase_sample(hph, true);
    loop_run(never, NULL, hph->win1);
    phase_sample(hph, false);
    hstop = true;
    double win = (double)(hph->win1 - hph->win0) / 1e6;
    json_t *r = common_json("http");
    json_object_set_new(r, "path", json_string(opt.path));
    json_object_set_new(r, "conns", json_integer(opt.conns));
    json_object_set_new(r, "seconds", json_real(win));
    json_object_set_new(r, "requests", json_integer((json_int_t)hph->stored_in_win));
    json_object_set_new(r, "requests_per_s", json_real((double)hph->stored_in_win / win));
    json_object_set_new(r, "latency", hist_json(&hph->send_lat));
    json_object_set_new(r, "errors", json_integer((json_int_t)hph->send_err));
    json_object_set_new(r, "error_kinds", json_incref(hph->errors));
    json_object_set_new(r, "server", proc_json(&hph->srv0, &hph->srv1));
    double wall = (double)(hph->srv1.wall_us - hph->srv0.wall_us) / 1e6;
    json_object_set_new(r, "loadgen_cpu_pct", json_real((hph->self1 - hph->self0) / wall * 100));
    emit(r);
}

/* ------------------------------------------------------------ S1: park --- */

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}
static bool termed(void *arg)
{
    (void)arg;
    return got_term;
}

/* Reads the children's "ready" bytes without blocking. */
static int *child_fds, nchildren, children_ready;
static bool *child_ready;
static bool children_parked(void *arg)
{
    (void)arg;
    for (int i = 0; i < nchildren; i++) {
        if (child_ready[i])
            continue;
        char ch;
        ssize_t n = read(child_fds[i], &ch, 1);
        if (n == 1 && ch == 'R') {
            children_ready++;
            child_ready[i] = true;
            fcntl(child_fds[i], F_SETFL, 0);
        } else if (n == 0) {
            die("a park process ended early");
        }
    }
    return children_ready >= nchildren;
}

static void mode_park(void)
{
    int n = opt.n, procs = opt.procs < 1 ? 1 : opt.procs;
    struct psample srv_before = proc_sample(opt.server_pid);
    struct psample db_before = proc_sample(opt.db_pid);
    make_devices(n);
    if (loop_init(opt.host, opt.port, NULL) < 0)
        exit(1);
    parked_base();
    conn_close(mconn);
    /* Split: process k takes devices [k*n/procs, (k+1)*n/procs). */
    int me = 0;
    pid_t *pids = calloc((size_t)procs, sizeof *pids);
    child_fds = calloc((size_t)procs, sizeof *child_fds);
    child_ready = calloc((size_t)procs, sizeof *child_ready);
    int up = -1;
    for (int k = 1; k < procs; k++) {
        signal(SIGTERM, SIG_DFL);
        int fds[2];
        if (pipe(fds) < 0)
            die("pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            signal(SIGTERM, on_term);
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
            if (getppid() == 1)
                _exit(1);
            me = k;
            close(fds[0]);
            for (int i = 0; i < nchildren; i++)
                close(child_fds[i]);
            up = fds[1];
            break;
        }
        close(fds[1]);
        pids[k] = pid;
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        child_fds[nchildren++] = fds[0];
    }
    if (me != 0)
        nchildren = 0;
    /* Each process its own source address when several are given. */
    char src[64] = "";
    if (opt.src) {
        int i = 0;
        const char *p = opt.src;
        for (; i < me && strchr(p, ','); i++)
            p = strchr(p, ',') + 1;
        snprintf(src, sizeof src, "%.*s", (int)strcspn(p, ","), p);
    }
    if (loop_init(opt.host, opt.port, src[0] ? src : NULL) < 0)
        exit(1);
    int from = (int)((int64_t)me * n / procs), to = (int)((int64_t)(me + 1) * n / procs);
    int64_t t0 = now_us();
    park_devices(from, to, 300);
    int64_t t_ramp = now_us();
    if (me != 0) {
        if (write(up, "R", 1) != 1)
            exit(1);
        loop_run(termed, NULL, 0);
        char line[512];
        int len = snprintf(line, sizeof line, "%llu %llu %llu %f\n",
                           (unsigned long long)cursors_done, (unsigned long long)poll_answers,
                           (unsigned long long)loop_conn_errors, self_cpu_s());
        if (write(up, line, (size_t)len) != len)
            exit(1);
        _exit(0);
    }
    if (!loop_run(children_parked, NULL, now_us() + 300000000))
        die("the other park processes did not get ready");
    bool all = wait_parked(n, 120);
    int64_t parked = metric_parked;
    int64_t t_parked = now_us();
    run_for(1.0); /* let the last ones settle */
    struct psample srv_after = proc_sample(opt.server_pid);
    struct psample db_idle0 = proc_sample(opt.db_pid);
    uint64_t answers0 = poll_answers;
    double self0 = self_cpu_s();
    run_for(opt.idle);
    struct psample srv_idle = proc_sample(opt.server_pid);
    struct psample db_idle1 = proc_sample(opt.db_pid);
    double self1 = self_cpu_s();
    uint64_t idle_answers = poll_answers - answers0;
    /* the final count, then stop the others */
    metric_parked = -1;
    wait_parked(n, 5);
    int64_t parked_end = metric_parked;
    uint64_t child_cursors = 0, child_answers = 0, child_errs = 0;
    double child_cpu = 0;
    for (int k = 1; k < procs; k++) {
        kill(pids[k], SIGTERM);
        int fd = child_fds[k - 1];
        char buf[512];
        ssize_t r = 0, got = 0;
        while (got < (ssize_t)sizeof buf - 1 &&
               (r = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
            got += r;
        buf[got > 0 ? got : 0] = '\0';
        unsigned long long a = 0, b = 0, c = 0;
        double cpu = 0;
        if (sscanf(buf, "%llu %llu %llu %lf", &a, &b, &c, &cpu) == 4) {
            child_cursors += a;
            child_answers += b;
            child_errs += c;
            child_cpu += cpu;
        }
        waitpid(pids[k], NULL, 0);
    }
    json_t *r = common_json("park");
    json_object_set_new(r, "n", json_integer(n));
    json_object_set_new(r, "procs", json_integer(procs));
    json_object_set_new(r, "all_parked", json_boolean(all));
    json_object_set_new(r, "parked_reported", json_integer(parked));
    json_object_set_new(r, "parked_baseline", json_integer(parked_baseline));
    json_object_set_new(r, "parked_after_idle", json_integer(parked_end));
    json_object_set_new(r, "cursors", json_integer((json_int_t)(cursors_done + child_cursors)));
    json_object_set_new(r, "ramp_s", json_real((double)(t_ramp - t0) / 1e6));
    json_object_set_new(r, "park_s", json_real((double)(t_parked - t0) / 1e6));
    json_object_set_new(r, "rss_kb_before", json_integer(srv_before.rss_kb));
    json_object_set_new(r, "rss_kb_parked", json_integer(srv_after.rss_kb));
    json_object_set_new(r, "rss_kb_after_idle", json_integer(srv_idle.rss_kb));
    double per = (double)(srv_after.rss_kb - srv_before.rss_kb) * 1024.0 / (double)n;
    json_object_set_new(r, "rss_bytes_per_poll", json_real(per));
    json_object_set_new(r, "db_rss_kb_before", json_integer(db_before.rss_kb));
    json_object_set_new(r, "db_rss_kb_parked", json_integer(db_idle0.rss_kb));
    json_object_set_new(r, "idle_s", json_real(opt.idle));
    json_object_set_new(r, "idle_cpu_pct", json_real(proc_cpu_pct(&srv_after, &srv_idle)));
    json_object_set_new(r, "idle_db_cpu_pct", json_real(proc_cpu_pct(&db_idle0, &db_idle1)));
    json_object_set_new(r, "idle_poll_answers", json_integer((json_int_t)idle_answers));
    json_object_set_new(r, "server_threads", json_integer(srv_after.threads));
    double wall = (double)(srv_idle.wall_us - srv_after.wall_us) / 1e6;
    json_object_set_new(r, "loadgen_idle_cpu_pct", json_real((self1 - self0) / wall * 100));
    json_object_set_new(r, "loadgen_cpu_s", json_real(self_cpu_s() + child_cpu));
    json_object_set_new(r, "connection_errors",
                        json_integer((json_int_t)(loop_conn_errors + child_errs)));
    json_object_set_new(r, "events", events_json());
    json_object_set_new(r, "loop", loop_json());
    (void)child_answers;
    free(pids);
    free(child_fds);
    free(child_ready);
    emit(r);
}

/* ----------------------------------------------- open loop (S2 latency) --- */

struct pool {
    struct conn **idle;
    int nidle, total;
    struct sendreq **queue; /* waiting for a connection, FIFO ring */
    size_t qhead, qlen, qcap;
};
static struct pool pool;

static void pool_done(struct sendreq *sr);

static void pool_dispatch(struct sendreq *sr)
{
    if (pool.nidle > 0) {
        sr->c = pool.idle[--pool.nidle];
        send_issue(sr);
    } else if (pool.total < opt.max_send_conns) {
        pool.total++;
        sr->c = conn_new();
        send_issue(sr);
    } else {
        if (pool.qlen == pool.qcap) {
            size_t cap = pool.qcap ? pool.qcap * 2 : 1024;
            struct sendreq **q = malloc(cap * sizeof *q);
            for (size_t i = 0; i < pool.qlen; i++)
                q[i] = pool.queue[(pool.qhead + i) % pool.qcap];
            free(pool.queue);
            pool.queue = q;
            pool.qhead = 0;
            pool.qcap = cap;
        }
        pool.queue[(pool.qhead + pool.qlen++) % pool.qcap] = sr;
    }
}

static void pool_done(struct sendreq *sr)
{
    struct conn *c = sr->c;
    free(sr);
    if (pool.qlen > 0) {
        struct sendreq *next = pool.queue[pool.qhead];
        pool.qhead = (pool.qhead + 1) % pool.qcap;
        pool.qlen--;
        next->c = c;
        send_issue(next);
        return;
    }
    if (pool.idle == NULL)
        pool.idle = calloc((size_t)opt.max_send_conns, sizeof *pool.idle);
    pool.idle[pool.nidle++] = c;
}

/* the schedule */
static struct {
    struct phase *ph;
    double rate;
    int64_t t0;
    uint64_t k, total;
    int npairs;
} sched;

static void sched_tick(void *arg)
{
    (void)arg;
    int64_t now = now_us();
    while (sched.k < sched.total) {
        int64_t at = sched.t0 + (int64_t)((double)sched.k * 1e6 / sched.rate);
        if (at > now) {
            timer_at(at, sched_tick, NULL);
            return;
        }
        uint64_t k = sched.k++;
        struct thr *t = &thrs[k % (uint64_t)sched.npairs];
        struct device *sender = &devs[t->members[(k / (uint64_t)sched.npairs) & 1]];
        struct sendreq *sr = calloc(1, sizeof *sr);
        sr->done = pool_done;
        /* send_start issues on sr->c, so pick the connection first */
        sr->ph = sched.ph;
        sr->c = NULL;
        /* fill fields, then dispatch through the pool */
        sr->t = t;
        sr->sender = sender;
        sr->n = k;
        sr->t_sched = at;
        sr->phase_idx = nphases - 1;
        snprintf(sr->cmid, sizeof sr->cmid, "%d.%d.%llu.%lld", sr->phase_idx, sender->idx,
                 (unsigned long long)k, (long long)at);
        sched.ph->sends++;
        sched.ph->inflight++;
        pool_dispatch(sr);
    }
}

static bool sched_over(void *arg)
{
    (void)arg;
    return sched.k >= sched.total;
}

static void mode_latency(void)
{
    int n = opt.n & ~1;
    make_devices(n);
    if (loop_init(opt.host, opt.port, opt.src) < 0)
        exit(1);
    nthrs = n / 2;
    thrs = calloc((size_t)nthrs, sizeof *thrs);
    for (int i = 0; i < nthrs; i++) {
        thrs[i].nmembers = 2;
        thrs[i].members = malloc(2 * sizeof(int));
        thrs[i].members[0] = 2 * i;
        thrs[i].members[1] = 2 * i + 1;
    }
    create_threads();
    int64_t t0 = now_us();
    parked_base();
    park_devices(0, n, 300);
    bool all = wait_parked(n, 120);
    double park_s = (double)(now_us() - t0) / 1e6;
    run_for(1.0);
    struct psample rss_parked = proc_sample(opt.server_pid);

    json_t *list = json_array();
    char *save = NULL, *rates = strdup(opt.rates);
    for (char *tok = strtok_r(rates, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double rate = atof(tok);
        if (rate <= 0)
            continue;
        char name[48];
        snprintf(name, sizeof name, "%.0f msg/s", rate);
        struct phase *ph = phase_new(name);
        ph->rate = rate;
        sched = (typeof(sched)){.ph = ph, .rate = rate, .npairs = nthrs};
        phase_begin(ph, 0, opt.seconds);
        sched.t0 = ph->t0;
        sched.total = (uint64_t)(rate * opt.seconds);
        phase_sample(ph, true);
        sched_tick(NULL);
        loop_run(sched_over, NULL, ph->win1 + 30000000);
        /* Sends the server could not take in time (still queued here, not
         * yet on a connection) are dropped, not sent late: the window is over. */
        ph->dropped = pool.qlen;
        for (size_t i = 0; i < pool.qlen; i++)
            free(pool.queue[(pool.qhead + i) % pool.qcap]);
        ph->inflight -= pool.qlen;
        ph->sends -= pool.qlen;
        pool.qlen = 0;
        phase_sample(ph, false);
        drain(ph);
        note("%s: stored %llu (%llu not sent), delivered %llu of %llu, p99 %lld µs", name,
             (unsigned long long)ph->stored, (unsigned long long)ph->dropped,
             (unsigned long long)ph->delivered, (unsigned long long)ph->expected,
             (long long)hist_pct(&ph->deliver_lat, 99));
        run_for(1.0); /* receipts settle */
    }
    free(rates);
    double fd = final_drain();
    json_t *fin = final_check();
    for (int i = 0; i < nphases; i++)
        json_array_append_new(list, phase_json(phases[i]));
    json_t *r = common_json("latency");
    json_object_set_new(r, "n", json_integer(n));
    json_object_set_new(r, "pairs", json_integer(nthrs));
    json_object_set_new(r, "all_parked", json_boolean(all));
    json_object_set_new(r, "park_s", json_real(park_s));
    json_object_set_new(r, "rss_kb_parked", json_integer(rss_parked.rss_kb));
    json_object_set_new(r, "send_conns", json_integer(pool.total));
    json_object_set_new(r, "phases", list);
    json_object_set_new(r, "final_drain_s", json_real(fd));
    json_object_set_new(r, "stream_reads", json_integer(stream_reads));
    json_object_set_new(r, "stream_reads_unfinished", json_integer(devices_reading));
    json_object_set_new(r, "final", fin);
    json_object_set_new(r, "events", events_json());
    json_object_set_new(r, "loop", loop_json());
    emit(r);
}

/* ------------------------------------------- closed loop (S3 throughput) --- */

struct sender {
    struct sendreq sr;
    struct thr *t;
    struct device *d;
    uint64_t n;
};
static bool senders_stop;
static struct phase *closed_ph;

static void sender_next(struct sendreq *sr)
{
    struct sender *s = sr->owner;
    if (senders_stop)
        return;
    send_start(&s->sr, closed_ph, s->t, s->d, s->n++, now_us());
}

static bool closed_inflight_zero(void *arg)
{
    (void)arg;
    return closed_ph->inflight == 0;
}

static void mode_throughput(void)
{
    int g = opt.group < 2 ? 2 : opt.group, ns = opt.senders;
    int n = g * ns;
    make_devices(n);
    if (loop_init(opt.host, opt.port, opt.src) < 0)
        exit(1);
    nthrs = ns;
    thrs = calloc((size_t)nthrs, sizeof *thrs);
    for (int i = 0; i < nthrs; i++) {
        thrs[i].nmembers = g;
        thrs[i].members = malloc((size_t)g * sizeof(int));
        for (int k = 0; k < g; k++)
            thrs[i].members[k] = i * g + k;
    }
    /* --group 1 (or 2) is 1:1: direct threads of two members */
    create_threads();
    int64_t t0 = now_us();
    parked_base();
    park_devices(0, n, 300);
    bool all = wait_parked(n, 120);
    double park_s = (double)(now_us() - t0) / 1e6;
    run_for(1.0);
    char name[48];
    snprintf(name, sizeof name, opt.group <= 2 ? "1:1" : "groups of %d", g);
    closed_ph = phase_new(name);
    struct sender *ss = calloc((size_t)ns, sizeof *ss);
    phase_begin(closed_ph, opt.warm, opt.seconds);
    for (int i = 0; i < ns; i++) {
        ss[i].t = &thrs[i];
        ss[i].d = &devs[thrs[i].members[0]];
        ss[i].sr.c = conn_new();
        ss[i].sr.done = sender_next;
        ss[i].sr.owner = &ss[i];
        send_start(&ss[i].sr, closed_ph, ss[i].t, ss[i].d, ss[i].n++, now_us());
    }
    loop_run(never, NULL, closed_ph->win0);
    phase_sample(closed_ph, true);
    loop_run(never, NULL, closed_ph->win1);
    phase_sample(closed_ph, false);
    senders_stop = true;
    loop_run(closed_inflight_zero, NULL, now_us() + (int64_t)(opt.drain * 1e6));
    closed_ph->unanswered = closed_ph->inflight;
    drain(closed_ph);
    note("%s: %.0f stored/s, %.0f deliveries/s; delivered %llu of %llu", name,
         (double)closed_ph->stored_in_win / opt.seconds,
         (double)closed_ph->delivered_in_win / opt.seconds,
         (unsigned long long)closed_ph->delivered, (unsigned long long)closed_ph->expected);
    double fd = final_drain();
    json_t *fin = final_check();
    json_t *r = common_json("throughput");
    json_object_set_new(r, "final_drain_s", json_real(fd));
    json_object_set_new(r, "stream_reads", json_integer(stream_reads));
    json_object_set_new(r, "stream_reads_unfinished", json_integer(devices_reading));
    json_object_set_new(r, "group_size", json_integer(opt.group <= 2 ? 2 : g));
    json_object_set_new(r, "direct", json_boolean(opt.group <= 2));
    json_object_set_new(r, "senders", json_integer(ns));
    json_object_set_new(r, "devices", json_integer(n));
    json_object_set_new(r, "all_parked", json_boolean(all));
    json_object_set_new(r, "park_s", json_real(park_s));
    json_object_set_new(r, "phase", phase_json(closed_ph));
    json_object_set_new(r, "final", fin);
    json_object_set_new(r, "events", events_json());
    json_object_set_new(r, "loop", loop_json());
    emit(r);
}

/* ------------------------------------------------------- S4: fan-out ---- */

static bool fan_sent;
static int fan_cur, fan_members;
static void fan_done(struct sendreq *sr)
{
    if ((int)sr->n == fan_cur)
        fan_sent = true;
}
static bool fan_all_have(void *arg)
{
    (void)arg;
    return fan_sent && fmsgs[fan_cur].delivered >= fan_members;
}
static bool quiet(void *arg)
{
    (void)arg;
    return now_us() - last_poll_answer_us > 300000;
}

static void mode_fanout(void)
{
    int m = opt.members;
    make_devices(m);
    if (loop_init(opt.host, opt.port, opt.src) < 0)
        exit(1);
    nthrs = 1;
    thrs = calloc(1, sizeof *thrs);
    thrs[0].nmembers = m;
    thrs[0].members = malloc((size_t)m * sizeof(int));
    for (int k = 0; k < m; k++)
        thrs[0].members[k] = k;
    create_threads();
    int64_t t0 = now_us();
    parked_base();
    park_devices(0, m, 300);
    bool all = wait_parked(m, 120);
    double park_s = (double)(now_us() - t0) / 1e6;
    /* Every member going online is a presence event to every other parked
     * member: let that storm pass before measuring. */
    int64_t q0 = now_us();
    run_for(1.0);
    loop_run(quiet, NULL, now_us() + (int64_t)(opt.settle * 1e6));
    double setup_quiet_s = (double)(now_us() - q0) / 1e6;
    uint64_t setup_presence = ev_presence, setup_answers = poll_answers;
    nfmsgs = opt.messages;
    fmsgs = calloc((size_t)nfmsgs, sizeof *fmsgs);
    struct phase *ph = phase_new("fan-out");
    phase_begin(ph, 0, 3600);
    phase_sample(ph, true);
    struct hist h201_last = {0}, hsend_last = {0}, hsend_201 = {0}, hsettle = {0};
    fan_members = m;
    int complete = 0;
    for (int i = 0; i < nfmsgs; i++) {
        fan_cur = i;
        fan_sent = false;
        int64_t ts = now_us();
        fmsgs[i].t_send = ts;
        /* each message its own request and connection: an unanswered one
         * (past the cap) must not hold up the next */
        struct sendreq *sr = calloc(1, sizeof *sr);
        sr->c = conn_new();
        sr->done = fan_done;
        send_start(sr, ph, &thrs[0], &devs[0], (uint64_t)i, ts);
        bool ok = loop_run(fan_all_have, NULL, ts + (int64_t)(opt.deliver_cap * 1e6));
        struct fmsg *f = &fmsgs[i];
        if (ok) {
            complete++;
            hist_add(&h201_last, f->t_last - f->t_201);
            hist_add(&hsend_last, f->t_last - f->t_send);
            hist_add(&hsend_201, f->t_201 - f->t_send);
        }
        /* the receipts that the members' acknowledgements cause, before the next one */
        q0 = now_us();
        loop_run(quiet, NULL, q0 + (int64_t)(opt.settle * 1e6));
        hist_add(&hsettle, now_us() - q0);
        if (ok)
            note("fan-out %d: 201 after %.1f ms, last member after %.1f ms from the 201; "
                 "receipts settled in %.0f ms",
                 i, (double)(f->t_201 - f->t_send) / 1e3, (double)(f->t_last - f->t_201) / 1e3,
                 (double)(now_us() - q0) / 1e3);
        else
            note(
                "fan-out %d: %s; %d of %d members had it after %.0f s; receipts settled in %.0f ms",
                i, f->t_201 ? "answered" : "no answer to the send", f->delivered, m,
                opt.deliver_cap, (double)(now_us() - q0) / 1e3);
    }
    ph->win1 = now_us();
    phase_sample(ph, false);
    drain(ph);
    double fd = final_drain();
    json_t *fin = final_check();
    json_t *r = common_json("fanout");
    json_object_set_new(r, "final_drain_s", json_real(fd));
    json_object_set_new(r, "stream_reads", json_integer(stream_reads));
    json_object_set_new(r, "stream_reads_unfinished", json_integer(devices_reading));
    json_object_set_new(r, "members", json_integer(m));
    json_object_set_new(r, "messages", json_integer(nfmsgs));
    json_object_set_new(r, "complete", json_integer(complete));
    json_object_set_new(r, "all_parked", json_boolean(all));
    json_object_set_new(r, "park_s", json_real(park_s));
    json_object_set_new(r, "from_201_to_last", hist_json(&h201_last));
    json_object_set_new(r, "from_send_to_last", hist_json(&hsend_last));
    json_object_set_new(r, "from_send_to_201", hist_json(&hsend_201));
    json_object_set_new(r, "receipts_settle", hist_json(&hsettle));
    json_object_set_new(r, "settle_cap_s", json_real(opt.settle));
    json_object_set_new(r, "deliver_cap_s", json_real(opt.deliver_cap));
    json_object_set_new(r, "setup_quiet_s", json_real(setup_quiet_s));
    json_object_set_new(r, "setup_presence_events", json_integer((json_int_t)setup_presence));
    json_object_set_new(r, "setup_poll_answers", json_integer((json_int_t)setup_answers));
    json_object_set_new(r, "phase", phase_json(ph));
    json_object_set_new(r, "final", fin);
    json_object_set_new(r, "events", events_json());
    json_object_set_new(r, "loop", loop_json());
    emit(r);
}

/* ------------------------------------------------------- S5: history ---- */

struct hreader {
    struct conn *c;
    int64_t t0, before;
    int thread;
    unsigned seed;
};
static struct phase *hist_ph;
static bool hist_stop;
static uint64_t bad_pages;

static void history_issue(struct hreader *h);
static void history_resp(struct conn *c, int status, const char *body, size_t len, void *arg)
{
    (void)c;
    struct hreader *h = arg;
    int64_t now = now_us();
    bool in = now >= hist_ph->win0 && now < hist_ph->win1;
    if (status != 200) {
        hist_ph->send_err++;
        phase_error(hist_ph, "history", status);
    } else {
        /* the page must be the 50 messages before `before`, ascending */
        json_t *root = json_loadb(body, len, 0, NULL);
        json_t *msgs = root ? json_object_get(root, "messages") : NULL;
        int64_t want = h->before - 50 < 1 ? 1 : h->before - 50;
        bool ok = json_is_array(msgs) && (int64_t)json_array_size(msgs) == h->before - want;
        for (size_t i = 0; ok && i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);
            ok = json_integer_value(json_object_get(m, "seq")) == want + (int64_t)i &&
                 json_integer_value(json_object_get(m, "thread_id")) == thrs[h->thread].id;
        }
        ok = ok && json_is_boolean(json_object_get(root, "has_more")) &&
             json_boolean_value(json_object_get(root, "has_more")) == (want > 1);
        json_decref(root);
        if (!ok)
            bad_pages++;
        if (in) {
            hist_ph->stored_in_win++;
            hist_add(&hist_ph->send_lat, now - h->t0);
        }
    }
    if (!hist_stop)
        history_issue(h);
}
static void history_retry(void *arg) { history_issue(arg); }
static void history_err(struct conn *c, int err, void *arg)
{
    (void)c;
    hist_ph->send_err++;
    phase_error(hist_ph, "history connection", err);
    if (!hist_stop)
        timer_at(now_us() + 10000, history_retry, arg);
}
static void history_issue(struct hreader *h)
{
    h->thread = (int)(rand_r(&h->seed) % (unsigned)nthrs);
    h->before = 51 + (int64_t)(rand_r(&h->seed) % (unsigned)(opt.depth - 49)); /* 51..depth+1 */
    char path[128];
    snprintf(path, sizeof path, "/v1/threads/%lld/messages?before=%lld&limit=50",
             (long long)thrs[h->thread].id, (long long)h->before);
    h->t0 = now_us();
    conn_request(h->c, "GET", path, devs[thrs[h->thread].members[h->t0 & 1]].u.token, NULL, 0,
                 history_resp, history_err, h);
}

static void mode_history(void)
{
    int nt = opt.threads;
    make_devices(2 * nt);
    if (loop_init(opt.host, opt.port, opt.src) < 0)
        exit(1);
    nthrs = nt;
    thrs = calloc((size_t)nthrs, sizeof *thrs);
    for (int i = 0; i < nthrs; i++) {
        thrs[i].nmembers = 2;
        thrs[i].members = malloc(2 * sizeof(int));
        thrs[i].members[0] = 2 * i;
        thrs[i].members[1] = 2 * i + 1;
    }
    create_threads();
    void *db = db_open(opt.db_socket, opt.db_name);
    if (db == NULL)
        die("no database");
    int64_t t0 = now_us();
    for (int i = 0; i < nthrs; i++)
        if (db_fill_history(db, thrs[i].id, devs[2 * i].u.id, devs[2 * i + 1].u.id, opt.depth) < 0)
            die("history seeding failed");
    db_close(db);
    note("history: %d threads × %d messages seeded in %.1f s", nthrs, opt.depth,
         (double)(now_us() - t0) / 1e6);
    hist_ph = phase_new("history");
    struct hreader *hs = calloc((size_t)opt.conns, sizeof *hs);
    phase_begin(hist_ph, opt.warm, opt.seconds);
    for (int i = 0; i < opt.conns; i++) {
        hs[i].c = conn_new();
        hs[i].seed = (unsigned)(i * 7919 + 1);
        history_issue(&hs[i]);
    }
    loop_run(never, NULL, hist_ph->win0);
    phase_sample(hist_ph, true);
    loop_run(never, NULL, hist_ph->win1);
    phase_sample(hist_ph, false);
    hist_stop = true;
    double win = (double)(hist_ph->win1 - hist_ph->win0) / 1e6;
    json_t *r = common_json("history");
    json_object_set_new(r, "threads", json_integer(nthrs));
    json_object_set_new(r, "depth", json_integer(opt.depth));
    json_object_set_new(r, "conns", json_integer(opt.conns));
    json_object_set_new(r, "seconds", json_real(win));
    json_object_set_new(r, "pages", json_integer((json_int_t)hist_ph->stored_in_win));
    json_object_set_new(r, "pages_per_s", json_real((double)hist_ph->stored_in_win / win));
    json_object_set_new(r, "messages_per_s", json_real((double)hist_ph->stored_in_win * 50 / win));
    json_object_set_new(r, "bad_pages", json_integer((json_int_t)bad_pages));
    json_object_set_new(r, "errors", json_integer((json_int_t)hist_ph->send_err));
    json_object_set_new(r, "error_kinds", json_incref(hist_ph->errors));
    json_object_set_new(r, "latency", hist_json(&hist_ph->send_lat));
    json_object_set_new(r, "server", proc_json(&hist_ph->srv0, &hist_ph->srv1));
    json_object_set_new(r, "db", proc_json(&hist_ph->db0, &hist_ph->db1));
    double wall = (double)(hist_ph->srv1.wall_us - hist_ph->srv0.wall_us) / 1e6;
    json_object_set_new(r, "loadgen_cpu_pct",
                        json_real((hist_ph->self1 - hist_ph->self0) / wall * 100));
    emit(r);
}

/* ---------------------------------------------------------------- main --- */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: loadgen [options] MODE\n"
        "modes: init http dbcommit park latency throughput fanout history bare-server\n"
        "  --url http://127.0.0.1:PORT   the server (IPv4 literal)\n"
        "  --src IP[,IP…]                 source addresses (park: one per process)\n"
        "  --db-socket PATH --db-name N   MariaDB for seeding (default chatbench)\n"
        "  --server-pid P --db-pid P      processes to sample (CPU, RSS)\n"
        "  --out FILE --label TEXT        result JSON and a label in it\n"
        "  --bare                         the target is `loadgen bare-server`\n"
        "  --n N --procs P --idle S       park: polls, processes, idle window\n"
        "  --rates R1,R2 --seconds S      latency: open-loop rates (msg/s), window\n"
        "  --group G --senders S          throughput: 1 = 1:1, else group size\n"
        "  --members M --messages K       fanout\n"
        "  --threads T --depth D --conns C  history (and http: --conns, --path)\n"
        "  --threads T                    dbcommit: connections\n"
        "  --warm S --drain S --final-drain S --settle S --deliver-cap S --poll-timeout S --ramp N --max-send-conns N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bare-server") == 0)
        return bare_server_main(argc - 1, argv + 1);
    signal(SIGPIPE, SIG_IGN);
    errors = json_object();
    static const struct option lo[] = {
        {"url", 1, 0, 'u'},
        {"src", 1, 0, 's'},
        {"db-socket", 1, 0, 'D'},
        {"db-name", 1, 0, 'N'},
        {"server-pid", 1, 0, 'P'},
        {"db-pid", 1, 0, 'Q'},
        {"out", 1, 0, 'o'},
        {"label", 1, 0, 'L'},
        {"bare", 0, 0, 'B'},
        {"n", 1, 0, 'n'},
        {"procs", 1, 0, 'p'},
        {"idle", 1, 0, 'i'},
        {"rates", 1, 0, 'r'},
        {"seconds", 1, 0, 'S'},
        {"group", 1, 0, 'g'},
        {"senders", 1, 0, 'e'},
        {"members", 1, 0, 'm'},
        {"messages", 1, 0, 'k'},
        {"threads", 1, 0, 't'},
        {"depth", 1, 0, 'd'},
        {"conns", 1, 0, 'c'},
        {"path", 1, 0, 'a'},
        {"warm", 1, 0, 'w'},
        {"drain", 1, 0, 'x'},
        {"poll-timeout", 1, 0, 'T'},
        {"ramp", 1, 0, 'R'},
        {"max-send-conns", 1, 0, 'M'},
        {"settle", 1, 0, 'y'},
        {"final-drain", 1, 0, 'z'},
        {"deliver-cap", 1, 0, 'C'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': {
            const char *u = optarg;
            if (strncmp(u, "http://", 7) == 0)
                u += 7;
            if (sscanf(u, "%63[0-9.]:%d", opt.host, &opt.port) != 2)
                die("--url must be http://IPv4:PORT");
            break;
        }
        case 's': opt.src = optarg; break;
        case 'D': opt.db_socket = optarg; break;
        case 'N': opt.db_name = optarg; break;
        case 'P': opt.server_pid = atoi(optarg); break;
        case 'Q': opt.db_pid = atoi(optarg); break;
        case 'o': opt.out = optarg; break;
        case 'L': opt.label = optarg; break;
        case 'B': opt.bare = true; break;
        case 'n': opt.n = atoi(optarg); break;
        case 'p': opt.procs = atoi(optarg); break;
        case 'i': opt.idle = atof(optarg); break;
        case 'r': opt.rates = optarg; break;
        case 'S': opt.seconds = atof(optarg); break;
        case 'g': opt.group = atoi(optarg); break;
        case 'e': opt.senders = atoi(optarg); break;
        case 'm': opt.members = atoi(optarg); break;
        case 'k': opt.messages = atoi(optarg); break;
        case 't': opt.threads = atoi(optarg); break;
        case 'd': opt.depth = atoi(optarg); break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'a': opt.path = optarg; break;
        case 'w': opt.warm = atof(optarg); break;
        case 'x': opt.drain = atof(optarg); break;
        case 'T': opt.poll_timeout = atoi(optarg); break;
        case 'R': opt.ramp = atoi(optarg); break;
        case 'M': opt.max_send_conns = atoi(optarg); break;
        case 'y': opt.settle = atof(optarg); break;
        case 'z': opt.final_drain = atof(optarg); break;
        case 'C': opt.deliver_cap = atof(optarg); break;
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();
    const char *mode = argv[optind];
    snprintf(run_tag, sizeof run_tag, "%x%x", (unsigned)getpid() & 0xfff,
             (unsigned)(now_us() / 1000) & 0xffff);
    if (opt.depth < 100)
        opt.depth = 100;
    if (strcmp(mode, "dbcommit") == 0) {
        json_t *r = db_commit_bench(opt.db_socket, opt.threads, opt.seconds, opt.warm);
        if (r == NULL)
            die("dbcommit failed");
        json_object_set_new(r, "label", json_string(opt.label ? opt.label : ""));
        emit(r);
        return 0;
    }
    if (strcmp(mode, "park") == 0) {
        mode_park(); /* forks before its loop starts */
        return 0;
    }
    if (strcmp(mode, "latency") != 0 && strcmp(mode, "throughput") != 0 &&
        strcmp(mode, "fanout") != 0 && strcmp(mode, "history") != 0) {
        if (loop_init(opt.host, opt.port, opt.src) < 0)
            return 1;
    }
    if (strcmp(mode, "init") == 0)
        mode_init();
    else if (strcmp(mode, "http") == 0)
        mode_http();
    else if (strcmp(mode, "latency") == 0)
        mode_latency();
    else if (strcmp(mode, "throughput") == 0)
        mode_throughput();
    else if (strcmp(mode, "fanout") == 0)
        mode_fanout();
    else if (strcmp(mode, "history") == 0)
        mode_history();
    else
        usage();
    return 0;
}
