/* account.c — export and deletion of an account (account.h). */
#include "chat/account.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "chat/attachments.h"
#include "chat/auth.h"
#include "chat/events.h"
#include "chat/model.h"
#include "chat/search.h"
#include "db/db.h"
#include "live/cluster.h"

int account_export(int64_t user, json_t **out)
{
    struct db_res *r;
    int rc = db_query("SELECT id, username, display_name, created_at FROM users WHERE id = ?", &r,
                      DB_ARGS(DB_INT(user)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return NOT_FOUND;
    }
    json_t *doc = json_pack("{s:I, s:{s:I, s:s, s:s, s:I}}", "exported_at", (json_int_t)now_ms(),
                            "user", "id", (json_int_t)db_int(r, 0, 0), "username", db_str(r, 0, 1),
                            "display_name", db_str(r, 0, 2), "created_at",
                            (json_int_t)db_int(r, 0, 3));
    db_res_free(r);
    json_t *contacts = json_array(), *blocks = json_array(), *threads = json_array();
    json_object_set_new(doc, "contacts", contacts);
    json_object_set_new(doc, "blocks", blocks);
    json_object_set_new(doc, "threads", threads);
    rc = db_query("SELECT " USER_COLS ", c.nickname, c.created_at FROM contacts c JOIN users u "
                  "ON u.id = c.contact_id WHERE c.owner_id = ? ORDER BY u.id",
                  &r, DB_ARGS(DB_INT(user)));
    for (int i = 0; rc == 0 && i < r->nrows; i++) {
        json_t *c = json_pack("{s:o, s:o, s:I}", "user", view_user_row(r, i, 0), "nickname",
                              db_str(r, i, 3) ? json_string(db_str(r, i, 3)) : json_null(),
                              "added_at", (json_int_t)db_int(r, i, 4));
        json_array_append_new(contacts, c);
    }
    if (rc == 0)
        db_res_free(r);
    if (rc == 0)
        rc = db_query("SELECT blocked_id, created_at FROM blocks WHERE owner_id = ?", &r,
                      DB_ARGS(DB_INT(user)));
    for (int i = 0; rc == 0 && i < r->nrows; i++)
        json_array_append_new(blocks,
                              json_pack("{s:I, s:I}", "user_id", (json_int_t)db_int(r, i, 0),
                                        "blocked_at", (json_int_t)db_int(r, i, 1)));
    if (rc == 0)
        db_res_free(r);
    struct db_res *tr = NULL;
    if (rc == 0)
        rc = db_query("SELECT thread_id FROM thread_members WHERE owner_id = ? ORDER BY thread_id",
                      &tr, DB_ARGS(DB_INT(user)));
    int64_t total = 0;
    bool truncated = false;
    for (int k = 0; rc == 0 && k < tr->nrows; k++) {
        int64_t tid = db_int(tr, k, 0);
        json_t *t = NULL;
        if ((rc = view_thread(user, tid, &t)) != 0) {
            rc = rc == NOT_FOUND ? 0 : rc; /* left meanwhile */
            continue;
        }
        json_t *msgs = json_array();
        json_object_set_new(t, "messages", msgs);
        json_array_append_new(threads, t);
        rc = db_query("SELECT " MESSAGE_COLS_SEEN " FROM messages m" MESSAGE_HIDDEN_JOIN
                      "WHERE m.thread_id = ? ORDER BY m.seq LIMIT ?",
                      &r,
                      DB_ARGS(DB_INT(user), DB_INT(tid), DB_INT(EXPORT_MESSAGES_MAX - total + 1)));
        for (int i = 0; rc == 0 && i < r->nrows; i++) {
            if (total == EXPORT_MESSAGES_MAX) {
                truncated = true;
                break;
            }
            json_array_append_new(msgs, view_message_seen(r, i));
            total++;
        }
        if (rc == 0)
            db_res_free(r);
    }
    if (tr)
        db_res_free(tr);
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    json_object_set_new(doc, "truncated", json_boolean(truncated));
    *out = doc;
    return 0;
}

struct delete_ctx {
    int64_t user, now;
    struct event_batch events;
    int64_t *peers; /* who shares a thread with the user: their tails go */
    size_t npeers;
};

/* The user's messages out of the index, thread by thread. */
static int forget_messages(int64_t user)
{
    struct db_res *r;
    int rc = db_query("SELECT thread_id, seq, body FROM messages WHERE sender_id = ? "
                      "AND deleted_at IS NULL ORDER BY thread_id, seq",
                      &r, DB_ARGS(DB_INT(user)));
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < r->nrows;) {
        int64_t tid = db_int(r, i, 0);
        json_t *rows = json_array();
        for (; i < r->nrows && db_int(r, i, 0) == tid; i++)
            json_array_append_new(rows, json_pack("[I, s]", (json_int_t)db_int(r, i, 1),
                                                  db_str(r, i, 2)));
        rc = search_forget(tid, rows);
        json_decref(rows);
    }
    db_res_free(r);
    return rc;
}

static int delete_tx(void *arg)
{
    struct delete_ctx *c = arg;
    evb_reset(&c->events);
    free(c->peers);
    c->peers = NULL;
    c->npeers = 0;
    struct db_res *r;
    int rc = db_query("SELECT id FROM users WHERE id = ? AND deleted_at IS NULL FOR UPDATE", &r,
                      DB_ARGS(DB_INT(c->user)));
    if (rc < 0)
        return rc;
    bool found = r->nrows > 0;
    db_res_free(r);
    if (!found)
        return NOT_FOUND;
    rc = db_query("SELECT DISTINCT o.owner_id FROM thread_members m JOIN thread_members o "
                  "ON o.thread_id = m.thread_id WHERE m.owner_id = ?",
                  &r, DB_ARGS(DB_INT(c->user)));
    if (rc < 0)
        return rc;
    c->peers = malloc(((size_t)r->nrows + 1) * sizeof *c->peers);
    for (int i = 0; c->peers && i < r->nrows; i++)
        c->peers[c->npeers++] = db_int(r, i, 0);
    db_res_free(r);
    if (c->peers == NULL)
        return DB_ERR;
    if ((rc = forget_messages(c->user)) < 0)
        return rc;
    const char *steps[] = {
        "UPDATE users SET username = CONCAT('deleted-', id), display_name = 'Deleted user', "
        "password_hash = '!', deleted_at = ?, deactivated_at = COALESCE(deactivated_at, ?) "
        "WHERE id = ?",
        "UPDATE messages SET body = '', attachments = NULL, reactions = NULL, mentions = NULL, "
        "deleted_at = ?, version = version + 1 WHERE sender_id = ? AND deleted_at IS NULL",
    };
    rc = db_exec(steps[0], DB_ARGS(DB_INT(c->now), DB_INT(c->now), DB_INT(c->user)));
    if (rc == 0)
        rc = db_exec(steps[1], DB_ARGS(DB_INT(c->now), DB_INT(c->user)));
    if (rc == 0)
        rc = attachments_forget_owner(c->user, c->now);
    const char *gone[] = {
        "DELETE FROM contacts WHERE owner_id = ? OR contact_id = ?",
        "DELETE FROM blocks WHERE owner_id = ? OR blocked_id = ?",
        "DELETE FROM push_jobs WHERE user_id = ? OR user_id = ?",
        "DELETE FROM message_hidden WHERE user_id = ? OR user_id = ?",
        "DELETE FROM user_events WHERE user_id = ? OR user_id = ?",
    };
    for (size_t k = 0; rc == 0 && k < sizeof gone / sizeof gone[0]; k++)
        rc = db_exec(gone[k], DB_ARGS(DB_INT(c->user), DB_INT(c->user)));
    if (rc < 0)
        return rc;
    /* They leave their groups; the others hear of it. */
    rc =
        db_query("SELECT tm.thread_id FROM thread_members tm JOIN threads t ON t.id = tm.thread_id "
                 "WHERE tm.owner_id = ? AND t.kind = 'group'",
                 &r, DB_ARGS(DB_INT(c->user)));
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < r->nrows; i++) {
        int64_t tid = db_int(r, i, 0);
        rc = db_exec("DELETE FROM thread_members WHERE thread_id = ? AND owner_id = ?",
                     DB_ARGS(DB_INT(tid), DB_INT(c->user)));
        if (rc == 0)
            rc = db_exec("UPDATE threads SET updated_at = GREATEST(updated_at, ?) WHERE id = ?",
                         DB_ARGS(DB_INT(c->now), DB_INT(tid)));
        if (rc == 0)
            rc = evb_add_thread(&c->events, tid, c->now);
    }
    db_res_free(r);
    if (rc < 0)
        return rc;
    c->events.forget_tails = true;
    return evb_flush(&c->events);
}

int account_delete(int64_t user, int64_t now)
{
    struct delete_ctx c = {.user = user, .now = now};
    int rc = events_tx(delete_tx, &c, &c.events);
    if (rc == 0) {
        /* The bodies may sit in the tails of everyone who shared a thread. */
        cluster_forget_tails(c.peers, c.npeers);
        rc = auth_user_deactivate(user, true); /* every session ends, everywhere */
        if (rc > 0)
            rc = 0;
    }
    free(c.peers);
    return rc;
}
