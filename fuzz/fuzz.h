/* fuzz.h — what every fuzz target shares: the libFuzzer entry point and a
 * check that aborts (so that both libFuzzer and the replay main report it as
 * a crash with the input that caused it).
 *
 * A target is one file fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput();
 * it is built twice: with clang -fsanitize=fuzzer (make fuzz) and with gcc
 * against fuzz/replay.c (make fuzz-replay, part of make test). */
#ifndef CHAT_FUZZ_H
#define CHAT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs the code under test on size bytes of data. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when cond is false: an invariant the code promises. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
