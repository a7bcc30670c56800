/* fuzz_config.c — the configuration file parser (config_load_file: `key =
 * value` lines, comments, every key's type and range check) on the input as
 * a file's contents, read through a memfd so no file is written. Invariant:
 * a refusal comes with a message; strings stay NUL-terminated. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("chatd-fuzz-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct config cfg;
    config_defaults(&cfg);
    char err[512] = "";
    if (config_load_file(&cfg, path, true, err, sizeof err) < 0)
        FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(memchr(cfg.listen, '\0', sizeof cfg.listen) != NULL);
    FUZZ_CHECK(memchr(cfg.db_url, '\0', sizeof cfg.db_url) != NULL);
    FUZZ_CHECK(memchr(cfg.push_ca_file, '\0', sizeof cfg.push_ca_file) != NULL);
    return 0;
}
