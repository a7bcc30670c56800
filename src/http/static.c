/* static.c — the browser app: files under www_root, index.html for any path
 * that names no file (client-side routes), and never a file outside the root.
 *
 * The request path is already percent-decoded by the glue. A path with a
 * ".." segment or a NUL is refused before touching the file system; the
 * resolved path (symlinks followed) must still lie under the root.
 *
 * May call: base. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "http/static.h"

static char root_path[PATH_MAX];

int static_init(const char *root)
{
    if (realpath(root, root_path) == NULL) {
        log_warn("static: www_root '%s' does not exist; serving no browser app", root);
        root_path[0] = '\0';
    }
    return 0;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Opens root/rel when it is a regular file under the root; -1 otherwise. */
static int open_under_root(const char *rel, char *resolved, int64_t *size)
{
    char joined[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s/%s", root_path, rel) >= (int)sizeof joined)
        return -1;
    if (realpath(joined, resolved) == NULL)
        return -1;
    size_t rlen = strlen(root_path);
    if (strncmp(resolved, root_path, rlen) != 0 || resolved[rlen] != '/')
        return -1;
    int fd = open(resolved, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

enum handler_status static_serve(struct request *req, struct response *res)
{
    const char *path = req->path;
    if (root_path[0] == '\0')
        return resp_problem(res, 404, "not_found", "no browser app is installed");
    if (strstr(path, "/../") || (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
        return resp_problem(res, 404, "not_found", "no such file");
    char resolved[PATH_MAX];
    int64_t size = 0;
    const char *rel = path[0] == '/' ? path + 1 : path;
    int fd = *rel ? open_under_root(rel, resolved, &size) : -1;
    if (fd < 0)
        fd = open_under_root("index.html", resolved, &size);
    if (fd < 0)
        return resp_problem(res, 404, "not_found", "no such file");
    res->fd = fd;
    res->fd_size = size;
    res->status = 200;
    res->content_type = content_type(resolved);
    return HANDLER_DONE;
}
