/* ctl_plugin.c: locating and loading the plugin's qemu-vmlockd.conf for vmlockctl check and doctor. */
#include "ctl_plugin.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctl_output.h"
#include "vml_build_config.h"

#define PLUGIN_CONFIG_NAME "qemu-vmlockd.conf"

int ctl_plugin_config_path(const char *given, const char **path, char **owned, vml_error *err)
{
    const char *base = getenv("XDG_CONFIG_HOME");
    const char *home;
    int rc;

    *owned = NULL;
    *path = NULL;
    if (given != NULL) {
        *path = given;
        return 0;
    }
    if (geteuid() == 0) {
        rc = asprintf(owned, "%s/libvirt/%s", VML_SYSCONFDIR, PLUGIN_CONFIG_NAME);
    } else if (base != NULL && base[0] == '/') {
        rc = asprintf(owned, "%s/libvirt/%s", base, PLUGIN_CONFIG_NAME);
    } else {
        home = getenv("HOME");
        if (home == NULL || home[0] != '/') {
            const struct passwd *pw = getpwuid(geteuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                          "cannot find the per-user libvirt config directory: set "
                          "XDG_CONFIG_HOME or HOME, or pass --config");
            return -1;
        }
        rc = asprintf(owned, "%s/.config/libvirt/%s", home, PLUGIN_CONFIG_NAME);
    }
    if (rc < 0) {
        *owned = NULL;
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the plugin config path");
        return -1;
    }
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
