/* s3.c — S3-compatible object store client and SigV4 presigner (s3.h). */
#include "media/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

/* Percent-encodes s into out (len bytes) as SigV4 wants (RFC 3986:
 * unreserved characters stay; '/' stays when keep_slash). Returns 0 or -1
 * when out is too small. */
static int uri_encode(const char *s, bool keep_slash, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
                     (keep_slash && *p == '/');
        if (o + (plain ? 1 : 3) >= len)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char *out)
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

int sigv4_presign(const struct s3_config *c, const char *key, const char *amz_date, int expires_s,
                  int host_style, char *out, size_t len)
{
    const char *rest = strstr(c->endpoint, "://");
    if (rest == NULL || strlen(amz_date) != 16)
        return -1;
    char scheme[8], host[256], path[1400], ekey[1024];
    snprintf(scheme, sizeof scheme, "%.*s", (int)(rest - c->endpoint), c->endpoint);
    rest += 3;
    size_t hlen = strcspn(rest, "/");
    if (uri_encode(key, true, ekey, sizeof ekey) < 0)
        return -1;
    if (host_style) {
        snprintf(host, sizeof host, "%s.%.*s", c->bucket, (int)hlen, rest);
        snprintf(path, sizeof path, "/%s", ekey);
    } else {
        snprintf(host, sizeof host, "%.*s", (int)hlen, rest);
        snprintf(path, sizeof path, "/%s/%s", c->bucket, ekey);
    }
    char date[9], scope[256], cred[512], ecred[768];
    snprintf(date, sizeof date, "%.8s", amz_date);
    snprintf(scope, sizeof scope, "%s/%s/s3/aws4_request", date, c->region);
    snprintf(cred, sizeof cred, "%s/%s", c->access_key, scope);
    if (uri_encode(cred, false, ecred, sizeof ecred) < 0)
        return -1;
    /* The query, its parameters sorted by name. */
    char query[1200];
    snprintf(query, sizeof query,
             "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
             "&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
             ecred, amz_date, expires_s);
    char creq[3000];
    snprintf(creq, sizeof creq, "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", path, query,
             host);
    unsigned char digest[32];
    char creq_hex[65];
    SHA256((const unsigned char *)creq, strlen(creq), digest);
    to_hex(digest, 32, creq_hex);
    char sts[512];
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hex);
    /* The signing key: the secret, the date, the region, the service. */
    char k0[300];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    snprintf(k0, sizeof k0, "AWS4%s", c->secret_key);
    hmac((const unsigned char *)k0, strlen(k0), date, k1);
    hmac(k1, 32, c->region, k2);
    hmac(k2, 32, "s3", k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts, sig);
    char sig_hex[65];
    to_hex(sig, 32, sig_hex);
    int n = snprintf(out, len, "%s://%s%s?%s&X-Amz-Signature=%s", scheme, host, path, query,
                     sig_hex);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ---- requests ---- */

/* S3 wants the payload's SHA-256 signed on every request (libcurl 7.88
 * adds none of its own): a GET's or DELETE's is that of nothing. */
#define EMPTY_PAYLOAD \
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The object's URL, path-style, into out. Returns 0 or -1. */
static int object_url(const struct s3_config *c, const char *key, char *out, size_t len)
{
    char ekey[1024];
    if (uri_encode(key, true, ekey, sizeof ekey) < 0)
        return -1;
    int n = snprintf(out, len, "%s/%s/%s", c->endpoint, c->bucket, ekey);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* A curl handle for c with the signing set up; NULL when out of memory. */
static CURL *handle(const struct s3_config *c, const char *url, char *userpwd, size_t ulen,
                    char *sigv4, size_t slen)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    snprintf(userpwd, ulen, "%s:%s", c->access_key, c->secret_key);
    snprintf(sigv4, slen, "aws:amz:%s:s3", c->region);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 300000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file && c->ca_file[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    return h;
}

/* The result of a performed request, logged when not OK. */
static enum s3_result result(CURL *h, CURLcode rc, const char *what, const char *key)
{
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return S3_OK;
    if (rc == CURLE_OK && status == 404)
        return S3_NOT_FOUND;
    if (rc == CURLE_WRITE_ERROR || rc == CURLE_READ_ERROR) {
        log_error("s3: %s %s: a local file failed", what, key);
        return S3_IO;
    }
    log_warn("s3: %s %s: %s (HTTP %ld)", what, key,
             rc == CURLE_OK ? "refused" : curl_easy_strerror(rc), status);
    return rc == CURLE_OK && status == 403 ? S3_DENIED : S3_UNAVAILABLE;
}

/* SHA-256 of the open file f as hex into out (65 bytes), then rewound.
 * Returns 0 or -1. */
static int file_sha256(FILE *f, char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    unsigned char buf[65536], d[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    unsigned int dlen = 0;
    int ok = !ferror(f) && EVP_DigestFinal_ex(ctx, d, &dlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    to_hex(d, 32, out);
    rewind(f);
    return 0;
}

enum s3_result s3_put_file(const struct s3_config *c, const char *key, const char *path,
                           const char *type)
{
    char url[1500], userpwd[600], sigv4[128], sha[65];
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) < 0 || file_sha256(f, sha) < 0) {
        log_error("s3: cannot read %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return S3_IO;
    }
    CURL *h = object_url(c, key, url, sizeof url) == 0
                  ? handle(c, url, userpwd, sizeof userpwd, sigv4, sizeof sigv4)
                  : NULL;
    if (h == NULL) {
        fclose(f);
        return S3_IO;
    }
    char h_sha[100], h_type[200];
    snprintf(h_sha, sizeof h_sha, "x-amz-content-sha256: %s", sha);
    snprintf(h_type, sizeof h_type, "Content-Type: %s", type ? type : "application/octet-stream");
    struct curl_slist *hdrs = curl_slist_append(NULL, h_sha);
    hdrs = curl_slist_append(hdrs, h_type);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READDATA, f);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    enum s3_result r = result(h, curl_easy_perform(h), "PUT", key);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    fclose(f);
    return r;
}

struct sink {
    CURL *h;
    int fd;
    bool failed;
};

/* Writes the body of a 2xx answer to the sink's descriptor; an error
 * answer's body is dropped. */
static size_t sink_write(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return size * n;
    size_t left = size * n;
    while (left > 0) {
        ssize_t w = write(s->fd, data, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->failed = true;
            return 0;
        }
        data += w;
        left -= (size_t)w;
    }
    return size * n;
}

enum s3_result s3_get_to_fd(const struct s3_config *c, const char *key, int fd)
{
    char url[1500], userpwd[600], sigv4[128];
    CURL *h = object_url(c, key, url, sizeof url) == 0
                  ? handle(c, url, userpwd, sizeof userpwd, sigv4, sizeof sigv4)
                  : NULL;
    if (h == NULL)
        return S3_IO;
    struct sink s = {h, fd, false};
    struct curl_slist *hdrs = curl_slist_append(NULL, EMPTY_PAYLOAD);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    enum s3_result r = result(h, curl_easy_perform(h), "GET", key);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return s.failed ? S3_IO : r;
}

enum s3_result s3_delete(const struct s3_config *c, const char *key)
{
    char url[1500], userpwd[600], sigv4[128];
    CURL *h = object_url(c, key, url, sizeof url) == 0
                  ? handle(c, url, userpwd, sizeof userpwd, sigv4, sizeof sigv4)
                  : NULL;
    if (h == NULL)
        return S3_IO;
    struct curl_slist *hdrs = curl_slist_append(NULL, EMPTY_PAYLOAD);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    enum s3_result r = result(h, curl_easy_perform(h), "DELETE", key);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return r == S3_NOT_FOUND ? S3_OK : r;
}
