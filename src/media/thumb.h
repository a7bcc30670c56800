/* thumb.h — image dimensions and WebP thumbnails, made by libvips' command
 * line tools in a child process with resource limits.
 *
 * Decoding an image is the riskiest thing a chat server does with what
 * users send (decompression bombs, decoder bugs), so chatd never decodes one
 * itself: vipsheader and vipsthumbnail (libvips-tools) run in a child with
 * a clean environment, VIPS_BLOCK_UNTRUSTED=1 (libvips ≥ 8.13: only its
 * fuzzed loaders), one thread, and rlimits on address space, CPU time, file
 * size, open files and core dumps, killed past a wall-clock timeout. An
 * image over max_pixels gets no thumbnail (the header is read, never the
 * pixels). The thumbnail is WebP, its long side at most THUMB_SIZE px, never
 * upscaled, without metadata.
 *
 * May call: base, libc. */
#ifndef CHAT_THUMB_H
#define CHAT_THUMB_H

#include <stdint.h>

#define THUMB_SIZE 320

/* The limits of one child process. */
struct thumb_limits {
    int64_t max_pixels;   /* width × height above which no thumbnail is made */
    int64_t memory_bytes; /* RLIMIT_AS of the child */
    int timeout_ms;       /* wall clock, then SIGKILL */
};

enum thumb_result {
    THUMB_OK = 0,
    THUMB_NOT_IMAGE = 1, /* libvips cannot read it (or will not: an untrusted loader) */
    THUMB_TOO_BIG = 2,   /* over max_pixels */
    THUMB_FAILED = 3,    /* the child failed, was killed, or timed out */
};

/* Reads the dimensions of the image at src into *width and *height (px).
 * Returns THUMB_OK, THUMB_NOT_IMAGE or THUMB_FAILED. Any thread (it forks). */
enum thumb_result thumb_probe(const char *src, const struct thumb_limits *l, int *width,
                              int *height);

/* Makes the thumbnail of the image at src (width × height px, from
 * thumb_probe) as WebP at dst. Returns THUMB_OK, THUMB_TOO_BIG or
 * THUMB_FAILED (dst then does not exist). Any thread (it forks). */
enum thumb_result thumb_make(const char *src, int width, int height, const char *dst,
                             const struct thumb_limits *l);

#endif
