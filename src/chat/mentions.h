/* mentions.h — who a message mentions: `@username` of a member of its
 * thread, and `@all` (from a group admin) for everyone.
 *
 * Resolved once, when the message is stored or edited, into the message's
 * `mentions` ({user_ids, all}); the push rule of a member whose thread
 * setting is `notify: "mentions"` reads it.
 *
 * May call: db, base. Any thread. */
#ifndef CHAT_MENTIONS_H
#define CHAT_MENTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most different names one message may mention; more are ignored. */
#define MENTIONS_MAX 50

/* The mentions of body (len bytes of UTF-8) sent by sender into thread_id
 * (a group when is_group), as the stored JSON {"user_ids": [...], "all":
 * bool} in *out (malloc'd), or *out NULL when the body mentions no member.
 * `@name` counts at the start or after a character that is not a letter,
 * digit, `_`, `.` or `-`; names are matched without regard to case; a
 * mention of oneself counts. Reads the members inside the caller's
 * transaction, only when the body holds an `@`. Returns DB_OK or DB_E*. */
int mentions_resolve(int64_t thread_id, int64_t sender, bool is_group, const char *body, size_t len,
                     char **out);

#endif
