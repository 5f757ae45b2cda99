/* vmb_stats.h: latency samples and their summary (median, p90, p99, max, mean, ops/s) for vmlock-bench. */
#ifndef VMB_STATS_H
#define VMB_STATS_H

#include <stddef.h>

#include "vml_error.h"

/* A growable array of latencies in microseconds. */
typedef struct vmb_samples {
    double *us;
    size_t count;
    size_t capacity;
} vmb_samples;

typedef struct vmb_summary {
    size_t count;
    double median_us;
    double p90_us;
    double p99_us;
    double max_us;
    double min_us;
    double mean_us;
    double ops_per_s;               /* 1e6 / mean: one client doing these back to back */
} vmb_summary;

/* Append one sample; -1 with err when memory runs out. */
int vmb_samples_add(vmb_samples *samples, double us, vml_error *err);

/* Append every sample of from. */
int vmb_samples_merge(vmb_samples *into, const vmb_samples *from, vml_error *err);

/* Summary of the samples (sorts a copy; an empty set gives all zeros).  */
int vmb_samples_summarize(const vmb_samples *samples, vmb_summary *out, vml_error *err);

/* Nearest-rank percentile p (0..100) of sorted[0..count). */
double vmb_percentile(const double *sorted, size_t count, double p);

/* A sorted malloc'd copy of the samples (owned by the caller), or NULL with err. */
double *vmb_samples_sorted(const vmb_samples *samples, vml_error *err);

/* Free the samples' storage; the struct becomes empty.  Accepts NULL. */
void vmb_samples_free(vmb_samples *samples);

#endif
