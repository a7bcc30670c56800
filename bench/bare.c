/* bare.c — `loadgen bare-server`: the anchor ceiling for S1 and S2, a bare
 * libmicrohttpd long-poll server with nothing else: no database, no
 * authentication lookup, no receipts, no presence. It speaks just enough of
 * chatd's API for the same scenarios to run against it unchanged:
 *
 *   GET  /v1/inbox[?since=N&timeout=S&limit=L]   per-user event stream in memory
 *   POST /v1/threads {member_ids:[x]}             a two-member thread
 *   POST /v1/threads/{id}/messages {client_msg_id, body}
 *   GET  /healthz, GET /metrics (chatd_parked_polls)
 *
 * The token "bare-<id>" is user <id>. The daemon is configured as chatd's is
 * (epoll, suspend/resume, the same per-connection memory, a thread pool), so
 * chatd ÷ bare is what chatd adds on top of the library. */
#include "lg.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct bwait;
struct buser {
    int64_t id;
    char **evs; /* event JSON texts; position i+1 is evs[i] */
    size_t nev, cap;
    struct bwait *waiters;
};
struct bthread {
    int64_t a, b, seq;
};
struct bwait {
    struct MHD_Connection *conn;
    struct buser *u;
    int64_t deadline_ms;
    bool parked;
    struct bwait *next, *prev;   /* in the user's list */
    struct bwait *dnext, *dprev; /* in the list of all waiters */
};
struct breq {
    char *body;
    size_t len;
    struct bwait *w;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct buser **umap_v;
static int64_t *umap_k;
static size_t umap_cap, umap_n;
static struct bthread *threads;
static size_t nthreads, threads_cap;
static struct bwait *all_waiters;
static size_t nparked;
static volatile sig_atomic_t stop;

static int64_t mono_ms(void) { return now_us() / 1000; }
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct buser *user_get(int64_t id)
{
    if (umap_n * 2 >= umap_cap) {
        size_t cap = umap_cap ? umap_cap * 2 : 4096;
        int64_t *k = calloc(cap, sizeof *k);
        struct buser **v = calloc(cap, sizeof *v);
        for (size_t i = 0; i < umap_cap; i++)
            if (umap_k[i]) {
                size_t j = (size_t)(umap_k[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
                while (k[j])
                    j = (j + 1) & (cap - 1);
                k[j] = umap_k[i];
                v[j] = umap_v[i];
            }
        free(umap_k);
        free(umap_v);
        umap_k = k;
        umap_v = v;
        umap_cap = cap;
    }
    size_t j = (size_t)(id * 0x9E3779B97F4A7C15ull) & (umap_cap - 1);
    while (umap_k[j] && umap_k[j] != id)
        j = (j + 1) & (umap_cap - 1);
    if (!umap_k[j]) {
        umap_k[j] = id;
        umap_v[j] = calloc(1, sizeof **umap_v);
        umap_v[j]->id = id;
        umap_n++;
    }
    return umap_v[j];
}

static void waiter_unlink(struct bwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->u->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->dprev)
        w->dprev->dnext = w->dnext;
    else
        all_waiters = w->dnext;
    if (w->dnext)
        w->dnext->dprev = w->dprev;
    nparked--;
}

/* Under the lock: resumes a parked waiter (once). */
static void waiter_wake(struct bwait *w)
{
    if (!w->parked)
        return;
    w->parked = false;
    MHD_resume_connection(w->conn);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
                                                             MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_s(struct MHD_Connection *c, unsigned status, const char *text)
{
    return answer(c, status, strdup(text));
}

/* events after since, at most limit, as the inbox answer (lock held) */
static char *inbox_answer(struct buser *u, int64_t since, int64_t limit)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    len += (size_t)snprintf(out, cap, "{\"events\":[");
    int64_t pos = since;
    for (int64_t i = since; i < (int64_t)u->nev && i - since < limit; i++) {
        size_t el = strlen(u->evs[i]);
        if (len + el + 64 > cap) {
            while (len + el + 64 > cap)
                cap *= 2;
            out = realloc(out, cap);
        }
        if (i > since)
            out[len++] = ',';
        memcpy(out + len, u->evs[i], el);
        len += el;
        pos = i + 1;
    }
    snprintf(out + len, cap - len, "],\"next\":\"%lld\"}", (long long)pos);
    return out;
}

static int64_t query_int(struct MHD_Connection *c, const char *k, int64_t dflt)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
    return v ? strtoll(v, NULL, 10) : dflt;
}

static enum MHD_Result inbox(struct MHD_Connection *c, struct breq *rq, int64_t uid)
{
    pthread_mutex_lock(&lock);
    struct buser *u = user_get(uid);
    const char *since_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    int64_t since = since_s ? strtoll(since_s, NULL, 10) : (int64_t)u->nev;
    int64_t limit = query_int(c, "limit", 100), timeout = query_int(c, "timeout", 30);
    struct bwait *w = rq->w;
    bool may_wait = since_s && timeout > 0 && !stop && (w == NULL || mono_ms() < w->deadline_ms);
    if (since > (int64_t)u->nev || since < 0) {
        pthread_mutex_unlock(&lock);
        return answer_s(c, 410, "{\"status\":410,\"code\":\"cursor_expired\"}");
    }
    if (since < (int64_t)u->nev || !may_wait) {
        if (w) {
            waiter_unlink(w);
            free(w);
            rq->w = NULL;
        }
        char *text = inbox_answer(u, since, limit);
        pthread_mutex_unlock(&lock);
        return answer(c, 200, text);
    }
    if (w == NULL) {
        w = calloc(1, sizeof *w);
        w->conn = c;
        w->u = u;
        w->deadline_ms = mono_ms() + timeout * 1000;
        w->next = u->waiters;
        if (u->waiters)
            u->waiters->prev = w;
        u->waiters = w;
        w->dnext = all_waiters;
        if (all_waiters)
            all_waiters->dprev = w;
        all_waiters = w;
        nparked++;
        rq->w = w;
    }
    w->parked = true;
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&lock);
    return MHD_YES;
}

static enum MHD_Result create_thread(struct MHD_Connection *c, struct breq *rq, int64_t uid)
{
    json_t *root = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
    json_t *ids = root ? json_object_get(root, "member_ids") : NULL;
    int64_t other = json_integer_value(json_array_get(ids, 0));
    json_decref(root);
    if (other <= 0)
        return answer_s(c, 400, "{\"status\":400,\"code\":\"invalid_request\"}");
    pthread_mutex_lock(&lock);
    if (nthreads == threads_cap) {
        threads_cap = threads_cap ? threads_cap * 2 : 1024;
        threads = realloc(threads, threads_cap * sizeof *threads);
    }
    threads[nthreads++] = (struct bthread){uid, other, 0};
    int64_t id = (int64_t)nthreads;
    pthread_mutex_unlock(&lock);
    char *text;
    if (asprintf(&text, "{\"thread\":{\"id\":%lld,\"kind\":\"direct\",\"member_ids\":[%lld,%lld]}}",
                 (long long)id, (long long)uid, (long long)other) < 0)
        return MHD_NO;
    return answer(c, 201, text);
}

static void append_event(struct buser *u, const char *ev)
{
    if (u->nev == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->evs = realloc(u->evs, u->cap * sizeof *u->evs);
    }
    u->evs[u->nev++] = strdup(ev);
    for (struct bwait *w = u->waiters; w; w = w->next)
        waiter_wake(w);
}

static enum MHD_Result send_message(struct MHD_Connection *c, struct breq *rq, int64_t uid,
                                    int64_t tid)
{
    json_t *root = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
    const char *cmid = root ? json_string_value(json_object_get(root, "client_msg_id")) : NULL;
    const char *body = root ? json_string_value(json_object_get(root, "body")) : NULL;
    if (cmid == NULL || body == NULL) {
        json_decref(root);
        return answer_s(c, 400, "{\"status\":400,\"code\":\"invalid_request\"}");
    }
    pthread_mutex_lock(&lock);
    if (tid < 1 || tid > (int64_t)nthreads ||
        (threads[tid - 1].a != uid && threads[tid - 1].b != uid)) {
        pthread_mutex_unlock(&lock);
        json_decref(root);
        return answer_s(c, 404, "{\"status\":404,\"code\":\"not_found\"}");
    }
    struct bthread *t = &threads[tid - 1];
    int64_t seq = ++t->seq;
    json_t *msg = json_pack("{s:I, s:I, s:I, s:s, s:s, s:I}", "thread_id", (json_int_t)tid, "seq",
                            (json_int_t)seq, "sender_id", (json_int_t)uid, "client_msg_id", cmid,
                            "body", body, "created_at", (json_int_t)wall_ms());
    json_t *ev = json_pack("{s:s, s:O}", "type", "message", "message", msg);
    char *evs = json_dumps(ev, JSON_COMPACT);
    append_event(user_get(t->a), evs);
    if (t->b != t->a)
        append_event(user_get(t->b), evs);
    pthread_mutex_unlock(&lock);
    free(evs);
    json_t *out = json_pack("{s:o}", "message", msg);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    json_decref(ev);
    json_decref(root);
    return answer(c, 201, text);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version;
    struct breq *rq = *con_cls;
    if (rq == NULL) {
        *con_cls = calloc(1, sizeof *rq);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        rq->body = realloc(rq->body, rq->len + *upload_size + 1);
        memcpy(rq->body + rq->len, upload, *upload_size);
        rq->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0)
        return answer_s(c, 200, "{\"status\":\"ok\"}");
    if (strcmp(url, "/metrics") == 0) {
        pthread_mutex_lock(&lock);
        char *text;
        int n = asprintf(&text, "# bare libmicrohttpd long-poll server\nchatd_parked_polls %zu\n",
                         nparked);
        pthread_mutex_unlock(&lock);
        return n < 0 ? MHD_NO : answer(c, 200, text);
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int64_t uid = 0;
    if (auth == NULL || sscanf(auth, "Bearer bare-%lld", (long long *)&uid) != 1 || uid <= 0)
        return answer_s(c, 401, "{\"status\":401,\"code\":\"unauthorized\"}");
    long long tid;
    char tail[16];
    if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/inbox") == 0)
        return inbox(c, rq, uid);
    if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/threads") == 0)
        return create_thread(c, rq, uid);
    if (strcmp(method, "POST") == 0 && sscanf(url, "/v1/threads/%lld/%15s", &tid, tail) == 2 &&
        strcmp(tail, "messages") == 0)
        return send_message(c, rq, uid, tid);
    return answer_s(c, 404, "{\"status\":404,\"code\":\"not_found\"}");
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct breq *rq = *con_cls;
    if (rq == NULL)
        return;
    if (rq->w) {
        pthread_mutex_lock(&lock);
        waiter_unlink(rq->w);
        pthread_mutex_unlock(&lock);
        free(rq->w);
    }
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

int bare_server_main(int argc, char **argv)
{
    int port = 0, pool = 2, mem_kb = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            pool = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--conn-mem-kb") == 0)
            mem_kb = atoi(argv[i + 1]);
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    unsigned limit = rl.rlim_cur > 512 ? (unsigned)(rl.rlim_cur - 256) : 256;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(0x7f000001);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        access_cb, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)pool,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, 75u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)mem_kb * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        completed_cb, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare-server: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("bare-server: listening on http://127.0.0.1:%u\n", info ? info->port : (unsigned)port);
    fflush(stdout);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    /* The deadlines: a scan every 100 ms resumes the polls whose time is up. */
    while (!stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        int64_t now = mono_ms();
        pthread_mutex_lock(&lock);
        for (struct bwait *w = all_waiters; w; w = w->dnext)
            if (w->parked && w->deadline_ms <= now)
                waiter_wake(w);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    for (struct bwait *w = all_waiters; w; w = w->dnext)
        waiter_wake(w);
    pthread_mutex_unlock(&lock);
    MHD_quiesce_daemon(d);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    MHD_stop_daemon(d);
    return 0;
}
