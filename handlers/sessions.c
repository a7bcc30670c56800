/* sessions.c — login (one session per device), the session list, logout.
 *
 * Failed logins are throttled per username (auth_login_wait_s); the check
 * comes before the password hash, so a throttled guesser costs no hashing. */
#include <ctype.h>
#include <string.h>

#include "chat/auth.h"
#include "common.h"
#include "handlers.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "http/jsonv.h"
#include "base/util.h"

enum handler_status sessions_create(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    const char *name, *password, *device;
    size_t name_len, pass_len;
    if (!jv_str(res, body, "username", JV_REQUIRED, 1, 256, &name, &name_len) ||
        !jv_str(res, body, "password", JV_REQUIRED, 0, 1024, &password, &pass_len) ||
        !jv_str(res, body, "device_name", JV_NULLABLE, 0, 64, &device, NULL))
        return HANDLER_DONE;
    char username[33];
    if (name_len > 32)
        return resp_problem(res, 401, "invalid_credentials", "wrong username or password");
    for (size_t i = 0; i <= name_len; i++)
        username[i] = (char)tolower((unsigned char)name[i]);

    int64_t now = now_ms();
    int64_t wait = auth_login_wait_s(username, now);
    if (wait < 0)
        return resp_db_error(res, (int)wait);
    if (wait > 0) {
        resp_problem(res, 429, "rate_limited", "too many failed logins; try again in %lld s",
                     (long long)wait);
        res->retry_after_s = (int)wait;
        return HANDLER_DONE;
    }
    struct db_res *r;
    int rc = db_query("SELECT " USER_COLS ", u.password_hash FROM users u WHERE u.username = ?", &r,
                      DB_ARGS(DB_STR(username)));
    if (rc < 0)
        return resp_db_error(res, rc);
    rc = auth_password_verify(r->nrows ? db_str(r, 0, 3) : NULL, password, pass_len);
    if (rc != AUTH_OK) {
        db_res_free(r);
        if (rc == AUTH_BUSY) {
            resp_problem(res, 503, "unavailable", "too many logins at once; try again");
            res->retry_after_s = 1;
            return HANDLER_DONE;
        }
        auth_login_failed(username, now);
        return resp_problem(res, 401, "invalid_credentials", "wrong username or password");
    }
    json_t *user = view_user_row(r, 0, 0);
    int64_t user_id = db_int(r, 0, 0);
    db_res_free(r);
    auth_login_succeeded(username);

    char token[AUTH_TOKEN_LEN];
    unsigned char hash[32];
    auth_token_new(token, hash);
    rc =
        db_exec("INSERT INTO sessions (user_id, token_hash, device_name, created_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                DB_ARGS(DB_INT(user_id), DB_STRN(hash, sizeof hash), DB_STR(device ? device : ""),
                        DB_INT(now), DB_INT(now)));
    if (rc < 0) {
        json_decref(user);
        return resp_db_error(res, rc);
    }
    return resp_json(res, 201,
                     json_pack("{s:s, s:I, s:o}", "token", token, "session_id",
                               (json_int_t)db_insert_id(), "user", user));
}

enum handler_status sessions_list(struct request *req, struct response *res)
{
    auth_flush_last_seen(); /* this request's own use included */
    struct db_res *r;
    int rc = db_query("SELECT id, device_name, created_at, last_seen_at FROM sessions "
                      "WHERE user_id = ? ORDER BY id",
                      &r, DB_ARGS(DB_INT(req->user_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *list = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(
            list,
            json_pack("{s:I, s:s, s:I, s:I, s:b}", "id", (json_int_t)db_int(r, i, 0), "device_name",
                      db_str(r, i, 1), "created_at", (json_int_t)db_int(r, i, 2), "last_seen_at",
                      (json_int_t)db_int(r, i, 3), "current", db_int(r, i, 0) == req->session_id));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "sessions", list));
}

enum handler_status sessions_delete_current(struct request *req, struct response *res)
{
    int rc = db_exec("DELETE FROM sessions WHERE id = ?", DB_ARGS(DB_INT(req->session_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    auth_session_forget(req->session_id);
    hub_end_session(req->session_id);
    cluster_revoke_session(req->session_id);
    return resp_empty(res, 204);
}

enum handler_status sessions_delete(struct request *req, struct response *res)
{
    int rc = db_exec("DELETE FROM sessions WHERE id = ? AND user_id = ?",
                     DB_ARGS(DB_INT(req->params[0]), DB_INT(req->user_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    if (db_affected() == 0)
        return resp_problem(res, 404, "not_found", "no session %lld", (long long)req->params[0]);
    auth_session_forget(req->params[0]);
    hub_end_session(req->params[0]);
    cluster_revoke_session(req->params[0]);
    return resp_empty(res, 204);
}
