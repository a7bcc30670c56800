/* test_push_body.c — the JSON bodies of pushes (wire_body,
 * push/push_wire.h; docs/push.md): APNs alert and clear payloads, FCM alert
 * and clear messages, exactly the documented fields (parsed back with
 * jansson); ids up to 2^53; strings escaped and given back intact; and the
 * APNs 4096-byte limit: a long body (one-, two-, three- and four-byte
 * characters, or characters that grow when escaped) is shortened to fit, to
 * a prefix that ends on a character boundary, and not much shorter than the
 * limit allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "push/push_wire.h"

#define APNS_LIMIT 4096

/* wire_body, parsed; fails the test when it is not a JSON object. *len gets
 * the body's length in bytes. */
static json_t *body_json(enum push_provider p, const char *token, const struct push_content *c,
                         size_t *len)
{
    char *s = wire_body(p, token, c);
    assert_non_null(s);
    *len = strlen(s);
    json_error_t err;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL || !json_is_object(j))
        fail_msg("not a JSON object (%s): %.200s", err.text, s);
    free(s);
    return j;
}

/* Fails unless obj has exactly these keys (a NULL-terminated list). */
static void check_keys(const json_t *obj, ...)
{
    assert_true(json_is_object(obj));
    va_list ap;
    va_start(ap, obj);
    size_t n = 0;
    for (const char *k; (k = va_arg(ap, const char *)) != NULL; n++)
        if (json_object_get(obj, k) == NULL)
            fail_msg("no key \"%s\"", k);
    va_end(ap);
    assert_int_equal(json_object_size(obj), n);
}

static const char *str_at(const json_t *j, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(j, path1);
    if (path2)
        v = json_object_get(v, path2);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_apns_alert(void **state)
{
    (void)state;
    struct push_content c = {
        .thread_id = 42, .seq = 7, .title = "Alice", .body = "hello", .badge = 3};
    size_t len;
    json_t *j = body_json(PROVIDER_APNS, "devtoken", &c, &len);
    check_keys(j, "aps", "thread_id", "seq", NULL);
    json_t *aps = json_object_get(j, "aps");
    check_keys(aps, "alert", "badge", "sound", "thread-id", NULL);
    check_keys(json_object_get(aps, "alert"), "title", "body", NULL);
    assert_string_equal(str_at(aps, "alert", "title"), "Alice");
    assert_string_equal(str_at(aps, "alert", "body"), "hello");
    assert_true(json_is_integer(json_object_get(aps, "badge")));
    assert_int_equal(json_integer_value(json_object_get(aps, "badge")), 3);
    assert_string_equal(str_at(aps, "sound", NULL), "default");
    assert_string_equal(str_at(aps, "thread-id", NULL), "42");
    assert_true(json_is_integer(json_object_get(j, "thread_id")));
    assert_int_equal(json_integer_value(json_object_get(j, "thread_id")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 7);
    json_decref(j);
}

static void test_apns_clear(void **state)
{
    (void)state;
    /* title and body are not looked at */
    struct push_content c = {.clear = true, .thread_id = 42, .seq = 9, .badge = 5};
    size_t len;
    json_t *j = body_json(PROVIDER_APNS, NULL, &c, &len);
    check_keys(j, "aps", "type", "thread_id", "seq", NULL);
    check_keys(json_object_get(j, "aps"), "content-available", NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "aps"), "content-available")), 1);
    assert_string_equal(str_at(j, "type", NULL), "clear");
    assert_int_equal(json_integer_value(json_object_get(j, "thread_id")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 9);
    json_decref(j);
}

static void test_fcm_alert(void **state)
{
    (void)state;
    struct push_content c = {
        .thread_id = 42, .seq = 7, .title = "Group", .body = "Bob: hi", .badge = 12};
    size_t len;
    json_t *j = body_json(PROVIDER_FCM, "fcm-token:abc", &c, &len);
    check_keys(j, "message", NULL);
    json_t *m = json_object_get(j, "message");
    check_keys(m, "token", "notification", "data", "android", NULL);
    assert_string_equal(str_at(m, "token", NULL), "fcm-token:abc");
    check_keys(json_object_get(m, "notification"), "title", "body", NULL);
    assert_string_equal(str_at(m, "notification", "title"), "Group");
    assert_string_equal(str_at(m, "notification", "body"), "Bob: hi");
    /* FCM data values are strings */
    check_keys(json_object_get(m, "data"), "thread_id", "seq", "badge", NULL);
    assert_string_equal(str_at(m, "data", "thread_id"), "42");
    assert_string_equal(str_at(m, "data", "seq"), "7");
    assert_string_equal(str_at(m, "data", "badge"), "12");
    check_keys(json_object_get(m, "android"), "collapse_key", "priority", NULL);
    assert_string_equal(str_at(m, "android", "collapse_key"), "thread-42");
    assert_string_equal(str_at(m, "android", "priority"), "high");
    json_decref(j);
}

static void test_fcm_clear(void **state)
{
    (void)state;
    struct push_content c = {.clear = true, .thread_id = 42, .seq = 9, .badge = 5};
    size_t len;
    json_t *j = body_json(PROVIDER_FCM, "tok", &c, &len);
    json_t *m = json_object_get(j, "message");
    check_keys(m, "token", "data", "android", NULL); /* no notification: silent */
    assert_string_equal(str_at(m, "token", NULL), "tok");
    check_keys(json_object_get(m, "data"), "type", "thread_id", "seq", NULL);
    assert_string_equal(str_at(m, "data", "type"), "clear");
    assert_string_equal(str_at(m, "data", "thread_id"), "42");
    assert_string_equal(str_at(m, "data", "seq"), "9");
    check_keys(json_object_get(m, "android"), "priority", NULL);
    assert_string_equal(str_at(m, "android", "priority"), "normal");
    json_decref(j);
}

static void test_big_ids(void **state)
{
    (void)state;
    struct push_content c = {.thread_id = JSON_INT_MAX,
                             .seq = JSON_INT_MAX - 1,
                             .title = "t",
                             .body = "b",
                             .badge = 2147483648LL};
    size_t len;
    json_t *j = body_json(PROVIDER_APNS, NULL, &c, &len);
    assert_int_equal(json_integer_value(json_object_get(j, "thread_id")), JSON_INT_MAX);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), JSON_INT_MAX - 1);
    json_t *aps = json_object_get(j, "aps");
    assert_string_equal(str_at(aps, "thread-id", NULL), "9007199254740992");
    assert_int_equal(json_integer_value(json_object_get(aps, "badge")), 2147483648LL);
    json_decref(j);
    j = body_json(PROVIDER_FCM, "t", &c, &len);
    json_t *m = json_object_get(j, "message");
    assert_string_equal(str_at(m, "data", "thread_id"), "9007199254740992");
    assert_string_equal(str_at(m, "data", "seq"), "9007199254740991");
    assert_string_equal(str_at(m, "data", "badge"), "2147483648");
    assert_string_equal(str_at(m, "android", "collapse_key"), "thread-9007199254740992");
    json_decref(j);
}

static void test_strings_are_escaped(void **state)
{
    (void)state;
    const char *title = "\"quoted\" \\ back/slash \xe2\x9c\x93";
    const char *body = "line 1\nline 2\t\x01 </script> \xf0\x9f\x98\x80 \xc3\xa9";
    struct push_content c = {.thread_id = 1, .seq = 1, .title = title, .body = body};
    size_t len;
    json_t *j = body_json(PROVIDER_APNS, NULL, &c, &len);
    assert_string_equal(str_at(json_object_get(j, "aps"), "alert", "title"), title);
    assert_string_equal(str_at(json_object_get(j, "aps"), "alert", "body"), body);
    json_decref(j);
    j = body_json(PROVIDER_FCM, "tok\"en", &c, &len);
    json_t *m = json_object_get(j, "message");
    assert_string_equal(str_at(m, "token", NULL), "tok\"en");
    assert_string_equal(str_at(m, "notification", "title"), title);
    assert_string_equal(str_at(m, "notification", "body"), body);
    json_decref(j);
}

static void test_refuses(void **state)
{
    (void)state;
    struct push_content no_title = {.thread_id = 1, .seq = 1, .body = "b"};
    struct push_content no_body = {.thread_id = 1, .seq = 1, .title = "t"};
    struct push_content bad_utf8 = {.thread_id = 1, .seq = 1, .title = "t", .body = "\xc3("};
    struct push_content clear = {.clear = true, .thread_id = 1, .seq = 1};
    for (int p = PROVIDER_APNS; p <= PROVIDER_FCM; p++) {
        assert_null(wire_body((enum push_provider)p, "tok", &no_title));
        assert_null(wire_body((enum push_provider)p, "tok", &no_body));
        assert_null(wire_body((enum push_provider)p, "tok", &bad_utf8));
    }
    assert_null(wire_body(PROVIDER_FCM, NULL, &clear)); /* FCM needs the token */
}

/* The APNs alert of body: checks the payload fits, parses, and that its
 * body is a prefix of the given one that ends on a character boundary (and
 * is the whole when it fits). Returns the payload's length. */
static size_t apns_fit(const char *body, size_t *kept)
{
    struct push_content c = {
        .thread_id = 123456, .seq = 654321, .title = "A title", .body = body, .badge = 99};
    size_t len;
    json_t *j = body_json(PROVIDER_APNS, NULL, &c, &len);
    if (len > APNS_LIMIT)
        fail_msg("APNs payload of %zu bytes", len);
    json_t *aps = json_object_get(j, "aps");
    const char *got = str_at(aps, "alert", "body");
    size_t n = strlen(got);
    assert_true(n <= strlen(body));
    assert_memory_equal(got, body, n);
    /* the rest of the payload is untouched */
    assert_string_equal(str_at(aps, "alert", "title"), "A title");
    assert_int_equal(json_integer_value(json_object_get(aps, "badge")), 99);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 654321);
    /* cut on a boundary: what remains starts a character */
    assert_true(((unsigned char)body[n] & 0xC0) != 0x80);
    assert_true(utf8_valid(got, n));
    json_decref(j);
    *kept = n;
    return len;
}

/* n bytes of the character ch (its UTF-8 bytes, repeated, whole characters) */
static char *repeat(const char *ch, size_t n)
{
    size_t w = strlen(ch);
    char *s = malloc(n + 1);
    assert_non_null(s);
    size_t i = 0;
    for (; i + w <= n; i += w)
        memcpy(s + i, ch, w);
    s[i] = '\0';
    return s;
}

static void test_apns_long_body_is_shortened_to_fit(void **state)
{
    (void)state;
    static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++) {
        size_t w = strlen(chars[i]);
        char *body = repeat(chars[i], 9000);
        size_t kept;
        size_t len = apns_fit(body, &kept);
        assert_true(kept < strlen(body));
        assert_int_equal(kept % w, 0);
        /* shortened no more than needed: within a few characters of the limit */
        if (len < APNS_LIMIT - 16)
            fail_msg("%zu-byte characters: a payload of %zu bytes, shorter than needed", w, len);
        free(body);
    }
    /* characters of every width, so that the cut falls inside one for some length */
    char body[9000];
    static const char *const cycle[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t n = 0;
    for (size_t i = 0; n + 4 < sizeof body; i++) {
        memcpy(body + n, cycle[i % 4], strlen(cycle[i % 4]));
        n += strlen(cycle[i % 4]);
    }
    body[n] = '\0';
    for (size_t end = 4000; end < 4100; end++) {
        char saved = body[end];
        body[end] = '\0';
        if (utf8_valid(body, end)) {
            size_t kept;
            apns_fit(body, &kept);
        }
        body[end] = saved;
    }
}

static void test_apns_escaped_body_is_shortened_to_fit(void **state)
{
    (void)state;
    /* characters that take 2 ("\"") and 6 ("\u0001") bytes in JSON */
    char *quotes = repeat("\"", 3000), *controls = repeat("\x01", 3000);
    size_t kept;
    apns_fit(quotes, &kept);
    assert_true(kept < 3000);
    apns_fit(controls, &kept);
    assert_true(kept < 3000);
    free(quotes);
    free(controls);
}

static void test_apns_limit_is_exactly_4096(void **state)
{
    (void)state;
    /* the payload with an empty body, then a body that brings it to 4096 */
    size_t kept;
    size_t base = apns_fit("", &kept);
    char *body = repeat("x", APNS_LIMIT - base + 1);
    body[APNS_LIMIT - base] = '\0';
    assert_int_equal(apns_fit(body, &kept), APNS_LIMIT); /* fits: untouched */
    assert_int_equal(kept, APNS_LIMIT - base);
    free(body);
    body = repeat("x", APNS_LIMIT - base + 1); /* one byte over */
    assert_true(apns_fit(body, &kept) <= APNS_LIMIT);
    assert_true(kept < APNS_LIMIT - base + 1);
    free(body);
}

static void test_fcm_body_is_given_whole(void **state)
{
    (void)state;
    char *body = repeat("\xe2\x82\xac", 3000);
    struct push_content c = {.thread_id = 1, .seq = 1, .title = "t", .body = body};
    size_t len;
    json_t *j = body_json(PROVIDER_FCM, "tok", &c, &len);
    assert_string_equal(str_at(json_object_get(j, "message"), "notification", "body"), body);
    json_decref(j);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apns_alert),
        cmocka_unit_test(test_apns_clear),
        cmocka_unit_test(test_fcm_alert),
        cmocka_unit_test(test_fcm_clear),
        cmocka_unit_test(test_big_ids),
        cmocka_unit_test(test_strings_are_escaped),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_apns_long_body_is_shortened_to_fit),
        cmocka_unit_test(test_apns_escaped_body_is_shortened_to_fit),
        cmocka_unit_test(test_apns_limit_is_exactly_4096),
        cmocka_unit_test(test_fcm_body_is_given_whole),
    };
    return cmocka_run_group_tests_name("push_body", tests, NULL, NULL);
}
