/* fuzz_exif.c — the JPEG segment walk and EXIF rewrite (exif_strip_gps) on
 * the input as a file, read through a memfd; the output goes to a second
 * memfd. Invariants: a rewrite keeps the start marker and ends with the
 * input's image data (from its start-of-scan marker on, copied, never
 * changed); no GPS directory survives a rewrite. */
#define _GNU_SOURCE
#include <libexif/exif-data.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "media/exif.h"

/* The offset of the start-of-scan marker found by walking the segments of
 * data (n bytes), or 0 when the walk does not reach one. */
static size_t scan_start(const uint8_t *d, size_t n)
{
    if (n < 2 || d[0] != 0xFF || d[1] != 0xD8)
        return 0;
    for (size_t p = 2; p + 2 <= n;) {
        if (d[p] != 0xFF)
            return 0;
        if (d[p + 1] == 0xFF) {
            p++;
            continue;
        }
        if (d[p + 1] == 0xDA)
            return p;
        if (d[p + 1] == 0xD9 || p + 4 > n)
            return 0;
        size_t seg = ((size_t)d[p + 2] << 8) | d[p + 3];
        if (seg < 2)
            return 0;
        p += 2 + seg;
    }
    return 0;
}

/* A memfd and its /proc path, made once. */
static int memfd(const char *name, char *path, size_t n)
{
    int fd = memfd_create(name, 0);
    if (fd < 0)
        abort();
    snprintf(path, n, "/proc/self/fd/%d", fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int in = -1, out = -1;
    static char in_path[64], out_path[64];
    static unsigned char got[1 << 20];
    if (in < 0) {
        in = memfd("chatd-fuzz-exif-in", in_path, sizeof in_path);
        out = memfd("chatd-fuzz-exif-out", out_path, sizeof out_path);
    }
    if (size > sizeof got / 2)
        return 0;
    if (ftruncate(in, 0) < 0 || pwrite(in, data, size, 0) != (ssize_t)size)
        abort();
    if (ftruncate(out, 0) < 0)
        abort();
    /* exif_strip_gps opens dst with O_TRUNC: the same memfd through /proc. */
    int rc = exif_strip_gps(in_path, out_path);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc != 1)
        return 0;
    ssize_t n = pread(out, got, sizeof got, 0);
    FUZZ_CHECK(n >= 2 && got[0] == 0xFF && got[1] == 0xD8);
    size_t sos = scan_start(data, size), tail = sos ? size - sos : 0;
    FUZZ_CHECK((size_t)n >= tail && memcmp(got + n - tail, data + sos, tail) == 0);
    /* The first EXIF segment of the output, if any, has no GPS entries. */
    for (size_t p = 2; p + 4 <= (size_t)n;) {
        if (got[p] != 0xFF || got[p + 1] == 0xDA || got[p + 1] == 0xD9)
            break;
        if (got[p + 1] == 0xFF) {
            p++;
            continue;
        }
        size_t seg = ((size_t)got[p + 2] << 8) | got[p + 3];
        if (seg < 2 || p + 2 + seg > (size_t)n)
            break;
        if (got[p + 1] == 0xE1 && seg >= 8 && memcmp(got + p + 4, "Exif\0\0", 6) == 0) {
            ExifData *ed = exif_data_new_from_data(got + p + 4, (unsigned int)(seg - 2));
            if (ed) {
                FUZZ_CHECK(ed->ifd[EXIF_IFD_GPS] == NULL || ed->ifd[EXIF_IFD_GPS]->count == 0);
                exif_data_unref(ed);
            }
            break;
        }
        p += 2 + seg;
    }
    return 0;
}
