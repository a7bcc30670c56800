/* jwt.h — signing JSON Web Tokens (RFC 7519) with OpenSSL's EVP: ES256 for
 * APNs provider tokens, RS256 for Google service-account assertions. Only
 * signing; chatd never verifies tokens of this kind.
 *
 * May call: base, OpenSSL, jansson. */
#ifndef CHAT_JWT_H
#define CHAT_JWT_H

#include <jansson.h>
#include <stddef.h>

struct jwt_key; /* an OpenSSL private key */

/* Reads a PEM private key (PKCS#8, EC P-256 or RSA) from a file. Returns the
 * key (free with jwt_key_free) or NULL with the reason logged. */
struct jwt_key *jwt_key_from_file(const char *path);

/* The same from PEM text in memory (len bytes). */
struct jwt_key *jwt_key_from_pem(const char *pem, size_t len);

void jwt_key_free(struct jwt_key *key);

/* Signs header.claims (both JSON objects, borrowed) with key: alg must be
 * "ES256" (an EC key) or "RS256" (an RSA key) and is set in the header.
 * Returns the compact JWT as a malloc'd string (caller frees), or NULL. */
char *jwt_sign(struct jwt_key *key, const char *alg, json_t *header, json_t *claims);

/* Converts an ECDSA P-256 signature from DER (a SEQUENCE of the INTEGERs r
 * and s, as OpenSSL's EVP_DigestSign gives it; len bytes) to the form JWS
 * wants for ES256 (RFC 7518 section 3.4): r and s as 32-byte big-endian
 * numbers, zero-padded on the left, in raw[0..32) and raw[32..64). Returns
 * 0, or -1 when der is not exactly one such signature in strict DER (no
 * bytes after it, no BER length forms), when r or s is zero, or when r or s
 * does not fit in 32 bytes (raw is then unspecified). Thread-safe. */
int jwt_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64]);

#endif
