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
    fprintf(f, "# HELP chatd_up 1 while the process serves.\n# TYPE chatd_up gauge\nchatd_up 1\n");
    fclose(f);
    *len = size;
    return buf;
}
