/* push_wire.h — what goes over the wire to APNs and FCM: credentials, the
 * provider tokens (APNs JWT, FCM OAuth access token), each request's URL,
 * headers and JSON body, and what an answer means (docs/push.md). Used only
 * by the notifier thread (push.c), so nothing here is thread-safe unless its
 * comment says so.
 *
 * May call: push/jwt, base, libcurl, OpenSSL. */
#ifndef CHAT_PUSH_WIRE_H
#define CHAT_PUSH_WIRE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"

enum push_provider { PROVIDER_APNS = 0, PROVIDER_FCM = 1 };

/* What one notification says. Strings are borrowed. */
struct push_content {
    bool clear; /* a silent clear push, else an alert */
    int64_t thread_id, seq;
    const char *title; /* alert only */
    const char *body;  /* alert only; shortened here to fit 4 KB */
    int64_t badge;     /* alert only */
};

/* The start of a provider's answer body (the rest is dropped). */
struct push_answer {
    char data[4096];
    size_t len;
};

/* A CURLOPT_WRITEFUNCTION appending to the struct push_answer given as
 * CURLOPT_WRITEDATA, NUL-terminated, cut at its capacity. */
size_t wire_collect(char *data, size_t size, size_t n, void *answer);

/* Loads keys and the service account per cfg. Returns 0 or -1 (logged). */
int wire_init(const struct config *cfg);

/* Frees the credentials and cached tokens. */
void wire_free(void);

/* True when the provider has credentials. */
bool wire_enabled(enum push_provider p);

/* The provider's name: "apns" or "fcm". */
const char *wire_name(enum push_provider p);

/* Parses "apns"/"fcm"; returns 0 with *p, or -1. */
int wire_parse(const char *name, enum push_provider *p);

/* Prepares easy (a fresh or reset handle) to send content to a device:
 * URL, headers (*headers, caller frees with curl_slist_free_all), body
 * (*body, malloc'd, caller frees). Gets a provider token first when none is
 * cached (FCM: a blocking OAuth exchange). Returns 0, or -1 when no provider
 * token can be had (logged). */
int wire_prepare(CURL *easy, enum push_provider p, const char *device_token, const char *topic,
                 const struct push_content *c, struct curl_slist **headers, char **body);

/* What a provider's answer to a push means (docs/push.md "Retries"). */
enum wire_outcome {
    WIRE_SENT,      /* 200: delivered to the provider */
    WIRE_NEW_TOKEN, /* the provider token was refused (APNs 403 ExpiredProviderToken,
                       FCM 401): make a new one and send again */
    WIRE_GONE,      /* the device token is no longer valid (APNs 410, FCM 404
                       UNREGISTERED): drop it */
    WIRE_BAD_TOKEN, /* the device token is malformed or not for this app (APNs 400
                       BadDeviceToken / DeviceTokenNotForTopic, FCM 400
                       INVALID_ARGUMENT): drop it */
    WIRE_RETRY,     /* try again later: no answer (timeout, connection or TLS
                       failure: any curl error), 429, or 5xx */
    WIRE_REJECTED,  /* any other answer: log it, drop this push, keep the token */
};

/* Classifies the answer to one push request to provider p: code is the
 * transfer's curl result, status the HTTP status (0 when none came), body the
 * start of the answer's body (NUL-terminated; NULL reads as ""). A curl error
 * means retry whatever the status. Pure; thread-safe. */
enum wire_outcome wire_classify(enum push_provider p, CURLcode code, long status, const char *body);

/* The JSON body of a push of c to provider p (docs/push.md), compact, as a
 * malloc'd string (caller frees); NULL when memory is short, when an alert
 * lacks its title or body, when a string is not valid UTF-8, or (FCM) when
 * device_token is NULL.
 * APNs: {"aps":{...},"thread_id":<int>,"seq":<int>} (device_token unused: it
 * goes in the URL); an alert whose payload would exceed 4096 bytes has its
 * body shortened on a UTF-8 character boundary until it fits; the title is
 * never shortened, so a title near 4 KB by itself still gives a payload over
 * the limit (with an empty body).
 * FCM: {"message":{"token":device_token, ...}} with thread_id, seq and badge
 * as strings in "data"; nothing is shortened (push.c bounds the preview).
 * Pure; thread-safe. */
char *wire_body(enum push_provider p, const char *device_token, const struct push_content *c);

/* Forgets the provider token after the provider refused it (APNs
 * ExpiredProviderToken, FCM 401), so that the next request makes a new one. */
void wire_token_expired(enum push_provider p);

/* Applies the TLS and HTTP/2 options every provider request shares. */
void wire_common_options(CURL *easy);

#endif
