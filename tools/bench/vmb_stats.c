/* vmb_stats.c: latency samples and their summary for vmlock-bench. */
#include "vmb_stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int vmb_samples_add(vmb_samples *samples, double us, vml_error *err)
{
    if (samples->count == samples->capacity) {
        size_t capacity = samples->capacity == 0 ? 1024 : samples->capacity * 2;
        double *grown = realloc(samples->us, capacity * sizeof(*grown));

        if (grown == NULL) {
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot keep %zu samples",
                                capacity);
            return -1;
        }
        samples->us = grown;
        samples->capacity = capacity;
    }
    samples->us[samples->count++] = us;
    return 0;
}

int vmb_samples_merge(vmb_samples *into, const vmb_samples *from, vml_error *err)
{
    for (size_t i = 0; i < from->count; i++) {
        if (vmb_samples_add(into, from->us[i], err) < 0)
            return -1;
    }
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

double *vmb_samples_sorted(const vmb_samples *samples, vml_error *err)
{
    double *sorted = malloc((samples->count > 0 ? samples->count : 1) * sizeof(*sorted));

    if (sorted == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot sort %zu samples",
                            samples->count);
        return NULL;
    }
    if (samples->count > 0)
        memcpy(sorted, samples->us, samples->count * sizeof(*sorted));
    qsort(sorted, samples->count, sizeof(*sorted), compare_double);
    return sorted;
}

double vmb_percentile(const double *sorted, size_t count, double p)
{
    size_t rank;

    if (count == 0)
        return 0.0;
    /* Nearest rank: the smallest value with at least p% of the samples at or below it. */
    rank = (size_t)ceil(p / 100.0 * (double)count);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return sorted[rank - 1];
}

int vmb_samples_summarize(const vmb_samples *samples, vmb_summary *out, vml_error *err)
{
    double *sorted;
    double sum = 0.0;

    memset(out, 0, sizeof(*out));
    if (samples->count == 0)
        return 0;
    sorted = vmb_samples_sorted(samples, err);
    if (sorted == NULL)
        return -1;
    for (size_t i = 0; i < samples->count; i++)
        sum += sorted[i];
    out->count = samples->count;
    out->median_us = vmb_percentile(sorted, samples->count, 50.0);
    out->p90_us = vmb_percentile(sorted, samples->count, 90.0);
    out->p99_us = vmb_percentile(sorted, samples->count, 99.0);
    out->max_us = sorted[samples->count - 1];
    out->min_us = sorted[0];
    out->mean_us = sum / (double)samples->count;
    out->ops_per_s = out->mean_us > 0.0 ? 1e6 / out->mean_us : 0.0;
    free(sorted);
    return 0;
}

void vmb_samples_free(vmb_samples *samples)
{
    if (samples == NULL)
        return;
    free(samples->us);
    memset(samples, 0, sizeof(*samples));
}
