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
#include "chat/attachments.h"
#include "chat/direct.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "chat/sendq.h"
#include "base/util.h"

/* A send's state: the job and the attachment ids it borrows. */
struct send_state {
    struct send_job job;
    int64_t *attachment_ids;
    char *forward_body, *forward_attachments; /* a forward's copy of its source */
};

static void job_free(void *p)
{
    struct send_state *st = p;
    sendq_job_clear(&st->job);
    free(st->attachment_ids);
    free(st->forward_body);
    free(st->forward_attachments);
    free(st);
}

/* A forward's source, {thread_id, seq} in `forward_of`: a message of a
 * thread the caller is a member of, not deleted. Copies its body and
 * attachments into st and sets the job's forward depth. Returns true; or
 * false with the response filled (400 for a bad field, 404 when the caller
 * can't see the source). */
static bool read_forward(struct request *req, struct response *res, json_t *fwd,
                         struct send_state *st)
{
    int64_t thread = 0, seq = 0;
    if (!json_is_object(fwd) ||
        !jv_int(res, fwd, "thread_id", JV_REQUIRED, 1, JSON_INT_MAX, &thread, NULL) ||
        !jv_int(res, fwd, "seq", JV_REQUIRED, 1, JSON_INT_MAX, &seq, NULL)) {
        if (!json_is_object(fwd))
            resp_problem(res, 400, "invalid_request",
                         "forward_of must be {thread_id, seq} of the message to forward");
        return false;
    }
    struct db_res *r;
    int rc = db_query("SELECT m.body, m.attachments, COALESCE(m.forward_depth, 0) "
                      "FROM thread_members tm JOIN messages m ON m.thread_id = tm.thread_id "
                      "WHERE tm.owner_id = ? AND tm.thread_id = ? AND m.seq = ? "
                      "AND m.deleted_at IS NULL",
                      &r, DB_ARGS(DB_INT(req->user_id), DB_INT(thread), DB_INT(seq)));
    if (rc < 0) {
        resp_db_error(res, rc);
        return false;
    }
    if (r->nrows == 0) {
        db_res_free(r);
        resp_problem(res, 404, "not_found", "no message %lld in thread %lld", (long long)seq,
                     (long long)thread);
        return false;
    }
    const char *att = db_str(r, 0, 1);
    st->forward_body = strdup(db_str(r, 0, 0));
    st->forward_attachments = att ? strdup(att) : NULL;
    st->job.forward_depth = db_int(r, 0, 2) + 1;
    db_res_free(r);
    if (st->forward_body == NULL || (att && st->forward_attachments == NULL)) {
        resp_internal(res);
        return false;
    }
    st->job.body = st->forward_body;
    st->job.body_len = strlen(st->forward_body);
    st->job.forward_attachments = st->forward_attachments;
    return true;
}

/* Reads client_msg_id and body from the request into a new job for thread_id
 * (0: set later), which becomes the request's state. Returns NULL with the
 * response filled when they are not acceptable or memory is short. */
static struct send_job *read_message(struct request *req, struct response *res, json_t *body,
                                     int64_t thread_id)
{
    const char *client_msg_id;
    size_t id_len;
    if (!jv_str(res, body, "client_msg_id", JV_REQUIRED, 1, 64, &client_msg_id, &id_len))
        return NULL;
    /* The unique key and the retry lookup must see one id as one: no white
     * space at the ends (a PAD SPACE key ignores it), nothing invisible. */
    if (!text_is_clean(client_msg_id, id_len)) {
        resp_problem(res, 400, "invalid_request",
                     "client_msg_id must not start or end with white space nor hold control "
                     "or invisible characters");
        return NULL;
    }
    /* A forward carries its source's body and attachments, nothing else. */
    json_t *fwd = json_object_get(body, "forward_of");
    bool forward = fwd && !json_is_null(fwd);
    if (forward && (json_object_get(body, "body") || json_object_get(body, "attachments") ||
                    json_object_get(body, "reply_to_seq"))) {
        resp_problem(res, 400, "invalid_request",
                     "a forward (forward_of) carries its source's body and attachments: send "
                     "no body, attachments or reply_to_seq with it");
        return NULL;
    }
    /* Attachments: the caller's complete uploads (checked in the send's
     * transaction); with them the body may be empty. */
    json_t *att = json_object_get(body, "attachments");
    int max = attachments_settings()->per_message_max;
    if (att && !json_is_null(att) && json_is_array(att) && (int)json_array_size(att) > max) {
        resp_problem(res, 422, "too_many_attachments", "a message has at most %d attachments", max);
        return NULL;
    }
    int64_t *ids = NULL;
    size_t nids = 0;
    if (!jv_ids(res, body, "attachments", JV_OPTIONAL | JV_NULLABLE, (size_t)max, &ids, &nids))
        return NULL;
    if (att && json_is_array(att) && nids != json_array_size(att)) {
        free(ids);
        resp_problem(res, 422, "invalid_attachment", "an attachment is listed twice");
        return NULL;
    }
    int64_t reply_to_seq = 0;
    if (!jv_int(res, body, "reply_to_seq", JV_OPTIONAL | JV_NULLABLE, 1, JSON_INT_MAX,
                &reply_to_seq, NULL)) {
        free(ids);
        return NULL;
    }
    /* With attachments the body may be absent or empty (no caption). */
    json_t *text = json_object_get(body, "body");
    if (!forward && (text != NULL || nids == 0) &&
        (!json_is_string(text) || (json_string_length(text) == 0 && nids == 0))) {
        free(ids);
        resp_problem(res, 400, "invalid_message",
                     "body must be a non-empty string (or may be empty with attachments)");
        return NULL;
    }
    if (text && json_string_length(text) > MESSAGE_MAX_BYTES) {
        free(ids);
        resp_problem(res, 413, "message_too_large", "body is over %d bytes", MESSAGE_MAX_BYTES);
        return NULL;
    }
    struct send_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        free(ids);
        resp_internal(res);
        return NULL;
    }
    req_state_set(req, st, job_free);
    st->attachment_ids = ids;
    struct send_job *j = &st->job;
    j->attachment_ids = ids;
    j->nattachments = (int)nids;
    j->thread_id = thread_id;
    j->sender = req->user_id;
    j->client_msg_id = client_msg_id;
    j->body = text ? json_string_value(text) : "";
    j->body_len = text ? json_string_length(text) : 0;
    j->reply_to_seq = reply_to_seq;
    j->arrived_us = mono_us();
    if (forward && !read_forward(req, res, fwd, st))
        return NULL;
    return j;
}

/* The answer for a stored (or refused) job. */
static enum handler_status answer(struct response *res, struct send_job *j)
{
    switch (j->status) {
    case SEND_STORED:
    case SEND_RETRY:
        return resp_json(res, j->status == SEND_STORED ? 201 : 200,
                         json_pack("{s:O}", "message", j->message));
    default: {
        if (j->status == SEND_BAD_REPLY)
            return resp_problem(res, 422, "invalid_reply",
                                "reply_to_seq %lld is no message of thread %lld (or was deleted)",
                                (long long)j->reply_to_seq, (long long)j->thread_id);
        if (j->status == SEND_BAD_ATTACHMENT)
            return resp_problem(res, 422, "invalid_attachment",
                                "an attachment is not your complete upload, has expired, or is "
                                "in a message already");
        int rc = j->status == SEND_NOT_MEMBER ? NOT_FOUND
                 : j->status == SEND_BLOCKED  ? BLOCKED
                 : j->status < 0              ? j->status
                                              : DB_ERR;
        return resp_result(res, rc, "no thread %lld", (long long)j->thread_id);
    }
    }
}

/* Hands the job to the send queue, or answers when it is stored already. */
static enum handler_status submit(struct request *req, struct response *res, struct send_job *j)
{
    struct completion done = {req_defer_done, req->defer};
    return sendq_submit(j, done) ? answer(res, j) : HANDLER_RERUN;
}

enum handler_status messages_send(struct request *req, struct response *res)
{
    if (req->state) /* the send queue stored it */
        return answer(res, &((struct send_state *)req->state)->job);
    if (rate_limited(req, res, RL_SEND))
        return HANDLER_DONE;
    json_t *body = req_body(req, res);
    struct send_job *j = body ? read_message(req, res, body, req->params[0]) : NULL;
    return j ? submit(req, res, j) : HANDLER_DONE;
}

enum handler_status messages_send_to_user(struct request *req, struct response *res)
{
    if (req->state)
        return answer(res, &((struct send_state *)req->state)->job);
    if (rate_limited(req, res, RL_SEND))
        return HANDLER_DONE;
    json_t *body = req_body(req, res);
    int64_t to;
    if (body == NULL || !jv_int(res, body, "to", JV_REQUIRED, 1, JSON_INT_MAX, &to, NULL))
        return HANDLER_DONE;
    struct send_job *j = read_message(req, res, body, 0);
    if (j == NULL)
        return HANDLER_DONE;
    bool created;
    int rc = direct_open(req->user_id, to, now_ms(), &j->thread_id, &created);
    if (rc == 0)
        return submit(req, res, j);
    return resp_result(res, rc, "no user %lld", (long long)to);
}

enum handler_status messages_list(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0], limit, before, after;
    if (!req_query_int(req, res, "limit", 50, 1, 100, &limit) ||
        !req_query_int(req, res, "before", 0, 1, JSON_INT_MAX, &before) ||
        !req_query_int(req, res, "after", 0, 0, JSON_INT_MAX, &after))
        return HANDLER_DONE;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;

    /* Without `after` the page ends at `before` (or the newest) and is read
     * backwards; with `after` it starts there and is read forwards. */
    bool forward = req_query(req, "after") != NULL;
    int64_t hi = before ? before : JSON_INT_MAX;
    struct db_res *r;
    int rc;
    /* A message the caller hid shows as {thread_id, seq, hidden: true}, so
     * that seq stays contiguous for them. */
    if (forward)
        rc = db_query("SELECT " MESSAGE_COLS_SEEN " FROM messages m" MESSAGE_HIDDEN_JOIN
                      "WHERE m.thread_id = ? AND m.seq > ? AND m.seq < ? ORDER BY m.seq ASC "
                      "LIMIT ?",
                      &r,
                      DB_ARGS(DB_INT(req->user_id), DB_INT(thread_id), DB_INT(after), DB_INT(hi),
                              DB_INT(limit + 1)));
    else
        rc = db_query(
            "SELECT " MESSAGE_COLS_SEEN " FROM messages m" MESSAGE_HIDDEN_JOIN
            "WHERE m.thread_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
            &r, DB_ARGS(DB_INT(req->user_id), DB_INT(thread_id), DB_INT(hi), DB_INT(limit + 1)));
    if (rc < 0)
        return resp_db_error(res, rc);
    int n = r->nrows > limit ? (int)limit : r->nrows;
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        int row = forward ? i : n - 1 - i;
        json_array_append_new(list, view_message_seen(r, row));
    }
    bool more = r->nrows > limit;
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o, s:b}", "messages", list, "has_more", more));
}
