/* dmn_keeper.c: the daemon's keeper client: spawn, SCM_RIGHTS hand-offs batched per request, HELLO and adoption of kept leases. */
#include "dmn_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "vml_handover.h"
#include "vml_log.h"
#include "dmn_keepd.h"
#include "vml_child.h"

/* How long the daemon waits on its keeper (a send, a HELLO answer) before giving up on it,
 * unless configured (keeper_timeout_ms). */
#define KEEPER_TIMEOUT_MS 10000
/* A keeper that could not be reached is tried again no sooner than this... */
#define KEEPER_RETRY_MS 5000
/* ... and one that was reached but did not answer (each such try stalls the daemon for the
 * timeout) twice as late after each such try, up to this. */
#define KEEPER_RETRY_MAX_MS 300000
/* Strings of a snapshot are cut to this in the keeper's copy: it only has to rebuild. */
#define KEEPER_TEXT_MAX 1024
/* DROPs of released leases wait this long at most, or until a message of them is full. */
#define KEEPER_DROP_DELAY_MS 100

struct dmn_keeper {
    pid_t self;                 /* this daemon's pid, sent in every message */
    char *sock_path;
    char *log_outputs;          /* for a keeper we start: the daemon's outputs minus stderr */
    int fd;                     /* -1: down */
    unsigned int pid;
    int64_t retry_at_ms;
    unsigned int timeout_ms;    /* a send, a HELLO answer */
    unsigned int retry_ms;      /* the delay before the next try after a failed one */
    unsigned char *buf;
    unsigned char *metas;       /* snapshots of one message being built (send_leases) */
    dmn_journal journal;        /* the last one taken: its lists' room is reused */
    uint64_t *drops;            /* ids of released leases not yet DROPped */
    size_t ndrops, adrops;
    int64_t drops_due_ms;       /* when the first of them must go */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "N:stderr" items removed: the keeper's stderr is /dev/null.  Caller frees. */
static char *without_stderr(const char *spec)
{
    char *out = calloc(1, spec != NULL ? strlen(spec) + 1 : 1);
    size_t len = 0;

    if (out == NULL || spec == NULL)
        return out;
    for (const char *p = spec; *p != '\0';) {
        size_t n;

        while (*p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, " \t");
        if (n > 0 && !(n == 8 && strncmp(p + 1, ":stderr", 7) == 0)) {
            if (len > 0)
                out[len++] = ' ';
            memcpy(out + len, p, n);
            len += n;
        }
        p += n;
    }
    out[len] = '\0';
    return out;
}

/* ---- starting and reaching the keeper ---- */

static int socket_addr(const char *path, struct sockaddr_un *addr, vml_error *err)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (path[0] != '/' || strlen(path) >= sizeof(addr->sun_path)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                      "keeper socket path '%s' must be absolute and shorter than %zu bytes",
                      path, sizeof(addr->sun_path));
        return -1;
    }
    memcpy(addr->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Bound every send on fd to timeout_ms: a keeper that stops reading must not stall the
 * daemon forever. */
static void set_send_timeout(int fd, unsigned int timeout_ms)
{
    struct timeval tv = { .tv_sec = timeout_ms / 1000,
                          .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };

    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connect; *errnum = connect's errno on failure. */
static int connect_keeper(const char *path, unsigned int timeout_ms, int *errnum,
                          vml_error *err)
{
    struct sockaddr_un addr;
    int fd;

    *errnum = 0;
    if (socket_addr(path, &addr, err) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the keeper socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        *errnum = errno;
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot connect to the keeper at %s", path);
        close(fd);
        return -1;
    }
    set_send_timeout(fd, timeout_ms);
    return fd;
}

/*
 * Bind the keeper's socket here (so it listens before anyone connects), then double-fork
 * the keeper: its own session, not our child, holding only that socket.
 */
static int spawn_keeper(const char *path, const char *log_outputs, vml_error *err)
{
    struct sockaddr_un addr;
    mode_t old_umask;
    pid_t pid;
    int status = 0;
    int fd = -1;
    int rc;

    if (socket_addr(path, &addr, err) < 0)
        return -1;
    if (unlink(path) < 0 && errno != ENOENT) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot remove stale keeper socket %s",
                            path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the keeper socket");
        return -1;
    }
    old_umask = umask(077);
    rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_umask);
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot listen on keeper socket %s", path);
        close(fd);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot fork the keeper");
        close(fd);
        unlink(path);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        pid_t keeper;

        setsid();
        keeper = fork();
        if (keeper == 0) {
            int null_fd;

            /* The daemon's log outputs are closed while their descriptors are still theirs
             * (the keeper opens its own), and its handlers, which write to its signal
             * pipe, go. */
            vml_log_reset();
            signal(SIGTERM, SIG_DFL);
            signal(SIGQUIT, SIG_DFL);
            signal(SIGUSR1, SIG_DFL);
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            if (fd > 3)
                close_range(3, (unsigned int)fd - 1, 0);
            close_range((unsigned int)fd + 1, ~0U, 0);
            null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null_fd >= 0) {
                dup2(null_fd, STDIN_FILENO);
                dup2(null_fd, STDOUT_FILENO);
                dup2(null_fd, STDERR_FILENO);
                if (null_fd > STDERR_FILENO && null_fd != fd)
                    close(null_fd);
            }
            if (chdir("/") < 0)
                vml_child_exit(1);
            vml_child_exit(dmn_keepd_run(fd, path, log_outputs));
        }
        /* The intermediate leaves nothing open behind (fd-tracking tools judge it too). */
        close_range(3, ~0U, 0);
        vml_child_exit(keeper > 0 ? 0 : 1);
    }
    close(fd);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_FAILED,
                      "the keeper could not be started (wait status 0x%x)", (unsigned int)status);
        return -1;
    }
    VML_INFO("started a keeper on %s", path);
    return 0;
}

/* Connect, starting the keeper when nobody listens; the connection fd or -1. */
static int reach_keeper(dmn_keeper *k, vml_error *err)
{
    int errnum = 0;
    int fd = connect_keeper(k->sock_path, k->timeout_ms, &errnum, err);

    if (fd >= 0 || (errnum != ENOENT && errnum != ECONNREFUSED))
        return fd;
    if (spawn_keeper(k->sock_path, k->log_outputs, err) < 0)
        return -1;
    return connect_keeper(k->sock_path, k->timeout_ms, &errnum, err);
}

static int keeper_new(const char *sock_path, const char *log_outputs, dmn_keeper **out,
                      vml_error *err)
{
    dmn_keeper *k = calloc(1, sizeof(*k));

    if (k == NULL || (k->sock_path = strdup(sock_path)) == NULL ||
        (k->log_outputs = without_stderr(log_outputs)) == NULL ||
        (k->buf = malloc(VML_KEEPER_MESSAGE_MAX)) == NULL ||
        (k->metas = malloc(VML_KEEPER_MESSAGE_MAX + VML_KEEPER_META_MAX)) == NULL) {
        dmn_keeper_free(k);
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot set up the keeper");
        return -1;
    }
    k->fd = -1;
    k->self = getpid();
    k->timeout_ms = KEEPER_TIMEOUT_MS;
    k->retry_ms = KEEPER_RETRY_MS;
    *out = k;
    return 0;
}

void dmn_keeper_set_timeout(dmn_keeper *k, unsigned int timeout_ms)
{
    if (timeout_ms == 0)
        return;
    k->timeout_ms = timeout_ms;
    set_send_timeout(k->fd, timeout_ms);
}

int dmn_keeper_open(const char *sock_path, const char *log_outputs, dmn_keeper **out,
                    vml_error *err)
{
    dmn_keeper *k = NULL;

    if (keeper_new(sock_path, log_outputs, &k, err) < 0)
        return -1;
    k->fd = reach_keeper(k, err);
    if (k->fd < 0) {
        dmn_keeper_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

int dmn_keeper_inherit(const char *sock_path, const char *log_outputs, int fd,
                       unsigned int keeper_pid, dmn_keeper **out, vml_error *err)
{
    dmn_keeper *k = NULL;
    int type = 0;
    socklen_t len = sizeof(type);

    if (keeper_new(sock_path, log_outputs, &k, err) < 0) {
        close(fd);
        return -1;
    }
    k->fd = fd;
    k->pid = keeper_pid;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "handed-over keeper descriptor %d is not a SOCK_SEQPACKET socket", fd);
        dmn_keeper_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

void dmn_keeper_free(dmn_keeper *k)
{
    if (k == NULL)
        return;
    if (k->fd >= 0)
        close(k->fd);
    dmn_journal_free(&k->journal);
    free(k->drops);
    free(k->metas);
    free(k->buf);
    free(k->log_outputs);
    free(k->sock_path);
    free(k);
}

int dmn_keeper_fd(const dmn_keeper *k)
{
    return k != NULL ? k->fd : -1;
}

unsigned int dmn_keeper_pid(const dmn_keeper *k)
{
    return k != NULL && k->fd >= 0 ? k->pid : 0;
}

int dmn_keeper_release_fd(dmn_keeper *k)
{
    int fd = k != NULL ? k->fd : -1;

    if (k != NULL)
        k->fd = -1;
    return fd;
}

/* ---- messages ---- */

static int send_msg(dmn_keeper *k, vml_keeper_op op, vml_keeper_item *items, size_t nitems,
                    const int *fds, size_t nfds)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * VML_KEEPER_FDS_MAX)];
    } control;
    vml_keeper_msg msg = { .magic = VML_KEEPER_MAGIC, .protocol_version = VML_KEEPER_VERSION,
                           .op = op, .pid = (u_int)k->self,
                           .items = { (u_int)nitems, items } };
    struct iovec iov;
    struct msghdr mh = { 0 };
    XDR xdrs;
    size_t len;
    ssize_t n;

    xdrmem_create(&xdrs, (char *)k->buf, VML_KEEPER_MESSAGE_MAX, XDR_ENCODE);
    if (!xdr_vml_keeper_msg(&xdrs, &msg)) {
        xdr_destroy(&xdrs);
        errno = EMSGSIZE;
        return -1;
    }
    len = xdr_getpos(&xdrs);
    xdr_destroy(&xdrs);
    iov.iov_base = k->buf;
    iov.iov_len = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *cm;

        memset(&control, 0, sizeof(control));
        mh.msg_control = control.space;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    do {
        n = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        if (n >= 0)
            errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

/* Cut a string of the keeper's copy to KEEPER_TEXT_MAX bytes, in place. */
static void cut(char *text)
{
    if (text != NULL && strlen(text) > KEEPER_TEXT_MAX)
        text[KEEPER_TEXT_MAX] = '\0';
}

/*
 * The lease's snapshot pointing at its own strings (holders into hold[]): no copy, for the
 * common case; false when a string must be cut to KEEPER_TEXT_MAX (then it is copied).
 */
static bool snapshot_borrowed(const dmn_lease *lease, size_t nholders, vml_snap_lease *snap,
                              vml_snap_holder *hold)
{
    if (strlen(lease->disk) > KEEPER_TEXT_MAX)
        return false;
    for (size_t i = 0; i < nholders; i++) {
        const dmn_owner *o = lease->holders[i]->owner;

        if (o->identity.name == NULL || strlen(o->identity.name) > KEEPER_TEXT_MAX ||
            (o->uri != NULL && strlen(o->uri) > KEEPER_TEXT_MAX))
            return false;
    }
    dmn_lease_snapshot_view(lease, nholders, snap, hold);
    return true;
}

/*
 * One item for lease: its snapshot encoded into meta (VML_KEEPER_META_MAX bytes, the
 * caller's), and its descriptors appended to fds: the lease fd (ADD) then one pidfd per
 * holder, or none when some holder has no pidfd (then the keeper never releases it on its
 * own).
 */
static int build_item(const dmn_lease *lease, bool with_lease, vml_keeper_item *it,
                      unsigned char *meta, int *fds, size_t *nfds)
{
    vml_snap_holder hold[VML_KEEPER_PIDFDS_MAX];
    vml_snap_lease snap;
    size_t nholders = lease->nholders < VML_KEEPER_PIDFDS_MAX ? lease->nholders
                                                              : VML_KEEPER_PIDFDS_MAX;
    bool all_pidfds = lease->nholders <= VML_KEEPER_PIDFDS_MAX;
    bool copied = false;
    XDR xdrs;
    bool ok;

    if (!snapshot_borrowed(lease, nholders, &snap, hold)) {
        copied = true;
        if (dmn_lease_snapshot(lease, nholders, &snap, NULL) < 0) {
            xdr_free((xdrproc_t)xdr_vml_snap_lease, (char *)&snap);
            return -1;
        }
        for (u_int i = 0; i < snap.holders.holders_len; i++) {
            cut(snap.holders.holders_val[i].identity.name);
            cut(snap.holders.holders_val[i].uri);
        }
        cut(snap.disk);
    }
    xdrmem_create(&xdrs, (char *)meta, VML_KEEPER_META_MAX, XDR_ENCODE);
    ok = xdr_vml_snap_lease(&xdrs, &snap);
    it->meta.meta_len = xdr_getpos(&xdrs);
    it->meta.meta_val = (char *)meta;
    xdr_destroy(&xdrs);
    if (copied)
        xdr_free((xdrproc_t)xdr_vml_snap_lease, (char *)&snap);
    if (!ok)
        return -1;
    it->id = lease->id;
    it->holders = (u_int)lease->nholders;
    it->nfds = 0;
    if (with_lease) {
        fds[(*nfds)++] = lease->fd;
        it->nfds++;
    }
    for (size_t i = 0; all_pidfds && i < lease->nholders; i++)
        all_pidfds = lease->holders[i]->owner->pidfd >= 0;
    for (size_t i = 0; all_pidfds && i < lease->nholders; i++) {
        fds[(*nfds)++] = lease->holders[i]->owner->pidfd;
        it->nfds++;
    }
    return 0;
}

/*
 * Send leases[0..n) as ADD (with_lease) or UPDATE, packed within the protocol's bounds.
 * The snapshots are encoded one after the other into k->metas, which holds a full
 * message's worth plus one item: no allocation per lease.
 */
static int send_leases(dmn_keeper *k, vml_keeper_op op, dmn_lease *const *leases, size_t n)
{
    vml_keeper_item items[VML_KEEPER_ITEMS_MAX];
    int fds[VML_KEEPER_FDS_MAX];
    size_t nitems = 0, nfds = 0, bytes = 64, used = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        vml_keeper_item item;
        int item_fds[1 + VML_KEEPER_PIDFDS_MAX];
        size_t nitem_fds = 0;
        size_t item_bytes;

        memset(&item, 0, sizeof(item));
        if (build_item(leases[i], op == VML_KEEPER_ADD, &item, k->metas + used, item_fds,
                       &nitem_fds) < 0) {
            VML_ERROR("cannot describe lease %s to the keeper: it would not survive a crash",
                      leases[i]->path);
            continue;
        }
        item_bytes = 32 + item.meta.meta_len;
        if (nitems > 0 && (nitems == VML_KEEPER_ITEMS_MAX ||
                           nfds + nitem_fds > VML_KEEPER_FDS_MAX ||
                           bytes + item_bytes > VML_KEEPER_MESSAGE_MAX)) {
            rc = send_msg(k, op, items, nitems, fds, nfds);
            /* The new item's snapshot moves to the front for the next message. */
            memmove(k->metas, item.meta.meta_val, item.meta.meta_len);
            item.meta.meta_val = (char *)k->metas;
            used = 0;
            nitems = nfds = 0;
            bytes = 64;
        }
        items[nitems] = item;
        memcpy(fds + nfds, item_fds, nitem_fds * sizeof(int));
        nfds += nitem_fds;
        bytes += item_bytes;
        used += item.meta.meta_len;
        nitems++;
    }
    if (rc == 0 && nitems > 0)
        rc = send_msg(k, op, items, nitems, fds, nfds);
    return rc;
}

/* DROP ids[0..n), as few messages as the bounds allow; -1 (errno) on failure. */
static int send_drops(dmn_keeper *k, const uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i += VML_KEEPER_ITEMS_MAX) {
        vml_keeper_item items[VML_KEEPER_ITEMS_MAX];
        size_t m = n - i < VML_KEEPER_ITEMS_MAX ? n - i : VML_KEEPER_ITEMS_MAX;

        memset(items, 0, sizeof(items[0]) * m);
        for (size_t j = 0; j < m; j++)
            items[j].id = ids[i + j];
        if (send_msg(k, VML_KEEPER_DROP, items, m, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

/*
 * Queue the journal's DROPs behind those waiting; false when there is no room (then they
 * must go now).
 */
static bool queue_drops(dmn_keeper *k, const dmn_journal *j)
{
    if (j->ndropped == 0)
        return true;
    if (k->ndrops + j->ndropped > k->adrops) {
        size_t n = k->adrops == 0 ? VML_KEEPER_ITEMS_MAX : k->adrops;
        uint64_t *grown;

        while (n < k->ndrops + j->ndropped)
            n *= 2;
        grown = realloc(k->drops, n * sizeof(*grown));
        if (grown == NULL)
            return false;
        k->drops = grown;
        k->adrops = n;
    }
    if (k->ndrops == 0)
        k->drops_due_ms = monotonic_ms() + KEEPER_DROP_DELAY_MS;
    memcpy(k->drops + k->ndrops, j->dropped, j->ndropped * sizeof(j->dropped[0]));
    k->ndrops += j->ndropped;
    return true;
}

/*
 * Send the journal: its ADDs and UPDATEs now; its DROPs queued, and what is queued sent
 * when drops_now, when a message of them is full, or when the oldest waited
 * KEEPER_DROP_DELAY_MS.  -1 (errno) when the keeper cannot be reached.
 */
static int send_journal(dmn_keeper *k, const dmn_journal *j, bool drops_now)
{
    if (j->nadded > 0 && send_leases(k, VML_KEEPER_ADD, j->added, j->nadded) < 0)
        return -1;
    if (j->nupdated > 0 && send_leases(k, VML_KEEPER_UPDATE, j->updated, j->nupdated) < 0)
        return -1;
    if (!queue_drops(k, j)) {
        if (send_drops(k, k->drops, k->ndrops) < 0 || send_drops(k, j->dropped, j->ndropped) < 0)
            return -1;
        k->ndrops = 0;
        return 0;
    }
    if (k->ndrops > 0 && (drops_now || j->drops_urgent || k->ndrops >= VML_KEEPER_ITEMS_MAX ||
                          monotonic_ms() >= k->drops_due_ms)) {
        if (send_drops(k, k->drops, k->ndrops) < 0)
            return -1;
        k->ndrops = 0;
    }
    return 0;
}

/* ---- HELLO and adoption ---- */

/* Receive one message (bounded wait); its descriptors into fds.  0, or -1 with err. */
static int recv_msg(dmn_keeper *k, vml_keeper_msg *msg, int *fds, size_t *nfds, vml_error *err)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * VML_KEEPER_FDS_MAX)];
    } control;
    struct iovec iov = { .iov_base = k->buf, .iov_len = VML_KEEPER_MESSAGE_MAX };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof(control.space) };
    struct pollfd pfd = { .fd = k->fd, .events = POLLIN };
    XDR xdrs;
    ssize_t n;
    bool ok;

    *nfds = 0;
    if (poll(&pfd, 1, (int)k->timeout_ms) != 1) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_TIMEOUT,
                      "the keeper at %s did not answer within %u ms", k->sock_path,
                      k->timeout_ms);
        return -1;
    }
    do {
        n = recvmsg(k->fd, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*nfds < VML_KEEPER_FDS_MAX)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        /* MSG_CTRUNC also means descriptors that could not be installed here (RLIMIT_NOFILE). */
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "the keeper at %s %s", k->sock_path,
                      n == 0 ? "closed the connection" : n < 0 ? strerror(errno)
                      : (mh.msg_flags & MSG_TRUNC) ? "sent an oversized message"
                      : "sent descriptors that did not all arrive (descriptor limit reached?)");
        goto fail;
    }
    memset(msg, 0, sizeof(*msg));
    xdrmem_create(&xdrs, (char *)k->buf, (u_int)n, XDR_DECODE);
    ok = xdr_vml_keeper_msg(&xdrs, msg) && xdr_getpos(&xdrs) == (u_int)n;
    xdr_destroy(&xdrs);
    if (!ok || msg->magic != VML_KEEPER_MAGIC || msg->protocol_version != VML_KEEPER_VERSION ||
        (msg->op != VML_KEEPER_STATE && msg->op != VML_KEEPER_STATE_END)) {
        xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)msg);
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "the keeper at %s sent a message that is not a keeper protocol %d "
                      "STATE", k->sock_path, VML_KEEPER_VERSION);
        goto fail;
    }
    return 0;
 fail:
    for (size_t i = 0; i < *nfds; i++)
        close(fds[i]);
    *nfds = 0;
    return -1;
}

typedef struct adoption {
    dmn_lockspaces *reg;
    dmn_owners *owners;
    bool adopt;
    size_t adopted;
    size_t released;
    uint64_t *unknown;              /* ids to DROP */
    size_t nunknown, aunknown;
    dmn_keeper_lost_fn lost;
    void *opaque;
} adoption;

static void drop_later(adoption *a, uint64_t id)
{
    if (a->nunknown == a->aunknown) {
        size_t n = a->aunknown == 0 ? 16 : a->aunknown * 2;
        uint64_t *grown = realloc(a->unknown, n * sizeof(*grown));

        if (grown == NULL) {
            VML_ERROR("out of memory: the keeper keeps stale lease id %llu",
                      (unsigned long long)id);
            return;
        }
        a->unknown = grown;
        a->aunknown = n;
    }
    a->unknown[a->nunknown++] = id;
}

/* Rebuild one kept lease; takes fds[0..nfds). */
static void adopt_item(adoption *a, const vml_keeper_item *item, int *fds, size_t nfds)
{
    vml_snap_lease snap;
    dmn_owner **holders = NULL;
    int64_t *since = NULL;
    dmn_lease *lease = NULL;
    struct stat st;
    vml_error err = { 0 };
    size_t npid = nfds - 1;
    size_t nholders;
    XDR xdrs;
    bool ok;
    int verify;

    memset(&snap, 0, sizeof(snap));
    xdrmem_create(&xdrs, item->meta.meta_val, item->meta.meta_len, XDR_DECODE);
    ok = xdr_vml_snap_lease(&xdrs, &snap) && xdr_getpos(&xdrs) == item->meta.meta_len &&
         snap.id == item->id;
    xdr_destroy(&xdrs);
    nholders = snap.holders.holders_len;
    if (!ok || (npid != 0 && npid != nholders)) {
        VML_ERROR("the keeper's lease id %llu does not decode: its lock is dropped",
                  (unsigned long long)item->id);
        goto drop;
    }
    if (fstat(fds[0], &st) < 0 || (uint64_t)st.st_dev != snap.dev ||
        (uint64_t)st.st_ino != snap.ino) {
        VML_ERROR("the keeper's descriptor of %s is not the locked file: its lock is dropped",
                  snap.path);
        goto drop;
    }
    holders = calloc(nholders > 0 ? nholders : 1, sizeof(holders[0]));
    since = calloc(nholders > 0 ? nholders : 1, sizeof(since[0]));
    if (holders == NULL || since == NULL) {
        VML_ERROR("out of memory adopting %s", snap.path);
        goto drop;
    }
    for (size_t i = 0; i < nholders; i++) {
        const vml_snap_holder *h = &snap.holders.holders_val[i];
        int pidfd = npid > 0 ? fds[1 + i] : -1;
        int rc;

        if (npid > 0)
            fds[1 + i] = -1;        /* taken by dmn_owners_adopt */
        since[i] = h->since_usec;
        rc = dmn_owners_adopt(a->owners, &h->identity, h->start_time, pidfd, &holders[i], &err);
        if (rc != 0) {
            if (rc < 0)
                VML_ERROR("%s", err.message);
            else
                VML_WARN("owner pid %u (domain '%s') of %s exited while the daemon was down",
                         h->identity.pid, h->identity.name, snap.path);
            holders[i] = NULL;
            continue;
        }
        if (dmn_owner_set_lockfailure(holders[i], h->on_lockfailure, h->uri, &err) < 0)
            VML_WARN("%s", err.message);
    }
    verify = dmn_lease_verify_lock(fds[0], (snap.flags & VML_LS_ACQUIRE_SHARED) != 0, 0);
    if (verify == 2) {
        /* Unlocked on a filesystem that shows every lock: the previous daemon released it
         * (explicitly, before its reply) and died before its batched DROP went out. */
        VML_INFO("the keeper's copy of %s was released before the daemon stopped: dropped",
                 snap.path);
        goto drop;
    }
    if (dmn_lease_restore(a->reg, &snap, fds[0], holders, since, nholders, true, &lease,
                          &err) < 0) {
        fds[0] = -1;
        VML_ERROR("cannot adopt %s: %s", snap.path, err.message);
        goto out;
    }
    fds[0] = -1;
    if (lease == NULL) {
        a->released++;
        goto out;
    }
    a->adopted++;
    dmn_lease_rebase_epoch(a->reg, lease);
    if (verify != 0 && !(lease->state & VML_SNAP_LOST))
        a->lost(a->opaque, lease, verify > 0 ? "another process or host holds its lock "
                                               "(found when adopting it after a restart)"
                                             : "its lock cannot be verified after a restart");
    goto out;
 drop:
    drop_later(a, item->id);
 out:
    for (size_t i = 0; i < nfds; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
    for (size_t i = 0; holders != NULL && i < nholders; i++)
        dmn_owners_forget_if_idle(a->owners, holders[i]);
    free(since);
    free(holders);
    xdr_free((xdrproc_t)xdr_vml_snap_lease, (char *)&snap);
}

static void handle_state(adoption *a, const vml_keeper_msg *msg, int *fds, size_t nfds)
{
    size_t used = 0;

    for (u_int i = 0; i < msg->items.items_len; i++) {
        const vml_keeper_item *item = &msg->items.items_val[i];
        dmn_lease *known = dmn_hash_get(a->reg->by_id, &item->id, sizeof(item->id));

        if (item->nfds < 1 || item->nfds > nfds - used) {
            VML_ERROR("the keeper's lease id %llu comes with %u descriptor(s): dropped",
                      (unsigned long long)item->id, item->nfds);
            drop_later(a, item->id);
            continue;
        }
        if (known != NULL) {
            known->keeper = DMN_KEEPER_SENT;
            for (size_t f = 0; f < item->nfds; f++)
                close(fds[used + f]);
        } else if (a->adopt) {
            adopt_item(a, item, fds + used, item->nfds);
        } else {
            drop_later(a, item->id);
            for (size_t f = 0; f < item->nfds; f++)
                close(fds[used + f]);
        }
        used += item->nfds;
    }
    for (size_t f = used; f < nfds; f++)
        close(fds[f]);
}

int dmn_keeper_sync(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners, bool adopt,
                    size_t *adopted, size_t *released, dmn_keeper_lost_fn lost, void *opaque,
                    vml_error *err)
{
    adoption a = { .reg = reg, .owners = owners, .adopt = adopt, .lost = lost,
                   .opaque = opaque };
    int fds[VML_KEEPER_FDS_MAX];
    size_t nfds;
    int ret = -1;

    /* Start from nothing queued: whatever the keeper does not confirm is sent again below,
     * and what it has that reg does not (released leases among them) is dropped below. */
    dmn_lockspaces_set_journaling(reg, false);
    if (send_msg(k, VML_KEEPER_HELLO, NULL, 0, NULL, 0) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot talk to the keeper at %s",
                            k->sock_path);
        goto out;
    }
    for (;;) {
        vml_keeper_msg msg;

        if (recv_msg(k, &msg, fds, &nfds, err) < 0)
            goto out;
        if (msg.op == VML_KEEPER_STATE_END) {
            k->pid = msg.pid;
            for (size_t f = 0; f < nfds; f++)
                close(fds[f]);
            xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)&msg);
            break;
        }
        handle_state(&a, &msg, fds, nfds);
        xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)&msg);
    }
    dmn_lockspaces_set_journaling(reg, true);
    for (dmn_lease *l = reg->head; l != NULL; l = l->next) {
        if (l->keeper == DMN_KEEPER_NONE)
            dmn_lease_journal_add(reg, l);
    }
    for (size_t i = 0; i < a.nunknown; i += VML_KEEPER_ITEMS_MAX) {
        vml_keeper_item items[VML_KEEPER_ITEMS_MAX];
        size_t n = a.nunknown - i < VML_KEEPER_ITEMS_MAX ? a.nunknown - i : VML_KEEPER_ITEMS_MAX;

        memset(items, 0, sizeof(items[0]) * n);
        for (size_t m = 0; m < n; m++)
            items[m].id = a.unknown[i + m];
        if (send_msg(k, VML_KEEPER_DROP, items, n, NULL, 0) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot talk to the keeper at %s",
                                k->sock_path);
            goto out;
        }
    }
    ret = 0;
 out:
    if (adopted != NULL)
        *adopted = a.adopted;
    if (released != NULL)
        *released = a.released;
    free(a.unknown);
    return ret;
}

/* ---- steady state ---- */

/* The connection is gone or broken: reach the keeper again (starting one if need be) and
 * resync; journaling goes off when that fails. */
static void recover(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners, const char *why)
{
    vml_error err = { 0 };

    if (k->fd >= 0) {
        VML_ERROR("lost the keeper (pid %u) at %s: %s; reconnecting", k->pid, k->sock_path, why);
        close(k->fd);
        k->fd = -1;
    }
    /* The resync below drops whatever the keeper has that the daemon does not. */
    k->ndrops = 0;
    if (monotonic_ms() < k->retry_at_ms)
        return;
    k->fd = reach_keeper(k, &err);
    if (k->fd >= 0 &&
        dmn_keeper_sync(k, reg, owners, false, NULL, NULL, NULL, NULL, &err) == 0) {
        VML_WARN("keeper pid %u at %s is back: handing it %zu lease(s)", k->pid, k->sock_path,
                 reg->nleases);
        k->retry_ms = KEEPER_RETRY_MS;
        return;
    }
    VML_ERROR("no keeper: %s; leases would NOT survive a crash of the daemon (retrying in %u "
              "ms)", err.message, k->retry_ms);
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->retry_at_ms = monotonic_ms() + k->retry_ms;
    /* A keeper that listens but does not answer (stopped, or stuck in the kernel) cost this
     * try the whole timeout, with every client waiting: try it less and less often.  One
     * that cannot be reached at all costs nothing: keep the short delay. */
    if (err.code == VIR_ERR_OPERATION_TIMEOUT)
        k->retry_ms = k->retry_ms * 2 > KEEPER_RETRY_MAX_MS ? KEEPER_RETRY_MAX_MS
                                                            : k->retry_ms * 2;
    else
        k->retry_ms = KEEPER_RETRY_MS;
    dmn_lockspaces_set_journaling(reg, false);
}

/*
 * The ordering that makes "a daemon that dies at any instant loses no granted lock" true
 * (ARCHITECTURE daemon invariant 12): a request's new leases (ADD) and new holders (UPDATE)
 * reach the keeper before its reply is queued.  Released leases need no such care: the
 * daemon unlocks them explicitly before it replies, which frees the lock the keeper's
 * duplicate shares, so their DROPs are batched (one message per KEEPER_DROP_DELAY_MS or
 * per full message instead of one per release).  A daemon that dies meanwhile leaves the
 * keeper items whose locks are free: adoption finds them unlocked and drops them.  That
 * takes a filesystem whose locks /proc lists; a lease on any other (FUSE, NFS) would be
 * re-asserted at adoption, so a journal that drops one sends its DROPs at once.
 */
static void flush(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners, bool drops_now)
{
    if (k->fd < 0) {
        recover(k, reg, owners, "not connected");
        if (k->fd < 0)
            return;
    }
    dmn_lockspaces_take_journal(reg, &k->journal);
    if (send_journal(k, &k->journal, drops_now) < 0) {
        char why[128];

        snprintf(why, sizeof(why), "sending to it failed: %s", strerror(errno));
        /* Resync from scratch: the keeper's items the daemon no longer has are dropped then. */
        recover(k, reg, owners, why);
        if (k->fd >= 0) {
            dmn_lockspaces_take_journal(reg, &k->journal);
            if (send_journal(k, &k->journal, drops_now) < 0)
                recover(k, reg, owners, "sending after the resync failed");
        }
    }
    dmn_journal_clear(&k->journal);
}

void dmn_keeper_flush(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners)
{
    flush(k, reg, owners, true);
}

void dmn_keeper_flush_request(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners)
{
    flush(k, reg, owners, false);
}

bool dmn_keeper_next_deadline(const dmn_keeper *k, int64_t *deadline_ms)
{
    if (k == NULL)
        return false;
    if (k->fd < 0) {
        /* No keeper: the leases held now would not survive a crash of the daemon, so the
         * next attempt to reach one is a timer too, not left to the next request (which may
         * not come for hours).  recover() moves retry_at_ms on after every attempt. */
        *deadline_ms = k->retry_at_ms;
        return true;
    }
    if (k->ndrops == 0)
        return false;
    *deadline_ms = k->drops_due_ms;
    return true;
}

void dmn_keeper_on_event(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners)
{
    char byte;
    ssize_t n = recv(k->fd, &byte, 1, MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    recover(k, reg, owners, n == 0 ? "it closed the connection" : "it sent something unasked");
    dmn_keeper_flush(k, reg, owners);
}

void dmn_keeper_bye(dmn_keeper *k)
{
    if (k == NULL || k->fd < 0)
        return;
    if (send_msg(k, VML_KEEPER_BYE, NULL, 0, NULL, 0) < 0)
        VML_WARN("cannot tell the keeper to exit: %s", strerror(errno));
    close(k->fd);
    k->fd = -1;
}
