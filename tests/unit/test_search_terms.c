/* test_search_terms.c — the search tokenizer, query parser and matcher
 * (chat/search.h), without a database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "chat/search.h"

struct joined {
    char s[512];
};

static void join(const char *t, size_t n, void *arg)
{
    struct joined *j = arg;
    size_t k = strlen(j->s);
    snprintf(j->s + k, sizeof j->s - k, "%s%.*s", k ? "|" : "", (int)n, t);
}

static const char *terms(const char *text)
{
    static struct joined j;
    j.s[0] = '\0';
    search_terms_of(text, strlen(text), join, &j);
    return j.s;
}

static void test_terms(void **state)
{
    (void)state;
    assert_string_equal(terms("Hello, World! go"), "hello|world|go");
    assert_string_equal(terms("I like C++ and C#"), "i|like|c++|and|c#");
    assert_string_equal(terms("e-mail x_y 42"), "e|mail|x_y|42");
    assert_string_equal(terms("ÉCOLE Straße"), "école|straße");
    assert_string_equal(terms("我的猫"), "我|的|我的|猫|的猫");
    assert_string_equal(terms("Tokyoタワー"), "tokyo|タ|ワ|タワ|ー|ワー");
    assert_string_equal(terms("\xff\xfe ok"), "ok"); /* not UTF-8: skipped */
    assert_string_equal(terms(""), "");
    /* A very long word is cut at 64 bytes. */
    char longw[200];
    memset(longw, 'a', 150);
    longw[150] = '\0';
    assert_int_equal(strlen(terms(longw)), 64);
}

static void test_parse(void **state)
{
    (void)state;
    struct search_query q;
    const char *why;
    assert_int_equal(search_parse("Quick  brown*", &q, &why), 0);
    assert_int_equal(q.nterms, 2);
    assert_string_equal(q.terms[0], "quick");
    assert_false(q.term_prefix[0]);
    assert_string_equal(q.terms[1], "brown");
    assert_true(q.term_prefix[1]);
    assert_int_equal(search_parse("\"Brown Fox\" C++", &q, &why), 0);
    assert_int_equal(q.nparts, 2);
    assert_true(q.parts[0].phrase);
    assert_string_equal(q.parts[0].text, "brown fox");
    assert_string_equal(q.parts[1].text, "c++");
    assert_false(q.parts[1].phrase);
    assert_int_equal(search_parse("  !!! ", &q, &why), -1);
    assert_int_equal(search_parse("a b c d e f g h i", &q, &why), -1);
    assert_int_equal(search_parse("\"unclosed quote", &q, &why), 0);
    assert_int_equal(search_parse("苹果", &q, &why), 0);
    assert_true(q.parts[0].phrase);
}

static bool matches(const char *query, const char *body)
{
    struct search_query q;
    const char *why;
    assert_int_equal(search_parse(query, &q, &why), 0);
    return search_matches(&q, body, strlen(body));
}

static void test_matches(void **state)
{
    (void)state;
    assert_true(matches("quick fox", "The quick brown FOX"));
    assert_false(matches("quick cat", "The quick brown fox"));
    assert_false(matches("cat", "concatenate"));
    assert_true(matches("conc*", "concatenate"));
    assert_true(matches("\"brown fox\"", "the quick brown fox"));
    assert_false(matches("\"fox brown\"", "the quick brown fox"));
    assert_true(matches("c++", "I write C++ daily"));
    assert_false(matches("c++", "I write C daily"));
    assert_true(matches("苹果", "我喜欢吃苹果"));
    assert_false(matches("果苹", "我喜欢吃苹果"));
    assert_true(matches("猫", "我的猫很可爱"));
    assert_true(matches("e-mail", "send an E-Mail"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests_name("search_terms", tests, NULL, NULL);
}
