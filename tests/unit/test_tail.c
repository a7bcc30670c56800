/* test_tail.c — the in-memory stream tail (live/tail.h): positions have
 * gaps and every event names its user's previous one, so a read from since
 * follows the chain (the event whose prev is since, then the one whose prev
 * is that one's position, …) only while the tail holds every link of it (a
 * position before what it holds, one that is not an event's, or a missing
 * link is a miss: 0, read the database), at most limit (and TAIL_EVENTS) of
 * them; a late event completes the chain once it is put; an older event
 * never replaces a newer one, and the same position put again keeps the
 * later blob; a user that hashes to a taken slot evicts its holder; blobs are
 * reference-counted (every reference the tail takes is dropped again, and
 * ignored puts take none); the JSON appended is that of the blobs. Also
 * concurrent writers and readers. */
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

/* A blob {"user":u,"pos":p,"prev":q}, one reference (the caller's). */
static struct tail_blob *ev_blob(int64_t user, int64_t pos, int64_t prev)
{
    json_t *ev = json_pack("{s:I, s:I, s:I}", "user", (json_int_t)user, "pos", (json_int_t)pos,
                           "prev", (json_int_t)prev);
    assert_non_null(ev);
    struct tail_blob *b = tail_blob_of(ev);
    json_decref(ev);
    assert_non_null(b);
    return b;
}

static int refs(const struct tail_blob *b) { return atomic_load(&b->refs); }

/* tail_read, with the events' JSON parsed and appended to out (the
 * references taken dropped again): what the inbox answers with. */
static int read_json(int64_t user, int64_t since, int limit, json_t *out, int64_t *next)
{
    struct tail_blob *got[TAIL_EVENTS];
    int n = tail_read(user, since, limit, got, next);
    for (int i = 0; i < n; i++) {
        json_array_append_new(out, json_loadb(got[i]->json, got[i]->len, 0, NULL));
        tail_blob_unref(got[i]);
    }
    return n;
}

/* A blob of the JSON text json (parsed, then tail_blob_of), one reference. */
static struct tail_blob *text_blob(const char *json)
{
    json_t *ev = json_loads(json, 0, NULL);
    assert_non_null(ev);
    struct tail_blob *b = tail_blob_of(ev);
    json_decref(ev);
    assert_non_null(b);
    return b;
}

/* Puts user's event at pos after prev, dropping the caller's reference: the
 * tail holds the only one. No cmocka asserts on the way: threads call it. */
static void put_one(int64_t user, int64_t pos, int64_t prev)
{
    json_t *ev = json_pack("{s:I, s:I, s:I}", "user", (json_int_t)user, "pos", (json_int_t)pos,
                           "prev", (json_int_t)prev);
    struct tail_blob *b = tail_blob_of(ev);
    json_decref(ev);
    tail_put(user, pos, prev, b);
    tail_blob_unref(b);
}

/* Puts n events of user that follow prev, step apart: prev+step after prev,
 * prev+2*step after that, … Returns the last position. */
static int64_t put_chain(int64_t user, int64_t prev, int n, int64_t step)
{
    for (int i = 0; i < n; i++) {
        put_one(user, prev + step, prev);
        prev += step;
    }
    return prev;
}

/* tail_read into a fresh array, checking what it returned: n in
 * 0..min(limit, TAIL_EVENTS) events, all of them user's, the first one's
 * prev since and every other one's prev the position of the one before it,
 * and *next (stored in *last when last is not NULL) the position of the last
 * one when n > 0. Returns n, or -1 when something was wrong. No cmocka
 * asserts: threads call it too. */
static int read_or_fail(int64_t user, int64_t since, int limit, int64_t *last)
{
    json_t *out = json_array();
    int64_t next = -12345;
    int n = read_json(user, since, limit, out, &next);
    int most = limit < 0 ? 0 : limit < TAIL_EVENTS ? limit : TAIL_EVENTS;
    bool ok = n >= 0 && n <= most && json_array_size(out) == (size_t)n;
    int64_t at = since;
    for (int i = 0; ok && i < n; i++) {
        json_t *ev = json_array_get(out, (size_t)i);
        int64_t pos = json_integer_value(json_object_get(ev, "pos"));
        ok = json_integer_value(json_object_get(ev, "user")) == user &&
             json_integer_value(json_object_get(ev, "prev")) == at && pos > at;
        at = pos;
    }
    ok = ok && (n == 0 || next == at);
    json_decref(out);
    if (!ok)
        fprintf(stderr, "read_json(%lld, %lld, %d) returned %d: not a chain from since\n",
                (long long)user, (long long)since, limit, n);
    if (ok && n > 0 && last)
        *last = next;
    return ok ? n : -1;
}

/* read_or_fail, failing the test when the read was wrong. */
static int read_check(int64_t user, int64_t since, int limit, int64_t *last)
{
    int n = read_or_fail(user, since, limit, last);
    assert_int_not_equal(n, -1);
    return n;
}

/* read_check, failing the test unless it returned exactly n events, the
 * last one at next (when n > 0). */
static void read_expect(int64_t user, int64_t since, int limit, int n, int64_t next)
{
    int64_t last = 0;
    assert_int_equal(read_check(user, since, limit, &last), n);
    if (n > 0)
        assert_int_equal(last, next);
}

/* How many events a read from since returns, whatever they are. */
static int count(int64_t user, int64_t since)
{
    json_t *out = json_array();
    int64_t next = 0;
    int n = read_json(user, since, 100, out, &next);
    json_decref(out);
    return n;
}

static int teardown(void **state)
{
    (void)state;
    tail_shutdown();
    return 0;
}

static void test_blob_of(void **state)
{
    (void)state;
    /* the compact JSON of an event, which the caller keeps */
    json_t *ev = json_pack("{s:s, s:I, s:[i,i]}", "type", "message", "seq", (json_int_t)7, "x", 1,
                           2);
    struct tail_blob *b = tail_blob_of(ev);
    assert_non_null(b);
    assert_int_equal(json_object_size(ev), 3); /* not stolen */
    assert_int_equal(b->len, strlen(b->json));
    assert_null(strchr(b->json, ' '));
    assert_null(strchr(b->json, '\n'));
    json_t *back = json_loads(b->json, 0, NULL);
    assert_true(json_equal(back, ev));
    json_decref(back);
    json_decref(ev);
    /* one reference, counted */
    assert_int_equal(refs(b), 1);
    assert_ptr_equal(tail_blob_ref(b), b);
    assert_int_equal(refs(b), 2);
    tail_blob_unref(b);
    assert_int_equal(refs(b), 1);
    /* not an event with a message: no thread, no seq */
    assert_int_equal(b->thread_id, 0);
    assert_int_equal(b->seq, 0);
    tail_blob_unref(b); /* frees: ASan reports a leak otherwise */

    /* an event with a message carries its thread and seq (what the
     * acknowledgement notes), whatever its type */
    b = text_blob("{\"type\":\"message_edited\",\"message\":{\"thread_id\":42,\"seq\":9}}");
    assert_int_equal(b->thread_id, 42);
    assert_int_equal(b->seq, 9);
    tail_blob_unref(b);

    /* NULL is ignored */
    assert_null(tail_blob_ref(NULL));
    tail_blob_unref(NULL);
}

static void test_read_inside_the_tail(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    /* 3, 6, …, 30: the clock is global, the user's events are 3 apart */
    assert_int_equal(put_chain(1, 0, 10, 3), 30);
    read_expect(1, 0, 100, 10, 30);
    read_expect(1, 12, 100, 6, 30);
    read_expect(1, 27, 100, 1, 30);
    /* at the end of what it holds: nothing (the caller reads the database,
     * which then has nothing either, or more than the tail was given) */
    read_expect(1, 30, 100, 0, 0);
    read_expect(1, 50, 100, 0, 0);
    /* a position between two of the user's events is no link: a miss */
    read_expect(1, 4, 100, 0, 0);
    read_expect(1, 29, 100, 0, 0);
    /* a user the tail holds nothing of */
    read_expect(2, 0, 100, 0, 0);

    /* gaps of any size */
    const int64_t pos[] = {2, 3, 7, 20, 21, 100};
    for (int i = 0; i < 6; i++)
        put_one(9, pos[i], i ? pos[i - 1] : 0);
    read_expect(9, 0, 100, 6, 100);
    read_expect(9, 3, 100, 4, 100);
    read_expect(9, 21, 100, 1, 100);
    read_expect(9, 22, 100, 0, 0);
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
    tail_put(5, 4, 0, b1);
    tail_put(5, 9, 4, b2);
    tail_blob_unref(b1);
    tail_blob_unref(b2);

    json_t *out = json_pack("[s]", "already there");
    int64_t next = 0;
    assert_int_equal(read_json(5, 0, 10, out, &next), 2);
    assert_int_equal(next, 9);
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
    /* 40 events 2, 4, …, 80: the tail keeps the last TAIL_EVENTS (50..80) */
    assert_int_equal(put_chain(3, 0, 40, 2), 80);
    int64_t first = 2 * (40 - TAIL_EVENTS + 1);
    assert_int_equal(first, 50);
    for (int64_t since = 0; since < first - 2; since++)
        read_expect(3, since, 100, 0, 0);
    read_expect(3, first - 1, 100, 0, 0);
    /* from the event just before the oldest held: all of them, not more */
    read_expect(3, first - 2, 100, TAIL_EVENTS, 80);
    read_expect(3, first + 2 * 5, 100, TAIL_EVENTS - 6, 80);
}

static void test_limit(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    assert_int_equal(put_chain(4, 0, 12, 5), 60); /* 5, 10, …, 60 */
    read_expect(4, 0, 3, 3, 15);
    read_expect(4, 15, 3, 3, 30);
    read_expect(4, 50, 3, 2, 60);
    read_expect(4, 0, 1, 1, 5);
    read_expect(4, 0, 0, 0, 0);
    read_expect(4, 0, -1, 0, 0);
    /* never more than TAIL_EVENTS in one read, whatever the limit: the tail
     * holds 165..240 now */
    assert_int_equal(put_chain(4, 60, 3 * TAIL_EVENTS - 12, 5), 5 * 3 * TAIL_EVENTS);
    read_expect(4, 5 * 2 * TAIL_EVENTS, 1000, TAIL_EVENTS, 5 * 3 * TAIL_EVENTS);
    read_expect(4, 5 * 2 * TAIL_EVENTS, 4, 4, 5 * (2 * TAIL_EVENTS + 4));
    read_expect(4, 0, 1000, 0, 0);
}

static void test_a_missing_link_ends_the_read(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    /* user 6's events 2, 5, 9, 14, 20, 27; 9's appender has not published
     * yet (or does not publish here) */
    put_one(6, 2, 0);
    put_one(6, 5, 2);
    put_one(6, 14, 9);
    put_one(6, 20, 14);
    put_one(6, 27, 20);
    read_expect(6, 0, 100, 2, 5);
    read_expect(6, 2, 100, 1, 5);
    read_expect(6, 5, 100, 0, 0);
    read_expect(6, 9, 100, 3, 27);
    /* an event after one the tail never had */
    put_one(6, 40, 33);
    read_expect(6, 27, 100, 0, 0);
    read_expect(6, 33, 100, 1, 40);
    /* the late publisher completes the chain (up to the next missing link) */
    put_one(6, 9, 5);
    read_expect(6, 0, 100, 6, 27);
    read_expect(6, 5, 100, 4, 27);

    /* in a full tail too: 10, 20, 30, 40, 60, …, 170 are TAIL_EVENTS
     * events, 50 comes late and takes the oldest entry (10) */
    assert_int_equal(put_chain(8, 0, 4, 10), 40);
    assert_int_equal(put_chain(8, 50, TAIL_EVENTS - 4, 10), 170);
    read_expect(8, 0, 100, 4, 40);
    read_expect(8, 40, 100, 0, 0);
    read_expect(8, 50, 100, TAIL_EVENTS - 4, 170);
    put_one(8, 50, 40);
    read_expect(8, 0, 100, 0, 0);
    read_expect(8, 10, 100, TAIL_EVENTS, 170);
}

static void test_an_older_event_never_replaces_a_newer_one(void **state)
{
    (void)state;
    assert_int_equal(tail_init(8), 0);
    /* a full tail of 15, 25, …, 165 (after 5, which is not there) */
    int64_t top = put_chain(7, 5, TAIL_EVENTS, 10);
    assert_int_equal(top, 5 + 10 * TAIL_EVENTS);
    struct tail_blob *o = ev_blob(7, 5, 0);
    tail_put(7, 5, 0, o); /* a late publisher, but every entry is newer */
    assert_int_equal(refs(o), 1);
    read_expect(7, 0, 100, 0, 0);
    read_expect(7, 5, 100, TAIL_EVENTS, top); /* nothing displaced */
    tail_blob_unref(o);

    /* a newer event takes the oldest entry (15) */
    struct tail_blob *n = ev_blob(7, top + 10, top);
    tail_put(7, top + 10, top, n);
    assert_int_equal(refs(n), 2);
    read_expect(7, 5, 100, 0, 0);
    read_expect(7, 15, 100, TAIL_EVENTS, top + 10);

    /* the same position again: the later blob is kept in the same entry,
     * the earlier dropped, no other entry taken */
    json_t *ev = json_pack("{s:I, s:I, s:I, s:b}", "user", (json_int_t)7, "pos",
                           (json_int_t)(top + 10), "prev", (json_int_t)top, "again", 1);
    struct tail_blob *again = tail_blob_of(ev);
    tail_put(7, top + 10, top, again);
    assert_int_equal(refs(n), 1);
    assert_int_equal(refs(again), 2);
    read_expect(7, 15, 100, TAIL_EVENTS, top + 10);
    json_t *out = json_array();
    int64_t next = 0;
    assert_int_equal(read_json(7, top, 10, out, &next), 1);
    assert_int_equal(next, top + 10);
    assert_int_equal(json_array_size(out), 1);
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
    struct tail_blob *b = text_blob("{\"type\":\"message\"}");
    tail_put(10, 1, 0, b);
    tail_put(11, 5, 2, b);
    tail_put(12, 9, 8, b);
    assert_int_equal(refs(b), 4);
    /* a read takes its references back before returning */
    json_t *out = json_array();
    int64_t next = 0;
    assert_int_equal(read_json(11, 2, 10, out, &next), 1);
    assert_int_equal(next, 5);
    assert_int_equal(refs(b), 4);
    json_decref(out);
    /* positions ≤ 0, a previous position < 0 or not before pos, and a NULL
     * blob are ignored */
    tail_put(10, 0, 0, b);
    tail_put(10, -3, -5, b);
    tail_put(10, 2, -1, b);
    tail_put(10, 2, 2, b);
    tail_put(10, 2, 7, b);
    tail_put(10, 2, 1, NULL);
    assert_int_equal(refs(b), 4);
    assert_int_equal(count(10, 0), 1);
    assert_int_equal(count(10, 1), 0);
    assert_int_equal(count(10, -1), 0);
    assert_int_equal(count(10, 2), 0);
    /* replacing an entry drops the old blob's reference: the same position
     * again, then the oldest one in a full tail */
    struct tail_blob *c = text_blob("{}");
    tail_put(10, 1, 0, c);
    assert_int_equal(refs(b), 3);
    assert_int_equal(refs(c), 2);
    assert_int_equal(put_chain(10, 1, TAIL_EVENTS - 1, 1), TAIL_EVENTS);
    assert_int_equal(refs(c), 2);
    struct tail_blob *d = text_blob("{}");
    tail_put(10, TAIL_EVENTS + 1, TAIL_EVENTS, d);
    assert_int_equal(refs(c), 1);
    assert_int_equal(refs(d), 2);
    /* shutdown drops every reference the tail held */
    tail_shutdown();
    assert_int_equal(refs(b), 1);
    assert_int_equal(refs(d), 1);
    tail_blob_unref(b);
    tail_blob_unref(c);
    tail_blob_unref(d);
}

static void test_off(void **state)
{
    (void)state;
    assert_int_equal(tail_init(0), 0);
    struct tail_blob *b = ev_blob(1, 1, 0);
    tail_put(1, 1, 0, b);
    assert_int_equal(refs(b), 1); /* not held */
    json_t *out = json_array();
    int64_t next = 77;
    assert_int_equal(read_json(1, 0, 10, out, &next), 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    tail_blob_unref(b);
}

static void test_a_newcomer_evicts(void **state)
{
    (void)state;
    /* one slot: every user hashes to it */
    assert_int_equal(tail_init(1), 0);
    struct tail_blob *a = ev_blob(20, 1, 0), *b = ev_blob(21, 1, 0);
    tail_put(20, 1, 0, a);
    tail_put(20, 2, 1, a); /* (the blob says pos 1: count, do not read_check) */
    assert_int_equal(refs(a), 3);
    assert_int_equal(count(20, 0), 2);
    tail_put(21, 1, 0, b);
    assert_int_equal(refs(a), 1); /* all of user 20's entries were dropped */
    assert_int_equal(refs(b), 2);
    /* neither a miss nor the other user's events for the evicted one */
    read_expect(20, 0, 10, 0, 0);
    read_expect(21, 0, 10, 1, 1);
    /* and back */
    assert_int_equal(put_chain(20, 4, 2, 3), 10);
    assert_int_equal(refs(b), 1);
    read_expect(21, 0, 10, 0, 0);
    read_expect(20, 0, 10, 0, 0);
    read_expect(20, 4, 10, 2, 10);
    tail_blob_unref(a);
    tail_blob_unref(b);
}

/* A scattered user id for i (splitmix64, 40 bits): sequential ids hash
 * unusually evenly, real ones do not. */
static int64_t scattered_id(uint64_t i)
{
    uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (int64_t)((z ^ (z >> 31)) >> 24);
}

/* Two choices of slot per user: 3,000 users with one event each in 4,096
 * slots. One hashed slot each keeps about 71 % of them (the rest evicted
 * by a user hashing to the same slot; 2,116 here); with a second choice
 * more than 80 % are kept (2,560 here), and a user is always kept right
 * after its put. */
static void test_two_choices_keep_most_users(void **state)
{
    (void)state;
    enum { SLOTS = 4096, USERS = 3000 };
    assert_int_equal(tail_init(SLOTS), 0);
    for (int64_t u = 1; u <= USERS; u++) {
        put_one(scattered_id((uint64_t)u), u, 0);
        read_expect(scattered_id((uint64_t)u), 0, 10, 1, u);
    }
    int held = 0;
    for (int64_t u = 1; u <= USERS; u++) {
        int64_t last = 0;
        int n = read_check(scattered_id((uint64_t)u), 0, 10, &last);
        assert_in_range(n, 0, 1);
        held += n;
    }
    assert_in_range(held, USERS * 80 / 100, USERS);
}

/* tail_forget drops one user's events (in whichever of its two slots they
 * are), not another's, and moves the generation; tail_forget_all drops
 * everyone's; both give back the references the tail held. */
static void test_forget(void **state)
{
    (void)state;
    assert_int_equal(tail_init(4096), 0);
    enum { USERS = 200 };
    for (int64_t u = 1; u <= USERS; u++)
        put_chain(scattered_id((uint64_t)u), 0, 3, u);
    /* (a user may have lost both its slots to others: count who is held) */
    bool held_before[USERS + 1];
    int held = 0;
    for (int64_t u = 1; u <= USERS; u++)
        held += held_before[u] = read_check(scattered_id((uint64_t)u), 0, 10, NULL) == 3;
    assert_in_range(held, USERS * 9 / 10, USERS);
    int64_t v = 7;
    while (!held_before[v])
        v++;
    int64_t victim = scattered_id((uint64_t)v);
    read_expect(victim, 0, 10, 3, 3 * v);
    uint64_t gen = tail_forget_gen();
    tail_forget(victim);
    assert_true(tail_forget_gen() > gen);
    read_expect(victim, 0, 10, 0, 0);
    for (int64_t u = 1; u <= USERS; u++)
        if (u != v)
            assert_int_equal(read_check(scattered_id((uint64_t)u), 0, 10, NULL),
                             held_before[u] ? 3 : 0);
    /* forgetting a user the tail does not hold changes nothing else */
    tail_forget(scattered_id(USERS + 1));
    for (int64_t u = v + 1; u <= USERS; u++)
        if (held_before[u]) {
            read_expect(scattered_id((uint64_t)u), 0, 10, 3, 3 * u);
            break;
        }

    struct tail_blob *b = text_blob("{}");
    tail_put(victim, 30, 0, b);
    assert_int_equal(refs(b), 2);
    gen = tail_forget_gen();
    tail_forget_all();
    assert_true(tail_forget_gen() > gen);
    assert_int_equal(refs(b), 1);
    for (int64_t u = 1; u <= USERS; u++)
        read_expect(scattered_id((uint64_t)u), 0, 10, 0, 0);
    tail_blob_unref(b);
}

static void test_more_users_than_slots(void **state)
{
    (void)state;
    /* 4 slots, 40 users (user u's events u, 2u, 3u): most are evicted, none
     * reads another's events, and the last writer of a slot is always
     * still there */
    enum { SLOTS = 4, USERS = 40 };
    assert_int_equal(tail_init(SLOTS), 0);
    for (int64_t u = 1; u <= USERS; u++)
        put_chain(1000 + u, 0, 3, u);
    int held = 0;
    for (int64_t u = 1; u <= USERS; u++) {
        int64_t last = 0;
        int n = read_check(1000 + u, 0, 10, &last); /* checks the events are u's */
        assert_true(n == 0 || n == 3);
        if (n == 3)
            assert_int_equal(last, 3 * u);
        held += n == 3;
    }
    assert_in_range(held, 1, SLOTS);
    read_expect(1000 + USERS, 0, 10, 3, 3 * USERS);
}

/* Writers publish their users' events in order, with gaps (3, 6, 9, …),
 * while readers read; every read must be a chain of the reader's user's
 * events from since. */
#define WRITERS 4
#define ROUNDS 3000

/* How many events each writer has put so far. */
static _Atomic int64_t written[WRITERS + 1];

static void *writer(void *arg)
{
    int64_t user = (intptr_t)arg;
    for (int64_t i = 1; i <= ROUNDS; i++) {
        put_one(user, 3 * i, 3 * (i - 1));
        atomic_store(&written[user], i);
    }
    return NULL;
}

static _Atomic int bad_reads;

static void *reader(void *arg)
{
    int64_t user = (intptr_t)arg;
    int64_t since = 0;
    /* at least ROUNDS reads, and on until the writer is done */
    for (int i = 0; i < ROUNDS || atomic_load(&written[user]) < ROUNDS; i++) {
        int64_t last = since;
        int n = read_or_fail(user, since, 1 + i % (TAIL_EVENTS + 4), &last);
        if (n < 0)
            atomic_fetch_add(&bad_reads, 1);
        /* follow the stream; on a miss start again a few events back from
         * the newest (as from what the database returned), now and then
         * from the beginning or from between two events */
        int64_t w = atomic_load(&written[user]);
        if (n > 0)
            since = last;
        else if (i % 5 == 0)
            since = 0;
        else if (i % 5 == 1)
            since = w > 0 ? 3 * w - 1 : 0;
        else
            since = w > i % (TAIL_EVENTS + 2) ? 3 * (w - i % (TAIL_EVENTS + 2)) : 0;
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
        int64_t last = 0;
        int n = read_check(u, 3 * (ROUNDS - 1), 100, &last);
        assert_in_range(n, 0, 1);
        if (n == 1)
            assert_int_equal(last, 3 * ROUNDS);
        held += n;
    }
    assert_in_range(held, 1, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_of),
        cmocka_unit_test_teardown(test_read_inside_the_tail, teardown),
        cmocka_unit_test_teardown(test_appends_to_the_array_and_keeps_the_json, teardown),
        cmocka_unit_test_teardown(test_before_what_the_tail_holds_is_a_miss, teardown),
        cmocka_unit_test_teardown(test_limit, teardown),
        cmocka_unit_test_teardown(test_a_missing_link_ends_the_read, teardown),
        cmocka_unit_test_teardown(test_an_older_event_never_replaces_a_newer_one, teardown),
        cmocka_unit_test_teardown(test_refcounts, teardown),
        cmocka_unit_test_teardown(test_forget, teardown),
        cmocka_unit_test_teardown(test_off, teardown),
        cmocka_unit_test_teardown(test_a_newcomer_evicts, teardown),
        cmocka_unit_test_teardown(test_two_choices_keep_most_users, teardown),
        cmocka_unit_test_teardown(test_more_users_than_slots, teardown),
        cmocka_unit_test_teardown(test_concurrent_writers_and_readers, teardown),
    };
    return cmocka_run_group_tests_name("tail", tests, NULL, NULL);
}
