/* test_reaction.c — reaction_valid (chat/actions.h): one emoji, of every
 * shape emoji take, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "chat/actions.h"

static bool valid(const char *s) { return reaction_valid(s, strlen(s)); }

static void test_one_emoji_of_each_shape(void **state)
{
    (void)state;
    const char *ok[] = {
        "\xf0\x9f\x91\x8d",                 /* thumbs up */
        "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", /* with a skin tone */
        "\xe2\x9d\xa4\xef\xb8\x8f",         /* heart, VS16 */
        "\xe2\x9d\xa4",                     /* heart, text style */
        "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7", /* flag: FR */
        "1\xef\xb8\x8f\xe2\x83\xa3",        /* keycap 1 */
        "#\xe2\x83\xa3",                    /* keycap # without VS16 */
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7", /* family */
        "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xb3\xf3\xa0\x81\xa3"
        "\xf3\xa0\x81\xb4\xf3\xa0\x81\xbf", /* Scotland */
        "\xe2\x98\x95",                     /* hot beverage */
        "\xf0\x9f\xab\xa0",                 /* melting face (Unicode 14) */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(valid(ok[i]));
}

static void test_anything_else_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "a",
        "1",
        ":+1:",
        "\xe2\x80\x8d",                     /* a joiner alone */
        "\xf0\x9f\x8f\xbd",                 /* a skin tone alone */
        "\xf0\x9f\x87\xab",                 /* half a flag */
        "\xf0\x9f\x91\x8d\xf0\x9f\x91\x8d", /* two emoji */
        "\xf0\x9f\x91\x8d ",                /* and a space */
        "\xf0\x9f\x91\x8d\xe2\x80\x8d",     /* a trailing joiner */
        "\xff\xfe",                         /* not UTF-8 */
        "\xf0\x9f\x91",                     /* cut short */
        "<b>",
        "\xe4\xbd\xa0", /* a CJK character */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(valid(bad[i]));
    /* Over REACTION_MAX_BYTES: a long ZWJ chain. */
    char chain[128] = "\xf0\x9f\x91\xa8";
    for (int i = 0; i < 6; i++)
        strcat(chain, "\xe2\x80\x8d\xf0\x9f\x91\xa8");
    assert_true(strlen(chain) > REACTION_MAX_BYTES);
    assert_false(valid(chain));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_emoji_of_each_shape),
        cmocka_unit_test(test_anything_else_is_refused),
    };
    return cmocka_run_group_tests_name("reaction", tests, NULL, NULL);
}
