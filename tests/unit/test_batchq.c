/* test_batchq.c — the group-commit queue: every job pushed runs exactly
 * once, batches never exceed the limit, jobs that arrive while a batch runs
 * gather into the next one, stop runs what is queued, and a stopped queue
 * refuses (the caller then runs the job itself). Also the sbuf JSON lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/batchq.h"
#include "base/util.h"

#define PRODUCERS 4
#define PER_PRODUCER 5000
#define BATCH_MAX 64

static _Atomic int ran[PRODUCERS * PER_PRODUCER];
static _Atomic int batches, biggest, too_big;
static _Atomic int slow_ms;

static void run(void **jobs, int n)
{
    atomic_fetch_add(&batches, 1);
    if (n > BATCH_MAX)
        atomic_fetch_add(&too_big, 1);
    int b = atomic_load(&biggest);
    while (n > b && !atomic_compare_exchange_weak(&biggest, &b, n))
        ;
    for (int i = 0; i < n; i++)
        atomic_fetch_add(&ran[(intptr_t)jobs[i]], 1);
    if (atomic_load(&slow_ms))
        usleep((useconds_t)atomic_load(&slow_ms) * 1000);
}

static void reset(void)
{
    memset(ran, 0, sizeof ran);
    batches = biggest = too_big = slow_ms = 0;
}

static struct batchq q;

static void *producer(void *arg)
{
    intptr_t base = (intptr_t)arg * PER_PRODUCER;
    for (intptr_t i = 0; i < PER_PRODUCER; i++)
        if (!batchq_push(&q, (void *)(base + i)))
            atomic_fetch_add(&ran[base + i], 100); /* refused: counted as wrong */
    return NULL;
}

static void test_every_job_runs_once(void **state)
{
    (void)state;
    reset();
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 2, BATCH_MAX, run), 0);
    pthread_t t[PRODUCERS];
    for (intptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    batchq_stop(&q); /* runs whatever is still queued */
    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        assert_int_equal(ran[i], 1);
    assert_int_equal(too_big, 0);
    assert_true(batches <= PRODUCERS * PER_PRODUCER);
}

static void test_jobs_gather_while_a_batch_runs(void **state)
{
    (void)state;
    reset();
    memset(&q, 0, sizeof q);
    assert_int_equal(batchq_start(&q, "test", 1, BATCH_MAX, run), 0);
    slow_ms = 100;
    assert_true(batchq_push(&q, (void *)0)); /* the worker takes it and sleeps */
    for (int i = 0; i < 5000 && atomic_load(&ran[0]) == 0; i++)
        usleep(1000);
    assert_int_equal(ran[0], 1);
    for (intptr_t i = 1; i <= 40; i++)
        assert_true(batchq_push(&q, (void *)i));
    batchq_stop(&q);
    for (int i = 0; i <= 40; i++)
        assert_int_equal(ran[i], 1);
    /* the 40 that arrived during the first batch ran as one */
    assert_int_equal(batches, 2);
    assert_int_equal(biggest, 40);
}

static void test_stopped_or_workerless_queue_refuses(void **state)
{
    (void)state;
    reset();
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
        cmocka_unit_test(test_jobs_gather_while_a_batch_runs),
        cmocka_unit_test(test_stopped_or_workerless_queue_refuses),
        cmocka_unit_test(test_sbuf_lists),
    };
    return cmocka_run_group_tests_name("batchq", tests, NULL, NULL);
}
