/* acks.c — acknowledgements of inbox cursors in batches (acks.h).
 *
 * One batch, one transaction, a fixed number of statements:
 *   0. check each cursor against its stream (its end, its pruned horizon);
 *      a device's cursor that is not one gets ACK_CURSOR_EXPIRED;
 *   1. lock the users' acknowledgement marks (user_acks, ascending users);
 *   2. find, per user and thread, the newest message event between the mark
 *      and the new position;
 *   3. lock those member rows (FOR UPDATE) and keep the ones whose
 *      delivered_seq moves forward; move them;
 *   4. receipt events, by the one receipt rule (chat/receipts.h);
 *   5. move the marks (every user has one from registration on).
 * A batch that fails after its retries is split into single users. */
#include "chat/acks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/batchq.h"
#include "db/db.h"
#include "chat/events.h"
#include "chat/receipts.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "base/log.h"
#include "live/tail.h"
#include "base/util.h"

/* The rows of the lists the statements below read. */
/* clang-format off */
#define MEMBER_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, t, BIGINT, "%lld")
#define MEMBER_ROW_COLUMNS DB_JT_COLUMNS(MEMBER_ROW)
#define MOVE_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, t, BIGINT, "%lld") S X(2, q, BIGINT, "%lld")
#define MOVE_ROW_COLUMNS DB_JT_COLUMNS(MOVE_ROW)
#define MARK_ROW(X, S) X(0, u, BIGINT, "%lld") S X(1, p, BIGINT, "%lld")
#define MARK_ROW_COLUMNS DB_JT_COLUMNS(MARK_ROW)
/* clang-format on */

struct ack_job {
    int64_t user_id, session_id, pos;
    struct ack_result *out;
    struct completion done; /* fn NULL: the caller runs it itself */
};

/* One member whose delivered_seq moves. */
struct move {
    int64_t user_id, thread_id, old, seq, read;
};

struct ack_batch {
    struct ack_job **jobs; /* by user */
    int n;
    int *result;                  /* per job: DB_OK or ACK_CURSOR_EXPIRED */
    int64_t *last;                /* per user: the stream's last position */
    uint32_t *version;            /* per user: hub_stream_version before it was read */
    int64_t *users, *pos, *acked; /* unique users, ascending; their new and old marks */
    bool *has_mark;               /* per user: its user_acks row exists */
    int nusers;
    struct move *moves;
    int nmoves;
    struct event_batch events;
};

static struct batchq queue;

#define NOTE_SLOTS 8192 /* a power of two */
#define NOTE_THREADS 8

/* The last read of a user's stream (acks_note_read). */
struct read_note {
    int64_t user_id, from, to;
    int n;
    int64_t moves[NOTE_THREADS][2];
};

static pthread_mutex_t notes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct read_note notes[NOTE_SLOTS];

void acks_note_read(int64_t user_id, int64_t from, int64_t to, const int64_t (*moves)[2], int n)
{
    if (n > NOTE_THREADS || to <= from)
        return;
    struct read_note *e = &notes[(uint64_t)user_id & (NOTE_SLOTS - 1)];
    pthread_mutex_lock(&notes_mu);
    e->user_id = user_id;
    e->from = from;
    e->to = to;
    e->n = n;
    memcpy(e->moves, moves, (size_t)n * sizeof *moves);
    pthread_mutex_unlock(&notes_mu);
}

/* Copies the note of user_id for exactly (from, to] into *out; false if none. */
static bool note_get(int64_t user_id, int64_t from, int64_t to, struct read_note *out)
{
    struct read_note *e = &notes[(uint64_t)user_id & (NOTE_SLOTS - 1)];
    pthread_mutex_lock(&notes_mu);
    bool hit = e->user_id == user_id && e->from == from && e->to == to;
    if (hit)
        *out = *e;
    pthread_mutex_unlock(&notes_mu);
    return hit;
}

static int cmp_job(const void *x, const void *y)
{
    const struct ack_job *a = *(struct ack_job *const *)x, *b = *(struct ack_job *const *)y;
    return a->user_id < b->user_id ? -1 : a->user_id > b->user_id;
}

static int find_user(const struct ack_batch *b, int64_t user_id)
{
    return int64_find(b->users, (size_t)b->nusers, user_id);
}

/* Step 0: checks each job's cursor; sets b->pos to the furthest valid one
 * of each user (0: none). */
static int check_cursors(struct ack_batch *b, const char *ids)
{
    struct db_res *r;
    for (int i = 0; i < b->nusers; i++)
        b->version[i] = hub_stream_version(b->users[i]);
    /* The end and the pruned horizon of each stream. */
    int rc = events_stream_ends(ids, &r);
    if (rc < 0)
        return rc;
    int64_t *last = calloc((size_t)b->nusers, sizeof *last);
    int64_t *pruned = calloc((size_t)b->nusers, sizeof *pruned);
    if (last == NULL || pruned == NULL) {
        free(last), free(pruned), db_res_free(r);
        return DB_ERR;
    }
    for (int row = 0; row < r->nrows; row++) {
        int i = find_user(b, db_int(r, row, 0));
        if (i >= 0) {
            last[i] = db_int(r, row, 1);
            pruned[i] = db_int(r, row, 2);
        }
    }
    db_res_free(r);
    for (int i = 0; i < b->nusers; i++) {
        b->pos[i] = 0;
        b->last[i] = last[i];
    }
    for (int k = 0; k < b->n; k++) {
        int i = find_user(b, b->jobs[k]->user_id);
        int64_t since = b->jobs[k]->pos;
        /* Below the horizon: events after it were pruned; past the end: not
         * a position this stream gave out. */
        b->result[k] = since > last[i] || since < pruned[i] ? ACK_CURSOR_EXPIRED : DB_OK;
        if (b->result[k] == DB_OK && since > b->pos[i])
            b->pos[i] = since;
    }
    free(last), free(pruned);
    return DB_OK;
}

/* Steps 1–3: the marks, the newest messages past them, the member rows. */
static int find_moves(struct ack_batch *b)
{
    struct sbuf ids = {0};
    for (int i = 0; i < b->nusers; i++)
        sb_item(&ids, "%lld", (long long)b->users[i]);
    const char *s = sb_done(&ids);
    struct db_res *r = NULL;
    int rc = s ? check_cursors(b, s) : DB_ERR;
    if (rc == 0)
        rc = db_query("SELECT STRAIGHT_JOIN a.user_id, a.acked_pos FROM " DB_IDS_TABLE
                      " JOIN user_acks a ON a.user_id = j.id FOR UPDATE",
                      &r, DB_ARGS(DB_STR(s)));
    free(ids.s);
    if (rc < 0)
        return rc;
    for (int i = 0; i < b->nusers; i++)
        b->acked[i] = -1; /* no mark row yet */
    for (int row = 0; row < r->nrows; row++) {
        int i = find_user(b, db_int(r, row, 0));
        if (i >= 0)
            b->acked[i] = db_int(r, row, 1);
    }
    for (int i = 0; i < b->nusers; i++)
        b->has_mark[i] = b->acked[i] >= 0;
    for (int i = 0; i < b->nusers; i++)
        if (b->acked[i] < 0)
            b->acked[i] = 0;
    db_res_free(r);

    /* The newest message event per thread between each user's marks: one
     * statement per user, as a range of its stream (joined to a JSON list,
     * MariaDB would read each user's whole stream). */
    int n = 0, cap = 0;
    struct sbuf pairs = {0};
    for (int i = 0; i < b->nusers; i++) {
        if (b->pos[i] <= b->acked[i])
            continue;
        struct read_note note;
        if (note_get(b->users[i], b->acked[i], b->pos[i], &note)) {
            if (n + note.n > cap) {
                cap = (n + note.n) * 2;
                struct move *mv = realloc(b->moves, (size_t)cap * sizeof *mv);
                if (mv == NULL) {
                    free(pairs.s);
                    return DB_ERR;
                }
                b->moves = mv;
            }
            for (int k = 0; k < note.n; k++, n++) {
                b->moves[n] = (struct move){.user_id = b->users[i],
                                            .thread_id = note.moves[k][0],
                                            .seq = note.moves[k][1],
                                            .old = -1};
                sb_item(&pairs, DB_JT_ROW(MEMBER_ROW), (long long)b->users[i],
                        (long long)b->moves[n].thread_id);
            }
            continue;
        }
        /* Its own message events and those of the logs it reads. */
        rc = db_query("SELECT x.t, MAX(x.q) FROM (SELECT thread_id AS t, seq AS q FROM "
                      "user_events WHERE user_id = ? AND pos > ? AND pos <= ? AND type = 1 "
                      "UNION ALL SELECT l.thread_id, l.seq FROM " EVENTS_LOG_ROWS
                      " WHERE l.type = 1) x GROUP BY x.t ORDER BY x.t",
                      &r,
                      DB_ARGS(DB_INT(b->users[i]), DB_INT(b->acked[i]), DB_INT(b->pos[i]),
                              DB_INT(b->acked[i]), DB_INT(b->pos[i]), DB_INT(b->pos[i]),
                              DB_INT(b->users[i]), DB_INT(b->acked[i])));
        if (rc < 0) {
            free(pairs.s);
            return rc;
        }
        if (n + r->nrows > cap) {
            cap = (n + r->nrows) * 2;
            struct move *mv = realloc(b->moves, (size_t)cap * sizeof *mv);
            if (mv == NULL) {
                db_res_free(r);
                free(pairs.s);
                return DB_ERR;
            }
            b->moves = mv;
        }
        for (int row = 0; row < r->nrows; row++, n++) {
            b->moves[n] = (struct move){.user_id = b->users[i],
                                        .thread_id = db_int(r, row, 0),
                                        .seq = db_int(r, row, 1),
                                        .old = -1};
            sb_item(&pairs, DB_JT_ROW(MEMBER_ROW), (long long)b->users[i],
                    (long long)b->moves[n].thread_id);
        }
        db_res_free(r);
    }
    if (n == 0) {
        free(pairs.s);
        return DB_OK;
    }
    /* A plain read first: most candidates do not move (a sender's own
     * message is delivered already), and locking those rows would wait for
     * the sends that hold them. Only the movers are locked and read again. */
    rc = db_query_list("SELECT STRAIGHT_JOIN tm.owner_id, tm.thread_id, tm.last_delivered_seq "
                       "FROM JSON_TABLE(?, '$[*]' " MEMBER_ROW_COLUMNS ") j "
                       "JOIN thread_members tm ON tm.owner_id = j.u AND tm.thread_id = j.t",
                       &pairs, &r);
    if (rc < 0)
        return rc;
    struct sbuf movers = {0};
    for (int row = 0, m = 0; row < r->nrows; row++) {
        int64_t u = db_int(r, row, 0), t = db_int(r, row, 1);
        while (m < n &&
               (b->moves[m].user_id < u || (b->moves[m].user_id == u && b->moves[m].thread_id < t)))
            m++;
        if (m < n && b->moves[m].user_id == u && b->moves[m].thread_id == t &&
            db_int(r, row, 2) < b->moves[m].seq)
            sb_item(&movers, DB_JT_ROW(MEMBER_ROW), (long long)u, (long long)t);
    }
    db_res_free(r);
    if (movers.len == 0) {
        b->nmoves = 0;
        return DB_OK;
    }
    rc = db_query_list("SELECT STRAIGHT_JOIN tm.owner_id, tm.thread_id, tm.last_delivered_seq, "
                       "tm.last_read_seq FROM JSON_TABLE(?, '$[*]' " MEMBER_ROW_COLUMNS
                       ") j JOIN thread_members tm ON tm.owner_id = j.u AND tm.thread_id = j.t "
                       "FOR UPDATE",
                       &movers, &r);
    if (rc < 0)
        return rc;
    /* Both lists are in (user, thread) order. */
    for (int row = 0, m = 0; row < r->nrows; row++) {
        int64_t u = db_int(r, row, 0), t = db_int(r, row, 1);
        while (m < n &&
               (b->moves[m].user_id < u || (b->moves[m].user_id == u && b->moves[m].thread_id < t)))
            m++;
        if (m < n && b->moves[m].user_id == u && b->moves[m].thread_id == t) {
            b->moves[m].old = db_int(r, row, 2);
            b->moves[m].read = db_int(r, row, 3);
        }
    }
    db_res_free(r);
    /* Keep the members (a row was found) whose position moves forward. */
    b->nmoves = 0;
    for (int m = 0; m < n; m++)
        if (b->moves[m].old >= 0 && b->moves[m].old < b->moves[m].seq)
            b->moves[b->nmoves++] = b->moves[m];
    return DB_OK;
}

static int ack_tx(void *arg)
{
    struct ack_batch *b = arg;
    evb_reset(&b->events);
    b->nmoves = 0;
    int rc = find_moves(b);
    if (rc < 0)
        return rc;
    int64_t now = now_ms();
    if (b->nmoves > 0) {
        struct sbuf moves = {0};
        for (int m = 0; m < b->nmoves; m++)
            sb_item(&moves, DB_JT_ROW(MOVE_ROW), (long long)b->moves[m].user_id,
                    (long long)b->moves[m].thread_id, (long long)b->moves[m].seq);
        rc = db_exec_list("UPDATE thread_members tm JOIN JSON_TABLE(?, '$[*]' " MOVE_ROW_COLUMNS
                          ") j ON tm.owner_id = j.u AND tm.thread_id = j.t "
                          "SET tm.last_delivered_seq = GREATEST(tm.last_delivered_seq, j.q)",
                          &moves);
        if (rc < 0)
            return rc;
        struct receipt_move *rm = malloc((size_t)b->nmoves * sizeof *rm);
        if (rm == NULL)
            return DB_ERR;
        for (int m = 0; m < b->nmoves; m++) {
            const struct move *v = &b->moves[m];
            rm[m] = (struct receipt_move){.user_id = v->user_id,
                                          .thread_id = v->thread_id,
                                          .from_seq = v->old,
                                          .to_seq = v->seq,
                                          .delivered = v->seq,
                                          .read = v->read};
        }
        rc = receipts_fan_out(&b->events, rm, b->nmoves, now);
        free(rm);
        if (rc < 0)
            return rc;
    }
    struct sbuf marks = {0}, new_marks = {0};
    for (int i = 0; i < b->nusers; i++)
        if (b->pos[i] > b->acked[i])
            sb_item(b->has_mark[i] ? &marks : &new_marks, DB_JT_ROW(MARK_ROW),
                    (long long)b->users[i], (long long)b->pos[i]);
    /* A user seeded without a mark row gets one (registration makes it). */
    if (new_marks.len > 0 &&
        (rc = db_exec_list("INSERT INTO user_acks (user_id, acked_pos) SELECT j.u, j.p FROM "
                           "JSON_TABLE(?, '$[*]' " MARK_ROW_COLUMNS ") j",
                           &new_marks)) < 0) {
        free(marks.s);
        return rc;
    }
    free(new_marks.s);
    if (marks.len > 0 &&
        (rc = db_exec_list("UPDATE JSON_TABLE(?, '$[*]' " MARK_ROW_COLUMNS ") j STRAIGHT_JOIN "
                           "user_acks a ON a.user_id = j.u "
                           "SET a.acked_pos = GREATEST(a.acked_pos, j.p)",
                           &marks)) < 0)
        return rc;
    return evb_flush(&b->events);
}

/* On a cluster: the users join the user→node map before their streams'
 * versions and ends are read (ack_tx), so that a commit on another node
 * after that read finds this node (live/cluster.h). */
static void join(struct ack_job **jobs, int n)
{
    if (!cluster_enabled())
        return;
    int64_t *users = malloc((size_t)n * sizeof *users),
            *sessions = malloc((size_t)n * sizeof *sessions);
    for (int i = 0; users && sessions && i < n; i++) {
        users[i] = jobs[i]->user_id;
        sessions[i] = jobs[i]->session_id;
    }
    if (users && sessions)
        cluster_join(users, sessions, (size_t)n);
    free(users), free(sessions);
}

/* Stores jobs[0..n) (sorted here by user) as one transaction, or one user at
 * a time if that fails; wakes, fills each job's result, calls its
 * completion, and frees it. */
static void run_jobs(struct ack_job **jobs, int n)
{
    qsort(jobs, (size_t)n, sizeof *jobs, cmp_job);
    struct ack_batch b = {.jobs = jobs, .n = n};
    b.result = calloc((size_t)n, sizeof *b.result);
    b.users = malloc((size_t)n * sizeof *b.users);
    b.pos = malloc((size_t)n * sizeof *b.pos);
    b.acked = malloc((size_t)n * sizeof *b.acked);
    b.last = malloc((size_t)n * sizeof *b.last);
    b.version = malloc((size_t)n * sizeof *b.version);
    b.has_mark = malloc((size_t)n * sizeof *b.has_mark);
    int rc = DB_ERR;
    if (b.result && b.users && b.pos && b.acked && b.last && b.version && b.has_mark) {
        for (int i = 0; i < n; i++)
            if (b.nusers == 0 || b.users[b.nusers - 1] != jobs[i]->user_id)
                b.users[b.nusers++] = jobs[i]->user_id;
        join(jobs, n);
        rc = db_tx(ack_tx, &b);
    }
    evb_finish(&b.events, rc);
    if (rc < 0 && b.nusers > 1) {
        log_warn("acks: a batch of %d failed (%d); storing them user by user", n, rc);
        for (int i = 0; i < n;) {
            int k = i;
            while (k < n && jobs[k]->user_id == jobs[i]->user_id)
                k++;
            run_jobs(&jobs[i], k - i);
            i = k;
        }
    } else {
        for (int i = 0; i < n; i++) {
            struct ack_result *out = jobs[i]->out;
            out->rc = rc < 0 ? rc : b.result[i];
            if (rc == 0) {
                int u = find_user(&b, jobs[i]->user_id);
                out->stream_end = b.last[u];
                out->version = b.version[u];
            }
            if (jobs[i]->done.fn)
                jobs[i]->done.fn(jobs[i]->done.arg);
            free(jobs[i]);
        }
    }
    evb_free(&b.events);
    free(b.result), free(b.users), free(b.pos), free(b.acked), free(b.moves);
    free(b.last), free(b.version), free(b.has_mark);
}

static void run_batch(void **jobs, int n) { run_jobs((struct ack_job **)jobs, n); }

int acks_start(int workers, int batch_max)
{
    return batchq_start(&queue, "acks", workers, batch_max, run_batch);
}

void acks_stop(void) { batchq_stop(&queue); }

bool acks_submit(int64_t user_id, int64_t session_id, int64_t pos, struct ack_result *out,
                 struct completion done)
{
    struct ack_job *j = malloc(sizeof *j);
    if (j == NULL) {
        out->rc = DB_ERR;
        return true;
    }
    *j = (struct ack_job){user_id, session_id, pos, out, done};
    if (batchq_push(&queue, j))
        return false;
    j->done.fn = NULL;
    run_jobs(&j, 1);
    return true;
}
