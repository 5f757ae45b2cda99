/* ctl_check.h: "vmlockctl check DOMAIN.xml": what the plugin would lock for a domain, who holds it, and would the domain start. */
#ifndef CTL_CHECK_H
#define CTL_CHECK_H

#include <stdbool.h>

#include "drv_resource.h"
#include "vml_error.h"

/* Exit statuses shared by every vmlockctl command (documented in vmlockctl(8)). */
#define CTL_EXIT_OK 0           /* success; check: the domain would start; doctor: no problem */
#define CTL_EXIT_FAILED 1       /* could not answer: bad input, or the daemon failed or is unreachable */
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_NO 3           /* check: would not start; doctor: a check failed */
#define CTL_EXIT_UNKNOWN 4      /* check: no conflict found, but some disk could not be judged */

typedef struct ctl_check_options {
    const char *domain_xml;             /* a file, or "-" for standard input */
    const char *plugin_config;          /* the plugin config to read (resolved path) */
    const char *admin_socket;           /* the daemon's admin socket (resolved path) */
    bool json;
    const drv_resource_tools *tools;    /* lvs and scsi_id; NULL = the plugin's defaults */
} ctl_check_options;

/*
 * Run the check and print its report on stdout.  Returns 0 with *status set to one of the
 * CTL_EXIT_* values once a report was printed (a report may say the daemon was unreachable:
 * *status is then CTL_EXIT_FAILED and err says why); -1 with err when nothing could be
 * reported (unreadable or invalid definition or plugin configuration).
 */
int ctl_check_run(const ctl_check_options *opts, int *status, vml_error *err);

/*
 * The lease the plugin would take for a writable, non-shareable <disk> whose path is disk,
 * computed by the plugin's own code from the plugin configuration plugin_config (resolved
 * path; a missing file means the defaults, as for the plugin).  tools NULL = the system's.
 * On success *lockspace ("" in direct mode) and *name are new strings owned by the caller.
 * -1 with err when the configuration cannot be loaded, it does not lock disks
 * (auto_disk_leases = 0) or the plugin would refuse the disk; *lockspace and *name are then NULL.
 */
int ctl_check_disk_lease(const char *plugin_config, const drv_resource_tools *tools,
                         const char *disk, char **lockspace, char **name, vml_error *err);

#endif
