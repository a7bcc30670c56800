/* receipts.c — read positions: `/read` moves the caller's, `/receipts` lists
 * every member's delivered and read seq. Positions only move forward, and
 * reading implies delivery. */
#include "common.h"
#include "chat/receipts.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "push/push.h"
#include "base/util.h"

struct read_ctx {
    int64_t user_id, session_id, thread_id, seq, now;
    struct event_batch events;
};

static int read_tx(void *arg)
{
    struct read_ctx *c = arg;
    evb_reset(&c->events);
    struct db_res *r;
    int rc = db_query("SELECT last_delivered_seq, last_read_seq FROM thread_members "
                      "WHERE owner_id = ? AND thread_id = ? FOR UPDATE",
                      &r, DB_ARGS(DB_INT(c->user_id), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    int64_t delivered = r->nrows ? db_int(r, 0, 0) : 0,
            old_read = r->nrows ? db_int(r, 0, 1) : c->seq;
    db_res_free(r);
    if (old_read >= c->seq) /* positions only move forward */
        return 0;
    if (delivered < c->seq)
        delivered = c->seq; /* reading implies delivery */
    rc = db_exec("UPDATE thread_members SET last_read_seq = ?, last_delivered_seq = ? "
                 "WHERE owner_id = ? AND thread_id = ?",
                 DB_ARGS(DB_INT(c->seq), DB_INT(delivered), DB_INT(c->user_id),
                         DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    /* The reader's other devices drop the thread's notifications. */
    rc = push_queue_clear(c->user_id, c->thread_id, c->seq, c->session_id, c->now);
    if (rc < 0)
        return rc;
    /* The reader's own devices hear of it (each clears its unread count), and
     * the other members or, in a big group, the senders of what was read. */
    struct receipt_move move = {.user_id = c->user_id,
                                .thread_id = c->thread_id,
                                .from_seq = old_read,
                                .to_seq = c->seq,
                                .delivered = delivered,
                                .read = c->seq,
                                .read_moved = true};
    rc = receipts_fan_out(&c->events, &move, 1, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

enum handler_status receipts_read(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0], seq;
    json_t *body = req_body(req, res);
    if (body == NULL || !jv_int(res, body, "seq", JV_REQUIRED, 0, JSON_INT_MAX, &seq, NULL))
        return HANDLER_DONE;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;
    if (seq > mi.last_seq)
        return resp_problem(res, 400, "invalid_request",
                            "seq %lld is past the thread's last_seq %lld", (long long)seq,
                            (long long)mi.last_seq);
    struct read_ctx c = {.user_id = req->user_id,
                         .session_id = req->session_id,
                         .thread_id = thread_id,
                         .seq = seq,
                         .now = now_ms()};
    int rc = events_tx(read_tx, &c, &c.events);
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status receipts_list(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0];
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;
    struct db_res *r;
    int rc = db_query("SELECT owner_id, last_delivered_seq, last_read_seq FROM thread_members "
                      "WHERE thread_id = ? ORDER BY owner_id",
                      &r, DB_ARGS(DB_INT(thread_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(list,
                              json_pack("{s:I, s:I, s:I}", "user_id", (json_int_t)db_int(r, i, 0),
                                        "delivered_seq", (json_int_t)db_int(r, i, 1), "read_seq",
                                        (json_int_t)db_int(r, i, 2)));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "receipts", list));
}
