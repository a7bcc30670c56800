/* retention.c — purges and expiry (retention.h). */
#include "chat/retention.h"

#include <jansson.h>
#include <string.h>

#include "base/log.h"
#include "chat/actions.h"
#include "chat/attachments.h"
#include "chat/events.h"
#include "chat/search.h"
#include "db/db.h"

static int server_days, test_s, day_s = 86400;

void retention_init(int days, int disappearing_test_s, int day_seconds)
{
    server_days = days;
    test_s = disappearing_test_s;
    day_s = day_seconds > 0 ? day_seconds : 86400;
}

int retention_server_days(void) { return server_days; }

bool retention_days_ok(int64_t days)
{
    return days >= 1 && days <= (server_days > 0 ? server_days : 36500);
}

bool disappearing_ok(int64_t s)
{
    return s == 0 || s == 86400 || s == 7 * 86400 || s == 90 * 86400 || (test_s > 0 && s == test_s);
}

int retention_expire(int64_t now, int batch)
{
    struct db_res *r;
    int rc = db_query("SELECT thread_id, seq FROM messages WHERE expires_at <= ? "
                      "AND deleted_at IS NULL ORDER BY expires_at LIMIT ?",
                      &r, DB_ARGS(DB_INT(now), DB_INT(batch)));
    if (rc < 0)
        return rc;
    int done = 0;
    for (int i = 0; i < r->nrows; i++) {
        rc = message_expire(db_int(r, i, 0), db_int(r, i, 1));
        if (rc < 0) {
            log_warn("retention: expiring %s/%s failed (%d); the next round retries",
                     db_str(r, i, 0), db_str(r, i, 1), rc);
            continue;
        }
        done++;
    }
    db_res_free(r);
    return done;
}

struct purge_ctx {
    int64_t thread_id, cutoff, now;
    int64_t removed, up_to;
    struct event_batch events;
};

static int purge_tx(void *arg)
{
    struct purge_ctx *c = arg;
    evb_reset(&c->events);
    c->removed = 0;
    struct db_res *r;
    int rc = db_query("SELECT oldest_seq FROM threads WHERE id = ? FOR UPDATE", &r,
                      DB_ARGS(DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    int64_t oldest = r->nrows ? db_int(r, 0, 0) : 0;
    db_res_free(r);
    if (oldest == 0)
        return DB_OK;
    /* created_at follows seq in a thread: the old ones are a prefix. */
    rc = db_query("SELECT seq, body FROM messages WHERE thread_id = ? AND seq >= ? "
                  "AND created_at < ? ORDER BY seq LIMIT ?",
                  &r,
                  DB_ARGS(DB_INT(c->thread_id), DB_INT(oldest), DB_INT(c->cutoff),
                          DB_INT(RETENTION_BATCH)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return evb_flush(&c->events);
    }
    json_t *rows = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(rows,
                              json_pack("[I, s]", (json_int_t)db_int(r, i, 0), db_str(r, i, 1)));
    c->up_to = db_int(r, r->nrows - 1, 0);
    c->removed = r->nrows;
    db_res_free(r);
    rc = search_forget(c->thread_id, rows);
    json_decref(rows);
    if (rc == 0)
        rc = attachments_detach_range(c->thread_id, oldest, c->up_to, c->now);
    const char *gone[] = {
        "DELETE FROM message_edits WHERE thread_id = ? AND seq BETWEEN ? AND ?",
        "DELETE FROM message_reactions WHERE thread_id = ? AND seq BETWEEN ? AND ?",
        "DELETE FROM message_hidden WHERE thread_id = ? AND seq BETWEEN ? AND ?",
        "DELETE FROM messages WHERE thread_id = ? AND seq BETWEEN ? AND ?",
    };
    for (size_t k = 0; rc == 0 && k < sizeof gone / sizeof gone[0]; k++)
        rc = db_exec(gone[k], DB_ARGS(DB_INT(c->thread_id), DB_INT(oldest), DB_INT(c->up_to)));
    if (rc == 0)
        rc = db_exec("UPDATE threads SET oldest_seq = ? WHERE id = ?",
                     DB_ARGS(DB_INT(c->up_to + 1), DB_INT(c->thread_id)));
    if (rc < 0)
        return rc;
    /* One history_purged per member. */
    rc = evb_add_to(&c->events, 0, EVENT_HISTORY_PURGED, c->thread_id, c->up_to, c->now,
                    json_pack("{s:s, s:I, s:I}", "type", "history_purged", "thread_id",
                              (json_int_t)c->thread_id, "up_to_seq", (json_int_t)c->up_to),
                    true);
    if (rc < 0)
        return rc;
    c->events.forget_tails = true;
    return evb_flush(&c->events);
}

int64_t retention_purge(int64_t now)
{
    struct db_res *r;
    int rc = db_query("SELECT id, COALESCE(retention_days, ?) FROM threads "
                      "WHERE COALESCE(retention_days, ?) > 0",
                      &r, DB_ARGS(DB_INT(server_days), DB_INT(server_days)));
    if (rc < 0)
        return rc;
    int64_t total = 0;
    for (int i = 0; i < r->nrows; i++) {
        struct purge_ctx c = {.thread_id = db_int(r, i, 0),
                              .cutoff = now - db_int(r, i, 1) * day_s * 1000LL,
                              .now = now};
        rc = events_tx(purge_tx, &c, &c.events);
        if (rc < 0) {
            log_warn("retention: purging thread %lld failed (%d); the next round retries",
                     (long long)c.thread_id, rc);
            continue;
        }
        total += c.removed;
    }
    db_res_free(r);
    return total;
}
