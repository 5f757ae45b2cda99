/* ctl_doctor.h: "vmlockctl doctor": is this host set up so that vmlockd's locks actually protect the disks? */
#ifndef CTL_DOCTOR_H
#define CTL_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "vml_error.h"

#define CTL_DOCTOR_MOUNTINFO "/proc/self/mountinfo"

typedef struct ctl_doctor_options {
    const char *plugin_config;      /* the plugin config to read (resolved path) */
    const char *admin_socket;       /* the daemon's admin socket (resolved path) */
    char *const *dirs;              /* more directories to examine (e.g. image directories) */
    size_t ndirs;
    const char *mountinfo;          /* the mount table to read, normally CTL_DOCTOR_MOUNTINFO */
    const char *lvs;                /* the programs the plugin runs for LVM and SCSI disks */
    const char *scsi_id;
    bool json;
} ctl_doctor_options;

/*
 * Run every check and print one line (or JSON object) per check on stdout.  Returns 0 with
 * *status CTL_EXIT_OK (no check failed; warnings allowed) or CTL_EXIT_NO (some check
 * failed); -1 with err when the checks could not be run at all.
 */
int ctl_doctor_run(const ctl_doctor_options *opts, int *status, vml_error *err);

#endif
