/* test_drv_resource.c: unit tests of disk/lease -> lease mapping (driver/drv_resource.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drv_resource.h"
#include "fake_daemon.h"
#include "vml_lease.h"
#include "vml_test.h"

static char tmpdir[] = "/tmp/vmlockd-drv-resource-XXXXXX";

static drv_config make_config(bool auto_leases, const char *file_dir, const char *lvm_dir,
                              const char *scsi_dir)
{
    drv_config config = {
        .auto_disk_leases = auto_leases,
        .require_lease_for_disks = !auto_leases,
        .file_lockspace_dir = (char *)file_dir,
        .lvm_lockspace_dir = (char *)lvm_dir,
        .scsi_lockspace_dir = (char *)scsi_dir,
        .unix_sock_path = (char *)"/nonexistent/sock",
    };
    return config;
}

/* Add one disk (no params) and resolve; returns the resolved set's first item or NULL. */
static const drv_resource *resolve_one(drv_resource_set *set, const drv_config *config,
                                       const drv_resource_tools *tools, const char *disk,
                                       unsigned int flags, vml_error *err)
{
    vml_error_clear(err);
    if (drv_resource_add(set, config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, disk, 0, NULL,
                         flags, err) < 0)
        return NULL;
    if (set->count == 0 || drv_resource_set_resolve(set, config, tools, err) < 0)
        return NULL;
    return &set->items[set->count - 1];
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "we");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) < 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
}

static void test_direct_and_indirect(void)
{
    drv_config direct = make_config(true, NULL, NULL, NULL);
    drv_config indirect = make_config(true, "/var/lib/libvirt/vmlockd/files", NULL, NULL);
    drv_resource_set set = { 0 };
    const drv_resource *res;
    vml_error err;

    res = resolve_one(&set, &direct, NULL, "/var/lib/libvirt/images/demo.qcow2", 0, &err);
    VML_CHECK(res != NULL, "a disk resolves in direct mode");
    if (res != NULL) {
        VML_CHECK_STR(res->lockspace, "", "direct mode uses the default lockspace");
        VML_CHECK_STR(res->lock_name, "/var/lib/libvirt/images/demo.qcow2",
                      "direct mode names the lease after the disk path");
        VML_CHECK(res->lock_flags == 0, "direct mode: exclusive, no AUTOCREATE");
    }
    drv_resource_set_clear(&set);

    res = resolve_one(&set, &indirect, NULL, "/var/lib/libvirt/images/demo.qcow2", 0, &err);
    VML_CHECK(res != NULL, "a disk resolves in indirect mode");
    if (res != NULL) {
        VML_CHECK_STR(res->lockspace, "/var/lib/libvirt/vmlockd/files",
                      "indirect mode uses file_lockspace_dir");
        VML_CHECK_STR(res->lock_name,
                      "c82d6ed601881ec10942753ab2cfa1b5eb12354b60c9b90fb557dfd211272fad",
                      "indirect name = sha256(\"/var/lib/libvirt/images/demo.qcow2\")");
        VML_CHECK(res->lock_flags == VML_LS_ACQUIRE_AUTOCREATE, "indirect mode: AUTOCREATE");
    }
    drv_resource_set_clear(&set);

    res = resolve_one(&set, &indirect, NULL, "/nonexistent-vmlockd/disk.img",
                      VIR_LOCK_MANAGER_RESOURCE_SHARED, &err);
    VML_CHECK(res != NULL, "a shared disk resolves");
    if (res != NULL) {
        VML_CHECK_STR(res->lock_name,
                      "0d1fae2a837f41982e961822b05535ea8b549a2e09c01b75f5ba3a58f71686e3",
                      "indirect name = sha256(\"/nonexistent-vmlockd/disk.img\")");
        VML_CHECK(res->lock_flags == (VML_LS_ACQUIRE_AUTOCREATE | VML_LS_ACQUIRE_SHARED),
                  "shareable disk -> SHARED flag");
    }
    drv_resource_set_clear(&set);

    res = resolve_one(&set, &direct, NULL, "/srv/images/vm2.raw",
                      VIR_LOCK_MANAGER_RESOURCE_SHARED, &err);
    VML_CHECK(res != NULL && res->lock_flags == VML_LS_ACQUIRE_SHARED,
              "shareable disk in direct mode -> SHARED only");
    drv_resource_set_clear(&set);
}

static void test_symlink_alias(void)
{
    drv_config indirect = make_config(true, "/leases", NULL, NULL);
    drv_resource_set set = { 0 };
    char image[600], alias[600], dotted[700];
    char canonical[PATH_MAX];
    char expected[VML_LEASE_NAME_LEN + 1];
    vml_error err;

    snprintf(image, sizeof(image), "%s/image.qcow2", tmpdir);
    snprintf(alias, sizeof(alias), "%s/alias.qcow2", tmpdir);
    snprintf(dotted, sizeof(dotted), "%s/./sub/../image.qcow2", tmpdir);
    write_file(image, "", 0600);
    snprintf(canonical, sizeof(canonical), "%s/sub", tmpdir);
    if (symlink(image, alias) < 0 || mkdir(canonical, 0700) < 0 ||
        realpath(image, canonical) == NULL ||
        vml_lease_hash(canonical, expected, &err) < 0) {
        printf("Bail out! cannot set up the symlink test\n");
        exit(1);
    }

    vml_error_clear(&err);
    VML_CHECK(drv_resource_add(&set, &indirect, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, image, 0,
                               NULL, 0, &err) == 0 &&
              drv_resource_add(&set, &indirect, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, alias, 0,
                               NULL, 0, &err) == 0 &&
              drv_resource_add(&set, &indirect, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, dotted, 0,
                               NULL, 0, &err) == 0 &&
              drv_resource_set_resolve(&set, &indirect, NULL, &err) == 0,
              "an image, a symlink to it and a ./.. spelling resolve");
    if (set.count == 3 && set.resolved) {
        VML_CHECK_STR(set.items[0].lock_name, expected, "the image's lease is sha256(realpath)");
        VML_CHECK_STR(set.items[1].lock_name, expected, "the symlink alias gets the same lease");
        VML_CHECK_STR(set.items[2].lock_name, expected, "the ./.. spelling gets the same lease");
        VML_CHECK_STR(set.items[1].name, alias, "the disk path is kept as libvirt gave it");
    }
    drv_resource_set_clear(&set);
}

static void test_readonly_and_auto_off(void)
{
    drv_config direct = make_config(true, NULL, NULL, NULL);
    drv_config manual = make_config(false, "/leases", NULL, NULL);
    drv_resource_set set = { 0 };
    vml_error err;

    vml_error_clear(&err);
    VML_CHECK(drv_resource_add(&set, &direct, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/ro.iso",
                               0, NULL, VIR_LOCK_MANAGER_RESOURCE_READONLY, &err) == 0 &&
              set.count == 0, "a read-only disk records nothing");
    VML_CHECK(drv_resource_add(&set, &direct, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/ro.iso",
                               0, NULL, VIR_LOCK_MANAGER_RESOURCE_READONLY |
                               VIR_LOCK_MANAGER_RESOURCE_SHARED, &err) == 0 &&
              set.count == 0, "read-only wins over shared");
    VML_CHECK(!set.has_rw_disks, "read-only disks do not count as r/w disks");

    VML_CHECK(drv_resource_add(&set, &manual, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/s.raw",
                               0, NULL, VIR_LOCK_MANAGER_RESOURCE_SHARED, &err) == 0 &&
              set.count == 0 && !set.has_rw_disks,
              "auto_disk_leases = 0: a shared disk records nothing and is not r/w exclusive");
    VML_CHECK(drv_resource_add(&set, &manual, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/rw.raw",
                               0, NULL, 0, &err) == 0 && set.count == 0 && set.has_rw_disks,
              "auto_disk_leases = 0: a r/w disk records nothing but marks has_rw_disks");
    drv_resource_set_clear(&set);
}

static void test_leases(void)
{
    drv_config config = make_config(false, NULL, NULL, NULL);
    drv_resource_set set = { 0 };
    virLockManagerParam params[3];
    vml_error err;

    memset(params, 0, sizeof(params));
    params[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[0].key = "path";
    params[0].value.str = (char *)"/var/lib/libvirt/leases";
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_ULONG;
    params[1].key = "offset";
    params[1].value.ul = 0;
    params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[2].key = "lockspace";
    params[2].value.str = (char *)"cluster1";

    vml_error_clear(&err);
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key1", 3,
                               params, 0, &err) == 0 && set.count == 1,
              "a lease with path, offset 0 and lockspace is recorded");
    VML_CHECK(drv_resource_set_resolve(&set, &config, NULL, &err) == 0 && set.resolved,
              "the lease resolves");
    if (set.resolved) {
        VML_CHECK_STR(set.items[0].lockspace, "/var/lib/libvirt/leases/cluster1",
                      "lease lockspace is <path>/<lockspace>");
        VML_CHECK_STR(set.items[0].lock_name, "key1", "lease name is its key");
        VML_CHECK(set.items[0].lock_flags == 0, "lease: exclusive, never AUTOCREATE");
    }

    params[1].value.ul = 512;
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key2", 3,
                               params, 0, &err) < 0 && set.count == 1,
              "a non-zero offset is refused and records nothing");
    VML_CHECK(strstr(err.message, "Offset must be zero for this lock manager") != NULL,
              "... with lockd's message");
    params[1].value.ul = 0;

    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key3", 2,
                               params, 0, &err) < 0, "a lease without lockspace is refused");
    VML_CHECK(strstr(err.message, "Missing path or lockspace for lease resource") != NULL,
              "... naming what is missing");
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key4", 2,
                               params + 1, 0, &err) < 0, "a lease without path is refused");

    params[1].key = "colour";
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key5", 3,
                               params, 0, &err) < 0 &&
              strstr(err.message, "Unexpected parameter 'colour' for lease resource") != NULL,
              "an unknown lease parameter is refused by name");
    params[1].key = "offset";
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key6", 3,
                               params, 0, &err) < 0 && strstr(err.message, "wrong type") != NULL,
              "an offset of the wrong type is refused");
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_ULONG;
    params[2].value.str = (char *)"../escape";
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "key7", 3,
                               params, 0, &err) < 0 && strstr(err.message, "../escape") != NULL,
              "a lockspace with a '/' is refused by name");
    VML_CHECK(set.count == 1, "refused leases leave the set unchanged");
    drv_resource_set_clear(&set);
}

static void test_bad_input(void)
{
    drv_config config = make_config(true, NULL, NULL, NULL);
    drv_resource_set set = { 0 };
    virLockManagerParam param;
    vml_error err;

    vml_error_clear(&err);
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/a", 0, NULL,
                               4, &err) < 0 && err.code == VIR_ERR_INVALID_ARG,
              "unknown flags are refused with VIR_ERR_INVALID_ARG");
    VML_CHECK_STR(err.message, "invalid argument: unsupported flags (0x4) in function drvAddResource",
                  "... and lockd's message");
    VML_CHECK(drv_resource_add(&set, &config, 7, "/a", 0, NULL, 0, &err) < 0 &&
              strstr(err.message, "Unknown lock manager resource type 7") != NULL,
              "an unknown resource type is refused");
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, NULL, 0, NULL,
                               0, &err) < 0, "a NULL disk name is refused");
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "disk.img", 0,
                               NULL, 0, &err) < 0 && strstr(err.message, "'disk.img' is not absolute"),
              "a relative disk path is refused by name");
    memset(&param, 0, sizeof(param));
    param.key = "path";
    VML_CHECK(drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/a", 1,
                               &param, 0, &err) < 0 &&
              strstr(err.message, "Unexpected parameter 'path' for disk resource '/a'"),
              "a parameter on a disk is refused");
    VML_CHECK(set.count == 0, "nothing was recorded");
    drv_resource_set_clear(&set);
}

static void test_devices(void)
{
    char lvs[600], scsi[600], failing[600], argv_log[600], slash[600], noisy[600], missing[600];
    drv_config lvm = make_config(true, "/files", "/lvm", "/scsi");
    drv_resource_tools tools;
    drv_resource_set set = { 0 };
    const drv_resource *res;
    char script[1600];
    char *logged;
    vml_error err;

    snprintf(argv_log, sizeof(argv_log), "%s/argv.log", tmpdir);
    snprintf(lvs, sizeof(lvs), "%s/fake-lvs", tmpdir);
    snprintf(scsi, sizeof(scsi), "%s/fake-scsi-id", tmpdir);
    snprintf(failing, sizeof(failing), "%s/fake-failing", tmpdir);
    snprintf(slash, sizeof(slash), "%s/fake-slash", tmpdir);
    snprintf(noisy, sizeof(noisy), "%s/fake-noisy", tmpdir);
    snprintf(missing, sizeof(missing), "%s/no-such-tool", tmpdir);
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho \"$@\" >> '%s'\nprintf '  06UgP5-2rhb-w3Bo-3mdR-WeoL-pytO-SAa2ky\\nextra\\n'\n",
             argv_log);
    write_file(lvs, script, 0755);
    snprintf(script, sizeof(script),
             "#!/bin/sh\necho \"$@\" >> '%s'\necho 36001405abcdef\n", argv_log);
    write_file(scsi, script, 0755);
    write_file(failing, "#!/bin/sh\necho not-a-volume\nexit 5\n", 0755);
    write_file(slash, "#!/bin/sh\necho ../../etc\n", 0755);
    write_file(noisy, "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\n", 0755);

    tools.lvs = lvs;
    tools.scsi_id = scsi;
    vml_error_clear(&err);
    VML_CHECK(drv_resource_add(&set, &lvm, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/dev/vg0/lv9",
                               0, NULL, 0, &err) == 0 && set.count == 1 && !set.resolved &&
              set.items[0].lock_name == NULL && set.items[0].lockspace == NULL,
              "adding a disk computes nothing (the start path stays fork-safe)");
    logged = fake_read_file(argv_log);
    VML_CHECK_STR(logged, "", "... and runs no tool");
    free(logged);
    drv_resource_set_clear(&set);

    res = resolve_one(&set, &lvm, &tools, "/dev/vg0/lv0", 0, &err);
    VML_CHECK(res != NULL, "an LV resolves through lvs");
    if (res != NULL) {
        VML_CHECK_STR(res->lockspace, "/lvm", "LV lease lives in lvm_lockspace_dir");
        VML_CHECK_STR(res->lock_name, "06UgP5-2rhb-w3Bo-3mdR-WeoL-pytO-SAa2ky",
                      "LV lease name = lvs's first line without leading blanks");
        VML_CHECK(res->lock_flags == VML_LS_ACQUIRE_AUTOCREATE, "LV lease: AUTOCREATE");
    }
    drv_resource_set_clear(&set);
    logged = fake_read_file(argv_log);
    VML_CHECK_STR(logged, "--noheadings --unbuffered --nosuffix --options uuid /dev/vg0/lv0\n",
                  "lvs is run with lockd's arguments");
    free(logged);
    unlink(argv_log);

    tools.lvs = failing;
    res = resolve_one(&set, &lvm, &tools, "/dev/sdb", VIR_LOCK_MANAGER_RESOURCE_SHARED, &err);
    VML_CHECK(res != NULL, "a non-LV falls through to scsi_id");
    if (res != NULL) {
        VML_CHECK_STR(res->lockspace, "/scsi", "SCSI lease lives in scsi_lockspace_dir");
        VML_CHECK_STR(res->lock_name, "36001405abcdef", "SCSI lease name = scsi_id's line");
        VML_CHECK(res->lock_flags == (VML_LS_ACQUIRE_AUTOCREATE | VML_LS_ACQUIRE_SHARED),
                  "shared SCSI lease: AUTOCREATE|SHARED");
    }
    drv_resource_set_clear(&set);
    logged = fake_read_file(argv_log);
    VML_CHECK_STR(logged, "--replace-whitespace --whitelisted --device /dev/sdb\n",
                  "scsi_id is run with lockd's arguments");
    free(logged);
    unlink(argv_log);

    tools.scsi_id = failing;
    res = resolve_one(&set, &lvm, &tools, "/dev/sdc", 0, &err);
    VML_CHECK(res != NULL && strcmp(res->lockspace, "/files") == 0 &&
              strlen(res->lock_name) == VML_LEASE_NAME_LEN,
              "a device neither tool knows gets an indirect file lease");
    drv_resource_set_clear(&set);

    tools.lvs = lvs;
    res = resolve_one(&set, &lvm, &tools, "/devfoo/image.raw", 0, &err);
    VML_CHECK(res != NULL && strcmp(res->lockspace, "/files") == 0,
              "'/devfoo' is not under /dev/: no tool is asked (unlike lockd's prefix quirk)");
    drv_resource_set_clear(&set);
    logged = fake_read_file(argv_log);
    VML_CHECK_STR(logged, "", "... lvs was not run");
    free(logged);

    tools.lvs = missing;
    res = resolve_one(&set, &lvm, &tools, "/dev/vg0/lv1", 0, &err);
    VML_CHECK(res == NULL && strstr(err.message, "cannot run") != NULL &&
              strstr(err.message, missing) != NULL,
              "an lvs that cannot be run fails the resolution, naming the program");
    VML_CHECK(!set.resolved, "... and leaves the set unresolved");
    drv_resource_set_clear(&set);

    tools.lvs = slash;
    res = resolve_one(&set, &lvm, &tools, "/dev/vg0/lv2", 0, &err);
    VML_CHECK(res == NULL && strstr(err.message, "cannot name a lease file") != NULL,
              "an identifier with '/' is refused");
    drv_resource_set_clear(&set);

    tools.lvs = noisy;
    res = resolve_one(&set, &lvm, &tools, "/dev/vg0/lv3", 0, &err);
    VML_CHECK(res == NULL && strstr(err.message, "cannot read the output") != NULL,
              "a tool printing megabytes is stopped and refused");
    drv_resource_set_clear(&set);
}

static void test_wire(void)
{
    drv_config config = make_config(true, NULL, NULL, NULL);
    drv_resource_set set = { 0 };
    vml_ext_resource *wire = NULL;
    vml_error err;

    vml_error_clear(&err);
    drv_resource_add(&set, &config, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL, 0, &err);
    VML_CHECK(drv_resource_set_to_wire(&set, &wire, &err) < 0,
              "an unresolved set cannot go on the wire");
    VML_CHECK(drv_resource_set_resolve(&set, &config, NULL, &err) == 0 &&
              drv_resource_set_to_wire(&set, &wire, &err) == 0 && wire != NULL,
              "a resolved set converts");
    if (wire != NULL) {
        VML_CHECK(strcmp(wire[0].lockspace, "") == 0 && strcmp(wire[0].name, "/img/a") == 0 &&
                  strcmp(wire[0].disk, "/img/a") == 0 && wire[0].flags == 0,
                  "wire resource carries lockspace, name, disk and flags");
    }
    free(wire);
    drv_resource_set_clear(&set);
}

int main(void)
{
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    test_direct_and_indirect();
    test_symlink_alias();
    test_readonly_and_auto_off();
    test_leases();
    test_bad_input();
    test_devices();
    test_wire();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
