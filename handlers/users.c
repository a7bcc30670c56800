/* users.c — registration, the caller's own user, lookup and prefix search.
 *
 * Usernames are 3..32 characters of [A-Za-z0-9_.-], stored in lower case so
 * that `Alice` and `alice` are one name; the display name defaults to the
 * name as typed. Search lists only the caller's contacts and co-members by
 * prefix, anyone else by the exact username. */
#include <ctype.h>
#include <string.h>

#include "chat/auth.h"
#include "common.h"
#include "chat/events.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

enum handler_status users_create(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_REGISTER_ADDR))
        return HANDLER_DONE;
    json_t *body = req_body(req, res);
    if (body == NULL)
        return HANDLER_DONE;
    json_t *jname = json_object_get(body, "username");
    json_t *jpass = json_object_get(body, "password");
    char username[33];
    if (!json_is_string(jname) || !auth_username_normalise(json_string_value(jname), username)) {
        return resp_problem(res, 400, "invalid_username",
                            "username must be 3..32 characters of A-Z a-z 0-9 _ . -");
    }
    if (!json_is_string(jpass) || json_string_length(jpass) > 256)
        return resp_problem(res, 400, "invalid_password",
                            "password must be a string of 12 "
                            "characters to 256 bytes");
    const char *weak = auth_password_weak(json_string_value(jpass), json_string_length(jpass),
                                          username);
    if (weak)
        return resp_problem(res, 400, "weak_password", "%s", weak);
    const char *display;
    char trimmed[64 * 4 + 1];
    size_t display_len;
    if (!jv_str(res, body, "display_name", JV_NULLABLE, 1, 256, &display, &display_len))
        return HANDLER_DONE;
    if (display == NULL)
        display = json_string_value(jname);
    else if (!auth_display_name_clean(display, display_len, trimmed))
        return resp_problem(res, 400, "invalid_request",
                            "display_name must be 1..64 characters after trimming spaces, "
                            "without control, bidi or invisible characters");
    else
        display = trimmed;

    /* A taken username is found by the unique key when the row is inserted. */
    char hash[AUTH_HASH_LEN];
    int rc = auth_password_hash(json_string_value(jpass), json_string_length(jpass), hash);
    if (rc == AUTH_BUSY) {
        resp_problem(res, 503, "unavailable", "too many logins at once; try again");
        res->retry_after_s = 1;
        return HANDLER_DONE;
    }
    if (rc != AUTH_OK)
        return resp_internal(res);
    int64_t user_id;
    rc = auth_user_create(username, display, hash, &user_id);
    if (rc == DB_EDUP)
        return resp_problem(res, 409, "username_taken", "the username '%s' is taken", username);
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *user;
    rc = view_user(user_id, &user);
    if (rc != 0)
        return resp_result(res, rc < 0 ? rc : DB_ERR, "no user");
    return resp_json(res, 201, json_pack("{s:o}", "user", user));
}

enum handler_status me_get(struct request *req, struct response *res)
{
    json_t *user;
    int rc = view_user(req->user_id, &user);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc == NOT_FOUND)
        return resp_problem(res, 401, "unauthorized", "the account no longer exists");
    return resp_json(res, 200, json_pack("{s:o}", "user", user));
}

enum handler_status users_get(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_USER_LOOKUP))
        return HANDLER_DONE;
    json_t *user;
    if (!user_or_404(res, req->params[0], &user))
        return HANDLER_DONE;
    return resp_json(res, 200, json_pack("{s:o}", "user", user));
}

enum handler_status users_search(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_USER_LOOKUP))
        return HANDLER_DONE;
    const char *q = req_query(req, "q");
    int64_t limit;
    if (!req_query_int(req, res, "limit", 20, 1, 100, &limit))
        return HANDLER_DONE;
    if (q == NULL || *q == '\0' || strlen(q) > 32)
        return resp_problem(res, 400, "invalid_request",
                            "q must be a username prefix of 1..32 characters");
    /* Lower case, with LIKE's wildcards escaped: a prefix is matched literally. */
    char pattern[2 * 32 + 2];
    size_t k = 0;
    for (const char *p = q; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            pattern[k++] = '\\';
        pattern[k++] = (char)tolower((unsigned char)*p);
    }
    pattern[k++] = '%';
    pattern[k] = '\0';
    struct db_res *r;
    /* A prefix finds the caller's contacts and co-members; anyone else only
     * by the exact username (the directory is not listed to strangers). */
    char exact[33];
    size_t n = strlen(q);
    for (size_t i = 0; i <= n; i++)
        exact[i] = (char)tolower((unsigned char)q[i]);
    int rc = db_query("SELECT " USER_COLS " FROM users u WHERE u.username LIKE ? AND "
                      "(u.username = ? "
                      "OR u.id IN (SELECT c.contact_id FROM contacts c WHERE c.owner_id = ?) "
                      "OR u.id IN (SELECT o.owner_id FROM thread_members m JOIN thread_members o "
                      "ON o.thread_id = m.thread_id WHERE m.owner_id = ? "
                      "AND m.request_from IS NULL AND o.request_from IS NULL)) "
                      "ORDER BY u.username LIMIT ?",
                      &r,
                      DB_ARGS(DB_STR(pattern), DB_STR(exact), DB_INT(req->user_id),
                              DB_INT(req->user_id), DB_INT(limit)));
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *users = json_array();
    for (int i = 0; i < r->nrows; i++)
        json_array_append_new(users, view_user_row(r, i, 0));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "users", users));
}
