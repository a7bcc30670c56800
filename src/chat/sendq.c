/* sendq.c — group commit of sends (sendq.h, docs/group-commit.md).
 *
 * One batch is one transaction that does for all its messages what the send
 * path does for one (DESIGN.md "Sending a message"), statement by statement
 * over a JSON list (JSON_TABLE) instead of message by message:
 *   1. lock the batch's threads (FOR UPDATE, ascending ids: sends to one
 *      thread still serialise on its row, and two batches lock in one order);
 *   2. read their members (a member check for each sender, the fan-out list);
 *   3. find retries: a (thread, sender, client_msg_id) already stored answers
 *      200 with the stored message, and so does a twin later in the batch;
 *   4. refuse direct sends across a block (403);
 *   5. number the messages (seq = last_seq + 1, … in the batch's order) and
 *      insert them, move the threads' last_seq and the senders' read
 *      positions, append one event per member and message to the streams
 *      (in a group of more than copy_max members, one event to the group's
 *      log instead: chat/events.h), and queue the pushes; the appender takes
 *      the events' positions from the stream clock last, before the commit.
 * A batch that fails after its retries is split: each message is tried
 * alone, so one poisoned message cannot fail the others. */
#include "chat/sendq.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/batchq.h"
#include "chat/attachments.h"
#include "chat/mentions.h"
#include "chat/model.h"
#include "chat/search.h"
#include "db/db.h"
#include "chat/events.h"
#include "live/hub.h"
#include "base/log.h"
#include "base/metrics.h"
#include "push/push.h"
#include "live/tail.h"
#include "base/util.h"

/* The rows of the lists the statements below read (db.h DB_JT_*). Rows
 * with strings are built with json_pack, in the order named here. */
/* clang-format off */
#define KEY_ROW(X, S) X(0, t, BIGINT, "") S X(1, s, BIGINT, "") S X(2, c, VARCHAR(64), "")
#define KEY_ROW_COLUMNS DB_JT_COLUMNS(KEY_ROW)
#define BLOCK_ROW(X, S) X(0, a, BIGINT, "%lld") S X(1, z, BIGINT, "%lld")
#define BLOCK_ROW_COLUMNS DB_JT_COLUMNS(BLOCK_ROW)
#define MESSAGE_ROW(X, S)                                                                     \
    X(0, t, BIGINT, "") S X(1, q, BIGINT, "") S X(2, s, BIGINT, "") S X(3, c, VARCHAR(64), "")  \
    S X(4, b, MEDIUMTEXT, "") S X(5, n, BIGINT, "") S X(6, a, MEDIUMTEXT, "")                 \
    S X(7, r, BIGINT, "") S X(8, f, INT, "") S X(9, m, TEXT, "") S X(10, e, BIGINT, "")
#define MESSAGE_ROW_COLUMNS DB_JT_COLUMNS(MESSAGE_ROW)
#define THREAD_ROW(X, S)                                                                      \
    X(0, id, BIGINT, "%lld") S X(1, q, BIGINT, "%lld") S X(2, n, BIGINT, "%lld")                \
    S X(3, l, INT, "%d")
#define THREAD_ROW_COLUMNS DB_JT_COLUMNS(THREAD_ROW)
#define SENDER_ROW(X, S) X(0, t, BIGINT, "%lld") S X(1, s, BIGINT, "%lld") S X(2, q, BIGINT, "%lld")
#define SENDER_ROW_COLUMNS DB_JT_COLUMNS(SENDER_ROW)
#define REPLY_ROW(X, S) X(0, t, BIGINT, "%lld") S X(1, q, BIGINT, "%lld")
#define REPLY_ROW_COLUMNS DB_JT_COLUMNS(REPLY_ROW)
/* clang-format on */

/* Groups of up to this many members get each message copied into every
 * member's stream (sendq_start). */
static int copy_max = 8;

/* A thread a batch sends into. */
struct bthread {
    int64_t id; /* first: thread_of searches by it */
    bool found, direct, touched;
    bool logged; /* its messages go to its log (events.h), not to every member's stream */
    int64_t last_seq, updated_at, now;
    int64_t disappearing_ms; /* new messages expire this long after they are sent; 0 never */
    int64_t *members;        /* ascending */
    int nmembers, cap;
};

struct batch {
    struct send_job **jobs;
    int n;
    struct bthread *threads; /* ascending ids */
    int nthreads;
    char *thread_ids; /* the ids as a JSON array */
    struct event_batch events;
};

/* The batch's thread id (threads are ascending by id, their first member). */
static struct bthread *thread_of(struct batch *b, int64_t id)
{
    return bsearch(&id, b->threads, (size_t)b->nthreads, sizeof *b->threads, int64_cmp);
}

static bool same_key(const struct send_job *a, const struct send_job *b)
{
    return a->thread_id == b->thread_id && a->sender == b->sender &&
           strcmp(a->client_msg_id, b->client_msg_id) == 0;
}

/* Steps 1–2: locks the threads and reads their members; marks the jobs whose
 * thread is missing or whose sender is not a member 404. */
static int lock_threads(struct batch *b)
{
    struct db_res *r;
    int rc =
        db_query("SELECT STRAIGHT_JOIN t.id, t.kind, t.last_seq, t.updated_at, t.disappearing_s, "
                 "t.logged "
                 "FROM " DB_IDS_TABLE " JOIN threads t ON t.id = j.id FOR UPDATE",
                 &r, DB_ARGS(DB_STR(b->thread_ids)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows; i++) {
        struct bthread *t = thread_of(b, db_int(r, i, 0));
        if (t == NULL)
            continue;
        t->found = true;
        t->direct = strcmp(db_str(r, i, 1), "direct") == 0;
        t->last_seq = db_int(r, i, 2);
        t->updated_at = db_int(r, i, 3);
        t->disappearing_ms = db_int(r, i, 4) * 1000;
        t->logged = db_int(r, i, 5) != 0;
    }
    db_res_free(r);
    rc = db_query(
        "SELECT STRAIGHT_JOIN tm.thread_id, tm.owner_id FROM " DB_IDS_TABLE
        " JOIN thread_members tm ON tm.thread_id = j.id ORDER BY tm.thread_id, tm.owner_id",
        &r, DB_ARGS(DB_STR(b->thread_ids)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows; i++) {
        struct bthread *t = thread_of(b, db_int(r, i, 0));
        if (t == NULL)
            continue;
        if (t->nmembers == t->cap) {
            int cap = t->cap ? t->cap * 2 : 8;
            int64_t *m = realloc(t->members, (size_t)cap * sizeof *m);
            if (m == NULL) {
                db_res_free(r);
                return DB_ERR;
            }
            t->members = m;
            t->cap = cap;
        }
        t->members[t->nmembers++] = db_int(r, i, 1);
    }
    db_res_free(r);
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        struct bthread *t = &b->threads[j->thread];
        if (!t->found || int64_find(t->members, (size_t)t->nmembers, j->sender) < 0)
            j->status = SEND_NOT_MEMBER;
    }
    return DB_OK;
}

/* Step 3: retries of stored messages (200), and twins within the batch. */
static int find_retries(struct batch *b)
{
    json_t *keys = json_array();
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == 0)
            json_array_append_new(keys, json_pack("[I, I, s]", (json_int_t)j->thread_id,
                                                  (json_int_t)j->sender, j->client_msg_id));
    }
    if (json_array_size(keys) == 0) {
        json_decref(keys);
        return DB_OK;
    }
    char *s = json_dumps(keys, JSON_COMPACT);
    json_decref(keys);
    if (s == NULL)
        return DB_ERR;
    struct db_res *r;
    int rc = db_query("SELECT STRAIGHT_JOIN " MESSAGE_COLS
                      " FROM JSON_TABLE(?, '$[*]' " KEY_ROW_COLUMNS
                      ") j JOIN messages m ON m.thread_id = j.t AND m.sender_id = j.s "
                      "AND m.client_msg_id = j.c",
                      &r, DB_ARGS(DB_STR(s)));
    free(s);
    if (rc < 0)
        return rc;
    for (int row = 0; row < r->nrows; row++) {
        struct send_job key = {.thread_id = db_int(r, row, MC_THREAD_ID),
                               .sender = db_int(r, row, MC_SENDER_ID),
                               .client_msg_id = db_str(r, row, MC_CLIENT_MSG_ID)};
        for (int i = 0; i < b->n; i++) {
            struct send_job *j = b->jobs[i];
            if (j->status == 0 && same_key(j, &key)) {
                j->status = SEND_RETRY;
                j->message = view_message_row(r, row, 0);
            }
        }
    }
    db_res_free(r);
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        for (int k = 0; k < i && j->status == 0; k++)
            if (b->jobs[k]->status == 0 && b->jobs[k]->twin == 0 && same_key(b->jobs[k], j))
                j->twin = k + 1;
    }
    return DB_OK;
}

/* The other member of a direct thread, or 0. */
static int64_t other_member(const struct bthread *t, int64_t me)
{
    for (int i = 0; i < t->nmembers; i++)
        if (t->members[i] != me)
            return t->members[i];
    return 0;
}

/* Step 4: direct sends across a block in either direction get 403. */
static int refuse_blocked(struct batch *b)
{
    struct sbuf pairs = {0};
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        struct bthread *t = &b->threads[j->thread];
        int64_t other = t->direct && j->status == 0 && !j->twin ? other_member(t, j->sender) : 0;
        if (other) {
            sb_item(&pairs, DB_JT_ROW(BLOCK_ROW), (long long)j->sender, (long long)other);
            sb_item(&pairs, DB_JT_ROW(BLOCK_ROW), (long long)other, (long long)j->sender);
        }
    }
    if (pairs.len == 0)
        return DB_OK;
    struct db_res *r;
    int rc = db_query_list("SELECT STRAIGHT_JOIN b.owner_id, b.blocked_id FROM JSON_TABLE(?, "
                           "'$[*]' " BLOCK_ROW_COLUMNS
                           ") j JOIN blocks b ON b.owner_id = j.a AND b.blocked_id = j.z",
                           &pairs, &r);
    if (rc < 0)
        return rc;
    for (int row = 0; row < r->nrows; row++) {
        int64_t x = db_int(r, row, 0), y = db_int(r, row, 1);
        for (int i = 0; i < b->n; i++) {
            struct send_job *j = b->jobs[i];
            if (j->status != 0 || j->twin || !b->threads[j->thread].direct)
                continue;
            int64_t other = other_member(&b->threads[j->thread], j->sender);
            if ((j->sender == x && other == y) || (j->sender == y && other == x))
                j->status = SEND_BLOCKED;
        }
    }
    db_res_free(r);
    return DB_OK;
}

/* Step 4b: each job's attachments must be the sender's complete, unexpired
 * uploads, not in another message (nor in another job of this batch):
 * locked here, marked attached with the message (attach_uploads). */
static int claim_attachments(struct batch *b)
{
    json_t *ids = json_array();
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        for (int k = 0; j->status == 0 && !j->twin && k < j->nattachments; k++)
            json_array_append_new(ids, json_integer(j->attachment_ids[k]));
    }
    char *s = json_array_size(ids) ? json_dumps(ids, JSON_COMPACT) : NULL;
    size_t nids = json_array_size(ids);
    json_decref(ids);
    if (nids == 0)
        return DB_OK;
    if (s == NULL)
        return DB_ERR;
    struct db_res *r;
    int rc = attachments_lock(s, &r);
    free(s);
    if (rc < 0)
        return rc;
    bool *used = calloc((size_t)r->nrows + 1, sizeof *used);
    int *rows = malloc(sizeof *rows * (size_t)(nids + 1));
    if (used == NULL || rows == NULL) {
        free(used);
        free(rows);
        db_res_free(r);
        return DB_ERR;
    }
    int64_t now = now_ms();
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status != 0 || j->twin || j->nattachments == 0)
            continue;
        bool ok = true;
        for (int k = 0; k < j->nattachments && ok; k++) {
            rows[k] = -1;
            for (int row = 0; row < r->nrows && rows[k] < 0; row++)
                if (db_int(r, row, 0) == j->attachment_ids[k])
                    rows[k] = row;
            ok = rows[k] >= 0 && !used[rows[k]] &&
                 attachments_claimable(r, rows[k], j->sender, now);
        }
        if (!ok) {
            j->status = SEND_BAD_ATTACHMENT;
            continue;
        }
        json_t *views = json_array();
        for (int k = 0; k < j->nattachments; k++) {
            used[rows[k]] = true;
            json_array_append_new(views, attachments_row_view(r, rows[k]));
        }
        j->attachments = json_dumps(views, JSON_COMPACT);
        json_decref(views);
        if (j->attachments == NULL)
            rc = DB_ERR;
    }
    free(used);
    free(rows);
    db_res_free(r);
    return rc;
}

/* Step 4c: a reply must answer a message of its thread that is not
 * deleted; its snippet is read here, under the thread's lock. */
static int check_replies(struct batch *b)
{
    struct sbuf keys = {0};
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == 0 && !j->twin && j->reply_to_seq > 0)
            sb_item(&keys, DB_JT_ROW(REPLY_ROW), (long long)j->thread_id,
                    (long long)j->reply_to_seq);
    }
    if (keys.len == 0)
        return DB_OK;
    struct db_res *r;
    int rc = db_query_list("SELECT STRAIGHT_JOIN m.thread_id, m.seq, " REPLY_TO_JSON(
                               m) " FROM JSON_TABLE(?, '$[*]' " REPLY_ROW_COLUMNS
                                  ") j JOIN messages m ON m.thread_id = j.t AND m.seq = j.q "
                                  "WHERE m.deleted_at IS NULL",
                           &keys, &r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status != 0 || j->twin || j->reply_to_seq <= 0)
            continue;
        for (int row = 0; row < r->nrows && j->reply_to == NULL; row++)
            if (db_int(r, row, 0) == j->thread_id && db_int(r, row, 1) == j->reply_to_seq &&
                (j->reply_to = strdup(db_str(r, row, 2))) == NULL)
                rc = DB_ERR;
        if (j->reply_to == NULL)
            j->status = SEND_BAD_REPLY;
    }
    db_res_free(r);
    return rc;
}

/* Step 4d: who each message mentions (only bodies with an `@` cost a
 * statement). */
static int find_mentions(struct batch *b)
{
    int rc = DB_OK;
    for (int i = 0; rc == 0 && i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == 0 && !j->twin)
            rc = mentions_resolve(j->thread_id, j->sender, !b->threads[j->thread].direct, j->body,
                                  j->body_len, &j->mentions);
    }
    return rc;
}

/* Step 5d: the claimed uploads belong to their messages now. */
static int attach_uploads(struct batch *b)
{
    json_t *rows = json_array();
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        for (int k = 0; j->status == SEND_STORED && k < j->nattachments; k++)
            json_array_append_new(rows, json_pack("[I, I, I]", (json_int_t)j->attachment_ids[k],
                                                  (json_int_t)j->thread_id, (json_int_t)j->seq));
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return DB_OK;
    }
    char *s = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    int rc = s ? attachments_attach(s) : DB_ERR;
    free(s);
    return rc;
}

/* Step 5a: the message rows, the threads' last_seq and updated_at, and the
 * senders' read and delivered positions. */
static int store_messages(struct batch *b)
{
    json_t *rows = json_array();
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == SEND_STORED)
            json_array_append_new(
                rows,
                json_pack("[I, I, I, s, s%, I, s, I, I, s, I]", (json_int_t)j->thread_id,
                          (json_int_t)j->seq, (json_int_t)j->sender, j->client_msg_id, j->body,
                          j->body_len, (json_int_t)j->now, j->attachments ? j->attachments : "",
                          (json_int_t)j->reply_to_seq, (json_int_t)j->forward_depth,
                          j->mentions ? j->mentions : "", (json_int_t)j->expires_at));
    }
    char *s = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (s == NULL)
        return DB_ERR;
    int rc = db_exec("INSERT INTO messages (thread_id, seq, sender_id, client_msg_id, body, "
                     "created_at, attachments, reply_to_seq, forward_depth, mentions, expires_at) "
                     "SELECT j.t, j.q, j.s, j.c, j.b, j.n, NULLIF(j.a, ''), NULLIF(j.r, 0), "
                     "NULLIF(j.f, 0), NULLIF(j.m, ''), NULLIF(j.e, 0) "
                     "FROM JSON_TABLE(?, '$[*]' " MESSAGE_ROW_COLUMNS ") j",
                     DB_ARGS(DB_STR(s)));
    free(s);
    if (rc < 0)
        return rc;

    struct sbuf threads = {0}, senders = {0};
    for (int k = 0; k < b->nthreads; k++) {
        struct bthread *t = &b->threads[k];
        if (t->touched)
            sb_item(&threads, DB_JT_ROW(THREAD_ROW), (long long)t->id, (long long)t->last_seq,
                    (long long)t->now, (int)t->logged);
    }
    /* A sender's position moves to its last message in the thread: the
     * highest seq of its jobs, listed once per (thread, sender). */
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        bool last = j->status == SEND_STORED;
        for (int k = i + 1; k < b->n && last; k++)
            if (b->jobs[k]->status == SEND_STORED && b->jobs[k]->thread_id == j->thread_id &&
                b->jobs[k]->sender == j->sender)
                last = false;
        if (last)
            sb_item(&senders, DB_JT_ROW(SENDER_ROW), (long long)j->thread_id, (long long)j->sender,
                    (long long)j->seq);
    }
    rc = db_exec_list("UPDATE threads t JOIN JSON_TABLE(?, '$[*]' " THREAD_ROW_COLUMNS
                      ") j ON t.id = j.id "
                      "SET t.last_seq = j.q, t.updated_at = j.n, t.logged = j.l",
                      &threads);
    /* The senders' own positions, by key (and a send into a message request
     * accepts it). (The members' rows are not
     * touched: a thread list orders by the thread's updated_at.) */
    if (rc == 0)
        rc = db_exec_list("UPDATE JSON_TABLE(?, '$[*]' " SENDER_ROW_COLUMNS ") k "
                          "STRAIGHT_JOIN "
                          "thread_members tm ON tm.owner_id = k.s AND tm.thread_id = k.t "
                          "SET tm.last_read_seq = GREATEST(tm.last_read_seq, k.q), "
                          "tm.last_delivered_seq = GREATEST(tm.last_delivered_seq, k.q), "
                          "tm.request_from = NULL",
                          &senders);
    free(senders.s);
    return rc;
}

/* Step 5b: one message event per member and message (the event as the API
 * shows it goes along, for the in-memory tails), or, in a logged group, one
 * event in the group's log; flushed with the rest. A group of more than
 * copy_max members is switched to its log by its first send from then on
 * (messages before stay copied; evb_sync_log opens every member's interval
 * at a position below this batch's events). */
static void add_events(struct batch *b)
{
    for (int k = 0; k < b->nthreads; k++) {
        struct bthread *t = &b->threads[k];
        if (t->touched && !t->logged && !t->direct && t->nmembers > copy_max) {
            t->logged = true;
            evb_sync_log(&b->events, t->id);
        }
    }
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        struct bthread *t = &b->threads[j->thread];
        if (j->status != SEND_STORED)
            continue;
        json_t *ev = events_message_view(j->message);
        struct tail_blob *blob = ev ? tail_blob_of(ev) : NULL;
        json_decref(ev);
        if (t->logged)
            evb_add_log(&b->events, j->thread_id, EVENT_MESSAGE, j->seq, j->now, blob, false,
                        t->members, (size_t)t->nmembers);
        else
            for (int m = 0; m < t->nmembers; m++)
                evb_add(&b->events, t->members[m], EVENT_MESSAGE, j->thread_id, j->seq, 0, 0, 0,
                        j->now, blob);
        tail_blob_unref(blob);
        /* The message supersedes the sender's "typing" in this thread. */
        evb_drop_typing(&b->events, j->thread_id, j->sender);
    }
}

/* Step 5c: the push outbox. */
static int queue_pushes(struct batch *b)
{
    struct sbuf rows = {0};
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == SEND_STORED)
            sb_item(&rows, DB_JT_ROW(PUSH_MESSAGE_ROW), (long long)j->thread_id, (long long)j->seq,
                    (long long)j->sender, (long long)j->now);
    }
    const char *s = sb_done(&rows);
    int rc = s ? push_queue_messages(s) : DB_ERR;
    free(rows.s);
    return rc;
}

static int batch_tx(void *arg)
{
    struct batch *b = arg;
    evb_reset(&b->events);
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        json_decref(j->message);
        j->message = NULL;
        free(j->attachments);
        j->attachments = NULL;
        free(j->reply_to);
        j->reply_to = NULL;
        free(j->mentions);
        j->mentions = NULL;
        j->status = 0;
        j->twin = 0;
    }
    for (int k = 0; k < b->nthreads; k++) {
        struct bthread *t = &b->threads[k];
        t->found = t->direct = t->touched = t->logged = false;
        t->nmembers = 0;
    }
    int rc;
    if ((rc = lock_threads(b)) < 0 || (rc = find_retries(b)) < 0 || (rc = refuse_blocked(b)) < 0 ||
        (rc = claim_attachments(b)) < 0 || (rc = check_replies(b)) < 0 ||
        (rc = find_mentions(b)) < 0)
        return rc;

    /* The time is taken under the threads' locks, and never before a
     * thread's last change, so created_at follows seq order. */
    int64_t now = now_ms();
    for (int k = 0; k < b->nthreads; k++)
        b->threads[k].now = now > b->threads[k].updated_at ? now : b->threads[k].updated_at;
    bool any = false;
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status != 0 || j->twin)
            continue;
        struct bthread *t = &b->threads[j->thread];
        j->status = SEND_STORED;
        j->seq = ++t->last_seq;
        j->now = t->now;
        j->expires_at = t->disappearing_ms ? t->now + t->disappearing_ms : 0;
        t->touched = any = true;
    }
    if (!any)
        return evb_flush(&b->events);
    /* A forward's attachments: new rows on the source's blobs. */
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == SEND_STORED && j->forward_attachments &&
            (rc = attachments_copy(j->sender, j->forward_attachments, j->thread_id, j->seq, j->now,
                                   &j->attachments)) < 0)
            return rc;
    }
    for (int i = 0; i < b->n; i++) {
        struct send_job *j = b->jobs[i];
        if (j->status == SEND_STORED)
            j->message = view_message(&(struct message_fields){
                .thread_id = j->thread_id,
                .seq = j->seq,
                .sender_id = j->sender,
                .client_msg_id = j->client_msg_id,
                .body = j->body,
                .body_len = j->body_len,
                .created_at = j->now,
                .attachments = j->attachments,
                .reply_to_seq = j->reply_to_seq,
                .reply_to = j->reply_to,
                .forward_depth = j->forward_depth,
                .mentions = j->mentions,
                .expires_at = j->expires_at,
            });
    }
    add_events(b);
    if ((rc = store_messages(b)) < 0 || (rc = attach_uploads(b)) < 0 || (rc = queue_pushes(b)) < 0)
        return rc;
    return evb_flush(&b->events);
}

/* Builds the batch's thread table (ascending, unique) and points each job at
 * its thread. Returns false when out of memory. */
static bool batch_prepare(struct batch *b)
{
    int64_t *ids = malloc((size_t)b->n * sizeof *ids);
    b->threads = calloc((size_t)b->n, sizeof *b->threads);
    if (ids == NULL || b->threads == NULL) {
        free(ids);
        return false;
    }
    for (int i = 0; i < b->n; i++)
        ids[i] = b->jobs[i]->thread_id;
    qsort(ids, (size_t)b->n, sizeof *ids, int64_cmp);
    for (int i = 0; i < b->n; i++)
        if (b->nthreads == 0 || b->threads[b->nthreads - 1].id != ids[i])
            b->threads[b->nthreads++].id = ids[i];
    for (int k = 0; k < b->nthreads; k++)
        ids[k] = b->threads[k].id;
    struct sbuf list = {0};
    sb_ids(&list, ids, (size_t)b->nthreads);
    b->thread_ids = sb_done(&list) ? list.s : NULL;
    if (b->thread_ids == NULL)
        free(list.s);
    free(ids);
    for (int i = 0; i < b->n; i++)
        b->jobs[i]->thread = (int)(thread_of(b, b->jobs[i]->thread_id) - b->threads);
    return b->thread_ids != NULL;
}

static void batch_free(struct batch *b)
{
    for (int k = 0; k < b->nthreads; k++)
        free(b->threads[k].members);
    free(b->threads);
    free(b->thread_ids);
    evb_free(&b->events);
}

/* Job j is done: tells its submitter. */
static void job_done(struct send_job *j)
{
    if (j->done.fn)
        j->done.fn(j->done.arg);
}

void sendq_job_clear(struct send_job *j)
{
    json_decref(j->message);
    j->message = NULL;
    free(j->attachments);
    j->attachments = NULL;
    free(j->reply_to);
    j->reply_to = NULL;
    free(j->mentions);
    j->mentions = NULL;
}

/* Stores jobs[0..n) as one transaction (or, if that fails, one by one),
 * wakes the members, and tells every job's submitter. */
static void run_jobs(struct send_job **jobs, int n)
{
    struct batch b = {.jobs = jobs, .n = n};
    int rc = batch_prepare(&b) ? db_tx(batch_tx, &b) : DB_ERR;
    if (rc < 0 && n > 1) {
        log_warn("sendq: a batch of %d failed (%d); storing its messages one by one", n, rc);
        evb_finish(&b.events, rc); /* DB_ECOMMIT: wakes, in case it did commit */
        batch_free(&b);
        for (int i = 0; i < n; i++)
            run_jobs(&jobs[i], 1);
        return;
    }
    int64_t committed_us = mono_us();
    for (int i = 0; i < n; i++) {
        struct send_job *j = jobs[i];
        if (rc < 0) {
            j->status = rc;
            continue;
        }
        if (j->twin) {
            struct send_job *first = jobs[j->twin - 1];
            j->status = first->status == SEND_STORED ? SEND_RETRY : first->status;
            j->message = first->message ? json_deep_copy(first->message) : NULL;
        }
        if (j->status == SEND_STORED)
            metrics_stage(STAGE_SEND_COMMIT, committed_us - j->arrived_us);
    }
    evb_finish(&b.events, rc); /* the tails, then the wake-ups */
    if (rc == 0) {             /* the indexer takes the new messages */
        int64_t *ids = malloc(((size_t)b.nthreads + 1) * sizeof *ids);
        size_t nids = 0;
        for (int k = 0; ids && k < b.nthreads; k++)
            if (b.threads[k].touched)
                ids[nids++] = b.threads[k].id;
        search_note(ids, nids); /* out of memory: the janitor's catch-up finds them */
        free(ids);
    }
    batch_free(&b);
    for (int i = 0; i < n; i++)
        job_done(jobs[i]);
}

static struct batchq queue;

static void run_batch(void **jobs, int n) { run_jobs((struct send_job **)jobs, n); }

int sendq_start(int workers, int batch_max, int copy_max_members)
{
    copy_max = copy_max_members;
    return batchq_start(&queue, "sendq", workers, batch_max, run_batch);
}

void sendq_stop(void) { batchq_stop(&queue); }

bool sendq_submit(struct send_job *j, struct completion done)
{
    j->done = done;
    if (batchq_push(&queue, j))
        return false;
    j->done.fn = NULL;
    run_jobs(&j, 1);
    return true;
}
