/* test_config.c — defaults, the file, the environment, range checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.www_root, "www");
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.presence_window_s, 60);
    assert_int_equal(c.event_retention_days, 30);
    assert_true(c.db_require_durable);
}

static void test_set_checks_types_and_ranges(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "threads", "8", err, sizeof err), 0);
    assert_int_equal(c.threads, 8);
    assert_int_equal(config_set(&c, "threads", "0", err, sizeof err), -1);
    assert_non_null(strstr(err, "threads"));
    assert_int_equal(config_set(&c, "threads", "8x", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "threads", "", err, sizeof err), -1);
    assert_int_equal(c.threads, 8);
    assert_int_equal(config_set(&c, "db_require_durable", "false", err, sizeof err), 0);
    assert_false(c.db_require_durable);
    assert_int_equal(config_set(&c, "db_require_durable", "maybe", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "no_such_key", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "no_such_key"));
    char longval[600];
    memset(longval, 'x', sizeof longval - 1);
    longval[sizeof longval - 1] = '\0';
    assert_int_equal(config_set(&c, "listen", longval, err, sizeof err), -1);
}

static void test_file_then_env(void **state)
{
    (void)state;
    char path[] = "/tmp/chatd-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# a comment\n\nlisten = 127.0.0.1:9000  # trailing comment\n"
                       "threads=6\nlog_level = debug\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, true, err, sizeof err), 0);
    assert_string_equal(c.listen, "127.0.0.1:9000");
    assert_int_equal(c.threads, 6);
    assert_string_equal(c.log_level, "debug");
    setenv("CHAT_THREADS", "6", 1);
    setenv("CHAT_LISTEN", "127.0.0.1:0", 1);
    assert_int_equal(config_load_env(&c, err, sizeof err), 0);
    assert_int_equal(c.threads, 6);
    assert_string_equal(c.listen, "127.0.0.1:0");
    setenv("CHAT_THREADS", "-3", 1);
    assert_int_equal(config_load_env(&c, err, sizeof err), -1);
    unsetenv("CHAT_THREADS");
    unsetenv("CHAT_LISTEN");
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/chatd.conf", false, err, sizeof err), 0);
    assert_int_equal(config_load_file(&c, "/nonexistent/chatd.conf", true, err, sizeof err), -1);
    char path[] = "/tmp/chatd-conf-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "threads = 4\nthis line has no equals sign\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(config_load_file(&c, path, true, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));
    unlink(path);
}

static void test_help_lists_every_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    const char *keys[] = {"CHAT_LISTEN",  "CHAT_DB_URL",           "CHAT_WWW_ROOT",
                          "CHAT_THREADS", "CHAT_CONNECTION_LIMIT", "CHAT_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(strstr(buf, keys[i]));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_checks_types_and_ranges),
        cmocka_unit_test(test_file_then_env),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_help_lists_every_key),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
