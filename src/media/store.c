/* store.c — the local blob store (store.h). */
#include "media/store.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

static char root[512];
static _Atomic uint64_t tmp_next;

/* mkdir -p for one path (its parents made first); existing is fine. */
static int make_dirs(const char *path)
{
    char p[STORE_PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

int store_init(const char *media_dir)
{
    if (strlen(media_dir) >= sizeof root) {
        log_error("store: media_dir is too long");
        return -1;
    }
    snprintf(root, sizeof root, "%s", media_dir);
    const char *subs[] = {"blobs", "uploads", "tmp"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char p[STORE_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", root, subs[i]);
        if (make_dirs(p) < 0) {
            log_error("store: cannot make %s: %s", p, strerror(errno));
            return -1;
        }
    }
    /* Absolute from here on: helper tools take relative paths relative to
     * other directories (vipsthumbnail: the input's). */
    char abs[PATH_MAX];
    if (realpath(root, abs) == NULL || strlen(abs) >= sizeof root) {
        log_error("store: cannot resolve %s: %s", root, strerror(errno));
        return -1;
    }
    memcpy(root, abs, strlen(abs) + 1);
    return 0;
}

void store_part_path(int64_t upload_id, char *out)
{
    snprintf(out, STORE_PATH_MAX, "%s/uploads/%lld.part", root, (long long)upload_id);
}

void store_tmp_path(const char *suffix, char *out)
{
    uint64_t n = atomic_fetch_add(&tmp_next, 1);
    snprintf(out, STORE_PATH_MAX, "%s/tmp/%ld-%llu%s", root, (long)getpid(), (unsigned long long)n,
             suffix);
}

/* The path of blob sha (thumbnail: its .webp) into out; its directory is
 * made when mkdirs. */
static int blob_path(const char *sha, bool thumbnail, char *out, bool mkdirs)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/blobs/%.2s/%.2s", root, sha, sha + 2);
    if (mkdirs && make_dirs(dir) < 0)
        return -1;
    snprintf(out, STORE_PATH_MAX, "%s/%s%s", dir, sha, thumbnail ? ".webp" : "");
    return 0;
}

int store_sync(int fd, const char *path)
{
    if (fsync(fd) < 0)
        return -1;
    char d[STORE_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int store_place(const char *src, const char *sha, bool thumbnail)
{
    char dst[STORE_PATH_MAX];
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0 || blob_path(sha, thumbnail, dst, true) < 0 ||
        (link(src, dst) < 0 && errno != EEXIST)) {
        int e = errno;
        log_error("store: cannot store %s as %s: %s", src, sha, strerror(e));
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    int rc = store_sync(fd, dst);
    close(fd);
    if (rc < 0)
        log_error("store: fsync of %s failed: %s", dst, strerror(errno));
    return rc;
}

int store_open(const char *sha, bool thumbnail, int *fd, int64_t *size)
{
    char p[STORE_PATH_MAX];
    blob_path(sha, thumbnail, p, false);
    *fd = open(p, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        if (errno == ENOENT)
            return 1;
        log_error("store: cannot open %s: %s", p, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(*fd, &st) < 0) {
        close(*fd);
        *fd = -1;
        return -1;
    }
    *size = st.st_size;
    return 0;
}

int store_delete(const char *sha)
{
    int rc = 0;
    for (int t = 0; t < 2; t++) {
        char p[STORE_PATH_MAX];
        blob_path(sha, t == 1, p, false);
        if (unlink(p) < 0 && errno != ENOENT) {
            log_error("store: cannot remove %s: %s", p, strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

int store_sweep_parts(int64_t cutoff_s, bool (*keep)(int64_t id, void *ctx), void *ctx)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/uploads", root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (id <= 0 || strcmp(end, ".part") != 0)
            continue;
        char p[STORE_PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && st.st_mtime < cutoff_s && !(keep && keep(id, ctx)) &&
            unlink(p) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int store_sweep_tmp(int64_t cutoff_s)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tmp", root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[STORE_PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff_s && unlink(p) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
