/* util.h — small helpers with no dependencies on the rest of chatd.
 *
 * May call: libc. */
#ifndef CHAT_UTIL_H
#define CHAT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest integer a JSON client can hold exactly (2^53). Ids, seqs and
 * limits outside 0..JSON_INT_MAX are refused. */
#define JSON_INT_MAX 9007199254740992LL

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t now_ms(void);

/* Monotonic time in milliseconds, for deadlines and durations. */
int64_t mono_ms(void);

/* Monotonic time in microseconds, for measuring durations. */
int64_t mono_us(void);

/* Parses a whole decimal string of digits into *out, 0..JSON_INT_MAX.
 * No sign, no spaces, no leading '+'. Returns 0, or -1 when `s` is not
 * such a number (NULL, empty, too long, out of range). */
int parse_int(const char *s, int64_t *out);

/* True when `s` (len bytes) is valid UTF-8 with no NUL, no surrogates and
 * no overlong forms. */
bool utf8_valid(const char *s, size_t len);

/* Number of characters (code points) in valid UTF-8 `s` of len bytes. */
size_t utf8_chars(const char *s, size_t len);

/* Largest prefix length <= max bytes of valid UTF-8 `s` (len bytes) that
 * ends on a character boundary. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

/* True when valid UTF-8 `s` (len bytes) is text a person may show another:
 * no control characters (C0, DEL, C1), no bidi controls (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069), no other invisible format
 * characters (U+00AD, U+180E, U+200B, U+2060..U+2064, U+FEFF,
 * U+FFF9..U+FFFB), and no white space (U+0020, U+00A0, U+1680,
 * U+2000..U+200A, U+202F, U+205F, U+3000) at either end. U+200C/U+200D
 * (joiners, needed by emoji and some scripts) are allowed. */
bool text_is_clean(const char *s, size_t len);

/* Orders two int64_t (pointed to) ascending, for qsort and bsearch; also
 * orders structs whose first member is an int64_t key. */
int int64_cmp(const void *a, const void *b);

/* Index of x in the ascending array a[0..n), or -1. */
int int64_find(const int64_t *a, size_t n, int64_t x);

/* A growing string: the one builder of the JSON lists that statements read
 * with JSON_TABLE (db.h), and of the inbox's answer. Nothing is escaped:
 * items are numbers, or strings the caller encoded (json_dumps).
 * Zero-initialise; free(b.s) when done. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool failed; /* memory ran out: the string is incomplete */
};

/* Appends printf-formatted text. */
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends len bytes of s as they are (no format; s need not end in a NUL). */
void sb_append(struct sbuf *b, const char *s, size_t len);

/* Appends one item of a JSON list: "[" before the first, "," before others. */
void sb_item(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends ids[0..n) as items: the list "[3,7,12]" once sb_done closes it. */
void sb_ids(struct sbuf *b, const int64_t *ids, size_t n);

/* Closes the list ("[]" when empty) and returns the string, owned by b, or
 * NULL when memory ran out. */
const char *sb_done(struct sbuf *b);

#endif
