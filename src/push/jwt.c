/* jwt.c — JWT signing with OpenSSL EVP (see jwt.h).
 *
 * ES256 signatures come out of OpenSSL as DER (a SEQUENCE of r and s); JWS
 * wants the fixed 64-byte r||s, so they are converted. base64url without
 * padding comes from libsodium. */
#include "push/jwt.h"

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

struct jwt_key {
    EVP_PKEY *pkey;
};

static struct jwt_key *from_bio(BIO *bio, const char *what)
{
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pkey == NULL) {
        log_error("jwt: %s is not a PEM private key", what);
        return NULL;
    }
    struct jwt_key *k = malloc(sizeof *k);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    return k;
}

struct jwt_key *jwt_key_from_file(const char *path)
{
    return from_bio(BIO_new_file(path, "r"), path);
}

struct jwt_key *jwt_key_from_pem(const char *pem, size_t len)
{
    return from_bio(BIO_new_mem_buf(pem, (int)len), "the service account's private_key");
}

void jwt_key_free(struct jwt_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* base64url of len bytes into a malloc'd string. */
static char *b64url(const unsigned char *data, size_t len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(size);
    if (out)
        sodium_bin2base64(out, size, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static char *b64url_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL)
        return NULL;
    char *out = b64url((const unsigned char *)s, strlen(s));
    free(s);
    return out;
}

int jwt_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (sig == NULL)
        return -1;
    /* d2i takes BER lengths and stops after the SEQUENCE: encoding it again
     * must give back all of der, byte for byte */
    unsigned char *again = NULL;
    int again_len = i2d_ECDSA_SIG(sig, &again);
    bool strict = again_len > 0 && (size_t)again_len == len && memcmp(again, der, len) == 0;
    OPENSSL_free(again);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = strict && !BN_is_zero(r) && !BN_is_zero(s) && BN_bn2binpad(r, raw, 32) == 32 &&
             BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

char *jwt_sign(struct jwt_key *key, const char *alg, json_t *header, json_t *claims)
{
    bool es256 = strcmp(alg, "ES256") == 0;
    json_t *h = json_deep_copy(header);
    json_object_set_new(h, "alg", json_string(alg));
    char *h64 = b64url_json(h), *c64 = b64url_json(claims), *sig64 = NULL, *out = NULL;
    json_decref(h);
    unsigned char *sig = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!h64 || !c64 || !ctx)
        goto done;
    size_t input_len = strlen(h64) + 1 + strlen(c64);
    char *input = malloc(input_len + 1);
    if (input == NULL)
        goto done;
    snprintf(input, input_len + 1, "%s.%s", h64, c64);
    size_t sig_len = 0;
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, (unsigned char *)input, input_len) != 1 ||
        (sig = malloc(sig_len)) == NULL ||
        EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)input, input_len) != 1) {
        log_error("jwt: signing with %s failed", alg);
        free(input);
        goto done;
    }
    if (es256) {
        unsigned char raw[64];
        if (jwt_der_to_raw(sig, sig_len, raw) < 0) {
            free(input);
            goto done;
        }
        sig64 = b64url(raw, sizeof raw);
    } else {
        sig64 = b64url(sig, sig_len);
    }
    if (sig64) {
        out = malloc(input_len + 1 + strlen(sig64) + 1);
        if (out)
            sprintf(out, "%s.%s", input, sig64);
    }
    free(input);
done:
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(sig64);
    free(h64);
    free(c64);
    return out;
}
