/* search.c — GET /v1/search/messages (chat/search.h does the work).
 *
 * The cursor (`before`, `next`) is "AT.THREAD.SEQ", the position of the
 * last message examined; clients pass it back as it is. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat/search.h"
#include "common.h"
#include "handlers.h"
#include "base/util.h"

/* Reads a cursor "AT.THREAD.SEQ" (positive integers). */
static bool parse_cursor(const char *s, int64_t *at, int64_t *thread, int64_t *seq)
{
    long long a, t, q;
    int used = 0;
    if (sscanf(s, "%lld.%lld.%lld%n", &a, &t, &q, &used) != 3 || s[used] != '\0' || a <= 0 ||
        t <= 0 || q <= 0)
        return false;
    *at = a, *thread = t, *seq = q;
    return true;
}

enum handler_status search_messages_get(struct request *req, struct response *res)
{
    const char *q = req_query(req, "q");
    int64_t thread_id, limit, at = 0, thread = 0, seq = 0;
    if (!req_query_int(req, res, "thread_id", 0, 1, JSON_INT_MAX, &thread_id) ||
        !req_query_int(req, res, "limit", 20, 1, 50, &limit))
        return HANDLER_DONE;
    if (q == NULL || strlen(q) > SEARCH_QUERY_MAX)
        return resp_problem(res, 400, "invalid_query", "q must be 1..%d bytes of text",
                            SEARCH_QUERY_MAX);
    const char *before = req_query(req, "before");
    if (before && !parse_cursor(before, &at, &thread, &seq))
        return resp_problem(res, 400, "invalid_request",
                            "before must be a cursor from an earlier answer's next");
    struct search_query sq;
    const char *why;
    if (search_parse(q, &sq, &why) < 0)
        return resp_problem(res, 400, "invalid_query", "%s", why);
    if (rate_limited(req, res, RL_USER_LOOKUP))
        return HANDLER_DONE;
    json_t *results = json_array();
    bool more;
    int64_t last_at = 0, last_thread = 0, last_seq = 0;
    int rc = search_messages(req->user_id, thread_id, &sq, at, thread, seq, (int)limit, results,
                             &more, &last_at, &last_thread, &last_seq);
    if (rc != 0) {
        json_decref(results);
        return resp_result(res, rc, "no thread %" PRId64, thread_id);
    }
    json_t *terms = json_array();
    for (int i = 0; i < sq.nterms; i++)
        json_array_append_new(terms, json_string(sq.terms[i]));
    char next[80];
    snprintf(next, sizeof next, "%" PRId64 ".%" PRId64 ".%" PRId64, last_at, last_thread, last_seq);
    return resp_json(res, 200,
                     json_pack("{s:o, s:o, s:o}", "results", results, "next",
                               more ? json_string(next) : json_null(), "terms", terms));
}
