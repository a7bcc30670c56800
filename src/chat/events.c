/* events.c — appending to and reading from the per-user event streams.
 *
 * Appending to every member of a thread is two statements whatever the
 * group's size: bump each member's user_streams row (the row locks keep
 * positions gap-free and ordered per user; rows are taken in the index order
 * of thread_members, so concurrent appends lock in one global order), then
 * insert one event per member at its new position with INSERT … SELECT.
 *
 * Reading renders events as the API shows them: a message event joins its
 * message; a thread event is the thread as the reader sees it now (or, when
 * the reader has left it, the shared part with the current members); a
 * receipt event carries the positions stored with it. */
#include "chat/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/model.h"
#include "db/db.h"
#include "live/hub.h"
#include "live/tail.h"
#include "base/util.h"

static int receipt_fanout_max = 32;

void events_init(int fanout_max) { receipt_fanout_max = fanout_max; }

void wake_add(struct wake_list *w, int64_t user_id)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        int64_t *ids = realloc(w->ids, cap * sizeof *ids);
        if (ids == NULL)
            return;
        w->ids = ids;
        w->cap = cap;
    }
    w->ids[w->n++] = user_id;
}

void wake_reset(struct wake_list *w) { w->n = 0; }

void wake_flush(struct wake_list *w)
{
    if (w->n)
        hub_notify(w->ids, w->n);
    free(w->ids);
    memset(w, 0, sizeof *w);
}

int wake_tx(db_tx_fn fn, void *ctx, struct wake_list *wake)
{
    int rc = db_tx(fn, ctx);
    if (rc != 0)
        wake_reset(wake);
    wake_flush(wake);
    return rc;
}

json_t *events_message_view(json_t *message)
{
    return json_pack("{s:s, s:O}", "type", "message", "message", message);
}

json_t *events_receipt_view(int64_t thread_id, int64_t actor, int64_t delivered, int64_t read)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I}", "type", "receipt", "thread_id",
                     (json_int_t)thread_id, "user_id", (json_int_t)actor, "delivered_seq",
                     (json_int_t)delivered, "read_seq", (json_int_t)read);
}

json_t *events_typing_view(int64_t thread_id, int64_t typer)
{
    return json_pack("{s:s, s:I, s:I}", "type", "typing", "thread_id", (json_int_t)thread_id,
                     "user_id", (json_int_t)typer);
}

bool events_is_typing(json_t *ev, void *ctx)
{
    const int64_t *of = ctx;
    const char *type = json_string_value(json_object_get(ev, "type"));
    return type && strcmp(type, "typing") == 0 &&
           json_integer_value(json_object_get(ev, "thread_id")) == of[0] &&
           json_integer_value(json_object_get(ev, "user_id")) == of[1];
}

struct evb_item {
    int64_t user_id, thread_id, seq, actor, delivered, read, now;
    int type;
    size_t order; /* the order of adding, for a stable sort */
    int64_t pos;  /* set by evb_flush */
    struct tail_blob *blob;
};

void evb_add(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
             int64_t seq, int64_t actor, int64_t delivered, int64_t read, int64_t now,
             struct tail_blob *blob)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct evb_item *items = realloc(b->items, cap * sizeof *items);
        if (items == NULL) {
            b->failed = true;
            return;
        }
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n] = (struct evb_item){user_id, thread_id, seq,  actor, delivered, read, now,
                                       (int)type, b->n, 0, tail_blob_ref(blob)};
    b->n++;
}

static int cmp_item(const void *x, const void *y)
{
    const struct evb_item *a = x, *b = y;
    if (a->user_id != b->user_id)
        return a->user_id < b->user_id ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

int evb_flush(struct event_batch *b, struct wake_list *wake)
{
    if (b->failed) {
        evb_reset(b);
        return DB_ERR;
    }
    if (b->n == 0)
        return DB_OK;
    /* By user (ascending: the order every appender locks streams in), then
     * in the order added. */
    qsort(b->items, b->n, sizeof *b->items, cmp_item);
    struct sbuf counts = {0}, events = {0};
    for (size_t i = 0; i < b->n;) {
        size_t k = i;
        while (k < b->n && b->items[k].user_id == b->items[i].user_id)
            k++;
        sb_item(&counts, "[%lld,%zu]", (long long)b->items[i].user_id, k - i);
        wake_add(wake, b->items[i].user_id);
        for (size_t e = i; e < k; e++) {
            const struct evb_item *v = &b->items[e];
            sb_item(&events, "[%lld,%zu,%d,%lld,%lld,%lld,%lld,%lld,%lld]", (long long)v->user_id,
                    k - 1 - e, v->type, (long long)v->thread_id, (long long)v->seq,
                    (long long)v->actor, (long long)v->delivered, (long long)v->read,
                    (long long)v->now);
        }
        i = k;
    }
    /* Bump each stream once and read its new end in one statement
     * (INSERT … ON DUPLICATE KEY UPDATE … RETURNING gives the updated row;
     * every user has a stream row, so nothing is inserted), then insert the
     * events at the positions below that end. */
    struct db_res *r = NULL;
    int rc = db_query_list("INSERT INTO user_streams (user_id, last_pos) SELECT j.u, j.c FROM "
                           "JSON_TABLE(?, '$[*]' COLUMNS (u BIGINT PATH '$[0]', c BIGINT PATH "
                           "'$[1]')) j ON DUPLICATE KEY UPDATE last_pos = last_pos + "
                           "VALUES(last_pos) RETURNING user_id, last_pos",
                           &counts, &r);
    if (rc == 0)
        rc = db_exec_list("INSERT INTO user_events (user_id, pos, type, thread_id, seq, actor_id, "
                          "delivered_seq, read_seq, created_at) SELECT STRAIGHT_JOIN s.user_id, "
                          "s.last_pos - j.b, j.y, j.t, j.q, j.a, j.d, j.r, j.n FROM JSON_TABLE(?, "
                          "'$[*]' COLUMNS (u BIGINT PATH '$[0]', b BIGINT PATH '$[1]', "
                          "y INT PATH '$[2]', t BIGINT PATH '$[3]', q BIGINT PATH '$[4]', "
                          "a BIGINT PATH '$[5]', d BIGINT PATH '$[6]', r BIGINT PATH '$[7]', "
                          "n BIGINT PATH '$[8]')) j JOIN user_streams s ON s.user_id = j.u",
                          &events);
    free(events.s);
    if (rc < 0) {
        if (r)
            db_res_free(r);
        return rc;
    }
    for (int row = 0; row < r->nrows; row++) {
        int64_t user = db_int(r, row, 0), last = db_int(r, row, 1);
        size_t lo = 0, hi = b->n;
        while (lo < hi) { /* the first item of user */
            size_t mid = (lo + hi) / 2;
            if (b->items[mid].user_id < user)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t k = lo;
        while (k < b->n && b->items[k].user_id == user)
            k++;
        for (size_t e = lo; e < k; e++)
            b->items[e].pos = last - (int64_t)(k - 1 - e);
    }
    db_res_free(r);
    return DB_OK;
}

void evb_publish(struct event_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct evb_item *v = &b->items[i];
        tail_put(v->user_id, v->pos, v->blob);
    }
    evb_reset(b);
}

void evb_reset(struct event_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        tail_blob_unref(b->items[i].blob);
    b->n = 0;
    b->failed = false;
}

void evb_free(struct event_batch *b)
{
    evb_reset(b);
    free(b->items);
    memset(b, 0, sizeof *b);
}

/* The shared part of a thread as every member sees it now (id, kind,
 * title, member_ids, created_at, updated_at, last_seq, last_message), as a
 * new JSON object, or NULL when the thread is gone or the query failed. */
static json_t *thread_shared(int64_t thread_id)
{
    struct db_res *r;
    if (db_query("SELECT t.id, t.kind, t.title, t.created_at, t.updated_at, t.last_seq, "
                 "(SELECT GROUP_CONCAT(x.owner_id ORDER BY x.owner_id) FROM thread_members x "
                 "WHERE x.thread_id = t.id), m.thread_id, m.seq, m.sender_id, m.client_msg_id, "
                 "m.body, m.created_at FROM threads t LEFT JOIN messages m "
                 "ON m.thread_id = t.id AND m.seq = t.last_seq WHERE t.id = ?",
                 &r, DB_ARGS(DB_INT(thread_id))) < 0)
        return NULL;
    json_t *t = NULL;
    if (r->nrows) {
        json_t *members = view_id_list(db_str(r, 0, 6));
        const char *title = db_str(r, 0, 2);
        json_t *msg = view_message_row(r, 0, 7);
        t = json_pack("{s:I, s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "id",
                      (json_int_t)db_int(r, 0, 0), "kind", db_str(r, 0, 1), "title",
                      title ? json_string(title) : json_null(), "member_ids", members,
                      "created_at", (json_int_t)db_int(r, 0, 3), "updated_at",
                      (json_int_t)db_int(r, 0, 4), "last_seq", (json_int_t)db_int(r, 0, 5),
                      "last_message", msg ? msg : json_null());
    }
    db_res_free(r);
    return t;
}

static char *thread_snapshot(int64_t thread_id)
{
    json_t *t = thread_shared(thread_id);
    char *s = t ? json_dumps(t, JSON_COMPACT) : NULL;
    json_decref(t);
    return s;
}

/* The members of thread_id, ascending, as a JSON array string (malloc'd)
 * with each added to wake. A plain read: no row of thread_members is locked,
 * so an append never waits on a member row another transaction holds (two
 * members acknowledging in one thread would otherwise deadlock). */
static char *members_json(int64_t thread_id, struct wake_list *wake)
{
    struct db_res *r;
    if (db_query("SELECT owner_id FROM thread_members WHERE thread_id = ? ORDER BY owner_id", &r,
                 DB_ARGS(DB_INT(thread_id))) < 0)
        return NULL;
    json_t *ids = json_array();
    for (int i = 0; i < r->nrows; i++) {
        json_array_append_new(ids, json_integer(db_int(r, i, 0)));
        wake_add(wake, db_int(r, i, 0));
    }
    db_res_free(r);
    char *s = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    return s;
}

int events_to_members(int64_t thread_id, enum event_type type, int64_t seq, int64_t actor,
                      int64_t delivered, int64_t read, int64_t now, struct wake_list *wake)
{
    char *ids = members_json(thread_id, wake);
    if (ids == NULL)
        return DB_ERR;
    /* Stream rows are locked in ascending user order, as every appender does;
     * the same list feeds the bump and the insert, so they always agree. */
    int rc = db_exec("UPDATE user_streams s JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j "
                     "ON j.id = s.user_id SET s.last_pos = s.last_pos + 1",
                     DB_ARGS(DB_STR(ids)));
    if (rc < 0)
        goto done;
    if (type == EVENT_THREAD) {
        char *snap = thread_snapshot(thread_id);
        if (snap == NULL) {
            rc = DB_ERR;
            goto done;
        }
        /* Each member's own settings at this moment come with the snapshot. */
        rc = db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, read_seq, thread, "
                     "is_muted, nickname, created_at) "
                     "SELECT s.user_id, s.last_pos, 2, ?, COALESCE(tm.last_read_seq, 0), ?, "
                     "tm.is_muted, tm.nickname, ? FROM user_streams s "
                     "JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j ON j.id = s.user_id "
                     "LEFT JOIN thread_members tm ON tm.owner_id = s.user_id AND tm.thread_id = ?",
                     DB_ARGS(DB_INT(thread_id), DB_STR(snap), DB_INT(now), DB_STR(ids),
                             DB_INT(thread_id)));
        free(snap);
    } else {
        rc = db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, seq, actor_id, "
                     "delivered_seq, read_seq, created_at) "
                     "SELECT s.user_id, s.last_pos, ?, ?, ?, ?, ?, ?, ? FROM user_streams s "
                     "JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j ON j.id = s.user_id",
                     DB_ARGS(DB_INT(type), DB_INT(thread_id), DB_INT(seq), DB_INT(actor),
                             DB_INT(delivered), DB_INT(read), DB_INT(now), DB_STR(ids)));
    }
done:
    free(ids);
    return rc;
}

int events_thread_to_user(int64_t user_id, int64_t thread_id, int64_t now,
                          struct wake_list *wake)
{
    int rc = db_exec("UPDATE user_streams SET last_pos = last_pos + 1 WHERE user_id = ?",
                     DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    char *snap = thread_snapshot(thread_id);
    if (snap == NULL)
        return DB_ERR;
    /* LEFT JOIN: a user who just left has no member row (is_muted stays NULL). */
    rc = db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, read_seq, thread, "
                 "is_muted, nickname, created_at) "
                 "SELECT s.user_id, s.last_pos, 2, ?, COALESCE(tm.last_read_seq, 0), ?, "
                 "tm.is_muted, tm.nickname, ? FROM user_streams s LEFT JOIN thread_members tm "
                 "ON tm.owner_id = s.user_id AND tm.thread_id = ? WHERE s.user_id = ?",
                 DB_ARGS(DB_INT(thread_id), DB_STR(snap), DB_INT(now), DB_INT(thread_id),
                         DB_INT(user_id)));
    free(snap);
    if (rc < 0)
        return rc;
    wake_add(wake, user_id);
    return DB_OK;
}

/* One receipt event into one user's stream. */
static int receipt_to_user(int64_t user_id, int64_t thread_id, int64_t actor, int64_t delivered,
                           int64_t read, int64_t now, struct wake_list *wake)
{
    int rc = db_exec("UPDATE user_streams SET last_pos = last_pos + 1 WHERE user_id = ?",
                     DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    rc = db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, actor_id, delivered_seq, "
                 "read_seq, created_at) SELECT user_id, last_pos, 3, ?, ?, ?, ?, ? "
                 "FROM user_streams WHERE user_id = ?",
                 DB_ARGS(DB_INT(thread_id), DB_INT(actor), DB_INT(delivered), DB_INT(read),
                         DB_INT(now), DB_INT(user_id)));
    if (rc == 0)
        wake_add(wake, user_id);
    return rc;
}

int events_receipt(int64_t thread_id, int64_t actor, int64_t from_seq, int64_t to_seq,
                   int64_t delivered, int64_t read, int64_t now, struct wake_list *wake)
{
    struct db_res *r;
    int rc = db_query("SELECT COUNT(*) FROM thread_members WHERE thread_id = ?", &r,
                      DB_ARGS(DB_INT(thread_id)));
    if (rc < 0)
        return rc;
    int64_t members = db_int(r, 0, 0);
    db_res_free(r);
    if (members <= receipt_fanout_max)
        return events_to_members(thread_id, EVENT_RECEIPT, 0, actor, delivered, read, now, wake);
    /* Users in ascending id order, as events_to_members locks them. */
    rc = db_query("SELECT DISTINCT tm.owner_id FROM thread_members tm WHERE tm.thread_id = ? "
                  "AND (tm.owner_id = ? OR tm.owner_id IN (SELECT m.sender_id FROM messages m "
                  "WHERE m.thread_id = ? AND m.seq > ? AND m.seq <= ?)) ORDER BY tm.owner_id",
                  &r,
                  DB_ARGS(DB_INT(thread_id), DB_INT(actor), DB_INT(thread_id), DB_INT(from_seq),
                          DB_INT(to_seq)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows && rc == 0; i++)
        rc = receipt_to_user(db_int(r, i, 0), thread_id, actor, delivered, read, now, wake);
    db_res_free(r);
    return rc;
}

int events_stream_create(int64_t user_id)
{
    return db_exec("INSERT IGNORE INTO user_streams (user_id, last_pos) VALUES (?, 0)",
                   DB_ARGS(DB_INT(user_id)));
}

int events_head(int64_t user_id, int64_t *last_pos, int64_t *oldest_pos)
{
    struct db_res *r;
    int rc = db_query("SELECT s.last_pos, (SELECT e.pos FROM user_events e WHERE e.user_id = "
                      "s.user_id ORDER BY e.pos LIMIT 1) FROM user_streams s WHERE s.user_id = ?",
                      &r, DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    *last_pos = r->nrows ? db_int(r, 0, 0) : 0;
    *oldest_pos = r->nrows ? db_int(r, 0, 1) : 0;
    db_res_free(r);
    return DB_OK;
}

/* A thread event as its reader sees it: the snapshot plus the reader's own
 * settings copied at the time. Columns from col: thread JSON, is_muted
 * (NULL = not a member then), nickname, read_seq. */
static json_t *thread_event_view(const struct db_res *r, int row, int col)
{
    json_t *t = json_loads(db_str(r, row, col), 0, NULL);
    if (t == NULL)
        return NULL;
    bool member = db_str(r, row, col + 1) != NULL;
    int64_t last_seq = json_integer_value(json_object_get(t, "last_seq"));
    int64_t read = db_int(r, row, col + 3);
    const char *nick = db_str(r, row, col + 2);
    json_object_set_new(t, "unread_count",
                        json_integer(member && last_seq > read ? last_seq - read : 0));
    json_object_set_new(t, "is_muted", json_boolean(member && db_int(r, row, col + 1)));
    json_object_set_new(t, "nickname", nick ? json_string(nick) : json_null());
    return t;
}

int events_read(int64_t user_id, int64_t after, int limit, json_t *out, int64_t *next)
{
    struct db_res *r;
    int rc = db_query("SELECT e.pos, e.type, e.thread_id, e.actor_id, e.delivered_seq, "
                      "e.read_seq, " MESSAGE_COLS ", e.thread, e.is_muted, e.nickname, e.read_seq "
                      "FROM user_events e LEFT JOIN messages m ON e.type = 1 AND "
                      "m.thread_id = e.thread_id AND m.seq = e.seq "
                      "WHERE e.user_id = ? AND e.pos > ? ORDER BY e.pos LIMIT ?",
                      &r, DB_ARGS(DB_INT(user_id), DB_INT(after), DB_INT(limit)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows; i++) {
        int64_t thread_id = db_int(r, i, 2);
        json_t *ev = NULL;
        switch (db_int(r, i, 1)) {
        case EVENT_MESSAGE: {
            json_t *msg = view_message_row(r, i, 6);
            if (msg)
                ev = events_message_view(msg);
            json_decref(msg);
            break;
        }
        case EVENT_THREAD: {
            json_t *thread = NULL;
            if (db_str(r, i, 12)) {
                thread = thread_event_view(r, i, 12);
            } else {
                /* An event written before snapshots (migration 004). */
                rc = view_thread(user_id, thread_id, &thread);
                if (rc < 0)
                    goto fail;
            }
            if (thread)
                ev = json_pack("{s:s, s:o}", "type", "thread", "thread", thread);
            break;
        }
        case EVENT_RECEIPT:
            ev = events_receipt_view(thread_id, db_int(r, i, 3), db_int(r, i, 4),
                                     db_int(r, i, 5));
            break;
        }
        /* An event whose subject is gone still takes its position. */
        if (ev)
            json_array_append_new(out, ev);
        *next = db_int(r, i, 0);
    }
    db_res_free(r);
    return DB_OK;
fail:
    db_res_free(r);
    return rc;
}

int64_t events_prune(int64_t cutoff_ms, int batch)
{
    int rc = db_exec("DELETE FROM user_events WHERE created_at < ? LIMIT ?",
                     DB_ARGS(DB_INT(cutoff_ms), DB_INT(batch)));
    return rc < 0 ? rc : db_affected();
}
