/* test_drv_config.c: unit tests of the plugin's configuration file (driver/drv_config.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drv_config.h"
#include "vml_test.h"

static char tmpdir[] = "/tmp/vmlockd-drv-config-XXXXXX";

/* Write text to a new config file in tmpdir; returns its path (static buffer per call site). */
static const char *write_config(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "we");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

/* Load text as a privileged config; returns the config or NULL with err filled. */
static drv_config *load_text(const char *text, vml_error *err)
{
    drv_config *config = NULL;

    vml_error_clear(err);
    if (drv_config_load_for(write_config("qemu-vmlockd.conf", text), true, NULL, &config,
                            err) < 0)
        return NULL;
    return config;
}

static void test_defaults(void)
{
    drv_config *config = NULL;
    vml_error err;
    char missing[512];

    snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", tmpdir);
    vml_error_clear(&err);
    VML_CHECK(drv_config_load_for(missing, true, NULL, &config, &err) == 0,
              "a missing file gives the defaults");
    if (config == NULL)
        return;
    VML_CHECK(config->auto_disk_leases, "auto_disk_leases defaults to 1");
    VML_CHECK(!config->require_lease_for_disks, "require_lease_for_disks defaults to 0 with auto leases");
    VML_CHECK(config->file_lockspace_dir == NULL && config->lvm_lockspace_dir == NULL &&
              config->scsi_lockspace_dir == NULL, "no lockspace directory by default");
    VML_CHECK_STR(config->unix_sock_path, "/run/vmlockd/vmlockd-sock",
                  "privileged default socket");
    drv_config_free(config);

    config = NULL;
    VML_CHECK(drv_config_load_for(NULL, true, NULL, &config, &err) == 0 && config != NULL,
              "no file at all gives the defaults");
    drv_config_free(config);

    config = NULL;
    VML_CHECK(drv_config_load_for(missing, false, "/run/user/1000", &config, &err) == 0 &&
              config != NULL, "unprivileged defaults load");
    if (config != NULL)
        VML_CHECK_STR(config->unix_sock_path, "/run/user/1000/vmlockd/vmlockd-sock",
                      "unprivileged default socket is under XDG_RUNTIME_DIR");
    drv_config_free(config);

    config = NULL;
    VML_CHECK(drv_config_load_for(missing, false, NULL, &config, &err) < 0 && config == NULL,
              "unprivileged without XDG_RUNTIME_DIR is refused");
    VML_CHECK(strstr(err.message, "XDG_RUNTIME_DIR is not set") != NULL,
              "... with an error naming XDG_RUNTIME_DIR");
    VML_CHECK(drv_config_load_for(missing, false, "relative/dir", &config, &err) < 0,
              "unprivileged with a relative XDG_RUNTIME_DIR is refused");

    config = NULL;
    VML_CHECK(drv_config_load_for(write_config("sock.conf", "unix_sock_path = \"/tmp/x.sock\"\n"),
                                  false, NULL, &config, &err) == 0 && config != NULL,
              "unprivileged without XDG_RUNTIME_DIR but with unix_sock_path loads");
    if (config != NULL)
        VML_CHECK_STR(config->unix_sock_path, "/tmp/x.sock", "the configured socket is used");
    drv_config_free(config);
}

static void test_environment_wrapper(void)
{
    drv_config *config = NULL;
    vml_error err;

    vml_error_clear(&err);
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    VML_CHECK(drv_config_load(NULL, &config, &err) == 0 && config != NULL,
              "drv_config_load reads the environment");
    if (config != NULL)
        VML_CHECK_STR(config->unix_sock_path,
                      geteuid() == 0 ? "/run/vmlockd/vmlockd-sock"
                                     : "/run/user/4242/vmlockd/vmlockd-sock",
                      "drv_config_load picks the socket from geteuid() and XDG_RUNTIME_DIR");
    drv_config_free(config);
    unsetenv("XDG_RUNTIME_DIR");
}

static void test_each_key(void)
{
    drv_config *config;
    vml_error err;

    config = load_text("# every key\n"
                       "auto_disk_leases = 1\n"
                       "require_lease_for_disks = 1\n"
                       "file_lockspace_dir = \"/var/lib/libvirt/vmlockd/files\"\n"
                       "lvm_lockspace_dir = \"/var/lib/libvirt/vmlockd/lvm\"\n"
                       "scsi_lockspace_dir = '/var/lib/libvirt/vmlockd/scsi'\n"
                       "unix_sock_path = \"/run/test/sock\"\n", &err);
    VML_CHECK(config != NULL, "a file with every key loads");
    if (config == NULL) {
        printf("# %s\n", err.message);
        return;
    }
    VML_CHECK(config->auto_disk_leases, "auto_disk_leases = 1");
    VML_CHECK(!config->require_lease_for_disks,
              "require_lease_for_disks is not evaluated while auto_disk_leases = 1");
    VML_CHECK_STR(config->file_lockspace_dir, "/var/lib/libvirt/vmlockd/files", "file_lockspace_dir");
    VML_CHECK_STR(config->lvm_lockspace_dir, "/var/lib/libvirt/vmlockd/lvm", "lvm_lockspace_dir");
    VML_CHECK_STR(config->scsi_lockspace_dir, "/var/lib/libvirt/vmlockd/scsi", "scsi_lockspace_dir");
    VML_CHECK_STR(config->unix_sock_path, "/run/test/sock", "unix_sock_path");
    drv_config_free(config);

    config = load_text("auto_disk_leases = 0\n", &err);
    VML_CHECK(config != NULL && !config->auto_disk_leases && config->require_lease_for_disks,
              "auto_disk_leases = 0 makes require_lease_for_disks default to 1");
    drv_config_free(config);

    config = load_text("auto_disk_leases = 0\nrequire_lease_for_disks = 0\n", &err);
    VML_CHECK(config != NULL && !config->auto_disk_leases && !config->require_lease_for_disks,
              "require_lease_for_disks = 0 is honoured with auto_disk_leases = 0");
    drv_config_free(config);
}

/* A bad file must fail with the file name, the line and the key in the message. */
static void check_bad(const char *text, const char *want_fragment, const char *what)
{
    drv_config *config;
    vml_error err;
    char where[600];

    config = load_text(text, &err);
    VML_CHECK(config == NULL, what);
    drv_config_free(config);
    snprintf(where, sizeof(where), "%s/qemu-vmlockd.conf:", tmpdir);
    if (!VML_CHECK(strstr(err.message, where) != NULL && strstr(err.message, want_fragment) != NULL,
                   "... and the error names FILE:LINE and the problem"))
        printf("#   got: %s\n", err.message);
    VML_CHECK(err.domain == VIR_FROM_CONF, "... in the VIR_FROM_CONF domain");
}

static void test_bad_values(void)
{
    char long_path[200];

    check_bad("auto_disk_leases = 2\n", ":1: 'auto_disk_leases' must be 0 or 1",
              "auto_disk_leases = 2 is refused");
    check_bad("\nrequire_lease_for_disks = \"yes\"\n", ":2: 'require_lease_for_disks'",
              "a string for a boolean is refused");
    check_bad("file_lockspace_dir = \"relative/dir\"\n", "must be an absolute path",
              "a relative file_lockspace_dir is refused");
    check_bad("lvm_lockspace_dir = 1\n", "'lvm_lockspace_dir' must be a quoted string",
              "a number for a directory is refused");
    check_bad("scsi_lockspace_dir = \"\"\n", "'scsi_lockspace_dir' must be an absolute path",
              "an empty directory is refused");
    check_bad("# comment\n\nbogus_key = 1\n", ":3: unknown setting 'bogus_key'",
              "an unknown key is refused");
    check_bad("auto_disk_leases = \n", ":1:", "a syntax error is refused");
    memset(long_path, 'a', sizeof(long_path));
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    {
        char text[300];

        snprintf(text, sizeof(text), "unix_sock_path = \"%s\"\n", long_path);
        check_bad(text, ":1: 'unix_sock_path' is longer than", "an over-long socket path is refused");
    }
    check_bad("unix_sock_path = \"sock\"\n", "must be an absolute path",
              "a relative socket path is refused");
}

int main(void)
{
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    unsetenv("XDG_RUNTIME_DIR");
    test_defaults();
    test_environment_wrapper();
    test_each_key();
    test_bad_values();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
