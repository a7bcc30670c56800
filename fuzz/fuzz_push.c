/* fuzz_push.c — the parsers of what push providers and key files send us:
 * wire_classify (a provider's answer: status and body), jwt_der_to_raw (a
 * DER ECDSA signature from OpenSSL) and jwt_key_from_pem (the APNs .p8 key
 * file). The first byte picks the parser; the next ones the provider and
 * status. Invariant: the outcome is one of the enum's values. */
#include <string.h>

#include "base/log.h"
#include "fuzz.h"
#include "push/jwt.h"
#include "push/push_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_set_level(LOG_ERROR); /* a refused key is logged as a warning */
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: {
        if (size < 4)
            return 0;
        enum push_provider p = data[1] & 1 ? PROVIDER_FCM : PROVIDER_APNS;
        CURLcode code = data[1] & 2 ? CURLE_OPERATION_TIMEDOUT : CURLE_OK;
        long status = 100 + ((data[2] << 8 | data[3]) % 500);
        char *body = malloc(size - 4 + 1);
        if (body == NULL)
            return 0;
        memcpy(body, data + 4, size - 4);
        body[size - 4] = '\0';
        enum wire_outcome o = wire_classify(p, code, status, body);
        FUZZ_CHECK(o >= WIRE_SENT && o <= WIRE_REJECTED);
        free(body);
        break;
    }
    case 1: {
        unsigned char raw[64];
        int rc = jwt_der_to_raw(data + 1, size - 1, raw);
        FUZZ_CHECK(rc == 0 || rc == -1);
        break;
    }
    case 2: {
        struct jwt_key *key = jwt_key_from_pem((const char *)data + 1, size - 1);
        jwt_key_free(key);
        break;
    }
    }
    return 0;
}
