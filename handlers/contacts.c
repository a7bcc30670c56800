/* contacts.c — the caller's contact list (with nicknames and, where the
 * contact may be seen, presence) and block list. Both are private to their
 * owner. */
#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"
#include "live/cluster.h"

/* A contact's presence shows only when PRESENCE_VISIBLE allows it: a
 * one-sided contact (not added back, no shared thread) or one across a block
 * gets presence null. */
#define CONTACT_SELECT                                                                       \
    "SELECT " USER_COLS ", c.nickname, "                                                     \
    "(SELECT MAX(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id), " PRESENCE_VISIBLE \
    " FROM contacts c JOIN users u ON u.id = c.contact_id "                                  \
    "JOIN users v ON v.id = c.owner_id WHERE c.owner_id = ? "

static json_t *contact_row(const struct db_res *r, int row)
{
    const char *nick = db_str(r, row, 3);
    return json_pack("{s:o, s:o, s:o}", "user", view_user_row(r, row, 0), "nickname",
                     nick ? json_string(nick) : json_null(), "presence",
                     db_int(r, row, 5) ? view_presence(db_int(r, row, 0), db_int(r, row, 4))
                                       : json_null());
}

enum handler_status contacts_list(struct request *req, struct response *res)
{
    struct db_res *r;
    int rc = db_query(CONTACT_SELECT "ORDER BY u.username", &r, DB_ARGS(DB_INT(req->user_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(list, contact_row(r, i));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "contacts", list));
}

enum handler_status contacts_put(struct request *req, struct response *res)
{
    int64_t other = req->params[0];
    const char *nick = NULL;
    bool has_nick = req->body && json_object_get(req->body, "nickname");
    if (req->body && !jv_str(res, req->body, "nickname", JV_NULLABLE | JV_NAME, 0, 64, &nick, NULL))
        return HANDLER_DONE;
    if (nick && *nick == '\0')
        nick = NULL;
    json_t *user;
    if (!user_or_404(res, other, &user))
        return HANDLER_DONE;
    json_decref(user);
    /* Without a nickname field an existing contact keeps its nickname. */
    int rc;
    if (has_nick)
        rc = db_exec("INSERT INTO contacts (owner_id, contact_id, nickname, created_at) "
                     "VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE nickname = VALUES(nickname)",
                     DB_ARGS(DB_INT(req->user_id), DB_INT(other), DB_STR_OR_NULL(nick),
                             DB_INT(now_ms())));
    else
        rc = db_exec("INSERT IGNORE INTO contacts (owner_id, contact_id, created_at) "
                     "VALUES (?, ?, ?)",
                     DB_ARGS(DB_INT(req->user_id), DB_INT(other), DB_INT(now_ms())));
    if (rc < 0)
        return resp_db_error(res, rc);
    struct db_res *r;
    rc = db_query(CONTACT_SELECT "AND c.contact_id = ?", &r,
                  DB_ARGS(DB_INT(req->user_id), DB_INT(other)));
    if (rc < 0)
        return resp_db_error(res, rc);
    if (r->nrows == 0) { /* deleted in between by another device */
        db_res_free(r);
        return resp_problem(res, 404, "not_found", "no user %lld", (long long)other);
    }
    /* Added back: the other side may now see the caller, and learns it at
     * once (the caller has just been seen). */
    if (db_int(r, 0, 5)) {
        json_t *ev = view_presence(req->user_id, now_ms());
        json_object_set_new(ev, "type", json_string("presence"));
        json_object_set_new(ev, "user_id", json_integer(req->user_id));
        cluster_emit(&other, 1, ev);
        json_decref(ev);
    }
    resp_json(res, 200, json_pack("{s:o}", "contact", contact_row(r, 0)));
    db_res_free(r);
    return HANDLER_DONE;
}

enum handler_status contacts_delete(struct request *req, struct response *res)
{
    int rc = db_exec("DELETE FROM contacts WHERE owner_id = ? AND contact_id = ?",
                     DB_ARGS(DB_INT(req->user_id), DB_INT(req->params[0])));
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status blocks_list(struct request *req, struct response *res)
{
    struct db_res *r;
    int rc = db_query("SELECT " USER_COLS " FROM blocks b JOIN users u ON u.id = b.blocked_id "
                      "WHERE b.owner_id = ? ORDER BY u.username",
                      &r, DB_ARGS(DB_INT(req->user_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(list, view_user_row(r, i, 0));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "users", list));
}

enum handler_status blocks_put(struct request *req, struct response *res)
{
    int64_t other = req->params[0];
    if (other == req->user_id)
        return resp_problem(res, 400, "invalid_request", "you cannot block yourself");
    json_t *user;
    if (!user_or_404(res, other, &user))
        return HANDLER_DONE;
    json_decref(user);
    int rc =
        db_exec("INSERT IGNORE INTO blocks (owner_id, blocked_id, created_at) VALUES (?, ?, ?)",
                DB_ARGS(DB_INT(req->user_id), DB_INT(other), DB_INT(now_ms())));
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status blocks_delete(struct request *req, struct response *res)
{
    int rc = db_exec("DELETE FROM blocks WHERE owner_id = ? AND blocked_id = ?",
                     DB_ARGS(DB_INT(req->user_id), DB_INT(req->params[0])));
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}
