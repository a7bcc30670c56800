/* search.h — finding messages by their words (API.md "Search").
 *
 * An index of our own, in the database: one row per (term, thread, seq)
 * in search_terms. Terms are lower-cased words of letters and digits in any
 * script (with a trailing `+` or `#` kept, so `C++` and `C#` are words),
 * and, for Chinese, Japanese and Korean, which are written without spaces,
 * every pair of neighbouring characters (a lone character is a term of its
 * own), so that a word is found inside a sentence.
 *
 * Sends do not wait for the index: after a send commits, its threads are
 * noted (search_note) and the indexer thread indexes what each thread has
 * past its search_progress mark, in batches. Nothing is lost in a crash:
 * at start and on every janitor round, threads whose messages are ahead of
 * their mark are indexed (search_catch_up). A query takes candidates from
 * the index (thread by thread, newest first) and then checks every
 * candidate against the message as it is now — so an edit that raced the
 * indexer, a deleted or hidden message, or a thread the caller has left
 * never shows.
 *
 * May call: chat (model), db, base. */
#ifndef CHAT_SEARCH_H
#define CHAT_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest term, in bytes (the column holds 64 characters). */
#define SEARCH_TERM_MAX 64

/* A query's longest text (bytes) and most terms. */
#define SEARCH_QUERY_MAX 256
#define SEARCH_TERMS_MAX 8

/* Calls fn(term, len, ctx) for every term of text (len bytes of UTF-8), in
 * order, duplicates included; terms are not NUL-terminated and live only
 * during the call. Any thread. */
void search_terms_of(const char *text, size_t len, void (*fn)(const char *, size_t, void *),
                     void *ctx);

/* One part of a parsed query: a term that must be a term of the message
 * (prefix: a term that starts with it), or a phrase (the lower-cased text
 * that must occur in the lower-cased body, with its terms required too). */
struct search_part {
    char text[SEARCH_QUERY_MAX + 1];
    bool prefix, phrase;
};

/* A parsed query. */
struct search_query {
    struct search_part parts[SEARCH_TERMS_MAX * 2];
    int nparts;
    /* The terms the index is asked for, all required (the parts' own terms
     * and a phrase's), and whether each is a prefix. */
    char terms[SEARCH_TERMS_MAX][SEARCH_TERM_MAX + 1];
    bool term_prefix[SEARCH_TERMS_MAX];
    int nterms;
};

/* Parses q (NUL-terminated, any text): words separated by spaces, all
 * required; a trailing `*` makes a word a prefix; text in double quotes is
 * a phrase. Punctuation is no error (`C++`, `e-mail`: a word made of
 * several terms is a phrase). Returns 0, or -1 when q holds no term or more
 * than SEARCH_TERMS_MAX (why says which; static). Any thread. */
int search_parse(const char *q, struct search_query *out, const char **why);

/* True when the message body (len bytes) matches every part of q. */
bool search_matches(const struct search_query *q, const char *body, size_t len);

/* Starts the indexer thread and queues the threads the index is behind on;
 * with index false, starts nothing and search_note does nothing (queries
 * still answer from what is indexed). Returns 0 or -1. */
int search_start(bool index);

/* Stops the indexer (what is queued is left to the next start). */
void search_stop(void);

/* After a commit that stored messages into threads ids[0..n): the indexer
 * will index them. Any thread; never blocks on the database. */
void search_note(const int64_t *ids, size_t n);

/* Queues every thread whose messages are ahead of its index mark (the
 * janitor's round, and the start). Returns how many, or DB_E*. */
int search_catch_up(void);

/* Inside a transaction that changes message (thread_id, seq): removes the
 * terms of its old body (old_len bytes) from the index and, when new_body
 * is not NULL (an edit), adds those of the new one. Returns DB_OK or
 * DB_E*. */
int search_reindex(int64_t thread_id, int64_t seq, int64_t at, const char *old_body, size_t old_len,
                   const char *new_body, size_t new_len);

/* Inside a transaction that removes messages of thread_id: removes the
 * terms of their bodies, given as the JSON array rows of [seq, body].
 * Returns DB_OK or DB_E*. */
int search_forget(int64_t thread_id, const json_t *rows);

/* The messages of user's threads (or of thread_id alone, when not 0)
 * matching q, newest first, strictly older than the cursor (before_at ms,
 * before_thread, before_seq; before_at 0: from the newest), at most limit,
 * appended to the array out as message views; *more tells whether older
 * matches may exist, and *last_* is where the next page starts (the last
 * message examined, which may be past the last one returned).
 * Returns 0, NOT_FOUND (thread_id given and user is no member), or DB_E*. */
int search_messages(int64_t user, int64_t thread_id, const struct search_query *q,
                    int64_t before_at, int64_t before_thread, int64_t before_seq, int limit,
                    json_t *out, bool *more, int64_t *last_at, int64_t *last_thread,
                    int64_t *last_seq);

#endif
