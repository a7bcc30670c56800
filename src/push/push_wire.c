/* push_wire.c — provider credentials, tokens and request shapes (see
 * push_wire.h and docs/push.md).
 *
 * APNs: one ES256 JWT made from the .p8 key, reused for APNS_JWT_TTL_S
 * (Apple wants it between 20 and 60 minutes old at most) and remade after an
 * ExpiredProviderToken. FCM: an RS256 assertion of the service account is
 * exchanged at the token URL for an access token, cached until 5 minutes
 * before it expires. */
#include "push/push_wire.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/jwt.h"
#include "base/log.h"
#include "base/util.h"

#define APNS_JWT_TTL_S (40 * 60)
#define APNS_MAX_PAYLOAD 4096
#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"

static struct {
    char apns_url[256], apns_key_id[64], apns_team_id[64], apns_topic[256];
    struct jwt_key *apns_key;
    char *apns_jwt;
    int64_t apns_jwt_at; /* unix seconds */

    char fcm_url[256], fcm_token_url[256], fcm_project[128], fcm_email[256], fcm_key_id[128];
    struct jwt_key *fcm_key;
    char *fcm_access;
    int64_t fcm_access_until; /* unix seconds */

    char ca_file[512];
} w;

static int load_fcm(const struct config *cfg)
{
    json_error_t err;
    json_t *sa = json_load_file(cfg->fcm_credentials_file, 0, &err);
    const char *email, *key, *key_id = "", *token_uri = "", *project;
    if (sa == NULL || json_unpack(sa, "{s:s, s:s, s:s, s?:s, s?:s}", "client_email", &email,
                                  "private_key", &key, "project_id", &project, "private_key_id",
                                  &key_id, "token_uri", &token_uri) != 0) {
        log_error("push: %s is not a service-account JSON (client_email, private_key, "
                  "project_id)",
                  cfg->fcm_credentials_file);
        json_decref(sa);
        return -1;
    }
    snprintf(w.fcm_email, sizeof w.fcm_email, "%s", email);
    snprintf(w.fcm_key_id, sizeof w.fcm_key_id, "%s", key_id);
    snprintf(w.fcm_project, sizeof w.fcm_project, "%s", project);
    snprintf(w.fcm_token_url, sizeof w.fcm_token_url, "%s",
             cfg->fcm_token_url[0] ? cfg->fcm_token_url : token_uri);
    w.fcm_key = jwt_key_from_pem(key, strlen(key));
    json_decref(sa);
    if (w.fcm_key == NULL || w.fcm_token_url[0] == '\0') {
        log_error("push: the service account has no usable key or token_uri");
        return -1;
    }
    return 0;
}

int wire_init(const struct config *cfg)
{
    memset(&w, 0, sizeof w);
    snprintf(w.apns_url, sizeof w.apns_url, "%s", cfg->apns_url);
    snprintf(w.apns_key_id, sizeof w.apns_key_id, "%s", cfg->apns_key_id);
    snprintf(w.apns_team_id, sizeof w.apns_team_id, "%s", cfg->apns_team_id);
    snprintf(w.apns_topic, sizeof w.apns_topic, "%s", cfg->apns_topic);
    snprintf(w.fcm_url, sizeof w.fcm_url, "%s", cfg->fcm_url);
    snprintf(w.ca_file, sizeof w.ca_file, "%s", cfg->push_ca_file);
    if (cfg->apns_key_file[0]) {
        if (!cfg->apns_key_id[0] || !cfg->apns_team_id[0]) {
            log_error("push: apns_key_file needs apns_key_id and apns_team_id");
            return -1;
        }
        if ((w.apns_key = jwt_key_from_file(cfg->apns_key_file)) == NULL)
            return -1;
    }
    if (cfg->fcm_credentials_file[0] && load_fcm(cfg) < 0)
        return -1;
    return 0;
}

void wire_free(void)
{
    jwt_key_free(w.apns_key);
    jwt_key_free(w.fcm_key);
    free(w.apns_jwt);
    free(w.fcm_access);
    memset(&w, 0, sizeof w);
}

bool wire_enabled(enum push_provider p)
{
    return p == PROVIDER_APNS ? w.apns_key != NULL : w.fcm_key != NULL;
}

const char *wire_name(enum push_provider p) { return p == PROVIDER_APNS ? "apns" : "fcm"; }

int wire_parse(const char *name, enum push_provider *p)
{
    if (name && strcmp(name, "apns") == 0)
        *p = PROVIDER_APNS;
    else if (name && strcmp(name, "fcm") == 0)
        *p = PROVIDER_FCM;
    else
        return -1;
    return 0;
}

void wire_common_options(CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 15000L);
    if (w.ca_file[0])
        curl_easy_setopt(easy, CURLOPT_CAINFO, w.ca_file);
}

void wire_token_expired(enum push_provider p)
{
    if (p == PROVIDER_APNS) {
        free(w.apns_jwt);
        w.apns_jwt = NULL;
    } else {
        free(w.fcm_access);
        w.fcm_access = NULL;
    }
}

static const char *apns_jwt(void)
{
    int64_t now = now_ms() / 1000;
    if (w.apns_jwt && now - w.apns_jwt_at < APNS_JWT_TTL_S)
        return w.apns_jwt;
    free(w.apns_jwt);
    json_t *h = json_pack("{s:s}", "kid", w.apns_key_id);
    json_t *c = json_pack("{s:s, s:I}", "iss", w.apns_team_id, "iat", (json_int_t)now);
    w.apns_jwt = jwt_sign(w.apns_key, "ES256", h, c);
    w.apns_jwt_at = now;
    json_decref(h);
    json_decref(c);
    return w.apns_jwt;
}

size_t wire_collect(char *data, size_t size, size_t n, void *arg)
{
    struct push_answer *a = arg;
    size_t take = size * n;
    if (take > sizeof a->data - 1 - a->len)
        take = sizeof a->data - 1 - a->len;
    memcpy(a->data + a->len, data, take);
    a->len += take;
    a->data[a->len] = '\0';
    return size * n;
}

/* Exchanges a fresh service-account assertion for an access token. */
static const char *fcm_access_token(void)
{
    int64_t now = now_ms() / 1000;
    if (w.fcm_access && now < w.fcm_access_until)
        return w.fcm_access;
    free(w.fcm_access);
    w.fcm_access = NULL;
    json_t *h = json_pack("{s:s, s:s}", "typ", "JWT", "kid", w.fcm_key_id);
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", w.fcm_email, "scope", FCM_SCOPE,
                          "aud", w.fcm_token_url, "iat", (json_int_t)now, "exp",
                          (json_int_t)(now + 3600));
    char *assertion = jwt_sign(w.fcm_key, "RS256", h, c);
    json_decref(h);
    json_decref(c);
    CURL *easy = curl_easy_init();
    struct push_answer answer = {.len = 0};
    if (assertion == NULL || easy == NULL)
        goto done;
    char *escaped = curl_easy_escape(easy, assertion, 0);
    size_t form_len = strlen(escaped) + 128;
    char *form = malloc(form_len);
    snprintf(form, form_len,
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s",
             escaped);
    curl_free(escaped);
    wire_common_options(easy);
    curl_easy_setopt(easy, CURLOPT_URL, w.fcm_token_url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, wire_collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &answer);
    CURLcode rc = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    free(form);
    json_t *tok = rc == CURLE_OK && status == 200 ? json_loads(answer.data, 0, NULL) : NULL;
    const char *access = json_string_value(json_object_get(tok, "access_token"));
    json_int_t expires = json_integer_value(json_object_get(tok, "expires_in"));
    if (access) {
        w.fcm_access = strdup(access);
        w.fcm_access_until = now + (expires > 600 ? expires - 300 : expires / 2);
    } else {
        log_warn("push: FCM token exchange failed (curl %d, HTTP %ld)", (int)rc, status);
    }
    json_decref(tok);
done:
    if (easy)
        curl_easy_cleanup(easy);
    free(assertion);
    return w.fcm_access;
}

/* The APNs payload, with the preview shortened until it fits 4 KB. */
static char *apns_body(const struct push_content *c)
{
    if (c->clear) {
        json_t *j = json_pack("{s:{s:i}, s:s, s:I, s:I}", "aps", "content-available", 1, "type",
                              "clear", "thread_id", (json_int_t)c->thread_id, "seq",
                              (json_int_t)c->seq);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
    }
    size_t keep = strlen(c->body);
    for (;;) {
        char thread[24];
        snprintf(thread, sizeof thread, "%lld", (long long)c->thread_id);
        json_t *j = json_pack("{s:{s:{s:s, s:s%}, s:I, s:s, s:s}, s:I, s:I}", "aps", "alert",
                              "title", c->title, "body", c->body, keep, "badge",
                              (json_int_t)c->badge, "sound", "default", "thread-id", thread,
                              "thread_id", (json_int_t)c->thread_id, "seq", (json_int_t)c->seq);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (s == NULL || strlen(s) <= APNS_MAX_PAYLOAD || keep == 0)
            return s;
        size_t over = strlen(s) - APNS_MAX_PAYLOAD;
        free(s);
        keep = utf8_prefix(c->body, keep, keep > over + 8 ? keep - over - 8 : 0);
    }
}

static char *fcm_body(const char *token, const struct push_content *c)
{
    char thread[24], seq[24], badge[24], collapse[40];
    snprintf(thread, sizeof thread, "%lld", (long long)c->thread_id);
    snprintf(seq, sizeof seq, "%lld", (long long)c->seq);
    snprintf(badge, sizeof badge, "%lld", (long long)c->badge);
    snprintf(collapse, sizeof collapse, "thread-%lld", (long long)c->thread_id);
    json_t *j;
    if (c->clear)
        j = json_pack("{s:{s:s, s:{s:s, s:s, s:s}, s:{s:s}}}", "message", "token", token, "data",
                      "type", "clear", "thread_id", thread, "seq", seq, "android", "priority",
                      "normal");
    else
        j = json_pack("{s:{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:s}}}", "message",
                      "token", token, "notification", "title", c->title, "body", c->body, "data",
                      "thread_id", thread, "seq", seq, "badge", badge, "android", "collapse_key",
                      collapse, "priority", "high");
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

char *wire_body(enum push_provider p, const char *device_token, const struct push_content *c)
{
    if (!c->clear && (c->title == NULL || c->body == NULL))
        return NULL;
    return p == PROVIDER_APNS ? apns_body(c) : fcm_body(device_token, c);
}

enum wire_outcome wire_classify(enum push_provider p, CURLcode code, long status, const char *body)
{
    if (body == NULL)
        body = "";
    if (code != CURLE_OK || status == 429 || status >= 500)
        return WIRE_RETRY;
    if (status == 200)
        return WIRE_SENT;
    if (p == PROVIDER_APNS) {
        if (status == 403 && strstr(body, "ExpiredProviderToken"))
            return WIRE_NEW_TOKEN;
        if (status == 410)
            return WIRE_GONE;
        if (status == 400 &&
            (strstr(body, "BadDeviceToken") || strstr(body, "DeviceTokenNotForTopic")))
            return WIRE_BAD_TOKEN;
    } else {
        if (status == 401)
            return WIRE_NEW_TOKEN;
        if (status == 404 && strstr(body, "UNREGISTERED"))
            return WIRE_GONE;
        if (status == 400 && strstr(body, "INVALID_ARGUMENT"))
            return WIRE_BAD_TOKEN;
    }
    return WIRE_REJECTED;
}

int wire_prepare(CURL *easy, enum push_provider p, const char *device_token, const char *topic,
                 const struct push_content *c, struct curl_slist **headers, char **body)
{
    char url[1024], line[1200];
    struct curl_slist *h = NULL;
    *headers = NULL;
    *body = NULL;
    if (p == PROVIDER_APNS) {
        const char *jwt = apns_jwt();
        if (jwt == NULL)
            return -1;
        snprintf(url, sizeof url, "%s/3/device/%s", w.apns_url, device_token);
        snprintf(line, sizeof line, "authorization: bearer %s", jwt);
        h = curl_slist_append(h, line);
        snprintf(line, sizeof line, "apns-topic: %s", topic && *topic ? topic : w.apns_topic);
        h = curl_slist_append(h, line);
        h = curl_slist_append(h, c->clear ? "apns-push-type: background" : "apns-push-type: alert");
        h = curl_slist_append(h, c->clear ? "apns-priority: 5" : "apns-priority: 10");
        snprintf(line, sizeof line, "apns-expiration: %lld", (long long)(now_ms() / 1000 + 86400));
        h = curl_slist_append(h, line);
        snprintf(line, sizeof line, "apns-collapse-id: thread-%lld", (long long)c->thread_id);
        h = curl_slist_append(h, line);
        *body = wire_body(p, device_token, c);
    } else {
        const char *access = fcm_access_token();
        if (access == NULL)
            return -1;
        snprintf(url, sizeof url, "%s/v1/projects/%s/messages:send", w.fcm_url, w.fcm_project);
        snprintf(line, sizeof line, "authorization: Bearer %s", access);
        h = curl_slist_append(h, line);
        *body = wire_body(p, device_token, c);
    }
    h = curl_slist_append(h, "content-type: application/json");
    *headers = h;
    if (*body == NULL)
        return -1;
    wire_common_options(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, *body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(*body));
    return 0;
}
