/* stats.c — latency histograms and process sampling.
 *
 * Histogram: HDR-like log-linear buckets in microseconds. Values below 64 µs
 * have a bucket each; above, every power of two is split in 64 equal
 * buckets, so a bucket is at most 1/64 (1.6 %) of its value wide. Percentiles
 * report a bucket's midpoint, clamped to the exact min and max seen. */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int bucket_of(int64_t v)
{
    if (v < 0)
        v = 0;
    if (v < 2 * HIST_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v); /* v in [2^e, 2^(e+1)) */
    int shift = e - 6;
    int idx = shift * HIST_SUB + (int)(v >> shift);
    return idx < HIST_NB ? idx : HIST_NB - 1;
}

/* [lo, hi) of a bucket */
static void bucket_range(int idx, int64_t *lo, int64_t *hi)
{
    if (idx < 2 * HIST_SUB) {
        *lo = idx;
        *hi = idx + 1;
        return;
    }
    int shift = idx / HIST_SUB - 1;
    int64_t m = idx - shift * HIST_SUB; /* in [64, 128) */
    *lo = m << shift;
    *hi = (m + 1) << shift;
}

void hist_add(struct hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->b[bucket_of(us)]++;
    if (h->n == 0 || us < h->min)
        h->min = us;
    if (h->n == 0 || us > h->max)
        h->max = us;
    h->n++;
    h->sum += (double)us;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    if (from->n == 0)
        return;
    for (int i = 0; i < HIST_NB; i++)
        into->b[i] += from->b[i];
    if (into->n == 0 || from->min < into->min)
        into->min = from->min;
    if (into->n == 0 || from->max > into->max)
        into->max = from->max;
    into->n += from->n;
    into->sum += from->sum;
}

int64_t hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t cum = 0;
    for (int i = 0; i < HIST_NB; i++) {
        cum += h->b[i];
        if (cum >= rank) {
            int64_t lo, hi;
            bucket_range(i, &lo, &hi);
            int64_t v = (lo + hi - 1) / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

json_t *hist_json(const struct hist *h)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "n", (json_int_t)h->n, "p50_us",
                     (json_int_t)hist_pct(h, 50), "p90_us", (json_int_t)hist_pct(h, 90), "p99_us",
                     (json_int_t)hist_pct(h, 99), "p999_us", (json_int_t)hist_pct(h, 99.9),
                     "max_us", (json_int_t)(h->n ? h->max : 0), "mean_us",
                     h->n ? h->sum / (double)h->n : 0.0);
}

struct psample proc_sample(pid_t pid)
{
    struct psample s = {.wall_us = now_us()};
    if (pid <= 0)
        return s;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return s;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold spaces. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return s;
    p += 2;
    unsigned long long utime = 0, stime = 0;
    long threads = 0;
    /* state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
     * cutime cstime priority nice num_threads(20) */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld",
               &utime, &stime, &threads) != 3)
        return s;
    long tck = sysconf(_SC_CLK_TCK);
    s.cpu_s = (double)(utime + stime) / (double)tck;
    s.threads = (int)threads;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return s;
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "VmRSS:", 6) == 0)
            s.rss_kb = strtoll(buf + 6, NULL, 10);
    fclose(f);
    s.ok = true;
    return s;
}

double proc_cpu_pct(const struct psample *a, const struct psample *b)
{
    double wall = (double)(b->wall_us - a->wall_us) / 1e6;
    if (!a->ok || !b->ok || wall <= 0)
        return -1;
    return (b->cpu_s - a->cpu_s) / wall * 100.0;
}

double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

json_t *proc_json(const struct psample *a, const struct psample *b)
{
    if (!a->ok || !b->ok)
        return json_null();
    return json_pack("{s:f, s:f, s:I, s:I, s:i}", "cpu_pct", proc_cpu_pct(a, b), "cpu_s",
                     b->cpu_s - a->cpu_s, "rss_kb_start", (json_int_t)a->rss_kb, "rss_kb_end",
                     (json_int_t)b->rss_kb, "threads", b->threads);
}
