/* replay.c — a main that runs a fuzz target once on each file named on the
 * command line, for builds without libFuzzer (gcc + ASan/UBSan in make
 * test). A crash aborts the process, so the exit status is the verdict;
 * the name of the file is printed before it runs. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t cap = 4096, n = 0, got;
        uint8_t *buf = malloc(cap);
        while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
            n += got;
            if (n == cap)
                buf = realloc(buf, cap *= 2);
        }
        fclose(f);
        if (buf == NULL)
            return 1;
        if (getenv("FUZZ_REPLAY_VERBOSE"))
            fprintf(stderr, "replay %s (%zu bytes)\n", argv[i], n);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
