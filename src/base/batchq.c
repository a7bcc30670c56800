/* batchq.c — a queue of jobs taken in batches by worker threads (batchq.h).
 * A ring buffer under one mutex; it doubles when full. */
#include "base/batchq.h"

#include <stdlib.h>

#include "base/log.h"

static void *worker_main(void *arg)
{
    struct batchq *q = arg;
    void **jobs = malloc((size_t)q->batch_max * sizeof *jobs);
    if (jobs == NULL) {
        log_error("%s: no memory for a worker", q->name);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->len == 0 && q->accepting)
            pthread_cond_wait(&q->cv, &q->mu);
        int n = 0;
        while (q->len > 0 && n < q->batch_max) {
            jobs[n++] = q->ring[q->head];
            q->head = (q->head + 1) % q->cap;
            q->len--;
        }
        pthread_mutex_unlock(&q->mu);
        if (n == 0)
            break; /* stopping, and nothing left */
        q->run(jobs, n);
    }
    free(jobs);
    return NULL;
}

int batchq_start(struct batchq *q, const char *name, int workers, int batch_max, batchq_run_fn run)
{
    q->name = name;
    q->run = run;
    q->batch_max = batch_max;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (workers == 0)
        return 0;
    q->cap = 1024;
    q->ring = malloc(q->cap * sizeof *q->ring);
    q->workers = calloc((size_t)workers, sizeof *q->workers);
    if (q->ring == NULL || q->workers == NULL)
        return -1;
    q->accepting = true;
    for (; q->nworkers < workers; q->nworkers++)
        if (pthread_create(&q->workers[q->nworkers], NULL, worker_main, q) != 0) {
            batchq_stop(q);
            return -1;
        }
    return 0;
}

bool batchq_push(struct batchq *q, void *job)
{
    pthread_mutex_lock(&q->mu);
    bool ok = q->accepting;
    if (ok && q->len == q->cap) {
        void **ring = malloc(q->cap * 2 * sizeof *ring);
        if (ring != NULL) {
            for (size_t i = 0; i < q->len; i++)
                ring[i] = q->ring[(q->head + i) % q->cap];
            free(q->ring);
            q->ring = ring;
            q->head = 0;
            q->cap *= 2;
        }
        ok = ring != NULL;
    }
    if (ok) {
        q->ring[(q->head + q->len) % q->cap] = job;
        q->len++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void batchq_stop(struct batchq *q)
{
    pthread_mutex_lock(&q->mu);
    q->accepting = false;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nworkers; i++)
        pthread_join(q->workers[i], NULL);
    q->nworkers = 0;
    free(q->workers);
    q->workers = NULL;
    free(q->ring);
    q->ring = NULL;
    q->len = q->cap = q->head = 0;
}
