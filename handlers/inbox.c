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

/* Notes for the acknowledgement batch what this read found: the newest
 * message seq per thread among events (in thread order). */
static void note_read(int64_t user_id, int64_t since, int64_t next, json_t *events)
{
    int64_t moves[8][2];
    int n = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        json_t *m = json_object_get(ev, "message");
        if (m == NULL)
            continue;
        int64_t t = json_integer_value(json_object_get(m, "thread_id"));
        int64_t seq = json_integer_value(json_object_get(m, "seq"));
        int k = 0;
        while (k < n && moves[k][0] < t)
            k++;
        if (k < n && moves[k][0] == t) {
            if (seq > moves[k][1])
                moves[k][1] = seq;
            continue;
        }
        if (n == 8)
            return; /* too many threads to note */
        memmove(&moves[k + 1], &moves[k], (size_t)(n - k) * sizeof moves[0]);
        moves[k][0] = t;
        moves[k][1] = seq;
        n++;
    }
    acks_note_read(user_id, since, next, (const int64_t(*)[2])moves, n);
}

/* What a poll keeps between runs of its handler. */
struct poll_state {
    bool acked;     /* the acknowledgement is stored (ack holds the result) */
    bool read_once; /* a read ran after the acknowledgement */
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

static enum handler_status answer(struct response *res, json_t *events, int64_t next)
{
    metrics_events_delivered(json_array_size(events));
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long)next);
    return resp_json(res, 200, json_pack("{s:o, s:s}", "events", events, "next", cursor));
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
        return answer(res, json_array(), last);
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
    }
    if (st->waiter) {
        hub_begin(st->waiter);
        if (hub_revoked(st->waiter)) {
            poll_end(req, st);
            return resp_problem(res, 401, "unauthorized", "this device was logged out");
        }
    }
    json_t *events = json_array();
    int64_t next = since;
    /* Right after the acknowledgement: when the stream ended at `since` and
     * nothing was appended since (the version has not moved; we are
     * registered, so a later append wakes us), there is nothing to read. */
    /* On a cluster that holds only while the bus carries other nodes' wakes. */
    bool at_end = !st->read_once && st->ack.stream_end == since &&
                  hub_stream_version(req->user_id) == st->ack.version &&
                  (!cluster_enabled() || cluster_healthy());
    st->read_once = true;
    /* A woken poll finds what woke it in the in-memory tail; otherwise (or
     * when the tail misses the next position) the database. */
    int rc = 0;
    if (!at_end && tail_read(req->user_id, since, (int)limit, events, &next) == 0)
        rc = events_read(req->user_id, since, (int)limit, events, &next);
    if (rc < 0) {
        json_decref(events);
        poll_end(req, st);
        return resp_db_error(res, rc);
    }
    note_read(req->user_id, since, next, events);
    if (st->waiter) {
        json_t *ephemeral = hub_take_ephemeral(st->waiter);
        json_array_extend(events, ephemeral);
        json_decref(ephemeral);
        if (json_array_size(events) == 0 && !hub_should_answer(st->waiter)) {
            json_decref(events);
            return HANDLER_PARK;
        }
        poll_end(req, st);
    }
    return answer(res, events, next);
}
