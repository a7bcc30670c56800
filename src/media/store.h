/* store.h — the local blob store: attachments' bytes in a directory.
 *
 * Layout under media_dir:
 *   blobs/ab/cd/<sha256>        an original, named by the SHA-256 of its bytes
 *   blobs/ab/cd/<sha256>.webp   its thumbnail, when it has one
 *   uploads/<id>.part           an upload's bytes while they arrive (this node's)
 *   tmp/                        files being made (thumbnails, stripped copies)
 *   cache/ab/cd/<sha256>[.webp] with the S3 store: the objects read lately
 * With the S3 store (store_use_s3) the blobs are objects blobs/ab/cd/<sha256>
 * in the bucket instead, read through the cache directory; uploads/ and tmp/
 * stay local. A blob is written once: made elsewhere in media_dir, fsync'd, linked into
 * place and the directory fsync'd, so a crash leaves either no file or the
 * whole one, never half of it. Nothing here knows the database.
 *
 * May call: media (s3), base, libc. */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PATH_MAX 1200
#define STORE_SHA_HEX 65 /* 64 hex digits and NUL */

/* Makes the directories under media_dir (kept, not copied). Returns 0, or
 * -1 with the reason logged. Call once before threads. */
int store_init(const char *media_dir);

struct s3_config;

/* Keeps the blobs in the S3-compatible store c (copied) from now on.
 * Call after store_init, before threads. Returns 0 or -1. */
int store_use_s3(const struct s3_config *c);

/* Whether blobs go to S3. */
bool store_is_s3(void);

/* Removes cached S3 objects not read since cutoff_s (Unix time, s).
 * Returns how many were removed. */
int store_sweep_cache(int64_t cutoff_s);

/* The path of upload id's partial file into out (STORE_PATH_MAX bytes). */
void store_part_path(int64_t upload_id, char *out);

/* A new unique path under tmp/ into out (STORE_PATH_MAX bytes), with the
 * suffix (e.g. ".webp"; "" none). Thread-safe. */
void store_tmp_path(const char *suffix, char *out);

/* Puts the finished file at src (under media_dir) in place as the blob sha
 * (thumbnail: its thumbnail) by a hard link, fsyncing the file and the
 * directory; src stays (the caller removes it once the blob's row is
 * committed, so that the bytes exist somewhere whatever happens in
 * between). An existing blob of that name is kept (same bytes). Returns 0,
 * or -1 (errno set; logged). Any thread. */
int store_place(const char *src, const char *sha, bool thumbnail);

/* Opens blob sha (or its thumbnail) for reading: *fd (the caller closes it)
 * and *size in bytes. Returns 0, 1 when there is no such file, or -1 on
 * another error (logged). Any thread. */
int store_open(const char *sha, bool thumbnail, int *fd, int64_t *size);

/* The path of blob sha (or its thumbnail) under media_dir, as store_open
 * last found it ("blobs/ab/cd/<sha>", or "cache/…" with the S3 store),
 * into out (STORE_PATH_MAX bytes): for a proxy that serves media_dir. */
void store_relative_path(const char *sha, bool thumbnail, char *out);

/* Removes blob sha and its thumbnail; missing files are fine. Returns 0 or
 * -1 (logged). Any thread. */
int store_delete(const char *sha);

/* Fsyncs the file open as fd and then the directory of path; returns 0 or
 * -1 (errno set). */
int store_sync(int fd, const char *path);

/* Removes partial upload files under uploads/ last changed before
 * cutoff_s (Unix time, s) whose upload keep() does not want kept (keep
 * gets the upload id and ctx; NULL keeps none). Returns how many were removed. */
int store_sweep_parts(int64_t cutoff_s, bool (*keep)(int64_t id, void *ctx), void *ctx);

/* Removes files under tmp/ last changed before cutoff_s (Unix time, s):
 * what a crash left half made. Returns how many were removed. */
int store_sweep_tmp(int64_t cutoff_s);

#endif
