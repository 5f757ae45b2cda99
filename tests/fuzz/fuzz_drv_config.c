/* fuzz_drv_config.c: fuzz target for the plugin's qemu-vmlockd.conf loader (drv_config_load_for, through a file as libvirt's plugin reads it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "drv_config.h"
#include "fuzz_target.h"

/*
 * Input: byte 0 picks the environment (bit 0 privileged, bit 1 XDG_RUNTIME_DIR unset, bit 2
 * a relative XDG_RUNTIME_DIR); the rest is the file's content.  The loader only reads files
 * by path, so the content goes to a memfd read through /proc/self/fd/N (a seam taking a
 * buffer would make this cheaper: see docs/hardening.md).
 *
 * Oracles: success gives a config with a socket path that fits sun_path and honours the
 * documented invariant (auto_disk_leases => !require_lease_for_disks); failure leaves *out
 * untouched and says why.
 */

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memfd = memfd_create("fuzz-drv-config", MFD_CLOEXEC);
    if (memfd < 0)
        fuzz_cannot_run("memfd_create failed");
    snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_config *config = NULL;
    drv_config *untouched = (drv_config *)&memfd;   /* any non-NULL marker */
    vml_error err = { 0 };
    const char *runtime_dir = "/run/user/4242";
    bool privileged;

    if (size == 0)
        return 0;
    privileged = data[0] & 1;
    if (data[0] & 2)
        runtime_dir = NULL;
    else if (data[0] & 4)
        runtime_dir = "run/user/4242";
    if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
        fuzz_invariant_failed("cannot write the memfd");

    config = untouched;
    if (drv_config_load_for(memfd_path, privileged, runtime_dir, &config, &err) < 0) {
        if (config != untouched)
            fuzz_invariant_failed("a refused config changed *out");
        if (err.message[0] == '\0')
            fuzz_invariant_failed("a refused config has no error message");
        return 0;
    }
    if (config->unix_sock_path == NULL || strlen(config->unix_sock_path) >= 108)
        fuzz_invariant_failed("the socket path is missing or does not fit sun_path");
    if (config->auto_disk_leases && config->require_lease_for_disks)
        fuzz_invariant_failed("require_lease_for_disks is set with auto_disk_leases");
    drv_config_free(config);
    return 0;
}
