/* ctl_plugin.h: which qemu-vmlockd.conf the plugin reads, loading it exactly as the plugin does, and naming its locking mode. */
#ifndef CTL_PLUGIN_H
#define CTL_PLUGIN_H

#include <stdio.h>

#include "drv_config.h"
#include "vml_error.h"

/*
 * The plugin configuration libvirt's QEMU driver hands vmlockd.so: given (--config) when not
 * NULL, else SYSCONFDIR/libvirt/qemu-vmlockd.conf as root, else
 * $XDG_CONFIG_HOME/libvirt/qemu-vmlockd.conf (~/.config/libvirt/... without it), which is
 * where a session libvirtd looks.  *path is borrowed from given or points into *owned
 * (malloc'd, owned by the caller, NULL when nothing was allocated).
 */
int ctl_plugin_config_path(const char *given, const char **path, char **owned, vml_error *err);

/*
 * Load path with the plugin's own parser and defaults (a missing file means the defaults, as
 * for the plugin).  On success *out is owned by the caller (drv_config_free).
 */
int ctl_plugin_config_load(const char *path, drv_config **out, vml_error *err);

/* One line naming the locking mode of config, e.g. "indirect (file_lockspace_dir = /x)". */
void ctl_plugin_describe_mode(const drv_config *config, FILE *out);

/* The mode as one word: "none" (auto_disk_leases = 0), "direct" or "indirect". */
const char *ctl_plugin_mode_name(const drv_config *config);

#endif
