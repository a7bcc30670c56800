/* threads.c — creating, listing, reading, renaming threads, and the caller's
 * own settings for one.
 *
 * `POST /v1/threads` with one other member and no title is the pair's
 * direct thread (found or created, one per pair by threads.direct_key);
 * anything else makes a group whose creator is admin. Every call checks
 * membership: a thread the caller is not in is 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

/* Answers 200/201 {thread} for thread_id as the caller sees it. */
static void answer_thread(struct request *req, struct response *res, int64_t thread_id, int status)
{
    json_t *thread;
    int rc = view_thread(req->user_id, thread_id, &thread);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 404, "not_found", "no thread %lld", (long long)thread_id);
    resp_json(res, status, json_pack("{s:o}", "thread", thread));
}

struct group_ctx {
    int64_t creator, now;
    const char *title;
    const char *others_json; /* JSON array of the other members' ids */
    size_t nothers;
    int64_t thread_id;
    struct wake_list wake;
};

static int group_create_tx(void *arg)
{
    struct group_ctx *c = arg;
    wake_reset(&c->wake);
    int rc = db_exec("INSERT INTO threads (kind, title, created_by, created_at, updated_at) "
                     "VALUES ('group', ?, ?, ?, ?)",
                     DB_ARGS(DB_STR_OR_NULL(c->title), DB_INT(c->creator), DB_INT(c->now),
                             DB_INT(c->now)));
    if (rc < 0)
        return rc;
    c->thread_id = db_insert_id();
    rc = db_exec("INSERT INTO thread_members (owner_id, thread_id, role, joined_at) "
                 "VALUES (?, ?, 'admin', ?)",
                 DB_ARGS(DB_INT(c->creator), DB_INT(c->thread_id), DB_INT(c->now)));
    if (rc < 0)
        return rc;
    if (c->nothers == 0)
        return events_to_members(c->thread_id, EVENT_THREAD, 0, 0, 0, 0, c->now, &c->wake);
    rc = db_exec("INSERT INTO thread_members (owner_id, thread_id, joined_at) "
                 "SELECT u.id, ?, ? FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j "
                 "JOIN users u ON u.id = j.id",
                 DB_ARGS(DB_INT(c->thread_id), DB_INT(c->now), DB_STR(c->others_json)));
    if (rc < 0)
        return rc;
    if ((size_t)db_affected() != c->nothers)
        return NOT_FOUND;
    return events_to_members(c->thread_id, EVENT_THREAD, 0, 0, 0, 0, c->now, &c->wake);
}

/* Removes `me` from ids in place and returns the JSON array of the rest
 * (malloc'd, caller frees), with its length in *n. */
static char *others_json(int64_t *ids, size_t *n, int64_t me)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (ids[i] != me)
            ids[k++] = ids[i];
    *n = k;
    return ids_json(ids, k);
}

void threads_create(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    if (body == NULL)
        return;
    int64_t *ids;
    size_t n;
    const char *title;
    if (!jv_ids(res, body, "member_ids", JV_REQUIRED, GROUP_MAX_MEMBERS + 1, &ids, &n))
        return;
    if (!jv_str(res, body, "title", JV_NULLABLE, 1, 255, &title, NULL)) {
        free(ids);
        return;
    }
    char *others = others_json(ids, &n, req->user_id);
    int64_t now = now_ms();
    if (n <= 1 && title == NULL) {
        int64_t other = n ? ids[0] : req->user_id, thread_id = 0;
        bool created = false;
        int rc = direct_open(req->user_id, other, now, &thread_id, &created);
        free(ids);
        free(others);
        if (rc < 0)
            return resp_db_error(res, rc);
        if (rc == NOT_FOUND)
            return resp_problem(res, 404, "not_found", "no user %lld", (long long)other);
        if (rc == NOT_ALLOWED)
            return resp_problem(res, 403, "blocked", "a block stands between you and this user");
        return answer_thread(req, res, thread_id, created ? 201 : 200);
    }
    free(ids);
    if (n + 1 > GROUP_MAX_MEMBERS) {
        free(others);
        return resp_problem(res, 422, "too_many_members", "a group has at most %d members",
                            GROUP_MAX_MEMBERS);
    }
    struct group_ctx c = {.creator = req->user_id, .now = now, .title = title,
                          .others_json = others, .nothers = n};
    int rc = tx_and_wake(group_create_tx, &c, &c.wake);
    free(others);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 404, "not_found", "member_ids names a user that does not exist");
    answer_thread(req, res, c.thread_id, 201);
}

/* The list cursor is "<updated_at>.<thread_id>" of the last thread returned. */
static bool cursor_parse(const char *s, int64_t *at, int64_t *id)
{
    char buf[48];
    if (s == NULL || strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    char *dot = strchr(buf, '.');
    if (dot == NULL)
        return false;
    *dot = '\0';
    return parse_int(buf, at) == 0 && parse_int(dot + 1, id) == 0;
}

void threads_list(struct request *req, struct response *res)
{
    int64_t limit, before_at = JSON_INT_MAX, before_id = JSON_INT_MAX;
    if (!req_query_int(req, res, "limit", 50, 1, 100, &limit))
        return;
    const char *before = req_query(req, "before");
    if (before && !cursor_parse(before, &before_at, &before_id))
        return resp_problem(res, 400, "invalid_request", "before must be a cursor from 'next'");
    json_t *threads;
    bool more;
    int64_t last_at = 0, last_id = 0;
    int rc = view_threads_page(req->user_id, before_at, before_id, (int)limit, &threads, &more,
                               &last_at, &last_id);
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *next = json_null();
    if (more) {
        char cur[48];
        snprintf(cur, sizeof cur, "%lld.%lld", (long long)last_at, (long long)last_id);
        next = json_string(cur);
    }
    resp_json(res, 200, json_pack("{s:o, s:o}", "threads", threads, "next", next));
}

void threads_get(struct request *req, struct response *res)
{
    answer_thread(req, res, req->params[0], 200);
}

struct change_ctx {
    int64_t user_id, thread_id, now;
    const char *title;           /* rename: the new title */
    bool set_muted, muted;       /* settings */
    bool set_nickname;
    const char *nickname;
    struct wake_list wake;
};

static int rename_tx(void *arg)
{
    struct change_ctx *c = arg;
    wake_reset(&c->wake);
    int rc = db_exec("UPDATE threads SET title = ?, updated_at = ? WHERE id = ?",
                     DB_ARGS(DB_STR(c->title), DB_INT(c->now), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    return events_to_members(c->thread_id, EVENT_THREAD, 0, 0, 0, 0, c->now, &c->wake);
}

/* The caller's own settings; the event goes to the caller's other devices. */
static int settings_tx(void *arg)
{
    struct change_ctx *c = arg;
    wake_reset(&c->wake);
    int rc = 0;
    if (c->set_muted)
        rc = db_exec("UPDATE thread_members SET is_muted = ? WHERE owner_id = ? AND thread_id = ?",
                     DB_ARGS(DB_INT(c->muted), DB_INT(c->user_id), DB_INT(c->thread_id)));
    if (rc == 0 && c->set_nickname)
        rc = db_exec("UPDATE thread_members SET nickname = ? WHERE owner_id = ? AND thread_id = ?",
                     DB_ARGS(DB_STR_OR_NULL(c->nickname), DB_INT(c->user_id), DB_INT(c->thread_id)));
    if (rc < 0 || (!c->set_muted && !c->set_nickname))
        return rc;
    return events_thread_to_user(c->user_id, c->thread_id, c->now, &c->wake);
}

void threads_rename(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0];
    json_t *body = req_body(req, res);
    const char *title;
    if (body == NULL || !jv_str(res, body, "title", JV_REQUIRED, 1, 255, &title, NULL))
        return;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return;
    if (!mi.is_group)
        return resp_problem(res, 422, "not_a_group", "a direct thread has no title");
    struct change_ctx c = {.user_id = req->user_id, .thread_id = thread_id, .now = now_ms(),
                           .title = title};
    int rc = tx_and_wake(rename_tx, &c, &c.wake);
    if (rc < 0)
        return resp_db_error(res, rc);
    answer_thread(req, res, thread_id, 200);
}

void threads_settings(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0];
    json_t *body = req_body(req, res);
    if (body == NULL)
        return;
    bool muted = false, has_muted;
    const char *nick;
    if (!jv_bool(res, body, "is_muted", JV_OPTIONAL, &muted, &has_muted) ||
        !jv_str(res, body, "nickname", JV_NULLABLE, 0, 64, &nick, NULL))
        return;
    bool has_nick = json_object_get(body, "nickname") != NULL;
    if (nick && *nick == '\0')
        nick = NULL;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return;
    struct change_ctx c = {.user_id = req->user_id, .thread_id = thread_id, .now = now_ms(),
                           .set_muted = has_muted, .muted = muted, .set_nickname = has_nick,
                           .nickname = nick};
    int rc = tx_and_wake(settings_tx, &c, &c.wake);
    if (rc < 0)
        return resp_db_error(res, rc);
    answer_thread(req, res, thread_id, 200);
}
