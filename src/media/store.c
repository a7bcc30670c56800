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
#include "media/s3.h"

static char root[512];
/* The S3 store, when in use: the config and the strings it points to. */
static struct s3_config s3;
static char s3_strings[6][512];
static bool use_s3;
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
    const char *subs[] = {"blobs", "uploads", "tmp", "cache"};
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

/* The local path of blob sha (thumbnail: its .webp) into out — in blobs/,
 * or in cache/ with the S3 store; its directory is made when mkdirs. */
static int blob_path(const char *sha, bool thumbnail, char *out, bool mkdirs)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s/%.2s/%.2s", root, use_s3 ? "cache" : "blobs", sha, sha + 2);
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

/* The object key of blob sha into out (100 bytes). */
static void object_key(const char *sha, bool thumbnail, char *out)
{
    snprintf(out, 100, "blobs/%.2s/%.2s/%.64s%s", sha, sha + 2, sha, thumbnail ? ".webp" : "");
}

int store_use_s3(const struct s3_config *c)
{
    const char *src[6] = {c->endpoint,   c->region,     c->bucket,
                          c->access_key, c->secret_key, c->ca_file ? c->ca_file : ""};
    for (int i = 0; i < 6; i++) {
        if (strlen(src[i]) >= sizeof s3_strings[i])
            return -1;
        memcpy(s3_strings[i], src[i], strlen(src[i]) + 1);
    }
    s3 = (struct s3_config){s3_strings[0], s3_strings[1], s3_strings[2],
                            s3_strings[3], s3_strings[4], s3_strings[5]};
    use_s3 = true;
    return 0;
}

bool store_is_s3(void) { return use_s3; }

int store_place(const char *src, const char *sha, bool thumbnail)
{
    if (use_s3) {
        char key[100];
        object_key(sha, thumbnail, key);
        if (s3_put_file(&s3, key, src, thumbnail ? "image/webp" : NULL) != S3_OK) {
            errno = EIO;
            return -1;
        }
        return 0;
    }
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

/* Fetches blob sha from S3 into the cache (a temporary file renamed into
 * place). Returns 0, 1 when the store has no such object, -1 otherwise. */
static int fetch(const char *sha, bool thumbnail)
{
    char key[100], tmp[STORE_PATH_MAX], dst[STORE_PATH_MAX];
    object_key(sha, thumbnail, key);
    store_tmp_path(".get", tmp);
    if (blob_path(sha, thumbnail, dst, true) < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    enum s3_result r = s3_get_to_fd(&s3, key, fd);
    int rc = r == S3_OK && fsync(fd) == 0 ? 0 : r == S3_NOT_FOUND ? 1 : -1;
    close(fd);
    if (rc == 0 && rename(tmp, dst) < 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int store_open(const char *sha, bool thumbnail, int *fd, int64_t *size)
{
    char p[STORE_PATH_MAX];
    blob_path(sha, thumbnail, p, false);
    *fd = open(p, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && errno == ENOENT && use_s3) {
        int rc = fetch(sha, thumbnail);
        if (rc != 0)
            return rc;
        *fd = open(p, O_RDONLY | O_CLOEXEC);
    } else if (*fd >= 0 && use_s3) {
        futimens(*fd, NULL); /* read lately: the cache keeps it */
    }
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

void store_relative_path(const char *sha, bool thumbnail, char *out)
{
    snprintf(out, STORE_PATH_MAX, "%s/%.2s/%.2s/%.64s%s", use_s3 ? "cache" : "blobs", sha, sha + 2,
             sha, thumbnail ? ".webp" : "");
}

int store_delete(const char *sha)
{
    int rc = 0;
    for (int t = 0; use_s3 && t < 2; t++) {
        char key[100];
        object_key(sha, t == 1, key);
        if (s3_delete(&s3, key) != S3_OK)
            return -1; /* the row stays: the next round tries again */
    }
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

int store_sweep_cache(int64_t cutoff_s)
{
    if (!use_s3)
        return 0;
    int removed = 0;
    char top[600];
    snprintf(top, sizeof top, "%s/cache", root);
    DIR *d1 = opendir(top);
    struct dirent *a;
    while (d1 && (a = readdir(d1)) != NULL) {
        if (a->d_name[0] == '.')
            continue;
        char mid[900];
        snprintf(mid, sizeof mid, "%s/%.2s", top, a->d_name);
        DIR *d2 = opendir(mid);
        struct dirent *b;
        while (d2 && (b = readdir(d2)) != NULL) {
            if (b->d_name[0] == '.')
                continue;
            char leaf[1000];
            snprintf(leaf, sizeof leaf, "%s/%.2s", mid, b->d_name);
            DIR *d3 = opendir(leaf);
            struct dirent *f;
            while (d3 && (f = readdir(d3)) != NULL) {
                char p[STORE_PATH_MAX];
                struct stat st;
                snprintf(p, sizeof p, "%s/%.80s", leaf, f->d_name);
                if (f->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
                    st.st_mtime < cutoff_s && unlink(p) == 0)
                    removed++;
            }
            if (d3)
                closedir(d3);
        }
        if (d2)
            closedir(d2);
    }
    if (d1)
        closedir(d1);
    return removed;
}
