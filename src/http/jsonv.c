/* jsonv.c — the body gate and field readers (see jsonv.h).
 *
 * jansson already refuses invalid UTF-8, NaN, and integers past 2^63; the
 * depth and NUL checks run on the raw bytes first so that a hostile body
 * costs one pass and no allocation. */
#include "http/jsonv.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* Deepest nesting of [ and { outside strings, stopping once past limit. */
static int max_depth(const char *buf, size_t len, int limit)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len && deepest <= limit; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest)
                deepest = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

int json_body_parse(const char *buf, size_t len, json_t **out, const char **why)
{
    if (len == 0) {
        *why = "the body is empty";
        return -1;
    }
    if (memchr(buf, '\0', len)) {
        *why = "the body holds a NUL byte";
        return -1;
    }
    if (!utf8_valid(buf, len)) {
        *why = "the body is not valid UTF-8";
        return -1;
    }
    if (max_depth(buf, len, JSONV_MAX_DEPTH) > JSONV_MAX_DEPTH) {
        *why = "the body nests deeper than 32 levels";
        return -1;
    }
    json_error_t err;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        *why = "the body is not valid JSON";
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *why = "the body must be a JSON object";
        return -1;
    }
    *out = root;
    return 0;
}

/* Looks `key` up; answers 400 when it is required and absent. Returns the
 * value, or NULL when absent (with *ok telling whether that is acceptable). */
static json_t *field(struct response *res, json_t *obj, const char *key, int flags, bool *ok)
{
    json_t *v = json_object_get(obj, key);
    *ok = true;
    if (v == NULL || (json_is_null(v) && !(flags & JV_NULLABLE))) {
        if (flags & JV_REQUIRED) {
            resp_problem(res, 400, "invalid_request", "field '%s' is required", key);
            *ok = false;
        } else if (v != NULL) {
            resp_problem(res, 400, "invalid_request", "field '%s' must not be null", key);
            *ok = false;
        }
        return NULL;
    }
    return v;
}

bool jv_int(struct response *res, json_t *obj, const char *key, int flags, int64_t lo, int64_t hi,
            int64_t *out, bool *present)
{
    bool ok;
    json_t *v = field(res, obj, key, flags & ~JV_NULLABLE, &ok);
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return ok;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        resp_problem(res, 400, "invalid_request", "field '%s' must be an integer in %lld..%lld",
                     key, (long long)lo, (long long)hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool jv_str(struct response *res, json_t *obj, const char *key, int flags, size_t min_chars,
            size_t max_chars, const char **out, size_t *len_out)
{
    bool ok;
    json_t *v = field(res, obj, key, flags, &ok);
    *out = NULL;
    if (len_out)
        *len_out = 0;
    if (v == NULL || json_is_null(v))
        return ok;
    if (!json_is_string(v)) {
        resp_problem(res, 400, "invalid_request", "field '%s' must be a string", key);
        return false;
    }
    size_t len = json_string_length(v);
    if (flags & JV_NAME) {
        const char *s = json_string_value(v);
        size_t lead = 0;
        while (lead < len && s[lead] == ' ')
            lead++;
        while (len > lead && s[len - 1] == ' ')
            len--;
        if (lead > 0 || len < json_string_length(v)) {
            /* the object keeps the trimmed copy alive for *out */
            json_t *trimmed = json_stringn(s + lead, len - lead);
            if (trimmed == NULL || json_object_set_new(obj, key, trimmed) < 0) {
                resp_problem(res, 500, "internal", "out of memory");
                return false;
            }
            v = trimmed;
            len = json_string_length(v);
        }
    }
    size_t chars = utf8_chars(json_string_value(v), len);
    if (chars < min_chars || chars > max_chars) {
        resp_problem(res, 400, "invalid_request", "field '%s' must be %zu..%zu characters", key,
                     min_chars, max_chars);
        return false;
    }
    if ((flags & JV_NAME) && !text_is_clean(json_string_value(v), len)) {
        resp_problem(res, 400, "invalid_request",
                     "field '%s' must not hold control, bidi or invisible characters", key);
        return false;
    }
    *out = json_string_value(v);
    if (len_out)
        *len_out = len;
    return true;
}

bool jv_bool(struct response *res, json_t *obj, const char *key, int flags, bool *out,
             bool *present)
{
    bool ok;
    json_t *v = field(res, obj, key, flags & ~JV_NULLABLE, &ok);
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return ok;
    if (!json_is_boolean(v)) {
        resp_problem(res, 400, "invalid_request", "field '%s' must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool jv_ids(struct response *res, json_t *obj, const char *key, int flags, size_t max,
            int64_t **out, size_t *n)
{
    bool ok;
    json_t *v = field(res, obj, key, flags & ~JV_NULLABLE, &ok);
    *out = NULL;
    *n = 0;
    if (v == NULL)
        return ok;
    if (!json_is_array(v)) {
        resp_problem(res, 400, "invalid_request", "field '%s' must be an array of ids", key);
        return false;
    }
    size_t count = json_array_size(v);
    if (count > max) {
        resp_problem(res, 422, "too_many_members", "field '%s' holds more than %zu ids", key, max);
        return false;
    }
    int64_t *ids = malloc((count ? count : 1) * sizeof *ids);
    if (ids == NULL) {
        resp_internal(res);
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 1 ||
            json_integer_value(e) > JSON_INT_MAX) {
            free(ids);
            resp_problem(res, 400, "invalid_request", "field '%s' must hold ids (integers 1..2^53)",
                         key);
            return false;
        }
        int64_t id = json_integer_value(e);
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = ids[j] == id;
        if (!seen)
            ids[k++] = id;
    }
    *out = ids;
    *n = k;
    return true;
}
