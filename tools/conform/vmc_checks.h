/* vmc_checks.h: the conformance checks: libvirt 9.0.0's lock-manager call sequences replayed with separate processes against any plugin. */
#ifndef VMC_CHECKS_H
#define VMC_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "vmc_report.h"

/* What to run.  Every string is borrowed for the duration of vmc_checks_run(). */
typedef struct vmc_options {
    const char *plugin;             /* the plugin .so */
    const char *config;             /* passed to drvInit as given */
    const char *stub;               /* the stand-in QEMU executable */
    const char *workdir;            /* an existing directory for disk images (absolute) */
    const char *const *only;        /* run only these groups (the part of an id before '.') */
    size_t nonly;
} vmc_options;

/* The catalogue: every check the suite can report, in the order they run. */
extern const vmc_check_info vmc_check_catalogue[];
extern const size_t vmc_check_catalogue_size;

/* True when group (e.g. "alias") names a group of the catalogue. */
bool vmc_checks_group_exists(const char *group);

/*
 * Run the selected groups, reporting every check into report.  Returns 0 when the suite ran
 * (whatever the results), -1 when it could not run at all (the plugin did not load: reported
 * as the failed check load.init).  Processes started on the way are stopped before return.
 */
int vmc_checks_run(const vmc_options *opts, vmc_report *report);

/* Kill every guest the suite started; safe in a signal handler (kill(2) only). */
void vmc_checks_emergency_stop(void);

#endif
