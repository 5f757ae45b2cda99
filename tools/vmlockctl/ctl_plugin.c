/* ctl_plugin.c: locating and loading the plugin's qemu-vmlockd.conf for vmlockctl check and doctor. */
#include "ctl_plugin.h"

#include <stdlib.h>
#include <unistd.h>

#include "ctl_output.h"
#include "vml_conf.h"

#define PLUGIN_CONFIG_NAME "qemu-vmlockd.conf"

int ctl_plugin_config_path(const char *given, const char **path, char **owned, vml_error *err)
{
    *owned = NULL;
    *path = NULL;
    if (given != NULL) {
        *path = given;
        return 0;
    }
    if (vml_conf_default_path(geteuid() == 0, PLUGIN_CONFIG_NAME, owned, err) < 0)
        return -1;
    *path = *owned;
    return 0;
}

int ctl_plugin_config_load(const char *path, drv_config **out, vml_error *err)
{
    return drv_config_load(path, out, err);
}

const char *ctl_plugin_mode_name(const drv_config *config)
{
    if (!config->auto_disk_leases)
        return "none";
    return config->file_lockspace_dir != NULL ? "indirect" : "direct";
}

void ctl_plugin_describe_mode(const drv_config *config, FILE *out)
{
    if (!config->auto_disk_leases) {
        fprintf(out, "disks are not locked (auto_disk_leases = 0), only <lease> elements%s",
                config->require_lease_for_disks
                ? "; a domain with a writable, non-shareable disk needs one" : "");
        return;
    }
    if (config->file_lockspace_dir != NULL) {
        fputs("indirect: a lease file per disk in ", out);
        ctl_text_string(out, config->file_lockspace_dir);
    } else {
        fputs("direct: the lock is on each disk image or device itself", out);
    }
    if (config->lvm_lockspace_dir != NULL) {
        fputs("; LVM volumes by UUID in ", out);
        ctl_text_string(out, config->lvm_lockspace_dir);
    }
    if (config->scsi_lockspace_dir != NULL) {
        fputs("; SCSI LUNs by identifier in ", out);
        ctl_text_string(out, config->scsi_lockspace_dir);
    }
}
