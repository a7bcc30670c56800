/* loop.c — the load generator's event loop: one epoll set, non-blocking
 * HTTP/1.1 keep-alive client connections (one request at a time each, no
 * pipelining), a tiny response parser (status line, Content-Length,
 * Connection: close) and a timer heap.
 *
 * Connections are never freed during a run: the owner keeps its struct conn
 * and a request on a closed one reconnects. epoll's data carries the
 * connection's index and generation, so an event that belongs to an fd
 * closed earlier in the same batch is recognised and dropped. */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_HEADER 65536

uint64_t loop_conn_errors, loop_connects, loop_open_conns;

static int epfd = -1;
static struct sockaddr_in server;
static char host_hdr[64];
static struct in_addr *srcs;
static int nsrcs;
static struct conn **conns;
static uint32_t nconns, conns_cap;

int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------- timers --- */

struct timer {
    int64_t at;
    uint64_t order;
    void (*fn)(void *);
    void *arg;
};
static struct timer *theap;
static size_t tlen, tcap;
static uint64_t torder;

static bool tless(const struct timer *a, const struct timer *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

void timer_at(int64_t at_us, void (*fn)(void *), void *arg)
{
    if (tlen == tcap) {
        tcap = tcap ? tcap * 2 : 256;
        theap = realloc(theap, tcap * sizeof *theap);
        if (theap == NULL) {
            perror("loadgen: timers");
            exit(1);
        }
    }
    size_t i = tlen++;
    theap[i] = (struct timer){at_us, torder++, fn, arg};
    while (i > 0 && tless(&theap[i], &theap[(i - 1) / 2])) {
        struct timer t = theap[i];
        theap[i] = theap[(i - 1) / 2];
        theap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct timer timer_pop(void)
{
    struct timer top = theap[0];
    theap[0] = theap[--tlen];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < tlen && tless(&theap[l], &theap[m]))
            m = l;
        if (r < tlen && tless(&theap[r], &theap[m]))
            m = r;
        if (m == i)
            break;
        struct timer t = theap[i];
        theap[i] = theap[m];
        theap[m] = t;
        i = m;
    }
    return top;
}

/* -------------------------------------------------------- connections --- */

int loop_init(const char *host, int port, const char *src_ips)
{
    if (epfd >= 0)
        close(epfd); /* a forked child starts its own set */
    free(srcs);
    srcs = NULL;
    nsrcs = 0;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("loadgen: epoll_create1");
        return -1;
    }
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "loadgen: host must be an IPv4 address, not %s\n", host);
        return -1;
    }
    snprintf(host_hdr, sizeof host_hdr, "%s:%d", host, port);
    if (src_ips && *src_ips) {
        char *copy = strdup(src_ips), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            srcs = realloc(srcs, (size_t)(nsrcs + 1) * sizeof *srcs);
            if (inet_pton(AF_INET, t, &srcs[nsrcs]) != 1) {
                fprintf(stderr, "loadgen: bad source address %s\n", t);
                free(copy);
                return -1;
            }
            nsrcs++;
        }
        free(copy);
    }
    return 0;
}

struct conn *conn_new(void)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        perror("loadgen: conn");
        exit(1);
    }
    if (nconns == conns_cap) {
        conns_cap = conns_cap ? conns_cap * 2 : 1024;
        conns = realloc(conns, conns_cap * sizeof *conns);
        if (conns == NULL) {
            perror("loadgen: conns");
            exit(1);
        }
    }
    c->id = nconns;
    conns[nconns++] = c;
    c->fd = -1;
    c->src = nsrcs ? (int)(c->id % (uint32_t)nsrcs) : -1;
    return c;
}

static void set_mask(struct conn *c, uint32_t mask)
{
    if (c->evmask == mask)
        return;
    struct epoll_event ev = {.events = mask, .data.u64 = ((uint64_t)c->gen << 32) | c->id};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->evmask = mask;
}

void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        loop_open_conns--;
    }
    c->gen++;
    c->state = C_CLOSED;
    c->in_len = 0;
    c->close_after = false;
}

/* Closes c after a failure and tells the owner when a request was outstanding. */
static void conn_fail(struct conn *c, int err)
{
    bool had = c->busy;
    conn_close(c);
    c->busy = false;
    c->out_len = c->out_off = 0;
    loop_conn_errors++;
    if (had && c->on_err)
        c->on_err(c, err, c->arg);
}

static int conn_connect(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->src >= 0) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = srcs[c->src]};
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    int rc = connect(fd, (struct sockaddr *)&server, sizeof server);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->fd = fd;
    c->state = rc == 0 ? C_OPEN : C_CONNECTING;
    c->gen++;
    c->evmask = EPOLLIN | EPOLLOUT;
    struct epoll_event ev = {.events = c->evmask, .data.u64 = ((uint64_t)c->gen << 32) | c->id};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        close(fd);
        c->fd = -1;
        c->state = C_CLOSED;
        return -e;
    }
    loop_connects++;
    loop_open_conns++;
    return 0;
}

static void out_append(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + n)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (c->out == NULL) {
            perror("loadgen: out");
            exit(1);
        }
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

/* Writes what is pending; 0, or -errno. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_mask(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    set_mask(c, EPOLLIN);
    return 0;
}

int conn_request(struct conn *c, const char *method, const char *path, const char *token,
                 const char *body, size_t blen, resp_fn on_resp, err_fn on_err, void *arg)
{
    if (c->busy) {
        fprintf(stderr, "loadgen: bug: request on a busy connection\n");
        abort();
    }
    c->on_resp = on_resp;
    c->on_err = on_err;
    c->arg = arg;
    c->out_len = c->out_off = 0;
    char head[512];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host_hdr);
    out_append(c, head, (size_t)n);
    if (token) {
        n = snprintf(head, sizeof head, "Authorization: Bearer %s\r\n", token);
        out_append(c, head, (size_t)n);
    }
    if (body) {
        n = snprintf(head, sizeof head,
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
        out_append(c, head, (size_t)n);
        out_append(c, body, blen);
    } else {
        out_append(c, "\r\n", 2);
    }
    c->busy = true;
    c->nreq++;
    c->t_sent = now_us();
    if (c->state == C_CLOSED) {
        int rc = conn_connect(c);
        if (rc < 0) {
            c->busy = false;
            loop_conn_errors++;
            /* Owners retry from a timer, never from on_err directly. */
            if (on_err)
                on_err(c, -rc, arg);
            return -1;
        }
        if (c->state == C_CONNECTING)
            return 0;
    }
    if (c->state == C_OPEN) {
        int rc = conn_flush(c);
        if (rc < 0) {
            conn_fail(c, -rc);
            return -1;
        }
    }
    return 0;
}

/* Parses a complete answer at the head of c->in; returns its total length,
 * 0 when more bytes are needed, -1 on a malformed answer. */
static long parse_response(struct conn *c, int *status, size_t *body_off, size_t *body_len)
{
    char *p = c->in;
    size_t len = c->in_len;
    char *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > MAX_HEADER ? -1 : 0;
    size_t hlen = (size_t)(end - p) + 4;
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(p + 9);
    long clen = -1;
    c->close_after = false;
    for (char *line = memchr(p, '\n', hlen); line && line < end;
         line = memchr(line, '\n', (size_t)(end - line))) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "connection:", 11) == 0) {
            const char *v = line + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                c->close_after = true;
        }
    }
    if (clen < 0)
        clen = 0; /* chatd always sends Content-Length; 204/304 have none */
    if (len < hlen + (size_t)clen)
        return 0;
    *body_off = hlen;
    *body_len = (size_t)clen;
    return (long)(hlen + (size_t)clen);
}

static void conn_readable(struct conn *c)
{
    uint32_t gen = c->gen;
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 32768;
            c->in = realloc(c->in, c->in_cap);
            if (c->in == NULL) {
                perror("loadgen: in");
                exit(1);
            }
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            conn_fail(c, errno);
            return;
        }
        if (n == 0) {
            if (c->busy)
                conn_fail(c, ECONNRESET);
            else
                conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        if ((size_t)n < c->in_cap - c->in_len + (size_t)n)
            break; /* short read: the socket is drained */
    }
    for (;;) {
        int status = 0;
        size_t boff = 0, blen = 0;
        long total = parse_response(c, &status, &boff, &blen);
        if (total == 0)
            return;
        if (total < 0) {
            conn_fail(c, EPROTO);
            return;
        }
        if (!c->busy) { /* an answer nobody asked for */
            conn_fail(c, EPROTO);
            return;
        }
        c->busy = false;
        /* Detach the buffer: the callback may issue the next request on c
         * (which writes only to c->out) or close c; the answer stays valid. */
        char *in = c->in;
        size_t in_len = c->in_len, in_cap = c->in_cap;
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        if (c->close_after)
            conn_close(c); /* a request from the callback opens a new one */
        resp_fn fn = c->on_resp;
        if (fn)
            fn(c, status, in + boff, blen, c->arg);
        size_t rest = in_len - (size_t)total;
        if (c->gen != gen || c->in != NULL) {
            free(in);
            return;
        }
        /* Give the buffer back, keeping any bytes after this answer. */
        memmove(in, in + total, rest);
        c->in = in;
        c->in_len = rest;
        c->in_cap = in_cap;
        if (rest == 0)
            return;
    }
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_fail(c, err);
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        c->state = C_OPEN;
        c->out_off = 0;
        int rc = conn_flush(c);
        if (rc < 0) {
            conn_fail(c, -rc);
            return;
        }
    }
    if (events & EPOLLOUT && c->state == C_OPEN && c->out_len > c->out_off) {
        int rc = conn_flush(c);
        if (rc < 0) {
            conn_fail(c, -rc);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(c);
}

bool loop_run(until_fn done, void *arg, int64_t deadline_us)
{
    struct epoll_event evs[512];
    for (;;) {
        if (done && done(arg))
            return true;
        int64_t now = now_us();
        if (deadline_us && now >= deadline_us)
            return false;
        /* Timers that are due. */
        while (tlen > 0 && theap[0].at <= now) {
            struct timer t = timer_pop();
            t.fn(t.arg);
        }
        if (done && done(arg))
            return true;
        int64_t wait = 100000;
        if (tlen > 0 && theap[0].at - now < wait)
            wait = theap[0].at - now;
        if (deadline_us && deadline_us - now < wait)
            wait = deadline_us - now;
        if (wait < 0)
            wait = 0;
        struct timespec ts = {(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000};
        int n = epoll_pwait2(epfd, evs, 512, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            n = epoll_wait(epfd, evs, 512, (int)((wait + 999) / 1000));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            uint32_t id = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
            if (id >= nconns)
                continue;
            struct conn *c = conns[id];
            if (c->gen != gen || c->fd < 0)
                continue;
            conn_event(c, evs[i].events);
        }
    }
}
