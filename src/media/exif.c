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

/* How much of the file's start is searched for the EXIF segment: it comes
 * right after the start marker (it may be at most 64 KiB long). */
#define HEAD_MAX (256 * 1024)

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

/* Finds the APP1 Exif segment in head (n bytes of a JPEG's start): its
 * offset (at its FF E1 marker) and whole length (marker included) into *at
 * and *len. Returns 1 found, 0 none (or not a JPEG). */
static int find_exif(const unsigned char *head, size_t n, size_t *at, size_t *len)
{
    if (n < 4 || head[0] != 0xFF || head[1] != 0xD8)
        return 0;
    size_t p = 2;
    while (p + 4 <= n) {
        if (head[p] != 0xFF)
            return 0;
        unsigned char marker = head[p + 1];
        if (marker == 0xFF) { /* fill byte */
            p++;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) /* image data, or the end */
            return 0;
        size_t seg = ((size_t)head[p + 2] << 8) | head[p + 3];
        if (seg < 2 || p + 2 + seg > n)
            return 0;
        if (marker == 0xE1 && seg >= 8 && memcmp(head + p + 4, "Exif\0\0", 6) == 0) {
            *at = p;
            *len = 2 + seg;
            return 1;
        }
        p += 2 + seg;
    }
    return 0;
}

int exif_strip_gps(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    unsigned char *head = malloc(HEAD_MAX);
    ssize_t n = head ? pread(in, head, HEAD_MAX, 0) : -1;
    size_t at, len;
    if (n <= 0 || !find_exif(head, (size_t)n, &at, &len)) {
        free(head);
        close(in);
        return n < 0 ? -1 : 0;
    }
    ExifData *ed = exif_data_new_from_data(head + at + 4, (unsigned int)(len - 4));
    ExifContent *gps = ed ? ed->ifd[EXIF_IFD_GPS] : NULL;
    if (gps == NULL || gps->count == 0) {
        if (ed)
            exif_data_unref(ed);
        free(head);
        close(in);
        return 0;
    }
    while (gps->count > 0)
        exif_content_remove_entry(gps, gps->entries[0]);
    unsigned char *exif = NULL;
    unsigned int exif_len = 0;
    exif_data_save_data(ed, &exif, &exif_len);
    exif_data_unref(ed);
    int out = -1, rc = -1;
    if (exif == NULL || exif_len + 2 > 0xFFFF)
        goto done;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0)
        goto done;
    unsigned char marker[4] = {0xFF, 0xE1, (unsigned char)((exif_len + 2) >> 8),
                               (unsigned char)((exif_len + 2) & 0xFF)};
    if (write_all(out, head, at) < 0 || write_all(out, marker, 4) < 0 ||
        write_all(out, exif, exif_len) < 0)
        goto done;
    /* The rest as it is: from the end of the old segment to the end. */
    off_t off = (off_t)(at + len);
    unsigned char buf[65536];
    for (;;) {
        ssize_t r = pread(in, buf, sizeof buf, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto done;
        if (r == 0)
            break;
        if (write_all(out, buf, (size_t)r) < 0)
            goto done;
        off += r;
    }
    rc = fsync(out) == 0 ? 1 : -1;
done:
    if (rc < 0) {
        log_error("exif: cannot write %s: %s", dst, strerror(errno));
        unlink(dst);
    }
    if (out >= 0)
        close(out);
    free(exif);
    free(head);
    close(in);
    return rc;
}
