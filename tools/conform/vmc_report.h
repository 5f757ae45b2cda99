/* vmc_report.h: the conformance suite's TAP output: one line per check, known deviations of a plugin, the summary. */
#ifndef VMC_REPORT_H
#define VMC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vml_error.h"

/* One check of the catalogue: a stable id (used in deviation files) and what it asserts. */
typedef struct vmc_check_info {
    const char *id;
    const char *description;
} vmc_check_info;

/* A known deviation of the plugin under test, from a deviation file. */
typedef struct vmc_deviation {
    char *id;
    char *reason;
    bool used;                      /* its check ran */
} vmc_deviation;

/* A result kept for the summary. */
typedef struct vmc_outcome {
    char *id;
    char *reason;                   /* deviations: why; failures: NULL */
    char *observed;
} vmc_outcome;

/*
 * The state of one run.  Results go to out (stdout) as they happen.  A failed check that the
 * deviation file lists is printed "not ok ... # TODO known deviation: REASON" (TAP's
 * expected failure) and counted apart; a listed check that passes is an unexpected pass,
 * counted as a failure (the list is stale).  Never does a deviation count as a pass.
 */
typedef struct vmc_report {
    FILE *out;
    const vmc_check_info *checks;   /* borrowed catalogue */
    size_t nchecks;
    vmc_deviation *deviations;
    size_t ndeviations;
    unsigned int count;
    unsigned int passed;
    unsigned int failed;
    unsigned int deviated;
    unsigned int stale;             /* listed deviations that passed */
    unsigned int skipped;
    vmc_outcome *deviation_log;
    size_t ndeviation_log;
    vmc_outcome *failure_log;
    size_t nfailure_log;
    char observed[2048];            /* diagnostics gathered for the next result */
} vmc_report;

/* checks (borrowed, must outlive the report) is the catalogue every reported id must be in. */
void vmc_report_init(vmc_report *report, FILE *out, const vmc_check_info *checks,
                     size_t nchecks);

/*
 * Read a deviation file: one "CHECK-ID REASON..." per line; '#' starts a comment line.  An id
 * not in the catalogue, a missing reason or a duplicate is an error naming FILE:LINE.
 */
int vmc_report_load_deviations(vmc_report *report, const char *path, vml_error *err);

/* The catalogue entry of id, or NULL. */
const vmc_check_info *vmc_report_find(const vmc_report *report, const char *id);

/*
 * Add a line to what the next result prints as "#   observed: ..." lines (and keeps for the
 * summary).  Also printed at once as a TAP comment.
 */
void vmc_report_observe(vmc_report *report, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A TAP comment line, not kept. */
void vmc_report_diag(vmc_report *report, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The result of check id (a known deviation if listed). */
void vmc_report_result(vmc_report *report, const char *id, bool passed);

/*
 * Check id could not be made (its setup failed, e.g. a domain it needs did not start): a
 * failure even when the check is a listed deviation, since nothing was observed.
 */
void vmc_report_broken(vmc_report *report, const char *id, const char *why);

/* Check id does not apply to this plugin (e.g. it leaves QEMU no descriptor): a TAP skip. */
void vmc_report_skip(vmc_report *report, const char *id, const char *why);

/*
 * Print the summary (counts, each known deviation with its reason and what was observed, each
 * failure) and the TAP plan.  Returns the exit status: 0 when nothing failed and no listed
 * deviation passed, 1 otherwise.
 */
int vmc_report_finish(vmc_report *report, const char *plugin, const char *config);

/* Free what the report holds.  Accepts NULL. */
void vmc_report_free(vmc_report *report);

#endif
