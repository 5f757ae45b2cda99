/* nfssim_state.c: the simulated NFS server's semantics: file ops, the lock table, leases, grace, reclaim and faults. */
#include "nfssim_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vml_log.h"

/* ---------------------------------------------------------------- replies */

/* Deliver a message to host, honouring a server->host partition. Takes msg. */
static void host_deliver(sim_server *srv, sim_host *host, sim_msg *msg, bool bypass_partition)
{
    if (host->conn == NULL) {
        free(msg);
        return;
    }
    if (host->cut_to_host && !bypass_partition) {
        msg->deadline = (host->timeo_ms > 0 && msg->id != 0) ? nfssim_now_ms() + host->timeo_ms : 0;
        sim_msg_queue_push(&host->held, msg);
        return;
    }
    sim_conn_send(srv, host->conn, msg);
}

static void reply_full(sim_server *srv, sim_host *host, nfssim_reply *rep, const void *data,
                       size_t len, bool bypass_partition)
{
    sim_msg *msg;

    rep->datalen = (uint32_t)len;
    msg = sim_msg_new(rep, sizeof(*rep), data, len);
    if (msg == NULL) {
        VML_ERROR("out of memory replying to %s %s", host->name, nfssim_op_name(rep->op));
        return;
    }
    msg->id = rep->id;
    host_deliver(srv, host, msg, bypass_partition);
}

static void reply_init(nfssim_reply *rep, const nfssim_req *req, int error)
{
    memset(rep, 0, sizeof(*rep));
    rep->op = req->op;
    rep->id = req->id;
    rep->error = error;
}

/* Answer req with just a status. */
static void reply_status(sim_server *srv, sim_host *host, const nfssim_req *req, int error)
{
    nfssim_reply rep;

    reply_init(&rep, req, error);
    reply_full(srv, host, &rep, NULL, 0, false);
}

/*
 * Answer with a status the host's own client produces (an interrupt, a soft-mount timeout):
 * it does not cross the network, so a partition does not hold it.
 */
static void reply_local(sim_server *srv, sim_host *host, uint64_t id, uint32_t op, int error)
{
    nfssim_reply rep;

    memset(&rep, 0, sizeof(rep));
    rep.op = op;
    rep.id = id;
    rep.error = error;
    reply_full(srv, host, &rep, NULL, 0, true);
}

static void reply_attr(sim_server *srv, sim_host *host, const nfssim_req *req, const nfssim_node *node,
                       uint64_t fh)
{
    nfssim_reply rep;

    reply_init(&rep, req, 0);
    nfssim_fs_attr(node, &rep.attr);
    rep.fh = fh;
    reply_full(srv, host, &rep, NULL, 0, false);
}

static void request_free(sim_request *r)
{
    if (r == NULL)
        return;
    free(r->req);
    free(r);
}

/* ---------------------------------------------------------------- hosts */

sim_host *sim_host_get(sim_server *srv, const char *name, bool create)
{
    sim_host *host;
    sim_host **tail = &srv->hosts;

    for (host = srv->hosts; host != NULL; host = host->next) {
        if (strcmp(host->name, name) == 0)
            return host;
        tail = &host->next;
    }
    if (!create)
        return NULL;
    host = calloc(1, sizeof(*host));
    if (host == NULL)
        return NULL;
    host->id = ++srv->next_host_id;
    snprintf(host->name, sizeof(host->name), "%s", name);
    host->reclaim_enabled = true;
    host->last_renew = nfssim_now_ms();
    host->in_tail = &host->in_head;
    sim_msg_queue_init(&host->held);
    *tail = host;
    return host;
}

static sim_host *host_by_id(sim_server *srv, uint32_t id)
{
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        if (host->id == id)
            return host;
    }
    return NULL;
}

/* ---------------------------------------------------------------- handles */

static sim_fh *fh_get(const sim_server *srv, uint64_t id)
{
    return id < srv->fhs_cap ? srv->fhs[id] : NULL;
}

static int fh_new(sim_server *srv, sim_host *host, nfssim_node *node, uint32_t flags, sim_fh **out)
{
    sim_fh *fh;

    if (srv->next_fh >= srv->fhs_cap) {
        size_t cap = srv->fhs_cap == 0 ? 256 : srv->fhs_cap * 2;
        sim_fh **fhs = realloc(srv->fhs, cap * sizeof(*fhs));

        if (fhs == NULL)
            return ENOMEM;
        memset(fhs + srv->fhs_cap, 0, (cap - srv->fhs_cap) * sizeof(*fhs));
        srv->fhs = fhs;
        srv->fhs_cap = cap;
    }
    fh = calloc(1, sizeof(*fh));
    if (fh == NULL)
        return ENOMEM;
    fh->id = srv->next_fh++;
    fh->host = host;
    fh->node = node;
    fh->flags = flags;
    fh->node_next = node->fhs;
    node->fhs = fh;
    srv->fhs[fh->id] = fh;
    *out = fh;
    return 0;
}

static bool node_has_waiters(const sim_server *srv, const nfssim_node *node)
{
    for (const sim_request *w = srv->waiters; w != NULL; w = w->next) {
        if (w->node == node)
            return true;
    }
    return false;
}

static void node_maybe_free(sim_server *srv, nfssim_node *node)
{
    if (node != NULL)
        nfssim_fs_maybe_free(srv->fs, node, node_has_waiters(srv, node));
}

/* Close a handle; its node may go away with it (unlinked and unused). */
static void fh_close(sim_server *srv, sim_fh *fh)
{
    nfssim_node *node = fh->node;

    for (sim_fh **link = &node->fhs; *link != NULL; link = &(*link)->node_next) {
        if (*link == fh) {
            *link = fh->node_next;
            break;
        }
    }
    srv->fhs[fh->id] = NULL;
    free(fh);
    node_maybe_free(srv, node);
}

/*
 * The host lost a lock on node without being told.  Like the Linux NFS client with
 * nfs.recover_lost_locks=0, the host's open state for that file is then unusable: every
 * handle this host had open on the node at that moment answers I/O with EIO until closed.
 */
static void mark_lost(sim_server *srv, sim_host *host, nfssim_node *node, const char *why)
{
    char path[512];
    unsigned int marked = 0;

    if (node == NULL)
        return;
    for (sim_fh *fh = node->fhs; fh != NULL; fh = fh->node_next) {
        if (fh->host == host && !fh->lost) {
            fh->lost = true;
            marked++;
        }
    }
    nfssim_fs_path(node, path, sizeof(path));
    sim_log_event(srv, "LOST", host, "%s %s handles=%u", path, why, marked);
}

/* ---------------------------------------------------------------- lock waiters */

static bool lock_types_conflict(int a, int b)
{
    return a == F_WRLCK || b == F_WRLCK;
}

static void remove_waiter(sim_request **list, sim_request *w)
{
    for (sim_request **link = list; *link != NULL; link = &(*link)->next) {
        if (*link == w) {
            *link = w->next;
            w->next = NULL;
            return;
        }
    }
}

/*
 * Grant what can be granted on node, in arrival order: a waiter is granted when no held lock
 * conflicts and no earlier waiter still blocked on this node (of another owner) wants an
 * overlapping range in a conflicting mode, so a stream of readers cannot starve a writer.
 * Nothing is granted during a grace period.
 */
static void grant_waiters(sim_server *srv, nfssim_node *node)
{
    sim_request *w = srv->waiters;

    if (srv->grace_active || node == NULL)
        return;
    while (w != NULL) {
        sim_request *next = w->next;
        const nfssim_req *req = w->req;
        bool blocked = false;

        if (w->node != node) {
            w = next;
            continue;
        }
        if (nfssim_locks_conflict(&node->locks, w->host->id, req->owner, (int)req->lk_type,
                                  req->lk_start, req->lk_end) != NULL)
            blocked = true;
        for (sim_request *e = srv->waiters; !blocked && e != w; e = e->next) {
            if (e->node != node || (e->host == w->host && e->req->owner == req->owner))
                continue;
            if (nfssim_range_overlaps(e->req->lk_start, e->req->lk_end, req->lk_start, req->lk_end) &&
                lock_types_conflict((int)e->req->lk_type, (int)req->lk_type))
                blocked = true;
        }
        if (!blocked) {
            sim_host *host = w->host;
            int status = 0;

            remove_waiter(&srv->waiters, w);
            if (nfssim_locks_apply(&node->locks, host->id, req->owner, req->fh, req->lk_pid,
                                   (int)req->lk_type, req->lk_start, req->lk_end) < 0)
                status = ENOLCK;
            sim_log_event(srv, "GRANTED", host, "ino=%llu owner=%#llx range=%lld-%lld status=%d",
                      (unsigned long long)node->ino, (unsigned long long)req->owner,
                      (long long)req->lk_start, (long long)req->lk_end, status);
            reply_status(srv, host, req, status);
            request_free(w);
            /* The scan restarts: the grant may have changed what earlier waiters block. */
            next = srv->waiters;
        }
        w = next;
    }
}

static void grant_all_nodes(sim_server *srv)
{
    for (size_t i = 0; i < srv->fs->nodes_cap; i++) {
        if (srv->fs->nodes[i] != NULL)
            grant_waiters(srv, srv->fs->nodes[i]);
    }
}

/* Answer and drop every waiter (lock and grace) of host: their requests die with the host's state. */
static void drop_host_waiters(sim_server *srv, sim_host *host, int error)
{
    sim_request **lists[2] = { &srv->waiters, &srv->grace_waiters };
    sim_request *detached = NULL;

    /* Detach them all first: granting (below) changes the waiter list. */
    for (size_t l = 0; l < 2; l++) {
        sim_request **link = lists[l];

        while (*link != NULL) {
            sim_request *w = *link;

            if (w->host != host) {
                link = &w->next;
                continue;
            }
            *link = w->next;
            w->next = detached;
            detached = w;
        }
    }
    for (sim_request *w = detached; w != NULL; w = w->next) {
        if (error != 0)
            reply_local(srv, host, w->req->id, w->req->op, error);
        grant_waiters(srv, w->node);
    }
    while (detached != NULL) {
        sim_request *w = detached;
        bool node_again = false;

        detached = w->next;
        for (sim_request *later = detached; later != NULL; later = later->next)
            node_again = node_again || later->node == w->node;
        if (!node_again)
            node_maybe_free(srv, w->node);
        request_free(w);
    }
}

/* ---------------------------------------------------------------- dropping locks */

typedef struct drop_ctx {
    uint32_t host;
    uint64_t owner;
    uint64_t fh;
    bool by_owner;
    bool by_fh;
} drop_ctx;

static bool drop_match(const nfssim_lock *lock, void *opaque)
{
    const drop_ctx *ctx = opaque;

    if (lock->host != ctx->host)
        return false;
    if (ctx->by_owner && lock->owner != ctx->owner)
        return false;
    if (ctx->by_fh && lock->fh != ctx->fh)
        return false;
    return true;
}

/* Remove the matching records from one snapshot node entry of host. */
static void snap_drop(sim_host *host, uint64_t ino, drop_ctx *ctx)
{
    for (sim_snap *s = host->snap; s != NULL; s = s->next) {
        if (s->ino == ino)
            nfssim_locks_remove_if(&s->locks, drop_match, NULL, ctx);
    }
}

static void snap_free(sim_host *host)
{
    while (host->snap != NULL) {
        sim_snap *next = host->snap->next;

        nfssim_locks_clear(&host->snap->locks);
        free(host->snap);
        host->snap = next;
    }
    host->snap_pending = false;
}

/* Forget the host's unreclaimed locks; its handles on those nodes become lost. */
static void snap_lose(sim_server *srv, sim_host *host, const char *why)
{
    for (sim_snap *s = host->snap; s != NULL; s = s->next) {
        if (s->locks.head != NULL)
            mark_lost(srv, host, nfssim_fs_get(srv->fs, s->ino), why);
    }
    snap_free(host);
}

/*
 * Drop every lock host holds on every node; when lost, the host is not told (expiry, loss,
 * reboot) and its handles on those nodes are marked lost.  Returns the number dropped.
 */
static size_t drop_host_locks(sim_server *srv, sim_host *host, bool lost, const char *why)
{
    drop_ctx ctx = { .host = host->id };
    size_t total = 0;

    for (size_t i = 0; i < srv->fs->nodes_cap; i++) {
        nfssim_node *node = srv->fs->nodes[i];
        size_t n;

        if (node == NULL || node->locks.head == NULL)
            continue;
        n = nfssim_locks_remove_if(&node->locks, drop_match, NULL, &ctx);
        if (n == 0)
            continue;
        total += n;
        if (lost)
            mark_lost(srv, host, node, why);
        grant_waiters(srv, node);
        node_maybe_free(srv, node);
    }
    return total;
}

/* ---------------------------------------------------------------- file operations */

static nfssim_node *node_or_stale(sim_server *srv, sim_host *host, const nfssim_req *req, uint64_t ino)
{
    nfssim_node *node = nfssim_fs_get(srv->fs, ino);

    if (node == NULL)
        reply_status(srv, host, req, ESTALE);
    return node;
}

/* The handle req names, checked to belong to host and node; NULL after replying EBADF. */
static sim_fh *fh_or_badf(sim_server *srv, sim_host *host, const nfssim_req *req, const nfssim_node *node)
{
    sim_fh *fh = fh_get(srv, req->fh);

    if (fh == NULL || fh->host != host || fh->node != node) {
        reply_status(srv, host, req, EBADF);
        return NULL;
    }
    return fh;
}

static void op_lookup(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_node *node;

    if (dir == NULL)
        return;
    if (!S_ISDIR(dir->mode)) {
        reply_status(srv, host, req, ENOTDIR);
        return;
    }
    node = nfssim_fs_lookup(dir, nfssim_req_name(req), req->namelen);
    if (node == NULL) {
        reply_status(srv, host, req, ENOENT);
        return;
    }
    reply_attr(srv, host, req, node, 0);
}

static void op_getattr(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);

    if (node != NULL)
        reply_attr(srv, host, req, node, 0);
}

static void op_setattr(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    int64_t now = nfssim_wall_ns();

    if (node == NULL)
        return;
    if (req->flags & NFSSIM_SET_SIZE) {
        sim_fh *fh = fh_get(srv, req->fh);
        int status;

        if (req->fh != 0 && fh != NULL && fh->host == host && fh->lost) {
            reply_status(srv, host, req, EIO);
            return;
        }
        status = nfssim_fs_truncate(srv->fs, node, req->offset);
        if (status != 0) {
            reply_status(srv, host, req, status);
            return;
        }
    }
    if (req->flags & NFSSIM_SET_MODE)
        node->mode = (node->mode & S_IFMT) | (req->mode & 07777);
    if (req->flags & NFSSIM_SET_UID)
        node->uid = req->uid;
    if (req->flags & NFSSIM_SET_GID)
        node->gid = req->gid;
    if (req->flags & NFSSIM_SET_ATIME)
        node->atime_ns = req->atime_ns;
    if (req->flags & NFSSIM_SET_ATIME_NOW)
        node->atime_ns = now;
    if (req->flags & NFSSIM_SET_MTIME)
        node->mtime_ns = req->mtime_ns;
    if (req->flags & NFSSIM_SET_MTIME_NOW)
        node->mtime_ns = now;
    node->ctime_ns = now;
    reply_attr(srv, host, req, node, 0);
}

static void op_create_node(sim_server *srv, sim_host *host, const nfssim_req *req, uint32_t mode)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_node *node = NULL;
    int status;

    if (dir == NULL)
        return;
    status = nfssim_fs_create(srv->fs, dir, nfssim_req_name(req), req->namelen, mode, req->uid,
                              req->gid, nfssim_req_name2(req), req->name2len, &node);
    if (status != 0) {
        reply_status(srv, host, req, status);
        return;
    }
    reply_attr(srv, host, req, node, 0);
}

static void op_remove(sim_server *srv, sim_host *host, const nfssim_req *req, bool want_dir)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_node *removed = NULL;
    int status;

    if (dir == NULL)
        return;
    status = nfssim_fs_remove(srv->fs, dir, nfssim_req_name(req), req->namelen, want_dir, &removed);
    if (status == 0)
        node_maybe_free(srv, removed);
    reply_status(srv, host, req, status);
}

static void op_rename(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_node *newdir;
    nfssim_node *replaced = NULL;
    int status;

    if (dir == NULL)
        return;
    newdir = node_or_stale(srv, host, req, req->ino2);
    if (newdir == NULL)
        return;
    status = nfssim_fs_rename(srv->fs, dir, nfssim_req_name(req), req->namelen, newdir,
                              nfssim_req_name2(req), req->name2len, req->flags, &replaced);
    if (status == 0)
        node_maybe_free(srv, replaced);
    reply_status(srv, host, req, status);
}

static void op_readlink(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    nfssim_reply rep;

    if (node == NULL)
        return;
    if (!S_ISLNK(node->mode)) {
        reply_status(srv, host, req, EINVAL);
        return;
    }
    reply_init(&rep, req, 0);
    reply_full(srv, host, &rep, node->target, strlen(node->target), false);
}

/* Open node for host; truncates on O_TRUNC.  Replies attr + handle. */
static void open_node(sim_server *srv, sim_host *host, const nfssim_req *req, nfssim_node *node)
{
    sim_fh *fh = NULL;
    int status;

    if (S_ISDIR(node->mode)) {
        reply_status(srv, host, req, EISDIR);
        return;
    }
    if (S_ISLNK(node->mode)) {
        reply_status(srv, host, req, ELOOP);
        return;
    }
    if ((req->flags & O_TRUNC) && (req->flags & O_ACCMODE) != O_RDONLY) {
        status = nfssim_fs_truncate(srv->fs, node, 0);
        if (status != 0) {
            reply_status(srv, host, req, status);
            return;
        }
    }
    status = fh_new(srv, host, node, req->flags, &fh);
    if (status != 0) {
        reply_status(srv, host, req, status);
        return;
    }
    reply_attr(srv, host, req, node, fh->id);
}

static void op_open(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);

    if (node != NULL)
        open_node(srv, host, req, node);
}

static void op_create(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_node *node;
    int status;

    if (dir == NULL)
        return;
    node = nfssim_fs_lookup(dir, nfssim_req_name(req), req->namelen);
    if (node != NULL && (req->flags & O_EXCL)) {
        reply_status(srv, host, req, EEXIST);
        return;
    }
    if (node == NULL) {
        status = nfssim_fs_create(srv->fs, dir, nfssim_req_name(req), req->namelen,
                                  S_IFREG | (req->mode & 07777), req->uid, req->gid, NULL, 0, &node);
        if (status != 0) {
            reply_status(srv, host, req, status);
            return;
        }
    }
    open_node(srv, host, req, node);
}

static void op_read(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    sim_fh *fh;
    nfssim_reply rep;
    size_t got = 0;
    size_t want = req->size > NFSSIM_MAX_DATA ? NFSSIM_MAX_DATA : (size_t)req->size;
    int status;

    if (node == NULL || (fh = fh_or_badf(srv, host, req, node)) == NULL)
        return;
    if (fh->lost) {
        reply_status(srv, host, req, EIO);
        return;
    }
    status = nfssim_fs_read(node, req->offset, want, srv->iobuf, &got);
    reply_init(&rep, req, status);
    reply_full(srv, host, &rep, srv->iobuf, status == 0 ? got : 0, false);
}

static void op_write(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    sim_fh *fh;
    nfssim_reply rep;
    size_t len;
    const unsigned char *data = nfssim_req_payload(req, &len);
    int status;

    if (node == NULL || (fh = fh_or_badf(srv, host, req, node)) == NULL)
        return;
    if (fh->lost) {
        reply_status(srv, host, req, EIO);
        return;
    }
    status = nfssim_fs_write(srv->fs, node, req->offset, data, len);
    reply_init(&rep, req, status);
    rep.value = status == 0 ? len : 0;
    reply_full(srv, host, &rep, NULL, 0, false);
}

static void op_fsync(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    sim_fh *fh;

    if (node == NULL || (fh = fh_or_badf(srv, host, req, node)) == NULL)
        return;
    reply_status(srv, host, req, fh->lost ? EIO : 0);
}

static size_t dirent_cost(size_t namelen)
{
    return (24 + namelen + 7) & ~(size_t)7;     /* what fuse_add_direntry will use */
}

static void op_readdir(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *dir = node_or_stale(srv, host, req, req->ino);
    nfssim_reply rep;
    size_t used = 0;
    size_t cost = 0;
    size_t budget = req->size > NFSSIM_MAX_DATA ? NFSSIM_MAX_DATA : (size_t)req->size;

    if (dir == NULL)
        return;
    if (!S_ISDIR(dir->mode)) {
        reply_status(srv, host, req, ENOTDIR);
        return;
    }
    /* Cookie 0 is ".", 1 is "..", k + 2 is child k. */
    for (uint64_t pos = req->offset; pos < dir->nchildren + 2; pos++) {
        nfssim_dirent ent;
        const char *name;
        uint64_t ino;
        uint32_t mode;

        if (pos == 0) {
            name = ".";
            ino = dir->ino;
            mode = dir->mode;
        } else if (pos == 1) {
            name = "..";
            ino = dir->parent != NULL ? dir->parent->ino : dir->ino;
            mode = S_IFDIR;
        } else {
            const nfssim_node *child = dir->children[pos - 2];

            name = child->name;
            ino = child->ino;
            mode = child->mode;
        }
        ent.ino = ino;
        ent.next_offset = pos + 1;
        ent.mode = mode;
        ent.namelen = (uint32_t)strlen(name);
        if (cost + dirent_cost(ent.namelen) > budget ||
            used + sizeof(ent) + ent.namelen > NFSSIM_MAX_PAYLOAD)
            break;
        cost += dirent_cost(ent.namelen);
        memcpy(srv->iobuf + used, &ent, sizeof(ent));
        memcpy(srv->iobuf + used + sizeof(ent), name, ent.namelen);
        used += sizeof(ent) + ent.namelen;
    }
    reply_init(&rep, req, 0);
    reply_full(srv, host, &rep, srv->iobuf, used, false);
}

static void op_statfs(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_reply rep;
    uint64_t blocks = 1ull << 24;                       /* 64 GiB in 4 KiB blocks */
    uint64_t used = srv->fs->stored_chunks * (NFSSIM_CHUNK_SIZE / 4096);

    reply_init(&rep, req, 0);
    rep.fs_blocks = blocks;
    rep.fs_bfree = used < blocks ? blocks - used : 0;
    rep.fs_files = 1ull << 20;
    rep.fs_ffree = rep.fs_files > srv->fs->live_nodes ? rep.fs_files - srv->fs->live_nodes : 0;
    reply_full(srv, host, &rep, NULL, 0, false);
}

/* ---------------------------------------------------------------- locking operations */

/* Unlock [start, end] of (host, owner) on node, also in what the host may still reclaim. */
static void unlock_range(sim_host *host, nfssim_node *node, const nfssim_req *req)
{
    if (nfssim_locks_apply(&node->locks, host->id, req->owner, req->fh, req->lk_pid, F_UNLCK,
                           req->lk_start, req->lk_end) < 0)
        VML_WARN("out of memory splitting a lock of %s; the unlock is incomplete", host->name);
    for (sim_snap *s = host->snap; s != NULL; s = s->next) {
        if (s->ino == node->ino)
            (void)nfssim_locks_apply(&s->locks, host->id, req->owner, req->fh, req->lk_pid, F_UNLCK,
                                     req->lk_start, req->lk_end);
    }
}

/* Park a request until the grace period ends (NFS4ERR_GRACE makes the client retry). */
static void wait_for_grace(sim_server *srv, sim_host *host, nfssim_req *req)
{
    sim_request *w = calloc(1, sizeof(*w));
    sim_request **tail = &srv->grace_waiters;

    if (w == NULL) {
        reply_status(srv, host, req, ENOLCK);
        free(req);
        return;
    }
    w->host = host;
    w->req = req;
    w->arrival = nfssim_now_ms();
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = w;
    sim_log_event(srv, "GRACE_WAIT", host, "%s ino=%llu", nfssim_op_name(req->op),
              (unsigned long long)req->ino);
}

/* Takes req.  Returns true when req was consumed (queued), false when the caller frees it. */
static bool op_getlk(sim_server *srv, sim_host *host, nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    const nfssim_lock *conflict;
    nfssim_reply rep;

    if (node == NULL)
        return false;
    if (srv->grace_active) {
        if (srv->grace_enolck) {
            reply_status(srv, host, req, ENOLCK);
            return false;
        }
        wait_for_grace(srv, host, req);
        return true;
    }
    conflict = nfssim_locks_conflict(&node->locks, host->id, req->owner, (int)req->lk_type,
                                     req->lk_start, req->lk_end);
    reply_init(&rep, req, 0);
    if (conflict == NULL) {
        rep.lk_type = F_UNLCK;
        rep.lk_start = req->lk_start;
        rep.lk_end = req->lk_end;
    } else {
        rep.lk_type = (uint32_t)conflict->type;
        rep.lk_start = conflict->start;
        rep.lk_end = conflict->end;
        /* Like NFS: a lock of another host has no pid this host could make sense of. */
        rep.lk_pid = conflict->host == host->id ? conflict->pid : 0;
    }
    reply_full(srv, host, &rep, NULL, 0, false);
    return false;
}

/* Takes req like op_getlk. */
static bool op_setlk(sim_server *srv, sim_host *host, nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    sim_fh *fh;
    sim_request *w;
    sim_request **tail;

    if (node == NULL || (fh = fh_or_badf(srv, host, req, node)) == NULL)
        return false;
    if (req->lk_type == F_UNLCK) {
        unlock_range(host, node, req);
        sim_log_event(srv, "UNLOCKED", host, "ino=%llu owner=%#llx range=%lld-%lld",
                  (unsigned long long)node->ino, (unsigned long long)req->owner,
                  (long long)req->lk_start, (long long)req->lk_end);
        reply_status(srv, host, req, 0);
        grant_waiters(srv, node);
        return false;
    }
    if (fh->lost) {
        reply_status(srv, host, req, EIO);
        return false;
    }
    if (srv->enolck_pending > 0) {
        srv->enolck_pending--;
        sim_log_event(srv, "ENOLCK", host, "ino=%llu injected, %llu more", (unsigned long long)node->ino,
                  (unsigned long long)srv->enolck_pending);
        reply_status(srv, host, req, ENOLCK);
        return false;
    }
    if (srv->grace_active) {
        if (srv->grace_enolck) {
            reply_status(srv, host, req, ENOLCK);
            return false;
        }
        wait_for_grace(srv, host, req);
        return true;
    }
    if (nfssim_locks_conflict(&node->locks, host->id, req->owner, (int)req->lk_type, req->lk_start,
                              req->lk_end) == NULL) {
        int status = 0;

        if (nfssim_locks_apply(&node->locks, host->id, req->owner, req->fh, req->lk_pid,
                               (int)req->lk_type, req->lk_start, req->lk_end) < 0)
            status = ENOLCK;
        sim_log_event(srv, "LOCKED", host, "ino=%llu owner=%#llx range=%lld-%lld type=%c status=%d",
                  (unsigned long long)node->ino, (unsigned long long)req->owner,
                  (long long)req->lk_start, (long long)req->lk_end,
                  req->lk_type == F_WRLCK ? 'W' : 'R', status);
        reply_status(srv, host, req, status);
        return false;
    }
    if (!(req->flags & NFSSIM_LK_SLEEP)) {
        reply_status(srv, host, req, EAGAIN);
        return false;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        reply_status(srv, host, req, ENOLCK);
        return false;
    }
    w->host = host;
    w->req = req;
    w->node = node;
    w->arrival = nfssim_now_ms();
    tail = &srv->waiters;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = w;
    sim_log_event(srv, "WAITING", host, "ino=%llu owner=%#llx range=%lld-%lld type=%c",
              (unsigned long long)node->ino, (unsigned long long)req->owner,
              (long long)req->lk_start, (long long)req->lk_end, req->lk_type == F_WRLCK ? 'W' : 'R');
    return true;
}

/* close(2) of any descriptor: the closing process's POSIX locks on the file go (the close quirk). */
static void op_flush(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    drop_ctx ctx = { .host = host->id, .owner = req->owner, .by_owner = true };
    size_t n;

    if (node == NULL)
        return;
    n = nfssim_locks_remove_if(&node->locks, drop_match, NULL, &ctx);
    snap_drop(host, node->ino, &ctx);
    if (n > 0)
        sim_log_event(srv, "FLUSHED", host, "ino=%llu owner=%#llx locks=%zu", (unsigned long long)node->ino,
                  (unsigned long long)req->owner, n);
    reply_status(srv, host, req, 0);
    grant_waiters(srv, node);
}

/*
 * Last close of an open file description: OFD locks (whose owner is the description, so
 * they never see a FLUSH) taken through it go.  A record's fh is the handle its owner last
 * locked through; POSIX owners were already flushed when their descriptors closed.
 */
static void op_release(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    nfssim_node *node = node_or_stale(srv, host, req, req->ino);
    sim_fh *fh;
    drop_ctx ctx = { .host = host->id, .fh = req->fh, .by_fh = true };
    size_t n;

    if (node == NULL || (fh = fh_or_badf(srv, host, req, node)) == NULL)
        return;
    n = nfssim_locks_remove_if(&node->locks, drop_match, NULL, &ctx);
    snap_drop(host, node->ino, &ctx);
    sim_log_event(srv, "RELEASED", host, "ino=%llu fh=%llu locks=%zu", (unsigned long long)node->ino,
              (unsigned long long)req->fh, n);
    reply_status(srv, host, req, 0);
    grant_waiters(srv, node);
    fh_close(srv, fh);
}

static void op_renew(sim_server *srv, sim_host *host, const nfssim_req *req, bool was_expired)
{
    reply_status(srv, host, req, was_expired ? ESTALE : 0);
}

/* The host answers NOTICE_REBOOT: re-take its locks (or give them up). */
static void op_reclaim(sim_server *srv, sim_host *host, const nfssim_req *req)
{
    unsigned int reclaimed = 0;
    unsigned int refused = 0;

    if (!host->snap_pending) {
        reply_status(srv, host, req, 0);
        return;
    }
    if (req->flags & NFSSIM_RECLAIM_DECLINE) {
        sim_log_event(srv, "RECLAIM_DECLINED", host, "the host gave its locks up");
        snap_lose(srv, host, "reclaim declined");
        reply_status(srv, host, req, 0);
        return;
    }
    if (!srv->grace_active) {
        /* NFS4ERR_NO_GRACE: too late, the state is gone for good. */
        sim_log_event(srv, "RECLAIM_FAILED", host, "no grace period");
        snap_lose(srv, host, "reclaim after grace");
        reply_status(srv, host, req, ENOLCK);
        return;
    }
    for (sim_snap *s = host->snap; s != NULL; s = s->next) {
        nfssim_node *node = nfssim_fs_get(srv->fs, s->ino);
        bool lost = false;

        for (nfssim_lock *l = s->locks.head; l != NULL; l = l->next) {
            if (node == NULL ||
                nfssim_locks_conflict(&node->locks, host->id, l->owner, l->type, l->start, l->end) != NULL ||
                nfssim_locks_apply(&node->locks, host->id, l->owner, l->fh, l->pid, l->type, l->start,
                                   l->end) < 0) {
                lost = true;
                refused++;
            } else {
                reclaimed++;
            }
        }
        if (lost)
            mark_lost(srv, host, node, "reclaim refused");
    }
    snap_free(host);
    sim_log_event(srv, "RECLAIMED", host, "locks=%u refused=%u", reclaimed, refused);
    reply_status(srv, host, req, refused == 0 ? 0 : ENOLCK);
}

/* ---------------------------------------------------------------- dispatch */

/* Execute one request of host.  Takes req. */
static void dispatch(sim_server *srv, sim_host *host, nfssim_req *req)
{
    bool was_expired = host->expired;
    bool kept = false;

    /* Any request the server executes renews the lease (NFSv4.1 SEQUENCE). */
    host->last_renew = nfssim_now_ms();
    host->expired = false;
    VML_DEBUG("%s: %s id=%llu ino=%llu", host->name, nfssim_op_name(req->op),
              (unsigned long long)req->id, (unsigned long long)req->ino);
    switch ((nfssim_op)req->op) {
    case NFSSIM_OP_LOOKUP: op_lookup(srv, host, req); break;
    case NFSSIM_OP_GETATTR: op_getattr(srv, host, req); break;
    case NFSSIM_OP_SETATTR: op_setattr(srv, host, req); break;
    case NFSSIM_OP_MKDIR: op_create_node(srv, host, req, S_IFDIR | (req->mode & 07777)); break;
    case NFSSIM_OP_SYMLINK: op_create_node(srv, host, req, S_IFLNK | 0777); break;
    case NFSSIM_OP_UNLINK: op_remove(srv, host, req, false); break;
    case NFSSIM_OP_RMDIR: op_remove(srv, host, req, true); break;
    case NFSSIM_OP_READLINK: op_readlink(srv, host, req); break;
    case NFSSIM_OP_RENAME: op_rename(srv, host, req); break;
    case NFSSIM_OP_OPEN: op_open(srv, host, req); break;
    case NFSSIM_OP_CREATE: op_create(srv, host, req); break;
    case NFSSIM_OP_READ: op_read(srv, host, req); break;
    case NFSSIM_OP_WRITE: op_write(srv, host, req); break;
    case NFSSIM_OP_FLUSH: op_flush(srv, host, req); break;
    case NFSSIM_OP_RELEASE: op_release(srv, host, req); break;
    case NFSSIM_OP_FSYNC: op_fsync(srv, host, req); break;
    case NFSSIM_OP_READDIR: op_readdir(srv, host, req); break;
    case NFSSIM_OP_STATFS: op_statfs(srv, host, req); break;
    case NFSSIM_OP_GETLK: kept = op_getlk(srv, host, req); break;
    case NFSSIM_OP_SETLK: kept = op_setlk(srv, host, req); break;
    case NFSSIM_OP_RENEW: op_renew(srv, host, req, was_expired); break;
    case NFSSIM_OP_RECLAIM: op_reclaim(srv, host, req); break;
    case NFSSIM_OP_HELLO:
    case NFSSIM_OP_CANCEL:
    case NFSSIM_OP_NOTICE_LEASE:
    case NFSSIM_OP_NOTICE_REBOOT:
    case NFSSIM_OP_MAX_:
        reply_status(srv, host, req, EPROTO);
        break;
    }
    if (!kept)
        free(req);
}

/* Execute the host's queued requests that are due, unless its requests are cut off. */
static void host_pump(sim_server *srv, sim_host *host)
{
    int64_t now = nfssim_now_ms();

    while (host->in_head != NULL && !host->cut_to_server && host->in_head->due <= now) {
        sim_request *r = host->in_head;
        nfssim_req *req = r->req;

        host->in_head = r->next;
        if (host->in_head == NULL)
            host->in_tail = &host->in_head;
        r->req = NULL;
        request_free(r);
        dispatch(srv, host, req);
    }
}

/* The host's client interrupted request id (a signal on a blocked F_SETLKW, a killed process). */
static void cancel_request(sim_server *srv, sim_host *host, uint64_t id)
{
    sim_request **link = &host->in_head;
    sim_request **lists[2] = { &srv->waiters, &srv->grace_waiters };

    for (sim_request *prev = NULL; *link != NULL; prev = *link, link = &(*link)->next) {
        sim_request *r = *link;

        if (r->req->id != id)
            continue;
        *link = r->next;
        if (host->in_tail == &r->next)
            host->in_tail = prev != NULL ? &prev->next : &host->in_head;
        sim_log_event(srv, "CANCELLED", host, "queued %s", nfssim_op_name(r->req->op));
        reply_local(srv, host, id, r->req->op, EINTR);
        request_free(r);
        return;
    }
    for (size_t l = 0; l < 2; l++) {
        for (sim_request *w = *lists[l]; w != NULL; w = w->next) {
            nfssim_node *node = w->node;

            if (w->host != host || w->req->id != id)
                continue;
            remove_waiter(lists[l], w);
            sim_log_event(srv, "CANCELLED", host, "%s %s ino=%llu", l == 0 ? "waiting" : "grace-waiting",
                      nfssim_op_name(w->req->op), (unsigned long long)w->req->ino);
            reply_local(srv, host, id, w->req->op, EINTR);
            request_free(w);
            if (node != NULL) {
                grant_waiters(srv, node);
                node_maybe_free(srv, node);
            }
            return;
        }
    }
    /* Already answered: the reply and the interrupt crossed; the reply stands. */
}

void sim_host_receive(sim_server *srv, sim_host *host, nfssim_req *req)
{
    sim_request *r;
    int64_t now = nfssim_now_ms();

    if (req->op == NFSSIM_OP_CANCEL) {
        cancel_request(srv, host, req->id);
        free(req);
        return;
    }
    if (req->op == NFSSIM_OP_RENEW && host->cut_to_server) {
        free(req);  /* lost on the way; a renewal is not retransmitted */
        return;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        reply_local(srv, host, req->id, req->op, ENOMEM);
        free(req);
        return;
    }
    r->host = host;
    r->req = req;
    r->arrival = now;
    r->due = now + host->latency_ms;
    if (r->due < host->last_due)
        r->due = host->last_due;    /* requests of one host stay in order */
    host->last_due = r->due;
    *host->in_tail = r;
    host->in_tail = &r->next;
    if (host->cut_to_server)
        sim_log_event(srv, "HELD", host, "%s id=%llu", nfssim_op_name(req->op), (unsigned long long)req->id);
    host_pump(srv, host);
}

static bool host_has_state(const sim_server *srv, const sim_host *host)
{
    if (host->snap != NULL)
        return true;
    for (size_t i = 0; i < srv->fs->nodes_cap; i++) {
        const nfssim_node *node = srv->fs->nodes[i];

        if (node == NULL)
            continue;
        for (const nfssim_lock *l = node->locks.head; l != NULL; l = l->next) {
            if (l->host == host->id)
                return true;
        }
    }
    return false;
}

int sim_host_hello(sim_server *srv, sim_conn *conn, const nfssim_req *req)
{
    char name[NFSSIM_MAX_HOSTNAME + 1];
    nfssim_reply rep;
    sim_host *host;
    sim_msg *msg;

    memcpy(name, nfssim_req_name(req), req->namelen);
    name[req->namelen] = '\0';
    memset(&rep, 0, sizeof(rep));
    rep.op = NFSSIM_OP_HELLO;
    rep.id = req->id;
    host = sim_host_get(srv, name, true);
    if (req->flags != NFSSIM_PROTO_VERSION) {
        VML_ERROR("host %s speaks protocol %u, this server %u", name, req->flags, NFSSIM_PROTO_VERSION);
        rep.error = EPROTO;
    } else if (host == NULL) {
        rep.error = ENOMEM;
    } else if (host->conn != NULL) {
        VML_ERROR("a second mount for host %s was refused: one is already connected", name);
        rep.error = EEXIST;
    }
    if (rep.error == 0) {
        /* A host that comes back with state from an earlier life has rebooted. */
        if (host_has_state(srv, host))
            sim_host_reboot(srv, host, "new mount of a host that held locks");
        host->conn = conn;
        conn->host = host;
        host->last_renew = nfssim_now_ms();
        host->expired = false;
        rep.value = (uint64_t)srv->lease_ms;
        rep.flags = srv->mode;
        sim_log_event(srv, "CONNECTED", host, "mode=nfs%u lease_ms=%lld", srv->mode, (long long)srv->lease_ms);
    }
    msg = sim_msg_new(&rep, sizeof(rep), NULL, 0);
    if (msg == NULL)
        return -1;
    sim_conn_send(srv, conn, msg);
    if (rep.error != 0) {
        conn->close_after_flush = true;
        return -1;
    }
    return 0;
}

void sim_host_disconnected(sim_server *srv, sim_host *host)
{
    while (host->in_head != NULL) {
        sim_request *r = host->in_head;

        host->in_head = r->next;
        request_free(r);
    }
    host->in_tail = &host->in_head;
    host->last_due = 0;
    sim_msg_queue_clear(&host->held);
    drop_host_waiters(srv, host, 0);
    host->conn = NULL;
    /* Its handles die with the mount; its locks stay until its lease ends or it reboots. */
    for (size_t i = 0; i < srv->fhs_cap; i++) {
        if (srv->fhs[i] != NULL && srv->fhs[i]->host == host)
            fh_close(srv, srv->fhs[i]);
    }
    sim_log_event(srv, "DISCONNECTED", host, "mode=nfs%u", srv->mode);
}

/* ---------------------------------------------------------------- scenario control */

void sim_host_reboot(sim_server *srv, sim_host *host, const char *why)
{
    size_t n = drop_host_locks(srv, host, true, "host reboot");

    drop_host_waiters(srv, host, EIO);
    snap_lose(srv, host, "host reboot");
    sim_log_event(srv, "HOST_REBOOT", host, "locks=%zu %s", n, why);
}

void sim_expire_host(sim_server *srv, sim_host *host, const char *why)
{
    size_t n;

    host->expired = true;
    n = drop_host_locks(srv, host, true, "lease expired");
    /* Blocked requests of an expired client are answered: the client must recover first. */
    drop_host_waiters(srv, host, EIO);
    sim_log_event(srv, "EXPIRED", host, "locks=%zu %s", n, why);
}

void sim_lose_locks(sim_server *srv, sim_host *host, bool eio)
{
    size_t n = drop_host_locks(srv, host, eio, "silent loss");

    sim_log_event(srv, "LOCKS_LOST", host, "locks=%zu eio=%s", n, eio ? "yes" : "no");
}

static void send_notice(sim_server *srv, sim_host *host, uint32_t op, uint64_t value, uint32_t flags)
{
    nfssim_reply rep;

    memset(&rep, 0, sizeof(rep));
    rep.op = op;
    rep.value = value;
    rep.flags = flags;
    reply_full(srv, host, &rep, NULL, 0, false);
}

void sim_server_reboot(sim_server *srv, int64_t grace_ms, bool enolck)
{
    size_t total = 0;
    int64_t now = nfssim_now_ms();

    /* Every lock is lost; what each host held is what its client will try to reclaim. */
    for (size_t i = 0; i < srv->fs->nodes_cap; i++) {
        nfssim_node *node = srv->fs->nodes[i];

        if (node == NULL)
            continue;
        while (node->locks.head != NULL) {
            nfssim_lock *lock = node->locks.head;
            sim_host *host = host_by_id(srv, lock->host);
            sim_snap *snap = NULL;

            node->locks.head = lock->next;
            lock->next = NULL;
            total++;
            if (host != NULL) {
                for (snap = host->snap; snap != NULL && snap->ino != node->ino; snap = snap->next)
                    ;
                if (snap == NULL && (snap = calloc(1, sizeof(*snap))) != NULL) {
                    snap->ino = node->ino;
                    snap->next = host->snap;
                    host->snap = snap;
                }
            }
            if (snap == NULL) {
                free(lock);
                continue;
            }
            lock->next = snap->locks.head;
            snap->locks.head = lock;
            host->snap_pending = true;
        }
    }
    srv->grace_active = grace_ms > 0;
    srv->grace_end = now + grace_ms;
    srv->grace_enolck = enolck;
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        host->last_renew = now;
        host->expired = false;
    }
    sim_log_event(srv, "REBOOT", NULL, "locks=%zu grace_ms=%lld in_grace=%s", total, (long long)grace_ms,
              enolck ? "enolck" : "wait");
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        if (host->conn != NULL)
            send_notice(srv, host, NFSSIM_OP_NOTICE_REBOOT, (uint64_t)grace_ms,
                        host->reclaim_enabled ? NFSSIM_REBOOT_RECLAIM : 0);
    }
    if (!srv->grace_active)
        sim_end_grace(srv);
}

void sim_end_grace(sim_server *srv)
{
    sim_request *pending;

    srv->grace_active = false;
    sim_log_event(srv, "GRACE_END", NULL, "grace_waiters=%s", srv->grace_waiters != NULL ? "yes" : "no");
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        if (host->snap_pending) {
            sim_log_event(srv, "RECLAIM_FAILED", host, "did not reclaim during grace");
            snap_lose(srv, host, "not reclaimed");
        }
    }
    /* Requests held by the grace period run now, in arrival order. */
    pending = srv->grace_waiters;
    srv->grace_waiters = NULL;
    while (pending != NULL) {
        sim_request *w = pending;
        nfssim_req *req = w->req;

        pending = w->next;
        w->req = NULL;
        dispatch(srv, w->host, req);
        request_free(w);
    }
    grant_all_nodes(srv);
}

void sim_partition(sim_server *srv, sim_host *host, bool to_server, bool to_host)
{
    host->cut_to_server = to_server;
    host->cut_to_host = to_host;
    host->cut_since = nfssim_now_ms();
    sim_log_event(srv, "PARTITION", host, "requests=%s replies=%s timeo_ms=%u", to_server ? "cut" : "ok",
              to_host ? "cut" : "ok", host->timeo_ms);
}

void sim_heal(sim_server *srv, sim_host *host)
{
    sim_msg *msg;

    host->cut_to_server = false;
    host->cut_to_host = false;
    sim_log_event(srv, "HEAL", host, "held_requests=%s", host->in_head != NULL ? "yes" : "no");
    while ((msg = sim_msg_queue_pop(&host->held)) != NULL)
        host_deliver(srv, host, msg, true);
    host_pump(srv, host);
    grant_all_nodes(srv);
}

void sim_set_latency(sim_server *srv, sim_host *host, uint32_t ms)
{
    int64_t last = 0;

    host->latency_ms = ms;
    for (sim_request *r = host->in_head; r != NULL; r = r->next) {
        r->due = r->arrival + ms;
        if (r->due < last)
            r->due = last;      /* still in order */
        last = r->due;
    }
    host->last_due = last;
    sim_log_event(srv, "LATENCY", host, "ms=%u", ms);
    host_pump(srv, host);
}

void sim_set_mode(sim_server *srv, uint32_t mode, int64_t lease_ms)
{
    int64_t now = nfssim_now_ms();

    srv->mode = mode;
    srv->lease_ms = lease_ms;
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        host->last_renew = now;
        host->expired = false;
        if (host->conn != NULL)
            send_notice(srv, host, NFSSIM_OP_NOTICE_LEASE, (uint64_t)lease_ms, mode);
    }
    sim_log_event(srv, "MODE", NULL, "nfs%u lease_ms=%lld", mode, (long long)lease_ms);
}

/* ---------------------------------------------------------------- timers */

static int64_t request_timeout(const sim_host *host, const sim_request *r)
{
    int64_t start = r->arrival > host->cut_since ? r->arrival : host->cut_since;

    return start + host->timeo_ms;
}

/* Soft mount: held traffic older than timeo fails with EIO at the host's own client. */
static void expire_held(sim_server *srv, sim_host *host, int64_t now)
{
    if (host->timeo_ms == 0)
        return;
    if (host->cut_to_server) {
        sim_request **link = &host->in_head;
        sim_request *prev = NULL;

        while (*link != NULL) {
            sim_request *r = *link;

            if (request_timeout(host, r) > now) {
                prev = r;
                link = &r->next;
                continue;
            }
            *link = r->next;
            if (host->in_tail == &r->next)
                host->in_tail = prev != NULL ? &prev->next : &host->in_head;
            sim_log_event(srv, "TIMEDOUT", host, "request %s id=%llu", nfssim_op_name(r->req->op),
                      (unsigned long long)r->req->id);
            reply_local(srv, host, r->req->id, r->req->op, EIO);
            request_free(r);
        }
    }
    if (host->cut_to_host) {
        sim_msg **link = &host->held.head;

        while (*link != NULL) {
            sim_msg *msg = *link;
            nfssim_reply rep;

            if (msg->deadline == 0 || msg->deadline > now) {
                link = &msg->next;
                continue;
            }
            *link = msg->next;
            if (host->held.tail == &msg->next)
                host->held.tail = link;
            memcpy(&rep, msg->data, sizeof(rep));
            sim_log_event(srv, "TIMEDOUT", host, "reply %s id=%llu (the server did execute it)",
                      nfssim_op_name(rep.op), (unsigned long long)rep.id);
            reply_local(srv, host, rep.id, rep.op, EIO);
            free(msg);
        }
    }
}

void sim_run_timers(sim_server *srv)
{
    int64_t now = nfssim_now_ms();

    if (srv->grace_active && now >= srv->grace_end)
        sim_end_grace(srv);
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        host_pump(srv, host);
        expire_held(srv, host, now);
        if (srv->mode == NFSSIM_MODE_NFS4 && !host->expired && now - host->last_renew >= srv->lease_ms)
            sim_expire_host(srv, host, "no renewal within the lease");
    }
}

static void earliest(int64_t *best, int64_t when)
{
    if (*best < 0 || when < *best)
        *best = when;
}

int sim_next_timeout(const sim_server *srv)
{
    int64_t best = -1;
    int64_t now = nfssim_now_ms();

    if (srv->grace_active)
        earliest(&best, srv->grace_end);
    for (const sim_host *host = srv->hosts; host != NULL; host = host->next) {
        if (srv->mode == NFSSIM_MODE_NFS4 && !host->expired)
            earliest(&best, host->last_renew + srv->lease_ms);
        if (host->in_head != NULL && !host->cut_to_server)
            earliest(&best, host->in_head->due);
        if (host->timeo_ms > 0 && host->cut_to_server) {
            for (const sim_request *r = host->in_head; r != NULL; r = r->next)
                earliest(&best, request_timeout(host, r));
        }
        if (host->timeo_ms > 0 && host->cut_to_host) {
            for (const sim_msg *m = host->held.head; m != NULL; m = m->next) {
                if (m->deadline != 0)
                    earliest(&best, m->deadline);
            }
        }
    }
    if (best < 0)
        return -1;
    if (best <= now)
        return 0;
    return best - now > 60000 ? 60000 : (int)(best - now);
}

/* ---------------------------------------------------------------- dump */

static const char *type_name(int type)
{
    return type == F_WRLCK ? "W" : type == F_RDLCK ? "R" : "U";
}

static const char *host_name_of(sim_server *srv, uint32_t id)
{
    sim_host *host = host_by_id(srv, id);

    return host != NULL ? host->name : "?";
}

void sim_dump(sim_server *srv, void (*out)(void *ctx, const char *fmt, ...), void *ctx)
{
    int64_t now = nfssim_now_ms();
    char path[512];

    out(ctx, "server mode=nfs%u lease_ms=%lld grace=%s remaining_ms=%lld in_grace=%s enolck_pending=%llu\n",
        srv->mode, (long long)srv->lease_ms, srv->grace_active ? "active" : "none",
        (long long)(srv->grace_active ? srv->grace_end - now : 0), srv->grace_enolck ? "enolck" : "wait",
        (unsigned long long)srv->enolck_pending);
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        unsigned int queued = 0;
        unsigned int held = 0;

        for (sim_request *r = host->in_head; r != NULL; r = r->next)
            queued++;
        for (sim_msg *m = host->held.head; m != NULL; m = m->next)
            held++;
        out(ctx, "host %s connected=%s partition=%s timeo_ms=%u latency_ms=%u reclaim=%s expired=%s "
            "lease_age_ms=%lld queued=%u held_replies=%u reclaim_pending=%s\n",
            host->name, host->conn != NULL ? "yes" : "no",
            host->cut_to_server && host->cut_to_host ? "both" :
            host->cut_to_server ? "oneway" : host->cut_to_host ? "replies" : "none",
            host->timeo_ms, host->latency_ms, host->reclaim_enabled ? "on" : "off",
            host->expired ? "yes" : "no", (long long)(now - host->last_renew), queued, held,
            host->snap_pending ? "yes" : "no");
    }
    for (size_t i = 0; i < srv->fs->nodes_cap; i++) {
        nfssim_node *node = srv->fs->nodes[i];

        if (node == NULL || node->locks.head == NULL)
            continue;
        nfssim_fs_path(node, path, sizeof(path));
        for (nfssim_lock *l = node->locks.head; l != NULL; l = l->next) {
            out(ctx, "lock host=%s owner=%#llx pid=%u ino=%llu path=%s range=%lld-%lld type=%s fh=%llu\n",
                host_name_of(srv, l->host), (unsigned long long)l->owner, l->pid,
                (unsigned long long)node->ino, path, (long long)l->start, (long long)l->end,
                type_name(l->type), (unsigned long long)l->fh);
        }
    }
    for (sim_request *w = srv->waiters; w != NULL; w = w->next) {
        nfssim_fs_path(w->node, path, sizeof(path));
        out(ctx, "wait host=%s owner=%#llx pid=%u ino=%llu path=%s range=%lld-%lld type=%s waited_ms=%lld\n",
            w->host->name, (unsigned long long)w->req->owner, w->req->lk_pid,
            (unsigned long long)w->node->ino, path, (long long)w->req->lk_start,
            (long long)w->req->lk_end, type_name((int)w->req->lk_type), (long long)(now - w->arrival));
    }
    for (sim_request *w = srv->grace_waiters; w != NULL; w = w->next) {
        out(ctx, "gracewait host=%s op=%s owner=%#llx ino=%llu range=%lld-%lld type=%s\n",
            w->host->name, nfssim_op_name(w->req->op), (unsigned long long)w->req->owner,
            (unsigned long long)w->req->ino, (long long)w->req->lk_start, (long long)w->req->lk_end,
            type_name((int)w->req->lk_type));
    }
    for (sim_host *host = srv->hosts; host != NULL; host = host->next) {
        for (sim_snap *s = host->snap; s != NULL; s = s->next) {
            for (nfssim_lock *l = s->locks.head; l != NULL; l = l->next) {
                out(ctx, "reclaimable host=%s owner=%#llx ino=%llu range=%lld-%lld type=%s\n", host->name,
                    (unsigned long long)l->owner, (unsigned long long)s->ino, (long long)l->start,
                    (long long)l->end, type_name(l->type));
            }
        }
    }
}
