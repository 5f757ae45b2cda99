/* dmn_lockspace.c: lockspaces, leases and holdings; lease_lock() takes every lock and lease_unlock() drops it. */
#include "dmn_lockspace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "vml_log.h"

#define FLAG_SHARED VML_LS_ACQUIRE_SHARED
#define FLAG_AUTOCREATE VML_LS_ACQUIRE_AUTOCREATE
#define FLAG_EXPECT VML_EXT_RESOURCE_EXPECT_GENERATION

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

static bool same_uuid(const unsigned char a[16], const char b[16])
{
    return memcmp(a, b, 16) == 0;
}

static dmn_lease *holding_unlink(dmn_holding *h);
static void lease_abandon_one(dmn_lockspaces *reg, dmn_lease *lease);

/* ---- the lock itself ---- */

typedef enum {
    LOCK_OK,
    LOCK_BUSY,      /* someone holds a conflicting lock; *st names the inode */
    LOCK_ERROR,     /* err is set */
} lock_result;

/* What is known about the holder of a lock we could not take (another process or host). */
typedef struct busy_info {
    bool exclusive;                 /* the conflicting lock is a write lock */
    dmn_record_kind kind;
    dmn_record rec;                 /* the owner record of the file, when kind is VALID */
} busy_info;

/* Learn who blocks us on fd: the conflicting lock's type, and the file's owner record. */
static int lease_fstat(dmn_lockspaces *reg, int fd, struct stat *st, unsigned char *locality);

static void read_busy_info(int fd, const char *path, bool direct, busy_info *busy)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

    busy->exclusive = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_WRLCK;
    busy->kind = DMN_RECORD_FOREIGN;
    /* Disk images (direct mode) carry no record: their first bytes are guest data. */
    if (!direct && dmn_record_read(fd, path, false, &busy->kind, &busy->rec, NULL) < 0)
        busy->kind = DMN_RECORD_FOREIGN;
}

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
 * created 0600 with autocreate, *created telling whether this call created it).  On
 * LOCK_OK *fd_out is owned by the caller and *st is its inode; on LOCK_BUSY *st is the
 * inode that is locked and *busy says what is known of its holder.
 */
static lock_result lease_lock(dmn_lockspaces *reg, const char *path, bool direct,
                              bool autocreate, bool shared, int *fd_out, struct stat *st,
                              unsigned char *locality, bool *created, busy_info *busy,
                              vml_error *err)
{
    int oflags = O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

    *created = false;
    if (!direct)
        oflags |= O_NOFOLLOW;
    for (int attempt = 0; attempt < DMN_LEASE_LOCK_ATTEMPTS; attempt++) {
        struct flock fl = {
            .l_type = shared ? F_RDLCK : F_WRLCK,
            .l_whence = SEEK_SET,
            .l_start = 0,
            .l_len = 1,
        };
        struct stat now;
        int fd = -1;
        bool made = false;

        /* Lease files are kept, so the file usually exists: open it first, create it
         * (exclusively, to know this call made it) only when it is missing. */
        fd = open(path, oflags);
        if (fd < 0 && errno == ENOENT && autocreate) {
            fd = open(path, oflags | O_CREAT | O_EXCL, 0600);
            made = fd >= 0;
            if (fd < 0 && errno == EEXIST)
                continue;       /* created by someone else between our two opens */
        }
        if (fd < 0) {
            if (errno == ELOOP && !direct)
                vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INVALID_ARG,
                              "lease file %s is a symbolic link", path);
            else
                vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to %s resource %s",
                                    autocreate ? "open/create" : "open", path);
            return LOCK_ERROR;
        }
        if (lease_fstat(reg, fd, st, locality) < 0) {
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
            if (saved == EAGAIN || saved == EACCES) {
                read_busy_info(fd, path, direct, busy);
                close(fd);
                return LOCK_BUSY;
            }
            close(fd);
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
        *created = made;
        return LOCK_OK;
    }
    vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_FAILED,
                  "lease file %s was replaced %d times while being locked; giving up",
                  path, DMN_LEASE_LOCK_ATTEMPTS);
    return LOCK_ERROR;
}

/* Tries of an explicit unlock before the descriptor is closed regardless. */
#define UNLOCK_ATTEMPTS 4

/*
 * Unlock explicitly, then close: a duplicate the keeper still holds must not keep the lock
 * (it shares the open file description).  An unlock that keeps failing leaves the lock to
 * the last close: ours now, the keeper's once it handles the DROP queued for it, which then
 * must not wait in a batch (journal->drops_urgent).
 */
static void unlock_and_close(dmn_journal *journal, int fd)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    int attempt;

    if (fd < 0)
        return;
    for (attempt = 1; fcntl(fd, F_OFD_SETLK, &fl) < 0; attempt++) {
        if (attempt == UNLOCK_ATTEMPTS) {
            VML_ERROR("cannot unlock descriptor %d: %s; the lock goes when the keeper closes "
                      "its copy", fd, strerror(errno));
            journal->drops_urgent = true;
            break;
        }
    }
    close(fd);
}

/*
 * Filesystems that keep their locks in the local inode (they have no lock operation of
 * their own): there /proc/self/fdinfo lists every lock of an open file description, so a
 * lock it does not list is not held.  Others (FUSE, NFS, CIFS, cluster filesystems) may
 * keep them elsewhere.
 */
static bool locks_are_local(int fd)
{
    static const uint64_t local[] = {
        0xEF53,         /* ext2/3/4 */
        0x58465342,     /* xfs */
        0x9123683E,     /* btrfs */
        0x01021994,     /* tmpfs, devtmpfs (block devices in direct mode) */
        0x858458F6,     /* ramfs */
        0xF2F52010,     /* f2fs */
        0x794C7630,     /* overlayfs */
        0x2FC12FC1,     /* zfs */
        0xCA451A4E,     /* bcachefs */
    };
    struct statfs sf;

    if (fstatfs(fd, &sf) < 0)
        return false;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        if ((uint64_t)sf.f_type == local[i])
            return true;
    }
    return false;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U     /* Linux 6.8; older kernels leave it out of stx_mask */
#endif

/*
 * fstat() of a lease descriptor, plus the lock locality of its filesystem into *locality:
 * from the registry's cache when the kernel names the mount uniquely (a mount id is never
 * reused then, so a cached answer cannot describe another filesystem), else asked once.
 * Only st_mode, st_dev and st_ino are filled in.
 */
static int lease_fstat(dmn_lockspaces *reg, int fd, struct stat *st, unsigned char *locality)
{
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT,
              STATX_TYPE | STATX_MODE | STATX_INO | STATX_MNT_ID_UNIQUE, &stx) < 0)
        return -1;
    memset(st, 0, sizeof(*st));
    st->st_mode = stx.stx_mode;
    st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    st->st_ino = (ino_t)stx.stx_ino;
    *locality = DMN_LOCKS_UNKNOWN;
    if (!(stx.stx_mask & STATX_MNT_ID_UNIQUE))
        return 0;
    for (size_t i = 0; i < reg->nlocality; i++) {
        if (reg->locality[i].mnt_id == stx.stx_mnt_id) {
            *locality = reg->locality[i].locality;
            return 0;
        }
    }
    *locality = locks_are_local(fd) ? DMN_LOCKS_LOCAL : DMN_LOCKS_ELSEWHERE;
    if (reg->nlocality < DMN_LOCALITY_CACHE) {
        reg->locality[reg->nlocality].mnt_id = stx.stx_mnt_id;
        reg->locality[reg->nlocality].locality = *locality;
        reg->nlocality++;
    }
    return 0;
}

/* Whether process pid's descriptor fd is this process's descriptor fd, the same open file
 * description (kcmp); true when that cannot be told (no kcmp, not permitted). */
static bool same_description_in(pid_t pid, int fd)
{
    long rc = syscall(SYS_kcmp, pid, getpid(), KCMP_FILE, fd, fd);

    if (rc == 0)
        return true;
    if (rc > 0)
        return false;           /* another file at that number now */
    return errno != EBADF;      /* EBADF: pid has closed it (ours is open: we hold it) */
}

int dmn_lease_verify_lock(int fd, bool shared, pid_t holder)
{
    struct flock fl = { .l_type = shared ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = 0, .l_len = 1 };
    const char *want = shared ? " READ " : " WRITE ";
    char path[64], buf[4096];
    ssize_t n;
    int info;

    if (holder > 0 && !same_description_in(holder, fd))
        return 3;
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    info = open(path, O_RDONLY | O_CLOEXEC);
    if (info < 0)
        return -1;
    n = read(info, buf, sizeof(buf) - 1);
    close(info);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    for (const char *line = buf; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char one[256];

        snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) - 1 ? len : sizeof(one) - 1),
                 line);
        if (strncmp(one, "lock:", 5) == 0 && strstr(one, "OFDLCK") != NULL &&
            strstr(one, want) != NULL) {
            size_t l = strlen(one);
            /* byte range "0 0" ends the line */
            if (l >= 4 && strcmp(one + l - 4, " 0 0") == 0)
                return 0;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    /*
     * Not listed on a filesystem that lists every lock: not held, and NOT taken here.  The
     * lease checks call this in a forked probe whose inherited descriptor shares the open
     * file description: when the daemon released the lease after the fork, re-asserting
     * would lock it again for as long as the probe lives, and the daemon's next acquisition
     * of that file was refused as "locked by another process or host" (issue 3).
     */
    if (locks_are_local(fd))
        return 2;
    /* A filesystem that keeps its locks elsewhere (FUSE, network), or lost.  If someone
     * else holds a conflicting lock it is lost; otherwise re-asserting the same lock on the
     * same open file description is a no-op when we hold it. */
    {
        struct flock probe = fl;

        probe.l_type = F_WRLCK;
        if (fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK &&
            !(shared && probe.l_type == F_RDLCK))
            return 1;
    }
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    return errno == EAGAIN || errno == EACCES ? 1 : -1;
}

/* ---- the keeper journal ---- */

/* Grow an array of elem-sized items so that it holds at least want; -1 on ENOMEM. */
static int reserve(void **array, size_t *cap, size_t want, size_t elem)
{
    size_t n = *cap == 0 ? 16 : *cap;
    void *grown;

    if (want <= *cap)
        return 0;
    while (n < want)
        n *= 2;
    grown = realloc(*array, n * elem);
    if (grown == NULL)
        return -1;
    *array = grown;
    *cap = n;
    return 0;
}

/* Make room so that no journal operation on the leases now held can fail later: every list
 * may name every lease once. */
static int journal_reserve(dmn_lockspaces *reg, size_t leases)
{
    dmn_journal *j = &reg->journal;

    if (!reg->journaling)
        return 0;
    return reserve((void **)&j->added, &j->aadded, leases, sizeof(j->added[0])) < 0 ||
           reserve((void **)&j->updated, &j->aupdated, leases, sizeof(j->updated[0])) < 0 ||
           reserve((void **)&j->dropped, &j->adropped, leases, sizeof(j->dropped[0])) < 0
           ? -1 : 0;
}

static void remove_ptr(dmn_lease **array, size_t *n, const dmn_lease *lease)
{
    for (size_t i = 0; i < *n; i++) {
        if (array[i] == lease) {
            array[i] = array[--*n];
            return;
        }
    }
}

/* The lists have room for every lease (journal_reserve); these checks only matter when
 * reserving that room failed for want of memory. */
static void journal_add(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_journal *j = &reg->journal;

    if (!reg->journaling)
        return;
    if (j->nadded == j->aadded &&
        reserve((void **)&j->added, &j->aadded, j->nadded + 1, sizeof(j->added[0])) < 0) {
        VML_ERROR("out of memory: lease %s is not handed to the keeper and would not survive "
                  "a crash of the daemon", lease->path);
        return;
    }
    j->added[j->nadded++] = lease;
    lease->keeper = DMN_KEEPER_ADD_QUEUED;
}

void dmn_lease_journal_add(dmn_lockspaces *reg, dmn_lease *lease)
{
    if (lease->keeper == DMN_KEEPER_NONE)
        journal_add(reg, lease);
}

void dmn_lease_journal_update(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_journal *j = &reg->journal;

    if (!reg->journaling || lease->keeper != DMN_KEEPER_SENT)
        return;
    if (j->nupdated == j->aupdated &&
        reserve((void **)&j->updated, &j->aupdated, j->nupdated + 1, sizeof(j->updated[0])) < 0) {
        VML_ERROR("out of memory: the keeper's copy of lease %s is not updated", lease->path);
        return;
    }
    j->updated[j->nupdated++] = lease;
    lease->keeper = DMN_KEEPER_UPDATE_QUEUED;
}

/*
 * The lease leaves: take it out of the lists, queue a DROP when the keeper has it, and give
 * back its descriptor for the caller to unlock and close now.  The explicit unlock frees
 * the lock the keeper's duplicate shares, so the DROP may follow later (dmn_keeper batches
 * them): until it arrives the keeper only holds an unlocked open file description.
 */
static int journal_leave(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_journal *j = &reg->journal;
    int fd = lease->fd;

    switch (lease->keeper) {
    case DMN_KEEPER_NONE:
        break;
    case DMN_KEEPER_ADD_QUEUED:
        remove_ptr(j->added, &j->nadded, lease);
        break;
    case DMN_KEEPER_UPDATE_QUEUED:
        remove_ptr(j->updated, &j->nupdated, lease);
        __attribute__((fallthrough));   /* the keeper holds it */
    case DMN_KEEPER_SENT:
        if (j->ndropped == j->adropped &&
            reserve((void **)&j->dropped, &j->adropped, j->ndropped + 1,
                    sizeof(j->dropped[0])) < 0) {
            VML_ERROR("out of memory: the keeper keeps an unlocked copy of lease %s",
                      lease->path);
            break;
        }
        j->dropped[j->ndropped++] = lease->id;
        if (!j->drops_urgent &&
            (lease->locality == DMN_LOCKS_UNKNOWN ? !locks_are_local(fd)
                                                  : lease->locality == DMN_LOCKS_ELSEWHERE))
            j->drops_urgent = true;
        break;
    }
    lease->keeper = DMN_KEEPER_NONE;
    lease->fd = -1;
    return fd;
}

/* dst[0..n) = src[0..n), growing dst; -1 on ENOMEM. */
static int copy_list(void **dst, size_t *cap, const void *src, size_t n, size_t elem)
{
    if (reserve(dst, cap, n, elem) < 0)
        return -1;
    if (n > 0)
        memcpy(*dst, src, n * elem);
    return 0;
}

void dmn_lockspaces_take_journal(dmn_lockspaces *reg, dmn_journal *out)
{
    dmn_journal *j = &reg->journal;

    for (size_t i = 0; i < j->nadded; i++)
        j->added[i]->keeper = DMN_KEEPER_SENT;
    for (size_t i = 0; i < j->nupdated; i++)
        j->updated[i]->keeper = DMN_KEEPER_SENT;
    /* Copied: the registry's lists keep their room for every lease (reserved so that a
     * release never fails), the caller's grow only to what one request queues. */
    dmn_journal_clear(out);
    if (copy_list((void **)&out->added, &out->aadded, j->added, j->nadded,
                  sizeof(j->added[0])) == 0 &&
        copy_list((void **)&out->updated, &out->aupdated, j->updated, j->nupdated,
                  sizeof(j->updated[0])) == 0 &&
        copy_list((void **)&out->dropped, &out->adropped, j->dropped, j->ndropped,
                  sizeof(j->dropped[0])) == 0) {
        out->nadded = j->nadded;
        out->nupdated = j->nupdated;
        out->ndropped = j->ndropped;
        out->drops_urgent = j->drops_urgent;
        dmn_journal_clear(j);
        return;
    }
    /* No memory for a copy: hand over the lists themselves and reserve new ones. */
    dmn_journal_free(out);
    *out = *j;
    memset(j, 0, sizeof(*j));
    if (journal_reserve(reg, reg->nleases + 1) < 0)
        VML_ERROR("out of memory for the keeper journal");
}

void dmn_journal_clear(dmn_journal *journal)
{
    journal->nadded = journal->nupdated = journal->ndropped = 0;
    journal->drops_urgent = false;
}

void dmn_journal_free(dmn_journal *journal)
{
    free(journal->added);
    free(journal->updated);
    free(journal->dropped);
    memset(journal, 0, sizeof(*journal));
}

void dmn_lockspaces_set_journaling(dmn_lockspaces *reg, bool on)
{
    if (on == reg->journaling)
        return;
    if (!on) {
        dmn_journal pending = { 0 };

        dmn_lockspaces_take_journal(reg, &pending);
        dmn_journal_free(&pending);
        for (dmn_lease *l = reg->head; l != NULL; l = l->next)
            l->keeper = DMN_KEEPER_NONE;
        reg->journaling = false;
        return;
    }
    reg->journaling = true;
    if (journal_reserve(reg, reg->nleases + 1) < 0)
        VML_ERROR("out of memory for the keeper journal");
}

void dmn_lockspaces_resend_all(dmn_lockspaces *reg)
{
    dmn_journal *j = &reg->journal;

    if (!reg->journaling)
        return;
    j->nadded = j->nupdated = 0;
    if (journal_reserve(reg, reg->nleases + 1) < 0)
        VML_ERROR("out of memory for the keeper journal");
    for (dmn_lease *l = reg->head; l != NULL; l = l->next) {
        l->keeper = DMN_KEEPER_NONE;
        journal_add(reg, l);
    }
}

/* ---- owner records and daemon-local generations ---- */

/*
 * The daemon-local generation key of (ls, name): "lockspace\0name\0" in a new buffer; *len
 * (the hashed bytes) excludes the final NUL, which lets both halves be read as strings.
 */
static char *generation_key(const char *lockspace, const char *name, size_t *len)
{
    size_t a = strlen(lockspace), b = strlen(name);
    char *key = malloc(a + b + 2);

    if (key == NULL)
        return NULL;
    memcpy(key, lockspace, a);
    key[a] = '\0';
    memcpy(key + a + 1, name, b);
    key[a + 1 + b] = '\0';
    *len = a + 1 + b;
    return key;
}

/* Keys up to this size are built on the stack for a lookup (every acquisition does one). */
#define GENERATION_KEY_STACK 512

static dmn_generation *generation_find(const dmn_lockspaces *reg, const char *lockspace,
                                       const char *name)
{
    size_t a = strlen(lockspace), b = strlen(name);
    char stack[GENERATION_KEY_STACK];
    char *key = a + b + 2 <= sizeof(stack) ? stack : malloc(a + b + 2);
    dmn_generation *gen;

    if (key == NULL)
        return NULL;
    memcpy(key, lockspace, a);
    key[a] = '\0';
    memcpy(key + a + 1, name, b);
    gen = dmn_hash_get(reg->generations, key, a + 1 + b);
    if (key != stack)
        free(key);
    return gen;
}

static void generation_free(dmn_generation *gen)
{
    if (gen == NULL)
        return;
    free(gen->key);
    free(gen->last_name);
    free(gen);
}

/* Forget the daemon-local generation of (lockspace, name), if any. */
static void generation_forget(dmn_lockspaces *reg, const char *lockspace, const char *name)
{
    dmn_generation *gen = generation_find(reg, lockspace, name);

    if (gen == NULL)
        return;
    dmn_hash_remove(reg->generations, gen->key, gen->key_len);
    generation_free(gen);
}

/* Set (creating it) the daemon-local generation of (lockspace, name). */
static int generation_store(dmn_lockspaces *reg, const char *lockspace, const char *name,
                            uint64_t generation, uint64_t run_start, const char uuid[16],
                            const char *owner_name, unsigned int pid, int64_t since,
                            vml_error *err)
{
    dmn_generation *gen = generation_find(reg, lockspace, name);
    const char *new_name = owner_name != NULL ? owner_name : "";
    /* The same domain again (its pause/resume cycle) keeps the copy it has. */
    bool same_name = gen != NULL && gen->last_name != NULL &&
                     strcmp(gen->last_name, new_name) == 0;
    char *name_copy = same_name ? gen->last_name : strdup(new_name);

    if (name_copy == NULL)
        goto nomem;
    if (gen == NULL) {
        gen = calloc(1, sizeof(*gen));
        if (gen == NULL || (gen->key = generation_key(lockspace, name, &gen->key_len)) == NULL ||
            dmn_hash_put(reg->generations, gen->key, gen->key_len, gen) < 0) {
            generation_free(gen);
            free(name_copy);
            goto nomem;
        }
    }
    gen->generation = generation;
    gen->run_start = run_start;
    memcpy(gen->last_uuid, uuid, 16);
    if (!same_name)
        free(gen->last_name);
    gen->last_name = name_copy;
    gen->last_pid = pid;
    gen->last_since_usec = since;
    return 0;
 nomem:
    vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record the generation of %s",
                        name);
    return -1;
}

int dmn_generation_restore(dmn_lockspaces *reg, const char *lockspace, const char *name,
                           uint64_t generation, uint64_t run_start, const vml_ls_owner *last,
                           int64_t last_since_usec, vml_error *err)
{
    return generation_store(reg, lockspace, name, generation, run_start, last->uuid, last->name,
                            last->pid, last_since_usec, err);
}

void dmn_lease_rebase_epoch(dmn_lockspaces *reg, dmn_lease *lease)
{
    /* The held lease carries its generation into the new epoch's table at its release. */
    if (lease->epoch == 0 || lease->epoch == reg->epoch)
        return;
    lease->epoch = reg->epoch;
    dmn_lease_journal_update(reg, lease);
}

typedef struct generation_walk {
    dmn_generation_visit visit;
    void *opaque;
} generation_walk;

static void visit_generation(void *value, void *opaque)
{
    const generation_walk *walk = opaque;

    walk->visit(value, walk->opaque);
}

/* Whether lease carries its daemon-local generation itself (held exclusively, committed). */
static bool carries_generation(const dmn_lockspaces *reg, const dmn_lease *lease)
{
    return !(lease->flags & FLAG_SHARED) && !(lease->state & VML_SNAP_RECORD) &&
           !lease->commit_pending && lease->nholders > 0 && lease->epoch == reg->epoch;
}

void dmn_lockspaces_each_generation(const dmn_lockspaces *reg, dmn_generation_visit visit,
                                    void *opaque)
{
    generation_walk walk = { .visit = visit, .opaque = opaque };

    dmn_hash_each(reg->generations, visit_generation, &walk);
    /* Then those held leases carry, as table entries: an image that keeps every
     * generation in its table (before vmlockd 0.3) needs them, and a lease whose holders
     * all exit during the re-exec is released from the table's entry. */
    for (const dmn_lease *lease = reg->head; lease != NULL; lease = lease->next) {
        const dmn_owner *last = lease->nholders > 0 ? lease->holders[0]->owner : NULL;
        dmn_generation gen;

        if (!carries_generation(reg, lease))
            continue;
        memset(&gen, 0, sizeof(gen));
        if ((gen.key = generation_key(lease->lockspace->path, lease->name, &gen.key_len)) ==
            NULL) {
            VML_WARN("out of memory: the generation of %s is not handed over", lease->path);
            continue;
        }
        gen.generation = lease->generation;
        gen.run_start = lease->run_start;
        memcpy(gen.last_uuid, last->identity.uuid, sizeof(gen.last_uuid));
        gen.last_name = last->identity.name;
        gen.last_pid = last->pid;
        gen.last_since_usec = lease->holders[0]->since_usec;
        visit(&gen, opaque);
        free(gen.key);
    }
}

static void free_generation_entry(void *value, void *opaque)
{
    (void)opaque;
    generation_free(value);
}

/* The owner record describing lease held by owner (held) or last held by it (free). */
static void fill_record(const dmn_lockspaces *reg, const dmn_lease *lease, const dmn_owner *owner,
                        int64_t since, bool held, dmn_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->held = held;
    rec->generation = lease->generation;
    rec->run_start = lease->run_start;
    dmn_record_set_text(rec->host, sizeof(rec->host), reg->host);
    dmn_record_set_text(rec->boot_id, sizeof(rec->boot_id), reg->boot_id);
    rec->daemon_pid = reg->daemon_pid;
    rec->owner_pid = owner->pid;
    dmn_record_set_text(rec->domain, sizeof(rec->domain), owner->identity.name);
    memcpy(rec->uuid, owner->identity.uuid, sizeof(rec->uuid));
    rec->acquired_usec = since;
    rec->released_usec = held ? 0 : realtime_usec();
}

/*
 * The acquisition is complete: a new exclusive one writes what it must leave behind (the
 * "held" owner record), and the lease file, if this acquisition created it, is a lease
 * file like any other from now on (kept on release).
 * A daemon-local generation lives in exactly one place: in the lease while it is held
 * exclusively, in the registry's table while it is not (lease_keep_local_generation puts
 * it back at the release).  So a held lease costs no table entry: ≈ 230 bytes less per
 * lease held in direct mode, where every lease has a daemon-local generation.
 */
static int lease_commit(dmn_lockspaces *reg, dmn_lease *lease, vml_error *err)
{
    const dmn_holding *h = lease->holders[0];
    dmn_record rec;

    if (!lease->commit_pending) {
        lease->state &= ~(unsigned int)VML_SNAP_CREATED;
        return 0;
    }
    if (lease->state & VML_SNAP_RECORD) {
        fill_record(reg, lease, h->owner, h->since_usec, true, &rec);
        if (dmn_record_write(lease->fd, lease->path, &rec, lease->lockspace->sync_records,
                             err) < 0)
            return -1;
        lease->state |= VML_SNAP_RECORD_WRITTEN;
    } else {
        generation_forget(reg, lease->lockspace->path, lease->name);
    }
    lease->commit_pending = false;
    lease->state &= ~(unsigned int)VML_SNAP_CREATED;
    return 0;
}

/* The last exclusive holder leaves: the record says the lease is free, generation kept. */
static void lease_write_free_record(dmn_lockspaces *reg, dmn_lease *lease, const dmn_holding *h)
{
    dmn_record rec;
    vml_error err = { 0 };

    if (!(lease->state & VML_SNAP_RECORD_WRITTEN) || (lease->state & VML_SNAP_LOST) ||
        lease->fd < 0)
        return;
    fill_record(reg, lease, h->owner, h->since_usec, false, &rec);
    if (dmn_record_write(lease->fd, lease->path, &rec, lease->lockspace->sync_records, &err) < 0)
        VML_WARN("%s (the lease is released all the same)", err.message);
}

/* The last exclusive holder h leaves a lease whose generation is daemon-local: the table
 * carries it from now on (see lease_commit). */
static void lease_keep_local_generation(dmn_lockspaces *reg, const dmn_lease *lease,
                                        const dmn_holding *h)
{
    vml_error err = { 0 };

    if ((lease->flags & FLAG_SHARED) || (lease->state & VML_SNAP_RECORD) ||
        lease->commit_pending)
        return;
    if (generation_store(reg, lease->lockspace->path, lease->name, lease->generation,
                         lease->run_start, h->owner->identity.uuid, h->owner->identity.name,
                         h->owner->pid, h->since_usec, &err) < 0)
        VML_WARN("%s: its next exclusive acquisition starts its generations again "
                 "(the lease is released all the same)", err.message);
}

/* ---- messages ---- */

void dmn_lease_describe_holders(const dmn_lease *lease, char *out, size_t out_len)
{
    const dmn_owner *first = lease->holders[0]->owner;
    char uuid[37];
    char others[64] = "";

    dmn_owner_format_uuid(first->identity.uuid, uuid);
    if (lease->nholders > 1)
        snprintf(others, sizeof(others), " and %zu other(s)", lease->nholders - 1);
    snprintf(out, out_len, "domain '%s' (uuid %s, pid %u)%s", first->identity.name, uuid,
             first->pid, others);
}

/*
 * The busy error for name (disk shown when it differs from name).  holder_lease is the
 * lease in this daemon that holds the lock (NULL: another process or host, described by
 * busy when known); through is the other path of the same inode when the lock was met
 * through an alias.
 */
static void set_busy(vml_error *err, const char *name, const char *disk,
                     const dmn_lease *holder_lease, const char *through, const busy_info *busy)
{
    char disk_part[VML_ERROR_MESSAGE_MAX] = "";
    char through_part[VML_ERROR_MESSAGE_MAX] = "";
    char holders[VML_ERROR_MESSAGE_MAX];

    if (disk != NULL && disk[0] != '\0' && strcmp(disk, name) != 0)
        snprintf(disk_part, sizeof(disk_part), " (disk '%s')", disk);
    if (holder_lease == NULL) {
        /* Only an exclusive lock matches a "held" record: a shared lock means sharers, and
         * a record naming someone else is then stale. */
        if (busy != NULL && busy->exclusive && busy->kind == DMN_RECORD_VALID &&
            busy->rec.held) {
            dmn_record_describe(&busy->rec, holders, sizeof(holders));
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                          "Lockspace resource '%s'%s is locked by %s", name, disk_part,
                          holders);
            return;
        }
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                      "Lockspace resource '%s'%s is locked by another process or host%s",
                      name, disk_part,
                      busy != NULL && !busy->exclusive ? " (shared)" : "");
        return;
    }
    dmn_lease_describe_holders(holder_lease, holders, sizeof(holders));
    if (through != NULL)
        snprintf(through_part, sizeof(through_part), " through '%s'", through);
    vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                  "Lockspace resource '%s'%s is locked by %s%s%s", name, disk_part, holders,
                  through_part,
                  (holder_lease->state & VML_SNAP_LOST) ? " (its lock was found lost)" : "");
}

/* What the lease's generation history says, for the expected-generation check. */
typedef struct generation_state {
    uint64_t generation;            /* of the last exclusive acquisition; 0 = never */
    uint64_t run_start;
    bool have_last;
    unsigned char last_uuid[16];
    /*
     * Who acquired it last, kept as data and rendered (generation_state_describe_last) only
     * for a refusal message: formatting it on every acquisition cost ~7,000 instructions.
     * At most one is set, and only with have_last: last_record points at record (the lease
     * file's owner record), last_gen at the registry's table entry, which is borrowed and
     * valid only until the registry's generations next change (the state is used at once).
     */
    const dmn_record *last_record;
    const dmn_generation *last_gen;
    dmn_record record;              /* read from the lease file; meaningful with last_record */
} generation_state;

/* The state of a lease nobody acquired yet: no generation, no last holder.  Fields are set
 * one by one because record is large and only read when last_record points at it. */
static void generation_state_init(generation_state *gs)
{
    gs->generation = 0;
    gs->run_start = 0;
    gs->have_last = false;
    memset(gs->last_uuid, 0, sizeof(gs->last_uuid));
    gs->last_record = NULL;
    gs->last_gen = NULL;
}

/* Who acquired the lease last, for messages, into out (out_len bytes, NUL-terminated). */
static void generation_state_describe_last(const generation_state *gs, char *out,
                                           size_t out_len)
{
    char uuid[37];

    if (gs->have_last && gs->last_record != NULL) {
        dmn_record_describe(gs->last_record, out, out_len);
    } else if (gs->have_last && gs->last_gen != NULL) {
        dmn_owner_format_uuid((const char *)gs->last_gen->last_uuid, uuid);
        snprintf(out, out_len, "domain '%s' (uuid %s, pid %u) on this host",
                 gs->last_gen->last_name, uuid, gs->last_gen->last_pid);
    } else {
        snprintf(out, out_len, "%s", "another domain");
    }
}

/*
 * The fencing check: the caller last held generation res->expected_generation.  It may
 * have it back when nobody acquired it exclusively since (the generation did not move), or
 * when every acquisition since was by the same domain (uuid): its own migration target.
 */
static int check_expected(const vml_ext_resource2 *res, const char *name, uint64_t epoch,
                          const dmn_owner *owner, const generation_state *gs, vml_error *err)
{
    uint64_t want = res->expected_generation;
    char last[VML_ERROR_MESSAGE_MAX];

    if (!(res->flags & FLAG_EXPECT))
        return 0;
    if (res->expected_epoch != epoch) {
        VML_WARN("the generation %" PRIu64 " expected for '%s' comes from %s; it cannot be "
                 "checked here (daemon-local generations are valid on one daemon only)",
                 want, name,
                 res->expected_epoch == 0 ? "a lease-file owner record"
                                          : "another daemon's (or an earlier start's) table");
        return 0;
    }
    if (gs->generation == want)
        return 0;
    if (gs->have_last && same_uuid(gs->last_uuid, owner->identity.uuid) &&
        gs->run_start <= want && want <= gs->generation)
        return 0;
    generation_state_describe_last(gs, last, sizeof(last));
    vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                  "%s%s%s was acquired by %s while domain '%s' did not hold it (generation "
                  "%" PRIu64 ", expected %" PRIu64 "): the disk may have changed; refusing "
                  "to grant it back",
                  res->disk != NULL && res->disk[0] != '\0' ? "disk '" : "lease '",
                  res->disk != NULL && res->disk[0] != '\0' ? res->disk : name, "'",
                  last, owner->identity.name,
                  gs->generation, want);
    return -1;
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

/* True when path is on a filesystem only this host sees, where owner records need no
 * fdatasync to be visible to every reader. */
static bool local_filesystem(const char *path)
{
    static const long local_types[] = {
        0xEF53,         /* ext2/3/4 */
        0x58465342,     /* xfs */
        0x9123683E,     /* btrfs */
        0x01021994,     /* tmpfs */
        (long)0xF2F52010, /* f2fs */
        (long)0x858458f6, /* ramfs */
    };
    struct statfs sfs;

    if (path[0] == '\0' || statfs(path, &sfs) < 0)
        return false;
    for (size_t i = 0; i < sizeof(local_types) / sizeof(local_types[0]); i++) {
        if ((long)sfs.f_type == local_types[i])
            return true;
    }
    return false;
}

/* Create and register the lockspace record (no filesystem work beyond statfs). */
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
    ls->sync_records = !local_filesystem(path);
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

/* This host's boot id (shared lockspaces tell a reboot from a live holder by it). */
static void read_boot_id(char *out, size_t out_len)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = -1;

    out[0] = '\0';
    if (fd >= 0) {
        n = read(fd, out, out_len - 1);
        close(fd);
    }
    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

int dmn_lockspaces_new(dmn_lockspaces **out, vml_error *err)
{
    dmn_lockspaces *reg = calloc(1, sizeof(*reg));
    int ret = -1;

    if (reg == NULL || (reg->by_path = dmn_hash_new()) == NULL ||
        (reg->by_inode = dmn_hash_new()) == NULL || (reg->by_id = dmn_hash_new()) == NULL ||
        (reg->generations = dmn_hash_new()) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot create the lockspace table");
        goto out;
    }
    reg->next_seq = 1;
    reg->next_batch = 1;
    reg->next_id = 1;
    if (gethostname(reg->host, sizeof(reg->host) - 1) < 0)
        snprintf(reg->host, sizeof(reg->host), "localhost");
    read_boot_id(reg->boot_id, sizeof(reg->boot_id));
    reg->daemon_pid = (unsigned int)getpid();
    /* A random epoch names this table: a state from another daemon never matches it. */
    while (reg->epoch == 0) {
        if (getrandom(&reg->epoch, sizeof(reg->epoch), 0) != (ssize_t)sizeof(reg->epoch))
            reg->epoch = (uint64_t)realtime_usec() ^ ((uint64_t)getpid() << 40);
    }
    if (lockspace_register(reg, "", NULL, err) < 0)
        goto out;
    *out = reg;
    reg = NULL;
    ret = 0;
 out:
    dmn_lockspaces_free(reg);
    return ret;
}

static void free_registry_tables(dmn_lockspaces *reg)
{
    while (reg->lockspaces != NULL) {
        dmn_lockspace *ls = reg->lockspaces;
        reg->lockspaces = ls->next;
        lockspace_free(ls);
    }
    dmn_hash_each(reg->generations, free_generation_entry, NULL);
    dmn_hash_free(reg->generations);
    dmn_hash_free(reg->by_id);
    dmn_hash_free(reg->by_inode);
    dmn_hash_free(reg->by_path);
    dmn_journal_free(&reg->journal);
    free(reg);
}

void dmn_lockspaces_free(dmn_lockspaces *reg)
{
    if (reg == NULL)
        return;
    /* Releasing the last holder of a lease removes it from the list. */
    while (reg->head != NULL)
        dmn_holding_release(reg, reg->head->holders[reg->head->nholders - 1]);
    free_registry_tables(reg);
}

dmn_lockspace *dmn_lockspaces_find(const dmn_lockspaces *reg, const char *path)
{
    return dmn_hash_get(reg->by_path, path, strlen(path));
}

dmn_lease *dmn_lockspaces_find_lease(const dmn_lockspaces *reg, const char *lockspace,
                                     const char *name)
{
    const dmn_lockspace *ls = dmn_lockspaces_find(reg, lockspace);

    return ls != NULL ? dmn_hash_get(ls->leases, name, strlen(name)) : NULL;
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

/* The disk of a lease whose acquirer named none: shared by all of them, never freed. */
static char no_disk[] = "";

/*
 * name, path and disk of a new lease.  Equal strings are stored once (direct mode: the path
 * is the name, and the disk usually names it too; most leases of libvirt's indirect mode
 * name a disk, the bench's fill none): they were a third of a lease's memory.  lease_free
 * knows which to free.  -1 when out of memory (what was set is freed by lease_free).
 */
static int lease_set_strings(dmn_lease *lease, const dmn_lockspace *ls, const char *name,
                             const char *disk)
{
    if ((lease->name = strdup(name)) == NULL)
        return -1;
    lease->path = is_default(ls) ? lease->name : lease_path(ls, name);
    if (lease->path == NULL)
        return -1;
    if (disk == NULL || disk[0] == '\0')
        lease->disk = no_disk;
    else if (strcmp(disk, lease->path) == 0)
        lease->disk = lease->path;
    else
        lease->disk = strdup(disk);
    return lease->disk != NULL ? 0 : -1;
}

static void lease_free(dmn_lease *lease)
{
    if (lease == NULL)
        return;
    if (lease->fd >= 0)
        close(lease->fd);
    free(lease->holders);
    if (lease->disk != no_disk && lease->disk != lease->path)
        free(lease->disk);
    if (lease->path != lease->name)
        free(lease->path);
    free(lease->name);
    free(lease);
}

/*
 * Drop the lease's lock: THE place where vmlockd releases one.  Lease files are kept (the
 * owner record carries the generation on), except a file this very acquisition created
 * and never wrote a record to (a batch undone): it is removed first, while still locked,
 * so a racing locker that opened it re-stats, sees it gone and retries (lease_lock()); a
 * shared one only when a non-blocking upgrade to a write lock proves nobody else holds it.
 * The unlock is explicit (a duplicate the keeper holds shares the open file description)
 * and immediate; the keeper hears of it later (journal_leave).
 */
static void lease_unlock(dmn_lockspaces *reg, dmn_lease *lease)
{
    int fd;

    if ((lease->state & VML_SNAP_CREATED) && !(lease->state & VML_SNAP_RECORD_WRITTEN) &&
        !is_default(lease->lockspace) && lease->fd >= 0) {
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
    fd = journal_leave(reg, lease);
    unlock_and_close(&reg->journal, fd);
}

/* Take the lease out of every index and the list and free it: its descriptor (if still
 * set) is closed without unlocking. */
static void lease_unindex(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_hash_remove(lease->lockspace->leases, lease->name, strlen(lease->name));
    dmn_hash_remove(reg->by_id, &lease->id, sizeof(lease->id));
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

/* Unlock the lease and remove it from every index; the lease is freed. */
static void lease_remove(dmn_lockspaces *reg, dmn_lease *lease)
{
    VML_DEBUG("releasing lease %s", lease->path);
    lease_unlock(reg, lease);
    lease_unindex(reg, lease);
}

void dmn_lockspaces_abandon(dmn_lockspaces *reg)
{
    if (reg == NULL)
        return;
    while (reg->head != NULL)
        lease_abandon_one(reg, reg->head);
    /* Deferred descriptors were released leases: finishing them is what a release means. */
    free_registry_tables(reg);
}

/* Forget the lease without releasing it: holdings unlinked, descriptor closed, no unlock,
 * nothing written, nothing told to the keeper. */
static void lease_abandon_one(dmn_lockspaces *reg, dmn_lease *lease)
{
    dmn_journal *j = &reg->journal;

    while (lease->nholders > 0)
        holding_unlink(lease->holders[lease->nholders - 1]);
    if (lease->keeper == DMN_KEEPER_ADD_QUEUED)
        remove_ptr(j->added, &j->nadded, lease);
    else if (lease->keeper == DMN_KEEPER_UPDATE_QUEUED)
        remove_ptr(j->updated, &j->nupdated, lease);
    lease->keeper = DMN_KEEPER_NONE;
    lease_unindex(reg, lease);      /* closes without unlocking */
}

static dmn_holding *lease_find_holding(const dmn_lease *lease, unsigned int pid)
{
    for (size_t i = 0; i < lease->nholders; i++) {
        if (lease->holders[i]->owner->pid == pid)
            return lease->holders[i];
    }
    return NULL;
}

static int lease_add_holder(dmn_lease *lease, dmn_owner *owner, uint64_t batch, int64_t since,
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
    h->since_usec = since;
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

/* Unlink h from its lease and owner and free it; returns the lease. */
static dmn_lease *holding_unlink(dmn_holding *h)
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
    return lease;
}

void dmn_holding_release(dmn_lockspaces *reg, dmn_holding *h)
{
    dmn_lease *lease;

    if (h->lease->nholders == 1) {
        lease_write_free_record(reg, h->lease, h);
        lease_keep_local_generation(reg, h->lease, h);
    }
    lease = holding_unlink(h);
    if (lease->nholders == 0)
        lease_remove(reg, lease);
    else
        dmn_lease_journal_update(reg, lease);
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

void dmn_lease_drop(dmn_lockspaces *reg, dmn_lease *lease)
{
    /* Nothing is written: the lease is taken from its holders, not released by them. */
    lease->state &= ~(unsigned int)VML_SNAP_RECORD_WRITTEN;
    while (lease->nholders > 1)
        holding_unlink(lease->holders[lease->nholders - 1]);
    dmn_holding_release(reg, lease->holders[0]);
}

bool dmn_lease_mark_lost(dmn_lockspaces *reg, dmn_lease *lease)
{
    if (lease->state & VML_SNAP_LOST)
        return false;
    lease->state |= VML_SNAP_LOST;
    reg->lost++;
    dmn_lease_journal_update(reg, lease);
    return true;
}

/* Index a fully built lease: name, inode, list.  On failure nothing is indexed. */
static int lease_index(dmn_lockspaces *reg, dmn_lease *lease, vml_error *err)
{
    if (journal_reserve(reg, reg->nleases + 2) < 0 ||
        dmn_hash_put(lease->lockspace->leases, lease->name, strlen(lease->name), lease) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s",
                            lease->name);
        return -1;
    }
    if (dmn_hash_put(reg->by_id, &lease->id, sizeof(lease->id), lease) < 0) {
        dmn_hash_remove(lease->lockspace->leases, lease->name, strlen(lease->name));
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INTERNAL_ERROR,
                      "cannot record resource %s: lease id %llu is in use", lease->name,
                      (unsigned long long)lease->id);
        return -1;
    }
    if (inode_index_add(reg, lease) < 0) {
        dmn_hash_remove(reg->by_id, &lease->id, sizeof(lease->id));
        dmn_hash_remove(lease->lockspace->leases, lease->name, strlen(lease->name));
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s",
                            lease->name);
        return -1;
    }
    if (lease->seq == 0) {
        lease->seq = reg->next_seq++;
        if (reg->next_seq == 0)
            reg->next_seq = 1;      /* 0 is the "first page" cursor */
    }
    lease->prev = reg->tail;
    if (reg->tail != NULL)
        reg->tail->next = lease;
    else
        reg->head = lease;
    reg->tail = lease;
    reg->nleases++;
    return 0;
}

/* Read what the lease file (or the daemon-local table) says of the lease's generations and
 * decide where its generation lives from now on. */
static int read_generation_state(dmn_lockspaces *reg, dmn_lease *lease, generation_state *gs,
                                 vml_error *err)
{
    dmn_record_kind kind = DMN_RECORD_FOREIGN;

    generation_state_init(gs);
    if (!is_default(lease->lockspace)) {
        if (dmn_record_read(lease->fd, lease->path, false, &kind, &gs->record, err) < 0)
            return -1;
        switch (kind) {
        case DMN_RECORD_VALID:
            gs->generation = gs->record.generation;
            gs->run_start = gs->record.run_start;
            gs->have_last = true;
            memcpy(gs->last_uuid, gs->record.uuid, sizeof(gs->last_uuid));
            gs->last_record = &gs->record;
            __attribute__((fallthrough));
        case DMN_RECORD_EMPTY:
            lease->state |= VML_SNAP_RECORD;
            lease->epoch = 0;
            return 0;
        case DMN_RECORD_DAMAGED:
            VML_WARN("the owner record of %s is damaged: starting its generations again",
                     lease->path);
            lease->state |= VML_SNAP_RECORD;
            lease->epoch = 0;
            return 0;
        case DMN_RECORD_FOREIGN:
            VML_DEBUG("%s is not empty and carries no owner record: its generation is kept "
                      "by this daemon only", lease->path);
            break;
        }
    }
    lease->epoch = reg->epoch;
    {
        const dmn_generation *gen = generation_find(reg, lease->lockspace->path, lease->name);

        if (gen != NULL) {
            gs->generation = gen->generation;
            gs->run_start = gen->run_start;
            gs->have_last = true;
            memcpy(gs->last_uuid, gen->last_uuid, sizeof(gs->last_uuid));
            gs->last_gen = gen;
        }
    }
    return 0;
}

/* Lock a resource nobody in this daemon holds and record it with owner as its holder.
 * An exclusive acquisition is left commit_pending (record or generation to write). */
static int lease_create(dmn_lockspaces *reg, dmn_lockspace *ls, const vml_ext_resource2 *res,
                        dmn_owner *owner, uint64_t batch, dmn_holding **taken, vml_error *err)
{
    dmn_lease *lease = calloc(1, sizeof(*lease));
    const char *name = res->name;
    busy_info busy;
    generation_state gs;
    struct stat st;
    bool created = false;
    bool indexed = false;
    int ret = -1;

    if (lease == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    lease->fd = -1;
    lease->lockspace = ls;
    /* The default lockspace never creates (or deletes) files: AUTOCREATE means nothing there. */
    lease->flags = is_default(ls) ? (res->flags & FLAG_SHARED)
                                  : (res->flags & (FLAG_SHARED | FLAG_AUTOCREATE));
    if (lease_set_strings(lease, ls, name, res->disk) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record resource %s", name);
        goto out;
    }
    switch (lease_lock(reg, lease->path, is_default(ls), (lease->flags & FLAG_AUTOCREATE) != 0,
                       (lease->flags & FLAG_SHARED) != 0, &lease->fd, &st, &lease->locality,
                       &created, &busy, err)) {
    case LOCK_OK:
        break;
    case LOCK_BUSY: {
        const dmn_lease *alias = inode_lookup(reg, &st);
        reg->conflicts++;
        set_busy(err, name, res->disk, alias, alias != NULL ? alias->path : NULL, &busy);
        goto out;
    }
    case LOCK_ERROR:
        goto out;
    }
    if (created)
        lease->state |= VML_SNAP_CREATED;
    lease->inode.dev = (uint64_t)st.st_dev;
    lease->inode.ino = (uint64_t)st.st_ino;
    if (read_generation_state(reg, lease, &gs, err) < 0 ||
        check_expected(res, name, lease->epoch, owner, &gs, err) < 0)
        goto out;
    if (lease->flags & FLAG_SHARED) {
        /* Sharers never write: the generation counts exclusive acquisitions only. */
        lease->generation = gs.generation;
        lease->run_start = gs.run_start;
    } else {
        lease->generation = gs.generation + 1;
        lease->run_start = gs.have_last && same_uuid(gs.last_uuid, owner->identity.uuid) &&
                           gs.generation > 0 ? gs.run_start : lease->generation;
        lease->commit_pending = true;
    }
    lease->id = reg->next_id++;
    if (lease_index(reg, lease, err) < 0)
        goto out;
    indexed = true;
    if (lease_add_holder(lease, owner, batch, realtime_usec(), taken, err) < 0)
        goto out;
    journal_add(reg, lease);
    VML_DEBUG("locked %s (%s, generation %" PRIu64 ") for owner pid %u", lease->path,
              (lease->flags & FLAG_SHARED) ? "shared" : "exclusive", lease->generation,
              owner->pid);
    lease = NULL;
    ret = 0;
 out:
    if (lease != NULL) {
        if (indexed) {
            lease_remove(reg, lease);   /* treats the file exactly as a release would */
        } else {
            if (lease->fd >= 0)
                lease_unlock(reg, lease);
            lease_free(lease);
        }
    }
    return ret;
}

static void fill_generation(vml_ext_generation *gen, const dmn_lease *lease, bool held)
{
    if (gen == NULL)
        return;
    gen->generation = held ? lease->generation : 0;
    gen->epoch = held ? lease->epoch : 0;
    gen->held = held;
}

/* Acquire without committing (the batch commits once everything is taken). */
static int lease_acquire_one(dmn_lockspaces *reg, dmn_lockspace *ls, const vml_ext_resource2 *res,
                             dmn_owner *owner, uint64_t batch, dmn_holding **taken,
                             dmn_lease **lease_out, vml_error *err)
{
    dmn_lease *lease;
    dmn_holding *mine;
    generation_state gs;

    *taken = NULL;
    *lease_out = NULL;
    if (dmn_lockspace_check_name(ls, res->name, err) < 0)
        return -1;
    lease = dmn_hash_get(ls->leases, res->name, strlen(res->name));
    if (lease == NULL) {
        if (lease_create(reg, ls, res, owner, batch, taken, err) < 0)
            return -1;
        *lease_out = (*taken)->lease;
        return 0;
    }
    mine = lease_find_holding(lease, owner->pid);
    if (mine != NULL && !(lease->state & VML_SNAP_LOST) &&
        !(lease->flags & FLAG_SHARED) == !(res->flags & FLAG_SHARED)) {
        /*
         * Held by this owner in this mode already (libvirt acquires a disk hot-plugged
         * while paused at once and again at resume; a batch may name a resource twice):
         * granted as it stands (ARCHITECTURE daemon invariant 7).  No second holding, no
         * count: one release still frees it, and the generation does not move (nobody
         * acquired it).  *taken stays NULL: an undone batch leaves it held, as it was.
         */
        generation_state_init(&gs);
        gs.generation = lease->generation;
        gs.run_start = lease->run_start;
        if (!(lease->flags & FLAG_SHARED)) {
            gs.have_last = true;
            memcpy(gs.last_uuid, owner->identity.uuid, sizeof(gs.last_uuid));
        }
        if (check_expected(res, res->name, lease->epoch, owner, &gs, err) < 0)
            return -1;
        *lease_out = lease;
        return 0;
    }
    if (mine != NULL || !(lease->flags & FLAG_SHARED) || !(res->flags & FLAG_SHARED) ||
        (lease->state & VML_SNAP_LOST)) {
        reg->conflicts++;
        set_busy(err, res->name, res->disk, lease, NULL, NULL);
        return -1;
    }
    /* Joining sharers: the generation is the one read when the first sharer locked it. */
    generation_state_init(&gs);
    gs.generation = lease->generation;
    gs.run_start = lease->run_start;
    if (check_expected(res, res->name, lease->epoch, owner, &gs, err) < 0)
        return -1;
    if (lease_add_holder(lease, owner, batch, realtime_usec(), taken, err) < 0)
        return -1;
    dmn_lease_journal_update(reg, lease);
    *lease_out = lease;
    return 0;
}

int dmn_lease_acquire(dmn_lockspaces *reg, dmn_lockspace *ls, const vml_ext_resource2 *res,
                      dmn_owner *owner, dmn_holding **taken, vml_ext_generation *gen,
                      vml_error *err)
{
    dmn_lease *lease;

    if (lease_acquire_one(reg, ls, res, owner, 0, taken, &lease, err) < 0)
        return -1;
    if (*taken == NULL) {
        /* Held by this owner in this mode already: nothing new to commit or count. */
        *taken = lease_find_holding(lease, owner->pid);
        fill_generation(gen, lease, true);
        return 0;
    }
    if (lease_commit(reg, lease, err) < 0) {
        dmn_holding_release(reg, *taken);
        *taken = NULL;
        return -1;
    }
    reg->acquires++;
    fill_generation(gen, lease, true);
    return 0;
}

/* The flags BATCH_ACQUIRE accepts per resource. */
#define BATCH_RESOURCE_FLAGS (FLAG_SHARED | FLAG_AUTOCREATE | FLAG_EXPECT)

int dmn_lease_acquire_batch(dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                            dmn_owner *owner, vml_ext_generation *gens, vml_error *err)
{
    dmn_holding **taken = NULL;
    dmn_lease **leases = NULL;
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
    if (n > 0 && ((taken = calloc(n, sizeof(taken[0]))) == NULL ||
                  (leases = calloc(n, sizeof(leases[0]))) == NULL)) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot run the batch");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const vml_ext_resource2 *res = &resources[i];
        dmn_lockspace *ls = dmn_lockspaces_find(reg, res->lockspace);
        dmn_holding *h;

        if (lease_acquire_one(reg, ls, res, owner, batch, &h, &leases[i], err) < 0)
            goto out;
        if (h != NULL)
            taken[ntaken++] = h;
    }
    /* Everything is locked and checked: now write the records and generations. */
    for (size_t i = 0; i < ntaken; i++) {
        if (lease_commit(reg, taken[i]->lease, err) < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        fill_generation(gens != NULL ? &gens[i] : NULL, leases[i], true);
    reg->acquires += ntaken;
    ret = 0;
 out:
    if (ret < 0 && ntaken > 0) {
        /* All or nothing (ARCHITECTURE invariant 8): undo in reverse order. */
        VML_INFO("batch for owner pid %u failed: releasing the %zu resource(s) it took",
                 owner->pid, ntaken);
        while (ntaken > 0)
            dmn_holding_release(reg, taken[--ntaken]);
    }
    free(leases);
    free(taken);
    return ret;
}

int dmn_lease_release(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      unsigned int owner_pid, vml_ext_generation *gen, vml_error *err)
{
    dmn_lease *lease = dmn_hash_get(ls->leases, name, strlen(name));
    dmn_holding *h;

    fill_generation(gen, NULL, false);
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
    fill_generation(gen, lease, true);
    dmn_holding_release(reg, h);
    return 0;
}

int dmn_lease_release_batch(dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                            unsigned int owner_pid, vml_ext_generation *gens, vml_error *err)
{
    vml_error first = { 0 };

    for (size_t i = 0; i < n; i++) {
        dmn_lockspace *ls = dmn_lockspaces_find(reg, resources[i].lockspace);
        vml_ext_generation *gen = gens != NULL ? &gens[i] : NULL;
        vml_error one = { 0 };

        fill_generation(gen, NULL, false);
        if (ls == NULL)
            vml_error_set(&one, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "Lockspace for path %s does not exist", resources[i].lockspace);
        else
            dmn_lease_release(reg, ls, resources[i].name, owner_pid, gen, &one);
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

void dmn_lease_inquire(const dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                       unsigned int owner_pid, vml_ext_generation *gens)
{
    for (size_t i = 0; i < n; i++) {
        const dmn_lease *lease = dmn_lockspaces_find_lease(reg, resources[i].lockspace,
                                                           resources[i].name);

        fill_generation(&gens[i], lease,
                        lease != NULL && lease_find_holding(lease, owner_pid) != NULL);
    }
}

/* ---- snapshots and restore ---- */

/* The fields of lease's snapshot that are numbers; *snap zeroed first. */
static void snapshot_numbers(const dmn_lease *lease, vml_snap_lease *snap)
{
    memset(snap, 0, sizeof(*snap));
    snap->id = lease->id;
    snap->flags = lease->flags;
    snap->dev = lease->inode.dev;
    snap->ino = lease->inode.ino;
    snap->generation = lease->generation;
    snap->run_start = lease->run_start;
    snap->epoch = lease->epoch;
    snap->state_flags = lease->state;
    snap->seq = lease->seq;
}

void dmn_lease_snapshot_view(const dmn_lease *lease, size_t nholders, vml_snap_lease *snap,
                             vml_snap_holder *hold)
{
    snapshot_numbers(lease, snap);
    snap->lockspace = lease->lockspace->path;
    snap->name = lease->name;
    snap->path = lease->path;
    snap->disk = lease->disk;
    for (size_t i = 0; i < nholders; i++) {
        const dmn_holding *h = lease->holders[i];

        hold[i].identity = h->owner->identity;
        hold[i].start_time = h->owner->start_time;
        hold[i].since_usec = h->since_usec;
        hold[i].on_lockfailure = h->owner->on_lockfailure;
        hold[i].uri = h->owner->uri != NULL ? h->owner->uri : (char *)"";
    }
    snap->holders.holders_len = (u_int)nholders;
    snap->holders.holders_val = hold;
}

int dmn_lease_snapshot(const dmn_lease *lease, size_t max_holders, vml_snap_lease *snap,
                       vml_error *err)
{
    size_t n = lease->nholders < max_holders ? lease->nholders : max_holders;

    snapshot_numbers(lease, snap);
    if ((snap->lockspace = strdup(lease->lockspace->path)) == NULL ||
        (snap->name = strdup(lease->name)) == NULL ||
        (snap->path = strdup(lease->path)) == NULL ||
        (snap->disk = strdup(lease->disk)) == NULL ||
        (n > 0 && (snap->holders.holders_val = calloc(n, sizeof(vml_snap_holder))) == NULL))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const dmn_holding *h = lease->holders[i];
        vml_snap_holder *out = &snap->holders.holders_val[i];

        snap->holders.holders_len = (u_int)(i + 1);
        out->start_time = h->owner->start_time;
        out->since_usec = h->since_usec;
        out->on_lockfailure = h->owner->on_lockfailure;
        if (dmn_identity_copy(&out->identity, &h->owner->identity, err) < 0 ||
            (out->uri = strdup(h->owner->uri != NULL ? h->owner->uri : "")) == NULL)
            goto nomem;
    }
    return 0;
 nomem:
    vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot snapshot lease %s",
                        lease->path);
    return -1;
}

int dmn_lease_restore(dmn_lockspaces *reg, const vml_snap_lease *snap, int fd,
                      dmn_owner *const *holders, const int64_t *since, size_t nholders,
                      bool keeper, dmn_lease **out, vml_error *err)
{
    dmn_lockspace *ls = dmn_lockspaces_find(reg, snap->lockspace);
    dmn_lease *lease = NULL;
    size_t alive = 0;
    int ret = -1;

    *out = NULL;
    if (ls == NULL && dmn_lockspaces_add(reg, snap->lockspace, &ls, err) < 0)
        goto out;
    if (dmn_lockspace_check_name(ls, snap->name, err) < 0)
        goto out;
    if (dmn_hash_get(ls->leases, snap->name, strlen(snap->name)) != NULL) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_INTERNAL_ERROR,
                      "lease '%s' in lockspace '%s' is handed over twice", snap->name,
                      snap->lockspace);
        goto out;
    }
    lease = calloc(1, sizeof(*lease));
    if (lease != NULL)
        lease->fd = -1;         /* fd is taken over below: lease_free must not close 0 */
    if (lease == NULL || lease_set_strings(lease, ls, snap->name, snap->disk) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot restore lease %s",
                            snap->name);
        goto out;
    }
    lease->lockspace = ls;
    lease->fd = fd;
    fd = -1;
    lease->flags = snap->flags & (FLAG_SHARED | FLAG_AUTOCREATE);
    lease->inode.dev = snap->dev;
    lease->inode.ino = snap->ino;
    lease->id = snap->id;
    lease->generation = snap->generation;
    lease->run_start = snap->run_start;
    lease->epoch = snap->epoch;
    lease->state = snap->state_flags &
                   (VML_SNAP_RECORD | VML_SNAP_LOST | VML_SNAP_RECORD_WRITTEN | VML_SNAP_CREATED);
    lease->seq = snap->seq;
    if (lease->id >= reg->next_id)
        reg->next_id = lease->id + 1;
    if (lease->seq >= reg->next_seq)
        reg->next_seq = lease->seq + 1 == 0 ? 1 : lease->seq + 1;
    if (lease_index(reg, lease, err) < 0)
        goto out;
    lease->keeper = keeper ? DMN_KEEPER_SENT : DMN_KEEPER_NONE;
    for (size_t i = 0; i < nholders; i++) {
        dmn_holding *h;

        if (holders[i] == NULL || lease_find_holding(lease, holders[i]->pid) != NULL)
            continue;
        if (lease_add_holder(lease, holders[i], 0, since[i], &h, err) < 0)
            goto out_indexed;
        alive++;
    }
    if (alive == 0) {
        VML_INFO("lease %s: every holder exited meanwhile; releasing it", lease->path);
        /* Its record keeps naming the dead holder (WHO shows it stale: no lock) and its
         * generation; the file stays. */
        lease->state &= ~(unsigned int)(VML_SNAP_RECORD_WRITTEN | VML_SNAP_CREATED);
        lease_remove(reg, lease);
        lease = NULL;
        ret = 0;
        goto out;
    }
    if (alive < nholders)
        dmn_lease_journal_update(reg, lease);
    else if (!keeper)
        journal_add(reg, lease);
    /* Held: the lease carries its generation; a handover also gave it as a table entry. */
    if (carries_generation(reg, lease))
        generation_forget(reg, ls->path, lease->name);
    *out = lease;
    lease = NULL;
    ret = 0;
    goto out;
 out_indexed:
    /* Out of memory while restoring: keep the lock (the keeper or the caller's exit keeps
     * it safe) rather than release a lease its holders still rely on. */
    lease_abandon_one(reg, lease);
    lease = NULL;
 out:
    if (fd >= 0)
        close(fd);
    lease_free(lease);
    return ret;
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
        set_busy(err, name, NULL, lease, NULL, NULL);
        goto out;
    }
    if ((path = lease_path(ls, name)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot handle resource %s", name);
        goto out;
    }
    if (lstat(path, &st) == 0 && (lease = inode_lookup(reg, &st)) != NULL) {
        set_busy(err, name, NULL, lease, lease->path, NULL);
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
