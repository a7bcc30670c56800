/* test_dburl.c — parsing CHAT_DB_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db/db.h"

static void test_tcp_url(void **state)
{
    (void)state;
    struct db_config c;
    assert_int_equal(db_parse_url("mysql://chat:s%40cret@db.local:3307/chat_prod", &c), 0);
    assert_string_equal(c.user, "chat");
    assert_string_equal(c.password, "s@cret");
    assert_string_equal(c.host, "db.local");
    assert_int_equal(c.port, 3307);
    assert_string_equal(c.database, "chat_prod");
    assert_string_equal(c.socket, "");
}

static void test_socket_url(void **state)
{
    (void)state;
    struct db_config c;
    assert_int_equal(db_parse_url("mysql://root@localhost/chat?socket=/work/var/db/mysql.sock", &c), 0);
    assert_string_equal(c.user, "root");
    assert_string_equal(c.password, "");
    assert_int_equal(c.port, 3306);
    assert_string_equal(c.socket, "/work/var/db/mysql.sock");
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct db_config c;
    const char *bad[] = {"postgres://x@y/z", "mysql://host", "mysql://h:99999/db",
                         "mysql://h/db;drop", "mysql://h/", "mysql://h:x/db",
                         "mysql://h/db?sock=/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(db_parse_url(bad[i], &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_url), cmocka_unit_test(test_socket_url),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests_name("db_url", tests, NULL, NULL);
}
