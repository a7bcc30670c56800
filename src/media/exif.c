/* exif.c — GPS out of JPEG originals (exif.h). */
#include "media/exif.h"

#include <errno.h>
#include <fcntl.h>
#include <libexif/exif-data.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

/* At most this many EXIF segments are rewritten in one file (cameras write
 * one; a file with more is hostile, and each extra one is still checked). */
#define EXIF_MAX 8

/* One EXIF segment to replace: where it is in the source (at its FF E1
 * marker, whole length with the marker) and its new bytes (marker
 * included, malloc'd). */
struct exif_patch {
    off_t at;
    size_t len;
    unsigned char *bytes;
    size_t n;
};

/* Writes all of buf (n bytes) to fd. Returns 0 or -1. */
static int write_all(int fd, const unsigned char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes at off. Returns 0, or -1 (short file or error). */
static int read_at(int fd, void *buf, size_t n, off_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Copies the source's bytes [from, to) to out; to < 0 means to the end.
 * Returns 0 or -1. */
static int copy_range(int in, int out, off_t from, off_t to)
{
    unsigned char buf[65536];
    while (to < 0 || from < to) {
        size_t want = sizeof buf;
        if (to >= 0 && (off_t)want > to - from)
            want = (size_t)(to - from);
        ssize_t r = pread(in, buf, want, from);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return to < 0 ? 0 : -1;
        if (write_all(out, buf, (size_t)r) < 0)
            return -1;
        from += r;
    }
    return 0;
}

/* The segment body (len bytes after the 4-byte header) of an APP1 Exif
 * segment without its GPS directory: the new segment, marker included, in
 * *out (malloc'd) and *n. Returns 1 rewritten, 0 no GPS in it. */
static int exif_without_gps(const unsigned char *body, size_t len, unsigned char **out, size_t *n)
{
    ExifData *ed = exif_data_new_from_data(body, (unsigned int)len);
    ExifContent *gps = ed ? ed->ifd[EXIF_IFD_GPS] : NULL;
    if (gps == NULL || gps->count == 0) {
        if (ed)
            exif_data_unref(ed);
        return 0;
    }
    while (gps->count > 0)
        exif_content_remove_entry(gps, gps->entries[0]);
    unsigned char *exif = NULL;
    unsigned int exif_len = 0;
    exif_data_save_data(ed, &exif, &exif_len);
    exif_data_unref(ed);
    unsigned char *seg = NULL;
    if (exif != NULL && exif_len + 2 <= 0xFFFF)
        seg = malloc(4 + (size_t)exif_len);
    if (seg == NULL) {
        /* Cannot rewrite it: drop the whole segment rather than keep GPS. */
        free(exif);
        *out = NULL;
        *n = 0;
        return 1;
    }
    seg[0] = 0xFF;
    seg[1] = 0xE1;
    seg[2] = (unsigned char)((exif_len + 2) >> 8);
    seg[3] = (unsigned char)((exif_len + 2) & 0xFF);
    memcpy(seg + 4, exif, exif_len);
    free(exif);
    *out = seg;
    *n = 4 + (size_t)exif_len;
    return 1;
}

/* Walks the segments before the image data, header by header (each at most
 * 64 KiB, however many there are), and fills patches[] with the EXIF
 * segments that hold GPS. Returns how many, or -1 on a read error. A file
 * that is not a JPEG, or whose segments stop making sense, ends the walk. */
static int find_gps_segments(int in, struct exif_patch *patches)
{
    unsigned char h[4];
    if (read_at(in, h, 2, 0) < 0 || h[0] != 0xFF || h[1] != 0xD8)
        return 0;
    int count = 0;
    off_t p = 2;
    unsigned char *body = malloc(65536);
    if (body == NULL)
        return -1;
    while (count < EXIF_MAX && read_at(in, h, 4, p) == 0) {
        if (h[0] != 0xFF)
            break;
        if (h[1] == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (h[1] == 0xDA || h[1] == 0xD9) /* image data, or the end */
            break;
        size_t seg = ((size_t)h[2] << 8) | h[3];
        if (seg < 2)
            break;
        if (h[1] == 0xE1 && seg >= 8) {
            if (read_at(in, body, seg - 2, p + 4) < 0)
                break;
            if (memcmp(body, "Exif\0\0", 6) == 0 &&
                exif_without_gps(body, seg - 2, &patches[count].bytes, &patches[count].n)) {
                patches[count].at = p;
                patches[count].len = 2 + seg;
                count++;
            }
        }
        p += (off_t)(2 + seg);
    }
    free(body);
    return count;
}

int exif_strip_gps(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    struct exif_patch patches[EXIF_MAX];
    int count = find_gps_segments(in, patches);
    if (count <= 0) {
        close(in);
        return count;
    }
    int rc = -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0)
        goto done;
    off_t from = 0;
    for (int i = 0; i < count; i++) {
        if (copy_range(in, out, from, patches[i].at) < 0 ||
            write_all(out, patches[i].bytes, patches[i].n) < 0)
            goto done;
        from = patches[i].at + (off_t)patches[i].len;
    }
    /* The rest as it is, image data included. */
    if (copy_range(in, out, from, -1) < 0)
        goto done;
    rc = fsync(out) == 0 ? 1 : -1;
done:
    if (rc < 0) {
        log_error("exif: cannot write %s: %s", dst, strerror(errno));
        unlink(dst);
    }
    if (out >= 0)
        close(out);
    for (int i = 0; i < count; i++)
        free(patches[i].bytes);
    close(in);
    return rc;
}
