/* test_tail.c — the in-memory stream tail (live/tail.h): a read returns the
 * events at since+1, since+2, … only while the tail holds them in a row (a
 * position before what it holds, or a gap, is a miss: 0, read the
 * database), at most limit of them; an older event never replaces a newer
 * one; a user that hashes to a taken slot evicts its holder; blobs are
 * reference-counted (every reference the tail takes is dropped again); the
 * JSON appended is that of the blobs. Also concurrent writers and readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/tail.h"

/* A blob {"user":u,"pos":p}, one reference (the caller's). */
static struct tail_blob *ev_blob(int64_t user, int64_t pos)
{
    json_t *ev = json_pack("{s:I, s:I}", "user", (json_int_t)user, "pos", (json_int_t)pos);
    assert_non_null(ev);
    struct tail_blob *b = tail_blob_of(ev);
    json_decref(ev);
    assert_non_null(b);
    return b;
}

static int refs(const struct tail_blob *b) { return atomic_load(&b->refs); }

/* Puts {"user":user,"pos":p} for p in from..to, dropping the caller's
 * reference: the tail holds the only one. */
static void put_range(int64_t user, int64_t from, int64_t to)
{
    for (int64_t p = from; p <= to; p++) {
        struct tail_blob *b = ev_blob(user, p);
        tail_put(user, p, b);
        tail_blob_unref(b);
    }
}

/* tail_read into a fresh array, checking what it returned: the events must
 * be user's at since+1 … since+n, n in 0..limit, and *next since+n when
 * n > 0. Returns n, or -1 when something was wrong. No cmocka asserts:
 * threads call it too. */
static int read_or_fail(int64_t user, int64_t since, int limit)
{
    json_t *out = json_array();
    int64_t next = -12345;
    int n = tail_read(user, since, limit, out, &next);
    bool ok = n >= 0 && n <= (limit > 0 ? limit : 0) && json_array_size(out) == (size_t)n &&
              (n == 0 || next == since + n);
    for (int i = 0; ok && i < n; i++) {
        json_t *ev = json_array_get(out, (size_t)i);
        ok = json_integer_value(json_object_get(ev, "user")) == user &&
             json_integer_value(json_object_get(ev, "pos")) == since + 1 + i;
    }
    json_decref(out);
    if (!ok)
        fprintf(stderr, "tail_read(%lld, %lld, %d) returned %d: not a run from since+1\n",
                (long long)user, (long long)since, limit, n);
    return ok ? n : -1;
}

/* read_or_fail, failing the test when the read was wrong. */
static int read_check(int64_t user, int64_t since, int limit)
{
    int n = read_or_fail(user, since, limit);
    assert_int_not_equal(n, -1);
    return n;
}

/* How many events a read from since returns, whatever they are. */
static int count(int64_t user, int64_t since)
{
    json_t *out = json_array();
    int64_t next = 0;
    int n = tail_read(user, since, 100, out, &next);
    json_decref(out);
    return n;
}

static int teardown(void **state)
{
    (void)state;
    tail_shutdown();
    return 0;
}

static void test_blob_new_and_of(void **state)
{
    (void)state;
    /* a copy of exactly len bytes, NUL-terminated, one reference */
    const char src[] = "{\"a\":1}TRAILING";
    struct tail_blob *b = tail_blob_new(src, 7);
    assert_non_null(b);
    assert_int_equal(b->len, 7);
    assert_string_equal(b->json, "{\"a\":1}");
    assert_int_equal(refs(b), 1);
    assert_ptr_equal(tail_blob_ref(b), b);
    assert_int_equal(refs(b), 2);
    tail_blob_unref(b);
    assert_int_equal(refs(b), 1);
    tail_blob_unref(b); /* frees: ASan reports a leak otherwise */

    /* the compact JSON of an event, which the caller keeps */
    json_t *ev = json_pack("{s:s, s:I, s:[i,i]}", "type", "message", "seq", (json_int_t)7, "x", 1,
                           2);
    b = tail_blob_of(ev);
    assert_non_null(b);
    assert_int_equal(json_object_size(ev), 3); /* not stolen */
    assert_int_equal(b->len, strlen(b->json));
    assert_null(strchr(b->json, ' '));
    assert_null(strchr(b->json, '\n'));
    json_t *back = json_loads(b->json, 0, NULL);
    assert_true(json_equal(back, ev));
    json_decref(back);
    json_decref(ev);
    tail_blob_unref(b);

    /* NULL is ignored */
    assert_null(tail_blob_ref(NULL));
    tail_blob_unref(NULL);
}

static void test_read_inside_the_tail(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    put_range(1, 1, 10);
    assert_int_equal(read_check(1, 0, 100), 10);
    assert_int_equal(read_check(1, 4, 100), 6);
    assert_int_equal(read_check(1, 9, 100), 1);
    /* at the end of what it holds: nothing (the caller reads the database,
     * which then has nothing either, or more than the tail was given) */
    assert_int_equal(read_check(1, 10, 100), 0);
    assert_int_equal(read_check(1, 50, 100), 0);
    /* a user the tail holds nothing of */
    assert_int_equal(read_check(2, 0, 100), 0);
}

static void test_appends_to_the_array_and_keeps_the_json(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    json_t *ev1 = json_pack("{s:s, s:{s:I, s:s}}", "type", "message", "message", "seq",
                            (json_int_t)1, "body", "h\xc3\xa9llo \"quoted\" \\ \xe2\x82\xac");
    json_t *ev2 = json_pack("{s:s, s:I, s:n}", "type", "receipt", "read_seq", (json_int_t)1,
                            "nothing");
    struct tail_blob *b1 = tail_blob_of(ev1), *b2 = tail_blob_of(ev2);
    tail_put(5, 1, b1);
    tail_put(5, 2, b2);
    tail_blob_unref(b1);
    tail_blob_unref(b2);

    json_t *out = json_pack("[s]", "already there");
    int64_t next = 0;
    assert_int_equal(tail_read(5, 0, 10, out, &next), 2);
    assert_int_equal(next, 2);
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(json_string_value(json_array_get(out, 0)), "already there");
    assert_true(json_equal(json_array_get(out, 1), ev1));
    assert_true(json_equal(json_array_get(out, 2), ev2));

    /* the events read are the reader's own: the tail may drop its blobs */
    tail_shutdown();
    assert_int_equal(tail_init(8), 0);
    assert_true(json_equal(json_array_get(out, 1), ev1));
    json_decref(out);
    json_decref(ev1);
    json_decref(ev2);
}

static void test_before_what_the_tail_holds_is_a_miss(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    /* 40 events: the tail keeps the last TAIL_EVENTS (25..40) */
    put_range(3, 1, 40);
    int64_t first = 40 - TAIL_EVENTS + 1;
    for (int64_t since = 0; since < first - 1; since++)
        assert_int_equal(read_check(3, since, 100), 0);
    /* from just before the oldest held: all of them, not more */
    assert_int_equal(read_check(3, first - 1, 100), TAIL_EVENTS);
    assert_int_equal(read_check(3, first + 5, 100), TAIL_EVENTS - 6);
}

static void test_limit(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    put_range(4, 1, 12);
    assert_int_equal(read_check(4, 0, 3), 3);
    assert_int_equal(read_check(4, 3, 3), 3);
    assert_int_equal(read_check(4, 10, 3), 2);
    assert_int_equal(read_check(4, 0, 1), 1);
    assert_int_equal(read_check(4, 0, 0), 0);
    assert_int_equal(read_check(4, 0, -1), 0);
    /* never more than TAIL_EVENTS in one read, whatever the limit */
    put_range(4, 13, 3 * TAIL_EVENTS);
    assert_int_equal(read_check(4, 2 * TAIL_EVENTS, 1000), TAIL_EVENTS);
}

static void test_a_gap_ends_the_read(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    /* 3 and 6 were appended by something that does not publish here */
    put_range(6, 1, 2);
    put_range(6, 4, 5);
    put_range(6, 7, 9);
    assert_int_equal(read_check(6, 0, 100), 2);
    assert_int_equal(read_check(6, 2, 100), 0);
    assert_int_equal(read_check(6, 3, 100), 2);
    assert_int_equal(read_check(6, 5, 100), 0);
    assert_int_equal(read_check(6, 6, 100), 3);
    /* a position far ahead takes an entry over; the old one there is gone */
    put_range(6, 1 + 5 * TAIL_EVENTS, 1 + 5 * TAIL_EVENTS);
    assert_int_equal(read_check(6, 0, 100), 0);
    assert_int_equal(read_check(6, 5 * TAIL_EVENTS, 100), 1);
    assert_int_equal(read_check(6, 1, 100), 1); /* 2 is still there, 3 still missing */
}

static void test_an_older_event_never_replaces_a_newer_one(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    int64_t newer = 4 + TAIL_EVENTS; /* the same entry as 4 */
    struct tail_blob *n = ev_blob(7, newer), *o = ev_blob(7, 4);
    tail_put(7, newer, n);
    assert_int_equal(refs(n), 2);
    tail_put(7, 4, o); /* a late publisher */
    assert_int_equal(refs(o), 1);
    assert_int_equal(refs(n), 2);
    assert_int_equal(read_check(7, 3, 100), 0);
    assert_int_equal(read_check(7, newer - 1, 100), 1);
    tail_blob_unref(o);

    /* the same position again: the later blob is kept, the earlier dropped */
    json_t *ev = json_pack("{s:I, s:I, s:b}", "user", (json_int_t)7, "pos", (json_int_t)newer,
                           "again", 1);
    struct tail_blob *again = tail_blob_of(ev);
    tail_put(7, newer, again);
    assert_int_equal(refs(n), 1);
    assert_int_equal(refs(again), 2);
    json_t *out = json_array();
    int64_t next = 0;
    assert_int_equal(tail_read(7, newer - 1, 10, out, &next), 1);
    assert_true(json_equal(json_array_get(out, 0), ev));
    json_decref(out);
    json_decref(ev);
    tail_blob_unref(n);
    tail_blob_unref(again);
}

static void test_refcounts(void **state)
{
    (void)state;
    assert_int_equal(tail_init(64), 0);
    /* one blob in the tails of three users (one event fanned out) */
    struct tail_blob *b = tail_blob_new("{\"type\":\"message\"}", 18);
    tail_put(10, 1, b);
    tail_put(11, 5, b);
    tail_put(12, 9, b);
    assert_int_equal(refs(b), 4);
    /* a read takes its references back before returning */
    json_t *out = json_array();
    int64_t next = 0;
    assert_int_equal(tail_read(11, 4, 10, out, &next), 1);
    assert_int_equal(refs(b), 4);
    json_decref(out);
    /* positions ≤ 0 and a NULL blob are ignored */
    tail_put(10, 0, b);
    tail_put(10, -3, b);
    tail_put(10, 2, NULL);
    assert_int_equal(refs(b), 4);
    /* replacing an entry drops the old blob's reference */
    struct tail_blob *c = tail_blob_new("{}", 2);
    tail_put(10, 1 + TAIL_EVENTS, c);
    assert_int_equal(refs(b), 3);
    assert_int_equal(refs(c), 2);
    /* shutdown drops every reference the tail held */
    tail_shutdown();
    assert_int_equal(refs(b), 1);
    assert_int_equal(refs(c), 1);
    tail_blob_unref(b);
    tail_blob_unref(c);
}

static void test_off(void **state)
{
    (void)state;
    assert_int_equal(tail_init(0), 0);
    struct tail_blob *b = ev_blob(1, 1);
    tail_put(1, 1, b);
    assert_int_equal(refs(b), 1); /* not held */
    json_t *out = json_array();
    int64_t next = 77;
    assert_int_equal(tail_read(1, 0, 10, out, &next), 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    tail_blob_unref(b);
}

static void test_a_newcomer_evicts(void **state)
{
    (void)state;
    /* one slot: every user hashes to it */
    assert_int_equal(tail_init(1), 0);
    struct tail_blob *a = ev_blob(20, 1), *b = ev_blob(21, 1);
    tail_put(20, 1, a);
    tail_put(20, 2, a); /* (the blob says pos 1: count, do not read_check) */
    assert_int_equal(refs(a), 3);
    assert_int_equal(count(20, 0), 2);
    tail_put(21, 1, b);
    assert_int_equal(refs(a), 1); /* all of user 20's entries were dropped */
    assert_int_equal(refs(b), 2);
    /* neither a miss nor the other user's events for the evicted one */
    assert_int_equal(read_check(20, 0, 10), 0);
    assert_int_equal(read_check(21, 0, 10), 1);
    /* and back */
    put_range(20, 5, 6);
    assert_int_equal(refs(b), 1);
    assert_int_equal(read_check(21, 0, 10), 0);
    assert_int_equal(read_check(20, 4, 10), 2);
    tail_blob_unref(a);
    tail_blob_unref(b);
}

static void test_more_users_than_slots(void **state)
{
    (void)state;
    /* 4 slots, 40 users: most are evicted, none reads another's events, and
     * the last writer of a slot is always still there */
    enum { SLOTS = 4, USERS = 40 };
    assert_int_equal(tail_init(SLOTS), 0);
    for (int64_t u = 1; u <= USERS; u++)
        put_range(1000 + u, 1, 3);
    int held = 0;
    for (int64_t u = 1; u <= USERS; u++) {
        int n = read_check(1000 + u, 0, 10); /* checks the events are u's */
        assert_true(n == 0 || n == 3);
        held += n == 3;
    }
    assert_in_range(held, 1, SLOTS);
    assert_int_equal(read_check(1000 + USERS, 0, 10), 3);
}

/* Writers publish their users' events in order while readers read; every
 * read must be a run of the reader's user's events from since+1 on. */
#define WRITERS 4
#define ROUNDS 3000

static void *writer(void *arg)
{
    int64_t user = (intptr_t)arg;
    put_range(user, 1, ROUNDS);
    return NULL;
}

static _Atomic int bad_reads;

static void *reader(void *arg)
{
    int64_t user = (intptr_t)arg;
    int64_t since = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int n = read_or_fail(user, since, 1 + i % (TAIL_EVENTS + 4));
        if (n < 0)
            atomic_fetch_add(&bad_reads, 1);
        /* follow the stream; now and then start again from the beginning */
        since = n > 0 ? since + n : (i % 7 == 0 ? 0 : since);
    }
    return NULL;
}

static void test_concurrent_writers_and_readers(void **state)
{
    (void)state;
    assert_int_equal(tail_init(2), 0); /* few slots: evictions under way */
    pthread_t w[WRITERS], r[WRITERS];
    for (intptr_t i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_create(&w[i], NULL, writer, (void *)(i + 1)), 0);
        assert_int_equal(pthread_create(&r[i], NULL, reader, (void *)(i + 1)), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i], NULL);
        pthread_join(r[i], NULL);
    }
    assert_int_equal(bad_reads, 0);
    /* afterwards each slot holds the newest event of the writer that put
     * last into it (all four share two slots) */
    int held = 0;
    for (int64_t u = 1; u <= WRITERS; u++) {
        int n = read_check(u, ROUNDS - 1, 100);
        assert_in_range(n, 0, 1);
        held += n;
    }
    assert_in_range(held, 1, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_new_and_of),
        cmocka_unit_test_teardown(test_read_inside_the_tail, teardown),
        cmocka_unit_test_teardown(test_appends_to_the_array_and_keeps_the_json, teardown),
        cmocka_unit_test_teardown(test_before_what_the_tail_holds_is_a_miss, teardown),
        cmocka_unit_test_teardown(test_limit, teardown),
        cmocka_unit_test_teardown(test_a_gap_ends_the_read, teardown),
        cmocka_unit_test_teardown(test_an_older_event_never_replaces_a_newer_one, teardown),
        cmocka_unit_test_teardown(test_refcounts, teardown),
        cmocka_unit_test_teardown(test_off, teardown),
        cmocka_unit_test_teardown(test_a_newcomer_evicts, teardown),
        cmocka_unit_test_teardown(test_more_users_than_slots, teardown),
        cmocka_unit_test_teardown(test_concurrent_writers_and_readers, teardown),
    };
    return cmocka_run_group_tests_name("tail", tests, NULL, NULL);
}
