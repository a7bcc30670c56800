/* routes.c — every endpoint, in one table. Literal paths come before {id}
 * paths they could be mistaken for. needs_auth = a bearer token is required. */
#include "../handlers/handlers.h"
#include "router.h"

const struct route routes[] = {
    {"POST", "/v1/users", users_create, false},
    {"GET", "/v1/users", users_search, true},
    {"GET", "/v1/users/{id}", users_get, true},
    {"GET", "/v1/me", me_get, true},

    {"POST", "/v1/sessions", sessions_create, false},
    {"GET", "/v1/sessions", sessions_list, true},
    {"DELETE", "/v1/sessions/current", sessions_delete_current, true},
    {"DELETE", "/v1/sessions/{id}", sessions_delete, true},
    {"PUT", "/v1/sessions/current/push", push_put, true},
    {"DELETE", "/v1/sessions/current/push", push_delete, true},
    {"GET", "/v1/notifications/log", notifications_log, true},

    {"GET", "/v1/contacts", contacts_list, true},
    {"PUT", "/v1/contacts/{id}", contacts_put, true},
    {"DELETE", "/v1/contacts/{id}", contacts_delete, true},
    {"GET", "/v1/blocks", blocks_list, true},
    {"PUT", "/v1/blocks/{id}", blocks_put, true},
    {"DELETE", "/v1/blocks/{id}", blocks_delete, true},

    {"POST", "/v1/threads", threads_create, true},
    {"GET", "/v1/threads", threads_list, true},
    {"GET", "/v1/threads/{id}", threads_get, true},
    {"PATCH", "/v1/threads/{id}", threads_rename, true},
    {"PATCH", "/v1/threads/{id}/settings", threads_settings, true},
    {"POST", "/v1/threads/{id}/members", members_add, true},
    {"DELETE", "/v1/threads/{id}/members/{id}", members_remove, true},

    {"POST", "/v1/threads/{id}/messages", messages_send, true},
    {"GET", "/v1/threads/{id}/messages", messages_list, true},
    {"POST", "/v1/messages", messages_send_to_user, true},
    {"POST", "/v1/threads/{id}/read", receipts_read, true},
    {"GET", "/v1/threads/{id}/receipts", receipts_list, true},

    {"POST", "/v1/threads/{id}/typing", typing_post, true},
    {"GET", "/v1/inbox", inbox_get, true},
    {"GET", "/v1/presence", presence_list, true},

    {"GET", "/healthz", ops_healthz, false},
    {"GET", "/readyz", ops_readyz, false},
    {"GET", "/metrics", ops_metrics, false},
};

const size_t routes_count = sizeof routes / sizeof routes[0];
