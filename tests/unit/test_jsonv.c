/* test_jsonv.c — the body gate and the field readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http/jsonv.h"
#include "base/util.h"

static int parse(const char *s, size_t len, json_t **out)
{
    const char *why;
    return json_body_parse(s, len, out, &why);
}

static void test_gate_accepts_objects(void **state)
{
    (void)state;
    json_t *j;
    const char *ok = "{\"a\": [1, {\"b\": \"\\u00e9 caf\xc3\xa9\"}]}";
    assert_int_equal(parse(ok, strlen(ok), &j), 0);
    assert_true(json_is_object(j));
    json_decref(j);
}

static void test_gate_refuses(void **state)
{
    (void)state;
    json_t *j = NULL;
    const char *bad[] = {"",
                         "[1,2]",
                         "\"str\"",
                         "42",
                         "null",
                         "{",
                         "{\"a\":NaN}",
                         "{\"a\":Infinity}",
                         "{\"a\":1,\"a\":2}",
                         "{\"a\":\"\\u0000\"}",
                         "{\"a\":123456789012345678901234567890}",
                         "{'a':1}",
                         "{\"a\":1} x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], strlen(bad[i]), &j), -1);
    const char nul[] = "{\"a\":\"x\0y\"}";
    assert_int_equal(parse(nul, sizeof nul - 1, &j), -1);
    const char latin1[] = "{\"a\":\"caf\xe9\"}";
    assert_int_equal(parse(latin1, strlen(latin1), &j), -1);
    const char surrogate[] = "{\"a\":\"\xed\xa0\x80\"}";
    assert_int_equal(parse(surrogate, strlen(surrogate), &j), -1);
}

static void test_gate_depth(void **state)
{
    (void)state;
    char buf[256];
    json_t *j;
    /* 32 levels pass, 33 do not; brackets inside strings do not count. */
    for (int depth = 32; depth <= 33; depth++) {
        size_t k = 0;
        buf[k++] = '{';
        memcpy(buf + k, "\"a\":", 4), k += 4;
        for (int i = 1; i < depth; i++)
            buf[k++] = '[';
        for (int i = 1; i < depth; i++)
            buf[k++] = ']';
        buf[k++] = '}';
        int rc = parse(buf, k, &j);
        assert_int_equal(rc, depth == 32 ? 0 : -1);
        if (rc == 0)
            json_decref(j);
    }
    const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[\"}";
    assert_int_equal(parse(s, strlen(s), &j), 0);
    json_decref(j);
}

static void test_readers(void **state)
{
    (void)state;
    struct response res;
    resp_init(&res);
    json_t *o = json_loads("{\"i\": 5, \"f\": 1.5, \"s\": \"h\xc3\xa9llo\", \"b\": true, "
                           "\"n\": null, \"big\": 9007199254740993, \"ids\": [3, 1, 3, 2]}",
                           0, NULL);
    int64_t i = 0;
    bool present;
    assert_true(jv_int(&res, o, "i", JV_REQUIRED, 0, 10, &i, &present));
    assert_int_equal(i, 5);
    assert_true(present);
    assert_false(jv_int(&res, o, "i", JV_REQUIRED, 6, 10, &i, NULL));
    assert_int_equal(res.status, 400);
    assert_false(jv_int(&res, o, "f", JV_REQUIRED, 0, 10, &i, NULL));
    assert_false(jv_int(&res, o, "big", JV_REQUIRED, 0, JSON_INT_MAX, &i, NULL));
    assert_false(jv_int(&res, o, "missing", JV_REQUIRED, 0, 10, &i, NULL));
    assert_true(jv_int(&res, o, "missing", JV_OPTIONAL, 0, 10, &i, &present));
    assert_false(present);
    assert_string_equal(json_string_value(json_object_get(res.json, "code")), "invalid_request");

    const char *s;
    size_t len;
    assert_true(jv_str(&res, o, "s", JV_REQUIRED, 1, 5, &s, &len));
    assert_int_equal(len, 6); /* 5 characters, 6 bytes */
    assert_false(jv_str(&res, o, "s", JV_REQUIRED, 1, 4, &s, &len));
    assert_false(jv_str(&res, o, "i", JV_REQUIRED, 0, 5, &s, &len));
    assert_false(jv_str(&res, o, "n", JV_OPTIONAL, 0, 5, &s, &len));
    assert_true(jv_str(&res, o, "n", JV_NULLABLE, 0, 5, &s, &len));
    assert_null(s);

    /* JV_NAME: trimmed in the object, then clean text */
    json_object_set_new(o, "name", json_string("  Trip  "));
    assert_true(jv_str(&res, o, "name", JV_REQUIRED | JV_NAME, 1, 5, &s, &len));
    assert_string_equal(s, "Trip");
    assert_int_equal(len, 4);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "Trip");
    json_object_set_new(o, "name", json_string("   "));
    assert_false(jv_str(&res, o, "name", JV_REQUIRED | JV_NAME, 1, 5, &s, &len));
    json_object_set_new(o, "name",
                        json_string("a\xe2\x80\xae"
                                    "b")); /* U+202E */
    assert_false(jv_str(&res, o, "name", JV_REQUIRED | JV_NAME, 1, 5, &s, &len));
    json_object_set_new(o, "name",
                        json_string("a\x07"
                                    "b"));
    assert_false(jv_str(&res, o, "name", JV_REQUIRED | JV_NAME, 1, 5, &s, &len));
    assert_true(jv_str(&res, o, "n", JV_NULLABLE | JV_NAME, 0, 5, &s, &len));
    assert_null(s);

    bool b = false;
    assert_true(jv_bool(&res, o, "b", JV_REQUIRED, &b, NULL));
    assert_true(b);
    assert_false(jv_bool(&res, o, "i", JV_REQUIRED, &b, NULL));

    int64_t *ids;
    size_t n;
    assert_true(jv_ids(&res, o, "ids", JV_REQUIRED, 10, &ids, &n));
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 2);
    free(ids);
    assert_false(jv_ids(&res, o, "ids", JV_REQUIRED, 3, &ids, &n));
    assert_int_equal(res.status, 422);
    assert_false(jv_ids(&res, o, "s", JV_REQUIRED, 3, &ids, &n));
    json_decref(o);
    resp_clear(&res);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(utf8_valid("abc", 3));
    assert_true(utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_int_equal(utf8_chars("h\xc3\xa9", 3), 2);
    /* A cut never splits a character. */
    assert_int_equal(utf8_prefix("a\xf0\x9f\x98\x80", 5, 3), 1);
    assert_int_equal(utf8_prefix("a\xf0\x9f\x98\x80", 5, 5), 5);
    int64_t v;
    assert_int_equal(parse_int("9007199254740992", &v), 0);
    assert_int_equal(parse_int("9007199254740993", &v), -1);
    assert_int_equal(parse_int("-1", &v), -1);
    assert_int_equal(parse_int("", &v), -1);
    assert_int_equal(parse_int("1 ", &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_accepts_objects),
        cmocka_unit_test(test_gate_refuses),
        cmocka_unit_test(test_gate_depth),
        cmocka_unit_test(test_readers),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests_name("jsonv", tests, NULL, NULL);
}
