/* model.h — the chat's shared vocabulary over the database: the column
 * lists and JSON views of users, messages and threads as the API shows them,
 * membership and block lookups. Used by the handlers and by the delivery
 * modules (events, sendq), so that a thread or a message looks the same on
 * every path.
 *
 * May call: db, live (presence, for the presence view), base.
 *
 * Views return new jansson references (caller owns). Functions that query
 * return 0 on success, a positive NOT_* value for an answer the handler
 * turns into 4xx, or a negative DB_E* code. Every function may be called
 * from any thread (each thread has its own database connection). */
#ifndef CHAT_MODEL_H
#define CHAT_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define GROUP_MAX_MEMBERS 1024

/* What a lookup or change can answer besides DB_OK and DB_E*: positive
 * codes, each one problem answer (handlers/common.h resp_result). */
enum model_result {
    NOT_FOUND = 1, /* no such thread/user/member, or the caller may not know of it */
    BLOCKED = 2,   /* a block stands between the two users */
    NOT_ADMIN = 3, /* a group admin's right */
    NOT_GROUP = 4, /* a group's operation on a direct thread */
    TOO_MANY = 5,  /* a group would pass GROUP_MAX_MEMBERS */
};

/* Columns that make a user view, as SQL, for `u` an alias of users. */
#define USER_COLS "u.id, u.username, u.display_name"

/* {id, username, display_name} from three columns starting at col. */
json_t *view_user_row(const struct db_res *r, int row, int col);

/* Loads user id as a view into *out. Returns 0, NOT_FOUND or DB_E*. */
int view_user(int64_t id, json_t **out);

/* The JSON array of ids in a comma-separated list ("3,7,12", as
 * GROUP_CONCAT gives it; NULL or "" is empty). New reference. */
json_t *view_id_list(const char *csv);

/* The columns of a message (table alias m), and their offsets within them,
 * which view_message_row reads. The reply's snippet is read from the
 * original's row as it is now (an edit or a delete of the original shows). */
#define MESSAGE_COLS MESSAGE_COLS_AS(m)
/* A reply's view of its original (table alias o), as the stored JSON text
 * reply_view reads: {sender_id, snippet (the first REPLY_SNIPPET_CHARS
 * characters, "" once deleted), deleted (0/1)}. */
#define REPLY_TO_JSON(o)                                                                      \
    "JSON_OBJECT('sender_id', " #o ".sender_id, 'snippet', IF(" #o ".deleted_at IS NULL, "    \
    "LEFT(" #o ".body, " REPLY_SNIPPET_CHARS_S "), ''), 'deleted', " #o ".deleted_at IS NOT " \
    "NULL)"
/* The same columns of table alias a (an identifier). */
#define MESSAGE_COLS_AS(a)                                                                         \
#a ".thread_id, " #a ".seq, " #a ".sender_id, " #a ".client_msg_id, " #a ".body, " #a          \
       ".created_at, " #a ".attachments, " #a ".version, " #a ".edited_at, " #a ".deleted_at, " #a \
       ".reply_to_seq, (SELECT " REPLY_TO_JSON(o) " FROM messages o WHERE o.thread_id = " #a       \
                                                  ".thread_id AND o.seq = " #a                     \
                                                  ".reply_to_seq), " #a ".forward_depth, " #a      \
                                                  ".reactions, " #a ".mentions, " #a ".expires_at"
enum {
    MC_THREAD_ID,
    MC_SEQ,
    MC_SENDER_ID,
    MC_CLIENT_MSG_ID,
    MC_BODY,
    MC_CREATED_AT,
    MC_ATTACHMENTS,
    MC_VERSION,
    MC_EDITED_AT,
    MC_DELETED_AT,
    MC_REPLY_TO_SEQ,
    MC_REPLY_TO,
    MC_FORWARD_DEPTH,
    MC_REACTIONS,
    MC_MENTIONS,
    MC_EXPIRES_AT,
    MC_COUNT
};

/* How many characters of the original a reply shows (reply_to.snippet). */
#define REPLY_SNIPPET_CHARS 100
#define REPLY_SNIPPET_CHARS_S "100"

/* A message's stored state, as view_message renders it. Strings are
 * borrowed. attachments, reactions and mentions are the stored JSON texts
 * (NULL: none); reply_to is {sender_id, snippet, deleted} of the original
 * as JSON text (NULL with reply_to_seq set: the original is gone);
 * edited_at and deleted_at are ms, 0 for never; forward_depth 0 = not
 * forwarded. */
struct message_fields {
    int64_t thread_id, seq, sender_id;
    const char *client_msg_id;
    const char *body; /* UTF-8, body_len bytes */
    size_t body_len;
    int64_t created_at;
    const char *attachments;
    int64_t version, edited_at, deleted_at, reply_to_seq;
    const char *reply_to;
    int64_t forward_depth;
    const char *reactions, *mentions;
    int64_t expires_at; /* ms; 0: does not disappear */
};

/* A message as the API shows it: {thread_id, seq, sender_id, client_msg_id,
 * body, created_at (ms), attachments, version, edited_at, deleted_at,
 * reply_to, forwarded, reactions, mentions, expires_at}. A deleted message is a
 * tombstone whatever its fields say: body "", no attachments, reactions
 * or reply. New reference. */
json_t *view_message(const struct message_fields *f);

/* view_message from the MESSAGE_COLS columns starting at col; NULL when the
 * seq column is NULL. */
json_t *view_message_row(const struct db_res *r, int row, int col);

/* Messages m as one reader sees them: SELECT MESSAGE_COLS_SEEN FROM
 * messages m MESSAGE_HIDDEN_JOIN …, the join's one parameter being the
 * reader's id; view_message_seen renders a row. */
#define MESSAGE_COLS_SEEN MESSAGE_COLS ", h.seq"
#define MESSAGE_HIDDEN_JOIN \
    " LEFT JOIN message_hidden h ON h.user_id = ? AND h.thread_id = m.thread_id AND h.seq = m.seq "

/* A MESSAGE_COLS_SEEN row as its reader sees it: the message, or
 * {thread_id, seq, hidden: true} when the reader hid it (so that seq stays
 * contiguous for them). New reference. */
json_t *view_message_seen(const struct db_res *r, int row);

/* The thread as `owner` sees it (API.md `thread`) into *out, with
 * `request`: {from: user id} while owner's membership is a message request
 * (a stranger added them to the group), else null. Returns 0, NOT_FOUND
 * when owner is not a member, or DB_E*. */
int view_thread(int64_t owner, int64_t thread_id, json_t **out);

/* The part of a thread that every member sees alike — {id, kind, title,
 * member_ids, created_at, updated_at, last_seq, last_message} — as a new
 * object; NULL with *rc = NOT_FOUND or DB_E* when there is none. The thread
 * events store it as their snapshot. */
json_t *view_thread_shared(int64_t thread_id, int *rc);

/* A member's notification level for a thread, as thread_members.is_muted
 * stores it: every message pushes, none does (muted), or only those that
 * mention the member. */
enum notify_level { NOTIFY_ALL = 0, NOTIFY_NONE = 1, NOTIFY_MENTIONS = 2 };

/* Completes a shared part (stolen, returned) with the reader's own:
 * unread_count (from read_seq), notify ("all", "none", "mentions", from
 * the level), is_muted (notify is "none") and nickname; a reader who is no
 * longer a member (member false) gets 0, "all", false and nickname as
 * given. */
json_t *view_thread_own(json_t *shared, bool member, int notify, const char *nickname,
                        int64_t read_seq);

/* Thread views of `owner`, most recently updated first, strictly before the
 * position (updated_at, thread_id), at most limit of them, into the array
 * *out; *more tells whether older ones exist. */
int view_threads_page(int64_t owner, int64_t before_at, int64_t before_id, int limit, json_t **out,
                      bool *more, int64_t *last_at, int64_t *last_id);

/* SQL condition: user u.id's presence may be shown to user v.id (both
 * aliases must be in the query). True for oneself; else only with no block
 * either way, and when the two are mutual contacts (each has the other in
 * their list) or share a thread. live/presence.c fans out by the same rule. */
#define PRESENCE_VISIBLE                                                                  \
    "(u.id = v.id OR (NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.owner_id = v.id AND "   \
    "b.blocked_id = u.id) OR (b.owner_id = u.id AND b.blocked_id = v.id)) AND "           \
    "(EXISTS (SELECT 1 FROM contacts c1 JOIN contacts c2 ON c2.owner_id = c1.contact_id " \
    "AND c2.contact_id = c1.owner_id WHERE c1.owner_id = v.id AND c1.contact_id = u.id) " \
    "OR EXISTS (SELECT 1 FROM thread_members m1 JOIN thread_members m2 "                  \
    "ON m2.thread_id = m1.thread_id WHERE m1.owner_id = v.id AND m2.owner_id = u.id "     \
    "AND m1.request_from IS NULL AND m2.request_from IS NULL))))"

/* {state, last_seen_at} for user: the live state when the presence module
 * knows it, else offline since db_last_seen (ms, 0 = never). */
json_t *view_presence(int64_t user_id, int64_t db_last_seen);

/* Marks the members of ids (a JSON array of user ids) who joined thread_id
 * at joined_at (ms) as message requests from adder, each one that does not
 * have adder among their contacts. Inside the adding transaction. Returns
 * DB_OK or DB_E*. */
int members_mark_requests(int64_t thread_id, int64_t adder, const char *ids, int64_t joined_at);

/* What a member may know of a thread. */
struct member_info {
    bool is_group;
    bool is_admin;
    int64_t last_seq;
};

/* Fills *mi when user is a member of thread. Returns 0, NOT_FOUND, DB_E*. */
int member_get(int64_t user, int64_t thread, struct member_info *mi);

/* True when either user blocks the other. Returns 1 (blocked), 0, or DB_E*. */
int blocked_between(int64_t a, int64_t b);

/* True when a block stands between user and any of the ids in ids_json (a
 * JSON array of ids, as for DB_IDS_TABLE), either way. Returns 1, 0, or DB_E*.
 * Call inside the transaction that adds them to a group. */
int blocked_any(int64_t user, const char *ids_json);

#endif
