/* test_ratelimit.c — token buckets (base/ratelimit.h) on an injected clock:
 * a burst then a refusal with the seconds to the next token, refill at the
 * set rate without losing fractions to frequent takes, independent keys
 * and kinds, "0 = unlimited", and a full table that keeps taking new keys
 * (reusing the stalest slots) while the busy keys keep their state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "base/ratelimit.h"

static void set(int per_min, int burst)
{
    struct rl_setting s[RL_KINDS] = {0};
    s[RL_SEND] = (struct rl_setting){per_min, burst};
    s[RL_TYPING] = (struct rl_setting){per_min, burst};
    ratelimit_init(s);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    set(60, 3); /* a token a second */
    int wait = -1;
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(RL_SEND, 7, 1000, &wait));
    assert_false(ratelimit_take(RL_SEND, 7, 1000, &wait));
    assert_int_equal(wait, 1);
    assert_false(ratelimit_take(RL_SEND, 7, 1999, &wait)); /* 0.999 of a token */
    assert_true(ratelimit_take(RL_SEND, 7, 2000, &wait));
    /* slow rates: 6 a minute is a token every 10 s */
    set(6, 1);
    assert_true(ratelimit_take(RL_SEND, 7, 0, &wait));
    assert_false(ratelimit_take(RL_SEND, 7, 0, &wait));
    assert_int_equal(wait, 10);
    assert_false(ratelimit_take(RL_SEND, 7, 4000, &wait));
    assert_int_equal(wait, 6);
}

static void test_refill_keeps_fractions(void **state)
{
    (void)state;
    set(6, 1);
    int wait;
    assert_true(ratelimit_take(RL_SEND, 1, 0, &wait));
    /* refused every millisecond: the time still adds up to a token at 10 s */
    for (int64_t t = 1; t < 10000; t++)
        assert_false(ratelimit_take(RL_SEND, 1, t, &wait));
    assert_true(ratelimit_take(RL_SEND, 1, 10000, &wait));
}

static void test_keys_and_kinds_are_independent(void **state)
{
    (void)state;
    set(60, 1);
    int wait;
    assert_true(ratelimit_take(RL_SEND, 1, 0, &wait));
    assert_false(ratelimit_take(RL_SEND, 1, 0, &wait));
    assert_true(ratelimit_take(RL_SEND, 2, 0, &wait));
    assert_true(ratelimit_take(RL_TYPING, 1, 0, &wait));
    /* unlimited kinds always pass */
    for (int i = 0; i < 1000; i++)
        assert_true(ratelimit_take(RL_LOGIN_ADDR, 1, 0, &wait));
    assert_int_not_equal(ratelimit_key("127.0.0.1"), ratelimit_key("127.0.0.2"));
}

static void test_a_full_table_reuses_the_stalest(void **state)
{
    (void)state;
    set(1, 1); /* a token a minute: the busy key stays refused for the whole test */
    int wait;
    assert_true(ratelimit_take(RL_SEND, 424242, 0, &wait));
    /* four times as many keys as slots over 26 s; every new key gets a full
     * bucket, and the busy key, refused again every 4,096 keys, keeps its
     * empty one (a table that evicted it would let it through) */
    for (uint64_t k = 1; k <= 4 * RATELIMIT_SLOTS; k++) {
        int64_t now = (int64_t)(k / 10);
        assert_true(ratelimit_take(RL_SEND, 1000000 + k, now, &wait));
        if (k % 4096 == 0)
            assert_false(ratelimit_take(RL_SEND, 424242, now, &wait));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill_keeps_fractions),
        cmocka_unit_test(test_keys_and_kinds_are_independent),
        cmocka_unit_test(test_a_full_table_reuses_the_stalest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
