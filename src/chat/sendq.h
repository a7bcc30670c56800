/* sendq.h — group commit of sends: messages sent at about the same time are
 * stored in one transaction with set-based statements (docs/group-commit.md).
 *
 * A send handler fills a struct send_job and calls sendq_submit(). With
 * workers running, the job joins a queue and the handler returns at once
 * (the answer is deferred; no HTTP thread waits on the database); a worker
 * takes every queued job, up to the batch limit, and runs them as one
 * transaction: about a dozen statements whatever the batch's size, instead of
 * a dozen per message. Each job still gets its own answer — 201, 200 for a
 * retry, 404, 403 — exactly as if it had been sent alone, and nothing is
 * answered before the commit. */
#ifndef CHAT_SENDQ_H
#define CHAT_SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

/* One message to store. The handler fills the inputs; the strings are the
 * request's and must live until the answer is sent (they do: the request
 * outlives its deferred answer). */
struct send_job {
    int64_t thread_id, sender;
    const char *client_msg_id; /* 1..64 bytes, NUL-terminated */
    const char *body;          /* UTF-8, body_len bytes */
    size_t body_len;
    int64_t arrived_us; /* mono_us() when the request arrived, for metrics */
    struct response *res;
    struct defer *defer;
    /* Filled by the batch: */
    int status;            /* 201 stored, 200 a retry, 404, 403, or a DB_E* (< 0) */
    int64_t seq, now;      /* the stored message's seq and created_at (ms) */
    struct json_t *message; /* the message (201/200), owned */
    int twin;              /* index+1 of an earlier job in the batch with the same key */
    int thread;            /* index of the job's thread in the batch's thread table */
};

/* Starts `workers` batch threads taking up to batch_max jobs at a time.
 * workers = 0 stores every send in its handler's thread, one transaction per
 * message. Returns 0, or -1 when a thread cannot start. */
int sendq_start(int workers, int batch_max);

/* Stores every job still queued, answers it, and stops the workers; sends
 * submitted afterwards run in the caller's thread. Call before http_stop(). */
void sendq_stop(void);

/* Stores job j and answers j->res: either now, in the caller's thread, or
 * later from a worker (then res->deferred is set and the handler must return
 * without touching res). Takes ownership of j (malloc'd); frees it. */
void sendq_submit(struct send_job *j);

#endif
