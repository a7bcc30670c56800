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
#include "chat/direct.h"
#include "chat/retention.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

/* Answers 200/201 {thread} for thread_id as the caller sees it. */
static enum handler_status answer_thread(struct request *req, struct response *res,
                                         int64_t thread_id, int status)
{
    json_t *thread;
    int rc = view_thread(req->user_id, thread_id, &thread);
    if (rc != 0)
        return resp_result(res, rc, "no thread %lld", (long long)thread_id);
    return resp_json(res, status, json_pack("{s:o}", "thread", thread));
}

struct group_ctx {
    int64_t creator, now;
    const char *title;
    const char *others_json; /* JSON array of the other members' ids */
    size_t nothers;
    int64_t thread_id;
    struct event_batch events;
};

static int group_create_tx(void *arg)
{
    struct group_ctx *c = arg;
    evb_reset(&c->events);
    int rc = db_exec("INSERT INTO threads (kind, title, created_by, created_at, updated_at) "
                     "VALUES ('group', ?, ?, ?, ?)",
                     DB_ARGS(DB_STR_OR_NULL(c->title), DB_INT(c->creator), DB_INT(c->now),
                             DB_INT(c->now)));
    if (rc < 0)
        return rc;
    c->thread_id = db_insert_id();
    rc = blocked_any(c->creator, c->others_json);
    if (rc != 0)
        return rc > 0 ? BLOCKED : rc;
    rc = db_exec("INSERT INTO thread_members (owner_id, thread_id, role, joined_at) "
                 "VALUES (?, ?, 'admin', ?)",
                 DB_ARGS(DB_INT(c->creator), DB_INT(c->thread_id), DB_INT(c->now)));
    if (rc < 0)
        return rc;
    if (c->nothers > 0) {
        rc = db_exec("INSERT INTO thread_members (owner_id, thread_id, joined_at) "
                     "SELECT u.id, ?, ? FROM " DB_IDS_TABLE " JOIN users u ON u.id = j.id",
                     DB_ARGS(DB_INT(c->thread_id), DB_INT(c->now), DB_STR(c->others_json)));
        if (rc < 0)
            return rc;
        if ((size_t)db_affected() != c->nothers)
            return NOT_FOUND;
        if ((rc = members_mark_requests(c->thread_id, c->creator, c->others_json, c->now)) < 0)
            return rc;
    }
    rc = evb_add_thread(&c->events, c->thread_id, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
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
    struct sbuf list = {0};
    sb_ids(&list, ids, k);
    if (sb_done(&list) == NULL) {
        free(list.s);
        return NULL;
    }
    return list.s;
}

enum handler_status threads_create(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    int64_t *ids = NULL;
    char *others = NULL;
    size_t n;
    const char *title;
    json_t *body = req_body(req, res);
    if (body == NULL ||
        !jv_ids(res, body, "member_ids", JV_REQUIRED, GROUP_MAX_MEMBERS + 1, &ids, &n) ||
        !jv_str(res, body, "title", JV_NULLABLE | JV_NAME, 1, 255, &title, NULL))
        goto out;
    others = others_json(ids, &n, req->user_id);
    int64_t now = now_ms();
    int rc;
    if (n <= 1 && title == NULL) {
        int64_t other = n ? ids[0] : req->user_id, thread_id = 0;
        bool created = false;
        rc = direct_open(req->user_id, other, now, &thread_id, &created);
        if (rc != 0)
            resp_result(res, rc, "no user %lld", (long long)other);
        else
            answer_thread(req, res, thread_id, created ? 201 : 200);
        goto out;
    }
    if (n + 1 > GROUP_MAX_MEMBERS) {
        resp_result(res, TOO_MANY, "no such group");
        goto out;
    }
    struct group_ctx c = {
        .creator = req->user_id, .now = now, .title = title, .others_json = others, .nothers = n};
    rc = events_tx(group_create_tx, &c, &c.events);
    if (rc != 0)
        resp_result(res, rc, "member_ids names a user that does not exist");
    else
        answer_thread(req, res, c.thread_id, 201);
out:
    free(ids);
    free(others);
    return HANDLER_DONE;
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

enum handler_status threads_list(struct request *req, struct response *res)
{
    int64_t limit, before_at = JSON_INT_MAX, before_id = JSON_INT_MAX;
    if (!req_query_int(req, res, "limit", 50, 1, 100, &limit))
        return HANDLER_DONE;
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
    return resp_json(res, 200, json_pack("{s:o, s:o}", "threads", threads, "next", next));
}

enum handler_status threads_get(struct request *req, struct response *res)
{
    return answer_thread(req, res, req->params[0], 200);
}

struct change_ctx {
    int64_t user_id, thread_id, now;
    const char *title; /* rename: the new title, or NULL */
    bool set_retention, set_disappearing;
    int64_t retention_days; /* 0: the server's (NULL) */
    int64_t disappearing_s;
    bool set_muted; /* settings: the notify level (model.h) in muted */
    int muted;
    bool set_nickname;
    const char *nickname;
    struct event_batch events;
};

static int rename_tx(void *arg)
{
    struct change_ctx *c = arg;
    evb_reset(&c->events);
    int rc = 0;
    if (c->title)
        rc = db_exec("UPDATE threads SET title = ?, updated_at = ? WHERE id = ?",
                     DB_ARGS(DB_STR(c->title), DB_INT(c->now), DB_INT(c->thread_id)));
    if (rc == 0 && c->set_retention)
        rc = db_exec("UPDATE threads SET retention_days = ? WHERE id = ?",
                     DB_ARGS(c->retention_days ? DB_INT(c->retention_days)
                                               : (struct db_arg){.type = DB_ARG_NULL},
                             DB_INT(c->thread_id)));
    if (rc == 0 && c->set_disappearing)
        rc = db_exec("UPDATE threads SET disappearing_s = ? WHERE id = ?",
                     DB_ARGS(DB_INT(c->disappearing_s), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    rc = evb_add_thread(&c->events, c->thread_id, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

/* The caller's own settings; the event goes to the caller's other devices. */
static int settings_tx(void *arg)
{
    struct change_ctx *c = arg;
    evb_reset(&c->events);
    int rc = 0;
    if (c->set_muted)
        rc = db_exec("UPDATE thread_members SET is_muted = ? WHERE owner_id = ? AND thread_id = ?",
                     DB_ARGS(DB_INT(c->muted), DB_INT(c->user_id), DB_INT(c->thread_id)));
    if (rc == 0 && c->set_nickname)
        rc = db_exec("UPDATE thread_members SET nickname = ? WHERE owner_id = ? AND thread_id = ?",
                     DB_ARGS(DB_STR_OR_NULL(c->nickname), DB_INT(c->user_id),
                             DB_INT(c->thread_id)));
    if (rc < 0 || (!c->set_muted && !c->set_nickname))
        return rc;
    rc = evb_add_thread_to(&c->events, c->thread_id, c->user_id, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

enum handler_status threads_rename(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_THREAD_CHANGE))
        return HANDLER_DONE;
    int64_t thread_id = req->params[0];
    json_t *body = req_body(req, res);
    const char *title = NULL;
    int64_t days = 0, timer = 0;
    bool has_timer = false;
    if (body == NULL || !jv_str(res, body, "title", JV_NAME, 1, 255, &title, NULL) ||
        !jv_int(res, body, "disappearing_s", JV_OPTIONAL, 0, 7776000, &timer, &has_timer))
        return HANDLER_DONE;
    /* retention_days: null goes back to the server's. */
    json_t *jdays = json_object_get(body, "retention_days");
    bool has_days = jdays != NULL;
    if (jdays && !json_is_null(jdays) &&
        !jv_int(res, body, "retention_days", JV_REQUIRED, 1, 36500, &days, NULL))
        return HANDLER_DONE;
    if (!title && !has_days && !has_timer)
        return resp_problem(res, 400, "invalid_request",
                            "give title, retention_days or disappearing_s");
    if (has_days && days && !retention_days_ok(days))
        return resp_problem(res, 400, "invalid_request",
                            "retention_days must be 1..%d (the server's retention), or null",
                            retention_server_days() ? retention_server_days() : 36500);
    if (has_timer && !disappearing_ok(timer))
        return resp_problem(res, 400, "invalid_request",
                            "disappearing_s must be 0 (off), 86400, 604800 or 7776000");
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;
    if (title && !mi.is_group)
        return resp_problem(res, 422, "not_a_group", "a direct thread has no title");
    /* How long a group keeps its history is its admins' choice. */
    if ((has_days || has_timer) && mi.is_group && !mi.is_admin)
        return resp_result(res, NOT_ADMIN, "no thread %lld", (long long)thread_id);
    struct change_ctx c = {.user_id = req->user_id,
                           .thread_id = thread_id,
                           .now = now_ms(),
                           .title = title,
                           .set_retention = has_days,
                           .retention_days = days,
                           .set_disappearing = has_timer,
                           .disappearing_s = timer};
    int rc = events_tx(rename_tx, &c, &c.events);
    if (rc < 0)
        return resp_db_error(res, rc);
    return answer_thread(req, res, thread_id, 200);
}

enum handler_status threads_settings(struct request *req, struct response *res)
{
    int64_t thread_id = req->params[0];
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    bool muted = false, has_muted;
    const char *nick, *notify;
    if (!jv_bool(res, body, "is_muted", JV_OPTIONAL, &muted, &has_muted) ||
        !jv_str(res, body, "nickname", JV_NULLABLE | JV_NAME, 0, 64, &nick, NULL) ||
        !jv_str(res, body, "notify", JV_OPTIONAL, 1, 16, &notify, NULL))
        return HANDLER_DONE;
    /* notify "all" | "mentions" | "none"; is_muted is notify "none". */
    int level = muted ? NOTIFY_NONE : NOTIFY_ALL;
    if (notify) {
        level = strcmp(notify, "all") == 0        ? NOTIFY_ALL
                : strcmp(notify, "mentions") == 0 ? NOTIFY_MENTIONS
                : strcmp(notify, "none") == 0     ? NOTIFY_NONE
                                                  : -1;
        if (level < 0)
            return resp_problem(res, 400, "invalid_request",
                                "notify must be \"all\", \"mentions\" or \"none\"");
        if (has_muted && muted != (level == NOTIFY_NONE))
            return resp_problem(res, 400, "invalid_request",
                                "is_muted and notify disagree (is_muted is notify \"none\")");
    }
    bool has_nick = json_object_get(body, "nickname") != NULL;
    if (nick && *nick == '\0')
        nick = NULL;
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;
    struct change_ctx c = {.user_id = req->user_id,
                           .thread_id = thread_id,
                           .now = now_ms(),
                           .set_muted = has_muted || notify != NULL,
                           .muted = level,
                           .set_nickname = has_nick,
                           .nickname = nick};
    int rc = events_tx(settings_tx, &c, &c.events);
    if (rc < 0)
        return resp_db_error(res, rc);
    return answer_thread(req, res, thread_id, 200);
}
