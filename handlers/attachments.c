/* attachments.c — GET /v1/config, uploads (create, content, view, delete),
 * attachment downloads with ranges, thumbnails, and signed links.
 *
 * The checks and the HTTP shape are here; what an upload becomes and who
 * may read what is chat/attachments.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat/actions.h"
#include "chat/attachments.h"
#include "media/store.h"
#include "common.h"
#include "handlers.h"
#include "http/jsonv.h"
#include "base/util.h"

#define FILENAME_MAX_CHARS 255

/* Types a browser may show inline from our origin: pictures, sound and
 * video it decodes itself. Everything else (HTML, SVG, XML, scripts, PDF,
 * unknown) is a download, sent as application/octet-stream. Returns the
 * static copy of type (it outlives the answer), or NULL. */
static const char *inline_type(const char *type)
{
    static const char *const safe[] = {"image/png",   "image/jpeg", "image/gif",   "image/webp",
                                       "audio/ogg",   "audio/mpeg", "audio/mp4",   "audio/webm",
                                       "audio/x-m4a", "audio/wav",  "audio/x-wav", "video/mp4",
                                       "video/webm",  "video/ogg"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strcmp(type, safe[i]) == 0)
            return safe[i];
    return NULL;
}

enum handler_status config_get(struct request *req, struct response *res)
{
    (void)req;
    const struct attachment_settings *s = attachments_settings();
    const struct action_settings *a = actions_settings();
    return resp_json(
        res, 200,
        json_pack("{s:{s:I, s:i, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, "
                  "s:{s:b, s:s, s:b, s:b}}",
                  "limits", "upload_max_bytes", (json_int_t)s->upload_max_bytes,
                  "attachments_per_message_max", s->per_message_max, "upload_quota_bytes",
                  (json_int_t)s->quota_bytes, "uploads_pending_max", s->pending_max,
                  "upload_expiry_s", (int)(s->upload_expiry_ms / 1000), "attachment_link_ttl_s",
                  s->link_ttl_s, "message_max_bytes", MESSAGE_MAX_BYTES, "message_edit_window_s",
                  a->edit_window_s, "message_delete_window_s", a->delete_window_s,
                  "reactions_distinct_max", a->reactions_distinct_max, "reaction_max_bytes",
                  REACTION_MAX_BYTES, "features", "attachments", 1, "attachment_store",
                  store_is_s3() ? "s3" : "local", "message_actions", 1, "edit_history", 1));
}

/* The answer for an attachments.h result that is not 0. */
static enum handler_status att_problem(struct response *res, int rc, int64_t id)
{
    switch (rc) {
    case ATT_QUOTA:
        return resp_problem(res, 413, "quota_exceeded",
                            "your uploads and attachments would pass your quota of %" PRId64
                            " bytes",
                            attachments_settings()->quota_bytes);
    case ATT_PENDING_MAX:
        resp_problem(res, 429, "rate_limited",
                     "you have %d unfinished uploads; finish or delete one first",
                     attachments_settings()->pending_max);
        res->retry_after_s = 60;
        return HANDLER_DONE;
    case ATT_SIZE:
        return resp_problem(res, 422, "upload_size_mismatch",
                            "Content-Range's total is not the upload's size");
    case ATT_HASH:
        return resp_problem(res, 422, "upload_hash_mismatch",
                            "the bytes' SHA-256 is not the one declared; send them again from 0");
    case ATT_NOT_PENDING:
        return resp_problem(res, 409, "upload_offset_mismatch",
                            "upload %" PRId64 " is complete already", id);
    case ATT_IO: return resp_internal(res);
    default: return resp_result(res, rc, "no upload or attachment %" PRId64, id);
    }
}

enum handler_status uploads_create(struct request *req, struct response *res)
{
    if (rate_limited(req, res, RL_UPLOAD))
        return HANDLER_DONE;
    json_t *body = req_body(req, res);
    const char *filename, *type = NULL, *sha = NULL;
    int64_t size;
    if (body == NULL ||
        !jv_str(res, body, "filename", JV_REQUIRED | JV_NAME, 1, FILENAME_MAX_CHARS, &filename,
                NULL) ||
        !jv_int(res, body, "size", JV_REQUIRED, 1, JSON_INT_MAX, &size, NULL) ||
        !jv_str(res, body, "content_type", JV_OPTIONAL | JV_NULLABLE, 1, 127, &type, NULL) ||
        !jv_str(res, body, "sha256", JV_OPTIONAL | JV_NULLABLE, 64, 64, &sha, NULL))
        return HANDLER_DONE;
    if (strpbrk(filename, "/\\"))
        return resp_problem(res, 400, "invalid_request", "filename must not hold / or \\");
    /* type/subtype, parameters allowed (audio/webm;codecs=opus). */
    if (type && (strspn(type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "!#$&^_.+-/;= ") != strlen(type) ||
                 strchr(type, '/') == NULL))
        return resp_problem(res, 400, "invalid_request", "content_type must be type/subtype");
    if (sha && strspn(sha, "0123456789abcdef") != 64)
        return resp_problem(res, 400, "invalid_request",
                            "sha256 must be 64 lowercase hexadecimal digits");
    if (size > attachments_settings()->upload_max_bytes)
        return resp_problem(res, 413, "file_too_large", "a file may have at most %" PRId64 " bytes",
                            attachments_settings()->upload_max_bytes);
    json_t *upload;
    int rc = upload_create(req->user_id, filename, size, type, sha, &upload);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc > 0)
        return att_problem(res, rc, 0);
    return resp_json(res, 201, json_pack("{s:o}", "upload", upload));
}

enum handler_status uploads_get(struct request *req, struct response *res)
{
    json_t *upload;
    int rc = upload_view(req->user_id, req->params[0], &upload);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc > 0)
        return att_problem(res, rc, req->params[0]);
    return resp_json(res, 200, json_pack("{s:o}", "upload", upload));
}

enum handler_status uploads_delete(struct request *req, struct response *res)
{
    int rc = upload_delete(req->user_id, req->params[0]);
    if (rc < 0)
        return resp_db_error(res, rc);
    if (rc > 0)
        return att_problem(res, rc, req->params[0]);
    return resp_empty(res, 204);
}

/* Parses `bytes A-B/SIZE` into *first, *last, *total. */
static bool parse_content_range(const char *v, int64_t *first, int64_t *last, int64_t *total)
{
    long long a, b, t;
    int n = 0;
    if (sscanf(v, "bytes %lld-%lld/%lld%n", &a, &b, &t, &n) != 3 || v[n] != '\0' || a < 0 ||
        b < a || t <= b)
        return false;
    *first = a, *last = b, *total = t;
    return true;
}

/* The state of a PUT …/content across its runs. */
struct content_state {
    struct upload_job job;
    int64_t expect; /* body bytes this request carries */
};

static void content_free(void *p)
{
    struct content_state *c = p;
    upload_job_clear(&c->job);
    free(c);
}

/* The first run: where the bytes go (request.h, stream_body). */
static enum handler_status content_open(struct request *req, struct response *res)
{
    int64_t first = -1, last = 0, total = 0;
    if (req->content_range) {
        if (!parse_content_range(req->content_range, &first, &last, &total))
            return resp_problem(res, 400, "invalid_request",
                                "Content-Range must be bytes FIRST-LAST/SIZE");
    }
    struct content_state *c = calloc(1, sizeof *c);
    if (c == NULL)
        return resp_internal(res);
    c->job.fd = -1;
    req_state_set(req, c, content_free);
    int64_t received = 0;
    if (first < 0) {
        /* No range: the whole file. Its size is the upload's. */
        json_t *upload;
        int rc = upload_view(req->user_id, req->params[0], &upload);
        if (rc != 0)
            return rc < 0 ? resp_db_error(res, rc) : att_problem(res, rc, req->params[0]);
        total = json_integer_value(json_object_get(upload, "size"));
        json_decref(upload);
        last = total - 1;
    }
    int rc = upload_open(req->user_id, req->params[0], first, total, &c->job.fd, &received);
    if (rc == ATT_OFFSET)
        return resp_problem(res, 409, "upload_offset_mismatch",
                            "the bytes must start at %" PRId64 ", what was received so far",
                            received);
    if (rc != 0)
        return rc < 0 ? resp_db_error(res, rc) : att_problem(res, rc, req->params[0]);
    c->job.id = req->params[0];
    c->job.owner = req->user_id;
    c->expect = last - (first < 0 ? 0 : first) + 1;
    req->body_fd = c->job.fd;
    req->body_max = (uint64_t)c->expect;
    return HANDLER_DONE;
}

enum handler_status uploads_put_content(struct request *req, struct response *res)
{
    if (req->runs == 0)
        return content_open(req, res);
    struct content_state *c = req->state;
    if (req->runs == 1) {
        if (req->body_received != (uint64_t)c->expect)
            return resp_problem(res, 400, "invalid_request",
                                "the body had %" PRIu64 " bytes; Content-Range said %" PRId64,
                                req->body_received, c->expect);
        struct completion done = {req_defer_done, req->defer};
        if (!upload_submit(&c->job, done))
            return HANDLER_RERUN;
    }
    if (c->job.status != 0)
        return c->job.status < 0 ? resp_db_error(res, c->job.status)
                                 : att_problem(res, c->job.status, c->job.id);
    return resp_json(res, 200, json_pack("{s:O}", "upload", c->job.view));
}

/* Content-Disposition for filename: an ASCII fallback and the UTF-8 name
 * percent-encoded (RFC 6266, RFC 8187). */
static void disposition(struct response *res, bool as_inline, const char *filename)
{
    char ascii[256], ext[256 * 3 + 1];
    size_t a = 0, e = 0;
    for (const unsigned char *p = (const unsigned char *)filename; *p && a + 1 < sizeof ascii; p++)
        ascii[a++] = (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') ? '_' : (char)*p;
    ascii[a] = '\0';
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)filename; *p && e + 4 < sizeof ext; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p)) {
            ext[e++] = (char)*p;
        } else {
            ext[e++] = '%';
            ext[e++] = hex[*p >> 4];
            ext[e++] = hex[*p & 15];
        }
    }
    ext[e] = '\0';
    resp_header(res, "Content-Disposition", "%s; filename=\"%s\"; filename*=UTF-8''%s",
                as_inline ? "inline" : "attachment", ascii, ext);
}

/* Parses a single `bytes=` range against size into [*first, *last].
 * Returns 1 for a range, 0 to send everything (no or several ranges), -1
 * when unsatisfiable. */
static int parse_range(const char *v, int64_t size, int64_t *first, int64_t *last)
{
    if (v == NULL || strncmp(v, "bytes=", 6) != 0 || strchr(v, ','))
        return 0;
    v += 6;
    long long a = -1, b = -1;
    int n = 0;
    if (v[0] == '-') {
        if (sscanf(v, "-%lld%n", &b, &n) != 1 || v[n] || b <= 0)
            return b == 0 && !v[n] ? -1 : 0;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return size > 0 ? 1 : -1;
    }
    if (sscanf(v, "%lld-%n", &a, &n) != 1 || a < 0)
        return 0;
    if (v[n] != '\0') {
        int m = 0;
        if (sscanf(v + n, "%lld%n", &b, &m) != 1 || v[n + m] || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = (b < 0 || b >= size) ? size - 1 : b;
    return 1;
}

/* GET/HEAD of an attachment or its thumbnail. */
static enum handler_status download(struct request *req, struct response *res, bool thumbnail)
{
    int64_t id = req->params[0], viewer = req->user_id;
    if (viewer == 0) {
        viewer = attachments_link_check(id, req_query(req, "u"), req_query(req, "exp"),
                                        req_query(req, "sig"), now_ms());
        if (viewer == 0)
            return resp_problem(res, 401, "unauthorized",
                                "a bearer token or a valid, unexpired signed link is required");
    }
    struct attachment_file f;
    int rc = attachment_open(viewer, id, thumbnail, &f);
    if (rc != 0)
        return rc < 0 ? resp_db_error(res, rc) : att_problem(res, rc, id);
    /* Every answer, errors too: never sniffed, never scripted. */
    resp_header(res, "X-Content-Type-Options", "nosniff");
    resp_header(res, "Content-Security-Policy", "default-src 'none'; sandbox");
    resp_header(res, "Cache-Control", "private, no-cache");
    resp_header(res, "ETag", "\"%s%s\"", f.sha256, thumbnail ? "-t" : "");
    resp_header(res, "Accept-Ranges", "bytes");
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s%s\"", f.sha256, thumbnail ? "-t" : "");
    if (req->if_none_match && strstr(req->if_none_match, etag)) {
        close(f.fd);
        return resp_empty(res, 304);
    }
    const char *safe = inline_type(f.content_type);
    disposition(res, safe != NULL, f.filename);
    const char *accel = attachments_settings()->accel_redirect;
    if (accel && accel[0]) {
        /* Behind nginx: it sends the file (ranges too) from media_dir. */
        char rel[STORE_PATH_MAX];
        store_relative_path(f.sha256, thumbnail, rel);
        close(f.fd);
        resp_header(res, "X-Accel-Redirect", "%s%s", accel, rel);
        resp_header(res, "Content-Type", "%s", safe ? safe : "application/octet-stream");
        return resp_empty(res, 200);
    }
    int64_t first = 0, last = f.size - 1;
    int range = parse_range(req->range, f.size, &first, &last);
    if (range < 0) {
        close(f.fd);
        resp_header(res, "Content-Range", "bytes */%" PRId64, f.size);
        return resp_problem(res, 416, "range_not_satisfiable", "the file has %" PRId64 " bytes",
                            f.size);
    }
    res->status = range ? 206 : 200;
    if (range)
        resp_header(res, "Content-Range", "bytes %" PRId64 "-%" PRId64 "/%" PRId64, first, last,
                    f.size);
    res->fd = f.fd;
    res->fd_offset = first;
    res->fd_size = last - first + 1;
    res->content_type = safe ? safe : "application/octet-stream";
    return HANDLER_DONE;
}

enum handler_status attachments_get(struct request *req, struct response *res)
{
    return download(req, res, false);
}

enum handler_status attachments_thumbnail(struct request *req, struct response *res)
{
    return download(req, res, true);
}

enum handler_status attachments_links_create(struct request *req, struct response *res)
{
    char url[256];
    int64_t expires_at;
    int rc = attachments_link(req->user_id, req->params[0], url, sizeof url, &expires_at);
    if (rc != 0)
        return rc < 0 ? resp_db_error(res, rc) : att_problem(res, rc, req->params[0]);
    return resp_json(res, 201,
                     json_pack("{s:s, s:I}", "url", url, "expires_at", (json_int_t)expires_at));
}
