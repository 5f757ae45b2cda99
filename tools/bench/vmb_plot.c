/* vmb_plot.c: vmlock-bench's PNG plots (latency distributions, K-disk curves), drawn by gnuplot. */
#include "vmb_plot.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SERIES 64

/* gnuplot string literal contents: single-quoted, with quotes doubled. */
static void gp_quoted(FILE *out, const char *text)
{
    fputc('\'', out);
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            fputc('\'', out);
        fputc(*p, out);
    }
    fputc('\'', out);
}

static bool is_main_metric(const vmb_row *row)
{
    return strcmp(row->metric, "cycle") == 0 || strcmp(row->metric, "handoff") == 0;
}

/* Write the data file of one row: CDF points, or nothing for curves (done per participant). */
static int write_cdf(const vmb_row *row, const char *path, vml_error *err)
{
    FILE *file = fopen(path, "we");
    double *sorted;

    if (file == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", path);
        return -1;
    }
    sorted = vmb_samples_sorted(&row->samples, err);
    if (sorted == NULL) {
        fclose(file);
        return -1;
    }
    for (size_t i = 0; i < row->samples.count; i++)
        fprintf(file, "%.3f %.6f\n", sorted[i], (double)(i + 1) / (double)row->samples.count);
    free(sorted);
    if (fclose(file) != 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static int write_curve(const vmb_results *results, unsigned int participant, const char *path,
                       vml_error *err)
{
    FILE *file = fopen(path, "we");

    if (file == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", path);
        return -1;
    }
    for (size_t i = 0; i < results->nrows; i++) {
        const vmb_row *row = &results->rows[i];

        if (row->participant == participant && row->x > 0 && strcmp(row->metric, "cycle") == 0)
            fprintf(file, "%g %.3f %.3f\n", row->x, row->summary.median_us / 1000.0,
                    row->summary.p90_us / 1000.0);
    }
    if (fclose(file) != 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static int run_gnuplot(const char *script, vml_error *err)
{
    int status = 0;
    pid_t child;

    fflush(NULL);
    child = fork();
    if (child < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork gnuplot");
        return -1;
    }
    if (child == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(errno == ENOENT ? 127 : 126);
    }
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_NO_SUPPORT,
                      "gnuplot is not installed (Debian package gnuplot-nox)");
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_OPERATION_FAILED,
                      "gnuplot failed on %s (status 0x%x)", script, (unsigned int)status);
        return -1;
    }
    return 0;
}

int vmb_plot(const vmb_results *results, const char *png, vml_error *err)
{
    char dir[] = "/tmp/vmlock-bench-plot.XXXXXX";
    char script_path[PATH_MAX];
    char data_paths[MAX_SERIES][PATH_MAX];
    size_t ndata = 0;
    bool curves = false;
    FILE *script = NULL;
    int ret = -1;

    for (size_t i = 0; i < results->nrows; i++)
        curves = curves || results->rows[i].x > 0;
    if (mkdtemp(dir) == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create a plot directory");
        return -1;
    }
    snprintf(script_path, sizeof(script_path), "%s/plot.gp", dir);
    script = fopen(script_path, "we");
    if (script == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", script_path);
        goto out;
    }
    fputs("set terminal pngcairo size 1000,640 noenhanced font ',10'\nset output ", script);
    gp_quoted(script, png);
    fputs("\nset grid\n", script);
    if (curves) {
        fprintf(script, "set title 'vmlock-bench %s: one domain with K disks, cycle time "
                "(acquire + release)'\n", results->mode);
        fputs("set key left top\nset logscale xy\nset xlabel 'disks per domain (K)'\n"
              "set ylabel 'cycle time, ms (lines: median; dashed: p90)'\nplot ", script);
        for (unsigned int p = 0; p < results->nparticipants && ndata < MAX_SERIES; p++) {
            char *path = data_paths[ndata++];

            snprintf(path, PATH_MAX, "%s/curve-%u.dat", dir, p);
            if (write_curve(results, p, path, err) < 0)
                goto out;
            if (p > 0)
                fputs(", ", script);
            gp_quoted(script, path);
            fprintf(script, " using 1:2 with linespoints lw 2 lc %u title ", p + 1);
            gp_quoted(script, results->participants[p].label);
            fputs(", ", script);
            gp_quoted(script, path);
            fprintf(script, " using 1:3 with lines dt 2 lc %u notitle", p + 1);
        }
    } else {
        bool first = true;

        fprintf(script, "set title 'vmlock-bench %s: latency distribution'\n",
                results->mode);
        fputs("set key right bottom\nset logscale x\nset xlabel 'latency, microseconds'\n"
              "set ylabel 'fraction of operations at or below'\nset yrange [0:1]\nplot ",
              script);
        for (size_t i = 0; i < results->nrows && ndata < MAX_SERIES; i++) {
            const vmb_row *row = &results->rows[i];
            char title[160];
            char *path;

            if (!is_main_metric(row) || row->samples.count == 0)
                continue;
            path = data_paths[ndata++];
            snprintf(path, PATH_MAX, "%s/cdf-%zu.dat", dir, i);
            if (write_cdf(row, path, err) < 0)
                goto out;
            snprintf(title, sizeof(title), "%s %s %s (median %.0f us)",
                     results->participants[row->participant].label, row->scope, row->metric,
                     row->summary.median_us);
            if (!first)
                fputs(", ", script);
            first = false;
            gp_quoted(script, path);
            fputs(" using 1:2 with lines lw 2 title ", script);
            gp_quoted(script, title);
        }
        if (first) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "nothing to plot");
            goto out;
        }
    }
    fputc('\n', script);
    if (fclose(script) != 0) {
        script = NULL;
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write %s", script_path);
        goto out;
    }
    script = NULL;
    if (run_gnuplot(script_path, err) < 0)
        goto out;
    ret = 0;
 out:
    if (script != NULL)
        fclose(script);
    for (size_t i = 0; i < ndata; i++)
        (void)unlink(data_paths[i]);
    (void)unlink(script_path);
    (void)rmdir(dir);
    return ret;
}
