/* metrics.c — counters and histograms in Prometheus text format (see
 * metrics.h).
 *
 * Every histogram is a struct hist: fixed upper bounds in seconds, atomic
 * bucket counts and a sum in microseconds, so an observation is a few
 * relaxed atomic adds and rendering needs no lock. */
#include "base/metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 16

struct hist {
    const double *le; /* upper bounds, seconds, ascending */
    size_t n;
    atomic_uint_fast64_t counts[MAX_BUCKETS + 1]; /* the last is +Inf */
    atomic_uint_fast64_t sum_us;
};

static const double fast_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
static const double slow_le[] = {0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 30, 60};
#define FAST sizeof fast_le / sizeof fast_le[0]
#define SLOW sizeof slow_le / sizeof slow_le[0]

static void hist_observe(struct hist *h, int64_t us)
{
    size_t b = 0;
    while (b < h->n && (double)us / 1e6 > h->le[b])
        b++;
    atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

/* Writes name_bucket/_sum/_count lines; labels is "" or `route="…",`. */
static void hist_render(FILE *f, const char *name, const char *labels, struct hist *h)
{
    uint64_t cum = 0;
    for (size_t b = 0; b <= h->n; b++) {
        cum += atomic_load(&h->counts[b]);
        if (b < h->n)
            fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, h->le[b],
                    (unsigned long long)cum);
        else
            fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    /* _sum and _count carry the labels without the trailing comma. */
    char plain[160] = "";
    size_t len = strlen(labels);
    if (len > 1 && len < sizeof plain - 2)
        snprintf(plain, sizeof plain, "{%.*s}", (int)(len - 1), labels);
    fprintf(f, "%s_sum%s %.6f\n%s_count%s %llu\n", name, plain,
            (double)atomic_load(&h->sum_us) / 1e6, name, plain, (unsigned long long)cum);
}

static uint64_t hist_total(struct hist *h)
{
    uint64_t n = 0;
    for (size_t b = 0; b <= h->n; b++)
        n += atomic_load(&h->counts[b]);
    return n;
}

struct route_stats {
    atomic_uint_fast64_t by_class[6]; /* index status/100: 1xx..5xx */
    struct hist duration;
};

static struct route_stats *stats;
static size_t nslots;

static const char *const push_results[PUSH_RESULT_COUNT] = {"ok", "unregistered", "bad_token",
                                                            "retry", "failed"};
static atomic_uint_fast64_t push_counts[2][PUSH_RESULT_COUNT];
static struct hist push_latency = {slow_le, SLOW, {0}, 0};
static atomic_int_fast64_t push_outbox;
static struct hist stages[STAGE_COUNT] = {{fast_le, FAST, {0}, 0}, {fast_le, FAST, {0}, 0}};
static const char *const stage_names[STAGE_COUNT] = {"chatd_send_commit_seconds",
                                                     "chatd_commit_wake_seconds"};
static const char *const stage_help[STAGE_COUNT] = {
    "From a send request's arrival to its transaction's commit.",
    "From a commit waking the hub to the woken long-poll's handler running."};
static atomic_uint_fast64_t events_delivered;

/* The routes' labels, and the registered gauges. */
static const char *const *route_labels;
static size_t routes_count;
#define GAUGES_MAX 16
static struct {
    const char *name, *help;
    int64_t (*read)(void);
    bool counter;
} gauges[GAUGES_MAX];
static int ngauges;

int metrics_counter(const char *name, const char *help, int64_t (*read)(void))
{
    if (metrics_gauge(name, help, read) < 0)
        return -1;
    gauges[ngauges - 1].counter = true;
    return 0;
}

int metrics_gauge(const char *name, const char *help, int64_t (*read)(void))
{
    if (ngauges == GAUGES_MAX)
        return -1;
    gauges[ngauges].name = name;
    gauges[ngauges].help = help;
    gauges[ngauges].read = read;
    ngauges++;
    return 0;
}

int metrics_init(const char *const *labels, size_t n)
{
    route_labels = labels;
    routes_count = n;
    nslots = routes_count + 2;
    stats = calloc(nslots, sizeof *stats);
    if (stats == NULL)
        return -1;
    for (size_t i = 0; i < nslots; i++) {
        stats[i].duration.le = fast_le;
        stats[i].duration.n = FAST;
    }
    return 0;
}

size_t metrics_route_static(void) { return routes_count; }
size_t metrics_route_unmatched(void) { return routes_count + 1; }

void metrics_observe(size_t route, int status, int64_t duration_us)
{
    if (stats == NULL || route >= nslots)
        return;
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&stats[route].by_class[cls], 1, memory_order_relaxed);
    hist_observe(&stats[route].duration, duration_us);
}

void metrics_push_result(int provider, int result, int64_t latency_ms)
{
    if (provider < 0 || provider > 1 || result < 0 || result >= PUSH_RESULT_COUNT)
        return;
    atomic_fetch_add(&push_counts[provider][result], 1);
    hist_observe(&push_latency, latency_ms * 1000);
}

void metrics_push_outbox(int64_t depth) { atomic_store(&push_outbox, depth); }

void metrics_stage(enum metrics_stage stage, int64_t duration_us)
{
    if (stage < STAGE_COUNT)
        hist_observe(&stages[stage], duration_us);
}

void metrics_events_delivered(size_t n)
{
    atomic_fetch_add_explicit(&events_delivered, n, memory_order_relaxed);
}

static void route_label(size_t i, char *buf, size_t len)
{
    if (i < routes_count)
        snprintf(buf, len, "route=\"%s\",", route_labels[i]);
    else
        snprintf(buf, len, "route=\"%s\",", i == routes_count ? "static" : "unmatched");
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    char label[160];
    fprintf(f,
            "# HELP chatd_http_requests_total HTTP requests answered, by route and status class.\n"
            "# TYPE chatd_http_requests_total counter\n");
    for (size_t i = 0; i < nslots; i++) {
        route_label(i, label, sizeof label);
        for (int c = 1; c <= 5; c++) {
            uint64_t n = atomic_load(&stats[i].by_class[c]);
            if (n)
                fprintf(f, "chatd_http_requests_total{%sstatus=\"%dxx\"} %llu\n", label, c,
                        (unsigned long long)n);
        }
    }
    fprintf(f, "# HELP chatd_http_request_duration_seconds Time from request to answer "
               "(a long-poll's includes its wait).\n"
               "# TYPE chatd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nslots; i++) {
        if (hist_total(&stats[i].duration) == 0)
            continue;
        route_label(i, label, sizeof label);
        hist_render(f, "chatd_http_request_duration_seconds", label, &stats[i].duration);
    }
    for (int s = 0; s < STAGE_COUNT; s++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", stage_names[s], stage_help[s],
                stage_names[s]);
        hist_render(f, stage_names[s], "", &stages[s]);
    }
    for (int g = 0; g < ngauges; g++)
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", gauges[g].name, gauges[g].help,
                gauges[g].name, gauges[g].counter ? "counter" : "gauge", gauges[g].name,
                (long long)gauges[g].read());
    fprintf(f,
            "# HELP chatd_events_delivered_total Events handed out by inbox answers.\n"
            "# TYPE chatd_events_delivered_total counter\nchatd_events_delivered_total %llu\n",
            (unsigned long long)atomic_load(&events_delivered));

    static const char *const providers[2] = {"apns", "fcm"};
    fprintf(f, "# HELP chatd_push_requests_total Requests to push providers, by outcome.\n"
               "# TYPE chatd_push_requests_total counter\n");
    for (int p = 0; p < 2; p++)
        for (int r = 0; r < PUSH_RESULT_COUNT; r++)
            fprintf(f, "chatd_push_requests_total{provider=\"%s\",result=\"%s\"} %llu\n",
                    providers[p], push_results[r],
                    (unsigned long long)atomic_load(&push_counts[p][r]));
    fprintf(f,
            "# HELP chatd_push_outbox_depth Push jobs waiting in the outbox.\n"
            "# TYPE chatd_push_outbox_depth gauge\nchatd_push_outbox_depth %lld\n",
            (long long)atomic_load(&push_outbox));
    fprintf(f, "# HELP chatd_push_latency_seconds From a message stored to the provider's answer.\n"
               "# TYPE chatd_push_latency_seconds histogram\n");
    hist_render(f, "chatd_push_latency_seconds", "", &push_latency);
    fprintf(f, "# HELP chatd_up 1 while the process serves.\n# TYPE chatd_up gauge\nchatd_up 1\n");
    fclose(f);
    *len = size;
    return buf;
}
