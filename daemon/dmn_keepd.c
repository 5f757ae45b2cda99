/* dmn_keepd.c: the keeper process: bounded SEQPACKET messages from its daemon, lease descriptors and pidfds kept across daemon deaths. */
#include "dmn_keepd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/kcmp.h>
#include <rpc/rpc.h>

#include "vml_handover.h"
#include "vml_log.h"
#include "dmn_hash.h"

/* statfs f_type of pidfs (linux/magic.h PID_FS_MAGIC, not in every header set). */
#define KEEPD_PIDFS_MAGIC 0x50494446

/* A fresh keeper that no daemon reached this long after start gives up (its spawner died). */
#define FIRST_CONTACT_MS 30000

/*
 * One holder process, whose pidfd is kept once however many items it holds: the daemon
 * sends its owner's pidfd with every lease, and a pidfd per item would double the
 * descriptors the keeper needs (one per lease is all RLIMIT_NOFILE leaves room for: the
 * daemon itself needs one per lease).  Invariant: pidfd is open; refs items point at it.
 */
typedef struct proc {
    uint64_t key;                   /* key in keeper.by_proc when hashed (see proc_key) */
    int pidfd;
    size_t refs;
    bool hashed;
    bool exited;                    /* seen readable: no longer polled */
    struct proc *prev, *next;
} proc;

/* One kept lease.  Invariant: fd >= 0; procs[0..nprocs) are referenced (one ref each). */
typedef struct item {
    uint64_t id;                    /* key in keeper.by_id */
    unsigned char *meta;            /* the daemon's snapshot, never decoded here */
    size_t meta_len;
    int fd;
    proc **procs;
    size_t nprocs;
    unsigned int holders;           /* the lease's holder count */
    struct item *prev, *next;
} item;

/* The keeper is a singleton per process: this is its whole state. */
typedef struct keeper {
    int listen_fd;
    const char *sock_path;
    dev_t sock_dev;
    ino_t sock_ino;
    int conn;                       /* the daemon's connection, -1 */
    int conn_pidfd;                 /* the daemon's pidfd, -1 */
    unsigned int daemon_pid;
    bool contacted;                 /* some daemon has connected since start */
    bool bye;
    bool pidfs;                     /* pidfds have one inode number per process (Linux 6.9+) */
    pid_t self;                     /* getpid(), for kcmp */
    dmn_hash *by_id;
    item *head;
    size_t nitems;
    dmn_hash *by_proc;              /* proc key -> the live proc with that key */
    proc *procs;
    size_t nprocs;
    proc *last_proc;                /* the last one referenced, NULL */
    unsigned char *buf;             /* one message */
    struct pollfd *pfds;
    size_t apfds;
} keeper;

/* ---- holder processes ---- */

/* The pid a pidfd refers to from /proc/self/fdinfo, 0 when it exited or is unknown. */
static unsigned int pidfd_pid(int pidfd)
{
    char path[64], buf[512];
    const char *line;
    ssize_t n;
    int fd;
    long pid;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    line = strstr(buf, "\nPid:");
    if (line == NULL)
        return 0;
    pid = strtol(line + 5, NULL, 10);
    return pid > 0 ? (unsigned int)pid : 0;
}

/*
 * Which process pidfd names, as a hash key: its pidfs inode number (never reused), or
 * without pidfs its pid, which names one process only while that process has not been
 * reaped (proc_ref checks the kept one still does).  false: not identifiable (exited).
 */
static bool proc_key(const keeper *k, int pidfd, uint64_t *key)
{
    struct stat st;
    unsigned int pid;

    if (k->pidfs) {
        if (fstat(pidfd, &st) < 0)
            return false;
        *key = (uint64_t)st.st_ino;
        return true;
    }
    pid = pidfd_pid(pidfd);
    *key = pid;
    return pid != 0;
}

static void proc_unhash(keeper *k, proc *p)
{
    if (p->hashed)
        dmn_hash_remove(k->by_proc, &p->key, sizeof(p->key));
    p->hashed = false;
}

static void proc_unref(keeper *k, proc *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    if (k->last_proc == p)
        k->last_proc = NULL;
    proc_unhash(k, p);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        k->procs = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    k->nprocs--;
    close(p->pidfd);
    free(p);
}

/* Whether two descriptors of this process are the same open file (kcmp; false when it
 * cannot tell). */
static bool same_file(const keeper *k, int a, int b)
{
    return syscall(SYS_kcmp, k->self, k->self, KCMP_FILE, a, b) == 0;
}

/* A reference to the process pidfd names, taking pidfd (closed when it is already kept). */
static proc *proc_ref(keeper *k, int pidfd)
{
    uint64_t key = 0;
    bool known;
    proc *p;

    /*
     * The daemon sends its one pidfd of an owner with each of that owner's leases, so a
     * received pidfd is usually the very file of the last one kept: one kcmp() tells, where
     * identifying it without pidfs costs reading /proc/self/fdinfo twice.
     */
    if (!k->pidfs && k->last_proc != NULL && same_file(k, pidfd, k->last_proc->pidfd)) {
        close(pidfd);
        k->last_proc->refs++;
        return k->last_proc;
    }
    known = proc_key(k, pidfd, &key);
    p = known ? dmn_hash_get(k->by_proc, &key, sizeof(key)) : NULL;

    /* Without pidfs a pid names the kept process only while that one was not reaped. */
    if (p != NULL && !k->pidfs && pidfd_pid(p->pidfd) != key) {
        proc_unhash(k, p);
        p = NULL;
    }
    if (p != NULL) {
        close(pidfd);
        p->refs++;
        k->last_proc = p;
        return p;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        close(pidfd);
        return NULL;
    }
    p->key = key;
    p->pidfd = pidfd;
    p->refs = 1;
    p->hashed = known && dmn_hash_put(k->by_proc, &p->key, sizeof(p->key), p) == 0;
    p->next = k->procs;
    if (k->procs != NULL)
        k->procs->prev = p;
    k->procs = p;
    k->nprocs++;
    k->last_proc = p;
    return p;
}

static void item_close(keeper *k, item *it)
{
    if (it == NULL)
        return;
    close(it->fd);
    for (size_t i = 0; i < it->nprocs; i++)
        proc_unref(k, it->procs[i]);
    free(it->procs);
    free(it->meta);
    free(it);
}

static void item_remove(keeper *k, item *it)
{
    dmn_hash_remove(k->by_id, &it->id, sizeof(it->id));
    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        k->head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    k->nitems--;
    item_close(k, it);
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
}

static void drop_connection(keeper *k, const char *why)
{
    if (k->conn < 0)
        return;
    if (why != NULL)
        VML_ERROR("dropping the connection of daemon pid %u: %s", k->daemon_pid, why);
    else if (!k->bye)
        VML_WARN("daemon pid %u is gone; keeping %zu lease(s) for the next one", k->daemon_pid,
                 k->nitems);
    close(k->conn);
    k->conn = -1;
    if (k->conn_pidfd >= 0)
        close(k->conn_pidfd);
    k->conn_pidfd = -1;
}

/* ---- sending the state to a daemon ---- */

/* Send one message with fds (may be none); -1 on failure. */
static int send_msg(int conn, const vml_keeper_msg *msg, const int *fds, size_t nfds,
                    unsigned char *buf)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * VML_KEEPER_FDS_MAX)];
    } control;
    struct iovec iov;
    struct msghdr mh = { 0 };
    XDR xdrs;
    size_t len;
    ssize_t n;

    xdrmem_create(&xdrs, (char *)buf, VML_KEEPER_MESSAGE_MAX, XDR_ENCODE);
    if (!xdr_vml_keeper_msg(&xdrs, (vml_keeper_msg *)msg)) {
        xdr_destroy(&xdrs);
        return -1;
    }
    len = xdr_getpos(&xdrs);
    xdr_destroy(&xdrs);
    iov.iov_base = buf;
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
        n = sendmsg(conn, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

/* HELLO: every item, as STATE messages packed within the bounds, then STATE_END. */
static int send_state(keeper *k)
{
    vml_keeper_item batch[VML_KEEPER_ITEMS_MAX];
    int fds[VML_KEEPER_FDS_MAX];
    vml_keeper_msg msg = { .magic = VML_KEEPER_MAGIC, .protocol_version = VML_KEEPER_VERSION,
                           .op = VML_KEEPER_STATE, .pid = (u_int)getpid() };
    size_t nbatch = 0, nfds = 0, bytes = 64;
    item *it = k->head;

    for (;;) {
        size_t need_fds = it != NULL ? 1 + it->nprocs : 0;
        size_t need_bytes = it != NULL ? 32 + it->meta_len : 0;

        if (it == NULL || nbatch == VML_KEEPER_ITEMS_MAX ||
            nfds + need_fds > VML_KEEPER_FDS_MAX ||
            bytes + need_bytes > VML_KEEPER_MESSAGE_MAX) {
            if (nbatch > 0) {
                msg.items.items_len = (u_int)nbatch;
                msg.items.items_val = batch;
                if (send_msg(k->conn, &msg, fds, nfds, k->buf) < 0)
                    return -1;
            }
            nbatch = nfds = 0;
            bytes = 64;
            if (it == NULL)
                break;
        }
        batch[nbatch].id = it->id;
        batch[nbatch].nfds = (u_int)need_fds;
        batch[nbatch].holders = it->holders;
        batch[nbatch].meta.meta_len = (u_int)it->meta_len;
        batch[nbatch].meta.meta_val = (char *)it->meta;
        nbatch++;
        fds[nfds++] = it->fd;
        for (size_t i = 0; i < it->nprocs; i++)
            fds[nfds++] = it->procs[i]->pidfd;
        bytes += need_bytes;
        it = it->next;
    }
    msg.op = VML_KEEPER_STATE_END;
    msg.items.items_len = 0;
    msg.items.items_val = NULL;
    return send_msg(k->conn, &msg, NULL, 0, k->buf);
}

/* ---- receiving ---- */

/* Store (or replace) an item; takes fds[0..nfds) (lease fd first when with_lease). */
static int store_item(keeper *k, const vml_keeper_item *src, int *fds, size_t nfds,
                      bool with_lease)
{
    item *it = dmn_hash_get(k->by_id, &src->id, sizeof(src->id));
    size_t npid = with_lease ? nfds - 1 : nfds;
    unsigned char *meta = NULL;
    proc **procs = NULL;

    if (!with_lease && it == NULL) {
        VML_WARN("UPDATE of lease id %llu that is not kept: ignored",
                 (unsigned long long)src->id);
        close_fds(fds, nfds);
        return 0;
    }
    if ((src->meta.meta_len > 0 && (meta = malloc(src->meta.meta_len)) == NULL) ||
        (npid > 0 && (procs = calloc(npid, sizeof(procs[0]))) == NULL)) {
        free(meta);
        close_fds(fds, nfds);
        return -1;
    }
    if (src->meta.meta_len > 0)
        memcpy(meta, src->meta.meta_val, src->meta.meta_len);
    /* The new references are taken before the old ones go: a holder kept on stays open. */
    for (size_t i = 0; i < npid; i++) {
        int *pidfd = &fds[(with_lease ? 1 : 0) + i];

        procs[i] = proc_ref(k, *pidfd);
        *pidfd = -1;
        if (procs[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                proc_unref(k, procs[j]);
            free(procs);
            free(meta);
            close_fds(fds, nfds);
            return -1;
        }
    }
    if (it == NULL) {
        it = calloc(1, sizeof(*it));
        if (it == NULL) {
            for (size_t i = 0; i < npid; i++)
                proc_unref(k, procs[i]);
            free(procs);
            free(meta);
            close_fds(fds, nfds);
            return -1;
        }
        it->id = src->id;
        it->fd = fds[0];
        if (dmn_hash_put(k->by_id, &it->id, sizeof(it->id), it) < 0) {
            it->meta = meta;
            it->procs = procs;
            it->nprocs = npid;
            item_close(k, it);
            return -1;
        }
        it->next = k->head;
        if (k->head != NULL)
            k->head->prev = it;
        k->head = it;
        k->nitems++;
    } else if (with_lease) {
        close(it->fd);
        it->fd = fds[0];
    }
    for (size_t i = 0; i < it->nprocs; i++)
        proc_unref(k, it->procs[i]);
    free(it->procs);
    free(it->meta);
    it->procs = procs;
    it->nprocs = npid;
    it->meta = meta;
    it->meta_len = src->meta.meta_len;
    it->holders = src->holders;
    return 0;
}

/* Check one decoded message against the descriptors that came with it, then apply it.  The
 * descriptors are always consumed: kept by the items, or closed. */
static int apply_msg(keeper *k, const vml_keeper_msg *msg, int *fds, size_t nfds)
{
    size_t used = 0;

    if (msg->magic != VML_KEEPER_MAGIC || msg->protocol_version != VML_KEEPER_VERSION) {
        VML_ERROR("a message with magic 0x%x version %u (expected 0x%x version %d)", msg->magic,
                  msg->protocol_version, (unsigned int)VML_KEEPER_MAGIC, VML_KEEPER_VERSION);
        close_fds(fds, nfds);
        return -1;
    }
    for (u_int i = 0; i < msg->items.items_len; i++) {
        const vml_keeper_item *src = &msg->items.items_val[i];
        bool with_lease = msg->op == VML_KEEPER_ADD;
        size_t want_min = with_lease ? 1 : 0;

        if (msg->op == VML_KEEPER_DROP ? src->nfds != 0 :
            (src->nfds < want_min || src->nfds > 1 + VML_KEEPER_PIDFDS_MAX ||
             src->nfds > nfds - used)) {
            VML_ERROR("op %d: item %llu claims %u descriptor(s), %zu left in the message",
                      (int)msg->op, (unsigned long long)src->id, src->nfds, nfds - used);
            close_fds(fds, nfds);
            return -1;
        }
        used += src->nfds;
    }
    if (used != nfds) {
        VML_ERROR("op %d: %zu descriptor(s) came with the message, the items name %zu",
                  (int)msg->op, nfds, used);
        close_fds(fds, nfds);
        return -1;
    }
    used = 0;
    switch (msg->op) {
    case VML_KEEPER_HELLO:
        k->daemon_pid = msg->pid;
        VML_INFO("daemon pid %u connected: handing over %zu lease(s)", msg->pid, k->nitems);
        return send_state(k);
    case VML_KEEPER_ADD:
    case VML_KEEPER_UPDATE:
        for (u_int i = 0; i < msg->items.items_len; i++) {
            const vml_keeper_item *src = &msg->items.items_val[i];

            if (store_item(k, src, fds + used, src->nfds, msg->op == VML_KEEPER_ADD) < 0) {
                close_fds(fds + used + src->nfds, nfds - used - src->nfds);
                VML_ERROR("out of memory: lease id %llu is not kept",
                          (unsigned long long)src->id);
                return -1;
            }
            used += src->nfds;
        }
        return 0;
    case VML_KEEPER_DROP:
        for (u_int i = 0; i < msg->items.items_len; i++) {
            item *it = dmn_hash_get(k->by_id, &msg->items.items_val[i].id, sizeof(uint64_t));

            if (it != NULL)
                item_remove(k, it);
        }
        return 0;
    case VML_KEEPER_BYE:
        VML_INFO("daemon pid %u stopped cleanly: the keeper exits", k->daemon_pid);
        k->bye = true;
        return 0;
    default:
        VML_ERROR("unexpected op %d from the daemon", (int)msg->op);
        return -1;
    }
}

/* Read and apply one message from the daemon; closes the connection on EOF or error. */
static void read_daemon(keeper *k)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * VML_KEEPER_FDS_MAX)];
    } control;
    struct iovec iov = { .iov_base = k->buf, .iov_len = VML_KEEPER_MESSAGE_MAX };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof(control.space) };
    int fds[VML_KEEPER_FDS_MAX];
    size_t nfds = 0;
    vml_keeper_msg msg;
    XDR xdrs;
    ssize_t n;
    bool ok;

    do {
        n = recvmsg(k->conn, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < count; i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (nfds < VML_KEEPER_FDS_MAX)
                    fds[nfds++] = fd;
                else
                    close(fd);
            }
        }
    }
    if (n <= 0) {
        close_fds(fds, nfds);
        drop_connection(k, n < 0 && errno != ECONNRESET ? strerror(errno) : NULL);
        return;
    }
    if (mh.msg_flags & MSG_TRUNC) {
        close_fds(fds, nfds);
        drop_connection(k, "a message longer than the protocol allows");
        return;
    }
    /* The kernel sets MSG_CTRUNC also when it could not install every descriptor here
     * (RLIMIT_NOFILE): not the daemon's fault, but the message cannot be applied either. */
    if (mh.msg_flags & MSG_CTRUNC) {
        close_fds(fds, nfds);
        drop_connection(k, "descriptors that did not all arrive (the keeper's descriptor "
                           "limit reached?)");
        return;
    }
    memset(&msg, 0, sizeof(msg));
    xdrmem_create(&xdrs, (char *)k->buf, (u_int)n, XDR_DECODE);
    ok = xdr_vml_keeper_msg(&xdrs, &msg) && xdr_getpos(&xdrs) == (u_int)n;
    xdr_destroy(&xdrs);
    if (!ok) {
        xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)&msg);
        close_fds(fds, nfds);
        drop_connection(k, "a message that does not decode exactly");
        return;
    }
    if (apply_msg(k, &msg, fds, nfds) < 0)
        drop_connection(k, "a message that breaks the keeper protocol");
    xdr_free((xdrproc_t)xdr_vml_keeper_msg, (char *)&msg);
}

/* A new connection: ours when the peer has our uid and no live daemon is connected. */
static void accept_daemon(keeper *k)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    struct pollfd pfd;

    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
        VML_WARN("refusing a connection from pid %d uid %u: not our daemon's uid",
                 (int)cred.pid, (unsigned int)cred.uid);
        close(fd);
        return;
    }
    if (k->conn >= 0) {
        char byte;

        /* The old daemon's connection may have ended without our having read it yet. */
        if (recv(k->conn, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            drop_connection(k, NULL);
    }
    if (k->conn >= 0) {
        pfd.fd = k->conn_pidfd;
        pfd.events = POLLIN;
        if (k->conn_pidfd < 0 || poll(&pfd, 1, 0) == 0) {
            VML_ERROR("refusing daemon pid %d: daemon pid %u is still connected and alive "
                      "(two daemons configured with one keeper socket?)", (int)cred.pid,
                      k->daemon_pid);
            close(fd);
            return;
        }
        drop_connection(k, NULL);
    }
    k->conn = fd;
    k->conn_pidfd = pidfd_open(cred.pid, 0);
    k->daemon_pid = (unsigned int)cred.pid;
    k->contacted = true;
}

/*
 * No daemon: close every item whose holders all exited (we have a pidfd for each).  A
 * holder seen exited is no longer polled (its pidfd stays readable: polling it again would
 * spin while an item still has a live holder).
 */
static void drop_dead_items(keeper *k)
{
    item *next;

    for (proc *p = k->procs; p != NULL; p = p->next) {
        struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

        if (!p->exited && poll(&pfd, 1, 0) > 0)
            p->exited = true;
    }
    for (item *it = k->head; it != NULL; it = next) {
        bool all_gone = it->nprocs > 0 && it->nprocs == it->holders;

        next = it->next;
        for (size_t i = 0; all_gone && i < it->nprocs; i++)
            all_gone = it->procs[i]->exited;
        if (all_gone) {
            VML_WARN("lease id %llu: every holder exited while no daemon was connected; "
                     "releasing it", (unsigned long long)it->id);
            item_remove(k, it);
        }
    }
}

/* Whether this kernel's pidfds live on pidfs (one inode number per process). */
static bool on_pidfs(void)
{
    struct statfs sf;
    int self = pidfd_open(getpid(), 0);
    bool yes;

    if (self < 0)
        return false;
    yes = fstatfs(self, &sf) == 0 && (uint64_t)sf.f_type == KEEPD_PIDFS_MAGIC;
    close(self);
    return yes;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void keeper_cleanup(keeper *k)
{
    struct stat st;

    drop_connection(k, NULL);
    while (k->head != NULL)
        item_remove(k, k->head);
    dmn_hash_free(k->by_proc);
    /* Unlink only the socket we bound: a successor may have replaced it. */
    if (lstat(k->sock_path, &st) == 0 && st.st_dev == k->sock_dev && st.st_ino == k->sock_ino)
        unlink(k->sock_path);
    close(k->listen_fd);
    dmn_hash_free(k->by_id);
    free(k->buf);
    free(k->pfds);
}

int dmn_keepd_run(int listen_fd, const char *sock_path, const char *log_outputs)
{
    keeper k = { .listen_fd = listen_fd, .sock_path = sock_path, .conn = -1, .conn_pidfd = -1 };
    struct stat st;
    struct rlimit rl;
    int64_t started = now_ms();
    int status = 1;

    vml_log_set_program("vmlockd-keeper");
    if (log_outputs != NULL && vml_log_set_outputs(log_outputs, NULL) < 0)
        vml_log_reset();
    signal(SIGPIPE, SIG_IGN);
    /* A terminal's Ctrl-C or the daemon's service stop must not take the locks with it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (fstat(listen_fd, &st) == 0 && lstat(sock_path, &st) == 0) {
        k.sock_dev = st.st_dev;
        k.sock_ino = st.st_ino;
    }
    k.by_id = dmn_hash_new();
    k.by_proc = dmn_hash_new();
    k.buf = malloc(VML_KEEPER_MESSAGE_MAX);
    k.pidfs = on_pidfs();
    k.self = getpid();
    if (k.by_id == NULL || k.by_proc == NULL || k.buf == NULL) {
        VML_ERROR("out of memory at start");
        goto out;
    }
    VML_INFO("keeper pid %ld serving %s", (long)getpid(), sock_path);
    while (!k.bye) {
        size_t n = 0, need = 2 + (k.conn < 0 ? k.nprocs : 0);
        int timeout = -1;
        int rc;

        if (k.conn < 0 && k.nitems == 0 &&
            (k.contacted || now_ms() - started >= FIRST_CONTACT_MS)) {
            VML_INFO("no daemon and nothing to keep: the keeper exits");
            status = 0;
            goto out;
        }
        if (need > k.apfds) {
            struct pollfd *grown = realloc(k.pfds, need * sizeof(*grown));
            if (grown == NULL) {
                VML_ERROR("out of memory for the poll set");
                goto out;
            }
            k.pfds = grown;
            k.apfds = need;
        }
        k.pfds[n++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
        if (k.conn >= 0) {
            k.pfds[n++] = (struct pollfd){ .fd = k.conn, .events = POLLIN };
        } else {
            for (proc *p = k.procs; p != NULL; p = p->next) {
                if (!p->exited)
                    k.pfds[n++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
            }
        }
        if (!k.contacted)
            timeout = (int)(FIRST_CONTACT_MS - (now_ms() - started));
        rc = poll(k.pfds, n, timeout < 0 && !k.contacted ? 0 : timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            VML_ERROR("poll failed: %s", strerror(errno));
            goto out;
        }
        /* The daemon's connection first: its end is seen before a successor is accepted. */
        if (k.conn >= 0 && n > 1 && k.pfds[1].fd == k.conn && k.pfds[1].revents != 0)
            read_daemon(&k);
        else if (k.conn < 0 && rc > 0)
            drop_dead_items(&k);
        if (k.pfds[0].revents != 0)
            accept_daemon(&k);
    }
    status = 0;
 out:
    keeper_cleanup(&k);
    vml_log_reset();
    return status;
}
