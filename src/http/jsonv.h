/* jsonv.h — strict parsing of request bodies and typed field readers.
 *
 * json_body_parse() is the gate every body passes before a handler runs: it
 * refuses NUL bytes, invalid UTF-8, nesting deeper than JSONV_MAX_DEPTH,
 * duplicate keys and anything that is not an object. The jv_* readers check
 * one field's type and range; on failure they answer 400 invalid_request with
 * a detail naming the field and return false, so a handler reads:
 *
 *     if (!jv_int(res, body, "seq", JV_REQUIRED, 0, JSON_INT_MAX, &seq, NULL))
 *         return;
 *
 * May call: http/request, base, jansson. */
#ifndef CHAT_JSONV_H
#define CHAT_JSONV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

#define JSONV_MAX_DEPTH 32

/* Field flags, or'ed. JV_NAME (jv_str only) is for names people read (thread
 * titles, nicknames, device names): spaces at the ends are dropped (the
 * body's field is replaced by the trimmed string) before the length check,
 * and what remains must be clean text (text_is_clean in base/util.h: no
 * control, bidi or invisible characters). */
enum { JV_OPTIONAL = 0, JV_REQUIRED = 1, JV_NULLABLE = 2, JV_NAME = 4 };

/* Parses len bytes into a JSON object. Returns 0 and a new reference in *out,
 * or -1 and a static explanation in *why. */
int json_body_parse(const char *buf, size_t len, json_t **out, const char **why);

/* Reads integer field `key` in lo..hi. An absent optional field leaves *out
 * alone and sets *present (when not NULL) to false. Floats, strings and
 * booleans are refused. */
bool jv_int(struct response *res, json_t *obj, const char *key, int flags, int64_t lo, int64_t hi,
            int64_t *out, bool *present);

/* Reads string field `key` of min_chars..max_chars characters (code points).
 * *out points into obj (borrowed); it is NULL when the field is absent or,
 * with JV_NULLABLE, null. *len_out (when not NULL) gets the length in bytes. */
bool jv_str(struct response *res, json_t *obj, const char *key, int flags, size_t min_chars,
            size_t max_chars, const char **out, size_t *len_out);

/* Reads boolean field `key`. Absent optional: *present false, *out alone. */
bool jv_bool(struct response *res, json_t *obj, const char *key, int flags, bool *out,
             bool *present);

/* Reads `key` as an array of ids (1..2^53), at most max of them, duplicates
 * removed, order kept. *out is malloc'd (caller frees), *n its length. */
bool jv_ids(struct response *res, json_t *obj, const char *key, int flags, size_t max,
            int64_t **out, size_t *n);

#endif
