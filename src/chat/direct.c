/* direct.c — the direct (1:1) thread of two users, found or created (see
 * direct.h).
 *
 * A pair has one direct thread, keyed by "low:high" user id in the unique
 * column threads.direct_key: two first messages racing each other create it
 * once (the loser's INSERT meets the key and reads the winner's row, which is
 * committed by then). */
#include "chat/direct.h"

#include <stdio.h>

#include "chat/events.h"
#include "chat/model.h"
#include "db/db.h"

struct direct_ctx {
    int64_t me, other, now;
    struct event_batch events;
    int64_t thread_id;
    bool created;
};

/* Finds the pair's thread by its key; 0 with ctx->thread_id, or NOT_FOUND. */
static int direct_find(struct direct_ctx *c, const char *key)
{
    struct db_res *r;
    int rc = db_query("SELECT id FROM threads WHERE direct_key = ?", &r, DB_ARGS(DB_STR(key)));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 0 : NOT_FOUND;
    if (rc == 0)
        c->thread_id = db_int(r, 0, 0);
    db_res_free(r);
    return rc;
}

static int direct_tx(void *arg)
{
    struct direct_ctx *c = arg;
    c->created = false;
    evb_reset(&c->events);
    char key[48];
    int64_t lo = c->me < c->other ? c->me : c->other, hi = c->me < c->other ? c->other : c->me;
    snprintf(key, sizeof key, "%lld:%lld", (long long)lo, (long long)hi);
    int rc = direct_find(c, key);
    if (rc <= 0)
        return rc;
    rc = db_exec("INSERT INTO threads (kind, direct_key, created_by, created_at, updated_at) "
                 "VALUES ('direct', ?, ?, ?, ?)",
                 DB_ARGS(DB_STR(key), DB_INT(c->me), DB_INT(c->now), DB_INT(c->now)));
    if (rc == DB_EDUP) /* the other side created it a moment ago: it is committed now */
        return direct_find(c, key);
    if (rc < 0)
        return rc;
    c->thread_id = db_insert_id();
    c->created = true;
    rc = db_exec("INSERT INTO thread_members (owner_id, thread_id, joined_at) "
                 "SELECT u.id, ?, ? FROM users u WHERE u.id IN (?, ?)",
                 DB_ARGS(DB_INT(c->thread_id), DB_INT(c->now), DB_INT(c->me), DB_INT(c->other)));
    if (rc < 0)
        return rc;
    rc = evb_add_thread(&c->events, c->thread_id, c->now);
    return rc < 0 ? rc : evb_flush(&c->events);
}

int direct_open(int64_t me, int64_t other, int64_t now, int64_t *thread_id, bool *created)
{
    if (other != me) {
        json_t *u;
        int rc = view_user(other, &u);
        if (rc != 0)
            return rc;
        json_decref(u);
        rc = blocked_between(me, other);
        if (rc != 0)
            return rc > 0 ? BLOCKED : rc;
    }
    struct direct_ctx c = {.me = me, .other = other, .now = now};
    int rc = events_tx(direct_tx, &c, &c.events);
    if (rc == 0) {
        *thread_id = c.thread_id;
        *created = c.created;
    }
    return rc;
}
