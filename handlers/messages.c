/* messages.c — sending (into a thread, or to a user) and reading history.
 *
 * A send is checked here (client_msg_id, body) and stored by the send queue
 * (sendq.c), which puts messages sent at about the same time into one
 * transaction. What that transaction does for each message is the send path
 * of DESIGN.md "Sending a message":
 *   1. the sender must be a member;
 *   2. the thread row is locked (FOR UPDATE): sends to one thread serialise
 *      here and nowhere else;
 *   3. a (thread, sender, client_msg_id) seen before returns the stored
 *      message (200), so a retry stores nothing twice; this check runs after
 *      the lock, and READ COMMITTED lets it see a twin that just committed;
 *   4. a direct thread with a block between its two members refuses (403);
 *   5. seq = last_seq + 1, the message row, the thread's last_seq and the
 *      thread's updated_at (the sender's read position moves to the new seq),
 *      an event in every member's stream, the pushes;
 * and only after COMMIT does the caller get 201. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "chat/sendq.h"
#include "base/util.h"

#define MESSAGE_MAX_BYTES 65536

/* Reads client_msg_id and body from the request into a new job for thread_id
 * (0: set later). Returns NULL with the response filled when they are not
 * acceptable or memory is short. */
static struct send_job *read_message(struct request *req, struct response *res, json_t *body,
                                     int64_t thread_id)
{
    const char *client_msg_id;
    if (!jv_str(res, body, "client_msg_id", JV_REQUIRED, 1, 64, &client_msg_id, NULL))
        return NULL;
    json_t *text = json_object_get(body, "body");
    if (!json_is_string(text) || json_string_length(text) == 0) {
        resp_problem(res, 400, "invalid_message", "body must be a non-empty string");
        return NULL;
    }
    if (json_string_length(text) > MESSAGE_MAX_BYTES) {
        resp_problem(res, 413, "message_too_large", "body is over %d bytes", MESSAGE_MAX_BYTES);
        return NULL;
    }
    struct send_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        resp_internal(res);
        return NULL;
    }
    j->thread_id = thread_id;
    j->sender = req->user_id;
    j->client_msg_id = client_msg_id;
    j->body = json_string_value(text);
    j->body_len = json_string_length(text);
    j->arrived_us = mono_us();
    j->res = res;
    j->defer = req->defer;
    return j;
}

void messages_send(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    struct send_job *j = body ? read_message(req, res, body, req->params[0]) : NULL;
    if (j)
        sendq_submit(j);
}

void messages_send_to_user(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    int64_t to;
    if (body == NULL || !jv_int(res, body, "to", JV_REQUIRED, 1, JSON_INT_MAX, &to, NULL))
        return;
    struct send_job *j = read_message(req, res, body, 0);
    if (j == NULL)
        return;
    bool created;
    int rc = direct_open(req->user_id, to, now_ms(), &j->thread_id, &created);
    if (rc == 0)
        return sendq_submit(j);
    free(j);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 404, "not_found", "no user %lld", (long long)to);
    resp_problem(res, 403, "blocked", "a block stands between you and this user");
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
