/* vmlockd-pause-helper.c: pauses one domain through libvirt's public API (on_lockfailure=pause); the daemon runs it, never links libvirt itself. */
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/*
 * usage: vmlockd-pause-helper URI UUID
 * Connects to URI (the domain's own libvirt connection, e.g. qemu:///system), looks the
 * domain up by UUID and suspends it.  Exit status: 0 paused (or already paused), 1 libvirt
 * refused or failed (its error on stderr), 2 usage error.  The daemon powers the domain off
 * instead when this does not exit 0.
 */

static void print_libvirt_error(const char *what)
{
    const virError *err = virGetLastError();

    fprintf(stderr, "vmlockd-pause-helper: %s: %s\n", what,
            err != NULL && err->message != NULL ? err->message : "unknown libvirt error");
}

int main(int argc, char **argv)
{
    virConnectPtr conn = NULL;
    virDomainPtr dom = NULL;
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    int status = 1;

    if (argc != 3 || argv[1][0] == '\0' || strlen(argv[2]) != VIR_UUID_STRING_BUFLEN - 1) {
        fprintf(stderr, "usage: vmlockd-pause-helper URI UUID\n"
                        "  Suspends the domain UUID through the libvirt connection URI.\n");
        return 2;
    }
    conn = virConnectOpen(argv[1]);
    if (conn == NULL) {
        print_libvirt_error(argv[1]);
        goto out;
    }
    dom = virDomainLookupByUUIDString(conn, argv[2]);
    if (dom == NULL) {
        print_libvirt_error(argv[2]);
        goto out;
    }
    if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED) {
        status = 0;
        goto out;
    }
    if (virDomainSuspend(dom) < 0) {
        print_libvirt_error("cannot suspend the domain");
        goto out;
    }
    status = 0;
 out:
    if (dom != NULL)
        virDomainFree(dom);
    if (conn != NULL)
        virConnectClose(conn);
    return status;
}
