/* inbox.c — GET /v1/inbox, the long-poll (API.md "The inbox").
 *
 * The handler runs several times for one request, keeping a struct
 * poll_state between runs. First run: hand the cursor check and the
 * device's acknowledgement (which moves delivered receipts) to the
 * acknowledgement batch and return HANDLER_RERUN. Second run (it is stored):
 * register with the hub, then read. Whenever a read finds nothing and the
 * poll may still wait, return HANDLER_PARK; a wake-up runs the handler again
 * (hub_begin, read, answer or park again). Registering before the first read
 * is what makes a commit between the read and the park impossible to miss.
 * The state owns the waiter: poll_end() releases it, when the poll answers
 * or, at the latest, when the request ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/acks.h"
#include "common.h"
#include "chat/events.h"
#include "handlers.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "live/tail.h"
#include "base/metrics.h"
#include "base/util.h"

/* The answer under construction: the events as JSON text (the tails' events
 * go in as they were rendered, never parsed again), and what the read found
 * for the acknowledgement batch: the newest message seq per thread, in
 * thread order. */
struct answer {
    struct sbuf text; /* `{"events":[` and the events so far */
    size_t n;         /* events in it */
    int64_t moves[8][2];
    int nmoves;
    bool unnoted; /* more than 8 threads: note nothing */
};

static void answer_init(struct answer *a)
{
    memset(a, 0, sizeof *a);
    sb_append(&a->text, "{\"events\":[", 11);
}

/* Notes message seq of thread t (an event with a message). */
static void answer_note(struct answer *a, int64_t t, int64_t seq)
{
    int k = 0;
    while (k < a->nmoves && a->moves[k][0] < t)
        k++;
    if (k < a->nmoves && a->moves[k][0] == t) {
        if (seq > a->moves[k][1])
            a->moves[k][1] = seq;
        return;
    }
    if (a->nmoves == 8) {
        a->unnoted = true; /* too many threads to note */
        return;
    }
    memmove(&a->moves[k + 1], &a->moves[k], (size_t)(a->nmoves - k) * sizeof a->moves[0]);
    a->moves[k][0] = t;
    a->moves[k][1] = seq;
    a->nmoves++;
}

/* Starts the next event: a comma after the one before. */
static void answer_next(struct answer *a)
{
    if (a->n++ > 0)
        sb_append(&a->text, ",", 1);
}

/* Appends one event's JSON text (len bytes). */
static void answer_add_text(struct answer *a, const char *json, size_t len)
{
    answer_next(a);
    sb_append(&a->text, json, len);
}

static int dump_to_sbuf(const char *buffer, size_t size, void *data)
{
    struct sbuf *b = data;
    sb_append(b, buffer, size);
    return b->failed ? -1 : 0;
}

/* Appends the events of the array (JSON values, not stolen); with note,
 * notes the messages among them. */
static void answer_add_json(struct answer *a, json_t *events, bool note)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        json_t *m = json_object_get(ev, "message");
        if (note && m)
            answer_note(a, json_integer_value(json_object_get(m, "thread_id")),
                        json_integer_value(json_object_get(m, "seq")));
        answer_next(a);
        json_dump_callback(ev, dump_to_sbuf, &a->text, JSON_COMPACT);
    }
}

/* What a poll keeps between runs of its handler. */
struct poll_state {
    bool acked;  /* the acknowledgement is stored (ack holds the result) */
    bool at_end; /* the stream was known to end at since while the
                    user's stream version was end_version */
    uint32_t end_version;
    struct ack_result ack;
    struct waiter *waiter; /* registered with the hub, or NULL */
};

/* Unregisters the poll from the hub (once). */
static void poll_end(struct request *req, struct poll_state *st)
{
    if (st->waiter)
        hub_release(st->waiter);
    st->waiter = NULL;
    req->waiter = NULL;
}

static void poll_state_free(void *p)
{
    struct poll_state *st = p;
    if (st->waiter)
        hub_release(st->waiter);
    free(st);
}

/* Answers with the events and the cursor next; frees what a holds. */
static enum handler_status answer(struct response *res, struct answer *a, int64_t next)
{
    metrics_events_delivered(a->n);
    char tail[48];
    int len = snprintf(tail, sizeof tail, "],\"next\":\"%lld\"}", (long long)next);
    sb_append(&a->text, tail, (size_t)len);
    if (a->text.failed) {
        free(a->text.s);
        return resp_internal(res);
    }
    return resp_json_text(res, 200, a->text.s, a->text.len);
}

enum handler_status inbox_get(struct request *req, struct response *res)
{
    int64_t timeout, limit, since;
    if (!req_query_int(req, res, "timeout", 30, 0, 60, &timeout) ||
        !req_query_int(req, res, "limit", 100, 1, 500, &limit))
        return HANDLER_DONE;
    const char *since_s = req_query(req, "since");
    if (since_s == NULL) {
        /* Only a poll with since acknowledges: this one reloads over REST. */
        int64_t last, pruned;
        int rc = events_head(req->user_id, &last, &pruned);
        if (rc < 0)
            return resp_db_error(res, rc);
        struct answer a;
        answer_init(&a);
        return answer(res, &a, last);
    }
    if (parse_int(since_s, &since) < 0)
        return resp_problem(res, 410, "cursor_expired", "the cursor is not one this server gave");

    struct poll_state *st = req->state;
    if (st == NULL) {
        /* First run: hand the cursor check and the acknowledgement to the
         * batch (acks.c); the handler runs again once it is stored. */
        st = calloc(1, sizeof *st);
        if (st == NULL)
            return resp_internal(res);
        req_state_set(req, st, poll_state_free);
        struct completion done = {req_defer_done, req->defer};
        if (!acks_submit(req->user_id, req->session_id, since, &st->ack, done))
            return HANDLER_RERUN;
    }
    if (!st->acked) {
        st->acked = true;
        if (st->ack.rc == ACK_CURSOR_EXPIRED)
            return resp_problem(res, 410, "cursor_expired",
                                "the cursor is unknown or too old; reload over REST and poll "
                                "without since");
        if (st->ack.rc < 0)
            return resp_db_error(res, st->ack.rc);
        if (timeout > 0) {
            st->waiter = hub_register(req->user_id, req->session_id, mono_ms() + timeout * 1000);
            if (st->waiter == NULL)
                return resp_internal(res);
            hub_set_cursor(st->waiter, since);
            req->waiter = st->waiter;
        }
        st->at_end = st->ack.stream_end == since;
        st->end_version = st->ack.version;
    }
    if (st->waiter) {
        hub_begin(st->waiter);
        if (hub_revoked(st->waiter)) {
            poll_end(req, st);
            return resp_problem(res, 401, "unauthorized", "this device was logged out");
        }
    }
    int64_t next = since;
    /* When the stream ended at `since` (as the acknowledgement found, or a
     * read of the database that found nothing) and nothing was appended
     * since (the version has not moved; we are registered, so a later
     * append wakes us), there is nothing to read: a poll woken for an
     * ephemeral event, or right after the acknowledgement. */
    /* On a cluster that holds only while the bus carries other nodes' wakes. */
    bool at_end = st->at_end && hub_stream_version(req->user_id) == st->end_version &&
                  (!cluster_enabled() || cluster_healthy());
    /* A woken poll finds what woke it in the in-memory tail; otherwise (or
     * when the tail misses the next position) the database. */
    struct answer a;
    answer_init(&a);
    struct tail_blob *got[TAIL_EVENTS];
    int n = at_end ? 0 : tail_read(req->user_id, since, (int)limit, got, &next);
    for (int i = 0; i < n; i++) {
        if (got[i]->thread_id)
            answer_note(&a, got[i]->thread_id, got[i]->seq);
        answer_add_text(&a, got[i]->json, got[i]->len);
        tail_blob_unref(got[i]);
    }
    if (!at_end && n == 0) {
        json_t *events = json_array();
        uint32_t version = hub_stream_version(req->user_id); /* before the read */
        int rc = events_read(req->user_id, since, (int)limit, events, &next);
        if (rc < 0) {
            json_decref(events);
            free(a.text.s);
            poll_end(req, st);
            return resp_db_error(res, rc);
        }
        if (json_array_size(events) == 0) {
            st->at_end = true;
            st->end_version = version;
        }
        answer_add_json(&a, events, true);
        json_decref(events);
    }
    if (!a.unnoted)
        acks_note_read(req->user_id, since, next, (const int64_t(*)[2])a.moves, a.nmoves);
    if (st->waiter) {
        json_t *ephemeral = hub_take_ephemeral(st->waiter);
        answer_add_json(&a, ephemeral, false);
        json_decref(ephemeral);
        if (a.n == 0 && !hub_should_answer(st->waiter)) {
            free(a.text.s);
            return HANDLER_PARK;
        }
        poll_end(req, st);
    }
    return answer(res, &a, next);
}
