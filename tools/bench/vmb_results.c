/* vmb_results.c: vmlock-bench's result rows, the human table, the JSON document and the ratios between participants. */
#include "vmb_results.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

vmb_row *vmb_results_row(vmb_results *results, unsigned int participant, const char *scope,
                         const char *metric, double x, vml_error *err)
{
    vmb_row *grown;
    vmb_row *row;

    for (size_t i = 0; i < results->nrows; i++) {
        row = &results->rows[i];
        if (row->participant == participant && strcmp(row->scope, scope) == 0 &&
            strcmp(row->metric, metric) == 0)
            return row;
    }
    grown = realloc(results->rows, (results->nrows + 1) * sizeof(*grown));
    if (grown == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot keep results");
        return NULL;
    }
    results->rows = grown;
    row = &grown[results->nrows++];
    memset(row, 0, sizeof(*row));
    row->participant = participant;
    snprintf(row->scope, sizeof(row->scope), "%s", scope);
    snprintf(row->metric, sizeof(row->metric), "%s", metric);
    row->x = x;
    row->cpu_us_per_op = -1.0;
    row->wall_ops_per_s = -1.0;
    row->rss_kib = -1;
    return row;
}

int vmb_results_finish(vmb_results *results, vml_error *err)
{
    for (size_t i = 0; i < results->nrows; i++) {
        if (vmb_samples_summarize(&results->rows[i].samples, &results->rows[i].summary,
                                  err) < 0)
            return -1;
    }
    return 0;
}

static const vmb_row *find_row(const vmb_results *results, unsigned int participant,
                               const char *scope, const char *metric)
{
    for (size_t i = 0; i < results->nrows; i++) {
        const vmb_row *row = &results->rows[i];

        if (row->participant == participant && strcmp(row->scope, scope) == 0 &&
            strcmp(row->metric, metric) == 0)
            return row;
    }
    return NULL;
}

/* A ratio between two participants' rows of the same scope and metric. */
typedef struct ratio {
    unsigned int numerator;
    unsigned int denominator;
    const vmb_row *top;
    const vmb_row *bottom;
} ratio;

static double safe_div(double a, double b)
{
    return b > 0.0 ? a / b : 0.0;
}

/*
 * The comparisons worth printing: every other plugin against the first (B / A: how many
 * times slower B is), and every plugin against the floor (X / floor: how far above the floor).
 */
static size_t collect_ratios(const vmb_results *results, ratio *out, size_t max)
{
    int floor_index = -1;
    size_t n = 0;

    for (unsigned int p = 0; p < results->nparticipants; p++) {
        if (results->participants[p].is_floor)
            floor_index = (int)p;
    }
    for (size_t i = 0; i < results->nrows && n < max; i++) {
        const vmb_row *row = &results->rows[i];
        const vmb_participant_info *info = &results->participants[row->participant];
        const vmb_row *other;

        if (info->is_floor)
            continue;
        if (row->participant > 0 && !results->participants[0].is_floor &&
            (other = find_row(results, 0, row->scope, row->metric)) != NULL) {
            out[n++] = (ratio){ row->participant, 0, row, other };
        }
        if (floor_index >= 0 && n < max &&
            (other = find_row(results, (unsigned int)floor_index, row->scope, row->metric)) !=
                NULL) {
            out[n++] = (ratio){ row->participant, (unsigned int)floor_index, row, other };
        }
    }
    return n;
}

#define MAX_RATIOS 256

void vmb_results_print_table(const vmb_results *results, FILE *out)
{
    ratio ratios[MAX_RATIOS];
    size_t nratios = collect_ratios(results, ratios, MAX_RATIOS);

    fprintf(out, "vmlock-bench %s on %s\n", results->mode, results->machine);
    for (unsigned int p = 0; p < results->nparticipants; p++) {
        const vmb_participant_info *info = &results->participants[p];

        if (info->is_floor)
            fprintf(out, "  %s: the floor daemon (pid %d)\n", info->label, info->daemon_pid);
        else
            fprintf(out, "  %s: %s, config %s, daemon pid %s%d\n", info->label, info->plugin,
                    info->config, info->daemon_pid > 0 ? "" : "unknown ",
                    info->daemon_pid > 0 ? info->daemon_pid : 0);
    }
    fprintf(out, "\n%-14s %-16s %-8s %7s %10s %10s %10s %10s %10s %11s\n", "participant",
            "scope", "metric", "n", "median_us", "p90_us", "p99_us", "max_us", "ops/s",
            "daemon_cpu");
    for (size_t i = 0; i < results->nrows; i++) {
        const vmb_row *row = &results->rows[i];
        char cpu[32] = "-";

        if (row->cpu_us_per_op >= 0.0)
            snprintf(cpu, sizeof(cpu), "%.1fus/op", row->cpu_us_per_op);
        fprintf(out, "%-14s %-16s %-8s %7zu %10.1f %10.1f %10.1f %10.1f %10.0f %11s\n",
                results->participants[row->participant].label, row->scope, row->metric,
                row->summary.count, row->summary.median_us, row->summary.p90_us,
                row->summary.p99_us, row->summary.max_us,
                row->wall_ops_per_s >= 0.0 ? row->wall_ops_per_s : row->summary.ops_per_s, cpu);
        if (row->rss_kib >= 0)
            fprintf(out, "%-14s %-16s daemon VmRSS %ld KiB (%.1f MiB)\n", "", "",
                    row->rss_kib, (double)row->rss_kib / 1024.0);
    }
    if (nratios > 0) {
        fprintf(out, "\n%-24s %-16s %-8s %8s %8s %8s %8s\n", "ratio", "scope", "metric",
                "median", "p90", "p99", "cpu");
        for (size_t i = 0; i < nratios; i++) {
            const ratio *r = &ratios[i];
            char name[64];
            char cpu[16] = "-";

            snprintf(name, sizeof(name), "%s / %s", results->participants[r->numerator].label,
                     results->participants[r->denominator].label);
            if (r->top->cpu_us_per_op > 0.0 && r->bottom->cpu_us_per_op > 0.0)
                snprintf(cpu, sizeof(cpu), "%.2f",
                         r->top->cpu_us_per_op / r->bottom->cpu_us_per_op);
            fprintf(out, "%-24s %-16s %-8s %8.2f %8.2f %8.2f %8s\n", name, r->top->scope,
                    r->top->metric, safe_div(r->top->summary.median_us,
                                             r->bottom->summary.median_us),
                    safe_div(r->top->summary.p90_us, r->bottom->summary.p90_us),
                    safe_div(r->top->summary.p99_us, r->bottom->summary.p99_us), cpu);
        }
    }
    if (results->command != NULL)
        fprintf(out, "\ncommand: %s\n", results->command);
    fflush(out);
}

/* A JSON string literal. */
static void json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(text != NULL ? text : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* A JSON number, or null for "unknown". */
static void json_number(FILE *out, double value, bool known)
{
    if (known)
        fprintf(out, "%.3f", value);
    else
        fputs("null", out);
}

void vmb_results_print_json(const vmb_results *results, FILE *out)
{
    ratio ratios[MAX_RATIOS];
    size_t nratios = collect_ratios(results, ratios, MAX_RATIOS);

    fputs("{\n  \"tool\": \"vmlock-bench\",\n  \"mode\": ", out);
    json_string(out, results->mode);
    fputs(",\n  \"machine\": ", out);
    json_string(out, results->machine);
    fputs(",\n  \"command\": ", out);
    json_string(out, results->command);
    fputs(",\n  \"participants\": [", out);
    for (unsigned int p = 0; p < results->nparticipants; p++) {
        const vmb_participant_info *info = &results->participants[p];

        fputs(p > 0 ? ",\n    {" : "\n    {", out);
        fputs("\"label\": ", out);
        json_string(out, info->label);
        fputs(", \"floor\": ", out);
        fputs(info->is_floor ? "true" : "false", out);
        fputs(", \"plugin\": ", out);
        if (info->plugin != NULL)
            json_string(out, info->plugin);
        else
            fputs("null", out);
        fputs(", \"config\": ", out);
        if (info->config != NULL)
            json_string(out, info->config);
        else
            fputs("null", out);
        fprintf(out, ", \"daemon_pid\": %d}", info->daemon_pid);
    }
    fputs("\n  ],\n  \"rows\": [", out);
    for (size_t i = 0; i < results->nrows; i++) {
        const vmb_row *row = &results->rows[i];
        const vmb_summary *s = &row->summary;

        fputs(i > 0 ? ",\n    {" : "\n    {", out);
        fputs("\"participant\": ", out);
        json_string(out, results->participants[row->participant].label);
        fputs(", \"scope\": ", out);
        json_string(out, row->scope);
        fputs(", \"metric\": ", out);
        json_string(out, row->metric);
        fprintf(out, ", \"x\": %g, \"n\": %zu, \"median_us\": %.3f, \"p90_us\": %.3f, "
                "\"p99_us\": %.3f, \"max_us\": %.3f, \"min_us\": %.3f, \"mean_us\": %.3f, "
                "\"ops_per_s\": %.1f, \"wall_ops_per_s\": ", row->x, s->count, s->median_us,
                s->p90_us, s->p99_us, s->max_us, s->min_us, s->mean_us, s->ops_per_s);
        json_number(out, row->wall_ops_per_s, row->wall_ops_per_s >= 0.0);
        fputs(", \"daemon_cpu_us_per_op\": ", out);
        json_number(out, row->cpu_us_per_op, row->cpu_us_per_op >= 0.0);
        fputs(", \"daemon_rss_kib\": ", out);
        json_number(out, (double)row->rss_kib, row->rss_kib >= 0);
        fputc('}', out);
    }
    fputs("\n  ],\n  \"ratios\": [", out);
    for (size_t i = 0; i < nratios; i++) {
        const ratio *r = &ratios[i];
        bool cpu = r->top->cpu_us_per_op > 0.0 && r->bottom->cpu_us_per_op > 0.0;

        fputs(i > 0 ? ",\n    {" : "\n    {", out);
        fputs("\"numerator\": ", out);
        json_string(out, results->participants[r->numerator].label);
        fputs(", \"denominator\": ", out);
        json_string(out, results->participants[r->denominator].label);
        fputs(", \"scope\": ", out);
        json_string(out, r->top->scope);
        fputs(", \"metric\": ", out);
        json_string(out, r->top->metric);
        fprintf(out, ", \"median\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"cpu\": ",
                safe_div(r->top->summary.median_us, r->bottom->summary.median_us),
                safe_div(r->top->summary.p90_us, r->bottom->summary.p90_us),
                safe_div(r->top->summary.p99_us, r->bottom->summary.p99_us));
        json_number(out, cpu ? r->top->cpu_us_per_op / r->bottom->cpu_us_per_op : 0.0, cpu);
        fputc('}', out);
    }
    fputs("\n  ]\n}\n", out);
    fflush(out);
}

void vmb_results_free(vmb_results *results)
{
    if (results == NULL)
        return;
    for (size_t i = 0; i < results->nrows; i++)
        vmb_samples_free(&results->rows[i].samples);
    free(results->rows);
    results->rows = NULL;
    results->nrows = 0;
}
