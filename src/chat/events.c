/* events.c — appending to and reading from the per-user event streams.
 *
 * The one appender (struct event_batch): whatever a transaction appends —
 * messages, receipts, thread events, for one user or a thousand — costs a
 * fixed number of statements: one takes the batch's range of positions from
 * the stream clock (its row lock, held to the commit, orders every appender
 * by commit), two per logged group whose membership changed sync its
 * intervals, one inserts the message and receipt events, one the big
 * groups' log rows, one those that carry their JSON, and one per thread
 * snapshot inserts the thread events; after the commit, one reads each
 * reader's previous position for the tails.
 *
 * Reading renders events as the API shows them: a message event joins its
 * message; a thread event is the snapshot stored with it plus the reader's
 * own settings stored beside it; a receipt event carries the positions
 * stored with it. The batches render the same views when they append, for
 * the in-memory tails. */
#include "chat/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/model.h"
#include "db/db.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "live/tail.h"
#include "base/util.h"

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

json_t *events_message_view(json_t *message)
{
    return json_pack("{s:s, s:O}", "type", "message", "message", message);
}

json_t *events_edited_view(json_t *message)
{
    return json_pack("{s:s, s:O}", "type", "message_edited", "message", message);
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
    enum event_type type;
    size_t order; /* the order of adding, for a stable sort */
    int64_t pos;  /* set by evb_flush */
    struct tail_blob *blob;
    /* Thread events: the snapshot (an index into b->snapshots) and the
     * reader's own settings; muted < 0: not a member, else the notify
     * level (model.h). */
    size_t snapshot;
    int muted;
    char *nickname; /* owned, NULL for none */
    bool payload;   /* stored as the blob's JSON (evb_add_payload) */
    /* A log event (evb_add_log): user_id is -thread_id (so a thread's log
     * events sort together, in the order added); its readers, owned. */
    bool log;
    int64_t *members;
    size_t nmembers;
};

/* One event as one reader gets it (after the commit, for the tails and the
 * other nodes): the user's own events, and a log event once per member. */
struct evb_delivery {
    int64_t user_id, pos, prev;
    struct tail_blob *blob; /* the item's reference */
};

/* Appends an item; false when memory ran out (b->failed is set). */
static struct evb_item *evb_push(struct event_batch *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct evb_item *items = realloc(b->items, cap * sizeof *items);
        if (items == NULL) {
            b->failed = true;
            return NULL;
        }
        b->items = items;
        b->cap = cap;
    }
    struct evb_item *v = &b->items[b->n];
    memset(v, 0, sizeof *v);
    v->order = b->n++;
    return v;
}

void evb_add(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
             int64_t seq, int64_t actor, int64_t delivered, int64_t read, int64_t now,
             struct tail_blob *blob)
{
    struct evb_item *v = evb_push(b);
    if (v == NULL)
        return;
    v->user_id = user_id;
    v->type = type;
    v->thread_id = thread_id;
    v->seq = seq;
    v->actor = actor;
    v->delivered = delivered;
    v->read = read;
    v->now = now;
    v->blob = tail_blob_ref(blob);
}

void evb_add_payload(struct event_batch *b, int64_t user_id, enum event_type type,
                     int64_t thread_id, int64_t seq, int64_t now, struct tail_blob *blob)
{
    if (blob == NULL || blob->len > 1024) {
        b->failed = true;
        return;
    }
    evb_add(b, user_id, type, thread_id, seq, 0, 0, 0, now, blob);
    if (!b->failed)
        b->items[b->n - 1].payload = true;
}

void evb_add_log(struct event_batch *b, int64_t thread_id, enum event_type type, int64_t seq,
                 int64_t now, struct tail_blob *blob, bool payload, const int64_t *members,
                 size_t n)
{
    int64_t *copy = malloc(n * sizeof *copy + 1);
    if (copy == NULL || blob == NULL || (payload && blob->len > 1024)) {
        free(copy);
        b->failed = true;
        return;
    }
    memcpy(copy, members, n * sizeof *copy);
    size_t at = b->n;
    evb_add(b, -thread_id, type, thread_id, seq, 0, 0, 0, now, blob);
    if (b->n == at) {
        free(copy);
        return; /* out of memory: b->failed */
    }
    struct evb_item *v = &b->items[at];
    v->payload = payload;
    v->log = true;
    v->members = copy;
    v->nmembers = n;
}

void evb_sync_log(struct event_batch *b, int64_t thread_id)
{
    for (size_t k = 0; k < b->nsyncs; k++)
        if (b->syncs[k] == thread_id)
            return;
    int64_t *s = realloc(b->syncs, (b->nsyncs + 1) * sizeof *s);
    if (s == NULL) {
        b->failed = true;
        return;
    }
    b->syncs = s;
    b->syncs[b->nsyncs++] = thread_id;
}

int evb_add_to(struct event_batch *b, int64_t user_id, enum event_type type, int64_t thread_id,
               int64_t seq, int64_t now, json_t *ev, bool payload)
{
    struct tail_blob *blob = ev ? tail_blob_of(ev) : NULL;
    json_decref(ev);
    if (blob == NULL)
        return DB_ERR;
    struct db_res *r = NULL;
    int rc = DB_OK;
    bool logged = false;
    if (user_id == 0) {
        /* Shared: a send or a membership change (which hold the row
         * exclusively) cannot interleave, so the members read here are
         * those whose intervals the event will fall in. */
        rc = db_query("SELECT logged FROM threads WHERE id = ? LOCK IN SHARE MODE", &r,
                      DB_ARGS(DB_INT(thread_id)));
        logged = rc == 0 && r->nrows && db_int(r, 0, 0) != 0;
        if (rc == 0)
            db_res_free(r);
        r = NULL;
        if (rc == 0)
            rc = db_query("SELECT owner_id FROM thread_members WHERE thread_id = ? "
                          "ORDER BY owner_id",
                          &r, DB_ARGS(DB_INT(thread_id)));
    }
    if (rc == 0 && logged) {
        int64_t *members = malloc((size_t)r->nrows * sizeof *members + 1);
        for (int i = 0; members && i < r->nrows; i++)
            members[i] = db_int(r, i, 0);
        if (members)
            evb_add_log(b, thread_id, type, seq, now, blob, payload, members, (size_t)r->nrows);
        else
            rc = DB_ERR;
        free(members);
    }
    for (int i = 0; rc == 0 && !logged && i < (r ? r->nrows : 1); i++) {
        int64_t to = r ? db_int(r, i, 0) : user_id;
        if (payload)
            evb_add_payload(b, to, type, thread_id, seq, now, blob);
        else
            evb_add(b, to, type, thread_id, seq, 0, 0, 0, now, blob);
    }
    if (r)
        db_res_free(r);
    tail_blob_unref(blob);
    return rc;
}

/* The reader's part of a thread event, and the event as the API shows it. */
static struct tail_blob *thread_event_blob(const json_t *shared, int muted, const char *nickname,
                                           int64_t read_seq)
{
    json_t *t = view_thread_own(json_deep_copy(shared), muted >= 0, muted, nickname, read_seq);
    json_t *ev = t ? json_pack("{s:s, s:o}", "type", "thread", "thread", t) : NULL;
    struct tail_blob *blob = ev ? tail_blob_of(ev) : NULL;
    json_decref(ev);
    return blob;
}

/* Columns of the member rows evb_add_thread reads. */
enum { TMC_OWNER, TMC_IS_MUTED, TMC_NICKNAME, TMC_READ_SEQ };

/* A thread event for every member (user_id 0) or for user_id alone (a
 * member or not). */
static int add_thread(struct event_batch *b, int64_t thread_id, int64_t user_id, int64_t now)
{
    int rc;
    json_t *shared = view_thread_shared(thread_id, &rc);
    if (shared == NULL)
        return rc < 0 ? rc : DB_ERR;
    char *snap = json_dumps(shared, JSON_COMPACT);
    char **snaps = snap ? realloc(b->snapshots, (b->nsnapshots + 1) * sizeof *snaps) : NULL;
    if (snaps == NULL) {
        free(snap);
        json_decref(shared);
        return DB_ERR;
    }
    b->snapshots = snaps;
    size_t index = b->nsnapshots++;
    snaps[index] = snap;
    if (user_id == 0)
        evb_sync_log(b, thread_id); /* a membership change (a no-op for small threads) */
    /* A plain read: no row of thread_members is locked, so an append never
     * waits on a member row another transaction holds. */
    struct db_res *r;
    if (user_id == 0)
        rc = db_query("SELECT owner_id, is_muted, nickname, last_read_seq FROM thread_members "
                      "WHERE thread_id = ? ORDER BY owner_id",
                      &r, DB_ARGS(DB_INT(thread_id)));
    else
        rc = db_query("SELECT owner_id, is_muted, nickname, last_read_seq FROM thread_members "
                      "WHERE thread_id = ? AND owner_id = ?",
                      &r, DB_ARGS(DB_INT(thread_id), DB_INT(user_id)));
    int rows = rc == 0 ? r->nrows : 0;
    /* user_id without a member row: one who just left, without settings. */
    bool left = rc == 0 && user_id != 0 && rows == 0;
    for (int i = 0; rc == 0 && i < rows + left; i++) {
        struct evb_item *v = evb_push(b);
        if (v == NULL)
            break;
        v->type = EVENT_THREAD;
        v->thread_id = thread_id;
        v->now = now;
        v->snapshot = index;
        if (left) {
            v->user_id = user_id;
            v->muted = -1;
        } else {
            const char *nick = db_str(r, i, TMC_NICKNAME);
            v->user_id = db_int(r, i, TMC_OWNER);
            v->muted = (int)db_int(r, i, TMC_IS_MUTED); /* the notify level */
            v->read = db_int(r, i, TMC_READ_SEQ);
            v->nickname = nick ? strdup(nick) : NULL;
            if (nick && v->nickname == NULL)
                b->failed = true;
        }
        v->blob = thread_event_blob(shared, v->muted, v->nickname, v->read);
    }
    if (rc == 0)
        db_res_free(r);
    json_decref(shared);
    return rc;
}

int evb_add_thread(struct event_batch *b, int64_t thread_id, int64_t now)
{
    return add_thread(b, thread_id, 0, now);
}

int evb_add_thread_to(struct event_batch *b, int64_t thread_id, int64_t user_id, int64_t now)
{
    return add_thread(b, thread_id, user_id, now);
}

static int cmp_item(const void *x, const void *y)
{
    const struct evb_item *a = x, *b = y;
    if (a->user_id != b->user_id)
        return a->user_id < b->user_id ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The rows of the statements below: each event with its position. */
/* clang-format off */
#define EVENT_ROW(X, S)                                                                       \
    X(0, u, BIGINT, "%lld") S X(1, pos, BIGINT, "%lld") S X(2, type, INT, "%d")                 \
    S X(3, t, BIGINT, "%lld") S X(4, seq, BIGINT, "%lld") S X(5, actor, BIGINT, "%lld")         \
    S X(6, delivered, BIGINT, "%lld") S X(7, rd, BIGINT, "%lld") S X(8, at, BIGINT, "%lld")
#define EVENT_ROW_COLUMNS DB_JT_COLUMNS(EVENT_ROW)
#define THREAD_EVENT_ROW(X, S)                                                                \
    X(0, u, BIGINT, "%lld") S X(1, pos, BIGINT, "%lld") S X(2, rd, BIGINT, "%lld")              \
    S X(3, muted, INT, "%s") S X(4, nick, VARCHAR(64), "%s") S X(5, at, BIGINT, "%lld")
#define THREAD_EVENT_ROW_COLUMNS DB_JT_COLUMNS(THREAD_EVENT_ROW)
#define PAYLOAD_EVENT_ROW(X, S)                                                               \
    X(0, u, BIGINT, "") S X(1, pos, BIGINT, "") S X(2, type, INT, "")                           \
    S X(3, t, BIGINT, "") S X(4, seq, BIGINT, "") S X(5, at, BIGINT, "")                        \
    S X(6, p, VARCHAR(1024), "")
#define PAYLOAD_EVENT_ROW_COLUMNS DB_JT_COLUMNS(PAYLOAD_EVENT_ROW)
/* clang-format on */

/* Step 2b: the events that carry their JSON. */
static int insert_payload_events(struct event_batch *b)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        if (v->payload && !v->log)
            json_array_append_new(rows, json_pack("[I, I, i, I, I, I, s%]", (json_int_t)v->user_id,
                                                  (json_int_t)v->pos, (int)v->type,
                                                  (json_int_t)v->thread_id, (json_int_t)v->seq,
                                                  (json_int_t)v->now, v->blob->json, v->blob->len));
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return DB_OK;
    }
    char *list = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    int rc = list ? db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, seq, "
                            "created_at, payload) SELECT j.u, j.pos, j.type, j.t, j.seq, j.at, "
                            "j.p FROM JSON_TABLE(?, '$[*]' " PAYLOAD_EVENT_ROW_COLUMNS ") j",
                            DB_ARGS(DB_STR(list)))
                  : DB_ERR;
    free(list);
    return rc;
}

/* Step 2c: the thread events of snapshot k. */
static int insert_thread_events(struct event_batch *b, size_t k)
{
    struct sbuf rows = {0};
    int64_t thread_id = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        if (v->type != EVENT_THREAD || v->snapshot != k)
            continue;
        thread_id = v->thread_id;
        char *nick = NULL;
        if (v->nickname) {
            json_t *js = json_string(v->nickname);
            nick = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
            json_decref(js);
        }
        sb_item(&rows, DB_JT_ROW(THREAD_EVENT_ROW), (long long)v->user_id, (long long)v->pos,
                (long long)v->read,
                v->muted < 0                  ? "null"
                : v->muted == NOTIFY_NONE     ? "1"
                : v->muted == NOTIFY_MENTIONS ? "2"
                                              : "0",
                nick ? nick : "null", (long long)v->now);
        free(nick);
    }
    const char *list = sb_done(&rows);
    int rc = list ? db_exec("INSERT INTO user_events (user_id, pos, type, thread_id, read_seq, "
                            "thread, is_muted, nickname, created_at) SELECT j.u, j.pos, 2, ?, "
                            "j.rd, ?, j.muted, j.nick, j.at "
                            "FROM JSON_TABLE(?, '$[*]' " THREAD_EVENT_ROW_COLUMNS ") j",
                            DB_ARGS(DB_INT(thread_id), DB_STR(b->snapshots[k]), DB_STR(list)))
                  : DB_ERR;
    free(rows.s);
    return rc;
}

/* The rows link_prev reads: a user and its first position in the batch. */
/* clang-format off */
#define FIRST_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, first, BIGINT, "%lld")
#define FIRST_ROW_COLUMNS DB_JT_COLUMNS(FIRST_ROW)
/* clang-format on */

static int cmp_delivery(const void *x, const void *y)
{
    const struct evb_delivery *a = x, *b = y;
    if (a->user_id != b->user_id)
        return a->user_id < b->user_id ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* After the commit: b->deliv, every event of the batch as each of its
 * readers gets it (a log event once per member), by user and position,
 * each linked to the reader's position before it (the tails chain events
 * by it): the first of a user here to the end of its merged stream below
 * it, each next one to the one before. Read after the commit, outside the
 * clock's hold: every position below ours belongs to a transaction that
 * held the clock before us, so it committed (or rolled back) already and
 * the answer can no longer change. On failure every prev stays -1: the
 * events go to no tail (tail_put ignores them), polls read the database. */
static void link_prev(struct event_batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += b->items[i].log ? b->items[i].nmembers : 1;
    b->deliv = malloc(n * sizeof *b->deliv + 1);
    if (b->deliv == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        for (size_t m = 0; m < (v->log ? v->nmembers : 1); m++)
            b->deliv[b->ndeliv++] = (struct evb_delivery){v->log ? v->members[m] : v->user_id,
                                                          v->pos, -1, v->blob};
    }
    qsort(b->deliv, b->ndeliv, sizeof *b->deliv, cmp_delivery);
    struct sbuf firsts = {0};
    for (size_t i = 0; i < b->ndeliv; i++)
        if (i == 0 || b->deliv[i].user_id != b->deliv[i - 1].user_id)
            sb_item(&firsts, DB_JT_ROW(FIRST_ROW), (long long)b->deliv[i].user_id,
                    (long long)b->deliv[i].pos);
    struct db_res *r;
    if (db_query_list("SELECT STRAIGHT_JOIN j.u, " EVENTS_STREAM_END_BELOW(
                          "j.u", "j.first") " FROM JSON_TABLE(?, '$[*]' " FIRST_ROW_COLUMNS ") j "
                                            "LEFT JOIN user_streams s ON s.user_id = j.u",
                      &firsts, &r) < 0)
        return;
    /* Both in ascending user order. */
    for (int row = 0, i = 0; row < r->nrows; row++) {
        int64_t user = db_int(r, row, 0), prev = db_int(r, row, 1);
        while (i < (int)b->ndeliv && b->deliv[i].user_id < user)
            i++;
        for (; i < (int)b->ndeliv && b->deliv[i].user_id == user; i++) {
            b->deliv[i].prev = prev;
            prev = b->deliv[i].pos;
        }
    }
    db_res_free(r);
}

/* The rows of the log insert: each log event with its position and, for
 * the kinds that carry it, its JSON. */
/* clang-format off */
#define LOG_ROW(X, S)                                                                         \
    X(0, t, BIGINT, "") S X(1, pos, BIGINT, "") S X(2, type, INT, "")                           \
    S X(3, seq, BIGINT, "") S X(4, at, BIGINT, "") S X(5, p, VARCHAR(1024), "")
#define LOG_ROW_COLUMNS DB_JT_COLUMNS(LOG_ROW)
/* clang-format on */

/* Step 2b: the log events. */
static int insert_log_events(struct event_batch *b)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        if (v->log)
            json_array_append_new(
                rows,
                json_pack("[I, I, i, I, I, o]", (json_int_t)v->thread_id, (json_int_t)v->pos,
                          (int)v->type, (json_int_t)v->seq, (json_int_t)v->now,
                          v->payload ? json_stringn(v->blob->json, v->blob->len) : json_null()));
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return DB_OK;
    }
    char *list = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    int rc =
        list
            ? db_exec(
                  "INSERT INTO thread_log (thread_id, pos, type, seq, created_at, payload) "
                  "SELECT j.t, j.pos, j.type, j.seq, j.at, j.p FROM JSON_TABLE(?, '$[*]' " LOG_ROW_COLUMNS
                  ") j",
                  DB_ARGS(DB_STR(list)))
            : DB_ERR;
    free(list);
    return rc;
}

/* Under the clock: brings the open intervals of the logged threads in
 * b->syncs in line with their members, at position at (a position of this
 * transaction that no event takes): members who left end there, new ones
 * start there. A thread that is not logged is left alone. */
static int sync_logs(struct event_batch *b, int64_t at)
{
    int rc = DB_OK;
    for (size_t k = 0; rc == 0 && k < b->nsyncs; k++) {
        rc = db_exec("UPDATE log_members g JOIN threads t ON t.id = g.thread_id AND t.logged = 1 "
                     "LEFT JOIN thread_members tm ON tm.thread_id = g.thread_id "
                     "AND tm.owner_id = g.user_id SET g.until_pos = ? "
                     "WHERE g.thread_id = ? AND g.until_pos IS NULL AND tm.owner_id IS NULL",
                     DB_ARGS(DB_INT(at), DB_INT(b->syncs[k])));
        if (rc == 0)
            rc = db_exec("INSERT INTO log_members (user_id, thread_id, from_pos) "
                         "SELECT tm.owner_id, tm.thread_id, ? FROM threads t "
                         "JOIN thread_members tm ON tm.thread_id = t.id "
                         "WHERE t.id = ? AND t.logged = 1 AND NOT EXISTS (SELECT 1 FROM "
                         "log_members g WHERE g.user_id = tm.owner_id AND g.thread_id = "
                         "tm.thread_id AND g.until_pos IS NULL)",
                         DB_ARGS(DB_INT(at), DB_INT(b->syncs[k])));
    }
    return rc;
}

int evb_flush(struct event_batch *b)
{
    if (b->failed)
        return DB_ERR;
    if (b->n == 0 && b->nsyncs == 0)
        return DB_OK;
    /* By user, then in the order added: a user's events take ascending
     * positions in that order (a thread's log events too, under -thread). */
    qsort(b->items, b->n, sizeof *b->items, cmp_item);
    struct sbuf events = {0};
    for (size_t i = 0; i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        if (v->log)
            for (size_t m = 0; m < v->nmembers; m++)
                wake_add(&b->wake, v->members[m]);
        else if (i == 0 || v->user_id != b->items[i - 1].user_id)
            wake_add(&b->wake, v->user_id);
    }
    /* 1. Take the positions from the clock (one more for the intervals'
     * bounds when membership changes); its row stays locked until the
     * commit, so positions are handed out in commit order. What follows
     * under it is only the writes and the commit (link_prev runs after). */
    int64_t take = (int64_t)b->n + (b->nsyncs > 0);
    int rc = db_exec("UPDATE stream_clock SET pos = LAST_INSERT_ID(pos + ?) WHERE id = 1",
                     DB_ARGS(DB_INT(take)));
    if (rc == 0 && db_affected() != 1)
        rc = DB_ERR; /* no clock: the schema is older than this code */
    if (rc == 0) {
        int64_t first = db_insert_id() - take + 1;
        if (b->nsyncs > 0)
            rc = sync_logs(b, first++);
        for (size_t i = 0; i < b->n; i++)
            b->items[i].pos = first + (int64_t)i;
    }
    /* 2. The events at their positions: plain ones, log ones, those with
     * their JSON, the thread events per snapshot. */
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        const struct evb_item *v = &b->items[i];
        if (!v->log && v->type != EVENT_THREAD && !v->payload)
            sb_item(&events, DB_JT_ROW(EVENT_ROW), (long long)v->user_id, (long long)v->pos,
                    (int)v->type, (long long)v->thread_id, (long long)v->seq, (long long)v->actor,
                    (long long)v->delivered, (long long)v->read, (long long)v->now);
    }
    if (rc == 0 && events.len > 0)
        rc = db_exec_list(
            "INSERT INTO user_events (user_id, pos, type, thread_id, seq, actor_id, "
            "delivered_seq, read_seq, created_at) SELECT j.u, j.pos, j.type, j.t, "
            "j.seq, j.actor, j.delivered, j.rd, j.at FROM JSON_TABLE(?, '$[*]' " EVENT_ROW_COLUMNS
            ") j",
            &events);
    free(events.s);
    if (rc == 0)
        rc = insert_log_events(b);
    if (rc == 0)
        rc = insert_payload_events(b);
    for (size_t k = 0; rc == 0 && k < b->nsnapshots; k++)
        rc = insert_thread_events(b, k);
    return rc;
}

void evb_drop_typing(struct event_batch *b, int64_t thread_id, int64_t typer)
{
    int64_t(*d)[2] = realloc(b->drops, (b->ndrops + 1) * sizeof *d);
    if (d == NULL)
        return; /* a stale "typing" is harmless: it expires */
    b->drops = d;
    b->drops[b->ndrops][0] = thread_id;
    b->drops[b->ndrops][1] = typer;
    b->ndrops++;
}

/* Tells the other nodes (cluster.h): the events, by user, with their
 * rendered views. */
static void publish_remote(struct event_batch *b, bool with_events)
{
    if (!cluster_enabled() || b->wake.n == 0)
        return;
    struct cluster_event *ev = with_events ? malloc(b->ndeliv * sizeof *ev + 1) : NULL;
    size_t nev = 0;
    for (size_t i = 0; ev && i < b->ndeliv; i++)
        ev[nev++] = (struct cluster_event){b->deliv[i].user_id, b->deliv[i].pos, b->deliv[i].prev,
                                           b->deliv[i].blob};
    cluster_publish_wake(b->wake.ids, b->wake.n, ev, nev, (const int64_t(*)[2])b->drops,
                         with_events ? b->ndrops : 0);
    free(ev);
}

void evb_finish(struct event_batch *b, int rc)
{
    /* A deleted message's body may sit in what the tails hold. And what
     * this transaction rendered may hold a body that another one deleted
     * (and forgot) meanwhile: then its events stay in the database only. */
    bool fresh = tail_forget_gen() == b->gen;
    if ((rc == 0 || rc == DB_ECOMMIT) && b->forget_tails)
        cluster_forget_tails(b->wake.ids, b->wake.n);
    if (rc == 0 && fresh && b->n > 0 && (tail_enabled() || cluster_enabled()))
        link_prev(b);
    if (rc == 0) {
        for (size_t i = 0; fresh && i < b->ndeliv; i++)
            tail_put(b->deliv[i].user_id, b->deliv[i].pos, b->deliv[i].prev, b->deliv[i].blob);
        for (size_t d = 0; d < b->ndrops; d++)
            hub_drop_ephemeral(b->wake.ids, b->wake.n, events_is_typing, b->drops[d]);
    } else if (rc != DB_ECOMMIT) {
        wake_reset(&b->wake);
    }
    if (rc == 0 || rc == DB_ECOMMIT)
        publish_remote(b, rc == 0 && fresh);
    /* After the tails: a woken poll finds there what woke it. */
    wake_flush(&b->wake);
    evb_reset(b);
}

void evb_reset(struct event_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        tail_blob_unref(b->items[i].blob);
        free(b->items[i].nickname);
        free(b->items[i].members);
    }
    free(b->deliv);
    b->deliv = NULL;
    b->ndeliv = 0;
    b->nsyncs = 0;
    for (size_t k = 0; k < b->nsnapshots; k++)
        free(b->snapshots[k]);
    b->nsnapshots = 0;
    b->ndrops = 0;
    b->n = 0;
    b->failed = false;
    b->forget_tails = false;
    b->gen = tail_forget_gen();
    wake_reset(&b->wake);
}

void evb_free(struct event_batch *b)
{
    evb_reset(b);
    free(b->items);
    free(b->snapshots);
    free(b->drops);
    free(b->syncs);
    wake_flush(&b->wake); /* empty: frees it */
    memset(b, 0, sizeof *b);
}

int events_tx(db_tx_fn fn, void *ctx, struct event_batch *b)
{
    int rc = db_tx(fn, ctx);
    evb_finish(b, rc);
    evb_free(b);
    return rc;
}

int events_stream_create(int64_t user_id)
{
    int rc = db_exec("INSERT IGNORE INTO user_streams (user_id, last_pos) VALUES (?, 0)",
                     DB_ARGS(DB_INT(user_id)));
    return rc < 0 ? rc
                  : db_exec("INSERT IGNORE INTO user_acks (user_id, acked_pos) VALUES (?, 0)",
                            DB_ARGS(DB_INT(user_id)));
}

int events_head(int64_t user_id, int64_t *last_pos, int64_t *pruned_pos)
{
    struct db_res *r;
    int rc = db_query("SELECT " EVENTS_STREAM_END(
                          "u.id") ", COALESCE(s.pruned_pos, 0) FROM "
                                  "(SELECT ? AS id) u LEFT JOIN user_streams s ON s.user_id = u.id",
                      &r, DB_ARGS(DB_INT(user_id)));
    if (rc < 0)
        return rc;
    *last_pos = r->nrows ? db_int(r, 0, 0) : 0;
    *pruned_pos = r->nrows ? db_int(r, 0, 1) : 0;
    db_res_free(r);
    return DB_OK;
}

int events_stream_ends(const char *ids_json, struct db_res **out)
{
    /* ORDER BY … DESC LIMIT 1 in the end: one index entry per stream. */
    return db_query("SELECT STRAIGHT_JOIN j.id, " EVENTS_STREAM_END(
                        "j.id") ", COALESCE(s.pruned_pos, 0) FROM " DB_IDS_TABLE
                                " LEFT JOIN user_streams s ON s.user_id = j.id",
                    out, DB_ARGS(DB_STR(ids_json)));
}

/* The columns of events_read's query. */
#define EVENT_COLS                                                                    \
    "x.pos, x.type, x.thread_id, e.actor_id, e.delivered_seq, e.read_seq, e.thread, " \
    "e.is_muted, e.nickname, COALESCE(e.payload, lp.payload), " MESSAGE_COLS          \
    ", " MESSAGE_COLS_AS(lm)
enum {
    EC_POS,
    EC_TYPE,
    EC_THREAD_ID,
    EC_ACTOR,
    EC_DELIVERED,
    EC_READ,
    EC_THREAD,
    EC_IS_MUTED,
    EC_NICKNAME,
    EC_PAYLOAD,
    EC_MESSAGE,
    EC_LAST_MESSAGE = EC_MESSAGE + MC_COUNT
};

/* A thread event as its reader sees it: the snapshot plus the reader's own
 * settings copied at the time (is_muted NULL: not a member then). */
static json_t *thread_event_view(const struct db_res *r, int row)
{
    json_t *t = json_loads(db_str(r, row, EC_THREAD), 0, NULL);
    if (t == NULL)
        return NULL;
    return view_thread_own(t, db_str(r, row, EC_IS_MUTED) != NULL, db_int(r, row, EC_IS_MUTED),
                           db_str(r, row, EC_NICKNAME), db_int(r, row, EC_READ));
}

int events_read(int64_t user_id, int64_t after, int limit, json_t *out, int64_t *next)
{
    struct db_res *r;
    /* The user's own events and those of the logs it reads, merged: the
     * positions first (narrow rows: a derived table with the text columns
     * would be a temporary table on disk), then each own event's row again
     * by its key. */
    int rc = db_query(
        "SELECT " EVENT_COLS " FROM ((SELECT e.pos, e.type, e.thread_id, e.seq FROM "
        "user_events e WHERE e.user_id = ? AND e.pos > ? ORDER BY e.pos LIMIT ?) UNION ALL "
        "(SELECT l.pos, l.type, l.thread_id, l.seq FROM " EVENTS_LOG_ROWS " ORDER BY l.pos "
        "LIMIT ?) "
        "ORDER BY pos LIMIT ?) x LEFT JOIN user_events e ON e.user_id = ? AND e.pos = x.pos "
        "LEFT JOIN thread_log lp ON x.type >= 5 AND lp.thread_id = x.thread_id "
        "AND lp.pos = x.pos "
        "LEFT JOIN messages m ON x.type IN (1, 4) AND m.thread_id = x.thread_id "
        "AND m.seq = x.seq LEFT JOIN messages lm ON x.type = 2 AND lm.thread_id = x.thread_id "
        "AND lm.seq = CAST(JSON_VALUE(e.thread, '$.last_message.seq') AS SIGNED) "
        "ORDER BY x.pos",
        &r,
        DB_ARGS(DB_INT(user_id), DB_INT(after), DB_INT(limit), DB_INT(after), DB_INT(INT64_MAX),
                DB_INT(INT64_MAX), DB_INT(user_id), DB_INT(after), DB_INT(limit), DB_INT(limit),
                DB_INT(user_id)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows; i++) {
        int64_t thread_id = db_int(r, i, EC_THREAD_ID);
        json_t *ev = NULL;
        switch (db_int(r, i, EC_TYPE)) {
        case EVENT_MESSAGE:
        case EVENT_MESSAGE_EDITED: {
            json_t *msg = view_message_row(r, i, EC_MESSAGE);
            if (msg)
                ev = db_int(r, i, EC_TYPE) == EVENT_MESSAGE ? events_message_view(msg)
                                                            : events_edited_view(msg);
            json_decref(msg);
            break;
        }
        case EVENT_MESSAGE_DELETED:
        case EVENT_MESSAGE_HIDDEN:
        case EVENT_MESSAGE_UNHIDDEN:
        case EVENT_REACTION:
        case EVENT_HISTORY_PURGED:
            if (db_str(r, i, EC_PAYLOAD))
                ev = json_loads(db_str(r, i, EC_PAYLOAD), 0, NULL);
            break;
        case EVENT_THREAD: {
            json_t *thread = NULL;
            if (db_str(r, i, EC_THREAD)) {
                thread = thread_event_view(r, i);
            } else {
                /* An event written before snapshots (migration 004). */
                rc = view_thread(user_id, thread_id, &thread);
                if (rc < 0)
                    goto fail;
            }
            /* The snapshot's last message as it is now, like a message
             * event's: an edit shows, a deleted body never comes back. */
            json_t *last = thread ? view_message_row(r, i, EC_LAST_MESSAGE) : NULL;
            if (last)
                json_object_set_new(thread, "last_message", last);
            if (thread)
                ev = json_pack("{s:s, s:o}", "type", "thread", "thread", thread);
            break;
        }
        case EVENT_RECEIPT:
            ev = events_receipt_view(thread_id, db_int(r, i, EC_ACTOR), db_int(r, i, EC_DELIVERED),
                                     db_int(r, i, EC_READ));
            break;
        }
        /* An event whose subject is gone still takes its position. */
        if (ev)
            json_array_append_new(out, ev);
        *next = db_int(r, i, EC_POS);
    }
    db_res_free(r);
    return DB_OK;
fail:
    db_res_free(r);
    return rc;
}

/* The rows events_prune deletes. */
/* clang-format off */
#define PRUNE_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, pos, BIGINT, "%lld")
#define PRUNE_ROW_COLUMNS DB_JT_COLUMNS(PRUNE_ROW)
/* clang-format on */

struct prune_ctx {
    int64_t cutoff;
    int batch;
    int64_t deleted;
};

/* One batch: the oldest events, their users' horizons moved past them
 * (ascending users: the one order of everything that locks these rows),
 * the events deleted. */
static int prune_tx(void *arg)
{
    struct prune_ctx *c = arg;
    c->deleted = 0;
    struct db_res *r;
    int rc = db_query("SELECT user_id, pos FROM user_events WHERE created_at < ? "
                      "ORDER BY created_at LIMIT ?",
                      &r, DB_ARGS(DB_INT(c->cutoff), DB_INT(c->batch)));
    if (rc < 0 || r->nrows == 0) {
        if (rc == 0)
            db_res_free(r);
        return rc;
    }
    struct sbuf rows = {0};
    for (int i = 0; i < r->nrows; i++)
        sb_item(&rows, DB_JT_ROW(PRUNE_ROW), (long long)db_int(r, i, 0),
                (long long)db_int(r, i, 1));
    c->deleted = r->nrows;
    db_res_free(r);
    const char *list = sb_done(&rows);
    rc = list ? db_exec("INSERT INTO user_streams (user_id, last_pos, pruned_pos) SELECT j.u, 0, "
                        "MAX(j.pos) FROM JSON_TABLE(?, '$[*]' " PRUNE_ROW_COLUMNS ") j GROUP BY "
                        "j.u ORDER BY j.u ON DUPLICATE KEY UPDATE pruned_pos = "
                        "GREATEST(pruned_pos, VALUES(pruned_pos))",
                        DB_ARGS(DB_STR(list)))
              : DB_ERR;
    if (rc == 0)
        rc = db_exec("DELETE e FROM JSON_TABLE(?, '$[*]' " PRUNE_ROW_COLUMNS ") j "
                     "STRAIGHT_JOIN user_events e ON e.user_id = j.u AND e.pos = j.pos",
                     DB_ARGS(DB_STR(list)));
    free(rows.s);
    return rc;
}

int64_t events_prune(int64_t cutoff_ms, int batch)
{
    struct prune_ctx c = {cutoff_ms, batch, 0};
    int rc = db_tx(prune_tx, &c);
    return rc < 0 ? rc : c.deleted;
}
