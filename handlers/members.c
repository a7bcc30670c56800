/* members.c — adding members to a group, leaving, and removing others.
 *
 * Any member may add members (as in Matrix and Zulip); only an admin removes
 * someone else; anyone may leave. Membership changes take the thread row's
 * lock so that the 1,024-member limit holds under concurrent adds, and a
 * group whose last admin leaves gets its longest-standing member as admin. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

struct add_ctx {
    int64_t caller, thread_id, now;
    const char *ids_json;
    size_t nids;
    struct event_batch events;
};

/* Locks the thread row and checks that caller is a member of a group.
 * Returns 0, NOT_FOUND, NOT_GROUP or DB_E*; *is_admin tells the role. */
static int lock_group(int64_t caller, int64_t thread_id, bool *is_admin)
{
    struct db_res *r;
    int rc = db_query("SELECT t.kind, tm.role FROM threads t JOIN thread_members tm "
                      "ON tm.thread_id = t.id AND tm.owner_id = ? WHERE t.id = ? FOR UPDATE",
                      &r, DB_ARGS(DB_INT(caller), DB_INT(thread_id)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0)
        rc = NOT_FOUND;
    else if (strcmp(db_str(r, 0, 0), "group") != 0)
        rc = NOT_GROUP;
    else if (is_admin)
        *is_admin = strcmp(db_str(r, 0, 1), "admin") == 0;
    db_res_free(r);
    return rc;
}

static int touch_members(int64_t thread_id, int64_t now)
{
    return db_exec("UPDATE threads SET updated_at = ? WHERE id = ?",
                   DB_ARGS(DB_INT(now), DB_INT(thread_id)));
}

static int add_tx(void *arg)
{
    struct add_ctx *c = arg;
    evb_reset(&c->events);
    int rc = lock_group(c->caller, c->thread_id, NULL);
    if (rc != 0)
        return rc;
    /* How many of the ids exist, and how many of those are new members. */
    struct db_res *r;
    rc = db_query("SELECT COUNT(u.id), COUNT(u.id) - COUNT(tm.owner_id), "
                  "(SELECT COUNT(*) FROM thread_members x WHERE x.thread_id = ?) "
                  "FROM " DB_IDS_TABLE " "
                  "LEFT JOIN users u ON u.id = j.id "
                  "LEFT JOIN thread_members tm ON tm.owner_id = u.id AND tm.thread_id = ?",
                  &r, DB_ARGS(DB_INT(c->thread_id), DB_STR(c->ids_json), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    int64_t known = db_int(r, 0, 0), fresh = db_int(r, 0, 1), count = db_int(r, 0, 2);
    db_res_free(r);
    if ((size_t)known != c->nids)
        return NOT_FOUND;
    rc = blocked_any(c->caller, c->ids_json);
    if (rc != 0)
        return rc > 0 ? BLOCKED : rc;
    if (count + fresh > GROUP_MAX_MEMBERS)
        return TOO_MANY;
    if (fresh == 0)
        return 0;
    /* New members start with everything so far counted as read. */
    rc = db_exec("INSERT IGNORE INTO thread_members (owner_id, thread_id, last_read_seq, "
                 "last_delivered_seq, joined_at) "
                 "SELECT j.id, t.id, t.last_seq, t.last_seq, ? "
                 "FROM " DB_IDS_TABLE " "
                 "JOIN threads t ON t.id = ?",
                 DB_ARGS(DB_INT(c->now), DB_STR(c->ids_json), DB_INT(c->thread_id)));
    if (rc < 0 || (rc = members_mark_requests(c->thread_id, c->caller, c->ids_json, c->now)) < 0 ||
        (rc = touch_members(c->thread_id, c->now)) < 0)
        return rc;
    rc = evb_add_thread(&c->events, c->thread_id, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

enum handler_status members_add(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    int64_t thread_id = req->params[0];
    json_t *body = req_body(req, res);
    int64_t *ids;
    size_t n;
    if (body == NULL || !jv_ids(res, body, "user_ids", JV_REQUIRED, GROUP_MAX_MEMBERS, &ids, &n))
        return HANDLER_DONE;
    struct sbuf ids_list = {0};
    sb_ids(&ids_list, ids, n);
    free(ids);
    const char *list = sb_done(&ids_list);
    if (list == NULL) {
        free(ids_list.s);
        return resp_internal(res);
    }
    struct add_ctx c = {.caller = req->user_id,
                        .thread_id = thread_id,
                        .now = now_ms(),
                        .ids_json = list,
                        .nids = n};
    int rc = events_tx(add_tx, &c, &c.events);
    free(ids_list.s);
    if (rc != 0)
        return resp_result(res, rc, "no such thread, or user_ids names an unknown user");
    json_t *thread;
    rc = view_thread(req->user_id, thread_id, &thread);
    if (rc != 0)
        return resp_db_error(res, rc < 0 ? rc : DB_ERR);
    return resp_json(res, 200, json_pack("{s:o}", "thread", thread));
}

struct remove_ctx {
    int64_t caller, thread_id, target, now;
    struct event_batch events;
};

static int remove_tx(void *arg)
{
    struct remove_ctx *c = arg;
    evb_reset(&c->events);
    bool is_admin = false;
    int rc = lock_group(c->caller, c->thread_id, &is_admin);
    if (rc != 0)
        return rc;
    if (c->target != c->caller && !is_admin)
        return NOT_ADMIN;
    rc = db_exec("DELETE FROM thread_members WHERE owner_id = ? AND thread_id = ?",
                 DB_ARGS(DB_INT(c->target), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    if (db_affected() == 0)
        return NOT_FOUND;
    /* Keep an admin while the group has members. */
    struct db_res *r;
    rc = db_query("SELECT owner_id, role FROM thread_members WHERE thread_id = ? "
                  "ORDER BY role = 'admin' DESC, joined_at, owner_id LIMIT 1",
                  &r, DB_ARGS(DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    if (r->nrows && strcmp(db_str(r, 0, 1), "admin") != 0)
        rc =
            db_exec("UPDATE thread_members SET role = 'admin' WHERE owner_id = ? AND thread_id = ?",
                    DB_ARGS(DB_INT(db_int(r, 0, 0)), DB_INT(c->thread_id)));
    db_res_free(r);
    if (rc < 0 || (rc = touch_members(c->thread_id, c->now)) < 0)
        return rc;
    /* The one who left hears of it too: a thread event without them. */
    rc = evb_add_thread(&c->events, c->thread_id, c->now);
    if (rc < 0)
        return rc;
    rc = evb_add_thread_to(&c->events, c->thread_id, c->target, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

enum handler_status members_remove(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    struct remove_ctx c = {.caller = req->user_id,
                           .thread_id = req->params[0],
                           .target = req->params[1],
                           .now = now_ms()};
    int rc = events_tx(remove_tx, &c, &c.events);
    if (rc != 0)
        return resp_result(res, rc, "no such thread or member");
    return resp_empty(res, 204);
}

/* The adder of caller's message request in thread_id into *from. Returns
 * 0, NOT_FOUND (not a member), NOT_A_REQUEST, or DB_E*. */
enum { NOT_A_REQUEST = 40 };
static int request_of(int64_t caller, int64_t thread_id, int64_t *from)
{
    struct db_res *r;
    int rc = db_query("SELECT request_from FROM thread_members WHERE owner_id = ? "
                      "AND thread_id = ?",
                      &r, DB_ARGS(DB_INT(caller), DB_INT(thread_id)));
    if (rc < 0)
        return rc;
    rc = r->nrows == 0 ? NOT_FOUND : db_str(r, 0, 0) ? 0 : NOT_A_REQUEST;
    if (rc == 0)
        *from = db_int(r, 0, 0);
    db_res_free(r);
    return rc;
}

/* The answer for request_of's result that is not 0. */
static enum handler_status request_problem(struct response *res, int rc, int64_t thread_id)
{
    if (rc == NOT_A_REQUEST)
        return resp_problem(res, 409, "not_a_request",
                            "your membership of thread %lld is not a message request",
                            (long long)thread_id);
    return resp_result(res, rc, "no thread %lld", (long long)thread_id);
}

enum handler_status threads_accept(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    int64_t thread_id = req->params[0], from;
    int rc = request_of(req->user_id, thread_id, &from);
    if (rc != 0)
        return request_problem(res, rc, thread_id);
    rc = db_exec("UPDATE thread_members SET request_from = NULL WHERE owner_id = ? "
                 "AND thread_id = ?",
                 DB_ARGS(DB_INT(req->user_id), DB_INT(thread_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *thread;
    rc = view_thread(req->user_id, thread_id, &thread);
    if (rc != 0)
        return resp_result(res, rc, "no thread %lld", (long long)thread_id);
    return resp_json(res, 200, json_pack("{s:o}", "thread", thread));
}

enum handler_status threads_decline(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    bool block = false;
    if (req->body && !jv_bool(res, req->body, "block", JV_OPTIONAL, &block, NULL))
        return HANDLER_DONE;
    int64_t thread_id = req->params[0], from;
    int rc = request_of(req->user_id, thread_id, &from);
    if (rc != 0)
        return request_problem(res, rc, thread_id);
    struct remove_ctx c = {
        .caller = req->user_id, .thread_id = thread_id, .target = req->user_id, .now = now_ms()};
    rc = events_tx(remove_tx, &c, &c.events);
    if (rc != 0)
        return resp_result(res, rc, "no thread %lld", (long long)thread_id);
    if (block) {
        rc = db_exec("INSERT IGNORE INTO blocks (owner_id, blocked_id, created_at) "
                     "VALUES (?, ?, ?)",
                     DB_ARGS(DB_INT(req->user_id), DB_INT(from), DB_INT(c.now)));
        if (rc < 0)
            return resp_db_error(res, rc);
    }
    return resp_empty(res, 204);
}
