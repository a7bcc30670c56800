/* util.c — clocks, strict integer parsing and UTF-8 checks.
 *
 * Pure functions, unit-tested in tests/unit/test_util.c. */
#include "base/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int parse_int(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 16)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > JSON_INT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* Length of the UTF-8 sequence that starts at s (at most n bytes), or 0 when
 * it is not a valid, shortest-form, non-surrogate, non-NUL character. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    return len;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Decodes the code point of the valid UTF-8 sequence at p (n bytes). */
static uint32_t utf8_decode(const unsigned char *p, size_t n)
{
    if (n == 1)
        return p[0];
    uint32_t cp = p[0] & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (p[i] & 0x3F);
    return cp;
}

static bool cp_is_space(uint32_t c)
{
    return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool cp_is_hidden(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xAD || c == 0x61C || c == 0x180E ||
           c == 0x200B || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF ||
           (c >= 0xFFF9 && c <= 0xFFFB);
}

bool text_is_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t c = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        c = utf8_decode(p + i, n);
        if (cp_is_hidden(c) || (i == 0 && cp_is_space(c)))
            return false;
        i += n;
    }
    return !cp_is_space(c);
}

size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* Makes room for `more` bytes and a NUL; false (and failed set) when
 * memory ran out. */
static bool sb_reserve(struct sbuf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->s && b->cap - b->len >= more + 1)
        return true;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (s == NULL) {
        b->failed = true;
        return false;
    }
    b->s = s, b->cap = cap;
    return true;
}

/* Appends vprintf-formatted text, growing the buffer as needed: formatted
 * in place, and once more only when it did not fit. */
static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap0)
{
    for (int pass = 0; pass < 2 && !b->failed; pass++) {
        va_list ap;
        va_copy(ap, ap0);
        size_t room = b->s ? b->cap - b->len : 0;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        sb_reserve(b, (size_t)n);
    }
}

void sb_append(struct sbuf *b, const char *s, size_t len)
{
    if (!sb_reserve(b, len))
        return;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sb_item(struct sbuf *b, const char *fmt, ...)
{
    sb_printf(b, "%s", b->len ? "," : "[");
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void sb_ids(struct sbuf *b, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_item(b, "%lld", (long long)ids[i]);
}

const char *sb_done(struct sbuf *b)
{
    sb_printf(b, "%s", b->len ? "]" : "[]");
    return b->failed ? NULL : b->s;
}

int int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int int64_find(const int64_t *a, size_t n, int64_t x)
{
    const int64_t *p = bsearch(&x, a, n, sizeof *a, int64_cmp);
    return p ? (int)(p - a) : -1;
}
