/* message_actions.c — edit, delete for everyone, hide for me, reactions, and
 * a message's edit history (chat/actions.h does the work). */
#include <string.h>

#include "chat/actions.h"
#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"

/* The answer for an actions.h result that is not 0. */
static enum handler_status action_problem(struct response *res, int rc, int64_t thread, int64_t seq)
{
    switch (rc) {
    case ACT_NOT_AUTHOR:
        return resp_problem(res, 403, "not_author", "only the sender may do this to message %lld",
                            (long long)seq);
    case ACT_EDIT_WINDOW:
        return resp_problem(res, 422, "edit_window_expired",
                            "a message can be edited for %d seconds after it was sent",
                            actions_settings()->edit_window_s);
    case ACT_DELETE_WINDOW:
        return resp_problem(res, 422, "delete_window_expired",
                            "a message can be deleted for everyone for %d seconds after it was "
                            "sent",
                            actions_settings()->delete_window_s);
    case ACT_DELETED:
        return resp_problem(res, 422, "message_deleted", "message %lld was deleted",
                            (long long)seq);
    case ACT_TOO_MANY_REACTIONS:
        return resp_problem(res, 422, "too_many_reactions",
                            "a message carries at most %d different reactions",
                            actions_settings()->reactions_distinct_max);
    case ACT_VERSION:
        return resp_problem(res, 409, "version_conflict",
                            "message %lld has changed since that version", (long long)seq);
    case ACT_EMPTY:
        return resp_problem(res, 400, "invalid_message",
                            "body must be a non-empty string (or may be empty with attachments)");
    default:
        return resp_result(res, rc, "no message %lld in thread %lld", (long long)seq,
                           (long long)thread);
    }
}

enum handler_status messages_edit(struct request *req, struct response *res)
{
    int64_t thread = req->params[0], seq = req->params[1], if_version = -1;
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    json_t *text = json_object_get(body, "body");
    if (!json_is_string(text))
        return resp_problem(res, 400, "invalid_message", "body must be a string");
    if (json_string_length(text) > MESSAGE_MAX_BYTES)
        return resp_problem(res, 413, "message_too_large", "body is over %d bytes",
                            MESSAGE_MAX_BYTES);
    if (!jv_int(res, body, "if_version", JV_OPTIONAL, 0, INT32_MAX, &if_version, NULL))
        return HANDLER_DONE;
    if (rate_limited(req, res, RL_MESSAGE_ACTION))
        return HANDLER_DONE;
    json_t *message = NULL;
    int rc = message_edit(req->user_id, thread, seq, json_string_value(text),
                          json_string_length(text), if_version, &message);
    if (rc != 0)
        return action_problem(res, rc, thread, seq);
    return resp_json(res, 200, json_pack("{s:o}", "message", message));
}

enum handler_status messages_delete(struct request *req, struct response *res)
{
    int64_t thread = req->params[0], seq = req->params[1];
    if (rate_limited(req, res, RL_MESSAGE_ACTION))
        return HANDLER_DONE;
    int rc = message_delete(req->user_id, thread, seq);
    if (rc != 0)
        return action_problem(res, rc, thread, seq);
    return resp_empty(res, 204);
}

/* PUT (hide) and DELETE (show again) …/hidden. */
static enum handler_status hidden(struct request *req, struct response *res, bool hide)
{
    int64_t thread = req->params[0], seq = req->params[1];
    if (rate_limited(req, res, RL_MESSAGE_ACTION))
        return HANDLER_DONE;
    int rc = message_hide(req->user_id, thread, seq, hide);
    if (rc != 0)
        return action_problem(res, rc, thread, seq);
    return resp_empty(res, 204);
}

enum handler_status messages_hide(struct request *req, struct response *res)
{
    return hidden(req, res, true);
}

enum handler_status messages_unhide(struct request *req, struct response *res)
{
    return hidden(req, res, false);
}

/* PUT (add) and DELETE (remove) …/reactions/{emoji}. */
static enum handler_status reaction(struct request *req, struct response *res, bool add)
{
    int64_t thread = req->params[0], seq = req->params[1];
    size_t len;
    const char *text = req_path_text(req, 2, &len);
    char emoji[REACTION_MAX_BYTES + 1];
    if (!reaction_valid(text, len))
        return resp_problem(res, 400, "invalid_reaction",
                            "a reaction is one emoji (at most %d bytes of UTF-8, URL-encoded in "
                            "the path)",
                            REACTION_MAX_BYTES);
    memcpy(emoji, text, len);
    emoji[len] = '\0';
    if (rate_limited(req, res, RL_MESSAGE_ACTION))
        return HANDLER_DONE;
    int rc = message_react(req->user_id, thread, seq, emoji, add);
    if (rc != 0)
        return action_problem(res, rc, thread, seq);
    return resp_empty(res, 204);
}

enum handler_status reactions_put(struct request *req, struct response *res)
{
    return reaction(req, res, true);
}

enum handler_status reactions_delete(struct request *req, struct response *res)
{
    return reaction(req, res, false);
}

enum handler_status messages_history(struct request *req, struct response *res)
{
    int64_t thread = req->params[0], seq = req->params[1];
    json_t *versions = NULL;
    int rc = message_history(req->user_id, thread, seq, &versions);
    if (rc != 0)
        return action_problem(res, rc, thread, seq);
    return resp_json(res, 200, json_pack("{s:o}", "versions", versions));
}
