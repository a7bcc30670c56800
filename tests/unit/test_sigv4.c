/* test_sigv4.c — the presigner against AWS's published example (the S3
 * documentation's "Example: presigned URL", Signature Version 4, query
 * string authentication). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media/s3.h"

static const struct s3_config aws = {
    .endpoint = "https://s3.amazonaws.com",
    .region = "us-east-1",
    .bucket = "examplebucket",
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

static void test_aws_example(void **state)
{
    (void)state;
    char url[2048];
    assert_int_equal(sigv4_presign(&aws, "test.txt", "20130524T000000Z", 86400, 1, url, sizeof url),
                     0);
    assert_string_equal(
        url, "https://examplebucket.s3.amazonaws.com/test.txt"
             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

static void test_path_style_and_encoding(void **state)
{
    (void)state;
    struct s3_config local = aws;
    local.endpoint = "http://127.0.0.1:9000";
    char url[2048];
    assert_int_equal(
        sigv4_presign(&local, "blobs/ab/cd/a b+é", "20261203T120000Z", 60, 0, url, sizeof url), 0);
    /* The bucket in the path; the key's bytes encoded, its slashes kept. */
    assert_non_null(strstr(url, "http://127.0.0.1:9000/examplebucket/blobs/ab/cd/a%20b%2B%C3%A9?"));
    assert_non_null(strstr(url, "&X-Amz-Expires=60&"));
    /* Another key or time signs differently. */
    char other[2048];
    sigv4_presign(&local, "blobs/ab/cd/a b+e", "20261203T120000Z", 60, 0, other, sizeof other);
    assert_string_not_equal(strstr(url, "X-Amz-Signature="), strstr(other, "X-Amz-Signature="));
}

static void test_too_small_or_bad(void **state)
{
    (void)state;
    char url[64];
    assert_int_equal(sigv4_presign(&aws, "test.txt", "20130524T000000Z", 86400, 1, url, sizeof url),
                     -1);
    struct s3_config bad = aws;
    bad.endpoint = "s3.amazonaws.com";
    char big[2048];
    assert_int_equal(sigv4_presign(&bad, "k", "20130524T000000Z", 1, 1, big, sizeof big), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_example),
        cmocka_unit_test(test_path_style_and_encoding),
        cmocka_unit_test(test_too_small_or_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
