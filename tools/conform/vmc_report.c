/* vmc_report.c: the conformance suite's TAP output, known-deviation lists and summary. */
#include "vmc_report.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEVIATION_LINE_MAX 4096

void vmc_report_init(vmc_report *report, FILE *out, const vmc_check_info *checks,
                     size_t nchecks)
{
    memset(report, 0, sizeof(*report));
    report->out = out;
    report->checks = checks;
    report->nchecks = nchecks;
}

const vmc_check_info *vmc_report_find(const vmc_report *report, const char *id)
{
    for (size_t i = 0; i < report->nchecks; i++) {
        if (strcmp(report->checks[i].id, id) == 0)
            return &report->checks[i];
    }
    return NULL;
}

static vmc_deviation *find_deviation(vmc_report *report, const char *id)
{
    for (size_t i = 0; i < report->ndeviations; i++) {
        if (strcmp(report->deviations[i].id, id) == 0)
            return &report->deviations[i];
    }
    return NULL;
}

int vmc_report_load_deviations(vmc_report *report, const char *path, vml_error *err)
{
    char line[DEVIATION_LINE_MAX];
    unsigned int lineno = 0;
    FILE *file;
    int ret = -1;

    file = fopen(path, "re");
    if (file == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot read deviation file %s", path);
        return -1;
    }
    while (fgets(line, sizeof(line), file) != NULL) {
        vmc_deviation *grown;
        char *id = line;
        char *reason;
        size_t len = strlen(line);

        lineno++;
        if (len > 0 && line[len - 1] != '\n' && !feof(file)) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: line longer than %d bytes", path, lineno,
                          DEVIATION_LINE_MAX - 1);
            goto out;
        }
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        while (isspace((unsigned char)*id))
            id++;
        if (*id == '\0' || *id == '#')
            continue;
        reason = id + strcspn(id, " \t");
        if (*reason != '\0')
            *reason++ = '\0';
        while (isspace((unsigned char)*reason))
            reason++;
        if (vmc_report_find(report, id) == NULL) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: '%s' is not a check of this suite (vmlock-conform --list "
                          "shows them)", path, lineno, id);
            goto out;
        }
        if (*reason == '\0') {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: deviation '%s' has no reason: write why after the id",
                          path, lineno, id);
            goto out;
        }
        if (find_deviation(report, id) != NULL) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: deviation '%s' is listed twice", path, lineno, id);
            goto out;
        }
        grown = realloc(report->deviations, (report->ndeviations + 1) * sizeof(*grown));
        if (grown == NULL) {
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot read %s", path);
            goto out;
        }
        report->deviations = grown;
        memset(&grown[report->ndeviations], 0, sizeof(grown[0]));
        grown[report->ndeviations].id = strdup(id);
        grown[report->ndeviations].reason = strdup(reason);
        report->ndeviations++;
        if (grown[report->ndeviations - 1].id == NULL ||
            grown[report->ndeviations - 1].reason == NULL) {
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot read %s", path);
            goto out;
        }
    }
    if (ferror(file)) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot read deviation file %s", path);
        goto out;
    }
    ret = 0;
 out:
    fclose(file);
    return ret;
}

static void vprint_comment(vmc_report *report, const char *prefix, const char *fmt, va_list ap)
{
    char text[2048];

    vsnprintf(text, sizeof(text), fmt, ap);
    /* One TAP comment per line of text. */
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        fprintf(report->out, "#%s%s\n", prefix, line);
    }
    fflush(report->out);
}

void vmc_report_observe(vmc_report *report, const char *fmt, ...)
{
    size_t used = strlen(report->observed);
    va_list ap;

    va_start(ap, fmt);
    vprint_comment(report, "   ", fmt, ap);
    va_end(ap);
    if (used > 0 && used + 3 < sizeof(report->observed)) {
        memcpy(report->observed + used, "; ", 3);
        used += 2;
    }
    if (used < sizeof(report->observed) - 1) {
        va_start(ap, fmt);
        vsnprintf(report->observed + used, sizeof(report->observed) - used, fmt, ap);
        va_end(ap);
    }
}

void vmc_report_diag(vmc_report *report, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_comment(report, " ", fmt, ap);
    va_end(ap);
}

/* Keep (id, reason, observed) in log; on allocation failure the summary just lacks it. */
static void log_outcome(vmc_outcome **log, size_t *count, const char *id, const char *reason,
                        const char *observed)
{
    vmc_outcome *grown = realloc(*log, (*count + 1) * sizeof(*grown));

    if (grown == NULL)
        return;
    *log = grown;
    grown[*count].id = strdup(id);
    grown[*count].reason = reason != NULL ? strdup(reason) : NULL;
    grown[*count].observed = strdup(observed);
    (*count)++;
}

static const char *description_of(const vmc_report *report, const char *id)
{
    const vmc_check_info *info = vmc_report_find(report, id);

    return info != NULL ? info->description : "(not in the catalogue)";
}

void vmc_report_result(vmc_report *report, const char *id, bool passed)
{
    vmc_deviation *deviation = find_deviation(report, id);
    const char *description = description_of(report, id);

    report->count++;
    if (deviation != NULL) {
        deviation->used = true;
        if (passed) {
            report->stale++;
            fprintf(report->out, "ok %u - %s: %s # TODO listed as a known deviation, but it "
                    "passed: remove it from the list (%s)\n", report->count, id, description,
                    deviation->reason);
            log_outcome(&report->failure_log, &report->nfailure_log, id,
                        "listed as a known deviation but passed", report->observed);
        } else {
            report->deviated++;
            fprintf(report->out, "not ok %u - %s: %s # TODO known deviation: %s\n",
                    report->count, id, description, deviation->reason);
            log_outcome(&report->deviation_log, &report->ndeviation_log, id,
                        deviation->reason, report->observed);
        }
    } else if (passed) {
        report->passed++;
        fprintf(report->out, "ok %u - %s: %s\n", report->count, id, description);
    } else {
        report->failed++;
        fprintf(report->out, "not ok %u - %s: %s\n", report->count, id, description);
        log_outcome(&report->failure_log, &report->nfailure_log, id, NULL, report->observed);
    }
    fflush(report->out);
    report->observed[0] = '\0';
}

void vmc_report_broken(vmc_report *report, const char *id, const char *why)
{
    vmc_deviation *deviation = find_deviation(report, id);

    if (deviation != NULL)
        deviation->used = true;
    vmc_report_observe(report, "not checked: %s", why);
    report->count++;
    report->failed++;
    fprintf(report->out, "not ok %u - %s: %s (could not be checked)\n", report->count, id,
            description_of(report, id));
    log_outcome(&report->failure_log, &report->nfailure_log, id, NULL, report->observed);
    fflush(report->out);
    report->observed[0] = '\0';
}

void vmc_report_skip(vmc_report *report, const char *id, const char *why)
{
    report->count++;
    report->skipped++;
    fprintf(report->out, "ok %u - %s: %s # SKIP %s\n", report->count, id,
            description_of(report, id), why);
    fflush(report->out);
    report->observed[0] = '\0';
}

int vmc_report_finish(vmc_report *report, const char *plugin, const char *config)
{
    FILE *out = report->out;

    fprintf(out, "# ---- summary: plugin %s, config %s\n", plugin,
            config != NULL ? config : "(none)");
    fprintf(out, "# %u checks: %u passed, %u failed, %u known deviations, %u skipped",
            report->count, report->passed, report->failed + report->stale, report->deviated,
            report->skipped);
    if (report->stale > 0)
        fprintf(out, " (%u of the failures: listed deviations that passed)", report->stale);
    fprintf(out, "\n");
    if (report->ndeviation_log > 0) {
        fprintf(out, "# known deviations of this plugin (not counted as passes):\n");
        for (size_t i = 0; i < report->ndeviation_log; i++) {
            const vmc_outcome *o = &report->deviation_log[i];

            fprintf(out, "#   %s: %s\n", o->id, description_of(report, o->id));
            fprintf(out, "#     why: %s\n", o->reason != NULL ? o->reason : "");
            if (o->observed != NULL && o->observed[0] != '\0')
                fprintf(out, "#     observed: %s\n", o->observed);
        }
    }
    for (size_t i = 0; i < report->ndeviations; i++) {
        if (!report->deviations[i].used)
            fprintf(out, "# note: listed deviation %s was not checked in this run\n",
                    report->deviations[i].id);
    }
    if (report->nfailure_log > 0) {
        fprintf(out, "# failures:\n");
        for (size_t i = 0; i < report->nfailure_log; i++) {
            const vmc_outcome *o = &report->failure_log[i];

            fprintf(out, "#   %s: %s%s%s\n", o->id, description_of(report, o->id),
                    o->reason != NULL ? " -- " : "", o->reason != NULL ? o->reason : "");
            if (o->observed != NULL && o->observed[0] != '\0')
                fprintf(out, "#     observed: %s\n", o->observed);
        }
    }
    fprintf(out, "1..%u\n", report->count);
    fflush(out);
    return report->failed == 0 && report->stale == 0 ? 0 : 1;
}

static void free_log(vmc_outcome *log, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(log[i].id);
        free(log[i].reason);
        free(log[i].observed);
    }
    free(log);
}

void vmc_report_free(vmc_report *report)
{
    if (report == NULL)
        return;
    for (size_t i = 0; i < report->ndeviations; i++) {
        free(report->deviations[i].id);
        free(report->deviations[i].reason);
    }
    free(report->deviations);
    free_log(report->deviation_log, report->ndeviation_log);
    free_log(report->failure_log, report->nfailure_log);
    report->deviations = NULL;
    report->deviation_log = NULL;
    report->failure_log = NULL;
}
