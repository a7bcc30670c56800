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
 * answered before the commit.
 *
 * May call: chat (model, events, attachments, mentions, search), live (hub, tail), push,
 * db, base. */
#ifndef CHAT_SENDQ_H
#define CHAT_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/batchq.h"

/* One message to store. The submitter owns the job and fills the inputs;
 * the strings are borrowed and must live until the job is done (a handler's
 * come from its request, which outlives the job). */
struct send_job {
    int64_t thread_id, sender;
    const char *client_msg_id; /* 1..64 bytes, NUL-terminated */
    const char *body;          /* UTF-8, body_len bytes */
    size_t body_len;
    int64_t arrived_us;            /* mono_us() when the request arrived, for metrics */
    const int64_t *attachment_ids; /* uploads to attach (distinct), borrowed; NULL none */
    int nattachments;
    int64_t reply_to_seq;            /* the message of the thread this one answers; 0 none */
    int64_t forward_depth;           /* > 0: a forward, this many forwards from the original */
    const char *forward_attachments; /* a forward's source attachments (JSON), borrowed; NULL */
    /* Filled by the batch: */
    int status;             /* SEND_STORED, SEND_RETRY, SEND_NOT_MEMBER, SEND_BLOCKED,
                               or a DB_E* (< 0) */
    int64_t seq, now;       /* the stored message's seq and created_at (ms) */
    int64_t expires_at;     /* ms when it disappears (the thread's timer); 0 never */
    struct json_t *message; /* the message (stored or retry), owned: sendq_job_clear */
    char *attachments;      /* the attachment views as a JSON array, owned; NULL none */
    char *reply_to;         /* the original's {sender_id, snippet, deleted}, owned; NULL */
    char *mentions;         /* {user_ids, all} as JSON, owned; NULL: mentions no one */
    /* The batch's own: */
    int twin;               /* index+1 of an earlier job in the batch with the same key */
    int thread;             /* index of the job's thread in the batch's thread table */
    struct completion done; /* called once the job is done; fn NULL when run inline */
};

/* send_job.status: stored now / stored before (a retry with the same
 * client_msg_id) / the sender is not a member of the thread (or it does not
 * exist) / a block stands between the two members of a direct thread / an
 * attachment is not the sender's complete, unexpired, unused upload / the
 * message replied to is no message of the thread (or was deleted). */
enum {
    SEND_STORED = 1,
    SEND_RETRY = 2,
    SEND_NOT_MEMBER = 3,
    SEND_BLOCKED = 4,
    SEND_BAD_ATTACHMENT = 5,
    SEND_BAD_REPLY = 6
};

/* Starts `workers` batch threads taking up to batch_max jobs at a time.
 * workers = 0 stores every send in its handler's thread, one transaction per
 * message. A send into a group of more than copy_max members is written
 * once, into the group's log (chat/events.h), instead of into every
 * member's stream; the group stays logged from then on. Returns 0, or -1
 * when a thread cannot start. Call once, before any send. */
int sendq_start(int workers, int batch_max, int copy_max);

/* Stores every job still queued, answers it, and stops the workers; sends
 * submitted afterwards run in the caller's thread. Call before http_stop(). */
void sendq_stop(void);

/* Stores job j: either now, in the caller's thread (returns true: the
 * results are filled), or later in a worker (returns false: the worker fills
 * the results and then calls done.fn(done.arg); j must live until then).
 * Any thread. */
bool sendq_submit(struct send_job *j, struct completion done);

/* Frees what a done job holds (its message); not j itself. */
void sendq_job_clear(struct send_job *j);

#endif
