/* actions.c — edit, delete for everyone, hide, react (actions.h).
 *
 * Each action is one transaction (events_tx): the member check, the
 * message row locked (FOR UPDATE: two actions on one message take turns;
 * sends never lock an existing message, so they do not wait), the change,
 * and its events appended to the members' streams by the one appender. */
#include "chat/actions.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "chat/attachments.h"
#include "chat/events.h"
#include "chat/mentions.h"
#include "chat/model.h"
#include "chat/search.h"
#include "db/db.h"
#include "push/push.h"

static struct action_settings settings = {900, 172800, 50};

void actions_init(const struct action_settings *s) { settings = *s; }

const struct action_settings *actions_settings(void) { return &settings; }

/* ---- emoji ---- */

/* Decodes one UTF-8 character of s (len bytes left; valid UTF-8) into *cp;
 * returns its length. */
static size_t next_cp(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if (n > len)
        n = len;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return n;
}

/* An emoji character that may start (or follow a joiner in) a sequence. */
static bool emoji_base(uint32_t c)
{
    return (c >= 0x1F000 && c <= 0x1FAFF && !(c >= 0x1F1E6 && c <= 0x1F1FF) &&
            !(c >= 0x1F3FB && c <= 0x1F3FF)) ||
           (c >= 0x2600 && c <= 0x27BF) || (c >= 0x2300 && c <= 0x23FF) ||
           (c >= 0x2B00 && c <= 0x2BFF) || (c >= 0x2190 && c <= 0x21FF) ||
           (c >= 0x25A0 && c <= 0x25FF) || (c >= 0x2900 && c <= 0x297F) || c == 0x00A9 ||
           c == 0x00AE || c == 0x203C || c == 0x2049 || c == 0x2122 || c == 0x2139 || c == 0x24C2 ||
           c == 0x3030 || c == 0x303D || c == 0x3297 || c == 0x3299;
}

bool reaction_valid(const char *emoji, size_t len)
{
    if (len == 0 || len > REACTION_MAX_BYTES || !utf8_valid(emoji, len))
        return false;
    uint32_t cp[REACTION_MAX_BYTES];
    size_t n = 0;
    for (size_t i = 0; i < len;)
        i += next_cp((const unsigned char *)emoji + i, len - i, &cp[n++]);
    /* A keycap: 0-9, # or *, an optional VS16, then U+20E3. */
    if ((cp[0] == '#' || cp[0] == '*' || (cp[0] >= '0' && cp[0] <= '9')) &&
        ((n == 2 && cp[1] == 0x20E3) || (n == 3 && cp[1] == 0xFE0F && cp[2] == 0x20E3)))
        return true;
    /* A flag: two regional indicators. */
    if (n == 2 && cp[0] >= 0x1F1E6 && cp[0] <= 0x1F1FF && cp[1] >= 0x1F1E6 && cp[1] <= 0x1F1FF)
        return true;
    /* A subdivision flag: a black flag, tag letters, the cancel tag. */
    if (n >= 3 && cp[0] == 0x1F3F4 && cp[n - 1] == 0xE007F) {
        for (size_t i = 1; i + 1 < n; i++)
            if (cp[i] < 0xE0020 || cp[i] > 0xE007E)
                return false;
        return true;
    }
    /* base [VS16] [skin tone] (ZWJ base [VS16] [skin tone])* */
    size_t i = 0;
    for (;;) {
        if (i >= n || !emoji_base(cp[i]))
            return false;
        i++;
        if (i < n && cp[i] == 0xFE0F)
            i++;
        if (i < n && cp[i] >= 0x1F3FB && cp[i] <= 0x1F3FF)
            i++;
        if (i == n)
            return true;
        if (cp[i] != 0x200D)
            return false;
        i++;
    }
}

/* ---- shared steps ---- */

/* The columns lock_message reads. */
enum { LM_SENDER, LM_CREATED_AT, LM_DELETED_AT, LM_VERSION, LM_BODY, LM_HAS_ATTACHMENTS };

/* An action's transaction state. */
struct action_ctx {
    int64_t user, thread_id, seq, now;
    struct member_info member;
    struct event_batch events;
    /* inputs */
    const char *body, *emoji;
    size_t len;
    int64_t if_version;
    bool on; /* hide / add */
    /* output */
    json_t *message;
};

/* The caller's membership (into c->member), then the message row, locked.
 * Returns 0 with *r (caller frees), NOT_FOUND or DB_E*. */
static int lock_message(struct action_ctx *c, struct db_res **r)
{
    /* user 0: the server itself (an expired message), a member of none. */
    int rc = c->user ? member_get(c->user, c->thread_id, &c->member) : 0;
    if (rc != 0)
        return rc;
    rc = db_query("SELECT sender_id, created_at, deleted_at, version, body, "
                  "attachments IS NOT NULL FROM messages WHERE thread_id = ? AND seq = ? "
                  "FOR UPDATE",
                  r, DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq)));
    if (rc < 0)
        return rc;
    if ((*r)->nrows == 0) {
        db_res_free(*r);
        return NOT_FOUND;
    }
    return 0;
}

/* The message as it is now (inside the transaction), new reference or NULL. */
static json_t *message_now(int64_t thread_id, int64_t seq)
{
    struct db_res *r;
    if (db_query("SELECT " MESSAGE_COLS " FROM messages m WHERE m.thread_id = ? AND m.seq = ?", &r,
                 DB_ARGS(DB_INT(thread_id), DB_INT(seq))) < 0)
        return NULL;
    json_t *m = r->nrows ? view_message_row(r, 0, 0) : NULL;
    db_res_free(r);
    return m;
}

/* Appends ev (stolen) for every member of the thread (or for c->user
 * alone) as an event of the given type; payload: stored as its JSON. */
static int add_event(struct action_ctx *c, enum event_type type, json_t *ev, bool to_all,
                     bool payload)
{
    return evb_add_to(&c->events, to_all ? 0 : c->user, type, c->thread_id, c->seq, c->now, ev,
                      payload);
}

/* Runs fn as the action's transaction and frees the batch. */
static int run(db_tx_fn fn, struct action_ctx *c)
{
    c->now = now_ms();
    return events_tx(fn, c, &c->events);
}

/* ---- edit ---- */

static int edit_tx(void *arg)
{
    struct action_ctx *c = arg;
    evb_reset(&c->events);
    json_decref(c->message);
    c->message = NULL;
    struct db_res *r;
    int rc = lock_message(c, &r);
    if (rc != 0)
        return rc;
    const char *old = db_str(r, 0, LM_BODY);
    int64_t version = db_int(r, 0, LM_VERSION), created_at = db_int(r, 0, LM_CREATED_AT);
    bool same = strlen(old) == c->len && memcmp(old, c->body, c->len) == 0;
    rc = db_int(r, 0, LM_SENDER) != c->user               ? ACT_NOT_AUTHOR
         : db_str(r, 0, LM_DELETED_AT)                    ? ACT_DELETED
         : c->if_version >= 0 && c->if_version != version ? ACT_VERSION
         : same                                           ? 0
         : settings.edit_window_s > 0 && c->now - created_at > settings.edit_window_s * 1000LL
             ? ACT_EDIT_WINDOW
         : c->len == 0 && !db_int(r, 0, LM_HAS_ATTACHMENTS) ? ACT_EMPTY
                                                            : 0;
    if (rc == 0 && !same) {
        /* The history keeps each body with the time it was set. */
        rc = db_exec("INSERT INTO message_edits (thread_id, seq, version, body, edited_at) "
                     "SELECT thread_id, seq, version, body, COALESCE(edited_at, created_at) "
                     "FROM messages WHERE thread_id = ? AND seq = ?",
                     DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq)));
        char *mentions = NULL;
        if (rc == 0)
            rc = mentions_resolve(c->thread_id, c->user, c->member.is_group, c->body, c->len,
                                  &mentions);
        if (rc == 0)
            rc = db_exec("UPDATE messages SET body = ?, edited_at = GREATEST(?, created_at), "
                         "version = version + 1, mentions = ? WHERE thread_id = ? AND seq = ?",
                         DB_ARGS(DB_STRN(c->body, c->len), DB_INT(c->now), DB_STR_OR_NULL(mentions),
                                 DB_INT(c->thread_id), DB_INT(c->seq)));
        free(mentions);
        if (rc == 0)
            rc = search_reindex(c->thread_id, c->seq, created_at, old, strlen(old), c->body,
                                c->len);
    }
    db_res_free(r);
    if (rc != 0)
        return rc;
    c->message = message_now(c->thread_id, c->seq);
    if (c->message == NULL)
        return DB_ERR;
    if (!same &&
        (rc = add_event(c, EVENT_MESSAGE_EDITED, events_edited_view(c->message), true, false)) < 0)
        return rc;
    return evb_flush(&c->events);
}

int message_edit(int64_t user, int64_t thread_id, int64_t seq, const char *body, size_t len,
                 int64_t if_version, json_t **out)
{
    struct action_ctx c = {.user = user,
                           .thread_id = thread_id,
                           .seq = seq,
                           .body = body,
                           .len = len,
                           .if_version = if_version};
    int rc = run(edit_tx, &c);
    if (rc == 0)
        *out = c.message;
    else
        json_decref(c.message);
    return rc;
}

/* ---- delete for everyone ---- */

static int delete_tx(void *arg)
{
    struct action_ctx *c = arg;
    evb_reset(&c->events);
    struct db_res *r;
    int rc = lock_message(c, &r);
    if (rc != 0)
        return rc;
    bool admin = c->member.is_group && c->member.is_admin;
    bool deleted = db_str(r, 0, LM_DELETED_AT) != NULL;
    int64_t version = db_int(r, 0, LM_VERSION) + 1;
    rc = deleted                              ? 0
         : admin || c->user == 0              ? 0
         : db_int(r, 0, LM_SENDER) != c->user ? ACT_NOT_AUTHOR
         : settings.delete_window_s > 0 &&
                 c->now - db_int(r, 0, LM_CREATED_AT) > settings.delete_window_s * 1000LL
             ? ACT_DELETE_WINDOW
             : 0;
    int64_t deleted_at = c->now > db_int(r, 0, LM_CREATED_AT) ? c->now
                                                              : db_int(r, 0, LM_CREATED_AT);
    if (rc == 0 && !deleted) {
        const char *old = db_str(r, 0, LM_BODY);
        rc = search_reindex(c->thread_id, c->seq, 0, old, strlen(old), NULL, 0);
    }
    db_res_free(r);
    if (rc != 0 || deleted)
        return rc != 0 ? rc : evb_flush(&c->events);
    /* The tombstone: nothing of the content stays. */
    rc = db_exec("UPDATE messages SET body = '', attachments = NULL, reactions = NULL, "
                 "mentions = NULL, deleted_at = ?, version = version + 1 "
                 "WHERE thread_id = ? AND seq = ?",
                 DB_ARGS(DB_INT(deleted_at), DB_INT(c->thread_id), DB_INT(c->seq)));
    /* (Who hid it keeps it hidden: their devices were told so.) */
    const char *gone[] = {"DELETE FROM message_edits WHERE thread_id = ? AND seq = ?",
                          "DELETE FROM message_reactions WHERE thread_id = ? AND seq = ?"};
    for (size_t k = 0; rc == 0 && k < sizeof gone / sizeof gone[0]; k++)
        rc = db_exec(gone[k], DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq)));
    if (rc == 0)
        rc = attachments_detach_range(c->thread_id, c->seq, c->seq, c->now);
    if (rc == 0)
        rc = push_queue_clear_thread(c->thread_id, c->seq, c->now);
    if (rc == 0)
        rc = add_event(c, EVENT_MESSAGE_DELETED,
                       json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:s}", "type", "message_deleted",
                                 "thread_id", (json_int_t)c->thread_id, "seq", (json_int_t)c->seq,
                                 "deleted_at", (json_int_t)deleted_at, "deleted_by",
                                 c->user ? json_integer(c->user) : json_null(), "version",
                                 (json_int_t)version, "reason", c->user ? "deleted" : "expired"),
                       true, true);
    if (rc < 0)
        return rc;
    c->events.forget_tails = true;
    return evb_flush(&c->events);
}

int message_delete(int64_t user, int64_t thread_id, int64_t seq)
{
    struct action_ctx c = {.user = user, .thread_id = thread_id, .seq = seq};
    return run(delete_tx, &c);
}

int message_expire(int64_t thread_id, int64_t seq)
{
    struct action_ctx c = {.user = 0, .thread_id = thread_id, .seq = seq};
    return run(delete_tx, &c);
}

/* ---- hide for me ---- */

static int hide_tx(void *arg)
{
    struct action_ctx *c = arg;
    evb_reset(&c->events);
    int rc = member_get(c->user, c->thread_id, &c->member);
    if (rc != 0)
        return rc;
    struct db_res *r;
    rc = db_query("SELECT 1 FROM messages WHERE thread_id = ? AND seq = ?", &r,
                  DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq)));
    if (rc < 0)
        return rc;
    bool found = r->nrows > 0;
    db_res_free(r);
    if (!found)
        return NOT_FOUND;
    rc = c->on ? db_exec("INSERT IGNORE INTO message_hidden (user_id, thread_id, seq) "
                         "VALUES (?, ?, ?)",
                         DB_ARGS(DB_INT(c->user), DB_INT(c->thread_id), DB_INT(c->seq)))
               : db_exec("DELETE FROM message_hidden WHERE user_id = ? AND thread_id = ? "
                         "AND seq = ?",
                         DB_ARGS(DB_INT(c->user), DB_INT(c->thread_id), DB_INT(c->seq)));
    if (rc == 0 && db_affected() > 0)
        rc = add_event(c, c->on ? EVENT_MESSAGE_HIDDEN : EVENT_MESSAGE_UNHIDDEN,
                       json_pack("{s:s, s:I, s:I}", "type",
                                 c->on ? "message_hidden" : "message_unhidden", "thread_id",
                                 (json_int_t)c->thread_id, "seq", (json_int_t)c->seq),
                       false, true);
    return rc < 0 ? rc : evb_flush(&c->events);
}

int message_hide(int64_t user, int64_t thread_id, int64_t seq, bool hide)
{
    struct action_ctx c = {.user = user, .thread_id = thread_id, .seq = seq, .on = hide};
    return run(hide_tx, &c);
}

/* ---- reactions ---- */

/* How many user ids a reaction shows (the count says how many there are). */
#define REACTION_USERS_SHOWN_S "50"

/* Renders the message's reactions from message_reactions into the message
 * row (oldest kind first) and moves its version. Returns DB_OK or DB_E*. */
static int render_reactions(struct action_ctx *c)
{
    struct db_res *r;
    int rc = db_query("SELECT emoji, COUNT(*), SUBSTRING_INDEX(GROUP_CONCAT(user_id ORDER BY "
                      "created_at, user_id), ',', " REACTION_USERS_SHOWN_S ") "
                      "FROM message_reactions WHERE thread_id = ? AND seq = ? "
                      "GROUP BY emoji ORDER BY MIN(created_at), emoji",
                      &r, DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq)));
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(list, json_pack("{s:s, s:I, s:o}", "emoji", db_str(r, i, 0), "count",
                                              (json_int_t)db_int(r, i, 1), "user_ids",
                                              view_id_list(db_str(r, i, 2))));
    db_res_free(r);
    char *s = json_array_size(list) ? json_dumps(list, JSON_COMPACT) : NULL;
    bool failed = json_array_size(list) && s == NULL;
    json_decref(list);
    if (failed)
        return DB_ERR;
    rc = db_exec("UPDATE messages SET reactions = ?, version = version + 1 "
                 "WHERE thread_id = ? AND seq = ?",
                 DB_ARGS(DB_STR_OR_NULL(s), DB_INT(c->thread_id), DB_INT(c->seq)));
    free(s);
    return rc;
}

static int react_tx(void *arg)
{
    struct action_ctx *c = arg;
    evb_reset(&c->events);
    struct db_res *r;
    int rc = lock_message(c, &r);
    if (rc != 0)
        return rc;
    bool deleted = db_str(r, 0, LM_DELETED_AT) != NULL;
    int64_t version = db_int(r, 0, LM_VERSION) + 1;
    db_res_free(r);
    if (deleted)
        return ACT_DELETED;
    if (c->on) {
        /* A new kind of emoji must fit under the limit. */
        rc = db_query("SELECT COUNT(DISTINCT emoji), COALESCE(SUM(emoji = ?), 0) "
                      "FROM message_reactions WHERE thread_id = ? AND seq = ?",
                      &r, DB_ARGS(DB_STR(c->emoji), DB_INT(c->thread_id), DB_INT(c->seq)));
        if (rc < 0)
            return rc;
        bool full = db_int(r, 0, 1) == 0 && db_int(r, 0, 0) >= settings.reactions_distinct_max;
        db_res_free(r);
        if (full)
            return ACT_TOO_MANY_REACTIONS;
        rc = db_exec("INSERT IGNORE INTO message_reactions (thread_id, seq, user_id, emoji, "
                     "created_at) VALUES (?, ?, ?, ?, ?)",
                     DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq), DB_INT(c->user),
                             DB_STR(c->emoji), DB_INT(c->now)));
    } else {
        rc = db_exec("DELETE FROM message_reactions WHERE thread_id = ? AND seq = ? "
                     "AND user_id = ? AND emoji = ?",
                     DB_ARGS(DB_INT(c->thread_id), DB_INT(c->seq), DB_INT(c->user),
                             DB_STR(c->emoji)));
    }
    if (rc < 0 || db_affected() == 0) /* nothing changed: no event */
        return rc < 0 ? rc : evb_flush(&c->events);
    if ((rc = render_reactions(c)) < 0)
        return rc;
    if (c->on && (rc = push_queue_reaction(c->thread_id, c->seq, c->user, c->emoji, c->now)) < 0)
        return rc;
    rc = add_event(c, EVENT_REACTION,
                   json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:I}", "type", "reaction", "thread_id",
                             (json_int_t)c->thread_id, "seq", (json_int_t)c->seq, "user_id",
                             (json_int_t)c->user, "emoji", c->emoji, "op", c->on ? "add" : "remove",
                             "version", (json_int_t)version),
                   true, true);
    return rc < 0 ? rc : evb_flush(&c->events);
}

int message_react(int64_t user, int64_t thread_id, int64_t seq, const char *emoji, bool add)
{
    struct action_ctx c = {
        .user = user, .thread_id = thread_id, .seq = seq, .emoji = emoji, .on = add};
    return run(react_tx, &c);
}

/* ---- history ---- */

int message_history(int64_t user, int64_t thread_id, int64_t seq, json_t **out)
{
    struct member_info mi;
    int rc = member_get(user, thread_id, &mi);
    if (rc != 0)
        return rc;
    struct db_res *r;
    rc = db_query("SELECT version, body, edited_at FROM message_edits "
                  "WHERE thread_id = ? AND seq = ? UNION ALL "
                  "SELECT version, body, COALESCE(edited_at, created_at) FROM messages "
                  "WHERE thread_id = ? AND seq = ? AND deleted_at IS NULL ORDER BY 1",
                  &r, DB_ARGS(DB_INT(thread_id), DB_INT(seq), DB_INT(thread_id), DB_INT(seq)));
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(list, json_pack("{s:I, s:s, s:I}", "version",
                                              (json_int_t)db_int(r, i, 0), "body", db_str(r, i, 1),
                                              "edited_at", (json_int_t)db_int(r, i, 2)));
    bool none = r->nrows == 0;
    db_res_free(r);
    if (none) {
        /* A deleted message has no history; one that does not exist is 404. */
        rc = db_query("SELECT 1 FROM messages WHERE thread_id = ? AND seq = ?", &r,
                      DB_ARGS(DB_INT(thread_id), DB_INT(seq)));
        if (rc < 0) {
            json_decref(list);
            return rc;
        }
        none = r->nrows == 0;
        db_res_free(r);
        if (none) {
            json_decref(list);
            return NOT_FOUND;
        }
    }
    *out = list;
    return 0;
}
