/* receipts.c — the receipt rule (receipts.h).
 *
 * One statement reads the members of every thread the moves touch; small
 * threads fan out to all of them but the mover (whose own devices hear only
 * of reads). For each big thread one more statement
 * reads the senders of one range of its messages covering every move in it
 * (a range per statement: joined to a list, MariaDB would read the whole
 * thread), and each move goes to its member and to the senders in its own
 * range. */
#include "chat/receipts.h"

#include <stdbool.h>
#include <stdlib.h>

#include "base/util.h"
#include "db/db.h"
#include "live/tail.h"

static int fanout_max = 32;

void receipts_init(int max) { fanout_max = max; }

/* Members of a thread, ascending (the result rows from..to of r). */
struct span {
    int64_t thread_id;
    int from, to;
};

static const struct span *span_of(const struct span *spans, int n, int64_t thread_id)
{
    for (int i = 0; i < n; i++)
        if (spans[i].thread_id == thread_id)
            return &spans[i];
    return NULL;
}

/* The events of moves[0..n), each move's rendered once (blobs[m], for the
 * in-memory tails) whoever receives it. */
static int fan_out(struct event_batch *b, const struct receipt_move *moves, int n, int64_t now,
                   struct tail_blob **blobs)
{
    struct sbuf ids = {0};
    int64_t *threads = malloc((size_t)n * sizeof *threads);
    if (threads == NULL)
        return DB_ERR;
    int nthreads = 0;
    for (int m = 0; m < n; m++) {
        bool seen = false;
        for (int k = 0; k < nthreads && !seen; k++)
            seen = threads[k] == moves[m].thread_id;
        if (!seen) {
            threads[nthreads++] = moves[m].thread_id;
            sb_item(&ids, "%lld", (long long)moves[m].thread_id);
        }
    }
    free(threads);
    struct db_res *r;
    int rc = db_query_list("SELECT STRAIGHT_JOIN tm.thread_id, tm.owner_id FROM " DB_IDS_TABLE
                           " JOIN thread_members tm ON tm.thread_id = j.id "
                           "ORDER BY tm.thread_id, tm.owner_id",
                           &ids, &r);
    if (rc < 0)
        return rc;
    struct span *spans = malloc((size_t)nthreads * sizeof *spans);
    int nspans = 0;
    for (int row = 0; spans && row < r->nrows; row++) {
        if (nspans == 0 || spans[nspans - 1].thread_id != db_int(r, row, 0))
            spans[nspans++] = (struct span){db_int(r, row, 0), row, row};
        spans[nspans - 1].to = row + 1;
    }
    /* Small threads: every member. Big ones: the member now, the senders
     * below. */
    for (int m = 0; spans && m < n; m++) {
        const struct receipt_move *v = &moves[m];
        const struct span *sp = span_of(spans, nspans, v->thread_id);
        if (sp == NULL)
            continue;
        bool small = sp->to - sp->from <= fanout_max;
        for (int row = sp->from; row < sp->to; row++) {
            int64_t member = db_int(r, row, 1);
            /* The member's own devices hear of a read (each clears its
             * unread count), not of their own delivery. */
            bool own = member == v->user_id;
            if (own ? v->read_moved : small)
                evb_add(b, member, EVENT_RECEIPT, v->thread_id, 0, v->user_id, v->delivered,
                        v->read, now, blobs[m]);
        }
    }
    /* The senders of the newly delivered messages, per big thread: one range
     * of its messages covering every move in it (a range per statement:
     * joined to a list, MariaDB would read the whole thread). */
    for (int k = 0; spans && k < nspans && rc == 0; k++) {
        const struct span *sp = &spans[k];
        if (sp->to - sp->from <= fanout_max)
            continue;
        int64_t lo = -1, hi = 0;
        for (int m = 0; m < n; m++)
            if (moves[m].thread_id == sp->thread_id) {
                if (lo < 0 || moves[m].from_seq < lo)
                    lo = moves[m].from_seq;
                if (moves[m].to_seq > hi)
                    hi = moves[m].to_seq;
            }
        struct db_res *senders;
        rc = db_query("SELECT seq, sender_id FROM messages WHERE thread_id = ? AND seq > ? "
                      "AND seq <= ?",
                      &senders, DB_ARGS(DB_INT(sp->thread_id), DB_INT(lo), DB_INT(hi)));
        if (rc < 0)
            break;
        for (int m = 0; m < n; m++) {
            const struct receipt_move *v = &moves[m];
            if (v->thread_id != sp->thread_id)
                continue;
            /* Each sender once per move, and only one who is still a member. */
            for (int row = sp->from; row < sp->to; row++) {
                int64_t member = db_int(r, row, 1);
                bool sent = false;
                for (int x = 0; x < senders->nrows && !sent; x++)
                    sent = db_int(senders, x, 1) == member && db_int(senders, x, 0) > v->from_seq &&
                           db_int(senders, x, 0) <= v->to_seq;
                if (sent && member != v->user_id)
                    evb_add(b, member, EVENT_RECEIPT, v->thread_id, 0, v->user_id, v->delivered,
                            v->read, now, blobs[m]);
            }
        }
        db_res_free(senders);
    }
    rc = spans ? rc : DB_ERR;
    free(spans);
    db_res_free(r);
    return rc;
}

int receipts_fan_out(struct event_batch *b, const struct receipt_move *moves, int n, int64_t now)
{
    if (n <= 0)
        return DB_OK;
    struct tail_blob **blobs = calloc((size_t)n, sizeof *blobs);
    if (blobs == NULL)
        return DB_ERR;
    for (int m = 0; m < n; m++) {
        json_t *ev = events_receipt_view(moves[m].thread_id, moves[m].user_id, moves[m].delivered,
                                         moves[m].read);
        blobs[m] = ev ? tail_blob_of(ev) : NULL;
        json_decref(ev);
    }
    int rc = fan_out(b, moves, n, now, blobs);
    for (int m = 0; m < n; m++)
        tail_blob_unref(blobs[m]);
    free(blobs);
    return rc;
}
