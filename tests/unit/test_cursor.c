/* test_cursor.c — inbox cursors (chat/cursor.h): cursor_format writes the
 * decimal of a position in 0..JSON_INT_MAX and refuses the rest or a short
 * buffer; cursor_parse accepts exactly the strings cursor_format produces
 * (checked exhaustively over short strings) and gives the position back;
 * and it refuses only leading zeros beyond what parse_int refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "chat/cursor.h"

#define UNTOUCHED ((int64_t)-777)

static void check_accepts(const char *s, int64_t want)
{
    int64_t pos = UNTOUCHED;
    if (cursor_parse(s, &pos) != 0)
        fail_msg("cursor_parse(\"%s\") refused it", s);
    assert_int_equal(pos, want);
}

static void check_refuses(const char *s)
{
    int64_t pos = UNTOUCHED;
    if (cursor_parse(s, &pos) != -1)
        fail_msg("cursor_parse(\"%s\") accepted it as %lld", s ? s : "(null)", (long long)pos);
    assert_int_equal(pos, UNTOUCHED);
}

static void test_format(void **state)
{
    (void)state;
    char buf[CURSOR_SIZE];
    assert_int_equal(cursor_format(0, buf, sizeof buf), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(cursor_format(7, buf, sizeof buf), 1);
    assert_string_equal(buf, "7");
    assert_int_equal(cursor_format(10, buf, sizeof buf), 2);
    assert_string_equal(buf, "10");
    assert_int_equal(cursor_format(1234567890123LL, buf, sizeof buf), 13);
    assert_string_equal(buf, "1234567890123");
    assert_int_equal(cursor_format(JSON_INT_MAX, buf, sizeof buf), 16);
    assert_string_equal(buf, "9007199254740992");
    /* the same as the inbox's snprintf("%lld") for every position */
    for (int64_t p = 1; p <= JSON_INT_MAX && p > 0; p = p * 3 + 1) {
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)p);
        assert_int_equal(cursor_format(p, buf, sizeof buf), (int)strlen(want));
        assert_string_equal(buf, want);
    }
}

static void test_format_refuses(void **state)
{
    (void)state;
    char buf[CURSOR_SIZE];
    /* not a position */
    strcpy(buf, "junk");
    assert_int_equal(cursor_format(-1, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    strcpy(buf, "junk");
    assert_int_equal(cursor_format(JSON_INT_MAX + 1, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    assert_int_equal(cursor_format(INT64_MIN, buf, sizeof buf), -1);
    assert_int_equal(cursor_format(INT64_MAX, buf, sizeof buf), -1);
    /* a buffer too small by one (no room for the NUL), and just enough */
    char small[4] = "xyz";
    assert_int_equal(cursor_format(1234, small, sizeof small), -1);
    assert_string_equal(small, "");
    assert_int_equal(cursor_format(123, small, sizeof small), 3);
    assert_string_equal(small, "123");
    char one[1] = {'x'};
    assert_int_equal(cursor_format(5, one, 1), -1);
    assert_int_equal(one[0], '\0');
    assert_int_equal(cursor_format(5, NULL, 0), -1);
}

static void test_parse_accepts(void **state)
{
    (void)state;
    check_accepts("0", 0);
    check_accepts("1", 1);
    check_accepts("10", 10);
    check_accepts("42", 42);
    check_accepts("1000000", 1000000);
    check_accepts("9007199254740991", JSON_INT_MAX - 1);
    check_accepts("9007199254740992", JSON_INT_MAX);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        " ",
        "+1",
        "-1",
        "-0",
        "+0",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "\n",
        "1 2",
        "01",
        "00",
        "000",
        "007",
        "0000000000000001",
        "0000000000000000",
        "1.5",
        "1.0",
        "1e3",
        "0x10",
        "1,000",
        "1_000",
        "abc",
        "1a",
        "a1",
        "\xef\xbc\x91",            /* a fullwidth digit one */
        "9007199254740993",        /* JSON_INT_MAX + 1 */
        "9999999999999999",        /* 16 digits, too big */
        "10000000000000000",       /* 17 digits */
        "9223372036854775807",     /* INT64_MAX */
        "9223372036854775808",     /* INT64_MAX + 1 */
        "18446744073709551617",    /* wraps a uint64 to 1 */
        "99999999999999999999999", /* the API test's garbage */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_refuses(bad[i]);
    /* a NUL ends the string: what follows it is not seen */
    check_accepts("12\0junk", 12);
}

/* Every string of up to 4 characters over digits and a few others: parse
 * accepts it exactly when formatting the value gives the same string back. */
static void test_parse_accepts_exactly_what_format_produces(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789+- a";
    const size_t k = sizeof alphabet - 1;
    int accepted = 0;
    for (size_t len = 1; len <= 4; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= k;
        for (size_t n = 0; n < total; n++) {
            char s[5] = {0};
            for (size_t i = 0, x = n; i < len; i++, x /= k)
                s[i] = alphabet[x % k];
            int64_t pos = UNTOUCHED;
            int rc = cursor_parse(s, &pos);
            char back[CURSOR_SIZE];
            bool canonical = rc == 0 && cursor_format(pos, back, sizeof back) > 0 &&
                             strcmp(back, s) == 0;
            if ((rc == 0) != canonical || (rc != 0 && pos != UNTOUCHED))
                fail_msg("cursor_parse(\"%s\") = %d, %lld", s, rc, (long long)pos);
            accepted += rc == 0;
        }
    }
    assert_int_equal(accepted, 10000); /* 0..9999, once each */
}

static void test_round_trip(void **state)
{
    (void)state;
    int64_t values[] = {0,
                        1,
                        9,
                        10,
                        99,
                        100,
                        65535,
                        65536,
                        2147483647LL,
                        2147483648LL,
                        4294967296LL,
                        999999999999999LL,
                        1000000000000000LL,
                        JSON_INT_MAX - 1,
                        JSON_INT_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[CURSOR_SIZE];
        assert_true(cursor_format(values[i], buf, sizeof buf) > 0);
        check_accepts(buf, values[i]);
    }
    uint64_t x = 88172645463325252ULL; /* xorshift64: fixed, reproducible */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v = (int64_t)(x % ((uint64_t)JSON_INT_MAX + 1) >> (x % 53));
        char buf[CURSOR_SIZE];
        int n = cursor_format(v, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(buf));
        check_accepts(buf, v);
    }
}

/* What the inbox accepted before (parse_int) and cursor_parse differ only
 * in leading zeros. */
static void test_compared_with_parse_int(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0",
        "5",
        "00",
        "05",
        "0005",
        "123",
        "0123",
        "9007199254740992",
        "09007199254740992",
        "0000000000000000",
        "9007199254740993",
        "",
        "-1",
        "+1",
        " 1",
        "x",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i];
        int64_t a = UNTOUCHED, b = UNTOUCHED;
        int old = parse_int(s, &a), now = cursor_parse(s, &b);
        bool leading_zero = s[0] == '0' && s[1] != '\0';
        if (leading_zero) {
            assert_int_equal(now, -1);
        } else {
            assert_int_equal(now, old);
            assert_int_equal(b, a);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_refuses),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_parse_accepts_exactly_what_format_produces),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_compared_with_parse_int),
    };
    return cmocka_run_group_tests_name("cursor", tests, NULL, NULL);
}
