/* test_router.c — the route matcher over a small table of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/router.h"

static enum handler_status h_a(struct request *q, struct response *s)
{
    (void)q, (void)s;
    return HANDLER_DONE;
}
static enum handler_status h_b(struct request *q, struct response *s)
{
    (void)q, (void)s;
    return HANDLER_DONE;
}
static enum handler_status h_c(struct request *q, struct response *s)
{
    (void)q, (void)s;
    return HANDLER_DONE;
}
static enum handler_status h_d(struct request *q, struct response *s)
{
    (void)q, (void)s;
    return HANDLER_DONE;
}

static const struct route table[] = {
    {"GET", "/v1/threads", h_a, true, false, false, false},
    {"POST", "/v1/threads", h_b, true, false, false, false},
    {"DELETE", "/v1/sessions/current", h_c, true, false, false, false},
    {"DELETE", "/v1/sessions/{id}", h_d, true, false, false, false},
    {"DELETE", "/v1/threads/{id}/members/{id}", h_c, true, false, false, false},
    {"PUT", "/v1/threads/{id}/reactions/{text}", h_d, true, false, false, false},
};
#define N (sizeof table / sizeof table[0])

static enum router_result match(const char *m, const char *p, const struct route **r,
                                int64_t *params, int *np, char *allow)
{
    return router_match(table, N, m, p, r, params, np, allow, 64);
}

static void test_literal_routes(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    assert_int_equal(match("GET", "/v1/threads", &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_a);
    assert_int_equal(np, 0);
    assert_int_equal(match("POST", "/v1/threads", &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_b);
    assert_int_equal(match("HEAD", "/v1/threads", &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_a);
}

static void test_literal_wins_over_id(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    assert_int_equal(match("DELETE", "/v1/sessions/current", &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_c);
    assert_int_equal(match("DELETE", "/v1/sessions/42", &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_d);
    assert_int_equal(np, 1);
    assert_int_equal(params[0], 42);
}

static void test_two_ids(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    assert_int_equal(match("DELETE", "/v1/threads/7/members/9007199254740992", &r, params, &np,
                           allow),
                     ROUTER_FOUND);
    assert_int_equal(np, 2);
    assert_int_equal(params[0], 7);
    assert_int_equal(params[1], 9007199254740992LL);
}

static void test_text_segment(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    const char *path = "/v1/threads/7/reactions/\xf0\x9f\x91\x8d";
    assert_int_equal(match("PUT", path, &r, params, &np, allow), ROUTER_FOUND);
    assert_ptr_equal(r->handler, h_d);
    assert_int_equal(np, 2);
    assert_int_equal(params[0], 7);
    assert_string_equal(path + params[1], "\xf0\x9f\x91\x8d"); /* where the segment starts */
    /* An empty segment, a deeper path, or a segment over 255 bytes: no route. */
    assert_int_equal(match("PUT", "/v1/threads/7/reactions/", &r, params, &np, allow),
                     ROUTER_NOT_FOUND);
    assert_int_equal(match("PUT", "/v1/threads/7/reactions/a/b", &r, params, &np, allow),
                     ROUTER_NOT_FOUND);
    char long_path[400] = "/v1/threads/7/reactions/";
    memset(long_path + strlen(long_path), 'x', 256);
    assert_int_equal(match("PUT", long_path, &r, params, &np, allow), ROUTER_NOT_FOUND);
}

static void test_bad_ids_do_not_match(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    const char *bad[] = {"/v1/sessions/abc", "/v1/sessions/0",
                         "/v1/sessions/-1",  "/v1/sessions/9007199254740993",
                         "/v1/sessions/1.5", "/v1/sessions/",
                         "/v1/sessions/12a", "/v1/sessions/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(match("DELETE", bad[i], &r, params, &np, allow), ROUTER_NOT_FOUND);
}

static void test_unknown_and_method(void **state)
{
    (void)state;
    const struct route *r;
    int64_t params[REQ_MAX_PARAMS];
    int np;
    char allow[64];
    assert_int_equal(match("GET", "/v1/nothing", &r, params, &np, allow), ROUTER_NOT_FOUND);
    assert_int_equal(match("GET", "/v1/threads/", &r, params, &np, allow), ROUTER_NOT_FOUND);
    assert_int_equal(match("GET", "/v1/threadsx", &r, params, &np, allow), ROUTER_NOT_FOUND);
    assert_int_equal(match("PUT", "/v1/threads", &r, params, &np, allow), ROUTER_BAD_METHOD);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(match("GET", "/v1/sessions/3", &r, params, &np, allow), ROUTER_BAD_METHOD);
    assert_string_equal(allow, "DELETE");
}

static void test_app_table_is_sane(void **state)
{
    (void)state;
    /* Every route of the real table matches itself with ids filled in, and
     * no two rows share a method and pattern. */
    for (size_t i = 0; i < routes_count; i++) {
        char path[128] = "";
        const char *p = routes[i].pattern;
        while (*p) {
            if (strncmp(p, "{id}", 4) == 0) {
                strcat(path, "5");
                p += 4;
            } else {
                strncat(path, p++, 1);
            }
        }
        const struct route *r;
        int64_t params[REQ_MAX_PARAMS];
        int np;
        char allow[64];
        assert_int_equal(router_match(routes, routes_count, routes[i].method, path, &r, params, &np,
                                      allow, sizeof allow),
                         ROUTER_FOUND);
        assert_ptr_equal(r, &routes[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_routes),
        cmocka_unit_test(test_literal_wins_over_id),
        cmocka_unit_test(test_two_ids),
        cmocka_unit_test(test_text_segment),
        cmocka_unit_test(test_bad_ids_do_not_match),
        cmocka_unit_test(test_unknown_and_method),
        cmocka_unit_test(test_app_table_is_sane),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
