/* routes.c — every endpoint, in one table. Literal paths come before {id}
 * paths they could be mistaken for. needs_auth = a bearer token is required;
 * slow = runs in the slow-work pool (an Argon2id hash takes ~50 ms);
 * auth_optional = a token is checked when sent (signed links come without);
 * stream_body = raw bytes streamed to a file (uploads), never buffered. */
#include "handlers.h"
#include "http/router.h"

const struct route routes[] = {
    {"POST", "/v1/users", users_create, false, true, false, false},
    {"GET", "/v1/users", users_search, true, false, false, false},
    {"GET", "/v1/users/{id}", users_get, true, false, false, false},
    {"GET", "/v1/me", me_get, true, false, false, false},
    {"PUT", "/v1/me/password", me_password_put, true, true, false, false},
    {"GET", "/v1/me/audit", me_audit_get, true, false, false, false},
    {"GET", "/v1/me/export", me_export_get, true, false, false, false},
    {"DELETE", "/v1/me", me_delete, true, true, false, false},

    {"POST", "/v1/sessions", sessions_create, false, true, false, false},
    {"GET", "/v1/sessions", sessions_list, true, false, false, false},
    {"DELETE", "/v1/sessions/current", sessions_delete_current, true, false, false, false},
    {"DELETE", "/v1/sessions/{id}", sessions_delete, true, false, false, false},
    {"PUT", "/v1/sessions/current/push", push_put, true, false, false, false},
    {"DELETE", "/v1/sessions/current/push", push_delete, true, false, false, false},
    {"GET", "/v1/notifications/log", notifications_log, true, false, false, false},

    {"GET", "/v1/contacts", contacts_list, true, false, false, false},
    {"PUT", "/v1/contacts/{id}", contacts_put, true, false, false, false},
    {"DELETE", "/v1/contacts/{id}", contacts_delete, true, false, false, false},
    {"GET", "/v1/blocks", blocks_list, true, false, false, false},
    {"PUT", "/v1/blocks/{id}", blocks_put, true, false, false, false},
    {"DELETE", "/v1/blocks/{id}", blocks_delete, true, false, false, false},

    {"POST", "/v1/threads", threads_create, true, false, false, false},
    {"GET", "/v1/threads", threads_list, true, false, false, false},
    {"GET", "/v1/threads/{id}", threads_get, true, false, false, false},
    {"PATCH", "/v1/threads/{id}", threads_rename, true, false, false, false},
    {"PATCH", "/v1/threads/{id}/settings", threads_settings, true, false, false, false},
    {"POST", "/v1/threads/{id}/members", members_add, true, false, false, false},
    {"DELETE", "/v1/threads/{id}/members/{id}", members_remove, true, false, false, false},
    {"POST", "/v1/threads/{id}/accept", threads_accept, true, false, false, false},
    {"POST", "/v1/threads/{id}/decline", threads_decline, true, false, false, false},

    {"POST", "/v1/threads/{id}/messages", messages_send, true, false, false, false},
    {"GET", "/v1/threads/{id}/messages", messages_list, true, false, false, false},
    {"PATCH", "/v1/threads/{id}/messages/{id}", messages_edit, true, false, false, false},
    {"DELETE", "/v1/threads/{id}/messages/{id}", messages_delete, true, false, false, false},
    {"GET", "/v1/threads/{id}/messages/{id}/history", messages_history, true, false, false, false},
    {"PUT", "/v1/threads/{id}/messages/{id}/hidden", messages_hide, true, false, false, false},
    {"DELETE", "/v1/threads/{id}/messages/{id}/hidden", messages_unhide, true, false, false, false},
    {"PUT", "/v1/threads/{id}/messages/{id}/reactions/{text}", reactions_put, true, false, false,
     false},
    {"DELETE", "/v1/threads/{id}/messages/{id}/reactions/{text}", reactions_delete, true, false,
     false, false},
    {"POST", "/v1/messages", messages_send_to_user, true, false, false, false},
    {"GET", "/v1/search/messages", search_messages_get, true, false, false, false},
    {"POST", "/v1/threads/{id}/read", receipts_read, true, false, false, false},
    {"GET", "/v1/threads/{id}/receipts", receipts_list, true, false, false, false},

    {"GET", "/v1/config", config_get, false, false, false, false},
    {"POST", "/v1/uploads", uploads_create, true, false, false, false},
    {"GET", "/v1/uploads/{id}", uploads_get, true, false, false, false},
    {"DELETE", "/v1/uploads/{id}", uploads_delete, true, false, false, false},
    {"PUT", "/v1/uploads/{id}/content", uploads_put_content, true, false, false, true},
    {"GET", "/v1/attachments/{id}", attachments_get, false, false, true, false},
    {"GET", "/v1/attachments/{id}/thumbnail", attachments_thumbnail, false, false, true, false},
    {"POST", "/v1/attachments/{id}/links", attachments_links_create, true, false, false, false},

    {"POST", "/v1/threads/{id}/typing", typing_post, true, false, false, false},
    {"GET", "/v1/inbox", inbox_get, true, false, false, false},
    {"GET", "/v1/presence", presence_list, true, false, false, false},

    {"GET", "/healthz", ops_healthz, false, false, false, false},
    {"GET", "/readyz", ops_readyz, false, false, false, false},
    {"GET", "/metrics", ops_metrics, false, false, false, false},
};

const size_t routes_count = sizeof routes / sizeof routes[0];
