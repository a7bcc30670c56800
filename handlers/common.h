/* common.h — request-aware helpers that several handlers share: the
 * membership and user checks that answer 404, and the one mapper from
 * result codes (DB_E*, the model's NOT_FOUND, BLOCKED, …) to problem
 * answers.
 * Everything that does not need a request or response lives in the core
 * (chat/model.h, chat/direct.h).
 *
 * May call: everything under src/. */
#ifndef CHAT_HANDLERS_COMMON_H
#define CHAT_HANDLERS_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/ratelimit.h"
#include "chat/events.h"
#include "chat/model.h"
#include "http/request.h"

/* The caller's membership of thread for a handler: fills *mi and returns
 * true, or answers 404 (not a member, or no such thread) or 5xx and returns
 * false. */
bool member_or_404(const struct request *req, struct response *res, int64_t thread,
                   struct member_info *mi);

/* The user `id` as a view into *out (caller owns), or answers 404 (no such
 * user) or 5xx and returns false. */
bool user_or_404(struct response *res, int64_t id, json_t **out);

/* Takes a token of kind for the caller (its account, or its client address
 * for the *_ADDR kinds, base/ratelimit.h). Returns false when the action may
 * go on; true when it is refused, with 429 rate_limited and Retry-After
 * answered. Call once per request (not again when a handler reruns). */
bool rate_limited(const struct request *req, struct response *res, enum rl_kind kind);

/* Answers the usual way for a negative DB_E* code: 503 when the database is
 * unreachable or a commit's outcome is unknown (a retry settles it), else
 * 500. Returns HANDLER_DONE. */
enum handler_status resp_db_error(struct response *res, int rc);

/* Answers a result code that is not 0, the same way everywhere: a DB_E*
 * code as resp_db_error; NOT_FOUND 404 not_found with the detail
 * not_found_fmt (printf); BLOCKED 403 blocked; NOT_ADMIN 403 not_admin;
 * NOT_GROUP 422 not_a_group; TOO_MANY 422 too_many_members. Returns
 * HANDLER_DONE. */
enum handler_status resp_result(struct response *res, int rc, const char *not_found_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
