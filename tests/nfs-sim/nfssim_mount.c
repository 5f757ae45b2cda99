/* nfssim_mount.c: vml-nfssim-mount, one simulated host's NFS client: a libfuse3 low-level mount forwarding everything to the server. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nfssim_proto.h"
#include "vml_log.h"

/*
 * Threads: the FUSE session loop runs single-threaded in main() and never waits for the
 * server: every operation is sent with an id and answered later by the reader thread, which
 * also renews the NFSv4 lease every lease/3 and reacts to the server's notices.  So a
 * blocked F_SETLKW, a partition or injected latency never stalls other operations of the
 * host.  The interrupt callback runs in the session loop thread.
 *
 * Caching (chosen to behave like an NFS mount with "noac,lookupcache=none" and O_DIRECT-like
 * data, so that no host sees stale state of another):
 *  - entry and attribute timeouts are 0: every path walk asks the server again, so a file
 *    unlinked or replaced on one host is noticed at once on the others;
 *  - every open is direct_io: reads and writes always go to the server (no page cache; also
 *    makes a write through a handle whose lock was lost fail with EIO at write(2), not later);
 *  - no readdir caching (the kernel default without FOPEN_CACHE_DIR).
 */

#define PENDING_BUCKETS 256

typedef struct pending {
    struct pending *next;
    uint64_t id;
    fuse_req_t req;
    uint32_t op;
    size_t size;                /* READDIR: the kernel's buffer size */
    struct fuse_file_info fi;   /* OPEN/CREATE: what to answer with, plus the handle */
    bool sent;
    bool interrupted;
} pending;

/* The one mount of this process (a singleton: libfuse's callbacks get it as userdata). */
typedef struct mount_ctx {
    char host[NFSSIM_MAX_HOSTNAME + 1];
    int sock;
    pthread_mutex_t send_lock;  /* one message at a time on the socket */
    pthread_mutex_t pend_lock;  /* the pending table, next_id, server_gone */
    pending *buckets[PENDING_BUCKETS];
    uint64_t next_id;
    bool server_gone;
    uint32_t mode;
    uint64_t lease_ms;
    int stop_pipe[2];           /* main -> reader: stop */
    struct fuse_session *se;
} mount_ctx;

/* ---------------------------------------------------------------- pending requests */

static void pending_insert(mount_ctx *mc, pending *p)
{
    pending **bucket = &mc->buckets[p->id % PENDING_BUCKETS];

    p->next = *bucket;
    *bucket = p;
}

/* Remove and return the pending request id (caller holds pend_lock), or NULL. */
static pending *pending_take_locked(mount_ctx *mc, uint64_t id)
{
    for (pending **link = &mc->buckets[id % PENDING_BUCKETS]; *link != NULL; link = &(*link)->next) {
        pending *p = *link;

        if (p->id == id) {
            *link = p->next;
            return p;
        }
    }
    return NULL;
}

static pending *pending_find_locked(mount_ctx *mc, uint64_t id)
{
    for (pending *p = mc->buckets[id % PENDING_BUCKETS]; p != NULL; p = p->next) {
        if (p->id == id)
            return p;
    }
    return NULL;
}

static int send_locked_msg(mount_ctx *mc, const void *buf, size_t len)
{
    vml_error err = { 0 };
    int ret;

    pthread_mutex_lock(&mc->send_lock);
    ret = nfssim_send_msg(mc->sock, buf, len, NULL, 0, &err);
    pthread_mutex_unlock(&mc->send_lock);
    if (ret < 0)
        VML_WARN("%s: %s", mc->host, err.message);
    return ret;
}

/* A request's interrupt (the caller got a signal): tell the server to give it up. */
static void on_interrupt(fuse_req_t req, void *data)
{
    mount_ctx *mc = fuse_req_userdata(req);
    uint64_t id = (uint64_t)(uintptr_t)data;
    bool send_cancel = false;
    pending *p;

    pthread_mutex_lock(&mc->pend_lock);
    p = pending_find_locked(mc, id);
    if (p != NULL) {
        p->interrupted = true;
        send_cancel = p->sent;
    }
    pthread_mutex_unlock(&mc->pend_lock);
    if (send_cancel) {
        nfssim_req cancel = { .op = NFSSIM_OP_CANCEL, .id = id };

        VML_DEBUG("%s: interrupt of request %llu", mc->host, (unsigned long long)id);
        send_locked_msg(mc, &cancel, sizeof(cancel));
    }
}

/*
 * Send r (with its name, second name and data) for req; the answer comes through the
 * reader thread.  extra (may be NULL) is copied into the pending entry.  Replies to req
 * itself when it cannot be sent.
 */
static void forward(fuse_req_t req, nfssim_req *r, const char *name, const char *name2,
                    const void *data, size_t data_len, const pending *extra)
{
    mount_ctx *mc = fuse_req_userdata(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    size_t nl = name != NULL ? strlen(name) : 0;
    size_t n2l = name2 != NULL ? strlen(name2) : 0;
    size_t total = sizeof(*r) + nl + n2l + data_len;
    unsigned char *buf = NULL;
    pending *p = NULL;
    bool interrupted;

    if (nl > NFSSIM_MAX_NAME || n2l > NFSSIM_MAX_TARGET) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    buf = malloc(total);
    p = calloc(1, sizeof(*p));
    if (buf == NULL || p == NULL) {
        free(buf);
        free(p);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (extra != NULL)
        *p = *extra;
    p->req = req;
    p->op = r->op;
    p->sent = false;
    p->interrupted = false;

    pthread_mutex_lock(&mc->pend_lock);
    if (mc->server_gone) {
        pthread_mutex_unlock(&mc->pend_lock);
        free(buf);
        free(p);
        fuse_reply_err(req, EIO);
        return;
    }
    p->id = mc->next_id++;
    pending_insert(mc, p);
    pthread_mutex_unlock(&mc->pend_lock);

    r->id = p->id;
    if (r->op != NFSSIM_OP_SETATTR) {
        /* New nodes belong to the caller; SETATTR carries the requested owner instead. */
        r->uid = ctx->uid;
        r->gid = ctx->gid;
    }
    r->namelen = (uint32_t)nl;
    r->name2len = (uint32_t)n2l;
    r->datalen = (uint32_t)(nl + n2l + data_len);
    memcpy(buf, r, sizeof(*r));
    if (nl > 0)
        memcpy(buf + sizeof(*r), name, nl);
    if (n2l > 0)
        memcpy(buf + sizeof(*r) + nl, name2, n2l);
    if (data_len > 0)
        memcpy(buf + sizeof(*r) + nl + n2l, data, data_len);

    /*
     * Registered before sending, so the reader cannot answer (and free) req first; if the
     * request was interrupted already, on_interrupt runs right here and marks it.
     */
    fuse_req_interrupt_func(req, on_interrupt, (void *)(uintptr_t)p->id);

    pthread_mutex_lock(&mc->pend_lock);
    interrupted = p->interrupted;
    if (interrupted)
        pending_take_locked(mc, p->id);
    else
        p->sent = true;
    pthread_mutex_unlock(&mc->pend_lock);
    if (interrupted) {
        free(buf);
        free(p);
        fuse_reply_err(req, EINTR);
        return;
    }
    VML_DEBUG("%s: -> %s id=%llu ino=%llu", mc->host, nfssim_op_name(r->op), (unsigned long long)r->id,
              (unsigned long long)r->ino);
    if (send_locked_msg(mc, buf, total) < 0) {
        pending *mine;

        pthread_mutex_lock(&mc->pend_lock);
        mine = pending_take_locked(mc, r->id);
        pthread_mutex_unlock(&mc->pend_lock);
        if (mine != NULL) {
            fuse_reply_err(req, EIO);
            free(mine);
        }
    }
    free(buf);
}

/* ---------------------------------------------------------------- answering */

static void attr_to_stat(const nfssim_attr *a, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_size = (off_t)a->size;
    st->st_blocks = (blkcnt_t)a->blocks;
    st->st_blksize = 4096;
    st->st_atim.tv_sec = a->atime_ns / 1000000000;
    st->st_atim.tv_nsec = a->atime_ns % 1000000000;
    st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
    st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
    st->st_ctim.tv_sec = a->ctime_ns / 1000000000;
    st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
}

static void entry_from_reply(const nfssim_reply *rep, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = rep->attr.ino;
    e->generation = 1;
    attr_to_stat(&rep->attr, &e->attr);
    e->attr_timeout = 0.0;
    e->entry_timeout = 0.0;
}

static void answer_readdir(fuse_req_t req, size_t size, const unsigned char *data, size_t len)
{
    char *buf = malloc(size > 0 ? size : 1);
    size_t used = 0;
    size_t pos = 0;

    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    while (pos + sizeof(nfssim_dirent) <= len) {
        nfssim_dirent ent;
        char name[NFSSIM_MAX_NAME + 1];
        struct stat st;
        size_t need;

        memcpy(&ent, data + pos, sizeof(ent));
        if (ent.namelen > NFSSIM_MAX_NAME || pos + sizeof(ent) + ent.namelen > len)
            break;
        memcpy(name, data + pos + sizeof(ent), ent.namelen);
        name[ent.namelen] = '\0';
        memset(&st, 0, sizeof(st));
        st.st_ino = ent.ino;
        st.st_mode = ent.mode;
        need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)ent.next_offset);
        if (need > size - used)
            break;
        used += need;
        pos += sizeof(ent) + ent.namelen;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void answer(mount_ctx *mc, pending *p, const nfssim_reply *rep, const unsigned char *data)
{
    fuse_req_t req = p->req;
    struct fuse_entry_param e;
    struct stat st;

    if (rep->error != 0) {
        VML_DEBUG("%s: <- %s id=%llu error %s", mc->host, nfssim_op_name(p->op),
                  (unsigned long long)p->id, strerror(rep->error));
        fuse_reply_err(req, rep->error);
        return;
    }
    switch (p->op) {
    case NFSSIM_OP_LOOKUP:
    case NFSSIM_OP_MKDIR:
    case NFSSIM_OP_SYMLINK:
        entry_from_reply(rep, &e);
        fuse_reply_entry(req, &e);
        break;
    case NFSSIM_OP_CREATE:
        entry_from_reply(rep, &e);
        p->fi.fh = rep->fh;
        p->fi.direct_io = 1;
        p->fi.keep_cache = 0;
        fuse_reply_create(req, &e, &p->fi);
        break;
    case NFSSIM_OP_OPEN:
        p->fi.fh = rep->fh;
        p->fi.direct_io = 1;
        p->fi.keep_cache = 0;
        fuse_reply_open(req, &p->fi);
        break;
    case NFSSIM_OP_GETATTR:
    case NFSSIM_OP_SETATTR:
        attr_to_stat(&rep->attr, &st);
        fuse_reply_attr(req, &st, 0.0);
        break;
    case NFSSIM_OP_READLINK: {
        char target[NFSSIM_MAX_TARGET + 1];
        size_t len = rep->datalen > NFSSIM_MAX_TARGET ? NFSSIM_MAX_TARGET : rep->datalen;

        memcpy(target, data, len);
        target[len] = '\0';
        fuse_reply_readlink(req, target);
        break;
    }
    case NFSSIM_OP_READ:
        fuse_reply_buf(req, (const char *)data, rep->datalen);
        break;
    case NFSSIM_OP_WRITE:
        fuse_reply_write(req, rep->value);
        break;
    case NFSSIM_OP_READDIR:
        answer_readdir(req, p->size, data, rep->datalen);
        break;
    case NFSSIM_OP_STATFS: {
        struct statvfs sv;

        memset(&sv, 0, sizeof(sv));
        sv.f_bsize = 4096;
        sv.f_frsize = 4096;
        sv.f_blocks = rep->fs_blocks;
        sv.f_bfree = rep->fs_bfree;
        sv.f_bavail = rep->fs_bfree;
        sv.f_files = rep->fs_files;
        sv.f_ffree = rep->fs_ffree;
        sv.f_favail = rep->fs_ffree;
        sv.f_namemax = NFSSIM_MAX_NAME;
        fuse_reply_statfs(req, &sv);
        break;
    }
    case NFSSIM_OP_GETLK: {
        struct flock fl;

        memset(&fl, 0, sizeof(fl));
        fl.l_type = (short)rep->lk_type;
        fl.l_whence = SEEK_SET;
        fl.l_start = rep->lk_start;
        fl.l_len = rep->lk_end == NFSSIM_LOCK_EOF ? 0 : rep->lk_end - rep->lk_start + 1;
        fl.l_pid = (pid_t)rep->lk_pid;
        fuse_reply_lock(req, &fl);
        break;
    }
    default:
        fuse_reply_err(req, 0);
        break;
    }
}

/* The server went away: everything in flight fails, and so does everything after. */
static void fail_all_pending(mount_ctx *mc)
{
    pending *all = NULL;

    pthread_mutex_lock(&mc->pend_lock);
    mc->server_gone = true;
    for (size_t b = 0; b < PENDING_BUCKETS; b++) {
        pending **link = &mc->buckets[b];

        while (*link != NULL) {
            pending *p = *link;

            if (!p->sent) {
                /* forward() still owns it: its send fails and it answers EIO itself. */
                link = &p->next;
                continue;
            }
            *link = p->next;
            p->next = all;
            all = p;
        }
    }
    pthread_mutex_unlock(&mc->pend_lock);
    while (all != NULL) {
        pending *p = all;

        all = p->next;
        fuse_reply_err(p->req, EIO);
        free(p);
    }
}

static void send_simple(mount_ctx *mc, uint32_t op, uint32_t flags)
{
    nfssim_req r;

    memset(&r, 0, sizeof(r));
    r.op = op;
    r.flags = flags;
    send_locked_msg(mc, &r, sizeof(r));
}

static void handle_notice(mount_ctx *mc, const nfssim_reply *rep)
{
    switch (rep->op) {
    case NFSSIM_OP_NOTICE_LEASE:
        mc->mode = rep->flags;
        mc->lease_ms = rep->value;
        VML_INFO("%s: server mode nfs%u, lease %llu ms", mc->host, mc->mode, (unsigned long long)mc->lease_ms);
        break;
    case NFSSIM_OP_NOTICE_REBOOT:
        /* Like an NFS client seeing NFS4ERR_STALE_CLIENTID (or statd's SM_NOTIFY): reclaim. */
        VML_INFO("%s: server rebooted (grace %llu ms); %s", mc->host, (unsigned long long)rep->value,
                 (rep->flags & NFSSIM_REBOOT_RECLAIM) ? "reclaiming locks" : "told not to reclaim");
        send_simple(mc, NFSSIM_OP_RECLAIM, (rep->flags & NFSSIM_REBOOT_RECLAIM) ? 0 : NFSSIM_RECLAIM_DECLINE);
        break;
    case NFSSIM_OP_RENEW:
        if (rep->error == ESTALE)
            VML_WARN("%s: the server says our lease had expired; locks taken before are lost", mc->host);
        break;
    case NFSSIM_OP_RECLAIM:
        if (rep->error != 0)
            VML_WARN("%s: reclaim failed: %s", mc->host, strerror(rep->error));
        break;
    default:
        VML_WARN("%s: unexpected message %s from the server", mc->host, nfssim_op_name(rep->op));
        break;
    }
}

static int64_t renew_interval(const mount_ctx *mc)
{
    if (mc->mode != NFSSIM_MODE_NFS4 || mc->lease_ms == 0)
        return 1000;    /* nothing to renew; just look again later */
    return mc->lease_ms / 3 > 0 ? (int64_t)(mc->lease_ms / 3) : 1;
}

static void *reader_main(void *opaque)
{
    mount_ctx *mc = opaque;
    size_t cap = sizeof(nfssim_reply) + NFSSIM_MAX_PAYLOAD;
    unsigned char *buf = malloc(cap);
    int64_t next_renew = nfssim_now_ms() + renew_interval(mc);

    if (buf == NULL) {
        VML_ERROR("%s: out of memory starting the reader", mc->host);
        fail_all_pending(mc);
        return NULL;
    }
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = mc->sock, .events = POLLIN },
            { .fd = mc->stop_pipe[0], .events = POLLIN },
        };
        int64_t now = nfssim_now_ms();
        int timeout = next_renew > now ? (int)(next_renew - now) : 0;
        nfssim_reply rep;
        pending *p;
        ssize_t n;

        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            VML_ERROR("%s: poll failed: %s", mc->host, strerror(errno));
            break;
        }
        if (pfd[1].revents != 0)
            break;
        now = nfssim_now_ms();
        if (now >= next_renew) {
            if (mc->mode == NFSSIM_MODE_NFS4)
                send_simple(mc, NFSSIM_OP_RENEW, 0);
            next_renew = now + renew_interval(mc);
        }
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = recv(mc->sock, buf, cap, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            VML_ERROR("%s: lost the connection to the server%s%s; all I/O now fails with EIO", mc->host,
                      n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            break;
        }
        if ((size_t)n < sizeof(rep)) {
            VML_ERROR("%s: short message (%zd bytes) from the server", mc->host, n);
            break;
        }
        memcpy(&rep, buf, sizeof(rep));
        if ((size_t)n != sizeof(rep) + rep.datalen) {
            VML_ERROR("%s: malformed %s message from the server", mc->host, nfssim_op_name(rep.op));
            break;
        }
        if (rep.id == 0) {
            handle_notice(mc, &rep);
            continue;
        }
        pthread_mutex_lock(&mc->pend_lock);
        p = pending_take_locked(mc, rep.id);
        pthread_mutex_unlock(&mc->pend_lock);
        if (p == NULL)
            continue;   /* answered already (an interrupt or a timeout won the race) */
        answer(mc, p, &rep, buf + sizeof(rep));
        free(p);
    }
    free(buf);
    fail_all_pending(mc);
    return NULL;
}

/* ---------------------------------------------------------------- FUSE operations */

static void req_init(nfssim_req *r, uint32_t op, fuse_ino_t ino)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    r->ino = ino;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    conn->max_write = NFSSIM_MAX_DATA;
    conn->max_read = NFSSIM_MAX_DATA;     /* must match the max_read mount option */
    conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_LOOKUP, parent);
    forward(req, &r, name, NULL, NULL, 0, NULL);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Inode numbers are never reused by the server, so there is nothing to forget. */
    (void)ino;
    (void)nlookup;
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    nfssim_req r;

    (void)fi;
    req_init(&r, NFSSIM_OP_GETATTR, ino);
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_SETATTR, ino);
    r.fh = fi != NULL ? fi->fh : 0;
    if (to_set & FUSE_SET_ATTR_MODE) {
        r.flags |= NFSSIM_SET_MODE;
        r.mode = attr->st_mode;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        r.flags |= NFSSIM_SET_UID;
        r.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        r.flags |= NFSSIM_SET_GID;
        r.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        r.flags |= NFSSIM_SET_SIZE;
        r.offset = (uint64_t)attr->st_size;
    }
    if (to_set & FUSE_SET_ATTR_ATIME) {
        r.flags |= NFSSIM_SET_ATIME;
        r.atime_ns = (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME) {
        r.flags |= NFSSIM_SET_MTIME;
        r.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        r.flags |= NFSSIM_SET_ATIME_NOW;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        r.flags |= NFSSIM_SET_MTIME_NOW;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_READLINK, ino);
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_MKDIR, parent);
    r.mode = mode & ~fuse_req_ctx(req)->umask;
    forward(req, &r, name, NULL, NULL, 0, NULL);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_UNLINK, parent);
    forward(req, &r, name, NULL, NULL, 0, NULL);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_RMDIR, parent);
    forward(req, &r, name, NULL, NULL, 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_SYMLINK, parent);
    forward(req, &r, name, link, NULL, 0, NULL);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_RENAME, parent);
    r.ino2 = newparent;
    r.flags = flags;
    forward(req, &r, name, newname, NULL, 0, NULL);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    nfssim_req r;
    pending extra;

    memset(&extra, 0, sizeof(extra));
    extra.fi = *fi;
    req_init(&r, NFSSIM_OP_OPEN, ino);
    r.flags = (uint32_t)fi->flags;
    forward(req, &r, NULL, NULL, NULL, 0, &extra);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    nfssim_req r;
    pending extra;

    memset(&extra, 0, sizeof(extra));
    extra.fi = *fi;
    req_init(&r, NFSSIM_OP_CREATE, parent);
    r.flags = (uint32_t)fi->flags;
    r.mode = mode & ~fuse_req_ctx(req)->umask;
    forward(req, &r, name, NULL, NULL, 0, &extra);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_READ, ino);
    r.fh = fi->fh;
    r.offset = (uint64_t)off;
    r.size = size;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    nfssim_req r;

    if (size > NFSSIM_MAX_DATA) {
        fuse_reply_err(req, EINVAL);    /* cannot happen: max_write is NFSSIM_MAX_DATA */
        return;
    }
    req_init(&r, NFSSIM_OP_WRITE, ino);
    r.fh = fi->fh;
    r.offset = (uint64_t)off;
    forward(req, &r, NULL, NULL, buf, size, NULL);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    nfssim_req r;

    /* close(2) sends no unlock to FUSE: the POSIX locks of lock_owner go here (the close quirk). */
    req_init(&r, NFSSIM_OP_FLUSH, ino);
    r.fh = fi->fh;
    r.owner = fi->lock_owner;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    nfssim_req r;

    /* OFD locks never see a FLUSH: the server drops them when their description goes. */
    req_init(&r, NFSSIM_OP_RELEASE, ino);
    r.fh = fi->fh;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    nfssim_req r;

    (void)datasync;
    req_init(&r, NFSSIM_OP_FSYNC, ino);
    r.fh = fi->fh;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    fi->fh = 0;     /* directories are read by inode number; nothing to open on the server */
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    nfssim_req r;
    pending extra;

    (void)fi;
    memset(&extra, 0, sizeof(extra));
    extra.size = size;
    req_init(&r, NFSSIM_OP_READDIR, ino);
    r.offset = (uint64_t)off;
    r.size = size;
    forward(req, &r, NULL, NULL, NULL, 0, &extra);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_STATFS, ino);
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

/* A struct flock from the kernel (SEEK_SET, l_len 0 = to EOF) as an inclusive range. */
static int lock_range(const struct flock *lock, int64_t *start, int64_t *end)
{
    if (lock->l_start < 0 || lock->l_len < 0)
        return -1;
    *start = lock->l_start;
    if (lock->l_len == 0 || lock->l_len - 1 > INT64_MAX - lock->l_start)
        *end = NFSSIM_LOCK_EOF;
    else
        *end = lock->l_start + lock->l_len - 1;
    return 0;
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_GETLK, ino);
    if (lock_range(lock, &r.lk_start, &r.lk_end) < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    r.fh = fi->fh;
    r.owner = fi->lock_owner;
    r.lk_type = (uint32_t)lock->l_type;
    r.lk_pid = (uint32_t)lock->l_pid;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep)
{
    nfssim_req r;

    req_init(&r, NFSSIM_OP_SETLK, ino);
    if (lock_range(lock, &r.lk_start, &r.lk_end) < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    r.fh = fi->fh;
    r.owner = fi->lock_owner;
    r.lk_type = (uint32_t)lock->l_type;
    r.lk_pid = (uint32_t)lock->l_pid;
    r.flags = sleep ? NFSSIM_LK_SLEEP : 0;
    forward(req, &r, NULL, NULL, NULL, 0, NULL);
}

static const struct fuse_lowlevel_ops mount_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .create = op_create,
    .getlk = op_getlk,
    .setlk = op_setlk,
};

/* ---------------------------------------------------------------- start-up */

/* Connect to the server and introduce this host.  Returns 0, or -1 with err filled. */
static int server_connect(mount_ctx *mc, const char *path, vml_error *err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t hl = strlen(mc->host);
    unsigned char buf[sizeof(nfssim_req) + NFSSIM_MAX_HOSTNAME];
    nfssim_req hello;
    nfssim_reply rep;
    struct pollfd pfd;
    ssize_t n;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG, "server socket path '%s' is too long", path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    mc->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (mc->sock < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create a socket");
        return -1;
    }
    if (connect(mc->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot connect to the server at '%s'", path);
        return -1;
    }
    memset(&hello, 0, sizeof(hello));
    hello.op = NFSSIM_OP_HELLO;
    hello.flags = NFSSIM_PROTO_VERSION;
    hello.namelen = (uint32_t)hl;
    hello.datalen = (uint32_t)hl;
    memcpy(buf, &hello, sizeof(hello));
    memcpy(buf + sizeof(hello), mc->host, hl);
    if (nfssim_send_msg(mc->sock, buf, sizeof(hello) + hl, NULL, 0, err) < 0)
        return -1;
    pfd = (struct pollfd){ .fd = mc->sock, .events = POLLIN };
    if (poll(&pfd, 1, 10000) <= 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "the server at '%s' did not answer HELLO in 10 s", path);
        return -1;
    }
    n = recv(mc->sock, &rep, sizeof(rep), 0);
    if (n != (ssize_t)sizeof(rep) || rep.op != NFSSIM_OP_HELLO) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "the server at '%s' closed the connection or sent "
                      "something other than a HELLO answer", path);
        return -1;
    }
    if (rep.error != 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "the server refused host '%s': %s%s", mc->host,
                      strerror(rep.error), rep.error == EEXIST ? " (a mount of this host is already connected)" : "");
        return -1;
    }
    mc->mode = rep.flags;
    mc->lease_ms = rep.value;
    mc->next_id = 1;
    return 0;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: vml-nfssim-mount HOSTNAME SERVER_SOCKET MOUNTPOINT [--ready-fd N] [--log-level 1..4] [--fuse-debug]\n");
}

int main(int argc, char **argv)
{
    mount_ctx mc;
    vml_error err = { 0 };
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    const char *positional[3] = { NULL, NULL, NULL };
    int npos = 0;
    long ready_fd = -1;
    unsigned long level = VML_LOG_WARN;
    bool fuse_debug = false;
    bool mounted = false;
    bool reader_started = false;
    bool handlers_set = false;
    pthread_t reader;
    char opts[256];
    int ret = 1;

    memset(&mc, 0, sizeof(mc));
    mc.sock = -1;
    mc.stop_pipe[0] = mc.stop_pipe[1] = -1;
    pthread_mutex_init(&mc.send_lock, NULL);
    pthread_mutex_init(&mc.pend_lock, NULL);
    vml_log_set_program("vml-nfssim-mount");

    for (int i = 1; i < argc; i++) {
        char *end = NULL;

        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--fuse-debug") == 0) {
            fuse_debug = true;
        } else if ((strcmp(argv[i], "--ready-fd") == 0 || strcmp(argv[i], "--log-level") == 0) && i + 1 < argc) {
            long v;

            errno = 0;
            v = strtol(argv[i + 1], &end, 10);
            if (errno != 0 || end == argv[i + 1] || *end != '\0' || v < 0 || v > INT_MAX) {
                fprintf(stderr, "vml-nfssim-mount: %s '%s' is not a number\n", argv[i], argv[i + 1]);
                return 2;
            }
            if (argv[i][2] == 'r') {
                if (fcntl((int)v, F_GETFD) < 0) {
                    fprintf(stderr, "vml-nfssim-mount: --ready-fd %ld is not an open descriptor\n", v);
                    return 2;
                }
                ready_fd = v;
            } else {
                if (v < VML_LOG_DEBUG || v > VML_LOG_ERROR) {
                    fprintf(stderr, "vml-nfssim-mount: --log-level %ld is not 1..4\n", v);
                    return 2;
                }
                level = (unsigned long)v;
            }
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "vml-nfssim-mount: unknown option or missing value: '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (npos < 3) {
            positional[npos++] = argv[i];
        } else {
            fprintf(stderr, "vml-nfssim-mount: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (npos != 3) {
        usage(stderr);
        return 2;
    }
    if (!nfssim_hostname_valid(positional[0])) {
        fprintf(stderr, "vml-nfssim-mount: host name '%s' is not 1-63 of A-Z a-z 0-9 . _ - "
                "(not starting with . or -)\n", positional[0]);
        return 2;
    }
    vml_log_set_level((unsigned int)level, NULL);
    snprintf(mc.host, sizeof(mc.host), "%s", positional[0]);

    if (server_connect(&mc, positional[1], &err) < 0) {
        VML_ERROR("%s", err.message);
        goto out;
    }
    if (pipe2(mc.stop_pipe, O_CLOEXEC) < 0) {
        VML_ERROR("cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    snprintf(opts, sizeof(opts), "allow_other,default_permissions,fsname=nfssim:%s,subtype=nfssim,max_read=%u",
             mc.host, NFSSIM_MAX_DATA);
    if (fuse_opt_add_arg(&args, "vml-nfssim-mount") != 0 || fuse_opt_add_arg(&args, "-o") != 0 ||
        fuse_opt_add_arg(&args, opts) != 0 || (fuse_debug && fuse_opt_add_arg(&args, "-d") != 0)) {
        VML_ERROR("out of memory building the FUSE arguments");
        goto out;
    }
    mc.se = fuse_session_new(&args, &mount_ops, sizeof(mount_ops), &mc);
    if (mc.se == NULL) {
        VML_ERROR("cannot create the FUSE session");
        goto out;
    }
    if (fuse_set_signal_handlers(mc.se) != 0) {
        VML_ERROR("cannot install signal handlers");
        goto out;
    }
    handlers_set = true;
    if (pthread_create(&reader, NULL, reader_main, &mc) != 0) {
        VML_ERROR("cannot start the reader thread");
        goto out;
    }
    reader_started = true;
    if (fuse_session_mount(mc.se, positional[2]) != 0) {
        VML_ERROR("cannot mount on '%s' (is /dev/fuse there, and are we root?)", positional[2]);
        goto out;
    }
    mounted = true;
    VML_INFO("%s: mounted %s from %s (nfs%u, lease %llu ms)", mc.host, positional[2], positional[1], mc.mode,
             (unsigned long long)mc.lease_ms);
    if (ready_fd >= 0) {
        if (write((int)ready_fd, "ready\n", 6) != 6)
            VML_WARN("cannot write to --ready-fd: %s", strerror(errno));
        close((int)ready_fd);
    }
    ret = fuse_session_loop(mc.se) < 0 ? 1 : 0;

out:
    if (reader_started) {
        char byte = 'q';

        if (write(mc.stop_pipe[1], &byte, 1) != 1)
            shutdown(mc.sock, SHUT_RDWR);
        pthread_join(reader, NULL);
    }
    if (mounted)
        fuse_session_unmount(mc.se);
    if (handlers_set)
        fuse_remove_signal_handlers(mc.se);
    if (mc.se != NULL)
        fuse_session_destroy(mc.se);
    fuse_opt_free_args(&args);
    if (mc.stop_pipe[0] >= 0)
        close(mc.stop_pipe[0]);
    if (mc.stop_pipe[1] >= 0)
        close(mc.stop_pipe[1]);
    if (mc.sock >= 0)
        close(mc.sock);
    return ret;
}
