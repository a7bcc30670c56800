/* batchq.h — a queue of jobs taken in batches by worker threads: the
 * machinery of group commit (docs/group-commit.md).
 *
 * Producers (HTTP threads) push jobs and return; each worker takes every job
 * queued, up to the batch limit, and hands the array to run(), which stores
 * them in one transaction and answers each. While one batch runs, the next
 * one gathers, so under load a batch is everything that arrived during the
 * previous commit, and when idle a batch is one job with no added wait.
 *
 * May call: base/log, libc (pthreads). */
#ifndef CHAT_BATCHQ_H
#define CHAT_BATCHQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* What a worker calls once a job handed to it is finished: fn(arg), exactly
 * once, from the worker's thread; the submitter's memory that the job writes
 * its result to must live until then. The HTTP glue's is req_defer_done. */
struct completion {
    void (*fn)(void *arg);
    void *arg;
};

/* Runs a batch: jobs[0..n), n ≥ 1, in the worker's thread. It owns the
 * jobs from then on. */
typedef void (*batchq_run_fn)(void **jobs, int n);

struct batchq {
    const char *name; /* for logs */
    batchq_run_fn run;
    int batch_max;
    /* private */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **ring;
    size_t head, len, cap;
    pthread_t *workers;
    int nworkers;
    bool accepting;
};

/* Starts `workers` threads (0: none, and every push is refused). Returns 0,
 * or -1 when memory or a thread cannot be had. */
int batchq_start(struct batchq *q, const char *name, int workers, int batch_max, batchq_run_fn run);

/* Queues job; returns true, or false when the queue is stopped (or was never
 * started, or memory is short): the caller then runs the job itself. */
bool batchq_push(struct batchq *q, void *job);

/* Refuses new jobs, lets the workers run every job already queued, and
 * joins them. */
void batchq_stop(struct batchq *q);

#endif
