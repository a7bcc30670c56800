/* common.c — request-aware helpers shared by handlers (see common.h). */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/util.h"

bool member_or_404(const struct request *req, struct response *res, int64_t thread,
                   struct member_info *mi)
{
    int rc = member_get(req->user_id, thread, mi);
    if (rc != 0)
        resp_result(res, rc, "no thread %lld", (long long)thread);
    return rc == 0;
}

bool user_or_404(struct response *res, int64_t id, json_t **out)
{
    int rc = view_user(id, out);
    if (rc != 0)
        resp_result(res, rc, "no user %lld", (long long)id);
    return rc == 0;
}

enum handler_status resp_db_error(struct response *res, int rc)
{
    if (rc != DB_ECONN && rc != DB_ECOMMIT)
        return resp_internal(res);
    resp_problem(res, 503, "unavailable", "the database does not answer; try again");
    res->retry_after_s = 1;
    return HANDLER_DONE;
}

enum handler_status resp_result(struct response *res, int rc, const char *not_found_fmt, ...)
{
    switch (rc) {
    case NOT_FOUND: {
        char detail[256];
        va_list ap;
        va_start(ap, not_found_fmt);
        vsnprintf(detail, sizeof detail, not_found_fmt, ap);
        va_end(ap);
        return resp_problem(res, 404, "not_found", "%s", detail);
    }
    case BLOCKED:
        return resp_problem(res, 403, "blocked", "a block stands between you and this user");
    case NOT_ADMIN:
        return resp_problem(res, 403, "not_admin", "only an admin may do this in a group");
    case NOT_GROUP:
        return resp_problem(res, 422, "not_a_group", "a direct thread has exactly its two members");
    case TOO_MANY:
        return resp_problem(res, 422, "too_many_members", "a group has at most %d members",
                            GROUP_MAX_MEMBERS);
    default: return resp_db_error(res, rc < 0 ? rc : DB_ERR);
    }
}

bool rate_limited(const struct request *req, struct response *res, enum rl_kind kind)
{
    bool by_address = kind == RL_REGISTER_ADDR || kind == RL_LOGIN_ADDR;
    uint64_t key = by_address ? ratelimit_key(req->client_addr) : (uint64_t)req->user_id;
    int wait = 0;
    if (ratelimit_take(kind, key, mono_ms(), &wait))
        return false;
    resp_problem(res, 429, "rate_limited", "too many requests of this kind; try again in %d s",
                 wait);
    res->retry_after_s = wait;
    return true;
}
