/* handlers.h — every endpoint's handler, one file per resource.
 *
 * Each is `void name(struct request *req, struct response *res)`: it reads
 * the parsed request, talks to the database through src/db.h, and fills the
 * response (a JSON body or problem details). See src/request.h. */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include "http/request.h"

/* users.c */
void users_create(struct request *req, struct response *res);
void users_search(struct request *req, struct response *res);
void users_get(struct request *req, struct response *res);
void me_get(struct request *req, struct response *res);

/* sessions.c */
void sessions_create(struct request *req, struct response *res);
void sessions_list(struct request *req, struct response *res);
void sessions_delete_current(struct request *req, struct response *res);
void sessions_delete(struct request *req, struct response *res);

/* contacts.c */
void contacts_list(struct request *req, struct response *res);
void contacts_put(struct request *req, struct response *res);
void contacts_delete(struct request *req, struct response *res);
void blocks_list(struct request *req, struct response *res);
void blocks_put(struct request *req, struct response *res);
void blocks_delete(struct request *req, struct response *res);

/* threads.c */
void threads_create(struct request *req, struct response *res);
void threads_list(struct request *req, struct response *res);
void threads_get(struct request *req, struct response *res);
void threads_rename(struct request *req, struct response *res);
void threads_settings(struct request *req, struct response *res);

/* members.c */
void members_add(struct request *req, struct response *res);
void members_remove(struct request *req, struct response *res);

/* messages.c */
void messages_send(struct request *req, struct response *res);
void messages_send_to_user(struct request *req, struct response *res);
void messages_list(struct request *req, struct response *res);

/* receipts.c */
void receipts_read(struct request *req, struct response *res);
void receipts_list(struct request *req, struct response *res);

/* inbox.c */
void inbox_get(struct request *req, struct response *res);

/* presence.c */
void presence_list(struct request *req, struct response *res);
void typing_post(struct request *req, struct response *res);

/* push.c */
void push_put(struct request *req, struct response *res);
void push_delete(struct request *req, struct response *res);
void notifications_log(struct request *req, struct response *res);

/* ops.c */
void ops_healthz(struct request *req, struct response *res);
void ops_readyz(struct request *req, struct response *res);
void ops_metrics(struct request *req, struct response *res);

#endif
