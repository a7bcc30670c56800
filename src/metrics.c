/* metrics.c — request counters and latency histograms (see metrics.h). */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const double bucket_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof bucket_s / sizeof bucket_s[0])

struct route_stats {
    atomic_uint_fast64_t by_class[6]; /* index status/100: 1xx..5xx */
    atomic_uint_fast64_t buckets[NBUCKETS + 1];
    atomic_uint_fast64_t sum_us;
};

static struct route_stats *stats;
static size_t nslots;

static const char *const push_results[PUSH_RESULT_COUNT] = {"ok", "unregistered", "bad_token",
                                                            "retry", "failed"};
static const double push_bucket_s[] = {0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 30, 60};
#define PUSH_BUCKETS (sizeof push_bucket_s / sizeof push_bucket_s[0])
static atomic_uint_fast64_t push_counts[2][PUSH_RESULT_COUNT];
static atomic_uint_fast64_t push_latency[PUSH_BUCKETS + 1];
static atomic_uint_fast64_t push_latency_sum_ms;
static atomic_int_fast64_t push_outbox;

void metrics_push_result(int provider, int result, int64_t latency_ms)
{
    if (provider < 0 || provider > 1 || result < 0 || result >= PUSH_RESULT_COUNT)
        return;
    atomic_fetch_add(&push_counts[provider][result], 1);
    size_t b = 0;
    while (b < PUSH_BUCKETS && (double)latency_ms / 1000 > push_bucket_s[b])
        b++;
    atomic_fetch_add(&push_latency[b], 1);
    atomic_fetch_add(&push_latency_sum_ms, (uint64_t)(latency_ms > 0 ? latency_ms : 0));
}

void metrics_push_outbox(int64_t depth) { atomic_store(&push_outbox, depth); }

static void render_push(FILE *f)
{
    static const char *const providers[2] = {"apns", "fcm"};
    fprintf(f, "# HELP chatd_push_requests_total Requests to push providers, by outcome.\n"
               "# TYPE chatd_push_requests_total counter\n");
    for (int p = 0; p < 2; p++)
        for (int r = 0; r < PUSH_RESULT_COUNT; r++)
            fprintf(f, "chatd_push_requests_total{provider=\"%s\",result=\"%s\"} %llu\n",
                    providers[p], push_results[r], (unsigned long long)atomic_load(&push_counts[p][r]));
    fprintf(f, "# HELP chatd_push_outbox_depth Push jobs waiting in the outbox.\n"
               "# TYPE chatd_push_outbox_depth gauge\nchatd_push_outbox_depth %lld\n",
            (long long)atomic_load(&push_outbox));
    fprintf(f, "# HELP chatd_push_latency_seconds From a message stored to the provider's answer.\n"
               "# TYPE chatd_push_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b <= PUSH_BUCKETS; b++) {
        cum += atomic_load(&push_latency[b]);
        if (b < PUSH_BUCKETS)
            fprintf(f, "chatd_push_latency_seconds_bucket{le=\"%g\"} %llu\n", push_bucket_s[b],
                    (unsigned long long)cum);
        else
            fprintf(f, "chatd_push_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    }
    fprintf(f, "chatd_push_latency_seconds_sum %.3f\nchatd_push_latency_seconds_count %llu\n",
            (double)atomic_load(&push_latency_sum_ms) / 1000, (unsigned long long)cum);
}

int metrics_init(void)
{
    nslots = routes_count + 2;
    stats = calloc(nslots, sizeof *stats);
    return stats ? 0 : -1;
}

size_t metrics_route_static(void) { return routes_count; }
size_t metrics_route_unmatched(void) { return routes_count + 1; }

void metrics_observe(size_t route, int status, int64_t duration_us)
{
    if (stats == NULL || route >= nslots)
        return;
    struct route_stats *s = &stats[route];
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add(&s->by_class[cls], 1);
    size_t b = 0;
    while (b < NBUCKETS && (double)duration_us / 1e6 > bucket_s[b])
        b++;
    atomic_fetch_add(&s->buckets[b], 1);
    atomic_fetch_add(&s->sum_us, (uint64_t)(duration_us > 0 ? duration_us : 0));
}

static void route_label(size_t i, char *buf, size_t len)
{
    if (i < routes_count)
        snprintf(buf, len, "%s %s", routes[i].method, routes[i].pattern);
    else
        snprintf(buf, len, "%s", i == routes_count ? "static" : "unmatched");
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    fprintf(f, "# HELP chatd_http_requests_total HTTP requests answered, by route and status class.\n"
               "# TYPE chatd_http_requests_total counter\n");
    for (size_t i = 0; i < nslots; i++) {
        char label[128];
        route_label(i, label, sizeof label);
        for (int c = 1; c <= 5; c++) {
            uint64_t n = atomic_load(&stats[i].by_class[c]);
            if (n)
                fprintf(f, "chatd_http_requests_total{route=\"%s\",status=\"%dxx\"} %llu\n", label,
                        c, (unsigned long long)n);
        }
    }
    fprintf(f, "# HELP chatd_http_request_duration_seconds Time from request to answer.\n"
               "# TYPE chatd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nslots; i++) {
        uint64_t total = 0;
        for (size_t b = 0; b <= NBUCKETS; b++)
            total += atomic_load(&stats[i].buckets[b]);
        if (total == 0)
            continue;
        char label[128];
        route_label(i, label, sizeof label);
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load(&stats[i].buckets[b]);
            if (b < NBUCKETS)
                fprintf(f, "chatd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                        label, bucket_s[b], (unsigned long long)cum);
            else
                fprintf(f, "chatd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                        label, (unsigned long long)cum);
        }
        fprintf(f, "chatd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label,
                (double)atomic_load(&stats[i].sum_us) / 1e6);
        fprintf(f, "chatd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", label,
                (unsigned long long)total);
    }
    render_push(f);
    fprintf(f, "# HELP chatd_up 1 while the process serves.\n# TYPE chatd_up gauge\nchatd_up 1\n");
    fclose(f);
    *len = size;
    return buf;
}
