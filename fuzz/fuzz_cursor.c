/* fuzz_cursor.c — cursor parsing. Invariant: only canonical cursors parse,
 * so what parses formats back to the same text. */
#include <string.h>

#include "chat/cursor.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t pos, again;
    if (cursor_parse(s, &pos) == 0) {
        char buf[CURSOR_SIZE];
        FUZZ_CHECK(cursor_format(pos, buf, sizeof buf) > 0);
        FUZZ_CHECK(strcmp(buf, s) == 0);
        FUZZ_CHECK(cursor_parse(buf, &again) == 0 && again == pos);
    }
    free(s);
    return 0;
}
