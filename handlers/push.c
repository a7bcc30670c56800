/* push.c — a device's push token, and the caller's notification log.
 *
 * A token belongs to one session: registering it moves it away from any
 * other session (a phone that logs in as someone else, or logs in again). */
#include <ctype.h>
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"

/* True when every byte of s is a letter, a digit or one of extra. */
static bool all_of(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
            return false;
    return true;
}

/* Checks a token and topic before they reach a URL or a header: an APNs
 * token is an even number of 64..200 hex digits (32 bytes today; Apple asks
 * not to hard-code the length), an FCM token 32..512 of [A-Za-z0-9_:-], a
 * topic a bundle id of [A-Za-z0-9.-] (with its .voip / .complication
 * suffix). Returns NULL, or what is wrong. */
static const char *token_problem(const char *provider, const char *token, const char *topic)
{
    size_t n = strlen(token);
    if (strcmp(provider, "apns") == 0) {
        if (n < 64 || n > 200 || n % 2 != 0 || strspn(token, "0123456789abcdefABCDEF") != n)
            return "an APNs token is 64..200 hex digits";
    } else if (n < 32 || !all_of(token, "_:-")) {
        return "an FCM token is 32..512 characters of A-Z a-z 0-9 _ : -";
    }
    if (topic != NULL && !all_of(topic, ".-"))
        return "topic must be a bundle id of A-Z a-z 0-9 . -";
    return NULL;
}

struct token_ctx {
    int64_t session_id;
    const char *provider, *token, *topic;
};

static int token_tx(void *arg)
{
    struct token_ctx *c = arg;
    int rc = db_exec("UPDATE sessions SET push_provider = NULL, push_token = NULL, "
                     "push_topic = NULL WHERE push_token = ? AND push_provider = ? AND id <> ?",
                     DB_ARGS(DB_STR(c->token), DB_STR(c->provider), DB_INT(c->session_id)));
    if (rc < 0)
        return rc;
    return db_exec("UPDATE sessions SET push_provider = ?, push_token = ?, push_topic = ? "
                   "WHERE id = ?",
                   DB_ARGS(DB_STR(c->provider), DB_STR(c->token), DB_STR_OR_NULL(c->topic),
                           DB_INT(c->session_id)));
}

enum handler_status push_put(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    struct token_ctx c = {.session_id = req->session_id};
    if (body == NULL || !jv_str(res, body, "provider", JV_REQUIRED, 3, 4, &c.provider, NULL) ||
        !jv_str(res, body, "token", JV_REQUIRED, 1, 512, &c.token, NULL) ||
        !jv_str(res, body, "topic", JV_NULLABLE, 1, 255, &c.topic, NULL))
        return HANDLER_DONE;
    if (strcmp(c.provider, "apns") != 0 && strcmp(c.provider, "fcm") != 0)
        return resp_problem(res, 400, "invalid_request", "provider must be \"apns\" or \"fcm\"");
    const char *why = token_problem(c.provider, c.token, c.topic);
    if (why != NULL)
        return resp_problem(res, 400, "invalid_request", "%s", why);
    int rc = db_tx(token_tx, &c);
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status push_delete(struct request *req, struct response *res)
{
    int rc = db_exec("UPDATE sessions SET push_provider = NULL, push_token = NULL, "
                     "push_topic = NULL WHERE id = ?",
                     DB_ARGS(DB_INT(req->session_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status notifications_log(struct request *req, struct response *res)
{
    int64_t limit;
    if (!req_query_int(req, res, "limit", 50, 1, 500, &limit))
        return HANDLER_DONE;
    struct db_res *r;
    int rc = db_query("SELECT thread_id, seq, session_id, provider, decision, reason, status, at "
                      "FROM push_log WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                      &r, DB_ARGS(DB_INT(req->user_id), DB_INT(limit)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *entries = json_array();
    for (int i = 0; i < r->nrows; i++) {
        const char *session = db_str(r, i, 2), *provider = db_str(r, i, 3),
                   *status = db_str(r, i, 6);
        json_array_append_new(
            entries, json_pack("{s:I, s:I, s:o, s:o, s:s, s:s, s:o, s:I}", "thread_id",
                               (json_int_t)db_int(r, i, 0), "seq", (json_int_t)db_int(r, i, 1),
                               "session_id", session ? json_integer(db_int(r, i, 2)) : json_null(),
                               "provider", provider ? json_string(provider) : json_null(),
                               "decision", db_str(r, i, 4), "reason", db_str(r, i, 5), "status",
                               status ? json_integer(db_int(r, i, 6)) : json_null(), "at",
                               (json_int_t)db_int(r, i, 7)));
    }
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "entries", entries));
}
