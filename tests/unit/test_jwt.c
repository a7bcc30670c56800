/* test_jwt.c — the DER to r||s conversion of ES256 signatures
 * (jwt_der_to_raw, push/jwt.h) with real P-256 signatures made here with
 * OpenSSL's EVP: 64 bytes, r and s equal to what ECDSA_SIG_get0 gives,
 * left-padded with zeros when shorter than 32 bytes (signing again until
 * such signatures come, a bounded number of times), and the result
 * verifies once turned back into DER; hand-made DER, and malformed DER
 * refused. Also a whole ES256 JWT from jwt_sign verified with the public
 * key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/jwt.h"

static EVP_PKEY *key;

static int setup(void **state)
{
    (void)state;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    return 0;
}

/* A DER ECDSA signature of msg with key (SHA-256), malloc'd; *len its size. */
static unsigned char *sign_der(const void *msg, size_t msg_len, size_t *len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, NULL, len, msg, msg_len), 1);
    unsigned char *der = malloc(*len);
    assert_non_null(der);
    assert_int_equal(EVP_DigestSign(ctx, der, len, msg, msg_len), 1);
    EVP_MD_CTX_free(ctx);
    return der;
}

/* True when the r||s signature raw verifies for msg with key (turned back
 * into DER independently of the code under test). */
static int verifies(const unsigned char raw[64], const void *msg, size_t msg_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    assert_true(sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1);
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    assert_true(der_len > 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    int ok = EVP_DigestVerify(ctx, der, (size_t)der_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

/* Checks that out (32 bytes) is the number n, big-endian, zero-padded. */
static void check_number(const unsigned char *out, const BIGNUM *n)
{
    unsigned char bytes[64];
    int len = BN_num_bytes(n);
    assert_in_range(len, 1, 32);
    assert_int_equal(BN_bn2bin(n, bytes), len);
    for (int i = 0; i < 32 - len; i++)
        assert_int_equal(out[i], 0);
    assert_memory_equal(out + 32 - len, bytes, (size_t)len);
}

/* Signs until r and s have each been short (fewer than 32 significant bytes:
 * a chance of 1 in 256 per signature) and long (33 bytes in DER, top bit
 * set), checking every conversion on the way. */
static void test_real_signatures(void **state)
{
    (void)state;
    enum { MAX_TRIES = 20000 }; /* all four not seen by then: odds below 1e-30 */
    int short_r = 0, short_s = 0, long_r = 0, long_s = 0, tries = 0;
    for (; tries < MAX_TRIES && !(short_r && short_s && long_r && long_s); tries++) {
        char msg[64];
        int msg_len = snprintf(msg, sizeof msg, "header.claims %d", tries);
        size_t der_len;
        unsigned char *der = sign_der(msg, (size_t)msg_len, &der_len);
        unsigned char raw[64];
        memset(raw, 0xEE, sizeof raw);
        assert_int_equal(jwt_der_to_raw(der, der_len, raw), 0);

        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        assert_non_null(sig);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(sig, &r, &s);
        check_number(raw, r);
        check_number(raw + 32, s);
        short_r += BN_num_bytes(r) < 32;
        short_s += BN_num_bytes(s) < 32;
        long_r += BN_num_bits(r) == 256;
        long_s += BN_num_bits(s) == 256;
        ECDSA_SIG_free(sig);
        /* every 64th, and every unusual one: it is a valid signature */
        if (tries % 64 == 0 || BN_num_bytes(r) < 32 || BN_num_bytes(s) < 32)
            assert_true(verifies(raw, msg, (size_t)msg_len));
        free(der);
    }
    if (!(short_r && short_s && long_r && long_s))
        fail_msg("after %d signatures: short r %d, short s %d, long r %d, long s %d", tries,
                 short_r, short_s, long_r, long_s);
}

static void test_hand_made_der(void **state)
{
    (void)state;
    unsigned char raw[64], want[64] = {0};
    /* SEQUENCE { INTEGER 1, INTEGER 2 } */
    static const unsigned char small[] = {0x30, 6, 0x02, 1, 0x01, 0x02, 1, 0x02};
    assert_int_equal(jwt_der_to_raw(small, sizeof small, raw), 0);
    want[31] = 1;
    want[63] = 2;
    assert_memory_equal(raw, want, 64);
    /* r = 0xFF00…01 (32 bytes, so a 0x00 first in DER), s = 0x0102 */
    unsigned char big[4 + 33 + 4] = {0x30, 2 + 33 + 2 + 2, 0x02, 33, 0x00, 0xFF};
    big[4 + 32] = 0x01;
    unsigned char *q = big + 4 + 33;
    *q++ = 0x02;
    *q++ = 2;
    *q++ = 0x01;
    *q++ = 0x02;
    assert_int_equal(jwt_der_to_raw(big, sizeof big, raw), 0);
    memset(want, 0, sizeof want);
    want[0] = 0xFF;
    want[31] = 0x01;
    want[62] = 0x01;
    want[63] = 0x02;
    assert_memory_equal(raw, want, 64);
}

static void check_refused(const char *what, const unsigned char *der, size_t len)
{
    unsigned char raw[64];
    if (jwt_der_to_raw(der, len, raw) != -1)
        fail_msg("%s: accepted", what);
}

static void test_malformed_der_is_refused(void **state)
{
    (void)state;
    size_t len;
    unsigned char *good = sign_der("m", 1, &len);
    unsigned char raw[64];
    assert_int_equal(jwt_der_to_raw(good, len, raw), 0);
    /* every truncation */
    for (size_t n = 0; n < len; n++)
        check_refused("truncated", good, n);
    /* the outer tag, a SET instead of a SEQUENCE */
    unsigned char *bad = malloc(len);
    memcpy(bad, good, len);
    bad[0] = 0x31;
    check_refused("SET", bad, len);
    /* the first INTEGER's tag as an OCTET STRING */
    memcpy(bad, good, len);
    bad[2] = 0x04;
    check_refused("OCTET STRING", bad, len);
    /* the SEQUENCE's length one more than there is */
    memcpy(bad, good, len);
    bad[1]++;
    check_refused("long SEQUENCE", bad, len);
    free(bad);
    free(good);

    static const unsigned char one_int[] = {0x30, 3, 0x02, 1, 0x01};
    check_refused("one INTEGER", one_int, sizeof one_int);
    static const unsigned char three_ints[] = {0x30, 9, 0x02, 1, 1, 0x02, 1, 2, 0x02, 1, 3};
    check_refused("three INTEGERs", three_ints, sizeof three_ints);
    static const unsigned char negative[] = {0x30, 6, 0x02, 1, 0xFF, 0x02, 1, 0x02};
    check_refused("negative r", negative, sizeof negative);
    static const unsigned char padded[] = {0x30, 7, 0x02, 2, 0x00, 0x01, 0x02, 1, 0x02};
    check_refused("r with a needless 0x00", padded, sizeof padded);
    static const unsigned char empty_int[] = {0x30, 5, 0x02, 0, 0x02, 1, 0x02};
    check_refused("empty INTEGER", empty_int, sizeof empty_int);
    static const unsigned char indefinite[] = {0x30, 0x80, 0x02, 1, 1, 0x02, 1, 2, 0, 0};
    check_refused("indefinite length", indefinite, sizeof indefinite);
    check_refused("nothing", (const unsigned char *)"", 0);
    /* BER, not DER, or more than the signature */
    static const unsigned char long_form[] = {0x30, 0x81, 6, 0x02, 1, 1, 0x02, 1, 2};
    check_refused("a long-form length under 128", long_form, sizeof long_form);
    static const unsigned char trailing[] = {0x30, 6, 0x02, 1, 1, 0x02, 1, 2, 0xAA};
    check_refused("a byte after the SEQUENCE", trailing, sizeof trailing);
    static const unsigned char nul[] = {0x30, 6, 0x02, 1, 1, 0x02, 1, 2, 0x00};
    check_refused("a NUL after the SEQUENCE", nul, sizeof nul);
    /* not an ECDSA signature: r and s are at least 1 */
    static const unsigned char zero_r[] = {0x30, 6, 0x02, 1, 0, 0x02, 1, 2};
    check_refused("r = 0", zero_r, sizeof zero_r);
    static const unsigned char zero_s[] = {0x30, 6, 0x02, 1, 1, 0x02, 1, 0};
    check_refused("s = 0", zero_s, sizeof zero_s);
    check_refused("text", (const unsigned char *)"not a signature", 15);

    /* r of 33 significant bytes (2^256 + 1): does not fit r||s */
    unsigned char wide[4 + 33 + 3] = {0x30, 2 + 33 + 3, 0x02, 33, 0x01};
    wide[4 + 32] = 0x01;
    wide[4 + 33] = 0x02;
    wide[4 + 34] = 1;
    wide[4 + 35] = 0x02;
    check_refused("r over 32 bytes", wide, sizeof wide);
    /* the same with s */
    unsigned char wide_s[4 + 3 + 33] = {0x30, 3 + 2 + 33, 0x02, 1, 0x02, 0x02, 33, 0x01};
    wide_s[sizeof wide_s - 1] = 0x01;
    check_refused("s over 32 bytes", wide_s, sizeof wide_s);
}

/* base64url (no padding) to bytes; returns the length or -1. */
static int unb64(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t n;
    if (sodium_base642bin(out, cap, s, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return (int)n;
}

static void test_es256_jwt_verifies(void **state)
{
    (void)state;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    struct jwt_key *k = jwt_key_from_pem(pem, (size_t)pem_len);
    BIO_free(bio);
    assert_non_null(k);
    json_t *h = json_pack("{s:s}", "kid", "KEY123"),
           *c = json_pack("{s:s, s:i}", "iss", "TEAM", "iat", 1700000000);
    char *jwt = jwt_sign(k, "ES256", h, c);
    assert_non_null(jwt);
    char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    /* the header says ES256 and keeps kid */
    unsigned char buf[256];
    int n = unb64(jwt, (size_t)(dot1 - jwt), buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    json_t *hdr = json_loads((char *)buf, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "KEY123");
    json_decref(hdr);
    /* the signature is 64 bytes of r||s over "header.claims" */
    unsigned char sig[64];
    assert_int_equal(unb64(dot2 + 1, strlen(dot2 + 1), sig, sizeof sig), 64);
    assert_true(verifies(sig, jwt, (size_t)(dot2 - jwt)));
    sig[10] ^= 1;
    assert_false(verifies(sig, jwt, (size_t)(dot2 - jwt)));
    free(jwt);
    json_decref(h);
    json_decref(c);
    jwt_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_signatures),
        cmocka_unit_test(test_hand_made_der),
        cmocka_unit_test(test_malformed_der_is_refused),
        cmocka_unit_test(test_es256_jwt_verifies),
    };
    return cmocka_run_group_tests_name("jwt", tests, setup, teardown);
}
