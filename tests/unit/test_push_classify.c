/* test_push_classify.c — what an APNs or FCM answer means (wire_classify,
 * push/push_wire.h; docs/push.md "Retries"): sent; retry on any transport
 * error (timeouts, connection, TLS, HTTP/2), 429 and 5xx; drop the token on
 * APNs 410 / 400 BadDeviceToken / 400 DeviceTokenNotForTopic and FCM 404
 * UNREGISTERED / 400 INVALID_ARGUMENT; a new provider token on APNs 403
 * ExpiredProviderToken and FCM 401; everything else rejected, the token
 * kept. Bodies are the providers' real error shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "push/push_wire.h"

struct answer_case {
    CURLcode code;
    long status;
    const char *body;
    enum wire_outcome want;
};

static const char *outcome_name(enum wire_outcome o)
{
    switch (o) {
    case WIRE_SENT: return "sent";
    case WIRE_NEW_TOKEN: return "new_token";
    case WIRE_GONE: return "gone";
    case WIRE_BAD_TOKEN: return "bad_token";
    case WIRE_RETRY: return "retry";
    case WIRE_REJECTED: return "rejected";
    }
    return "?";
}

static void check_cases(enum push_provider p, const struct answer_case *cases, size_t n)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        const struct answer_case *c = &cases[i];
        enum wire_outcome got = wire_classify(p, c->code, c->status, c->body);
        if (got != c->want) {
            fprintf(stderr, "%s, curl %d, HTTP %ld, body %s: %s, want %s\n", wire_name(p),
                    (int)c->code, c->status, c->body ? c->body : "(null)", outcome_name(got),
                    outcome_name(c->want));
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

#define CHECK(p, cases) check_cases(p, cases, sizeof cases / sizeof cases[0])

/* APNs error bodies: {"reason": "..."} (410 adds a timestamp). */
#define APNS(reason) "{\"reason\":\"" reason "\"}"

static void test_apns(void **state)
{
    (void)state;
    static const struct answer_case cases[] = {
        {CURLE_OK, 200, "", WIRE_SENT},
        {CURLE_OK, 200, NULL, WIRE_SENT},
        /* the device token */
        {CURLE_OK, 400, APNS("BadDeviceToken"), WIRE_BAD_TOKEN},
        {CURLE_OK, 400, APNS("DeviceTokenNotForTopic"), WIRE_BAD_TOKEN},
        {CURLE_OK, 410, "{\"reason\":\"Unregistered\",\"timestamp\":1700000000000}", WIRE_GONE},
        {CURLE_OK, 410, APNS("ExpiredToken"), WIRE_GONE},
        {CURLE_OK, 410, "", WIRE_GONE}, /* 410 is enough */
        {CURLE_OK, 410, NULL, WIRE_GONE},
        /* the provider token */
        {CURLE_OK, 403, APNS("ExpiredProviderToken"), WIRE_NEW_TOKEN},
        {CURLE_OK, 403, APNS("InvalidProviderToken"), WIRE_REJECTED}, /* a new one would not do */
        {CURLE_OK, 403, APNS("MissingProviderToken"), WIRE_REJECTED},
        {CURLE_OK, 403, "", WIRE_REJECTED},
        /* the reason only counts with its status */
        {CURLE_OK, 400, APNS("ExpiredProviderToken"), WIRE_REJECTED},
        {CURLE_OK, 403, APNS("BadDeviceToken"), WIRE_REJECTED},
        {CURLE_OK, 404, APNS("BadDeviceToken"), WIRE_REJECTED},
        /* other refusals of this one push: the token stays */
        {CURLE_OK, 400, APNS("BadCollapseId"), WIRE_REJECTED},
        {CURLE_OK, 400, APNS("PayloadEmpty"), WIRE_REJECTED},
        {CURLE_OK, 400, APNS("TopicDisallowed"), WIRE_REJECTED},
        {CURLE_OK, 400, "", WIRE_REJECTED},
        {CURLE_OK, 400, NULL, WIRE_REJECTED},
        {CURLE_OK, 404, APNS("BadPath"), WIRE_REJECTED},
        {CURLE_OK, 405, APNS("MethodNotAllowed"), WIRE_REJECTED},
        {CURLE_OK, 413, APNS("PayloadTooLarge"), WIRE_REJECTED},
        /* FCM's answers mean nothing special from APNs */
        {CURLE_OK, 401, "", WIRE_REJECTED},
        {CURLE_OK, 404, "{\"error\":{\"status\":\"NOT_FOUND\",\"errorCode\":\"UNREGISTERED\"}}",
         WIRE_REJECTED},
        {CURLE_OK, 400, "{\"error\":{\"status\":\"INVALID_ARGUMENT\"}}", WIRE_REJECTED},
        /* only 200 is sent */
        {CURLE_OK, 201, "", WIRE_REJECTED},
        {CURLE_OK, 204, "", WIRE_REJECTED},
        {CURLE_OK, 302, "", WIRE_REJECTED},
        {CURLE_OK, 0, "", WIRE_REJECTED},
        /* later */
        {CURLE_OK, 429, APNS("TooManyRequests"), WIRE_RETRY},
        {CURLE_OK, 429, APNS("TooManyProviderTokenUpdates"), WIRE_RETRY},
        {CURLE_OK, 500, APNS("InternalServerError"), WIRE_RETRY},
        {CURLE_OK, 502, "", WIRE_RETRY},
        {CURLE_OK, 503, APNS("ServiceUnavailable"), WIRE_RETRY},
        {CURLE_OK, 503, APNS("Shutdown"), WIRE_RETRY},
        {CURLE_OK, 599, NULL, WIRE_RETRY},
    };
    CHECK(PROVIDER_APNS, cases);
}

/* FCM HTTP v1 error bodies: a google.rpc.Status with an FcmError detail. */
#define FCM(code, status, fcm_code)                                                    \
    "{\"error\":{\"code\":" #code ",\"message\":\"...\",\"status\":\"" status "\","    \
    "\"details\":[{\"@type\":\"type.googleapis.com/google.firebase.fcm.v1.FcmError\"," \
    "\"errorCode\":\"" fcm_code "\"}]}}"

static void test_fcm(void **state)
{
    (void)state;
    static const struct answer_case cases[] = {
        {CURLE_OK, 200, "{\"name\":\"projects/p/messages/0:1700000000%abc\"}", WIRE_SENT},
        {CURLE_OK, 200, NULL, WIRE_SENT},
        /* the device token */
        {CURLE_OK, 404, FCM(404, "NOT_FOUND", "UNREGISTERED"), WIRE_GONE},
        {CURLE_OK, 400, FCM(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), WIRE_BAD_TOKEN},
        {CURLE_OK, 400, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\"}}",
         WIRE_BAD_TOKEN},
        /* the access token */
        {CURLE_OK, 401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}",
         WIRE_NEW_TOKEN},
        {CURLE_OK, 401, FCM(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), WIRE_NEW_TOKEN},
        {CURLE_OK, 401, "", WIRE_NEW_TOKEN},
        {CURLE_OK, 401, NULL, WIRE_NEW_TOKEN},
        /* the code only counts with its status */
        {CURLE_OK, 404, "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\"}}", WIRE_REJECTED},
        {CURLE_OK, 404, "", WIRE_REJECTED},
        {CURLE_OK, 404, NULL, WIRE_REJECTED},
        {CURLE_OK, 400, FCM(400, "FAILED_PRECONDITION", "UNREGISTERED"), WIRE_REJECTED},
        {CURLE_OK, 400, "", WIRE_REJECTED},
        {CURLE_OK, 403, FCM(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), WIRE_REJECTED},
        /* APNs's answers mean nothing special from FCM */
        {CURLE_OK, 410, APNS("Unregistered"), WIRE_REJECTED},
        {CURLE_OK, 403, APNS("ExpiredProviderToken"), WIRE_REJECTED},
        {CURLE_OK, 400, APNS("BadDeviceToken"), WIRE_REJECTED},
        {CURLE_OK, 204, "", WIRE_REJECTED},
        /* later */
        {CURLE_OK, 429, FCM(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), WIRE_RETRY},
        {CURLE_OK, 500, FCM(500, "INTERNAL", "INTERNAL"), WIRE_RETRY},
        {CURLE_OK, 503, FCM(503, "UNAVAILABLE", "UNAVAILABLE"), WIRE_RETRY},
        {CURLE_OK, 504, "", WIRE_RETRY},
    };
    CHECK(PROVIDER_FCM, cases);
}

/* No answer, or a broken one: retry, whatever status and body came. */
static void test_transport_errors_retry(void **state)
{
    (void)state;
    static const CURLcode errors[] = {
        CURLE_OPERATION_TIMEDOUT,
        CURLE_COULDNT_CONNECT,
        CURLE_COULDNT_RESOLVE_HOST,
        CURLE_SSL_CONNECT_ERROR,
        CURLE_PEER_FAILED_VERIFICATION,
        CURLE_SEND_ERROR,
        CURLE_RECV_ERROR,
        CURLE_GOT_NOTHING,
        CURLE_HTTP2,
        CURLE_HTTP2_STREAM,
        CURLE_PARTIAL_FILE,
        CURLE_OUT_OF_MEMORY,
    };
    static const struct {
        long status;
        const char *body;
    } answers[] = {
        {0, ""},
        {0, NULL},
        {200, ""},
        {410, APNS("Unregistered")},
        {400, APNS("BadDeviceToken")},
        {403, APNS("ExpiredProviderToken")},
        {404, FCM(404, "NOT_FOUND", "UNREGISTERED")},
        {401, ""},
    };
    for (int p = PROVIDER_APNS; p <= PROVIDER_FCM; p++)
        for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
            for (size_t j = 0; j < sizeof answers / sizeof answers[0]; j++)
                if (wire_classify((enum push_provider)p, errors[i], answers[j].status,
                                  answers[j].body) != WIRE_RETRY)
                    fail_msg("%s: curl %d with HTTP %ld is not a retry", wire_name(p),
                             (int)errors[i], answers[j].status);
}

/* Every status from 100 to 599 with no body: which are not "rejected". */
static void test_status_sweep(void **state)
{
    (void)state;
    for (long s = 100; s <= 599; s++) {
        enum wire_outcome a = wire_classify(PROVIDER_APNS, CURLE_OK, s, "");
        enum wire_outcome f = wire_classify(PROVIDER_FCM, CURLE_OK, s, "");
        enum wire_outcome want_a = s == 200               ? WIRE_SENT
                                   : s == 410             ? WIRE_GONE
                                   : s == 429 || s >= 500 ? WIRE_RETRY
                                                          : WIRE_REJECTED;
        enum wire_outcome want_f = s == 200               ? WIRE_SENT
                                   : s == 401             ? WIRE_NEW_TOKEN
                                   : s == 429 || s >= 500 ? WIRE_RETRY
                                                          : WIRE_REJECTED;
        if (a != want_a || f != want_f)
            fail_msg("HTTP %ld: apns %s (want %s), fcm %s (want %s)", s, outcome_name(a),
                     outcome_name(want_a), outcome_name(f), outcome_name(want_f));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apns),
        cmocka_unit_test(test_fcm),
        cmocka_unit_test(test_transport_errors_retry),
        cmocka_unit_test(test_status_sweep),
    };
    return cmocka_run_group_tests_name("push_classify", tests, NULL, NULL);
}
