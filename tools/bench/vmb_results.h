/* vmb_results.h: vmlock-bench's results: rows of latency samples per participant, scope and metric; the human table, JSON and ratios. */
#ifndef VMB_RESULTS_H
#define VMB_RESULTS_H

#include <stdio.h>

#include "vmb_stats.h"
#include "vml_error.h"

#define VMB_MAX_PARTICIPANTS 3

/* One measured series: e.g. participant 0, scope "K=256", metric "cycle". */
typedef struct vmb_row {
    unsigned int participant;
    char scope[48];
    char metric[16];
    double x;                       /* numeric scope for curves (disks: K), else 0 */
    vmb_samples samples;            /* owned */
    vmb_summary summary;            /* filled by vmb_results_finish */
    double cpu_us_per_op;           /* the daemon's CPU per operation; < 0 unknown */
    double wall_ops_per_s;          /* operations per second of wall time (parallel); < 0 n/a */
    long rss_kib;                   /* the daemon's VmRSS after the series; < 0 n/a */
} vmb_row;

typedef struct vmb_participant_info {
    const char *label;
    const char *plugin;             /* NULL for the floor */
    const char *config;
    int daemon_pid;                 /* 0 unknown */
    int is_floor;
} vmb_participant_info;

/* Everything one run measured.  Strings are borrowed for the results' life. */
typedef struct vmb_results {
    const char *mode;
    const char *command;            /* the command line, for reproduction */
    char machine[512];
    vmb_participant_info participants[VMB_MAX_PARTICIPANTS];
    unsigned int nparticipants;
    vmb_row *rows;
    size_t nrows;
} vmb_results;

/* The row (participant, scope, metric), created empty (cpu/ops/rss unknown) if new. */
vmb_row *vmb_results_row(vmb_results *results, unsigned int participant, const char *scope,
                         const char *metric, double x, vml_error *err);

/* Compute every row's summary. */
int vmb_results_finish(vmb_results *results, vml_error *err);

/* The human table and the ratios (B / A, X / floor) on out. */
void vmb_results_print_table(const vmb_results *results, FILE *out);

/* The same as one JSON document on out. */
void vmb_results_print_json(const vmb_results *results, FILE *out);

/* Free the rows.  Accepts NULL. */
void vmb_results_free(vmb_results *results);

#endif
