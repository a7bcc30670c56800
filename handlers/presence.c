/* presence.c — GET /v1/presence and POST /v1/threads/{id}/typing.
 *
 * Presence is visible for the caller, mutual contacts and members of a
 * thread the caller is in, never across a block (PRESENCE_VISIBLE); other
 * ids are left out of the answer (as if they did not exist). Typing is an ephemeral event to the
 * thread's other members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "handlers.h"
#include "live/cluster.h"
#include "live/hub.h"
#include "base/util.h"

#define PRESENCE_MAX_IDS 1024

enum handler_status presence_list(struct request *req, struct response *res)
{
    const char *list = req_query(req, "user_ids");
    if (list == NULL || *list == '\0')
        return resp_problem(res, 400, "invalid_request", "user_ids must list user ids: 1,2,3");
    struct sbuf ids = {0};
    size_t nids = 0;
    char buf[24];
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int64_t id;
        if (len == 0 || len >= sizeof buf || nids >= PRESENCE_MAX_IDS)
            goto bad;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (parse_int(buf, &id) < 0 || id < 1)
            goto bad;
        sb_item(&ids, "%lld", (long long)id);
        nids++;
        p += len;
        if (*p == ',' && *++p == '\0')
            goto bad;
    }
    const char *ids_json = sb_done(&ids);
    if (ids_json == NULL) {
        free(ids.s);
        return resp_internal(res);
    }
    struct db_res *r;
    int rc =
        db_query("SELECT u.id, (SELECT MAX(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) "
                 "FROM " DB_IDS_TABLE " JOIN users u ON u.id = j.id JOIN users v ON v.id = ? "
                 "WHERE " PRESENCE_VISIBLE,
                 &r, DB_ARGS(DB_STR(ids_json), DB_INT(req->user_id)));
    free(ids.s);
    if (rc < 0)
        return resp_db_error(res, rc);
    json_t *out = json_object();
    for (int i = 0; i < r->nrows; i++)
        json_object_set_new(out, db_str(r, i, 0), view_presence(db_int(r, i, 0), db_int(r, i, 1)));
    db_res_free(r);
    return resp_json(res, 200, json_pack("{s:o}", "presence", out));
bad:
    free(ids.s);
    return resp_problem(res, 400, "invalid_request", "user_ids must be 1..%d comma-separated ids",
                        PRESENCE_MAX_IDS);
}

enum handler_status typing_post(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_TYPING))
        return HANDLER_DONE;
    int64_t thread_id = req->params[0];
    struct member_info mi;
    if (!member_or_404(req, res, thread_id, &mi))
        return HANDLER_DONE;
    struct db_res *r;
    int rc = db_query("SELECT owner_id FROM thread_members WHERE thread_id = ? AND owner_id <> ?",
                      &r, DB_ARGS(DB_INT(thread_id), DB_INT(req->user_id)));
    if (rc < 0)
        return resp_db_error(res, rc);
    int64_t *ids = malloc(((size_t)r->nrows + 1) * sizeof *ids);
    if (ids == NULL) {
        db_res_free(r);
        return resp_internal(res);
    }
    for (int i = 0; i < r->nrows; i++)
        ids[i] = db_int(r, i, 0);
    json_t *ev = events_typing_view(thread_id, req->user_id);
    cluster_emit(ids, (size_t)r->nrows, ev);
    json_decref(ev);
    free(ids);
    db_res_free(r);
    return resp_empty(res, 204);
}
