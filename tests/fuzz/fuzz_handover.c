/* fuzz_handover.c: fuzz target for the SIGUSR1 re-exec handover reader (dmn_handover_read) and the keeper protocol's message and snapshot decoding. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "dmn_handover.h"
#include "vml_handover.h"
#include "fuzz_target.h"

/*
 * Input: byte 0 picks the reader, the rest is what it reads.
 *   0  a handover blob, read through a memfd by dmn_handover_read() as a re-executed image
 *      does (descriptors FUZZ_FD_FIRST .. +FUZZ_FD_COUNT-1 are open, on /dev/null, so a blob
 *      naming them passes the descriptor checks); a blob that reads is then turned into
 *      its re-exec command line and its descriptor list, and written and read back
 *      (dmn_handover_write) to check the format round-trips.
 *   1  one keeper message (vml_keeper_msg), decoded exactly, and the snapshot (meta) of
 *      each of its items decoded exactly as the daemon and the keeper do.
 * The handover comes from the previous image of the same daemon and the keeper is the
 * daemon's own child, so neither is attacker-controlled; they are still decoded as
 * untrusted input (vml_handover.x says so), and this checks they are.
 */

#define FUZZ_FD_FIRST 100
#define FUZZ_FD_COUNT 32

static int memfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    (void)argc; (void)argv;
    if (null_fd < 0)
        fuzz_cannot_run("cannot open /dev/null");
    for (int fd = FUZZ_FD_FIRST; fd < FUZZ_FD_FIRST + FUZZ_FD_COUNT; fd++) {
        if (dup3(null_fd, fd, O_CLOEXEC) != fd)
            fuzz_cannot_run("cannot open the descriptors handover blobs name");
    }
    close(null_fd);
    return 0;
}

/* The XDR encoding of ho in a malloc'd buffer (*len bytes), or NULL. */
static char *encode(vml_handover *ho, size_t *len)
{
    unsigned long size = xdr_sizeof((xdrproc_t)xdr_vml_handover, ho);
    char *buf = size > 0 ? malloc(size) : NULL;
    XDR xdrs;

    if (buf == NULL)
        return NULL;
    xdrmem_create(&xdrs, buf, (u_int)size, XDR_ENCODE);
    if (!xdr_vml_handover(&xdrs, ho) || xdr_getpos(&xdrs) != size)
        fuzz_invariant_failed("a handover that decoded does not encode");
    xdr_destroy(&xdrs);
    *len = size;
    return buf;
}

static void read_handover(const uint8_t *data, size_t size)
{
    vml_handover ho, again;
    vml_error err = { 0 };
    char *argv_in[] = { (char *)"vmlockd", (char *)"-d", (char *)"-f", (char *)"/etc/x.conf",
                        (char *)"--handover-fd", (char *)"7", NULL };
    char **argv = NULL;
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    int *fds = NULL;
    size_t nfds = 0;
    int fd, blob = -1;

    if (memfd < 0 && (memfd = memfd_create("fuzz-handover", MFD_CLOEXEC)) < 0)
        fuzz_invariant_failed("memfd_create failed");
    if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
        fuzz_invariant_failed("cannot write the memfd");
    /* dmn_handover_read closes the descriptor it is given. */
    fd = dup(memfd);
    if (fd < 0)
        fuzz_invariant_failed("dup failed");
    memset(&again, 0, sizeof(again));
    if (dmn_handover_read(fd, &ho, &err) < 0) {
        if (getenv("VMLFUZZ_TRACE") != NULL)
            fprintf(stderr, "handover refused: %s\n", err.message);
        if (err.message[0] == '\0')
            fuzz_invariant_failed("a refused handover has no error message");
        xdr_free((xdrproc_t)xdr_vml_handover, (char *)&ho);
        return;
    }
    if (getenv("VMLFUZZ_TRACE") != NULL)
        fprintf(stderr, "handover read: %u lease(s), %u client(s)\n", ho.leases.leases_len,
                ho.clients.clients_len);
    if (dmn_handover_fds(&ho, &fds, &nfds, &err) < 0)
        fuzz_invariant_failed("the descriptors of a handover that read cannot be listed");
    argv = dmn_handover_argv("/usr/sbin/vmlockd", argv_in, 9);
    if (argv != NULL) {
        int n = 0;

        for (; argv[n] != NULL; n++) {
            if (strcmp(argv[n], "-d") == 0)
                fuzz_invariant_failed("the re-exec command line still detaches");
        }
        if (n < 3 || strcmp(argv[n - 2], "--handover-fd") != 0 || strcmp(argv[n - 1], "9") != 0)
            fuzz_invariant_failed("the re-exec command line does not end with --handover-fd 9");
    }
    /* Round trip: write it as the old image would, read it as the new one would. */
    first = encode(&ho, &first_len);
    if (first != NULL && dmn_handover_write(&ho, &blob, &err) == 0) {
        if (dmn_handover_read(blob, &again, &err) < 0)
            fuzz_invariant_failed("a handover written by dmn_handover_write does not read back");
        second = encode(&again, &second_len);
        if (second == NULL || second_len != first_len || memcmp(first, second, first_len) != 0)
            fuzz_invariant_failed("a handover changes through write and read");
    }
    free(second);
    free(first);
    dmn_argv_free(argv);
    free(fds);
    xdr_free((xdrproc_t)xdr_vml_handover, (char *)&again);
    xdr_free((xdrproc_t)xdr_vml_handover, (char *)&ho);
}

static void read_keeper_message(const uint8_t *data, size_t size)
{
    vml_keeper_msg msg;
    XDR xdrs;
    bool ok;

    if (size > VML_KEEPER_MESSAGE_MAX)
        return;     /* a SOCK_SEQPACKET message is never longer */
    memset(&msg, 0, sizeof(msg));
    xdrmem_create(&xdrs, (char *)data, (u_int)size, XDR_DECODE);
    ok = xdr_vml_keeper_msg(&xdrs, &msg) && xdr_getpos(&xdrs) == (u_int)size;
    xdr_destroy(&xdrs);
    for (u_int i = 0; ok && i < msg.items.items_len; i++) {
        vml_keeper_item *item = &msg.items.items_val[i];
        vml_snap_lease snap;

        memset(&snap, 0, sizeof(snap));
        xdrmem_create(&xdrs, item->meta.meta_val, item->meta.meta_len, XDR_DECODE);
        (void)(xdr_vml_snap_lease(&xdrs, &snap) && xdr_getpos(&xdrs) == item->meta.meta_len);
        xdr_destroy(&xdrs);
        xdr_free((xdrproc_t)xdr_vml_snap_lease, (char *)&snap);
    }
    xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] == 1)
        read_keeper_message(data + 1, size - 1);
    else
        read_handover(data + 1, size - 1);
    return 0;
}
