/* test_deadline.c — absolute deadlines for reading a request: a connection
 * past its phase's deadline has its socket shut down (the peer of a
 * socketpair sees end of file), however recently it moved within the
 * phase; DL_NONE never expires; entering the phase a connection is in
 * keeps its start, entering another restarts the clock; a closed entry is
 * never touched. Durations are a few hundred ms; the waits are bounded
 * polls, not sleeps that decide the outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "http/deadline.h"

#define HEADERS_MS 400
#define BODY_MS 1200
#define IDLE_MS 2000

struct pair {
    int ours, peer; /* ours is what the module may shut down */
    struct dl_entry e;
};

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->ours = sv[0];
    p->peer = sv[1];
    deadline_open(&p->e, p->ours);
}

static void pair_close(struct pair *p)
{
    deadline_close(&p->e);
    close(p->ours);
    close(p->peer);
}

/* True when the peer sees end of file within ms. */
static bool cut_within(struct pair *p, int ms)
{
    struct pollfd pfd = {.fd = p->peer, .events = POLLIN};
    int64_t end = mono_ms() + ms;
    for (;;) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return false;
        if (poll(&pfd, 1, (int)left) > 0) {
            char c;
            return read(p->peer, &c, 1) == 0;
        }
    }
}

static void headers_deadline_cuts(void **st)
{
    (void)st;
    struct pair p;
    uint64_t before = deadline_cuts();
    int64_t t0 = mono_ms();
    pair_open(&p);
    assert_true(cut_within(&p, HEADERS_MS + 2000));
    assert_true(mono_ms() - t0 >= HEADERS_MS - 10);
    assert_true(deadline_cuts() > before);
    deadline_enter(&p.e, DL_BODY); /* a cut connection stays out */
    pair_close(&p);
}

static void reentering_a_phase_keeps_its_start(void **st)
{
    (void)st;
    struct pair p;
    int64_t t0 = mono_ms();
    pair_open(&p);
    /* the request line arrives: still the same header deadline */
    for (int i = 0; i < 5; i++) {
        deadline_enter(&p.e, DL_HEADERS);
        assert_false(cut_within(&p, 20));
    }
    assert_true(cut_within(&p, HEADERS_MS + 2000));
    assert_true(mono_ms() - t0 < BODY_MS);
    pair_close(&p);
}

static void body_and_idle_restart_the_clock(void **st)
{
    (void)st;
    struct pair p;
    pair_open(&p);
    assert_false(cut_within(&p, HEADERS_MS / 2));
    int64_t t0 = mono_ms();
    deadline_enter(&p.e, DL_BODY);
    assert_false(cut_within(&p, HEADERS_MS + 200)); /* past the header deadline */
    assert_true(cut_within(&p, BODY_MS + 2000));
    assert_true(mono_ms() - t0 >= BODY_MS - 10);
    pair_close(&p);

    pair_open(&p);
    t0 = mono_ms();
    deadline_enter(&p.e, DL_IDLE);
    assert_false(cut_within(&p, BODY_MS + 200));
    assert_true(cut_within(&p, IDLE_MS + 2000));
    assert_true(mono_ms() - t0 >= IDLE_MS - 10);
    pair_close(&p);
}

static void no_deadline_while_handled(void **st)
{
    (void)st;
    struct pair p;
    pair_open(&p);
    deadline_enter(&p.e, DL_NONE);
    assert_false(cut_within(&p, IDLE_MS + 300));
    pair_close(&p);
}

static void closed_entries_are_forgotten(void **st)
{
    (void)st;
    /* Many connections that open and close within their deadline: none is
     * cut, and the lists stay consistent (ASan would see a stale entry). */
    for (int i = 0; i < 200; i++) {
        struct pair p;
        pair_open(&p);
        deadline_enter(&p.e, i % 2 ? DL_BODY : DL_IDLE);
        pair_close(&p);
    }
    struct pair last;
    pair_open(&last);
    assert_true(cut_within(&last, HEADERS_MS + 2000));
    pair_close(&last);
}

int main(void)
{
    if (deadline_start(HEADERS_MS, BODY_MS, IDLE_MS) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_deadline_cuts),
        cmocka_unit_test(reentering_a_phase_keeps_its_start),
        cmocka_unit_test(body_and_idle_restart_the_clock),
        cmocka_unit_test(no_deadline_while_handled),
        cmocka_unit_test(closed_entries_are_forgotten),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    deadline_stop();
    return rc;
}
