/* sessions.c — login (one session per device), the session list, logout.
 *
 * Failed logins are delayed per username and per client address, or, for
 * a login that shows a device key of the account, per device key only
 * (auth_login_wait_s): a stranger's failures never delay a device that
 * logged in before. The check comes before the password hash, so a
 * delayed guesser costs no hashing. */
#include <ctype.h>
#include <string.h>

#include "chat/auth.h"
#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

enum handler_status sessions_create(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_LOGIN_ADDR))
        return HANDLER_DONE;
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    const char *name, *password, *device, *key;
    size_t name_len, pass_len, key_len;
    if (!jv_str(res, body, "username", JV_REQUIRED, 1, 256, &name, &name_len) ||
        !jv_str(res, body, "password", JV_REQUIRED, 0, 1024, &password, &pass_len) ||
        !jv_str(res, body, "device_name", JV_NULLABLE | JV_NAME, 0, 64, &device, NULL) ||
        !jv_str(res, body, "device_key", JV_NULLABLE, 0, 64, &key, &key_len))
        return HANDLER_DONE;
    char username[33];
    if (name_len > 32)
        return resp_problem(res, 401, "invalid_credentials", "wrong username or password");
    for (size_t i = 0; i <= name_len; i++)
        username[i] = (char)tolower((unsigned char)name[i]);

    struct auth_attempt at = {.username = username, .address = req->client_addr};
    int64_t now = now_ms();
    struct db_res *r;
    int rc = db_query("SELECT " USER_COLS ", u.password_hash, u.deactivated_at FROM users u "
                      "WHERE u.username = ?",
                      &r, DB_ARGS(DB_STR(username)));
    if (rc < 0)
        return resp_db_error(res, rc);
    int64_t user_id = r->nrows ? db_int(r, 0, 0) : 0;
    if (user_id && key) {
        rc = auth_device_key_check(key, key_len, user_id, now, at.device_hash);
        if (rc < 0) {
            db_res_free(r);
            return resp_db_error(res, rc);
        }
        at.device = rc == 1;
    }
    int64_t wait = auth_login_wait_s(&at, now);
    if (wait != 0) {
        db_res_free(r);
        if (wait < 0)
            return resp_db_error(res, (int)wait);
        if (user_id)
            auth_audit(user_id, 0, "login_throttled", req->client_addr, now);
        resp_problem(res, 429, "rate_limited", "too many failed logins; try again in %lld s",
                     (long long)wait);
        res->retry_after_s = (int)wait;
        return HANDLER_DONE;
    }
    rc = auth_password_verify(user_id ? db_str(r, 0, 3) : NULL, password, pass_len);
    if (rc != AUTH_OK) {
        db_res_free(r);
        if (rc == AUTH_BUSY) {
            resp_problem(res, 503, "unavailable", "too many logins at once; try again");
            res->retry_after_s = 1;
            return HANDLER_DONE;
        }
        auth_login_failed(&at, now);
        if (user_id)
            auth_audit(user_id, 0, "login_failed", req->client_addr, now);
        return resp_problem(res, 401, "invalid_credentials", "wrong username or password");
    }
    if (db_str(r, 0, 4)) {
        /* The right password of an account an operator deactivated. */
        db_res_free(r);
        auth_audit(user_id, 0, "login_failed", req->client_addr, now);
        return resp_problem(res, 403, "account_deactivated",
                            "this account is deactivated; ask the server's operator");
    }
    json_t *user = view_user_row(r, 0, 0);
    db_res_free(r);
    auth_login_succeeded(&at);

    /* A device that showed its key keeps it; any other gets a new one. */
    char token[AUTH_TOKEN_LEN], new_key[AUTH_TOKEN_LEN];
    int64_t session_id;
    rc = at.device ? DB_OK : auth_device_key_new(user_id, now, new_key);
    if (rc >= 0)
        rc = auth_session_start(user_id, device ? device : "", req->client_addr, now, token,
                                &session_id);
    if (rc < 0) {
        json_decref(user);
        return resp_db_error(res, rc);
    }
    return resp_json(res, 201,
                     json_pack("{s:s, s:I, s:s, s:o}", "token", token, "session_id",
                               (json_int_t)session_id, "device_key", at.device ? key : new_key,
                               "user", user));
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
    int rc = auth_session_end(req->user_id, req->session_id, "logout", req->client_addr);
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status sessions_delete(struct request *req, struct response *res)
{
    int rc = auth_session_end(req->user_id, req->params[0], "session_revoked", req->client_addr);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 404, "not_found", "no session %lld", (long long)req->params[0]);
    return resp_empty(res, 204);
}
