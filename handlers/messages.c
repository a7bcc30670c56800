/* messages.c — sending (into a thread, or to a user) and reading history.
 *
 * The send path is one transaction (DESIGN.md "Sending a message"):
 *   1. the sender must be a member;
 *   2. the thread row is locked (FOR UPDATE): sends to one thread serialise
 *      here and nowhere else;
 *   3. a (thread, sender, client_msg_id) seen before returns the stored
 *      message (200), so a retry stores nothing twice; this check runs after
 *      the lock, and READ COMMITTED lets it see a twin that just committed;
 *   4. a direct thread with a block between its two members refuses (403);
 *   5. seq = last_seq + 1, the message row, the thread's last_seq and the
 *      members' updated_at (the sender's read position moves to the new seq);
 * and only after COMMIT does the caller get 201. */
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "hub.h"
#include "jsonv.h"
#include "metrics.h"
#include "push.h"
#include "util.h"

#define MESSAGE_MAX_BYTES 65536
#define MESSAGE_COLS "m.thread_id, m.seq, m.sender_id, m.client_msg_id, m.body, m.created_at"

struct send_ctx {
    int64_t thread_id, sender, now;
    const char *client_msg_id;
    const char *body;
    size_t body_len;
    /* out */
    json_t *message;
    bool existed;
    struct wake_list wake;
    int64_t arrived_us; /* for the send→commit metric */
};

static int load_message(struct send_ctx *c)
{
    struct db_res *r;
    int rc = db_query("SELECT " MESSAGE_COLS " FROM messages m WHERE m.thread_id = ? AND "
                      "m.sender_id = ? AND m.client_msg_id = ?",
                      &r,
                      DB_ARGS(DB_INT(c->thread_id), DB_INT(c->sender), DB_STR(c->client_msg_id)));
    if (rc < 0)
        return rc;
    if (r->nrows) {
        c->message = view_message_row(r, 0, 0);
        c->existed = true;
    }
    db_res_free(r);
    return 0;
}

static int send_tx(void *arg)
{
    struct send_ctx *c = arg;
    if (c->message)
        json_decref(c->message);
    c->message = NULL;
    c->existed = false;
    wake_reset(&c->wake);

    struct db_res *r;
    int rc = db_query("SELECT t.kind, t.last_seq, t.updated_at, "
                      "(SELECT MIN(x.owner_id) FROM thread_members x WHERE x.thread_id = t.id "
                      "AND x.owner_id <> ?) "
                      "FROM threads t JOIN thread_members tm ON tm.thread_id = t.id "
                      "AND tm.owner_id = ? WHERE t.id = ? FOR UPDATE",
                      &r, DB_ARGS(DB_INT(c->sender), DB_INT(c->sender), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return NOT_FOUND;
    }
    bool direct = strcmp(db_str(r, 0, 0), "direct") == 0;
    int64_t seq = db_int(r, 0, 1) + 1, other = db_int(r, 0, 3);
    /* The time is taken under the thread's lock, and never before the
     * thread's last change, so created_at follows seq order. */
    c->now = now_ms();
    if (c->now < db_int(r, 0, 2))
        c->now = db_int(r, 0, 2);
    db_res_free(r);

    if ((rc = load_message(c)) < 0 || c->existed)
        return rc;
    if (direct && other) {
        rc = blocked_between(c->sender, other);
        if (rc != 0)
            return rc > 0 ? NOT_ALLOWED : rc;
    }
    rc = db_exec("INSERT INTO messages (thread_id, seq, sender_id, client_msg_id, body, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 DB_ARGS(DB_INT(c->thread_id), DB_INT(seq), DB_INT(c->sender),
                         DB_STR(c->client_msg_id), DB_STRN(c->body, c->body_len), DB_INT(c->now)));
    if (rc < 0)
        return rc;
    rc = db_exec("UPDATE threads SET last_seq = ?, updated_at = ? WHERE id = ?",
                 DB_ARGS(DB_INT(seq), DB_INT(c->now), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    rc = db_exec("UPDATE thread_members SET updated_at = ?, "
                 "last_read_seq = IF(owner_id = ?, ?, last_read_seq), "
                 "last_delivered_seq = IF(owner_id = ?, ?, last_delivered_seq) "
                 "WHERE thread_id = ?",
                 DB_ARGS(DB_INT(c->now), DB_INT(c->sender), DB_INT(seq), DB_INT(c->sender),
                         DB_INT(seq), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    rc = events_to_members(c->thread_id, EVENT_MESSAGE, seq, 0, 0, 0, c->now, &c->wake);
    if (rc < 0 || (rc = push_queue_message(c->thread_id, seq, c->sender, c->now)) < 0)
        return rc;
    c->message = json_pack("{s:I, s:I, s:I, s:s, s:s%, s:I}", "thread_id",
                           (json_int_t)c->thread_id, "seq", (json_int_t)seq, "sender_id",
                           (json_int_t)c->sender, "client_msg_id", c->client_msg_id, "body",
                           c->body, c->body_len, "created_at", (json_int_t)c->now);
    return 0;
}

/* Reads client_msg_id and body from the request into c. Returns false with
 * the response filled when they are not acceptable. */
static bool read_message(struct request *req, struct response *res, json_t *body,
                         struct send_ctx *c)
{
    if (!jv_str(res, body, "client_msg_id", JV_REQUIRED, 1, 64, &c->client_msg_id, NULL))
        return false;
    json_t *text = json_object_get(body, "body");
    if (!json_is_string(text) || json_string_length(text) == 0) {
        resp_problem(res, 400, "invalid_message", "body must be a non-empty string");
        return false;
    }
    if (json_string_length(text) > MESSAGE_MAX_BYTES) {
        resp_problem(res, 413, "message_too_large", "body is over %d bytes", MESSAGE_MAX_BYTES);
        return false;
    }
    c->body = json_string_value(text);
    c->body_len = json_string_length(text);
    c->sender = req->user_id;
    c->now = now_ms();
    c->arrived_us = mono_us();
    return true;
}

/* Runs the send transaction and answers 201, 200 (a retry) or the error. */
static void send_and_answer(struct response *res, struct send_ctx *c)
{
    int rc = db_tx(send_tx, c);
    if (rc == 0 && c->message && !c->existed) {
        metrics_stage(STAGE_SEND_COMMIT, mono_us() - c->arrived_us);
        /* The message supersedes the sender's "typing" in this thread. */
        hub_drop_typing(c->wake.ids, c->wake.n, c->thread_id, c->sender);
    }
    if (rc != 0)
        wake_reset(&c->wake);
    wake_flush(&c->wake);
    if (rc == 0 && c->message) {
        resp_json(res, c->existed ? 200 : 201, json_pack("{s:o}", "message", c->message));
        c->message = NULL;
        return;
    }
    if (c->message)
        json_decref(c->message);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_ALLOWED)
        return resp_problem(res, 403, "blocked", "a block stands between you and this user");
    resp_problem(res, 404, "not_found", "no thread %lld", (long long)c->thread_id);
}

void messages_send(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    struct send_ctx c = {.thread_id = req->params[0]};
    if (body == NULL || !read_message(req, res, body, &c))
        return;
    send_and_answer(res, &c);
}

void messages_send_to_user(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    struct send_ctx c = {0};
    int64_t to;
    if (body == NULL || !jv_int(res, body, "to", JV_REQUIRED, 1, JSON_INT_MAX, &to, NULL) ||
        !read_message(req, res, body, &c))
        return;
    bool created;
    int rc = direct_open(req->user_id, to, c.now, &c.thread_id, &created);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 404, "not_found", "no user %lld", (long long)to);
    if (rc == NOT_ALLOWED)
        return resp_problem(res, 403, "blocked", "a block stands between you and this user");
    send_and_answer(res, &c);
}

void messages_list(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0], limit, before, after;
    if (!req_query_int(req, res, "limit", 50, 1, 100, &limit) ||
        !req_query_int(req, res, "before", 0, 1, JSON_INT_MAX, &before) ||
        !req_query_int(req, res, "after", 0, 0, JSON_INT_MAX, &after))
        return;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return;

    /* Without `after` the page ends at `before` (or the newest) and is read
     * backwards; with `after` it starts there and is read forwards. */
    bool forward = req_query(req, "after") != NULL;
    int64_t hi = before ? before : JSON_INT_MAX;
    struct db_res *r;
    int rc;
    if (forward)
        rc = db_query("SELECT " MESSAGE_COLS " FROM messages m WHERE m.thread_id = ? "
                      "AND m.seq > ? AND m.seq < ? ORDER BY m.seq ASC LIMIT ?",
                      &r, DB_ARGS(DB_INT(thread_id), DB_INT(after), DB_INT(hi), DB_INT(limit + 1)));
    else
        rc = db_query("SELECT " MESSAGE_COLS " FROM messages m WHERE m.thread_id = ? "
                      "AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
                      &r, DB_ARGS(DB_INT(thread_id), DB_INT(hi), DB_INT(limit + 1)));
    if (rc < 0)
        return resp_db_error(res, rc);
    int n = r->nrows > limit ? (int)limit : r->nrows;
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, view_message_row(r, forward ? i : n - 1 - i, 0));
    bool more = r->nrows > limit;
    db_res_free(r);
    resp_json(res, 200, json_pack("{s:o, s:b}", "messages", list, "has_more", more));
}
