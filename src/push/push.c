/* push.c — the outbox and the notifier thread (see push.h, docs/push.md).
 *
 * The loop: every PUSH_TICK_MS, lease the due jobs (due_at moves LEASE_MS
 * ahead on the database's clock, so a crash mid-flight lets the job come
 * back; FOR UPDATE SKIP LOCKED, so the notifiers of several nodes share the
 * outbox without waiting on each other or taking a job twice), decide each against
 * the database, and add one request per device to the curl multi handle;
 * then drive the transfers and handle each answer: log it, count it, drop a
 * dead token, or queue a retry row for that one device. A job row is deleted
 * when all its requests have been answered. */
#include "push/push.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "base/log.h"
#include "base/metrics.h"
#include "push/push_wire.h"
#include "base/util.h"

#define PUSH_TICK_MS 100
/* A lease outlasts a request (15 s at most), so one process never sends a job twice. */
#define LEASE_MS 20000
#define JOBS_PER_TICK 64
#define MAX_IN_FLIGHT 512
#define PREVIEW_BYTES 1024

enum job_kind { JOB_MESSAGE = 1, JOB_CLEAR = 2, JOB_REACTION = 3 };

struct job {
    int64_t id, user_id, thread_id, seq, session_id, except_session_id, created_at;
    int kind, attempts;
    char payload[97]; /* a reaction's "ACTOR EMOJI" */
    int outstanding;  /* requests not yet answered */
};

struct push_req {
    struct job *job;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    enum push_provider provider;
    int64_t session_id;
    char token[520], topic[256];
    struct push_content content;
    char *title, *text; /* owned copies behind content */
    struct push_answer answer;
    int retry_after_s;
    bool reissued;                /* the one immediate retry after a refused provider token */
    struct push_req *prev, *next; /* the in-flight list */
};

static int64_t grace_ms;
static bool push_reactions;
static int max_attempts;
static CURLM *multi;
static pthread_t thread;
static atomic_bool running; /* cleared by push_shutdown (main thread), read by the notifier */
static int in_flight;
static struct push_req *flying; /* requests added to the multi handle */

int push_queue_message(int64_t thread_id, int64_t seq, int64_t sender, int64_t now)
{
    return db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, due_at, created_at) "
                   "SELECT tm.owner_id, tm.thread_id, ?, 1, ?, ? FROM thread_members tm "
                   "WHERE tm.thread_id = ? AND tm.owner_id <> ? AND EXISTS (SELECT 1 FROM "
                   "sessions s WHERE s.user_id = tm.owner_id AND s.push_token IS NOT NULL)",
                   DB_ARGS(DB_INT(seq), DB_INT(now + grace_ms), DB_INT(now), DB_INT(thread_id),
                           DB_INT(sender)));
}

int push_queue_messages(const char *messages)
{
    return db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, due_at, created_at) "
                   "SELECT tm.owner_id, tm.thread_id, j.q, 1, j.n + ?, j.n FROM JSON_TABLE(?, "
                   "'$[*]' " PUSH_MESSAGE_ROW_COLUMNS ") j "
                   "JOIN thread_members tm ON tm.thread_id = j.t AND tm.owner_id <> j.s "
                   "WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = tm.owner_id "
                   "AND s.push_token IS NOT NULL)",
                   DB_ARGS(DB_INT(grace_ms), DB_STR(messages)));
}

int push_queue_clear(int64_t user_id, int64_t thread_id, int64_t seq, int64_t reader_session,
                     int64_t now)
{
    return db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, except_session_id, "
                   "due_at, created_at) SELECT ?, ?, ?, 2, ?, ?, ? FROM DUAL WHERE EXISTS "
                   "(SELECT 1 FROM sessions s WHERE s.user_id = ? AND s.push_token IS NOT NULL "
                   "AND s.id <> ?)",
                   DB_ARGS(DB_INT(user_id), DB_INT(thread_id), DB_INT(seq), DB_INT(reader_session),
                           DB_INT(now), DB_INT(now), DB_INT(user_id), DB_INT(reader_session)));
}

int push_queue_clear_thread(int64_t thread_id, int64_t seq, int64_t now)
{
    return db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, except_session_id, "
                   "due_at, created_at) SELECT tm.owner_id, ?, ?, 2, 0, ?, ? "
                   "FROM thread_members tm WHERE tm.thread_id = ? AND EXISTS "
                   "(SELECT 1 FROM sessions s WHERE s.user_id = tm.owner_id "
                   "AND s.push_token IS NOT NULL)",
                   DB_ARGS(DB_INT(thread_id), DB_INT(seq), DB_INT(now), DB_INT(now),
                           DB_INT(thread_id)));
}

int push_queue_reaction(int64_t thread_id, int64_t seq, int64_t actor, const char *emoji,
                        int64_t now)
{
    if (!push_reactions)
        return DB_OK;
    char payload[97];
    snprintf(payload, sizeof payload, "%lld %s", (long long)actor, emoji);
    /* To the message's sender, when another member reacted and the sender
     * has a device with a token. */
    return db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, due_at, created_at, "
                   "payload) SELECT m.sender_id, m.thread_id, m.seq, 3, ?, ?, ? FROM messages m "
                   "JOIN thread_members tm ON tm.thread_id = m.thread_id AND tm.owner_id = "
                   "m.sender_id WHERE m.thread_id = ? AND m.seq = ? AND m.sender_id <> ? "
                   "AND EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = m.sender_id "
                   "AND s.push_token IS NOT NULL)",
                   DB_ARGS(DB_INT(now + grace_ms), DB_INT(now), DB_STR(payload), DB_INT(thread_id),
                           DB_INT(seq), DB_INT(actor)));
}

/* A reaction's alert: "<who>" (in a group "<who> in <group>") and "Reacted
 * <emoji> to: <start of the message>". Returns 0, 1 (the reaction or the
 * message is gone: nothing to say) or DB_E*. */
static int reaction_content(struct push_req *proto, const struct job *j)
{
    long long actor = 0;
    int used = 0;
    if (sscanf(j->payload, "%lld %n", &actor, &used) < 1 || j->payload[used] == '\0')
        return 1;
    const char *emoji = j->payload + used;
    struct db_res *r;
    int rc = db_query("SELECT t.kind, t.title, u.display_name, m.body FROM message_reactions x "
                      "JOIN messages m ON m.thread_id = x.thread_id AND m.seq = x.seq "
                      "JOIN threads t ON t.id = m.thread_id JOIN users u ON u.id = x.user_id "
                      "WHERE x.thread_id = ? AND x.seq = ? AND x.user_id = ? AND x.emoji = ? "
                      "AND m.deleted_at IS NULL",
                      &r,
                      DB_ARGS(DB_INT(j->thread_id), DB_INT(j->seq), DB_INT(actor), DB_STR(emoji)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return 1;
    }
    bool group = strcmp(db_str(r, 0, 0), "group") == 0;
    const char *title = db_str(r, 0, 1), *who = db_str(r, 0, 2), *body = db_str(r, 0, 3);
    size_t keep = utf8_prefix(body, strlen(body), 120);
    size_t size = strlen(who) + (title ? strlen(title) : 0) + 8;
    proto->title = malloc(size);
    if (proto->title)
        snprintf(proto->title, size, "%s%s%s", who, group && title ? " in " : "",
                 group && title ? title : "");
    size = strlen(emoji) + keep + 32;
    proto->text = malloc(size);
    if (proto->text)
        snprintf(proto->text, size, "Reacted %s to: %.*s%s", emoji, (int)keep, body,
                 keep < strlen(body) ? "…" : "");
    db_res_free(r);
    return proto->title && proto->text ? 0 : DB_ERR;
}

/* One line of the user's notification log. session 0 = about the member. */
static void log_decision(const struct job *j, int64_t session, const char *provider,
                         const char *decision, const char *reason, long status)
{
    db_exec("INSERT INTO push_log (user_id, thread_id, seq, session_id, provider, decision, "
            "reason, status, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            DB_ARGS(DB_INT(j->user_id), DB_INT(j->thread_id), DB_INT(j->seq),
                    session ? DB_INT(session) : (struct db_arg){.type = DB_ARG_NULL},
                    DB_STR_OR_NULL(provider), DB_STR(decision), DB_STR(reason),
                    status ? DB_INT(status) : (struct db_arg){.type = DB_ARG_NULL},
                    DB_INT(now_ms())));
}

static void job_done(struct job *j)
{
    db_exec("DELETE FROM push_jobs WHERE id = ?", DB_ARGS(DB_INT(j->id)));
    free(j);
}

/* Queues another try for one device: exponential backoff with jitter, never
 * before Retry-After. Returns false when the attempts are used up. */
static bool retry_later(const struct job *j, int64_t session, int retry_after_s)
{
    int attempt = j->attempts + 1;
    if (attempt >= max_attempts)
        return false;
    int64_t delay = 1000LL << (attempt - 1 < 6 ? attempt - 1 : 6);
    if (delay > 60000)
        delay = 60000;
    delay = delay * (80 + rand() % 41) / 100;
    if (delay < (int64_t)retry_after_s * 1000)
        delay = (int64_t)retry_after_s * 1000 + rand() % 250;
    db_exec("INSERT INTO push_jobs (user_id, thread_id, seq, kind, session_id, attempts, due_at, "
            "created_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''))",
            DB_ARGS(DB_INT(j->user_id), DB_INT(j->thread_id), DB_INT(j->seq), DB_INT(j->kind),
                    DB_INT(session), DB_INT(attempt), DB_INT(now_ms() + delay),
                    DB_INT(j->created_at), DB_STR(j->payload)));
    return true;
}

static void flying_unlink(struct push_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (flying == r)
        flying = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(struct push_req *r)
{
    flying_unlink(r);
    if (r->easy) {
        curl_multi_remove_handle(multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->title);
    free(r->text);
    free(r);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct push_req *r = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0)
        r->retry_after_s = atoi(data + 12);
    return len;
}

/* Builds and starts the request r describes. Returns 0 or -1. */
static int req_start(struct push_req *r)
{
    if (r->easy == NULL && (r->easy = curl_easy_init()) == NULL)
        return -1;
    curl_slist_free_all(r->headers);
    free(r->body);
    r->headers = NULL;
    r->body = NULL;
    r->answer.len = 0;
    r->answer.data[0] = '\0';
    r->retry_after_s = 0;
    if (wire_prepare(r->easy, r->provider, r->token, r->topic, &r->content, &r->headers, &r->body) <
        0)
        return -1;
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, wire_collect);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, &r->answer);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    if (curl_multi_add_handle(multi, r->easy) != CURLM_OK)
        return -1;
    in_flight++;
    r->prev = NULL;
    r->next = flying;
    if (flying)
        flying->prev = r;
    flying = r;
    return 0;
}

/* One answered request: log, count, drop a dead token, retry. */
static void req_finished(struct push_req *r, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(multi, r->easy);
    flying_unlink(r);
    in_flight--;
    struct job *j = r->job;
    const char *prov = wire_name(r->provider);
    int result = PUSH_RESULT_FAILED;
    enum wire_outcome outcome = wire_classify(r->provider, code, status, r->answer.data);
    switch (outcome) {
    case WIRE_SENT:
        result = PUSH_RESULT_OK;
        log_decision(j, r->session_id, prov, "sent", j->kind == JOB_CLEAR ? "clear" : "ok", status);
        break;
    case WIRE_NEW_TOKEN:
        /* The provider token was refused: make a new one and try again now,
         * once; a second refusal is not the token's age. */
        if (!r->reissued) {
            wire_token_expired(r->provider);
            r->reissued = true;
            if (req_start(r) == 0)
                return;
        }
        log_decision(j, r->session_id, prov, "failed", "gave_up", status);
        break;
    case WIRE_GONE:
    case WIRE_BAD_TOKEN: {
        bool gone = outcome == WIRE_GONE;
        result = gone ? PUSH_RESULT_UNREGISTERED : PUSH_RESULT_BAD_TOKEN;
        db_exec("UPDATE sessions SET push_provider = NULL, push_token = NULL, push_topic = NULL "
                "WHERE id = ? AND push_token = ?",
                DB_ARGS(DB_INT(r->session_id), DB_STR(r->token)));
        log_decision(j, r->session_id, prov, "failed", gone ? "unregistered" : "bad_token", status);
        break;
    }
    case WIRE_RETRY: {
        bool again = retry_later(j, r->session_id, r->retry_after_s);
        result = again ? PUSH_RESULT_RETRY : PUSH_RESULT_FAILED;
        log_decision(j, r->session_id, prov, "failed", again ? "retry" : "gave_up", status);
        break;
    }
    case WIRE_REJECTED:
        log_warn("push: %s refused a push with HTTP %ld: %.200s", prov, status, r->answer.data);
        log_decision(j, r->session_id, prov, "failed", "rejected", status);
        break;
    }
    metrics_push_result((int)r->provider, result, now_ms() - j->created_at);
    req_free(r);
    if (--j->outstanding == 0)
        job_done(j);
}

/* What a message's attachments are, for the alert, into out (len bytes):
 * "Photo", "Voice message", "Video" or the file name, by the first one's
 * type; "" when attachments is NULL or empty. */
static void attachment_label(const char *attachments, char *out, size_t len)
{
    out[0] = '\0';
    json_t *list = attachments ? json_loads(attachments, 0, NULL) : NULL;
    json_t *first = json_array_get(list, 0);
    const char *type = json_string_value(json_object_get(first, "content_type"));
    const char *name = json_string_value(json_object_get(first, "filename"));
    if (type && strncmp(type, "image/", 6) == 0)
        snprintf(out, len, "Photo");
    else if (type && strncmp(type, "audio/", 6) == 0)
        snprintf(out, len, "Voice message");
    else if (type && strncmp(type, "video/", 6) == 0)
        snprintf(out, len, "Video");
    else if (name)
        snprintf(out, len, "%s", name);
    json_decref(list);
}

/* The alert's title and text for a message: sender or group name, start of
 * the body (what its attachments are first, when it has some). Returns 0,
 * NOT_FOUND (1) when the message is gone, or DB_E*. */
static int message_content(struct push_req *proto, const struct job *j)
{
    struct db_res *r;
    int rc = db_query("SELECT t.kind, t.title, u.display_name, m.body, "
                      "(SELECT COALESCE(SUM(GREATEST(t2.last_seq - tm.last_read_seq, 0)), 0) "
                      " FROM thread_members tm JOIN threads t2 ON t2.id = tm.thread_id "
                      " WHERE tm.owner_id = ? AND tm.is_muted <> 1), m.attachments "
                      "FROM messages m JOIN threads t ON t.id = m.thread_id "
                      "JOIN users u ON u.id = m.sender_id WHERE m.thread_id = ? AND m.seq = ? "
                      "AND m.deleted_at IS NULL",
                      &r, DB_ARGS(DB_INT(j->user_id), DB_INT(j->thread_id), DB_INT(j->seq)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return 1;
    }
    bool group = strcmp(db_str(r, 0, 0), "group") == 0;
    const char *title = db_str(r, 0, 1), *sender = db_str(r, 0, 2), *text = db_str(r, 0, 3);
    char label[300];
    attachment_label(db_str(r, 0, 5), label, sizeof label);
    size_t keep = utf8_prefix(text, strlen(text), PREVIEW_BYTES);
    bool cut = keep < strlen(text);
    size_t size = strlen(sender) + strlen(label) + keep + 12;
    proto->text = malloc(size);
    if (proto->text) {
        /* "Photo", "Photo: caption", or the body; "Sender: " first in groups. */
        const char *sep = label[0] && keep ? ": " : "";
        snprintf(proto->text, size, "%s%s%s%s%.*s%s", group ? sender : "", group ? ": " : "", label,
                 sep, (int)keep, text, cut ? "…" : "");
    }
    proto->title = strdup(group && title ? title : sender);
    proto->content.badge = db_int(r, 0, 4);
    db_res_free(r);
    return proto->text && proto->title ? 0 : DB_ERR;
}

/* Decides one leased job and starts its requests (or finishes it). */
static void job_run(struct job *j)
{
    struct push_req proto = {0};
    proto.content = (struct push_content){.clear = j->kind == JOB_CLEAR,
                                          .thread_id = j->thread_id,
                                          .seq = j->seq};
    struct db_res *r;
    char user_json[24];
    snprintf(user_json, sizeof user_json, "%lld", (long long)j->user_id);
    if (j->kind == JOB_MESSAGE) {
        /* is_muted holds the notify level: 0 all, 1 none, 2 mentions only
         * (chat/model.h); the message's mentions name user ids or all. */
        if (db_query("SELECT tm.last_delivered_seq, tm.is_muted, tm.request_from IS NOT NULL, "
                     "COALESCE(JSON_CONTAINS(m.mentions, ?, '$.user_ids') "
                     "OR JSON_VALUE(m.mentions, '$.all') = 'true', 0) "
                     "FROM thread_members tm LEFT JOIN messages m ON m.thread_id = tm.thread_id "
                     "AND m.seq = ? WHERE tm.owner_id = ? AND tm.thread_id = ?",
                     &r,
                     DB_ARGS(DB_STR(user_json), DB_INT(j->seq), DB_INT(j->user_id),
                             DB_INT(j->thread_id))) < 0)
            goto later;
        const char *why = r->nrows == 0                              ? "left"
                          : db_int(r, 0, 0) >= j->seq                ? "delivered"
                          : db_int(r, 0, 1) == 1                     ? "muted"
                          : db_int(r, 0, 1) == 2 && !db_int(r, 0, 3) ? "not_mentioned"
                          : db_int(r, 0, 2)                          ? "request"
                                                                     : NULL;
        db_res_free(r);
        if (why) {
            log_decision(j, 0, NULL, "suppressed", why, 0);
            job_done(j);
            return;
        }
        int rc = message_content(&proto, j);
        if (rc < 0)
            goto later;
        if (rc > 0) {
            log_decision(j, 0, NULL, "suppressed", "deleted", 0);
            job_done(j);
            return;
        }
        proto.content.title = proto.title;
        proto.content.body = proto.text;
    } else if (j->kind == JOB_REACTION) {
        if (db_query("SELECT is_muted FROM thread_members WHERE owner_id = ? AND thread_id = ?", &r,
                     DB_ARGS(DB_INT(j->user_id), DB_INT(j->thread_id))) < 0)
            goto later;
        const char *why = r->nrows == 0 ? "left" : db_int(r, 0, 0) != 0 ? "muted" : NULL;
        db_res_free(r);
        int rc = why ? 1 : reaction_content(&proto, j);
        if (rc < 0)
            goto later;
        if (rc > 0) {
            log_decision(j, 0, NULL, "suppressed", why ? why : "removed", 0);
            job_done(j);
            return;
        }
        proto.content.title = proto.title;
        proto.content.body = proto.text;
    }
    if (db_query("SELECT id, push_provider, push_token, COALESCE(push_topic, '') FROM sessions "
                 "WHERE user_id = ? AND push_token IS NOT NULL AND (? = 0 OR id = ?) AND id <> ?",
                 &r,
                 DB_ARGS(DB_INT(j->user_id), DB_INT(j->session_id), DB_INT(j->session_id),
                         DB_INT(j->except_session_id))) < 0)
        goto later;
    if (r->nrows == 0 && j->kind == JOB_MESSAGE)
        log_decision(j, 0, NULL, "suppressed", "no_token", 0);
    j->outstanding = 1; /* held until every device's request has started */
    for (int i = 0; i < r->nrows; i++) {
        struct push_req *q = malloc(sizeof *q);
        enum push_provider p;
        if (q == NULL || wire_parse(db_str(r, i, 1), &p) < 0) {
            free(q);
            continue;
        }
        *q = proto;
        q->title = proto.title ? strdup(proto.title) : NULL;
        q->text = proto.text ? strdup(proto.text) : NULL;
        q->content.title = q->title;
        q->content.body = q->text;
        q->job = j;
        q->provider = p;
        q->session_id = db_int(r, i, 0);
        snprintf(q->token, sizeof q->token, "%s", db_str(r, i, 2));
        snprintf(q->topic, sizeof q->topic, "%s", db_str(r, i, 3));
        if (!wire_enabled(p)) {
            log_decision(j, q->session_id, wire_name(p), "failed", "push_off", 0);
            req_free(q);
            continue;
        }
        j->outstanding++;
        if (req_start(q) < 0) {
            j->outstanding--;
            bool again = retry_later(j, q->session_id, 5);
            log_decision(j, q->session_id, wire_name(p), "failed", again ? "retry" : "gave_up", 0);
            req_free(q);
        }
    }
    db_res_free(r);
    free(proto.title);
    free(proto.text);
    if (--j->outstanding == 0)
        job_done(j);
    return;
later:
    /* The database failed: the lease brings the job back later. */
    free(proto.title);
    free(proto.text);
    free(j);
}

/* The lease: the due jobs no other notifier holds (FOR UPDATE SKIP LOCKED:
 * several nodes' notifiers never wait on, nor take, each other's rows) get
 * due_at = now + LEASE_MS, where now is the database's clock, so that a
 * node's clock cannot make a lease run out early and a job go twice. */
struct lease {
    struct db_res *r;
};

static int lease_tx(void *arg)
{
    struct lease *l = arg;
    db_res_free(l->r);
    l->r = NULL;
    int rc = db_query("SELECT id, user_id, thread_id, seq, kind, COALESCE(session_id, 0), "
                      "COALESCE(except_session_id, 0), attempts, created_at, "
                      "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED), COALESCE(payload, '') "
                      "FROM push_jobs "
                      "WHERE due_at <= UNIX_TIMESTAMP(NOW(3)) * 1000 ORDER BY due_at LIMIT ? "
                      "FOR UPDATE SKIP LOCKED",
                      &l->r, DB_ARGS(DB_INT(JOBS_PER_TICK)));
    if (rc < 0 || l->r->nrows == 0)
        return rc;
    struct sbuf ids = {0};
    for (int i = 0; i < l->r->nrows; i++)
        sb_item(&ids, "%lld", (long long)db_int(l->r, i, 0));
    const char *list = sb_done(&ids);
    rc = list ? db_exec("UPDATE push_jobs p JOIN " DB_IDS_TABLE " ON p.id = j.id "
                        "SET p.due_at = ?",
                        DB_ARGS(DB_STR(list), DB_INT(db_int(l->r, 0, 9) + LEASE_MS)))
              : DB_ERR;
    free(ids.s);
    return rc;
}

/* Leases and runs the due jobs. */
static void take_due_jobs(void)
{
    if (in_flight >= MAX_IN_FLIGHT)
        return;
    struct lease l = {NULL};
    if (db_tx(lease_tx, &l) < 0) {
        db_res_free(l.r);
        return;
    }
    struct db_res *r = l.r;
    for (int i = 0; r && i < r->nrows && atomic_load(&running); i++) {
        struct job *j = calloc(1, sizeof *j);
        if (j == NULL)
            break;
        *j = (struct job){.id = db_int(r, i, 0),
                          .user_id = db_int(r, i, 1),
                          .thread_id = db_int(r, i, 2),
                          .seq = db_int(r, i, 3),
                          .kind = (int)db_int(r, i, 4),
                          .session_id = db_int(r, i, 5),
                          .except_session_id = db_int(r, i, 6),
                          .attempts = (int)db_int(r, i, 7),
                          .created_at = db_int(r, i, 8)};
        snprintf(j->payload, sizeof j->payload, "%s", db_str(r, i, 10));
        job_run(j);
    }
    db_res_free(r);
}

static void *notifier_main(void *arg)
{
    (void)arg;
    int64_t next_depth = 0;
    while (atomic_load(&running)) {
        take_due_jobs();
        int still;
        curl_multi_perform(multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct push_req *r;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            req_finished(r, m->data.result);
        }
        if (mono_ms() >= next_depth) {
            struct db_res *d;
            if (db_query("SELECT COUNT(*) FROM push_jobs", &d, DB_NOARGS) == 0) {
                metrics_push_outbox(db_int(d, 0, 0));
                db_res_free(d);
            }
            next_depth = mono_ms() + 2000;
        }
        curl_multi_poll(multi, NULL, 0, PUSH_TICK_MS, NULL);
    }
    return NULL;
}

void push_prune(int64_t now)
{
    db_exec("DELETE FROM push_log WHERE at < ? LIMIT 10000", DB_ARGS(DB_INT(now - 7 * 86400000LL)));
}

int push_init(const struct config *cfg)
{
    grace_ms = cfg->push_grace_ms;
    push_reactions = cfg->push_reactions;
    max_attempts = cfg->push_max_attempts;
    if (wire_init(cfg) < 0)
        return -1;
    for (int p = PROVIDER_APNS; p <= PROVIDER_FCM; p++)
        log_info("push: %s %s", wire_name(p), wire_enabled(p) ? "on" : "off (not configured)");
    if (!wire_enabled(PROVIDER_APNS) && !wire_enabled(PROVIDER_FCM))
        log_info("push: no provider configured; push notifications are off");
    multi = curl_multi_init();
    if (multi == NULL)
        return -1;
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    atomic_store(&running, true);
    return pthread_create(&thread, NULL, notifier_main, NULL) == 0 ? 0 : -1;
}

void push_shutdown(void)
{
    if (!atomic_exchange(&running, false))
        return;
    curl_multi_wakeup(multi);
    pthread_join(thread, NULL);
    /* Requests in flight are dropped and their jobs made due again, so that
     * the next start sends them at once (a crash waits for the lease). */
    while (flying) {
        struct push_req *r = flying;
        struct job *j = r->job;
        req_free(r);
        if (--j->outstanding == 0) {
            db_exec("UPDATE push_jobs SET due_at = ? WHERE id = ?",
                    DB_ARGS(DB_INT(now_ms()), DB_INT(j->id)));
            free(j);
        }
    }
    curl_multi_cleanup(multi);
    multi = NULL;
    wire_free();
}
