/* attachments.c — uploads, blobs, access, links, garbage collection
 * (attachments.h). */
#include "chat/attachments.h"

#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "chat/model.h"
#include "media/exif.h"
#include "media/store.h"
#include "media/thumb.h"

static struct attachment_settings settings;
static char media_dir[STORE_PATH_MAX];
static unsigned char link_key[crypto_auth_hmacsha256_KEYBYTES];
static struct batchq workers;
static bool workers_on;

/* The columns of an attachment view, for `a` an attachments row and `b`
 * its blob; read by view_row(). */
#define ATT_VIEW_COLS                                                                        \
    "a.id, a.filename, b.content_type, b.size, b.sha256, b.width, b.height, b.duration_ms, " \
    "b.has_thumbnail"
enum { AV_ID, AV_FILENAME, AV_TYPE, AV_SIZE, AV_SHA, AV_WIDTH, AV_HEIGHT, AV_DURATION, AV_THUMB };

/* The attachment view from ATT_VIEW_COLS starting at col. */
static json_t *view_row(const struct db_res *r, int row, int col)
{
    int64_t id = db_int(r, row, col + AV_ID);
    char url[64], thumb[80];
    snprintf(url, sizeof url, "/v1/attachments/%lld", (long long)id);
    snprintf(thumb, sizeof thumb, "%s/thumbnail", url);
    json_t *v = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:o}", "id", (json_int_t)id, "filename",
                          db_str(r, row, col + AV_FILENAME), "content_type",
                          db_str(r, row, col + AV_TYPE), "size",
                          (json_int_t)db_int(r, row, col + AV_SIZE), "sha256",
                          db_str(r, row, col + AV_SHA), "url", url, "thumbnail_url",
                          db_int(r, row, col + AV_THUMB) ? json_string(thumb) : json_null());
    const char *opt[] = {"width", "height", "duration_ms"};
    int cols[] = {AV_WIDTH, AV_HEIGHT, AV_DURATION};
    for (int i = 0; i < 3; i++)
        if (db_str(r, row, col + cols[i]))
            json_object_set_new(v, opt[i], json_integer(db_int(r, row, col + cols[i])));
    return v;
}

/* Bytes of upload id's partial file on this node (0 when there is none). */
static int64_t part_size(int64_t id)
{
    char p[STORE_PATH_MAX];
    store_part_path(id, p);
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* The columns of an upload view, for `a` an attachments row left-joined
 * to its blob `b`; read by upload_view_row(). */
#define UPLOAD_COLS "a.id, a.filename, a.size, a.state, a.expires_at, " ATT_VIEW_COLS
enum { UC_ID, UC_FILENAME, UC_SIZE, UC_STATE, UC_EXPIRES, UC_VIEW };

static json_t *upload_view_row(const struct db_res *r, int row)
{
    int64_t id = db_int(r, row, UC_ID), size = db_int(r, row, UC_SIZE);
    bool pending = strcmp(db_str(r, row, UC_STATE), "pending") == 0;
    json_t *v = json_pack("{s:I, s:s, s:I, s:I, s:s, s:I}", "id", (json_int_t)id, "filename",
                          db_str(r, row, UC_FILENAME), "size", (json_int_t)size, "received",
                          (json_int_t)(pending ? part_size(id) : size), "state",
                          db_str(r, row, UC_STATE), "expires_at",
                          (json_int_t)db_int(r, row, UC_EXPIRES));
    if (!pending)
        json_object_set_new(v, "attachment", view_row(r, row, UC_VIEW));
    return v;
}

/* ---- the link key ---- */

/* Loads the link key, making it on the first start of any node. */
static int load_link_key(void)
{
    unsigned char fresh[sizeof link_key];
    randombytes_buf(fresh, sizeof fresh);
    int rc = db_exec("INSERT IGNORE INTO server_keys (name, secret) VALUES ('attachment_links', ?)",
                     DB_ARGS(DB_STRN(fresh, sizeof fresh)));
    struct db_res *r = NULL;
    if (rc == 0)
        rc = db_query("SELECT secret FROM server_keys WHERE name = 'attachment_links'", &r,
                      DB_NOARGS);
    if (rc < 0 || r->nrows != 1) {
        db_res_free(r);
        return -1;
    }
    memcpy(link_key, db_str(r, 0, 0), sizeof link_key);
    db_res_free(r);
    return 0;
}

/* base64url HMAC of "id:user:exp" into out (64 bytes). */
static void link_sig(int64_t id, int64_t user, int64_t exp, char *out)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "att:%lld:%lld:%lld", (long long)id, (long long)user,
                     (long long)exp);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, link_key);
    sodium_bin2base64(out, 64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* ---- content types ---- */

/* libmagic's handle: not thread-safe, so one under a lock (a lookup reads
 * a few KiB of the file; the workers are few). */
static magic_t magic_cookie;
static pthread_mutex_t magic_lock = PTHREAD_MUTEX_INITIALIZER;

/* The MIME type of the file at path, from its bytes, into out (len
 * bytes); application/octet-stream when libmagic cannot tell. */
static void sniff(const char *path, char *out, size_t len)
{
    pthread_mutex_lock(&magic_lock);
    const char *t = magic_cookie ? magic_file(magic_cookie, path) : NULL;
    snprintf(out, len, "%s", t && strchr(t, '/') ? t : "application/octet-stream");
    pthread_mutex_unlock(&magic_lock);
}

/* ---- uploads ---- */

int upload_create(int64_t owner, const char *filename, int64_t size, const char *declared_type,
                  const char *declared_sha, json_t **out)
{
    struct db_res *r;
    int64_t now = now_ms();
    /* The quota counts every upload and attachment the user holds. */
    int rc = db_query("SELECT COALESCE(SUM(size), 0), COALESCE(SUM(state = 'pending'), 0) "
                      "FROM attachments WHERE owner_id = ?",
                      &r, DB_ARGS(DB_INT(owner)));
    if (rc < 0)
        return rc;
    int64_t used = db_int(r, 0, 0), pending = db_int(r, 0, 1);
    db_res_free(r);
    if (used + size > settings.quota_bytes)
        return ATT_QUOTA;
    if (pending >= settings.pending_max)
        return ATT_PENDING_MAX;
    rc = db_exec("INSERT INTO attachments (owner_id, filename, size, declared_type, "
                 "declared_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 DB_ARGS(DB_INT(owner), DB_STR(filename), DB_INT(size),
                         DB_STR_OR_NULL(declared_type), DB_STR_OR_NULL(declared_sha), DB_INT(now),
                         DB_INT(now + settings.upload_expiry_ms)));
    if (rc < 0)
        return rc;
    return upload_view(owner, db_insert_id(), out);
}

int upload_view(int64_t owner, int64_t id, json_t **out)
{
    struct db_res *r;
    int rc = db_query("SELECT " UPLOAD_COLS " FROM attachments a LEFT JOIN blobs b "
                      "ON b.sha256 = a.sha256 WHERE a.id = ? AND a.owner_id = ? "
                      "AND a.state <> 'attached' AND a.expires_at > ?",
                      &r, DB_ARGS(DB_INT(id), DB_INT(owner), DB_INT(now_ms())));
    if (rc < 0)
        return rc;
    rc = r->nrows ? 0 : NOT_FOUND;
    if (rc == 0)
        *out = upload_view_row(r, 0);
    db_res_free(r);
    return rc;
}

/* Drops one reference to blob sha (in a transaction). */
static int blob_unref(const char *sha, int64_t now)
{
    return db_exec("UPDATE blobs SET refs = refs - 1, "
                   "unreferenced_at = IF(refs = 0, ?, unreferenced_at) WHERE sha256 = ?",
                   DB_ARGS(DB_INT(now), DB_STR(sha)));
}

int attachments_forget_owner(int64_t owner, int64_t now)
{
    struct db_res *r;
    int rc = db_query("SELECT id, sha256 FROM attachments WHERE owner_id = ? FOR UPDATE", &r,
                      DB_ARGS(DB_INT(owner)));
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < r->nrows; i++) {
        if (db_str(r, i, 1))
            rc = blob_unref(db_str(r, i, 1), now);
        if (rc == 0)
            rc = db_exec("DELETE FROM attachments WHERE id = ?", DB_ARGS(DB_INT(db_int(r, i, 0))));
    }
    db_res_free(r);
    return rc;
}

int attachments_detach_range(int64_t thread_id, int64_t seq_from, int64_t seq_to, int64_t now)
{
    struct db_res *r;
    int rc = db_query("SELECT id, sha256 FROM attachments WHERE thread_id = ? AND seq BETWEEN ? "
                      "AND ? AND state = 'attached' FOR UPDATE",
                      &r, DB_ARGS(DB_INT(thread_id), DB_INT(seq_from), DB_INT(seq_to)));
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < r->nrows; i++) {
        rc = blob_unref(db_str(r, i, 1), now);
        if (rc == 0)
            rc = db_exec("DELETE FROM attachments WHERE id = ?", DB_ARGS(DB_INT(db_int(r, i, 0))));
    }
    db_res_free(r);
    return rc;
}

struct delete_ctx {
    int64_t owner, id;
    bool pending;
};

static int delete_tx(void *arg)
{
    struct delete_ctx *c = arg;
    struct db_res *r;
    int rc = db_query("SELECT state, sha256 FROM attachments WHERE id = ? AND owner_id = ? "
                      "AND state <> 'attached' FOR UPDATE",
                      &r, DB_ARGS(DB_INT(c->id), DB_INT(c->owner)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return NOT_FOUND;
    }
    c->pending = strcmp(db_str(r, 0, 0), "pending") == 0;
    if (!c->pending)
        rc = blob_unref(db_str(r, 0, 1), now_ms());
    db_res_free(r);
    if (rc == 0)
        rc = db_exec("DELETE FROM attachments WHERE id = ?", DB_ARGS(DB_INT(c->id)));
    return rc;
}

int upload_delete(int64_t owner, int64_t id)
{
    struct delete_ctx c = {owner, id, false};
    int rc = db_tx(delete_tx, &c);
    if (rc == 0 && c.pending) {
        char p[STORE_PATH_MAX];
        store_part_path(id, p);
        unlink(p);
    }
    return rc;
}

int upload_open(int64_t owner, int64_t id, int64_t first, int64_t total, int *fd, int64_t *received)
{
    struct db_res *r;
    int rc = db_query("SELECT size, state FROM attachments WHERE id = ? AND owner_id = ? "
                      "AND state <> 'attached' AND expires_at > ?",
                      &r, DB_ARGS(DB_INT(id), DB_INT(owner), DB_INT(now_ms())));
    if (rc < 0)
        return rc;
    if (r->nrows == 0) {
        db_res_free(r);
        return NOT_FOUND;
    }
    int64_t size = db_int(r, 0, 0);
    bool pending = strcmp(db_str(r, 0, 1), "pending") == 0;
    db_res_free(r);
    *received = pending ? part_size(id) : size;
    if (!pending)
        return ATT_NOT_PENDING;
    if (total != size)
        return ATT_SIZE;
    if (first >= 0 && first != *received)
        return ATT_OFFSET;
    char p[STORE_PATH_MAX];
    store_part_path(id, p);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640); /* read back to hash */
    if (*fd < 0 || (first < 0 && ftruncate(*fd, 0) < 0) ||
        lseek(*fd, first < 0 ? 0 : first, SEEK_SET) < 0) {
        log_error("attachments: cannot open %s: %s", p, strerror(errno));
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return ATT_IO;
    }
    return 0;
}

void upload_job_clear(struct upload_job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    json_decref(j->view);
    j->view = NULL;
}

/* SHA-256 of the file open as fd, as 64 hex digits into hex. Returns 0 or -1. */
static int hash_file(int fd, char *hex)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        off += n;
    }
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, out);
    sodium_bin2hex(hex, STORE_SHA_HEX, out, sizeof out);
    return 0;
}

/* What a finished upload becomes: its blob's row. */
struct finish_ctx {
    int64_t id;
    const char *part; /* the partial file: the bytes */
    char sha[STORE_SHA_HEX];
    char type[128];
    int64_t size;
    int width, height;          /* px, 0 unknown */
    char thumb[STORE_PATH_MAX]; /* the thumbnail made, "" none */
};

static int finish_tx(void *arg)
{
    struct finish_ctx *c = arg;
    int64_t now = now_ms();
    struct db_res *r;
    int rc = db_query("SELECT state FROM blobs WHERE sha256 = ? FOR UPDATE", &r,
                      DB_ARGS(DB_STR(c->sha)));
    if (rc < 0)
        return rc;
    bool live = r->nrows && strcmp(db_str(r, 0, 0), "live") == 0;
    bool exists = r->nrows > 0;
    db_res_free(r);
    if (live) {
        rc = db_exec("UPDATE blobs SET refs = refs + 1, unreferenced_at = NULL WHERE sha256 = ?",
                     DB_ARGS(DB_STR(c->sha)));
    } else {
        /* New, or being collected (we hold its row: the collector waits, then
         * finds it live): the bytes go (back) in place under the lock. */
        if (store_place(c->part, c->sha, false) < 0 ||
            (c->thumb[0] && store_place(c->thumb, c->sha, true) < 0))
            return ATT_IO;
        struct db_arg w = c->width ? DB_INT(c->width) : (struct db_arg){.type = DB_ARG_NULL};
        struct db_arg h = c->height ? DB_INT(c->height) : (struct db_arg){.type = DB_ARG_NULL};
        if (exists)
            rc = db_exec("UPDATE blobs SET state = 'live', refs = 1, unreferenced_at = NULL, "
                         "width = ?, height = ?, has_thumbnail = ? WHERE sha256 = ?",
                         DB_ARGS(w, h, DB_INT(c->thumb[0] != '\0'), DB_STR(c->sha)));
        else
            rc = db_exec("INSERT INTO blobs (sha256, size, content_type, width, height, "
                         "has_thumbnail, refs, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                         DB_ARGS(DB_STR(c->sha), DB_INT(c->size), DB_STR(c->type), w, h,
                                 DB_INT(c->thumb[0] != '\0'), DB_INT(now)));
    }
    if (rc < 0)
        return rc;
    rc = db_exec("UPDATE attachments SET state = 'complete', sha256 = ?, expires_at = ? "
                 "WHERE id = ? AND state = 'pending'",
                 DB_ARGS(DB_STR(c->sha), DB_INT(now + settings.upload_expiry_ms), DB_INT(c->id)));
    if (rc == 0 && db_affected() != 1)
        return NOT_FOUND; /* deleted meanwhile: roll back */
    return rc;
}

/* The bytes tell the container (WebM, Ogg, MP4), not whether it holds only
 * sound: a recorded voice note sniffs as video/webm. When the client
 * declared the audio type of the same container, type (len bytes) becomes
 * that; both are shown inline alike. */
static void audio_or_video(char *type, size_t len, const char *declared)
{
    static const char *const pairs[][2] = {{"video/webm", "audio/webm"},
                                           {"video/ogg", "audio/ogg"},
                                           {"video/mp4", "audio/mp4"}};
    size_t n = strcspn(declared, ";");
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(type, pairs[i][0]) == 0 && strlen(pairs[i][1]) == n &&
            strncmp(declared, pairs[i][1], n) == 0)
            snprintf(type, len, "%s", pairs[i][1]);
}

/* Whether blob sha is stored and live (then nothing needs making). */
static bool blob_live(const char *sha)
{
    struct db_res *r;
    if (db_query("SELECT 1 FROM blobs WHERE sha256 = ? AND state = 'live'", &r,
                 DB_ARGS(DB_STR(sha))) < 0)
        return false;
    bool live = r->nrows > 0;
    db_res_free(r);
    return live;
}

/* The pictures libvips may read for us: what browsers show inline. */
static bool thumbnailable(const char *type)
{
    return strcmp(type, "image/png") == 0 || strcmp(type, "image/jpeg") == 0 ||
           strcmp(type, "image/gif") == 0 || strcmp(type, "image/webp") == 0;
}

/* For a picture: its dimensions and a thumbnail (in a limited child
 * process, media/thumb.h); nothing when it is too big or unreadable. */
static void picture(struct finish_ctx *c)
{
    if (!thumbnailable(c->type))
        return;
    struct thumb_limits l = {settings.thumbnail_max_pixels, 1LL << 30, 20000};
    int w, h;
    if (thumb_probe(c->part, &l, &w, &h) != THUMB_OK)
        return;
    c->width = w;
    c->height = h;
    char tmp[STORE_PATH_MAX];
    store_tmp_path(".webp", tmp);
    if (thumb_make(c->part, w, h, tmp, &l) == THUMB_OK)
        snprintf(c->thumb, sizeof c->thumb, "%s", tmp);
}

/* Finishes job j in a worker: fsync; when the file is whole, hash, type,
 * store, mark complete. */
static void finish(struct upload_job *j)
{
    char part[STORE_PATH_MAX];
    store_part_path(j->id, part);
    struct db_res *r;
    int rc = db_query("SELECT size, declared_sha256, declared_type FROM attachments WHERE id = ? "
                      "AND owner_id = ? AND state = 'pending'",
                      &r, DB_ARGS(DB_INT(j->id), DB_INT(j->owner)));
    if (rc < 0 || r->nrows == 0) {
        j->status = rc < 0 ? rc : NOT_FOUND;
        db_res_free(r);
        return;
    }
    int64_t size = db_int(r, 0, 0);
    char declared[STORE_SHA_HEX] = "";
    if (db_str(r, 0, 1))
        snprintf(declared, sizeof declared, "%s", db_str(r, 0, 1));
    char declared_type[128] = "";
    if (db_str(r, 0, 2))
        snprintf(declared_type, sizeof declared_type, "%s", db_str(r, 0, 2));
    db_res_free(r);
    struct stat st;
    /* Acknowledged bytes survive a crash: durable before the answer. */
    if (fstat(j->fd, &st) < 0 || store_sync(j->fd, part) < 0) {
        log_error("attachments: fsync of %s failed: %s", part, strerror(errno));
        j->status = ATT_IO;
        return;
    }
    if (st.st_size < size) {
        j->status = upload_view(j->owner, j->id, &j->view);
        return;
    }
    if (st.st_size > size) {
        /* More than declared (two PUTs racing): start again from 0. */
        if (ftruncate(j->fd, 0) < 0)
            unlink(part);
        j->status = ATT_SIZE;
        return;
    }
    struct finish_ctx c = {.id = j->id, .part = part, .size = size};
    if (hash_file(j->fd, c.sha) < 0) {
        log_error("attachments: cannot read %s: %s", part, strerror(errno));
        j->status = ATT_IO;
        return;
    }
    if (declared[0] && strcmp(declared, c.sha) != 0) {
        /* Not what the client meant to send: start again from 0. */
        if (ftruncate(j->fd, 0) < 0)
            unlink(part);
        j->status = ATT_HASH;
        return;
    }
    sniff(part, c.type, sizeof c.type);
    audio_or_video(c.type, sizeof c.type, declared_type);
    /* A photo's position is not sent along: the stored bytes (and so the
     * attachment's hash and size) are those without it. */
    char stripped[STORE_PATH_MAX] = "";
    if (strcmp(c.type, "image/jpeg") == 0) {
        store_tmp_path(".jpg", stripped);
        int s = exif_strip_gps(part, stripped);
        int fd = s == 1 ? open(stripped, O_RDONLY | O_CLOEXEC) : -1;
        struct stat sst;
        if (s != 1 || fd < 0 || fstat(fd, &sst) < 0 || hash_file(fd, c.sha) < 0) {
            if (s == 1)
                unlink(stripped);
            stripped[0] = '\0';
            if (s != 0) {
                if (fd >= 0)
                    close(fd);
                j->status = ATT_IO; /* never store it with its position */
                return;
            }
        } else {
            c.part = stripped;
            c.size = sst.st_size;
        }
        if (fd >= 0)
            close(fd);
    }
    if (!blob_live(c.sha))
        picture(&c);
    rc = db_tx(finish_tx, &c);
    if (c.thumb[0])
        unlink(c.thumb); /* placed by a link of its own, or not needed */
    if (stripped[0])
        unlink(stripped);
    if (rc != 0) {
        j->status = rc;
        return;
    }
    unlink(part); /* the blob is a link of its own */
    j->status = upload_view(j->owner, j->id, &j->view);
}

/* A job waiting in the queue carries its completion right after it. */
struct queued_upload {
    struct upload_job *job;
    struct completion done;
};

static void run_queued(void **items, int n)
{
    for (int i = 0; i < n; i++) {
        struct queued_upload *q = items[i];
        finish(q->job);
        struct completion done = q->done;
        free(q);
        done.fn(done.arg);
    }
}

bool upload_submit(struct upload_job *j, struct completion done)
{
    j->status = 0;
    if (workers_on) {
        struct queued_upload *q = malloc(sizeof *q);
        if (q) {
            q->job = j;
            q->done = done;
            if (batchq_push(&workers, q))
                return false;
            free(q);
        }
    }
    finish(j);
    return true;
}

/* ---- reading ---- */

int attachment_open(int64_t viewer, int64_t id, bool thumbnail, struct attachment_file *f)
{
    struct db_res *r;
    int rc = db_query("SELECT b.sha256, b.content_type, a.filename, b.has_thumbnail "
                      "FROM attachments a JOIN blobs b ON b.sha256 = a.sha256 "
                      "WHERE a.id = ? AND a.state <> 'pending' AND (a.owner_id = ? OR EXISTS "
                      "(SELECT 1 FROM thread_members tm WHERE tm.thread_id = a.thread_id "
                      "AND tm.owner_id = ?))",
                      &r, DB_ARGS(DB_INT(id), DB_INT(viewer), DB_INT(viewer)));
    if (rc < 0)
        return rc;
    if (r->nrows == 0 || (thumbnail && !db_int(r, 0, 3))) {
        db_res_free(r);
        return NOT_FOUND;
    }
    snprintf(f->sha256, sizeof f->sha256, "%s", db_str(r, 0, 0));
    snprintf(f->content_type, sizeof f->content_type, "%s",
             thumbnail ? "image/webp" : db_str(r, 0, 1));
    snprintf(f->filename, sizeof f->filename, "%s", db_str(r, 0, 2));
    db_res_free(r);
    rc = store_open(f->sha256, thumbnail, &f->fd, &f->size);
    if (rc == 1)
        log_error("attachments: blob %s%s is missing from the store", f->sha256,
                  thumbnail ? " (thumbnail)" : "");
    return rc == 0 ? 0 : ATT_IO;
}

int attachments_link(int64_t viewer, int64_t id, char *url, size_t url_len, int64_t *expires_at)
{
    struct attachment_file f;
    int rc = attachment_open(viewer, id, false, &f);
    if (rc != 0)
        return rc;
    close(f.fd);
    *expires_at = now_ms() + (int64_t)settings.link_ttl_s * 1000;
    char sig[64];
    link_sig(id, viewer, *expires_at, sig);
    snprintf(url, url_len, "/v1/attachments/%lld?u=%lld&exp=%lld&sig=%s", (long long)id,
             (long long)viewer, (long long)*expires_at, sig);
    return 0;
}

int64_t attachments_link_check(int64_t id, const char *u, const char *exp, const char *sig,
                               int64_t now_ms_)
{
    int64_t user, until;
    if (u == NULL || exp == NULL || sig == NULL || parse_int(u, &user) < 0 || user <= 0 ||
        parse_int(exp, &until) < 0 || until < now_ms_)
        return 0;
    char want[64];
    link_sig(id, user, until, want);
    size_t n = strlen(want);
    if (strlen(sig) != n || sodium_memcmp(want, sig, n) != 0)
        return 0;
    return user;
}

/* ---- the send path ---- */

int attachments_lock(const char *ids, struct db_res **out)
{
    return db_query("SELECT STRAIGHT_JOIN a.id, a.owner_id, a.state, a.expires_at, " ATT_VIEW_COLS
                    " FROM " DB_IDS_TABLE " JOIN attachments a ON a.id = j.id "
                    "JOIN blobs b ON b.sha256 = a.sha256 FOR UPDATE",
                    out, DB_ARGS(DB_STR(ids)));
}

bool attachments_claimable(const struct db_res *r, int row, int64_t sender, int64_t now)
{
    return db_int(r, row, 1) == sender && strcmp(db_str(r, row, 2), "complete") == 0 &&
           db_int(r, row, 3) > now;
}

json_t *attachments_row_view(const struct db_res *r, int row) { return view_row(r, row, 4); }

int attachments_copy(int64_t owner, const char *src_views, int64_t thread_id, int64_t seq,
                     int64_t now, char **views)
{
    *views = NULL;
    json_t *src = json_loads(src_views, 0, NULL), *out = json_array(), *v;
    size_t i;
    int rc = DB_OK;
    json_array_foreach(src, i, v) {
        int64_t id = json_integer_value(json_object_get(v, "id"));
        rc = db_exec("INSERT INTO attachments (owner_id, filename, size, declared_type, state, "
                     "sha256, thread_id, seq, created_at, expires_at) SELECT ?, filename, size, "
                     "declared_type, 'attached', sha256, ?, ?, ?, expires_at FROM attachments "
                     "WHERE id = ? AND state = 'attached'",
                     DB_ARGS(DB_INT(owner), DB_INT(thread_id), DB_INT(seq), DB_INT(now),
                             DB_INT(id)));
        if (rc < 0)
            break;
        if (db_affected() == 0)
            continue; /* the source lost it (deleted meanwhile) */
        int64_t copy = db_insert_id();
        rc = db_exec("UPDATE attachments a JOIN blobs b ON b.sha256 = a.sha256 "
                     "SET b.refs = b.refs + 1, b.unreferenced_at = NULL WHERE a.id = ?",
                     DB_ARGS(DB_INT(copy)));
        struct db_res *r;
        if (rc == 0)
            rc = db_query("SELECT a.id, a.owner_id, a.state, a.expires_at, " ATT_VIEW_COLS
                          " FROM attachments a JOIN blobs b ON b.sha256 = a.sha256 "
                          "WHERE a.id = ?",
                          &r, DB_ARGS(DB_INT(copy)));
        if (rc < 0)
            break;
        if (r->nrows)
            json_array_append_new(out, view_row(r, 0, 4));
        db_res_free(r);
    }
    if (rc == 0 && json_array_size(out) > 0 && (*views = json_dumps(out, JSON_COMPACT)) == NULL)
        rc = DB_ERR;
    json_decref(src);
    json_decref(out);
    return rc;
}

int attachments_attach(const char *rows)
{
    return db_exec("UPDATE JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$[0]', "
                   "t BIGINT PATH '$[1]', q BIGINT PATH '$[2]')) j STRAIGHT_JOIN attachments a "
                   "ON a.id = j.id SET a.state = 'attached', a.thread_id = j.t, a.seq = j.q",
                   DB_ARGS(DB_STR(rows)));
}

/* ---- garbage collection ---- */

struct expire_ctx {
    int64_t now;
    int removed;
};

/* Expired uploads, a batch: pending ones go (their partial files are swept
 * on their node), complete ones give back their blob reference. */
static int expire_tx(void *arg)
{
    struct expire_ctx *c = arg;
    c->removed = 0;
    struct db_res *r;
    int rc = db_query("SELECT id, sha256 FROM attachments WHERE state IN ('pending', 'complete') "
                      "AND expires_at <= ? LIMIT 200 FOR UPDATE",
                      &r, DB_ARGS(DB_INT(c->now)));
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nrows && rc == 0; i++) {
        if (db_str(r, i, 1))
            rc = blob_unref(db_str(r, i, 1), c->now);
        if (rc == 0)
            rc = db_exec("DELETE FROM attachments WHERE id = ?", DB_ARGS(DB_INT(db_int(r, i, 0))));
    }
    c->removed = r->nrows;
    db_res_free(r);
    return rc;
}

/* Removes one blob marked 'deleting': object, then row, under its lock. */
static int collect_tx(void *arg)
{
    const char *sha = arg;
    struct db_res *r;
    int rc = db_query("SELECT 1 FROM blobs WHERE sha256 = ? AND state = 'deleting' AND refs = 0 "
                      "FOR UPDATE",
                      &r, DB_ARGS(DB_STR(sha)));
    if (rc < 0)
        return rc;
    bool found = r->nrows > 0;
    db_res_free(r);
    if (!found)
        return NOT_FOUND; /* taken back by an upload, or gone */
    if (store_delete(sha) < 0)
        return ATT_IO;
    return db_exec("DELETE FROM blobs WHERE sha256 = ?", DB_ARGS(DB_STR(sha)));
}

int attachments_gc(int64_t now)
{
    int removed = 0;
    struct expire_ctx e = {now, 0};
    do {
        if (db_tx(expire_tx, &e) != 0)
            break;
        removed += e.removed;
    } while (e.removed == 200);
    /* Blobs unreferenced past the grace time: first marked (committed: a
     * crash after it leaves the mark, and the next round finishes). */
    db_exec("UPDATE blobs SET state = 'deleting' WHERE refs = 0 AND state = 'live' "
            "AND unreferenced_at <= ? LIMIT 500",
            DB_ARGS(DB_INT(now - settings.gc_grace_ms)));
    struct db_res *r;
    if (db_query("SELECT sha256 FROM blobs WHERE state = 'deleting' LIMIT 500", &r, DB_NOARGS) ==
        0) {
        for (int i = 0; i < r->nrows; i++)
            if (db_tx(collect_tx, (void *)db_str(r, i, 0)) == 0)
                removed++;
        db_res_free(r);
    }
    int64_t cutoff_s = (now - settings.upload_expiry_ms) / 1000 - 60;
    removed += store_sweep_parts(cutoff_s, NULL, NULL);
    removed += store_sweep_tmp(now / 1000 - 3600); /* a crash's leftovers */
    store_sweep_cache(now / 1000 - 86400);         /* S3 objects not read for a day */
    return removed;
}

/* ---- start and stop ---- */

int attachments_init(const struct attachment_settings *s)
{
    settings = *s;
    snprintf(media_dir, sizeof media_dir, "%s", s->media_dir);
    settings.media_dir = media_dir;
    if (store_init(media_dir) < 0 || (s->s3 && store_use_s3(s->s3) < 0))
        return -1;
    settings.s3 = NULL; /* copied by the store */
    static char accel[64];
    snprintf(accel, sizeof accel, "%s", s->accel_redirect ? s->accel_redirect : "");
    settings.accel_redirect = accel;
    magic_cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
    if (magic_cookie == NULL || magic_load(magic_cookie, NULL) != 0) {
        log_error("attachments: libmagic: %s",
                  magic_cookie ? magic_error(magic_cookie) : "cannot start");
        return -1;
    }
    if (load_link_key() < 0) {
        log_error("attachments: cannot load the link key");
        return -1;
    }
    if (s->workers > 0) {
        if (batchq_start(&workers, "media", s->workers, 1, run_queued) < 0)
            return -1;
        workers_on = true;
    }
    return 0;
}

void attachments_stop(void)
{
    if (workers_on)
        batchq_stop(&workers);
    workers_on = false;
    if (magic_cookie)
        magic_close(magic_cookie);
    magic_cookie = NULL;
}

const struct attachment_settings *attachments_settings(void) { return &settings; }
