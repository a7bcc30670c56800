/* test_hub.c — the id map and the hub's park/wake state machine, with a fake
 * resume function in place of libmicrohttpd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "chat/events.h"
#include "live/hub.h"
#include "base/idmap.h"
#include "base/util.h"

/* Written by the hub's timer thread (deadlines), read by the tests. */
static atomic_int resumed[8];

static void fake_resume(void *conn) { resumed[(intptr_t)conn]++; }

static int conn_id(int i) { return i; }
#define CONN(i) ((void *)(intptr_t)conn_id(i))

static void test_idmap(void **state)
{
    (void)state;
    struct idmap m = {0};
    /* Enough keys to grow several times and to collide; delete half, in an
     * order that exercises backward shifts. */
    for (int64_t k = 1; k <= 5000; k++)
        assert_int_equal(idmap_put(&m, k * 7919, (void *)(intptr_t)k), 0);
    assert_int_equal(m.count, 5000);
    for (int64_t k = 1; k <= 5000; k += 2)
        assert_ptr_equal(idmap_del(&m, k * 7919), (void *)(intptr_t)k);
    for (int64_t k = 1; k <= 5000; k++)
        assert_ptr_equal(idmap_get(&m, k * 7919), k % 2 ? NULL : (void *)(intptr_t)k);
    assert_null(idmap_del(&m, 12345678));
    assert_int_equal(idmap_put(&m, 2 * 7919, (void *)(intptr_t)99), 0);
    assert_ptr_equal(idmap_get(&m, 2 * 7919), (void *)(intptr_t)99);
    assert_int_equal(m.count, 2500);
    idmap_free(&m);
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        resumed[i] = 0;
    return 0;
}

static void test_notify_wakes_parked_once(void **state)
{
    (void)state;
    struct waiter *w = hub_register(10, 100, mono_ms() + 60000);
    hub_begin(w);
    hub_sleep(w, CONN(1));
    assert_int_equal(resumed[1], 0);
    int64_t user = 10;
    hub_notify(&user, 1);
    hub_notify(&user, 1); /* a second wake-up before the handler runs: no second resume */
    assert_int_equal(resumed[1], 1);
    hub_begin(w);
    assert_false(hub_should_answer(w));
    hub_release(w);
}

static void test_notify_before_sleep_is_not_lost(void **state)
{
    (void)state;
    struct waiter *w = hub_register(11, 101, mono_ms() + 60000);
    hub_begin(w);
    int64_t user = 11;
    hub_notify(&user, 1); /* a commit lands between the read and the park */
    assert_int_equal(resumed[2], 0);
    hub_sleep(w, CONN(2));
    assert_int_equal(resumed[2], 1);
    hub_release(w);
}

static void test_other_users_not_woken(void **state)
{
    (void)state;
    struct waiter *w = hub_register(12, 102, mono_ms() + 60000);
    hub_begin(w);
    hub_sleep(w, CONN(3));
    int64_t other = 13;
    hub_notify(&other, 1);
    assert_int_equal(resumed[3], 0);
    assert_int_equal(hub_user_polls(12), 1);
    hub_release(w);
    assert_int_equal(hub_user_polls(12), 0);
}

static void test_deadline(void **state)
{
    (void)state;
    struct waiter *w = hub_register(14, 104, mono_ms() + 150);
    hub_begin(w);
    hub_sleep(w, CONN(4));
    for (int i = 0; i < 100 && resumed[4] == 0; i++)
        usleep(20000);
    assert_int_equal(resumed[4], 1);
    hub_begin(w);
    assert_true(hub_should_answer(w));
    hub_release(w);
}

static void test_newer_poll_of_session_answers_older(void **state)
{
    (void)state;
    struct waiter *a = hub_register(15, 105, mono_ms() + 60000);
    hub_begin(a);
    hub_sleep(a, CONN(5));
    struct waiter *b = hub_register(15, 105, mono_ms() + 60000);
    assert_int_equal(resumed[5], 1);
    hub_begin(a);
    assert_true(hub_should_answer(a));
    hub_begin(b);
    assert_false(hub_should_answer(b));
    hub_release(a);
    hub_release(b);
}

static void test_ephemeral(void **state)
{
    (void)state;
    struct waiter *w = hub_register(16, 106, mono_ms() + 60000);
    hub_begin(w);
    hub_sleep(w, CONN(6));
    int64_t user = 16;
    json_t *ev = json_pack("{s:s, s:i}", "type", "typing", "thread_id", 1);
    hub_emit(&user, 1, ev);
    json_decref(ev);
    assert_int_equal(resumed[6], 1);
    hub_begin(w);
    json_t *got = hub_take_ephemeral(w);
    assert_int_equal(json_array_size(got), 1);
    json_decref(got);
    hub_release(w);
    /* A poll of the same session coming just after does not get it again;
     * another session of the user, polling within seconds, does. */
    struct waiter *again = hub_register(16, 106, mono_ms() + 60000);
    got = hub_take_ephemeral(again);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    hub_release(again);
    struct waiter *other = hub_register(16, 107, mono_ms() + 60000);
    got = hub_take_ephemeral(other);
    assert_int_equal(json_array_size(got), 1);
    json_decref(got);
    hub_release(other);
}

static void test_message_drops_stale_typing(void **state)
{
    (void)state;
    int64_t user = 17;
    json_t *typing = events_typing_view(5, 9);
    json_t *other = events_typing_view(6, 9);
    int64_t of[2] = {5, 9};
    hub_emit(&user, 1, typing);
    hub_emit(&user, 1, other);
    /* User 9's message in thread 5 was stored: only that typing goes. */
    hub_drop_ephemeral(&user, 1, events_is_typing, of);
    struct waiter *w = hub_register(17, 108, mono_ms() + 60000);
    json_t *got = hub_take_ephemeral(w);
    assert_int_equal(json_array_size(got), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(got, 0), "thread_id")), 6);
    json_decref(got);
    /* Queued to a parked poll, it goes as well. */
    hub_begin(w);
    hub_emit(&user, 1, typing);
    hub_drop_ephemeral(&user, 1, events_is_typing, of);
    got = hub_take_ephemeral(w);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    hub_release(w);
    json_decref(typing);
    json_decref(other);
}

int main(void)
{
    hub_init(fake_resume);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap),
        cmocka_unit_test_setup(test_notify_wakes_parked_once, setup),
        cmocka_unit_test_setup(test_notify_before_sleep_is_not_lost, setup),
        cmocka_unit_test_setup(test_other_users_not_woken, setup),
        cmocka_unit_test_setup(test_deadline, setup),
        cmocka_unit_test_setup(test_newer_poll_of_session_answers_older, setup),
        cmocka_unit_test_setup(test_ephemeral, setup),
        cmocka_unit_test_setup(test_message_drops_stale_typing, setup),
    };
    int rc = cmocka_run_group_tests_name("hub", tests, NULL, NULL);
    hub_shutdown();
    return rc;
}
