/* dmn_lockspace.c: lockspaces, leases and holdings; lease_lock() takes every lock and lease_unlock() drops it. */
#include "dmn_lockspace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vml_log.h"

#define FLAG_SHARED VML_LS_ACQUIRE_SHARED
#define FLAG_AUTOCREATE VML_LS_ACQUIRE_AUTOCREATE

static bool is_default(const dmn_lockspace *ls)
{
    return ls->path[0] == '\0';
}

static int64_t realtime_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the lock itself ---- */

typedef enum {
    LOCK_OK,
    LOCK_BUSY,      /* someone holds a conflicting lock; *st names the inode */
    LOCK_ERROR,     /* err is set */
} lock_result;

/*
 * Open path and take a non-blocking OFD lock on byte 0 (F_RDLCK shared, F_WRLCK exclusive):
 * THE place where vmlockd takes a lock.  An OFD lock belongs to this open file description,
 * so two leases on one inode conflict inside the daemon and closing one descriptor never
 * drops another lease's lock (ARCHITECTURE invariant 5).
 * After locking, the path is stat'ed again: if it vanished or now names another inode (a
 * releaser unlinked it, maybe recreated it), the lock we hold protects nothing, so drop it
 * and start over (invariant 10).
 * direct: default lockspace (follow symlinks; regular files or block devices; never
 * create).  Otherwise a lease file in a named lockspace (O_NOFOLLOW; regular files only;
 * created 0600 with autocreate).  On LOCK_OK *fd_out is owned by the caller and *st is its
 * inode; on LOCK_BUSY *st is the inode that is locked.
 */
static lock_result lease_lock(dmn_lockspaces *reg, const char *path, bool direct,
                              bool autocreate, bool shared, int *fd_out, struct stat *st,
                              vml_error *err)
{
    int oflags = O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

    if (!direct)
        oflags |= O_NOFOLLOW;
    if (autocreate)
        oflags |= O_CREAT;
    for (int attempt = 0; attempt < DMN_LEASE_LOCK_ATTEMPTS; attempt++) {
        struct flock fl = {
            .l_type = shared ? F_RDLCK : F_WRLCK,
            .l_whence = SEEK_SET,
            .l_start = 0,
            .l_len = 1,
        };
        struct stat now;
        int fd = open(path, oflags, 0600);

        if (fd < 0) {
            if (errno == ELOOP && !direct)
                vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                              "lease file %s is a symbolic link", path);
            else
                vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to %s resource %s",
                                    autocreate ? "open/create" : "open", path);
            return LOCK_ERROR;
        }
        if (fstat(fd, st) < 0) {
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to stat resource %s",
                                path);
            close(fd);
            return LOCK_ERROR;
        }
        if (!S_ISREG(st->st_mode) && !(direct && S_ISBLK(st->st_mode))) {
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                          direct ? "resource %s is not a regular file or a block device"
                                 : "lease file %s is not a regular file", path);
            close(fd);
            return LOCK_ERROR;
        }
        if (reg->after_open != NULL)
            reg->after_open(path, reg->after_open_opaque);
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            int saved = errno;
            close(fd);
            if (saved == EAGAIN || saved == EACCES)
                return LOCK_BUSY;
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, saved,
                                "Unable to acquire lock on '%s'", path);
            return LOCK_ERROR;
        }
        if ((direct ? stat(path, &now) : lstat(path, &now)) < 0) {
            int saved = errno;
            close(fd);
            if (saved == ENOENT) {
                VML_DEBUG("lease file %s vanished while being locked; retrying", path);
                continue;
            }
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, saved, "Unable to stat resource %s",
                                path);
            return LOCK_ERROR;
        }
        if (now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
            VML_DEBUG("lease file %s was replaced while being locked; retrying", path);
            close(fd);
            continue;
        }
        *fd_out = fd;
        return LOCK_OK;
    }
    vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_FAILED,
                  "lease file %s was replaced %d times while being locked; giving up",
                  path, DMN_LEASE_LOCK_ATTEMPTS);
    return LOCK_ERROR;
}

/*
 * Drop the lease's lock: THE place where vmlockd releases one.  An autocreated lease file
 * is removed first, while still locked, so a racing locker that opened it re-stats, sees it
 * gone and retries (lease_lock()); a shared one only when a non-blocking upgrade to a write
 * lock proves nobody else (another host over NFS, or an alias lease here) holds it.  Files
 * in the default lockspace and files not autocreated are never removed.
 */
static void lease_unlock(dmn_lease *lease)
{
    if ((lease->flags & FLAG_AUTOCREATE) && !is_default(lease->lockspace)) {
        bool may_unlink = true;
        struct stat st;

        if (lease->flags & FLAG_SHARED) {
            struct flock fl = {
                .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1,
            };
            may_unlink = fcntl(lease->fd, F_OFD_SETLK, &fl) == 0;
        }
        /* Only remove the inode we hold: someone may have replaced the file meanwhile. */
        if (may_unlink && lstat(lease->path, &st) == 0 &&
            (uint64_t)st.st_dev == lease->inode.dev && (uint64_t)st.st_ino == lease->inode.ino &&
            unlink(lease->path) < 0 && errno != ENOENT)
            VML_WARN("cannot remove lease file %s: %s", lease->path, strerror(errno));
    }
    close(lease->fd);
    lease->fd = -1;
}

/* ---- messages ---- */

/*
 * The busy error for name (disk shown when it differs from name).  holder_lease is the
 * lease in this daemon that holds the lock (NULL: another process or host); through is the
 * other path of the same inode when the lock was met through an alias.
 */
static void set_busy(vml_error *err, const char *name, const char *disk,
                     const dmn_lease *holder_lease, const char *through)
{
    char disk_part[VML_ERROR_MESSAGE_MAX] = "";
    char others[64] = "";
    char through_part[VML_ERROR_MESSAGE_MAX] = "";
    char uuid[37];
    const dmn_owner *first;

    if (disk != NULL && disk[0] != '\0' && strcmp(disk, name) != 0)
        snprintf(disk_part, sizeof(disk_part), " (disk '%s')", disk);
    if (holder_lease == NULL) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                      "Lockspace resource '%s'%s is locked by another process or host",
                      name, disk_part);
        return;
    }
    first = holder_lease->holders[0]->owner;
    dmn_owner_format_uuid(first->identity.uuid, uuid);
    if (holder_lease->nholders > 1)
        snprintf(others, sizeof(others), " and %zu other(s)", holder_lease->nholders - 1);
    if (through != NULL)
        snprintf(through_part, sizeof(through_part), " through '%s'", through);
    vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                  "Lockspace resource '%s'%s is locked by domain '%s' (uuid %s, pid %u)%s%s",
                  name, disk_part, first->identity.name, uuid, first->pid, others,
                  through_part);
}

/* ---- registry ---- */

static void lockspace_free(dmn_lockspace *ls)
{
    if (ls == NULL)
        return;
    dmn_hash_free(ls->leases);
    free(ls->path);
    free(ls);
}

/* Create and register the lockspace record (no filesystem work). */
static int lockspace_register(dmn_lockspaces *reg, const char *path, dmn_lockspace **out,
                              vml_error *err)
{
    dmn_lockspace *ls = calloc(1, sizeof(*ls));
    int ret = -1;

    if (ls == NULL || (ls->path = strdup(path)) == NULL ||
        (ls->leases = dmn_hash_new()) == NULL ||
        dmn_hash_put(reg->by_path, ls->path, strlen(ls->path), ls) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot register lockspace %s",
                            path);
        goto out;
    }
    ls->next = reg->lockspaces;
    reg->lockspaces = ls;
    reg->nlockspaces++;
    if (out != NULL)
        *out = ls;
    ls = NULL;
    ret = 0;
 out:
    lockspace_free(ls);
    return ret;
}

int dmn_lockspaces_new(dmn_lockspaces **out, vml_error *err)
{
    dmn_lockspaces *reg = calloc(1, sizeof(*reg));
    int ret = -1;

    if (reg == NULL || (reg->by_path = dmn_hash_new()) == NULL ||
        (reg->by_inode = dmn_hash_new()) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot create the lockspace table");
        goto out;
    }
    reg->next_seq = 1;
    reg->next_batch = 1;
    if (lockspace_register(reg, "", NULL, err) < 0)
        goto out;
    *out = reg;
    reg = NULL;
    ret = 0;
 out:
    dmn_lockspaces_free(reg);
    return ret;
}

void dmn_lockspaces_free(dmn_lockspaces *reg)
{
    if (reg == NULL)
        return;
    /* Releasing the last holder of a lease removes it from the list. */
    while (reg->head != NULL)
        dmn_holding_release(reg, reg->head->holders[reg->head->nholders - 1]);
    while (reg->lockspaces != NULL) {
        dmn_lockspace *ls = reg->lockspaces;
        reg->lockspaces = ls->next;
        lockspace_free(ls);
    }
    dmn_hash_free(reg->by_inode);
    dmn_hash_free(reg->by_path);
    free(reg);
}

dmn_lockspace *dmn_lockspaces_find(const dmn_lockspaces *reg, const char *path)
{
    return dmn_hash_get(reg->by_path, path, strlen(path));
}

void dmn_lockspaces_set_open_hook(dmn_lockspaces *reg, dmn_open_hook hook, void *opaque)
{
    reg->after_open = hook;
    reg->after_open_opaque = opaque;
}

int dmn_lockspace_check_path(const char *path, vml_error *err)
{
    size_t len = strlen(path);

    if (path[0] != '/') {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "lockspace path '%s' is not an absolute path", path);
        return -1;
    }
    if (len >= PATH_MAX) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "lockspace path '%.64s...' is longer than %d bytes", path, PATH_MAX - 1);
        return -1;
    }
    for (const char *p = path; *p != '\0';) {
        const char *end;
        size_t n;

        while (*p == '/')
            p++;
        end = strchrnul(p, '/');
        n = (size_t)(end - p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                          "lockspace path '%s' has a '%.*s' component", path, (int)n, p);
            return -1;
        }
        p = end;
    }
    return 0;
}

int dmn_lockspace_check_name(const dmn_lockspace *ls, const char *name, vml_error *err)
{
    size_t len = strlen(name);

    if (is_default(ls)) {
        if (name[0] != '/') {
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                          "resource '%s' in the default lockspace is not an absolute path",
                          name);
            return -1;
        }
        if (len >= PATH_MAX) {
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                          "resource '%.64s...' is longer than %d bytes", name, PATH_MAX - 1);
            return -1;
        }
        return 0;
    }
    if (len == 0) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "empty resource name in lockspace %s", ls->path);
        return -1;
    }
    if (len > NAME_MAX) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "resource name '%.64s...' is longer than %d bytes", name, NAME_MAX);
        return -1;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/') != NULL) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "resource name '%s' is not a single file name (no '/', not '.' or '..')",
                      name);
        return -1;
    }
    return 0;
}

/* mkdir -p with mode 0700 for every directory created; path has been checked. */
static int make_directories(const char *path, vml_error *err)
{
    char *copy = strdup(path);
    struct stat st;
    int ret = -1;

    if (copy == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot create lockspace %s", path);
        goto out;
    }
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno,
                                "Unable to create lockspace %s: cannot create %s", path, copy);
            goto out;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (stat(path, &st) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to create lockspace %s",
                            path);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INTERNAL_ERROR,
                      "Lockspace location %s exists, but is not a directory", path);
        goto out;
    }
    ret = 0;
 out:
    free(copy);
    return ret;
}

int dmn_lockspaces_add(dmn_lockspaces *reg, const char *path, dmn_lockspace **out,
                       vml_error *err)
{
    if (dmn_lockspace_check_path(path, err) < 0 || make_directories(path, err) < 0)
        return -1;
    if (lockspace_register(reg, path, out, err) < 0)
        return -1;
    VML_INFO("registered lockspace %s", path);
    return 0;
}

/* ---- leases ---- */

/* "<dir>/<name>" for a named lockspace, the name itself for the default one; caller frees. */
static char *lease_path(const dmn_lockspace *ls, const char *name)
{
    char *path = NULL;

    if (is_default(ls))
        return strdup(name);
    if (asprintf(&path, "%s/%s", ls->path, name) < 0)
        return NULL;
    return path;
}

static dmn_lease *inode_lookup(const dmn_lockspaces *reg, const struct stat *st)
{
    dmn_inode_key key = { .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino };

    return dmn_hash_get(reg->by_inode, &key, sizeof(key));
}

static int inode_index_add(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_lease *first = dmn_hash_get(reg->by_inode, &lease->inode, sizeof(lease->inode));

    if (first != NULL) {
        lease->alias_next = first->alias_next;
        first->alias_next = lease;
        return 0;
    }
    return dmn_hash_put(reg->by_inode, &lease->inode, sizeof(lease->inode), lease);
}

static void inode_index_remove(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_lease *first = dmn_hash_get(reg->by_inode, &lease->inode, sizeof(lease->inode));

    if (first == lease) {
        if (lease->alias_next != NULL)
            dmn_hash_replace(reg->by_inode, &lease->alias_next->inode,
                             sizeof(lease->inode), lease->alias_next);
        else
            dmn_hash_remove(reg->by_inode, &lease->inode, sizeof(lease->inode));
        return;
    }
    for (dmn_lease *p = first; p != NULL; p = p->alias_next) {
        if (p->alias_next == lease) {
            p->alias_next = lease->alias_next;
            return;
        }
    }
}

static void lease_free(dmn_lease *lease)
{
    if (lease == NULL)
        return;
    if (lease->fd >= 0)
        close(lease->fd);
    free(lease->holders);
    free(lease->disk);
    free(lease->path);
    free(lease->name);
    free(lease);
}

/* Unlock the lease and remove it from every index; the lease is freed. */
static void lease_remove(dmn_lockspaces *reg, dmn_lease *lease)
{
    VML_DEBUG("releasing lease %s", lease->path);
    lease_unlock(lease);
    dmn_hash_remove(lease->lockspace->leases, lease->name, strlen(lease->name));
    inode_index_remove(reg, lease);
    if (lease->prev != NULL)
        lease->prev->next = lease->next;
    else
        reg->head = lease->next;
    if (lease->next != NULL)
        lease->next->prev = lease->prev;
    else
        reg->tail = lease->prev;
    reg->nleases--;
    lease_free(lease);
}

static dmn_holding *lease_find_holding(const dmn_lease *lease, unsigned int pid)
{
    for (size_t i = 0; i < lease->nholders; i++) {
        if (lease->holders[i]->owner->pid == pid)
            return lease->holders[i];
    }
    return NULL;
}

static int lease_add_holder(dmn_lease *lease, dmn_owner *owner, uint64_t batch,
                            dmn_holding **out, vml_error *err)
{
    dmn_holding *h;
    int ret = -1;

    if (lease->nholders == lease->aholders) {
        size_t n = lease->aholders == 0 ? 2 : lease->aholders * 2;
        dmn_holding **grown = realloc(lease->holders, n * sizeof(grown[0]));
        if (grown == NULL)
            goto out;
        lease->holders = grown;
        lease->aholders = n;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto out;
    h->lease = lease;
    h->owner = owner;
    h->since_usec = realtime_usec();
    h->batch = batch;
    h->owner_next = owner->holdings;
    if (owner->holdings != NULL)
        owner->holdings->owner_prev = h;
    owner->holdings = h;
    owner->nholdings++;
    lease->holders[lease->nholders++] = h;
    *out = h;
    ret = 0;
 out:
    if (ret < 0)
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record a holder of %s",
                            lease->path);
    return ret;
}

void dmn_holding_release(dmn_lockspaces *reg, dmn_holding *h)
{
    dmn_lease *lease = h->lease;
    dmn_owner *owner = h->owner;

    for (size_t i = 0; i < lease->nholders; i++) {
        if (lease->holders[i] == h) {
            memmove(&lease->holders[i], &lease->holders[i + 1],
                    (lease->nholders - i - 1) * sizeof(lease->holders[0]));
            lease->nholders--;
            break;
        }
    }
    if (h->owner_prev != NULL)
        h->owner_prev->owner_next = h->owner_next;
    else
        owner->holdings = h->owner_next;
    if (h->owner_next != NULL)
        h->owner_next->owner_prev = h->owner_prev;
    owner->nholdings--;
    free(h);
    if (lease->nholders == 0)
        lease_remove(reg, lease);
}

size_t dmn_lockspaces_release_owner(dmn_lockspaces *reg, dmn_owner *owner)
{
    size_t n = 0;

    while (owner->holdings != NULL) {
        dmn_holding_release(reg, owner->holdings);
        n++;
    }
    return n;
}

/* Lock a resource nobody in this daemon holds and record it with owner as its holder. */
static int lease_create(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                        const char *disk, unsigned int flags, dmn_owner *owner,
                        uint64_t batch, dmn_holding **taken, vml_error *err)
{
    dmn_lease *lease = calloc(1, sizeof(*lease));
    struct stat st;
    bool indexed_name = false;
    int ret = -1;

    if (lease == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    lease->fd = -1;
    lease->lockspace = ls;
    /* The default lockspace never creates (or deletes) files: AUTOCREATE means nothing there. */
    lease->flags = is_default(ls) ? (flags & FLAG_SHARED) : flags;
    lease->name = strdup(name);
    lease->path = lease_path(ls, name);
    lease->disk = strdup(disk != NULL ? disk : "");
    if (lease->name == NULL || lease->path == NULL || lease->disk == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    switch (lease_lock(reg, lease->path, is_default(ls), (lease->flags & FLAG_AUTOCREATE) != 0,
                       (lease->flags & FLAG_SHARED) != 0, &lease->fd, &st, err)) {
    case LOCK_OK:
        break;
    case LOCK_BUSY: {
        const dmn_lease *alias = inode_lookup(reg, &st);
        reg->conflicts++;
        set_busy(err, name, disk, alias, alias != NULL ? alias->path : NULL);
        goto out;
    }
    case LOCK_ERROR:
        goto out;
    }
    lease->inode.dev = (uint64_t)st.st_dev;
    lease->inode.ino = (uint64_t)st.st_ino;
    if (dmn_hash_put(ls->leases, lease->name, strlen(lease->name), lease) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    indexed_name = true;
    if (inode_index_add(reg, lease) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    lease->seq = reg->next_seq++;
    if (reg->next_seq == 0)
        reg->next_seq = 1;      /* 0 is the "first page" cursor */
    lease->prev = reg->tail;
    if (reg->tail != NULL)
        reg->tail->next = lease;
    else
        reg->head = lease;
    reg->tail = lease;
    reg->nleases++;
    if (lease_add_holder(lease, owner, batch, taken, err) < 0) {
        /* Fully indexed: back out through the normal path (the file is treated exactly as
         * on release), which also frees the lease. */
        lease_remove(reg, lease);
        lease = NULL;
        goto out;
    }
    VML_DEBUG("locked %s (%s) for owner pid %u", lease->path,
              (lease->flags & FLAG_SHARED) ? "shared" : "exclusive", owner->pid);
    lease = NULL;
    ret = 0;
 out:
    if (lease != NULL) {
        /* Failed before the lease was fully indexed: undo by hand. */
        if (indexed_name)
            dmn_hash_remove(ls->leases, lease->name, strlen(lease->name));
        if (lease->fd >= 0)
            lease_unlock(lease);
        lease_free(lease);
    }
    return ret;
}

int dmn_lease_acquire(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      const char *disk, unsigned int flags, dmn_owner *owner, uint64_t batch,
                      dmn_holding **taken, vml_error *err)
{
    dmn_lease *lease;
    dmn_holding *mine;

    *taken = NULL;
    if (dmn_lockspace_check_name(ls, name, err) < 0)
        return -1;
    lease = dmn_hash_get(ls->leases, name, strlen(name));
    if (lease == NULL) {
        if (lease_create(reg, ls, name, disk, flags, owner, batch, taken, err) < 0)
            return -1;
        reg->acquires++;
        return 0;
    }
    mine = lease_find_holding(lease, owner->pid);
    if (mine != NULL && batch != 0 && mine->batch == batch &&
        (lease->flags & FLAG_SHARED) && (flags & FLAG_SHARED))
        return 0;       /* the same shared resource twice in one batch: taken once */
    if (mine != NULL || !(lease->flags & FLAG_SHARED) || !(flags & FLAG_SHARED)) {
        reg->conflicts++;
        set_busy(err, name, disk, lease, NULL);
        return -1;
    }
    if (lease_add_holder(lease, owner, batch, taken, err) < 0)
        return -1;
    reg->acquires++;
    return 0;
}

/* The flags BATCH_ACQUIRE accepts per resource. */
#define BATCH_RESOURCE_FLAGS (FLAG_SHARED | FLAG_AUTOCREATE)

int dmn_lease_acquire_batch(dmn_lockspaces *reg, const vml_ext_resource *resources, size_t n,
                            dmn_owner *owner, vml_error *err)
{
    dmn_holding **taken = NULL;
    size_t ntaken = 0;
    uint64_t batch = reg->next_batch++;
    int ret = -1;

    /* Refuse malformed requests before taking anything. */
    for (size_t i = 0; i < n; i++) {
        if (resources[i].flags & ~BATCH_RESOURCE_FLAGS) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                          "unsupported flags (0x%x) in function %s",
                          resources[i].flags & ~BATCH_RESOURCE_FLAGS, "BATCH_ACQUIRE");
            goto out;
        }
        if (dmn_lockspaces_find(reg, resources[i].lockspace) == NULL) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "Lockspace for path %s does not exist", resources[i].lockspace);
            goto out;
        }
    }
    if (n > 0 && (taken = calloc(n, sizeof(taken[0]))) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot run the batch");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const vml_ext_resource *res = &resources[i];
        dmn_lockspace *ls = dmn_lockspaces_find(reg, res->lockspace);
        dmn_holding *h;

        if (dmn_lease_acquire(reg, ls, res->name, res->disk, res->flags, owner, batch,
                              &h, err) < 0)
            goto out;
        if (h != NULL)
            taken[ntaken++] = h;
    }
    ret = 0;
 out:
    if (ret < 0 && ntaken > 0) {
        /* All or nothing (ARCHITECTURE invariant 8): undo in reverse order; what was
         * undone does not count as acquired. */
        VML_INFO("batch for owner pid %u failed: releasing the %zu resource(s) it took",
                 owner->pid, ntaken);
        reg->acquires -= ntaken;
        while (ntaken > 0)
            dmn_holding_release(reg, taken[--ntaken]);
    }
    free(taken);
    return ret;
}

int dmn_lease_release(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      unsigned int owner_pid, vml_error *err)
{
    dmn_lease *lease = dmn_hash_get(ls->leases, name, strlen(name));
    dmn_holding *h;

    if (lease == NULL) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                      "Lockspace resource '%s' is not locked", name);
        return -1;
    }
    h = lease_find_holding(lease, owner_pid);
    if (h == NULL) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INTERNAL_ERROR,
                      "owner %u does not hold the resource lock", owner_pid);
        return -1;
    }
    dmn_holding_release(reg, h);
    return 0;
}

int dmn_lease_release_batch(dmn_lockspaces *reg, const vml_ext_resource *resources, size_t n,
                            unsigned int owner_pid, vml_error *err)
{
    vml_error first = { 0 };

    for (size_t i = 0; i < n; i++) {
        dmn_lockspace *ls = dmn_lockspaces_find(reg, resources[i].lockspace);
        vml_error one = { 0 };

        if (ls == NULL)
            vml_error_set(&one, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "Lockspace for path %s does not exist", resources[i].lockspace);
        else
            dmn_lease_release(reg, ls, resources[i].name, owner_pid, &one);
        if (one.code != 0 && first.code == 0)
            first = one;
    }
    if (first.code != 0) {
        if (err != NULL)
            *err = first;
        return -1;
    }
    return 0;
}

/* ---- CREATE_RESOURCE / DELETE_RESOURCE ---- */

static int check_not_held(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                          vml_error *err)
{
    const dmn_lease *lease;
    char *path = NULL;
    struct stat st;
    int ret = -1;

    if (is_default(ls)) {
        /* The default lockspace's resources are disk images: never created or deleted. */
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                      "resources of the default lockspace are disk paths and are never "
                      "created or deleted ('%s')", name);
        goto out;
    }
    if (dmn_lockspace_check_name(ls, name, err) < 0)
        goto out;
    lease = dmn_hash_get(ls->leases, name, strlen(name));
    if (lease != NULL) {
        set_busy(err, name, NULL, lease, NULL);
        goto out;
    }
    if ((path = lease_path(ls, name)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot handle resource %s", name);
        goto out;
    }
    if (lstat(path, &st) == 0 && (lease = inode_lookup(reg, &st)) != NULL) {
        set_busy(err, name, NULL, lease, lease->path);
        goto out;
    }
    ret = 0;
 out:
    free(path);
    return ret;
}

int dmn_resource_create(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                        vml_error *err)
{
    char *path = NULL;
    struct stat st;
    int fd = -1;
    int ret = -1;

    if (check_not_held(reg, ls, name, err) < 0)
        goto out;
    if ((path = lease_path(ls, name)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot handle resource %s", name);
        goto out;
    }
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to create resource %s", path);
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                      "lease file %s is not a regular file", path);
        goto out;
    }
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    free(path);
    return ret;
}

int dmn_resource_delete(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                        vml_error *err)
{
    char *path = NULL;
    int ret = -1;

    if (check_not_held(reg, ls, name, err) < 0)
        goto out;
    if ((path = lease_path(ls, name)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot handle resource %s", name);
        goto out;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to delete resource %s", path);
        goto out;
    }
    ret = 0;
 out:
    free(path);
    return ret;
}
