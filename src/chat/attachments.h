/* attachments.h — uploads, the blobs they become, and who may read them.
 *
 * An upload is a row in `attachments` (sql/011_attachments.sql) with a
 * partial file on the node that receives its bytes (media/store.h). When
 * the last byte is in, a media worker fsyncs it, computes its SHA-256,
 * takes its content type from the bytes (libmagic), and stores it as the
 * content-addressed blob of that hash (reference-counted: equal bytes are
 * stored once); the upload is then `complete` and can be attached to one
 * message, in the send's own transaction (attachments_claim). Reading an
 * attachment needs its uploader, or a member of the thread its message is
 * in; a signed link (attachments_link) stands for the caller for a few
 * minutes, for <img src>. Garbage collection (attachments_gc) removes
 * expired uploads and, after a grace time, blobs nothing refers to.
 *
 * Every call may block on the database; none may run before
 * attachments_init. Docs: docs/attachments.md.
 *
 * May call: chat (model), media (store), db, base, libmagic, libsodium. */
#ifndef CHAT_ATTACHMENTS_H
#define CHAT_ATTACHMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/batchq.h"
#include "media/s3.h"
#include "db/db.h"

/* The settings (the config table's keys of the same names). */
struct attachment_settings {
    const char *media_dir;        /* the local store's directory (copied) */
    int64_t upload_max_bytes;     /* one file's largest size */
    int per_message_max;          /* attachments in one message */
    int64_t quota_bytes;          /* a user's uploads and attachments, in total */
    int pending_max;              /* a user's uploads not yet complete */
    int64_t upload_expiry_ms;     /* an upload not sent in a message is removed after */
    int64_t gc_grace_ms;          /* a blob nothing refers to is removed after */
    int link_ttl_s;               /* a signed link is valid for */
    int64_t thumbnail_max_pixels; /* pictures bigger than this get no thumbnail */
    int workers;                  /* media worker threads (hashing, storing) */
    const struct s3_config *s3;   /* the S3 store, NULL for the local directory */
    const char *accel_redirect;   /* nginx's internal prefix for media_dir, "" none */
};

/* What the calls below answer besides 0 and DB_E* (positive, like
 * model.h's; NOT_FOUND = 1 is shared). */
enum attachment_result {
    ATT_QUOTA = 20,  /* the user's quota would be exceeded: 413 quota_exceeded */
    ATT_PENDING_MAX, /* too many pending uploads: 429 */
    ATT_OFFSET,      /* bytes not at the received offset: 409 upload_offset_mismatch */
    ATT_SIZE,        /* Content-Range's total is not the declared size: 422 */
    ATT_HASH,        /* the bytes' SHA-256 is not the declared one: 422 */
    ATT_NOT_PENDING, /* the upload is complete already: 409 upload_offset_mismatch */
    ATT_IO,          /* the store failed: 500 */
};

/* Starts the module: the store's directories, the link key (made once per
 * database and shared by the nodes), the media workers. Returns 0, or -1
 * with the reason logged. Call once from main after db_init. */
int attachments_init(const struct attachment_settings *s);

/* Stops the workers (finishing what they hold). */
void attachments_stop(void);

/* The settings in force. */
const struct attachment_settings *attachments_settings(void);

/* Makes a pending upload of `size` bytes for owner. filename (1..255 bytes
 * of clean text), declared_type and declared_sha (64 lowercase hex) are
 * the client's, declared_type and declared_sha may be NULL. *out: the
 * upload view, new reference. Returns 0, ATT_QUOTA, ATT_PENDING_MAX, DB_E*. */
int upload_create(int64_t owner, const char *filename, int64_t size, const char *declared_type,
                  const char *declared_sha, json_t **out);

/* The upload view of owner's upload id ({id, filename, size, received,
 * state, expires_at, attachment?}) into *out. Returns 0, NOT_FOUND (no
 * such upload of owner's, expired, or already in a message), DB_E*. */
int upload_view(int64_t owner, int64_t id, json_t **out);

/* Removes owner's upload id (pending or complete, not yet in a message).
 * Returns 0, NOT_FOUND, DB_E*. */
int upload_delete(int64_t owner, int64_t id);

/* The first step of PUT …/content: checks that owner's upload id is
 * pending, that total is its size and that the bytes start at what was
 * received, and opens the partial file for writing there: *fd (the caller
 * closes it). Returns 0, NOT_FOUND, ATT_SIZE, ATT_OFFSET (then *received
 * says where to resume), ATT_NOT_PENDING, ATT_IO, DB_E*. first < 0: no
 * Content-Range (the whole file from 0: what was received is dropped). */
int upload_open(int64_t owner, int64_t id, int64_t first, int64_t total, int *fd,
                int64_t *received);

/* A PUT's bytes are in the partial file: the job a media worker finishes. */
struct upload_job {
    int64_t id, owner; /* in */
    int fd;            /* in: the partial file, open; the job closes it */
    /* Filled by the worker: */
    int status;   /* 0, ATT_HASH, ATT_IO, NOT_FOUND, DB_E* */
    json_t *view; /* the upload view (status 0), owned: upload_job_clear */
};

/* Hands job j to a media worker, which makes the bytes durable (fsync)
 * and, when the last byte is in, hashes, types and stores the file and
 * marks the upload complete; then calls done. Returns true when it ran
 * in the caller's thread (no workers), false when done will be called.
 * Any thread. */
bool upload_submit(struct upload_job *j, struct completion done);

/* Frees what a finished job holds (not j). */
void upload_job_clear(struct upload_job *j);

/* A readable attachment or thumbnail, for a download. */
struct attachment_file {
    int fd;                 /* open for reading; the caller closes it */
    int64_t size;           /* bytes */
    char content_type[128]; /* the type taken from the bytes */
    char sha256[65];        /* the original's (the ETag, for both) */
    char filename[256];     /* the uploader's name for it */
};

/* Opens attachment id (thumbnail: its thumbnail) for viewer. Returns 0,
 * NOT_FOUND (no such attachment, viewer may not read it, no thumbnail),
 * ATT_IO, DB_E*. */
int attachment_open(int64_t viewer, int64_t id, bool thumbnail, struct attachment_file *f);

/* A signed link to attachment id for viewer (who must be able to read it):
 * the path with its query into url (url_len bytes; the same query also
 * signs `/thumbnail`), and when it expires (ms). Returns 0, NOT_FOUND,
 * DB_E*. */
int attachments_link(int64_t viewer, int64_t id, char *url, size_t url_len, int64_t *expires_at);

/* Checks a signed link's query values (u, exp in ms, sig) for attachment
 * id at now_ms. Returns the viewer it stands for, or 0 when it is
 * malformed, forged or expired. The viewer's access is checked again by
 * attachment_open. */
int64_t attachments_link_check(int64_t id, const char *u, const char *exp, const char *sig,
                               int64_t now_ms);

/* The send path's step (chat/sendq), inside its transaction: locks the
 * attachments of ids (a JSON array of ids) and returns one row per found
 * id in *out: (id, owner_id, state, expires_at, then ATT_VIEW_COLS). The
 * caller checks them (attachments_claimable) and then marks them with
 * attachments_attach. Returns DB_OK or DB_E*. */
int attachments_lock(const char *ids, struct db_res **out);

/* Whether row `row` of attachments_lock's result may go into a message of
 * sender's at now_ms. */
bool attachments_claimable(const struct db_res *r, int row, int64_t sender, int64_t now_ms);

/* The attachment view of row `row` of attachments_lock's result. New
 * reference. */
json_t *attachments_row_view(const struct db_res *r, int row);

/* Marks attachments attached: rows is a JSON array of [id, thread_id, seq].
 * Inside the send's transaction. Returns DB_OK or DB_E*. */
int attachments_attach(const char *rows);

/* Inside a send's transaction: the attachments of a forwarded message,
 * src_views (the source message's stored attachments JSON array), copied
 * into message (thread_id, seq) of owner — new attachment rows on the same
 * blobs (one more reference each), no bytes copied. An attachment the
 * source no longer has is left out. *views gets the new attachment views as
 * a JSON array (malloc'd; NULL when none is left). Returns DB_OK or DB_E*. */
int attachments_copy(int64_t owner, const char *src_views, int64_t thread_id, int64_t seq,
                     int64_t now_ms, char **views);

/* Inside the transaction that deletes messages seq_from..seq_to of
 * thread_id (a delete for everyone: one message; retention: a prefix of
 * history): their attachments go (their rows, and one reference each to
 * their blobs, which the collector removes once nothing else refers to
 * them). Returns DB_OK or DB_E*. */
int attachments_detach_range(int64_t thread_id, int64_t seq_from, int64_t seq_to, int64_t now_ms);

/* Inside the transaction that deletes owner's account: every attachment
 * and upload of theirs goes (one blob reference each). Returns DB_OK or
 * DB_E*. */
int attachments_forget_owner(int64_t owner, int64_t now_ms);

/* One round of garbage collection at now_ms: expired uploads, blobs
 * unreferenced for gc_grace_ms, stale partial files of this node. Returns
 * how many things were removed. The janitor's thread. */
int attachments_gc(int64_t now_ms);

#endif
