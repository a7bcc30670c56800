/* account.c — the caller's password, the audit log of their
 * authentication events, the export of their data and the deletion of
 * their account (chat/account.h).
 *
 * A password change needs the current password; a wrong one counts as a
 * failed login of the account and its address (so a stolen token cannot
 * guess the password faster than a login could) and answers 403, not 401:
 * the session itself is fine. */
#include "chat/account.h"
#include "chat/auth.h"
#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

/* 503 when no password-hashing slot freed up in time. */
static enum handler_status hash_busy(struct response *res)
{
    resp_problem(res, 503, "unavailable", "too many logins at once; try again");
    res->retry_after_s = 1;
    return HANDLER_DONE;
}

/* Checks that password (len bytes) is the caller's (hash and username from
 * auth_user_secret) before a change that needs it. A wrong one counts as a
 * failed login of the account and the address (so a stolen token cannot
 * guess faster than a login could) and is audited as fail_event. Returns
 * true with *now (ms); false with the answer filled: 429 while failed
 * logins make it wait, 503 when no hashing slot freed up, 403
 * wrong_password (wrong_detail). */
static bool password_ok(struct request *req, struct response *res, const char *hash,
                        const char *username, const char *password, size_t len,
                        const char *fail_event, const char *wrong_detail, int64_t *now)
{
    struct auth_attempt at = {.username = username, .address = req->client_addr};
    *now = now_ms();
    int64_t wait = auth_login_wait_s(&at, *now);
    if (wait < 0) {
        resp_db_error(res, (int)wait);
        return false;
    }
    if (wait > 0) {
        auth_audit(req->user_id, req->session_id, "login_throttled", req->client_addr, *now);
        resp_problem(res, 429, "rate_limited", "too many wrong passwords; try again in %lld s",
                     (long long)wait);
        res->retry_after_s = (int)wait;
        return false;
    }
    int rc = auth_password_verify(hash, password, len);
    if (rc == AUTH_BUSY) {
        hash_busy(res);
        return false;
    }
    if (rc == AUTH_MISMATCH) {
        auth_login_failed(&at, *now);
        auth_audit(req->user_id, req->session_id, fail_event, req->client_addr, *now);
        resp_problem(res, 403, "wrong_password", "%s", wrong_detail);
        return false;
    }
    if (rc != AUTH_OK) {
        resp_internal(res);
        return false;
    }
    return true;
}

enum handler_status me_password_put(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    const char *current, *fresh;
    size_t current_len, fresh_len;
    if (!jv_str(res, body, "current_password", JV_REQUIRED, 0, 1024, &current, &current_len) ||
        !jv_str(res, body, "new_password", JV_REQUIRED, 0, 1024, &fresh, &fresh_len))
        return HANDLER_DONE;
    json_t *jend = json_object_get(body, "end_other_sessions");
    if (jend && !json_is_boolean(jend) && !json_is_null(jend))
        return resp_problem(res, 400, "invalid_request", "end_other_sessions must be a boolean");
    bool end_others = json_is_true(jend);

    char hash[AUTH_HASH_LEN], username[33];
    int rc = auth_user_secret(req->user_id, hash, username);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 401, "unauthorized", "the account no longer exists");
    const char *weak = auth_password_weak(fresh, fresh_len, username);
    if (weak)
        return resp_problem(res, 400, "weak_password", "%s", weak);

    int64_t now;
    if (!password_ok(req, res, hash, username, current, current_len, "password_change_failed",
                     "the current password is not right", &now))
        return HANDLER_DONE;
    rc = auth_password_hash(fresh, fresh_len, hash);
    if (rc == AUTH_BUSY)
        return hash_busy(res);
    if (rc != AUTH_OK)
        return resp_internal(res);
    rc = auth_password_set(req->user_id, hash, req->session_id, end_others, req->client_addr);
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_empty(res, 204);
}

enum handler_status me_audit_get(struct request *req, struct response *res)
{
    int64_t limit;
    if (!req_query_int(req, res, "limit", 50, 1, 200, &limit))
        return HANDLER_DONE;
    json_t *events;
    int rc = auth_audit_list(req->user_id, (int)limit, &events);
    if (rc < 0)
        return resp_db_error(res, rc);
    return resp_json(res, 200, json_pack("{s:o}", "events", events));
}

enum handler_status me_export_get(struct request *req, struct response *res)
{
    json_t *doc;
    int rc = account_export(req->user_id, &doc);
    if (rc != 0)
        return resp_result(res, rc, "the account no longer exists");
    enum handler_status st = resp_json(res, 200, doc);
    resp_header(res, "Content-Disposition", "attachment; filename=\"chat-export.json\"");
    return st;
}

enum handler_status me_delete(struct request *req, struct response *res)
{
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    const char *password;
    size_t len;
    if (!jv_str(res, body, "password", JV_REQUIRED, 0, 1024, &password, &len))
        return HANDLER_DONE;
    char hash[AUTH_HASH_LEN], username[33];
    int rc = auth_user_secret(req->user_id, hash, username);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 401, "unauthorized", "the account no longer exists");
    int64_t now;
    if (!password_ok(req, res, hash, username, password, len, "account_delete_failed",
                     "the password is not right", &now))
        return HANDLER_DONE;
    auth_audit(req->user_id, req->session_id, "account_deleted", req->client_addr, now);
    rc = account_delete(req->user_id, now);
    if (rc != 0)
        return resp_result(res, rc, "the account no longer exists");
    return resp_empty(res, 204);
}
