/* actions.h — what members do to messages already sent: edit, delete for
 * everyone, hide for themselves, react (docs/message-actions.md).
 *
 * None of these takes a seq: the message keeps its row and its seq, and its
 * `version` goes up by one on every edit, delete and reaction change. Each
 * change and its events (message_edited, message_deleted, message_hidden,
 * message_unhidden, reaction) are one transaction, so every member's
 * devices learn of it exactly once, in order, across restarts. A delete
 * leaves a tombstone (body "", no attachments, reactions or edit history),
 * queues the push clear, and forgets the members' in-memory tails on every
 * node, so that the old body is never served again.
 *
 * May call: chat (model, events, attachments, mentions, search), push, db, base. Every
 * function may be called from any thread. */
#ifndef CHAT_ACTIONS_H
#define CHAT_ACTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The settings (config keys of the same names). Windows in seconds, 0 = no
 * limit. */
struct action_settings {
    int edit_window_s;
    int delete_window_s;
    int reactions_distinct_max;
};

/* Sets the settings; call once at start-up. */
void actions_init(const struct action_settings *s);

/* The settings in force. */
const struct action_settings *actions_settings(void);

/* What the calls answer besides 0, model.h's NOT_FOUND (not a member, or no
 * such message) and DB_E*. */
enum action_result {
    ACT_NOT_AUTHOR = 20,         /* only the sender may (403 not_author) */
    ACT_EDIT_WINDOW = 21,        /* 422 edit_window_expired */
    ACT_DELETE_WINDOW = 22,      /* 422 delete_window_expired */
    ACT_DELETED = 23,            /* 422 message_deleted */
    ACT_TOO_MANY_REACTIONS = 24, /* 422 too_many_reactions */
    ACT_VERSION = 25,            /* 409 version_conflict: if_version is not the version */
    ACT_EMPTY = 26,              /* 400 invalid_message: an empty body without attachments */
};

/* The longest reaction, in bytes of UTF-8. */
#define REACTION_MAX_BYTES 32

/* True when emoji (len bytes) is one emoji: valid UTF-8 of at most
 * REACTION_MAX_BYTES making one emoji character, optionally with a
 * presentation selector and a skin tone, joined by zero-width joiners to
 * more of them; a flag (two regional indicators, or a tag sequence); or a
 * keycap. Any thread. */
bool reaction_valid(const char *emoji, size_t len);

/* user replaces the body of message (thread_id, seq) with body (len bytes
 * of UTF-8, checked by the caller). if_version >= 0: only when the message's
 * version is that. The old body goes into the edit history. Answers the
 * message as it is now in *out (new reference), also when body is what it
 * says already (no change, no event). Returns 0, NOT_FOUND, ACT_NOT_AUTHOR,
 * ACT_DELETED, ACT_EDIT_WINDOW, ACT_VERSION, ACT_EMPTY or DB_E*. */
int message_edit(int64_t user, int64_t thread_id, int64_t seq, const char *body, size_t len,
                 int64_t if_version, json_t **out);

/* user deletes message (thread_id, seq) for everyone: its sender within the
 * delete window, or a group admin at any time. Deleting a deleted message
 * changes nothing and returns 0. Returns 0, NOT_FOUND, ACT_NOT_AUTHOR,
 * ACT_DELETE_WINDOW or DB_E*. */
int message_delete(int64_t user, int64_t thread_id, int64_t seq);

/* The server turns message (thread_id, seq), whose disappearing timer ran
 * out, into a tombstone, exactly as a delete for everyone does (its event
 * says deleted_by null, reason "expired"). Returns 0, NOT_FOUND or DB_E*. */
int message_expire(int64_t thread_id, int64_t seq);

/* user hides (hide true) or shows again message (thread_id, seq) on their
 * own devices; idempotent (no change, no event). Returns 0, NOT_FOUND or
 * DB_E*. */
int message_hide(int64_t user, int64_t thread_id, int64_t seq, bool hide);

/* user adds (add true) or removes their reaction emoji (checked with
 * reaction_valid) on message (thread_id, seq); idempotent. Returns 0,
 * NOT_FOUND, ACT_DELETED, ACT_TOO_MANY_REACTIONS or DB_E*. */
int message_react(int64_t user, int64_t thread_id, int64_t seq, const char *emoji, bool add);

/* The bodies message (thread_id, seq) has had, oldest first, as
 * [{version, body, edited_at}] (edited_at: when that body was set, ms) into
 * *out (new reference), for a member of the thread. A deleted message has
 * none. Returns 0, NOT_FOUND or DB_E*. */
int message_history(int64_t user, int64_t thread_id, int64_t seq, json_t **out);

#endif
