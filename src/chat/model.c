/* model.c — views and shared lookups (see model.h).
 *
 * A thread view is the thread's shared part (THREAD_SHARED_COLS: the row,
 * the member ids, the last message) plus what is the reader's own (muted,
 * nickname, unread count). THREAD_SELECT reads both for the thread views and
 * lists; the thread events store the shared part as a snapshot and the
 * reader's part beside it; both render through view_thread_own(), so a
 * thread looks the same everywhere. Result columns are read by the names of
 * the enums beside the SQL. */
#include "chat/model.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "live/presence.h"
#include "base/util.h"

json_t *view_user_row(const struct db_res *r, int row, int col)
{
    return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)db_int(r, row, col), "username",
                     db_str(r, row, col + 1), "display_name", db_str(r, row, col + 2));
}

int view_user(int64_t id, json_t **out)
{
    struct db_res *r;
    int rc = db_query("SELECT " USER_COLS " FROM users u WHERE u.id = ?", &r, DB_ARGS(DB_INT(id)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 0 : NOT_FOUND;
    if (rc == 0)
        *out = view_user_row(r, 0, 0);
    db_res_free(r);
    return rc;
}

/* The stored JSON text json (NULL: none) as a value of the given type
 * (JSON_ARRAY or JSON_OBJECT), else a new empty one / NULL for an object. */
static json_t *stored_json(const char *json, json_type type, const struct message_fields *f,
                           const char *what)
{
    json_t *v = json ? json_loads(json, 0, NULL) : NULL;
    if (v && json_typeof(v) == type)
        return v;
    if (json)
        log_error("model: message %lld/%lld: %s is not stored JSON", (long long)f->thread_id,
                  (long long)f->seq, what);
    json_decref(v);
    return type == JSON_ARRAY ? json_array() : NULL;
}

/* reply_to as the API shows it, or JSON null. */
static json_t *reply_view(const struct message_fields *f)
{
    if (f->reply_to_seq <= 0)
        return json_null();
    json_t *o = stored_json(f->reply_to, JSON_OBJECT, f, "reply_to");
    if (o == NULL) /* the original is gone (history purged) */
        return json_pack("{s:I, s:n, s:s, s:b}", "seq", (json_int_t)f->reply_to_seq, "sender_id",
                         "snippet", "", "deleted", 1);
    /* MariaDB's JSON_OBJECT writes a condition as 0/1. */
    json_t *deleted = json_object_get(o, "deleted");
    json_object_set_new(o, "deleted",
                        json_boolean(json_is_true(deleted) || json_integer_value(deleted) != 0));
    json_object_set_new(o, "seq", json_integer(f->reply_to_seq));
    return o;
}

json_t *view_message(const struct message_fields *f)
{
    bool gone = f->deleted_at > 0;
    json_t *attachments = gone ? json_array()
                               : stored_json(f->attachments, JSON_ARRAY, f, "attachments");
    json_t *reactions = gone ? json_array() : stored_json(f->reactions, JSON_ARRAY, f, "reactions");
    json_t *mentions = gone ? NULL : stored_json(f->mentions, JSON_OBJECT, f, "mentions");
    if (mentions == NULL)
        mentions = json_pack("{s:[], s:b}", "user_ids", "all", 0);
    return json_pack("{s:I, s:I, s:I, s:s, s:s%, s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, "
                     "s:o}",
                     "thread_id", (json_int_t)f->thread_id, "seq", (json_int_t)f->seq, "sender_id",
                     (json_int_t)f->sender_id, "client_msg_id", f->client_msg_id, "body",
                     gone ? "" : f->body, gone ? (size_t)0 : f->body_len, "created_at",
                     (json_int_t)f->created_at, "attachments", attachments, "version",
                     (json_int_t)f->version, "edited_at",
                     f->edited_at > 0 ? json_integer(f->edited_at) : json_null(), "deleted_at",
                     gone ? json_integer(f->deleted_at) : json_null(), "reply_to",
                     gone ? json_null() : reply_view(f), "forwarded",
                     f->forward_depth > 0 && !gone
                         ? json_pack("{s:I}", "depth", (json_int_t)f->forward_depth)
                         : json_null(),
                     "reactions", reactions, "mentions", mentions, "expires_at",
                     f->expires_at > 0 ? json_integer(f->expires_at) : json_null());
}

json_t *view_message_row(const struct db_res *r, int row, int col)
{
    if (db_str(r, row, col + MC_SEQ) == NULL)
        return NULL;
    const char *body = db_str(r, row, col + MC_BODY);
    struct message_fields f = {
        .thread_id = db_int(r, row, col + MC_THREAD_ID),
        .seq = db_int(r, row, col + MC_SEQ),
        .sender_id = db_int(r, row, col + MC_SENDER_ID),
        .client_msg_id = db_str(r, row, col + MC_CLIENT_MSG_ID),
        .body = body,
        .body_len = strlen(body),
        .created_at = db_int(r, row, col + MC_CREATED_AT),
        .attachments = db_str(r, row, col + MC_ATTACHMENTS),
        .version = db_int(r, row, col + MC_VERSION),
        .edited_at = db_int(r, row, col + MC_EDITED_AT),
        .deleted_at = db_int(r, row, col + MC_DELETED_AT),
        .reply_to_seq = db_int(r, row, col + MC_REPLY_TO_SEQ),
        .reply_to = db_str(r, row, col + MC_REPLY_TO),
        .forward_depth = db_int(r, row, col + MC_FORWARD_DEPTH),
        .reactions = db_str(r, row, col + MC_REACTIONS),
        .mentions = db_str(r, row, col + MC_MENTIONS),
        .expires_at = db_int(r, row, col + MC_EXPIRES_AT),
    };
    return view_message(&f);
}

json_t *view_message_seen(const struct db_res *r, int row)
{
    if (db_str(r, row, MC_COUNT))
        return json_pack("{s:I, s:I, s:b}", "thread_id", (json_int_t)db_int(r, row, MC_THREAD_ID),
                         "seq", (json_int_t)db_int(r, row, MC_SEQ), "hidden", 1);
    return view_message_row(r, row, 0);
}

json_t *view_presence(int64_t user_id, int64_t db_last_seen)
{
    bool online = false;
    int64_t last_seen_at = db_last_seen, live_seen;
    if (presence_get(user_id, &online, &live_seen) && live_seen > last_seen_at)
        last_seen_at = live_seen;
    return json_pack("{s:s, s:I}", "state", online ? "online" : "offline", "last_seen_at",
                     (json_int_t)last_seen_at);
}

/* The shared part of a thread: its row, its member ids, its last message.
 * THREAD_SHARED_COLS' columns, in order (a MESSAGE_COLS block last). */
#define THREAD_SHARED_COLS                                                        \
    "t.id, t.kind, t.title, t.created_at, t.updated_at, t.last_seq, "             \
    "t.oldest_seq, t.retention_days, t.disappearing_s, "                          \
    "(SELECT GROUP_CONCAT(x.owner_id ORDER BY x.owner_id) FROM thread_members x " \
    "  WHERE x.thread_id = t.id), " MESSAGE_COLS " "
enum {
    TS_ID,
    TS_KIND,
    TS_TITLE,
    TS_CREATED_AT,
    TS_UPDATED_AT,
    TS_LAST_SEQ,
    TS_OLDEST_SEQ,
    TS_RETENTION_DAYS,
    TS_DISAPPEARING_S,
    TS_MEMBERS,
    TS_MESSAGE,
    TS_END = TS_MESSAGE + MC_COUNT
};
#define THREAD_SHARED_FROM \
    "FROM threads t LEFT JOIN messages m ON m.thread_id = t.id AND m.seq = t.last_seq "

/* A thread as one member sees it: the shared part, then that member's row.
 * THREAD_SELECT's columns are THREAD_SHARED_COLS' and then these. */
#define THREAD_SELECT                                                             \
    "SELECT " THREAD_SHARED_COLS ", tm.is_muted, tm.nickname, tm.last_read_seq, " \
    "tm.request_from "                                                            \
    "FROM thread_members tm JOIN threads t ON t.id = tm.thread_id "               \
    "LEFT JOIN messages m ON m.thread_id = t.id AND m.seq = t.last_seq "
enum { TM_IS_MUTED = TS_END, TM_NICKNAME, TM_READ_SEQ, TM_REQUEST_FROM };

json_t *view_id_list(const char *csv)
{
    json_t *ids = json_array();
    for (const char *p = csv; p && *p;) {
        json_array_append_new(ids, json_integer(strtoll(p, NULL, 10)));
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    return ids;
}

/* The shared part of a thread from THREAD_SHARED_COLS. */
static json_t *thread_shared_row(const struct db_res *r, int row)
{
    json_t *msg = view_message_row(r, row, TS_MESSAGE);
    const char *title = db_str(r, row, TS_TITLE);
    json_t *t = json_pack("{s:I, s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "id",
                          (json_int_t)db_int(r, row, TS_ID), "kind", db_str(r, row, TS_KIND),
                          "title", title ? json_string(title) : json_null(), "member_ids",
                          view_id_list(db_str(r, row, TS_MEMBERS)), "created_at",
                          (json_int_t)db_int(r, row, TS_CREATED_AT), "updated_at",
                          (json_int_t)db_int(r, row, TS_UPDATED_AT), "last_seq",
                          (json_int_t)db_int(r, row, TS_LAST_SEQ), "last_message",
                          msg ? msg : json_null());
    if (t) {
        json_object_set_new(t, "oldest_seq", json_integer(db_int(r, row, TS_OLDEST_SEQ)));
        json_object_set_new(t, "retention_days",
                            db_str(r, row, TS_RETENTION_DAYS)
                                ? json_integer(db_int(r, row, TS_RETENTION_DAYS))
                                : json_null());
        json_object_set_new(t, "disappearing_s", json_integer(db_int(r, row, TS_DISAPPEARING_S)));
    }
    return t;
}

json_t *view_thread_shared(int64_t thread_id, int *rc)
{
    struct db_res *r;
    *rc = db_query("SELECT " THREAD_SHARED_COLS THREAD_SHARED_FROM "WHERE t.id = ?", &r,
                   DB_ARGS(DB_INT(thread_id)));
    if (*rc < 0)
        return NULL;
    json_t *t = r->nrows ? thread_shared_row(r, 0) : NULL;
    *rc = t ? DB_OK : r->nrows ? DB_ERR : NOT_FOUND;
    db_res_free(r);
    return t;
}

json_t *view_thread_own(json_t *shared, bool member, int notify, const char *nickname,
                        int64_t read_seq)
{
    int64_t last_seq = json_integer_value(json_object_get(shared, "last_seq"));
    json_object_set_new(shared, "unread_count",
                        json_integer(member && last_seq > read_seq ? last_seq - read_seq : 0));
    if (!member)
        notify = NOTIFY_ALL;
    json_object_set_new(shared, "is_muted", json_boolean(notify == NOTIFY_NONE));
    json_object_set_new(shared, "notify",
                        json_string(notify == NOTIFY_NONE       ? "none"
                                    : notify == NOTIFY_MENTIONS ? "mentions"
                                                                : "all"));
    json_object_set_new(shared, "nickname", nickname ? json_string(nickname) : json_null());
    return shared;
}

static json_t *thread_row(const struct db_res *r, int row)
{
    json_t *shared = thread_shared_row(r, row);
    if (shared == NULL)
        return NULL;
    json_t *t = view_thread_own(shared, true, db_int(r, row, TM_IS_MUTED),
                                db_str(r, row, TM_NICKNAME), db_int(r, row, TM_READ_SEQ));
    json_object_set_new(t, "request",
                        db_str(r, row, TM_REQUEST_FROM)
                            ? json_pack("{s:I}", "from",
                                        (json_int_t)db_int(r, row, TM_REQUEST_FROM))
                            : json_null());
    return t;
}

int view_thread(int64_t owner, int64_t thread_id, json_t **out)
{
    struct db_res *r;
    int rc = db_query(THREAD_SELECT "WHERE tm.owner_id = ? AND tm.thread_id = ?", &r,
                      DB_ARGS(DB_INT(owner), DB_INT(thread_id)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 0 : NOT_FOUND;
    if (rc == 0)
        *out = thread_row(r, 0);
    db_res_free(r);
    return rc;
}

int view_threads_page(int64_t owner, int64_t before_at, int64_t before_id, int limit, json_t **out,
                      bool *more, int64_t *last_at, int64_t *last_id)
{
    struct db_res *r;
    int rc = db_query(THREAD_SELECT
                      "WHERE tm.owner_id = ? AND tm.thread_id IN (SELECT p.id FROM "
                      "(SELECT t2.id FROM thread_members tm2 JOIN threads t2 ON t2.id = "
                      "tm2.thread_id WHERE tm2.owner_id = ? AND (t2.updated_at < ? OR "
                      "(t2.updated_at = ? AND t2.id < ?)) ORDER BY t2.updated_at DESC, "
                      "t2.id DESC LIMIT ?) p) ORDER BY t.updated_at DESC, t.id DESC",
                      &r,
                      DB_ARGS(DB_INT(owner), DB_INT(owner), DB_INT(before_at), DB_INT(before_at),
                              DB_INT(before_id), DB_INT(limit + 1)));
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    int n = r->nrows > limit ? limit : r->nrows;
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, thread_row(r, i));
    *more = r->nrows > limit;
    if (n > 0) {
        *last_at = db_int(r, n - 1, TS_UPDATED_AT);
        *last_id = db_int(r, n - 1, TS_ID);
    }
    db_res_free(r);
    *out = arr;
    return 0;
}

int member_get(int64_t user, int64_t thread, struct member_info *mi)
{
    struct db_res *r;
    int rc = db_query("SELECT t.kind, tm.role, t.last_seq FROM thread_members tm "
                      "JOIN threads t ON t.id = tm.thread_id "
                      "WHERE tm.owner_id = ? AND tm.thread_id = ?",
                      &r, DB_ARGS(DB_INT(user), DB_INT(thread)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 0 : NOT_FOUND;
    if (rc == 0) {
        mi->is_group = strcmp(db_str(r, 0, 0), "group") == 0;
        mi->is_admin = strcmp(db_str(r, 0, 1), "admin") == 0;
        mi->last_seq = db_int(r, 0, 2);
    }
    db_res_free(r);
    return rc;
}

int blocked_between(int64_t a, int64_t b)
{
    struct db_res *r;
    int rc = db_query("SELECT 1 FROM blocks WHERE (owner_id = ? AND blocked_id = ?) "
                      "OR (owner_id = ? AND blocked_id = ?)",
                      &r, DB_ARGS(DB_INT(a), DB_INT(b), DB_INT(b), DB_INT(a)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 1 : 0;
    db_res_free(r);
    return rc;
}

int blocked_any(int64_t user, const char *ids_json)
{
    struct db_res *r;
    int rc = db_query("SELECT 1 FROM " DB_IDS_TABLE " JOIN blocks b "
                      "ON (b.owner_id = ? AND b.blocked_id = j.id) "
                      "OR (b.owner_id = j.id AND b.blocked_id = ?) LIMIT 1",
                      &r, DB_ARGS(DB_STR(ids_json), DB_INT(user), DB_INT(user)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 1 : 0;
    db_res_free(r);
    return rc;
}

int members_mark_requests(int64_t thread_id, int64_t adder, const char *ids, int64_t joined_at)
{
    return db_exec("UPDATE " DB_IDS_TABLE " STRAIGHT_JOIN thread_members tm "
                   "ON tm.owner_id = j.id AND tm.thread_id = ? "
                   "SET tm.request_from = ? WHERE tm.owner_id <> ? AND tm.joined_at = ? "
                   "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.owner_id = tm.owner_id "
                   "AND c.contact_id = ?)",
                   DB_ARGS(DB_STR(ids), DB_INT(thread_id), DB_INT(adder), DB_INT(adder),
                           DB_INT(joined_at), DB_INT(adder)));
}
