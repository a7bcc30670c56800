/* thumb.c — libvips' tools in a limited child process (thumb.h). */
#define _GNU_SOURCE /* pipe2 */
#include "media/thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* What the child runs with: nothing of chatd's environment. */
static char *const child_env[] = {
    "PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C", "VIPS_BLOCK_UNTRUSTED=1",
    "VIPS_CONCURRENCY=1", "VIPS_WARNING=0",    NULL};

/* Runs argv (argv[0] a full path) in a child under the limits; its stdout
 * into out (len bytes, NUL-terminated) when out. Returns the exit status,
 * or -1 when it could not start, was killed (signal, rlimit) or timed out. */
static int run_child(char *const argv[], const struct thumb_limits *l, char *out, size_t len)
{
    int pipefd[2] = {-1, -1};
    if (out && pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        if (out)
            close(pipefd[0]), close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: the parent has threads. */
        struct rlimit as = {(rlim_t)l->memory_bytes, (rlim_t)l->memory_bytes};
        struct rlimit cpu = {(rlim_t)(l->timeout_ms / 1000 + 1),
                             (rlim_t)(l->timeout_ms / 1000 + 2)};
        struct rlimit fsize = {64 << 20, 64 << 20}, files = {64, 64}, core = {0, 0};
        setrlimit(RLIMIT_AS, &as);
        setrlimit(RLIMIT_CPU, &cpu);
        setrlimit(RLIMIT_FSIZE, &fsize);
        setrlimit(RLIMIT_NOFILE, &files);
        setrlimit(RLIMIT_CORE, &core);
        int null = open("/dev/null", O_RDWR);
        if (null < 0)
            _exit(127);
        dup2(null, 0);
        dup2(out ? pipefd[1] : null, 1);
        dup2(null, 2);
        setsid();
        execve(argv[0], argv, child_env);
        _exit(127);
    }
    if (out)
        close(pipefd[1]);
    size_t got = 0;
    int64_t deadline = mono_ms() + l->timeout_ms;
    int status = 0;
    bool done = false, killed = false;
    if (out)
        fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    while (!done) {
        if (out && got + 1 < len) {
            ssize_t n = read(pipefd[0], out + got, len - 1 - got);
            if (n > 0)
                got += (size_t)n;
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = true;
        } else if (mono_ms() > deadline && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        } else {
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (out) {
        ssize_t n;
        while (got + 1 < len && (n = read(pipefd[0], out + got, len - 1 - got)) > 0)
            got += (size_t)n;
        out[got] = '\0';
        close(pipefd[0]);
    }
    if (killed || !WIFEXITED(status)) {
        log_warn("thumb: %s %s (%s)", argv[0], killed ? "timed out" : "was killed",
                 WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "no status");
        return -1;
    }
    return WEXITSTATUS(status);
}

/* One header field of src as an integer, or -1. */
static int64_t header_field(const char *src, const char *field, const struct thumb_limits *l,
                            int *rc)
{
    char out[64];
    char *argv[] = {"/usr/bin/vipsheader", "-f", (char *)field, (char *)src, NULL};
    *rc = run_child(argv, l, out, sizeof out);
    char *end;
    long long v = strtoll(out, &end, 10);
    return *rc == 0 && end != out && (*end == '\n' || *end == '\0') && v > 0 ? v : -1;
}

enum thumb_result thumb_probe(const char *src, const struct thumb_limits *l, int *width,
                              int *height)
{
    int rc;
    int64_t w = header_field(src, "width", l, &rc);
    if (rc < 0)
        return THUMB_FAILED;
    if (w < 0)
        return THUMB_NOT_IMAGE;
    int64_t h = header_field(src, "height", l, &rc);
    if (rc < 0)
        return THUMB_FAILED;
    if (h < 0 || w > 1000000 || h > 1000000)
        return THUMB_NOT_IMAGE;
    *width = (int)w;
    *height = (int)h;
    return THUMB_OK;
}

enum thumb_result thumb_make(const char *src, int width, int height, const char *dst,
                             const struct thumb_limits *l)
{
    if ((int64_t)width * height > l->max_pixels)
        return THUMB_TOO_BIG;
    char size[32], output[1300];
    /* ">": only ever shrink. */
    snprintf(size, sizeof size, "%dx%d>", THUMB_SIZE, THUMB_SIZE);
    snprintf(output, sizeof output, "%s[Q=75,strip]", dst);
    char *argv[] = {"/usr/bin/vipsthumbnail", (char *)src, "--size", size, "-o", output, NULL};
    int rc = run_child(argv, l, NULL, 0);
    struct stat st;
    if (rc != 0 || stat(dst, &st) < 0 || st.st_size == 0) {
        unlink(dst);
        if (rc != -1)
            log_warn("thumb: vipsthumbnail exited %d", rc);
        return THUMB_FAILED;
    }
    return THUMB_OK;
}
