/* s3.h — an S3-compatible object store for attachments' bytes.
 *
 * Requests are signed with AWS Signature Version 4 by libcurl
 * (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3"); objects are addressed
 * path-style, endpoint/bucket/key, which every S3-compatible store takes
 * (MinIO, Ceph RGW, Garage, AWS itself). A PUT carries the SHA-256 of its
 * bytes (x-amz-content-sha256), so the store checks what it received.
 * Bodies stream from and to file descriptors, never held in memory.
 * sigv4_presign makes presigned GET URLs (query authentication) without
 * libcurl, for handing a download to someone else (a proxy, a client).
 *
 * Every call is blocking and thread-safe (one curl handle per call).
 *
 * May call: base, libcurl, libcrypto. */
#ifndef CHAT_S3_H
#define CHAT_S3_H

#include <stddef.h>
#include <stdint.h>

/* Where and as whom. Strings are borrowed for the calls. */
struct s3_config {
    const char *endpoint; /* "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com" */
    const char *region;   /* "us-east-1" */
    const char *bucket;
    const char *access_key;
    const char *secret_key;
    const char *ca_file; /* CA bundle for https; NULL or "" = the system's */
};

enum s3_result {
    S3_OK = 0,
    S3_NOT_FOUND = 1,   /* 404: no such object */
    S3_DENIED = 2,      /* 403: a bad key or signature, or no permission */
    S3_UNAVAILABLE = 3, /* no answer, a network error, or a 5xx */
    S3_IO = 4,          /* a local file could not be read or written */
};

/* Stores the file at path as object key (Content-Type type, NULL for
 * application/octet-stream). Returns S3_OK or another result (logged). */
enum s3_result s3_put_file(const struct s3_config *c, const char *key, const char *path,
                           const char *type);

/* Writes object key to fd (from its current offset). Returns S3_OK,
 * S3_NOT_FOUND, or another result (logged). */
enum s3_result s3_get_to_fd(const struct s3_config *c, const char *key, int fd);

/* Removes object key; an absent one is S3_OK too. */
enum s3_result s3_delete(const struct s3_config *c, const char *key);

/* A presigned GET URL of object key valid for expires_s seconds from
 * amz_date ("20130524T000000Z", UTC), into out (len bytes). host_style
 * true addresses the bucket as a host name (bucket.host/key), false
 * path-style (host/bucket/key). Returns 0, or -1 when out is too small or
 * the endpoint is not http(s)://host[:port]. */
int sigv4_presign(const struct s3_config *c, const char *key, const char *amz_date, int expires_s,
                  int host_style, char *out, size_t len);

#endif
