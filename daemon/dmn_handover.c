/* dmn_handover.c: the SIGUSR1 handover blob: XDR into a sealed memfd, strict bounded decoding, descriptor checks and the re-exec argv. */
#include "dmn_handover.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpc/rpc.h>

int dmn_handover_write(vml_handover *ho, int *fd_out, vml_error *err)
{
    unsigned long size = xdr_sizeof((xdrproc_t)xdr_vml_handover, ho);
    char *buf = NULL;
    size_t done = 0;
    XDR xdrs;
    int fd = -1;
    int ret = -1;

    if (size == 0 || size > VML_HANDOVER_MAX) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover would be %lu bytes (at most %d)", size, VML_HANDOVER_MAX);
        goto out;
    }
    buf = malloc(size);
    if (buf == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot build the handover");
        goto out;
    }
    xdrmem_create(&xdrs, buf, (u_int)size, XDR_ENCODE);
    if (!xdr_vml_handover(&xdrs, ho) || xdr_getpos(&xdrs) != size) {
        xdr_destroy(&xdrs);
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR, "cannot encode the handover");
        goto out;
    }
    xdr_destroy(&xdrs);
    fd = memfd_create("vmlockd-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the handover memfd");
        goto out;
    }
    while (done < size) {
        ssize_t n = write(fd, buf + done, size - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, n < 0 ? errno : EIO,
                                "cannot write the handover");
            goto out;
        }
        done += (size_t)n;
    }
    /* Nobody may change it between the two images. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
        lseek(fd, 0, SEEK_SET) != 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot seal the handover");
        goto out;
    }
    *fd_out = fd;
    fd = -1;
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return ret;
}

/* Append fd to the list (ignoring -1). */
static int push_fd(int **fds, size_t *n, size_t *cap, int fd)
{
    if (fd < 0)
        return 0;
    if (*n == *cap) {
        size_t grow = *cap == 0 ? 64 : *cap * 2;
        int *bigger = realloc(*fds, grow * sizeof(int));

        if (bigger == NULL)
            return -1;
        *fds = bigger;
        *cap = grow;
    }
    (*fds)[(*n)++] = fd;
    return 0;
}

int dmn_handover_fds(const vml_handover *ho, int **fds, size_t *nfds, vml_error *err)
{
    size_t cap = 0;
    int rc = 0;

    *fds = NULL;
    *nfds = 0;
    rc |= push_fd(fds, nfds, &cap, ho->pid_file_fd);
    rc |= push_fd(fds, nfds, &cap, ho->keeper_fd);
    for (u_int i = 0; i < ho->listeners.listeners_len; i++)
        rc |= push_fd(fds, nfds, &cap, ho->listeners.listeners_val[i].fd);
    for (u_int i = 0; i < ho->clients.clients_len; i++)
        rc |= push_fd(fds, nfds, &cap, ho->clients.clients_val[i].fd);
    for (u_int i = 0; i < ho->owners.owners_len; i++)
        rc |= push_fd(fds, nfds, &cap, ho->owners.owners_val[i].pidfd);
    for (u_int i = 0; i < ho->leases.leases_len; i++)
        rc |= push_fd(fds, nfds, &cap, ho->leases.leases_val[i].fd);
    if (rc != 0) {
        free(*fds);
        *fds = NULL;
        *nfds = 0;
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot list the handover descriptors");
        return -1;
    }
    return 0;
}

int dmn_fds_set_cloexec(const int *fds, size_t n, bool on)
{
    for (size_t i = 0; i < n; i++) {
        if (fcntl(fds[i], F_SETFD, on ? FD_CLOEXEC : 0) < 0 && !on)
            return -1;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return x < y ? -1 : x > y;
}

/* Every named descriptor >= 3, open, and named once; the lists' own bounds. */
static int check_fds(const vml_handover *ho, vml_error *err)
{
    int *fds = NULL;
    size_t n = 0;
    int ret = -1;

    if (ho->listeners.listeners_len > 2 || ho->pid_file_fd < 3) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover names %u listeners and pid file descriptor %d",
                      ho->listeners.listeners_len, ho->pid_file_fd);
        return -1;
    }
    for (u_int i = 0; i < ho->leases.leases_len; i++) {
        if (ho->leases.leases_val[i].fd < 0) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "the handover names lease %s without a descriptor",
                          ho->leases.leases_val[i].snap.path);
            return -1;
        }
    }
    if (dmn_handover_fds(ho, &fds, &n, err) < 0)
        return -1;
    qsort(fds, n, sizeof(int), cmp_int);
    for (size_t i = 0; i < n; i++) {
        if (fds[i] < 3 || (i > 0 && fds[i] == fds[i - 1])) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "the handover names descriptor %d %s", fds[i],
                          fds[i] < 3 ? "(a standard stream)" : "twice");
            goto out;
        }
        if (fcntl(fds[i], F_GETFD) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno,
                                "descriptor %d named by the handover is not open", fds[i]);
            goto out;
        }
    }
    ret = 0;
 out:
    free(fds);
    return ret;
}

int dmn_handover_read(int fd, vml_handover *ho, vml_error *err)
{
    struct stat st;
    char *buf = NULL;
    size_t done = 0;
    XDR xdrs;
    bool ok;
    int ret = -1;

    memset(ho, 0, sizeof(*ho));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "handover descriptor %d is not a memfd or regular file", fd);
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > VML_HANDOVER_MAX) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover is %lld bytes (expected 1 to %d)", (long long)st.st_size,
                      VML_HANDOVER_MAX);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot read the handover");
        goto out;
    }
    while (done < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, n < 0 ? errno : EIO,
                                "cannot read the handover");
            goto out;
        }
        done += (size_t)n;
    }
    xdrmem_create(&xdrs, buf, (u_int)st.st_size, XDR_DECODE);
    ok = xdr_vml_handover(&xdrs, ho) && xdr_getpos(&xdrs) == (u_int)st.st_size;
    xdr_destroy(&xdrs);
    if (!ok) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover does not decode (truncated, oversized or not a handover)");
        goto out;
    }
    if (ho->magic != VML_HANDOVER_MAGIC || ho->format_version != VML_HANDOVER_VERSION) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover has magic 0x%x format %u; this image reads magic 0x%x "
                      "format %d", ho->magic, ho->format_version,
                      (unsigned int)VML_HANDOVER_MAGIC, VML_HANDOVER_VERSION);
        goto out;
    }
    if (check_fds(ho, err) < 0)
        goto out;
    ret = 0;
 out:
    close(fd);
    free(buf);
    return ret;
}

char **dmn_handover_argv(const char *exe, char *const *argv, int fd)
{
    size_t n = 0, out = 0;
    char **args;

    while (argv[n] != NULL)
        n++;
    args = calloc(n + 3, sizeof(char *));
    if (args == NULL || (args[out++] = strdup(exe)) == NULL)
        goto nomem;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--daemon") == 0)
            continue;
        if (strcmp(argv[i], "--handover-fd") == 0) {
            i++;        /* and its value */
            continue;
        }
        if (strncmp(argv[i], "--handover-fd=", 14) == 0)
            continue;
        if ((args[out++] = strdup(argv[i])) == NULL)
            goto nomem;
    }
    if ((args[out++] = strdup("--handover-fd")) == NULL ||
        asprintf(&args[out], "%d", fd) < 0) {
        args[out] = NULL;
        goto nomem;
    }
    return args;
 nomem:
    dmn_argv_free(args);
    return NULL;
}

void dmn_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (size_t i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}
