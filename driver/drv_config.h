/* drv_config.h: the plugin's configuration file (qemu-vmlockd.conf): keys, defaults and validation. */
#ifndef DRV_CONFIG_H
#define DRV_CONFIG_H

#include <stdbool.h>

#include "vml_error.h"

/* Socket of a privileged (root) daemon; an unprivileged one uses $XDG_RUNTIME_DIR/DRV_CONFIG_USER_SOCKET. */
#define DRV_CONFIG_SYSTEM_SOCKET "/run/vmlockd/vmlockd-sock"
#define DRV_CONFIG_USER_SOCKET "vmlockd/vmlockd-sock"

/*
 * The effective configuration.  Directory strings are NULL when unset; unix_sock_path is
 * always set (configured or the default).  Invariant: when auto_disk_leases is true,
 * require_lease_for_disks is false (lockd only evaluates it with auto leases off).
 */
typedef struct drv_config {
    bool auto_disk_leases;          /* every writable disk is a lock resource */
    bool require_lease_for_disks;   /* refuse r/w exclusive disks without any <lease> */
    char *file_lockspace_dir;       /* indirect leases: <dir>/<sha256 of the disk path> */
    char *lvm_lockspace_dir;        /* LVs: <dir>/<LV UUID> */
    char *scsi_lockspace_dir;       /* SCSI LUNs: <dir>/<scsi_id> */
    char *unix_sock_path;           /* the daemon's main socket */
} drv_config;

/*
 * Read path (NULL or a missing file = defaults).  privileged and runtime_dir (the value of
 * XDG_RUNTIME_DIR, may be NULL) choose the default socket; an unprivileged configuration
 * without runtime_dir and without unix_sock_path is an error.  An unknown key or a bad value
 * is an error naming FILE:LINE.  On success *out is a new config owned by the caller
 * (drv_config_free); on failure *out is untouched.
 */
int drv_config_load_for(const char *path, bool privileged, const char *runtime_dir,
                        drv_config **out, vml_error *err);

/* drv_config_load_for() with privileged = (geteuid() == 0) and XDG_RUNTIME_DIR from the environment. */
int drv_config_load(const char *path, drv_config **out, vml_error *err);

void drv_config_free(drv_config *config);

#endif
