/* drv_config.c: parsing qemu-vmlockd.conf into a drv_config through a keyword table. */
#include "drv_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "vml_conf.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)NULL)->sun_path)

static const vml_conf_key config_keys[] = {
    { "auto_disk_leases", VML_KEY_BOOL, offsetof(drv_config, auto_disk_leases), 0, 0 },
    { "require_lease_for_disks", VML_KEY_BOOL, offsetof(drv_config, require_lease_for_disks), 0, 0 },
    { "file_lockspace_dir", VML_KEY_PATH, offsetof(drv_config, file_lockspace_dir), 0, 0 },
    { "lvm_lockspace_dir", VML_KEY_PATH, offsetof(drv_config, lvm_lockspace_dir), 0, 0 },
    { "scsi_lockspace_dir", VML_KEY_PATH, offsetof(drv_config, scsi_lockspace_dir), 0, 0 },
    { "unix_sock_path", VML_KEY_PATH, offsetof(drv_config, unix_sock_path), 0, 0 },
};

void drv_config_free(drv_config *config)
{
    if (config == NULL)
        return;
    free(config->file_lockspace_dir);
    free(config->lvm_lockspace_dir);
    free(config->scsi_lockspace_dir);
    free(config->unix_sock_path);
    free(config);
}

/* The entry for key in conf (may be NULL), or NULL: for defaults that depend on presence. */
static const vml_conf_entry *find_entry(const vml_conf *conf, const char *key)
{
    if (conf == NULL)
        return NULL;
    for (size_t i = 0; i < conf->nentries; i++) {
        if (strcmp(conf->entries[i].key, key) == 0)
            return &conf->entries[i];
    }
    return NULL;
}

/* *out = the default socket path (malloc'd, owned by the caller). */
static int default_socket(bool privileged, const char *runtime_dir, char **out, vml_error *err)
{
    char *path = NULL;

    if (privileged) {
        path = strdup(DRV_CONFIG_SYSTEM_SOCKET);
    } else {
        if (runtime_dir == NULL || runtime_dir[0] != '/') {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                          "XDG_RUNTIME_DIR is %s: cannot locate the per-user vmlockd socket; "
                          "set it or set unix_sock_path",
                          runtime_dir == NULL ? "not set" : "not an absolute path");
            return -1;
        }
        if (asprintf(&path, "%s/%s", runtime_dir, DRV_CONFIG_USER_SOCKET) < 0)
            path = NULL;
    }
    if (path == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the socket path");
        return -1;
    }
    *out = path;
    return 0;
}

int drv_config_load_for(const char *path, bool privileged, const char *runtime_dir,
                        drv_config **out, vml_error *err)
{
    vml_conf *conf = NULL;
    drv_config *config = NULL;
    const vml_conf_entry *entry;
    int ret = -1;

    if (path != NULL && vml_conf_parse_file(path, true, &conf, err) < 0)
        goto out;
    config = calloc(1, sizeof(*config));
    if (config == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot allocate the configuration");
        goto out;
    }
    config->auto_disk_leases = true;
    if (vml_conf_apply(conf, config_keys, sizeof(config_keys) / sizeof(config_keys[0]),
                       config, err) < 0)
        goto out;

    /* Default: the negation of auto_disk_leases; and meaningless while auto leases are on. */
    if (config->auto_disk_leases)
        config->require_lease_for_disks = false;
    else if (find_entry(conf, "require_lease_for_disks") == NULL)
        config->require_lease_for_disks = true;

    entry = find_entry(conf, "unix_sock_path");
    if (entry != NULL && strlen(config->unix_sock_path) >= SUN_PATH_SIZE) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s:%u: 'unix_sock_path' is longer than the %zu bytes a UNIX socket "
                      "path may have", conf->filename, entry->line, SUN_PATH_SIZE - 1);
        goto out;
    }
    if (config->unix_sock_path == NULL &&
        default_socket(privileged, runtime_dir, &config->unix_sock_path, err) < 0)
        goto out;

    *out = config;
    config = NULL;
    ret = 0;
 out:
    drv_config_free(config);
    vml_conf_free(conf);
    return ret;
}

int drv_config_load(const char *path, drv_config **out, vml_error *err)
{
    return drv_config_load_for(path, geteuid() == 0, getenv("XDG_RUNTIME_DIR"), out, err);
}
