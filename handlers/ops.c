/* ops.c — liveness, readiness and metrics for operators and load balancers. */
#include "common.h"
#include "live/cluster.h"
#include "handlers.h"
#include "base/metrics.h"

enum handler_status ops_healthz(struct request *req, struct response *res)
{
    (void)req;
    return resp_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

enum handler_status ops_readyz(struct request *req, struct response *res)
{
    (void)req;
    /* A node cut off from the cluster's bus still serves (delivery across
     * nodes goes through the database), so only the database decides; the
     * answer says which node it is and whether its bus works. */
    if (db_ping()) {
        json_t *body = json_pack("{s:s}", "status", "ok");
        if (cluster_enabled())
            json_object_set_new(body, "node",
                                json_pack("{s:s, s:b}", "id", cluster_node(), "bus",
                                          cluster_healthy()));
        return resp_json(res, 200, body);
    }
    resp_problem(res, 503, "unavailable", "the database does not answer");
    res->retry_after_s = 1;
    return HANDLER_DONE;
}

enum handler_status ops_metrics(struct request *req, struct response *res)
{
    (void)req;
    res->text = metrics_render(&res->text_len);
    if (res->text == NULL)
        return resp_internal(res);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4";
    return HANDLER_DONE;
}
