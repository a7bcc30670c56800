/* cursor.c — inbox cursors: formatting and strict parsing (cursor.h). */
#include "chat/cursor.h"

#include <stdio.h>

#include "base/util.h"

int cursor_format(int64_t pos, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    if (pos < 0 || pos > JSON_INT_MAX)
        return -1;
    int n = snprintf(buf, len, "%lld", (long long)pos);
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return -1;
    }
    return n;
}

int cursor_parse(const char *s, int64_t *pos)
{
    /* parse_int takes digits only, at most 16 of them, up to JSON_INT_MAX;
     * a cursor_format output has no leading zero either */
    if (s == NULL || (s[0] == '0' && s[1] != '\0'))
        return -1;
    return parse_int(s, pos);
}
