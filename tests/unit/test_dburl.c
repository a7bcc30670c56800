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
    assert_int_equal(db_parse_url("mysql://root@localhost/chat?socket=/work/var/db/mysql.sock", &c),
                     0);
    assert_string_equal(c.user, "root");
    assert_string_equal(c.password, "");
    assert_int_equal(c.port, 3306);
    assert_string_equal(c.socket, "/work/var/db/mysql.sock");
}

static void test_host_list(void **state)
{
    (void)state;
    struct db_config c;
    assert_int_equal(db_parse_url("mysql://chat:pw@10.0.0.1:3306,g2,[::1]x:4406/chat", &c), -1);
    assert_int_equal(db_parse_url("mysql://chat:pw@10.0.0.1:3306,g2,g3:4406/chat", &c), 0);
    assert_int_equal(c.nhosts, 3);
    assert_string_equal(c.hosts[0].name, "10.0.0.1");
    assert_int_equal(c.hosts[0].port, 3306);
    assert_string_equal(c.hosts[1].name, "g2");
    assert_int_equal(c.hosts[1].port, 3306);
    assert_string_equal(c.hosts[2].name, "g3");
    assert_int_equal(c.hosts[2].port, 4406);
    /* host/port mirror the first host */
    assert_string_equal(c.host, "10.0.0.1");
    assert_int_equal(c.port, 3306);
    assert_string_equal(c.database, "chat");
    /* one host is a list of one */
    assert_int_equal(db_parse_url("mysql://root@db/chat", &c), 0);
    assert_int_equal(c.nhosts, 1);
    const char *bad[] = {"mysql://u@a,/chat",        "mysql://u@,a/chat",
                         "mysql://u@a,,b/chat",      "mysql://u@a:1,b:0/chat",
                         "mysql://u@a,b:70000/chat", "mysql://u@a,b,c,d,e,f,g,h,i/chat"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(db_parse_url(bad[i], &c), -1);
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct db_config c;
    const char *bad[] = {"postgres://x@y/z",    "mysql://host", "mysql://h:99999/db",
                         "mysql://h/db;drop",   "mysql://h/",   "mysql://h:x/db",
                         "mysql://h/db?sock=/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(db_parse_url(bad[i], &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_url),
        cmocka_unit_test(test_socket_url),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_host_list),
    };
    return cmocka_run_group_tests_name("db_url", tests, NULL, NULL);
}
