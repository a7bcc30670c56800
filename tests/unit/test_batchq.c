/* test_batchq.c — the group-commit queue: every job pushed runs exactly
 * once, in batches of 1..limit; jobs that arrive while the workers are busy
 * gather into full batches (in order); stop refuses new jobs at once and
 * runs what is queued; a stopped or workerless queue refuses (the caller
 * then runs the job itself). Batches are held in run() by a gate the test
 * opens, so what gathers does not depend on timing. Also the sbuf JSON
 * lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/batchq.h"
#include "base/util.h"

#define PRODUCERS 4
#define PER_PRODUCER 5000
#define JOBS (PRODUCERS * PER_PRODUCER)
#define BATCH_MAX 64
#define LOGGED 16
#define GATE_WAIT_S 30 /* a bound on waiting for a worker, not a delay */

/* What run() saw, under mu. A closed gate holds every batch inside run()
 * until the test opens it: while it is shut, jobs can only queue. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ran[JOBS];
static int batches, jobs_run, biggest, too_big, empty, partial, disorder;
static int sizes[LOGGED];       /* of the first LOGGED batches */
static intptr_t firsts[LOGGED]; /* their first jobs */
static bool gate_closed;
static int at_gate; /* batches held at the gate now */

static void run(void **jobs, int n)
{
    pthread_mutex_lock(&mu);
    if (batches < LOGGED) {
        sizes[batches] = n;
        firsts[batches] = n > 0 ? (intptr_t)jobs[0] : -1;
    }
    batches++;
    jobs_run += n;
    empty += n < 1;
    too_big += n > BATCH_MAX;
    partial += n < BATCH_MAX;
    if (n > biggest)
        biggest = n;
    for (int i = 0; i < n; i++) {
        intptr_t job = (intptr_t)jobs[i];
        if (job >= 0 && job < JOBS)
            ran[job]++;
        /* within a batch, jobs keep the order they were queued in (one
         * producer here, or a producer's own jobs in a mixed batch) */
        if (i > 0 && job / PER_PRODUCER == (intptr_t)jobs[i - 1] / PER_PRODUCER &&
            job <= (intptr_t)jobs[i - 1])
            disorder++;
    }
    at_gate++;
    pthread_cond_broadcast(&cv);
    while (gate_closed)
        pthread_cond_wait(&cv, &mu);
    at_gate--;
    pthread_mutex_unlock(&mu);
}

static void reset(bool closed)
{
    pthread_mutex_lock(&mu);
    memset(ran, 0, sizeof ran);
    memset(sizes, 0, sizeof sizes);
    memset(firsts, 0, sizeof firsts);
    batches = jobs_run = biggest = too_big = empty = partial = disorder = at_gate = 0;
    gate_closed = closed;
    pthread_cond_broadcast(&cv); /* lets go of a worker a failed test left held */
    pthread_mutex_unlock(&mu);
}

static void open_gate(void)
{
    pthread_mutex_lock(&mu);
    gate_closed = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until n batches are held at the closed gate; fails after
 * GATE_WAIT_S (a worker that never comes). */
static void wait_at_gate(int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += GATE_WAIT_S;
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (at_gate < n && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &deadline);
    int got = at_gate;
    pthread_mutex_unlock(&mu);
    if (got < n)
        fail_msg("%d of %d batches reached run() within %d s", got, n, GATE_WAIT_S);
}

static struct batchq q;

static void *producer(void *arg)
{
    intptr_t base = (intptr_t)arg * PER_PRODUCER;
    for (intptr_t i = 0; i < PER_PRODUCER; i++)
        if (!batchq_push(&q, (void *)(base + i))) {
            pthread_mutex_lock(&mu);
            ran[base + i] += 100; /* refused: counted as wrong */
            pthread_mutex_unlock(&mu);
        }
    return NULL;
}

static void produce_all(void)
{
    pthread_t t[PRODUCERS];
    for (intptr_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, producer, (void *)i), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
}

/* Exact accounting once the queue is stopped: every job ran once, in
 * batches of 1..BATCH_MAX. */
static void check_every_job_ran_once(void)
{
    for (int i = 0; i < JOBS; i++)
        if (ran[i] != 1)
            fail_msg("job %d ran %d times", i, ran[i]);
    assert_int_equal(jobs_run, JOBS);
    assert_int_equal(empty, 0);
    assert_int_equal(too_big, 0);
    assert_int_equal(disorder, 0);
}

static void test_every_job_runs_once(void **state)
{
    (void)state;
    reset(false);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 2, BATCH_MAX, run), 0);
    produce_all();
    batchq_stop(&q); /* runs whatever is still queued */
    check_every_job_ran_once();
}

/* While the workers are busy, the jobs that arrive gather: the two workers
 * each take at most one batch before the gate opens; after that every batch
 * is full but the last. So at most 2 + ceil(JOBS / BATCH_MAX) batches, at
 * most 3 of them short (one at a time would be JOBS batches). */
static void test_batches_fill_up_while_workers_are_busy(void **state)
{
    (void)state;
    reset(true);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 2, BATCH_MAX, run), 0);
    produce_all(); /* each worker holds at most one batch at the gate */
    open_gate();
    batchq_stop(&q);
    check_every_job_ran_once();
    int least = (JOBS + BATCH_MAX - 1) / BATCH_MAX; /* 313 */
    assert_in_range(batches, least, 2 + least);
    assert_in_range(partial, 0, 2 + 1);
    assert_int_equal(biggest, BATCH_MAX);
}

static void test_jobs_gather_while_a_batch_runs(void **state)
{
    (void)state;
    reset(true);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 1, BATCH_MAX, run), 0);
    assert_true(batchq_push(&q, (void *)0));
    wait_at_gate(1); /* the worker took job 0 and is held in run() */
    for (intptr_t i = 1; i <= 40; i++)
        assert_true(batchq_push(&q, (void *)i));
    open_gate();
    batchq_stop(&q);
    for (int i = 0; i <= 40; i++)
        assert_int_equal(ran[i], 1);
    /* the 40 that arrived during the first batch ran as one, in order */
    assert_int_equal(batches, 2);
    assert_int_equal(sizes[0], 1);
    assert_int_equal(firsts[0], 0);
    assert_int_equal(sizes[1], 40);
    assert_int_equal(firsts[1], 1);
    assert_int_equal(disorder, 0);
}

static void *stopper(void *arg)
{
    batchq_stop(arg);
    return NULL;
}

static void test_stop_refuses_at_once_and_runs_what_is_queued(void **state)
{
    (void)state;
    reset(true);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 1, BATCH_MAX, run), 0);
    assert_true(batchq_push(&q, (void *)0));
    wait_at_gate(1);
    for (intptr_t i = 1; i <= 100; i++)
        assert_true(batchq_push(&q, (void *)i));
    /* stop while the worker is held: it waits for the worker... */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stopper, &q), 0);
    /* ...but refuses new jobs from the start (a bounded wait for that start,
     * read from the queue's private flag) */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pthread_mutex_lock(&q.mu);
        bool accepting = q.accepting;
        pthread_mutex_unlock(&q.mu);
        if (!accepting)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > GATE_WAIT_S)
            fail_msg("batchq_stop did not start within %d s", GATE_WAIT_S);
        sched_yield();
    }
    assert_false(batchq_push(&q, (void *)101));
    open_gate();
    pthread_join(t, NULL);
    for (int i = 0; i <= 100; i++)
        assert_int_equal(ran[i], 1);
    assert_int_equal(ran[101], 0);
    /* 1, then the 100 queued behind it as 64 + 36 */
    assert_int_equal(batches, 3);
    assert_int_equal(sizes[1], BATCH_MAX);
    assert_int_equal(firsts[1], 1);
    assert_int_equal(sizes[2], 100 - BATCH_MAX);
    assert_int_equal(firsts[2], 1 + BATCH_MAX);
}

static void test_stopped_or_workerless_queue_refuses(void **state)
{
    (void)state;
    reset(false);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 0, BATCH_MAX, run), 0);
    assert_false(batchq_push(&q, (void *)1));
    batchq_stop(&q);
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 1, BATCH_MAX, run), 0);
    batchq_stop(&q);
    assert_false(batchq_push(&q, (void *)1));
    assert_int_equal(ran[1], 0);
}

static void test_sbuf_lists(void **state)
{
    (void)state;
    struct sbuf b = {0};
    assert_string_equal(sb_done(&b), "[]");
    free(b.s);
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 1000; i++)
        sb_item(&b, "[%d,%lld]", i, (long long)i * 1000000007LL);
    const char *s = sb_done(&b);
    assert_non_null(s);
    assert_memory_equal(s, "[[0,0],[1,1000000007],[2,2000000014],", 37);
    assert_string_equal(s + strlen(s) - 19, "[999,999000006993]]");
    free(b.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_runs_once),
        cmocka_unit_test(test_batches_fill_up_while_workers_are_busy),
        cmocka_unit_test(test_jobs_gather_while_a_batch_runs),
        cmocka_unit_test(test_stop_refuses_at_once_and_runs_what_is_queued),
        cmocka_unit_test(test_stopped_or_workerless_queue_refuses),
        cmocka_unit_test(test_sbuf_lists),
    };
    return cmocka_run_group_tests_name("batchq", tests, NULL, NULL);
}
