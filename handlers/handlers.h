/* handlers.h — every endpoint's handler, one file per resource.
 *
 * Each is `enum handler_status name(struct request *req, struct response *res)`: it reads
 * the parsed request, talks to the database through src/db.h, and fills the
 * response (a JSON body or problem details). See src/request.h.
 *
 * May call: anything under src/ (the application sits on top of every layer). */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include "http/request.h"

/* users.c */
enum handler_status users_create(struct request *req, struct response *res);
enum handler_status users_search(struct request *req, struct response *res);
enum handler_status users_get(struct request *req, struct response *res);
enum handler_status me_get(struct request *req, struct response *res);
/* account.c: PUT /v1/me/password (slow: two hashes), GET /v1/me/audit */
enum handler_status me_password_put(struct request *req, struct response *res);
enum handler_status me_audit_get(struct request *req, struct response *res);

/* sessions.c */
enum handler_status sessions_create(struct request *req, struct response *res);
enum handler_status sessions_list(struct request *req, struct response *res);
enum handler_status sessions_delete_current(struct request *req, struct response *res);
enum handler_status sessions_delete(struct request *req, struct response *res);

/* contacts.c */
enum handler_status contacts_list(struct request *req, struct response *res);
enum handler_status contacts_put(struct request *req, struct response *res);
enum handler_status contacts_delete(struct request *req, struct response *res);
enum handler_status blocks_list(struct request *req, struct response *res);
enum handler_status blocks_put(struct request *req, struct response *res);
enum handler_status blocks_delete(struct request *req, struct response *res);

/* threads.c */
enum handler_status threads_create(struct request *req, struct response *res);
enum handler_status threads_list(struct request *req, struct response *res);
enum handler_status threads_get(struct request *req, struct response *res);
enum handler_status threads_rename(struct request *req, struct response *res);
enum handler_status threads_settings(struct request *req, struct response *res);

/* members.c */
enum handler_status members_add(struct request *req, struct response *res);
enum handler_status members_remove(struct request *req, struct response *res);

/* messages.c */
enum handler_status messages_send(struct request *req, struct response *res);
enum handler_status messages_send_to_user(struct request *req, struct response *res);
enum handler_status messages_list(struct request *req, struct response *res);
/* Message actions (message_actions.c): PATCH, DELETE …/messages/{seq},
 * GET …/history, PUT/DELETE …/hidden, PUT/DELETE …/reactions/{emoji}. */
enum handler_status messages_edit(struct request *req, struct response *res);
enum handler_status messages_delete(struct request *req, struct response *res);
enum handler_status messages_history(struct request *req, struct response *res);
enum handler_status messages_hide(struct request *req, struct response *res);
enum handler_status messages_unhide(struct request *req, struct response *res);
enum handler_status reactions_put(struct request *req, struct response *res);
enum handler_status reactions_delete(struct request *req, struct response *res);
/* GET /v1/search/messages (search.c). */
enum handler_status search_messages_get(struct request *req, struct response *res);
/* GET /v1/me/export, DELETE /v1/me (account.c). */
enum handler_status me_export_get(struct request *req, struct response *res);
enum handler_status me_delete(struct request *req, struct response *res);

/* receipts.c */
enum handler_status receipts_read(struct request *req, struct response *res);
enum handler_status receipts_list(struct request *req, struct response *res);

/* inbox.c */
enum handler_status inbox_get(struct request *req, struct response *res);

/* presence.c */
enum handler_status presence_list(struct request *req, struct response *res);
enum handler_status typing_post(struct request *req, struct response *res);

/* push.c */
enum handler_status push_put(struct request *req, struct response *res);
enum handler_status push_delete(struct request *req, struct response *res);
enum handler_status notifications_log(struct request *req, struct response *res);

/* ops.c */
/* members.c: message requests (a group add from a stranger). */
enum handler_status threads_accept(struct request *req, struct response *res);
enum handler_status threads_decline(struct request *req, struct response *res);

/* The largest message body, bytes (API.md). */
#define MESSAGE_MAX_BYTES 65536

/* attachments.c */
enum handler_status config_get(struct request *req, struct response *res);
enum handler_status uploads_create(struct request *req, struct response *res);
enum handler_status uploads_get(struct request *req, struct response *res);
enum handler_status uploads_delete(struct request *req, struct response *res);
enum handler_status uploads_put_content(struct request *req, struct response *res);
enum handler_status attachments_get(struct request *req, struct response *res);
enum handler_status attachments_thumbnail(struct request *req, struct response *res);
enum handler_status attachments_links_create(struct request *req, struct response *res);

enum handler_status ops_healthz(struct request *req, struct response *res);
enum handler_status ops_readyz(struct request *req, struct response *res);
enum handler_status ops_metrics(struct request *req, struct response *res);

#endif
