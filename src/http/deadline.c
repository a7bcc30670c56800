/* deadline.c — absolute deadlines for reading a request (deadline.h).
 *
 * One mutex over DL_NPHASES doubly linked lists, one per phase with a
 * deadline; the watcher pops expired entries from the heads. A cut entry
 * leaves every list (phase DL_NONE, fd -1), so later phase changes of its
 * connection, which libmicrohttpd is closing by then, change nothing. */
#include "http/deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

#define TICK_MS 100

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct dl_entry *head[DL_NPHASES], *tail[DL_NPHASES];
static int64_t duration_ms[DL_NPHASES];
static bool stopping, started;
static pthread_t watcher;
static _Atomic uint64_t cuts;

static void unlink_locked(struct dl_entry *e)
{
    if (e->phase == DL_NONE)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        head[e->phase] = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        tail[e->phase] = e->prev;
    e->prev = e->next = NULL;
    e->phase = DL_NONE;
}

static void link_locked(struct dl_entry *e, enum dl_phase phase)
{
    e->phase = phase;
    e->since_ms = mono_ms();
    if (phase == DL_NONE)
        return;
    e->prev = tail[phase];
    e->next = NULL;
    if (tail[phase])
        tail[phase]->next = e;
    else
        head[phase] = e;
    tail[phase] = e;
}

static void *watch_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        int64_t now = mono_ms();
        for (int p = DL_NONE + 1; p < DL_NPHASES; p++)
            while (head[p] && now - head[p]->since_ms >= duration_ms[p]) {
                struct dl_entry *e = head[p];
                unlink_locked(e);
                /* Counted first, so that whoever sees the cut sees it
                 * counted. The socket is still open: deadline_close() runs
                 * before it is closed, and takes this lock. */
                atomic_fetch_add(&cuts, 1);
                shutdown(e->fd, SHUT_RDWR);
                e->fd = -1;
            }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int deadline_start(int64_t headers_ms, int64_t body_ms, int64_t idle_ms)
{
    duration_ms[DL_HEADERS] = headers_ms;
    duration_ms[DL_BODY] = body_ms;
    duration_ms[DL_IDLE] = idle_ms;
    if (pthread_create(&watcher, NULL, watch_main, NULL) != 0) {
        log_error("deadline: cannot start the watcher");
        return -1;
    }
    started = true;
    return 0;
}

void deadline_open(struct dl_entry *e, int fd)
{
    pthread_mutex_lock(&mu);
    e->fd = fd;
    e->prev = e->next = NULL;
    link_locked(e, DL_HEADERS);
    pthread_mutex_unlock(&mu);
}

void deadline_enter(struct dl_entry *e, enum dl_phase phase)
{
    pthread_mutex_lock(&mu);
    if (e->fd >= 0 && e->phase != phase) {
        unlink_locked(e);
        link_locked(e, phase);
    }
    pthread_mutex_unlock(&mu);
}

void deadline_close(struct dl_entry *e)
{
    pthread_mutex_lock(&mu);
    unlink_locked(e);
    e->fd = -1;
    pthread_mutex_unlock(&mu);
}

uint64_t deadline_cuts(void) { return atomic_load(&cuts); }

void deadline_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(watcher, NULL);
    started = false;
}
