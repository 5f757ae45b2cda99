/* test_vml_lease.c: TAP tests of vml_lease: SHA-256 lease names against sha256sum, and canonical disk paths. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "vml_lease.h"
#include "vml_test.h"

/* Expected values from `printf %s STRING | sha256sum`. */
static const struct {
    const char *text;
    const char *sha256;
} vectors[] = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "/var/lib/libvirt/images/vm1.qcow2",
      "f2f4417b8fe812d19e40421ca4d46765c702e950c54a3a74e967e48dc9812492" },
    { "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
      "38c17ae3da97b2a68ae81305736c8dce084260319cff68f0587330866ceddea3" },
    { "/srv/images/disk with spaces \xc3\xbc.img",
      "5b5fffe8f0f04698528fcc3ce3e7a4ca6437488526cd3d9109a3370fcdb3be85" },
};

static void test_hash(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char out[VML_LEASE_NAME_LEN + 1];
        const char *got;
        char what[160];
        vml_error err;

        memset(out, 'X', sizeof(out));
        vml_error_clear(&err);
        snprintf(what, sizeof(what), "SHA-256 of '%s'", vectors[i].text);
        VML_CHECK(vml_lease_hash(vectors[i].text, out, &err) == 0, what);
        got = out;     /* VML_CHECK_STR wants a pointer, not an array */
        VML_CHECK_STR(got, vectors[i].sha256, "  ... is sha256sum's lowercase hex, NUL-terminated");
    }
}

/* Run vml_lease_canonical_path and compare; frees what it returns. */
static void check_canonical(const char *disk, const char *want, const char *what)
{
    char *got = NULL;
    vml_error err;

    vml_error_clear(&err);
    if (!VML_CHECK(vml_lease_canonical_path(disk, &got, &err) == 0 && got != NULL, what))
        return;
    VML_CHECK_STR(got, want, "  ... gives the expected path");
    free(got);
}

static void test_canonical(void)
{
    char dir_template[] = "/tmp/vml-lease-test-XXXXXX";
    char dir[PATH_MAX];
    char file[PATH_MAX + 32];
    char link_path[PATH_MAX + 32];
    char sub[PATH_MAX + 32];
    char spelled[PATH_MAX + 64];
    int fd;

    if (!VML_CHECK(mkdtemp(dir_template) != NULL, "temp dir"))
        return;
    /* the expected paths are fully resolved: /tmp itself may be a symlink */
    if (!VML_CHECK(realpath(dir_template, dir) != NULL, "resolve the temp dir"))
        return;
    snprintf(file, sizeof(file), "%s/disk.img", dir);
    snprintf(link_path, sizeof(link_path), "%s/alias.img", dir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    VML_CHECK(fd >= 0, "create a disk image");
    close(fd);
    VML_CHECK(symlink("disk.img", link_path) == 0, "create a symlink to it");
    VML_CHECK(mkdir(sub, 0700) == 0, "create a subdirectory");

    check_canonical(file, file, "a canonical path is itself");
    check_canonical(link_path, file, "a symlink resolves to its target");
    snprintf(spelled, sizeof(spelled), "%s//disk.img", dir);
    check_canonical(spelled, file, "'//' collapses");
    snprintf(spelled, sizeof(spelled), "%s/sub/../disk.img", dir);
    check_canonical(spelled, file, "'..' resolves");
    snprintf(spelled, sizeof(spelled), "%s/./sub/.././alias.img", dir);
    check_canonical(spelled, file, "'.', '..' and a symlink together");
    check_canonical("/nonexistent-vml/dir/disk.img", "/nonexistent-vml/dir/disk.img",
                    "a path that does not exist is returned as given");
    snprintf(spelled, sizeof(spelled), "%s//not-yet-created.img", dir);
    check_canonical(spelled, spelled, "a not-yet-created file keeps its spelling");

    unlink(link_path);
    unlink(file);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    test_hash();
    test_canonical();
    return vml_test_done();
}
