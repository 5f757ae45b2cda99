/* test_dmn_lockspace.c: unit tests of lockspaces and leases: names, creation, the inode re-check, release rules, busy messages, owners. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_test.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

static char tmpdir[64];
static dmn_lockspaces *reg;
static dmn_owners *owners;

static bool has(const char *text, const char *needle)
{
    bool found = strstr(text, needle) != NULL;

    if (!found)
        printf("#   '%s'\n#   does not contain '%s'\n", text, needle);
    return found;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void touch(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd >= 0)
        close(fd);
}

/* In another process: can path be write-locked now?  1 yes, 0 no, -1 error. */
static int lockable_now(const char *path)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        int fd = open(path, O_RDWR | O_CLOEXEC);
        _exit(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 1 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* The single-resource acquisition, as ACQUIRE_RESOURCE makes it (batch is always 0 here). */
static int acquire(dmn_lockspaces *r, dmn_lockspace *ls, const char *name, const char *disk,
                   unsigned int flags, dmn_owner *owner, uint64_t batch, dmn_holding **h,
                   vml_error *err)
{
    vml_ext_resource2 res = { .lockspace = ls->path, .name = (char *)name,
                              .disk = (char *)(disk != NULL ? disk : ""), .flags = flags };

    (void)batch;
    return dmn_lease_acquire(r, ls, &res, owner, h, NULL, err);
}

/* The first bytes of path, NUL-terminated, into buf (empty when unreadable). */
static const char *head_of(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* An owner for pid with a recognisable identity; borrowed from the registry. */
static dmn_owner *owner_for(pid_t pid, const char *name, unsigned char uuid_byte)
{
    vml_ls_owner identity = { .name = (char *)name, .id = 1, .pid = (u_int)pid };
    dmn_owner *owner = NULL;
    vml_error err;

    memset(identity.uuid, uuid_byte, sizeof(identity.uuid));
    if (dmn_owners_get(owners, &identity, &owner, &err) < 0)
        printf("#   %s\n", err.message);
    return owner;
}

/* In a forked child: close every inherited descriptor but keep, so that the pipes other
 * children wait on see EOF when the parent closes them. */
static void close_inherited(int keep)
{
    for (int fd = 3; fd < 1024; fd++) {
        if (fd != keep)
            close(fd);
    }
}

/* A child that blocks until *release_fd is closed: a live pid that is not ours. */
static pid_t spawn_waiter(int *release_fd)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        char c;
        close_inherited(fds[0]);
        while (read(fds[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(fds[0]);
    *release_fd = fds[1];
    return pid;
}

/*
 * A child that holds an OFD lock (type) on byte 0 of path, as another host's daemon would:
 * returns once the lock is held; closing *release_fd makes the child exit.
 */
static pid_t spawn_locker(const char *path, short type, int *release_fd)
{
    int ready[2], hold[2];
    pid_t pid;
    char c;

    if (pipe(ready) < 0 || pipe(hold) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        int fd;
        for (int other = 3; other < 1024; other++) {
            if (other != ready[1] && other != hold[0])
                close(other);
        }
        fd = open(path, O_RDWR);
        if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        while (read(hold[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    if (read(ready[0], &c, 1) != 1) {
        close(ready[0]);
        close(hold[1]);
        waitpid(pid, NULL, 0);
        return -1;
    }
    close(ready[0]);
    *release_fd = hold[1];
    return pid;
}

static void stop_child(pid_t pid, int release_fd)
{
    close(release_fd);
    waitpid(pid, NULL, 0);
}

static void test_names(void)
{
    dmn_lockspace *def = dmn_lockspaces_find(reg, "");
    dmn_lockspace named = { .path = (char *)"/x" };
    char long_name[300];
    vml_error err;

    VML_CHECK(def != NULL, "the default lockspace exists from the start");
    VML_CHECK(dmn_lockspace_check_name(&named, "0123abc", &err) == 0, "a plain name is fine");
    VML_CHECK(dmn_lockspace_check_name(&named, "a/b", &err) < 0 && has(err.message, "'a/b'") &&
              err.code == VIR_ERR_INVALID_ARG, "a name with '/' is INVALID_ARG naming it");
    VML_CHECK(dmn_lockspace_check_name(&named, ".", &err) < 0, "'.' is refused");
    VML_CHECK(dmn_lockspace_check_name(&named, "..", &err) < 0, "'..' is refused");
    VML_CHECK(dmn_lockspace_check_name(&named, "", &err) < 0 && has(err.message, "empty"),
              "an empty name is refused");
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    VML_CHECK(dmn_lockspace_check_name(&named, long_name, &err) < 0 && has(err.message, "255"),
              "a 256-byte name is refused");
    long_name[255] = '\0';
    VML_CHECK(dmn_lockspace_check_name(&named, long_name, &err) == 0, "a 255-byte name is fine");
    VML_CHECK(dmn_lockspace_check_name(def, "/var/lib/img.qcow2", &err) == 0,
              "the default lockspace takes absolute paths");
    VML_CHECK(dmn_lockspace_check_name(def, "img.qcow2", &err) < 0 &&
              has(err.message, "not an absolute path"), "and refuses relative ones");

    VML_CHECK(dmn_lockspace_check_path("/srv/locks", &err) == 0, "an absolute lockspace path");
    VML_CHECK(dmn_lockspace_check_path("srv/locks", &err) < 0, "a relative lockspace path is refused");
    VML_CHECK(dmn_lockspace_check_path("/srv/../etc", &err) < 0 && has(err.message, "'..'"),
              "a lockspace path with '..' is refused");
    VML_CHECK(dmn_lockspace_check_path("/srv/..foo/x", &err) == 0, "'..foo' is an ordinary name");
    VML_CHECK(dmn_lockspace_check_path("/srv/locks/..", &err) < 0, "a trailing '..' too");
}

static void test_lockspaces(void)
{
    char path[256], file[256];
    dmn_lockspace *ls = NULL;
    struct stat st;
    vml_error err;
    size_t before = reg->nlockspaces;

    snprintf(path, sizeof(path), "%s/deep/er/ls", tmpdir);
    VML_CHECK(dmn_lockspaces_add(reg, path, &ls, &err) == 0 && ls != NULL &&
              dmn_lockspaces_find(reg, path) == ls, "a lockspace is created and registered");
    VML_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
              "its directory and parents are made with mode 0700");
    VML_CHECK(reg->nlockspaces == before + 1, "the registry counts it");
    snprintf(path, sizeof(path), "%s/deep/er/ls/", tmpdir);
    VML_CHECK(dmn_lockspaces_find(reg, path) == NULL, "lockspace paths are exact strings ('/' matters)");
    snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
    touch(file);
    VML_CHECK(dmn_lockspaces_add(reg, file, NULL, &err) < 0 && err.code == VIR_ERR_INTERNAL_ERROR &&
              has(err.message, "exists, but is not a directory"),
              "a lockspace on an existing file is INTERNAL_ERROR");
    VML_CHECK(dmn_lockspaces_find(reg, file) == NULL, "and is not registered");
}

/* Hook: replace the file between open and lock, `replacements` times. */
static int replacements;
static int hook_calls;

static void replace_file(const char *path, void *opaque)
{
    (void)opaque;
    hook_calls++;
    if (replacements > 0) {
        replacements--;
        unlink(path);
        touch(path);
    }
}

static void test_recheck(dmn_owner *me)
{
    char dir[256], path[300];
    dmn_lockspace *ls = NULL;
    dmn_holding *h = NULL;
    struct stat st;
    vml_error err;

    snprintf(dir, sizeof(dir), "%s/recheck", tmpdir);
    dmn_lockspaces_add(reg, dir, &ls, &err);
    snprintf(path, sizeof(path), "%s/r1", dir);
    dmn_lockspaces_set_open_hook(reg, replace_file, NULL);

    replacements = 1;
    hook_calls = 0;
    VML_CHECK(acquire(reg, ls, "r1", NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h,
                                &err) == 0 && h != NULL,
              "a lease file replaced between open and lock is still acquired");
    VML_CHECK(hook_calls == 2, "by dropping the stale lock and locking again");
    VML_CHECK(h != NULL && stat(path, &st) == 0 && (uint64_t)st.st_ino == h->lease->inode.ino &&
              (uint64_t)st.st_dev == h->lease->inode.dev,
              "the lock is on the file the path names now");
    if (h != NULL)
        dmn_holding_release(reg, h);
    VML_CHECK(exists(path), "releasing the exclusive lease keeps its file (its record carries "
              "the generation on)");

    replacements = 1000;
    hook_calls = 0;
    VML_CHECK(acquire(reg, ls, "r2", NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h,
                                &err) < 0 && has(err.message, "replaced 16 times"),
              "a file replaced on every try: an error after 16 attempts, not a loop");
    VML_CHECK(hook_calls == DMN_LEASE_LOCK_ATTEMPTS && reg->nleases == 0,
              "exactly DMN_LEASE_LOCK_ATTEMPTS tries, nothing held");
    dmn_lockspaces_set_open_hook(reg, NULL, NULL);
}

static void test_acquire_release(dmn_owner *me, dmn_owner *other, dmn_owner *third)
{
    char dir[256], path[300], img[300], link_path[300], dev_null[] = "/dev/null";
    dmn_lockspace *ls = NULL;
    dmn_lockspace *def = dmn_lockspaces_find(reg, "");
    dmn_holding *h = NULL, *h2 = NULL, *h3 = NULL;
    vml_error err;
    int release_fd;
    pid_t locker;
    uint64_t conflicts;

    snprintf(dir, sizeof(dir), "%s/ls2", tmpdir);
    dmn_lockspaces_add(reg, dir, &ls, &err);
    snprintf(path, sizeof(path), "%s/lease", dir);

    VML_CHECK(acquire(reg, ls, "lease", NULL, 0, me, 0, &h, &err) < 0 &&
              err.code == VIR_ERR_SYSTEM_ERROR && has(err.message, path),
              "without AUTOCREATE a missing lease file is an error naming it");
    VML_CHECK(acquire(reg, ls, "lease", NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h,
                                &err) == 0 && exists(path), "AUTOCREATE creates the lease file");
    {
        struct stat st;
        VML_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "lease files are mode 0600");
    }
    /* tmpdir is ext4, xfs, btrfs, overlayfs or tmpfs in every setup that runs this.  Before
     * Linux 6.8 (no unique mount id) the daemon asks the filesystem at the release instead. */
    {
        struct statx stx;
        bool unique = statx(AT_FDCWD, path, 0, 0x4000U /* STATX_MNT_ID_UNIQUE */, &stx) == 0 &&
                      (stx.stx_mask & 0x4000U);

        VML_CHECK(h != NULL && h->lease->locality == (unique ? DMN_LOCKS_LOCAL
                                                             : DMN_LOCKS_UNKNOWN),
                  "the lease knows its filesystem keeps locks locally (what a release's DROP "
                  "needs), when the kernel names mounts uniquely");
    }
    VML_CHECK(reg->nlocality <= 1, "and that is asked of the filesystem once per mount at most");
    conflicts = reg->conflicts;
    /* ARCHITECTURE daemon invariant 7: held in the same mode already, granted as it stands
     * (libvirt's hot-plug while paused, then resume). */
    VML_CHECK(acquire(reg, ls, "lease", NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h2,
                                &err) == 0 && h2 == h && me->nholdings == 1 &&
              reg->nleases == 1 && h->lease->nholders == 1 && h->lease->generation == 1,
              "the same owner acquiring again gets it as it stands: one holding, same generation");
    VML_CHECK(acquire(reg, ls, "lease", NULL, VML_LS_ACQUIRE_SHARED, me, 0, &h2, &err) < 0 &&
              err.code == VIR_ERR_RESOURCE_BUSY,
              "... but asking for it shared while holding it exclusive is busy");
    VML_CHECK(acquire(reg, ls, "lease", "/img/x.raw", VML_LS_ACQUIRE_SHARED, other, 0,
                                &h2, &err) < 0 && err.code == VIR_ERR_RESOURCE_BUSY &&
              err.domain == VIR_FROM_LOCKSPACE &&
              has(err.message, "resource busy: Lockspace resource 'lease' (disk '/img/x.raw') is locked by domain 'me' (uuid 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a, pid "),
              "shared against exclusive is busy, naming the holder domain, uuid and pid");
    VML_CHECK(reg->conflicts == conflicts + 2, "busy answers are counted as conflicts");
    VML_CHECK(lockable_now(path) == 0, "held");
    VML_CHECK(dmn_lease_release(reg, ls, "lease", (unsigned int)other->pid, NULL, &err) < 0 &&
              err.code == VIR_ERR_INTERNAL_ERROR && err.domain == VIR_FROM_LOCKSPACE &&
              has(err.message, "does not hold the resource lock"),
              "release by an owner that does not hold it: INTERNAL_ERROR");
    {
        char text[DMN_RECORD_SIZE + 1];

        VML_CHECK(has(head_of(path, text, sizeof(text)),
                      "vmlockd-owner-record 1\nstate held\ngeneration 1\n") &&
                  has(text, "\ndomain me\n") && has(text, "\nowner_pid "),
                  "an exclusive acquisition writes a held owner record, generation 1");
    }
    VML_CHECK(dmn_lease_release(reg, ls, "lease", (unsigned int)me->pid, NULL, &err) == 0 &&
              exists(path) && me->nholdings == 0, "release by the holder keeps the lease file");
    {
        char text[DMN_RECORD_SIZE + 1];

        VML_CHECK(has(head_of(path, text, sizeof(text)),
                      "vmlockd-owner-record 1\nstate free\ngeneration 1\n") &&
                  has(text, "\nlast_domain me\n") && has(text, "\nreleased_at "),
                  "and its record says free, generation kept, naming the last holder");
    }
    VML_CHECK(dmn_lease_release(reg, ls, "lease", (unsigned int)me->pid, NULL, &err) < 0 &&
              err.code == VIR_ERR_RESOURCE_BUSY && has(err.message, "'lease' is not locked"),
              "a second release: 'is not locked'");

    /* shared: holders accumulate; the file goes with the last one */
    VML_CHECK(acquire(reg, ls, "s", NULL, VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE,
                                me, 0, &h, &err) == 0 &&
              acquire(reg, ls, "s", NULL, VML_LS_ACQUIRE_SHARED, other, 0, &h2, &err) == 0,
              "two owners share a shared lease");
    VML_CHECK(acquire(reg, ls, "s", NULL, VML_LS_ACQUIRE_SHARED, me, 0, &h3, &err) == 0 &&
              h3 == h && h->lease->nholders == 2,
              "a shared holder taking it again keeps its one holding");
    VML_CHECK(acquire(reg, ls, "s", NULL, 0, third, 0, &h3, &err) < 0 &&
              has(err.message, "is locked by domain 'me'") && has(err.message, " and 1 other(s)"),
              "exclusive against two sharers: busy naming the first and counting the others");
    snprintf(path, sizeof(path), "%s/s", dir);
    dmn_holding_release(reg, h);
    VML_CHECK(exists(path) && reg->nleases > 0, "the lease stays while a sharer remains");
    dmn_holding_release(reg, h2);
    VML_CHECK(exists(path) && reg->nleases == 0, "the last sharer's release keeps the file");
    {
        char text[16];
        VML_CHECK(head_of(path, text, sizeof(text))[0] == '\0',
                  "sharers never write an owner record");
    }

    /* a shared autocreated lease also read-locked by another host stays on disk */
    VML_CHECK(acquire(reg, ls, "s", NULL, VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE,
                                me, 0, &h, &err) == 0, "a shared autocreated lease");
    locker = spawn_locker(path, F_RDLCK, &release_fd);
    if (VML_CHECK(locker > 0, "another process read-locks the same file")) {
        dmn_holding_release(reg, h);
        VML_CHECK(exists(path), "releasing it keeps the file another host still holds");
        stop_child(locker, release_fd);
    }
    unlink(path);

    /* held by another process: the kernel says no */
    snprintf(path, sizeof(path), "%s/ext", dir);
    touch(path);
    locker = spawn_locker(path, F_WRLCK, &release_fd);
    if (VML_CHECK(locker > 0, "another process write-locks a lease file")) {
        VML_CHECK(acquire(reg, ls, "ext", NULL, VML_LS_ACQUIRE_SHARED, me, 0, &h, &err) < 0 &&
                  has(err.message, "Lockspace resource 'ext' is locked by another process or host"),
                  "acquiring it is busy: 'locked by another process or host'");
        VML_CHECK(reg->nleases == 0 && me->nholdings == 0, "and nothing is recorded");
        stop_child(locker, release_fd);
        VML_CHECK(acquire(reg, ls, "ext", NULL, 0, me, 0, &h, &err) == 0,
                  "once that process exits the lease is granted");
        dmn_holding_release(reg, h);
        VML_CHECK(exists(path), "a lease file that was not autocreated is never removed");
    }

    /* the default lockspace: disk paths, aliases, file types */
    snprintf(img, sizeof(img), "%s/disk.img", tmpdir);
    snprintf(link_path, sizeof(link_path), "%s/disk-link.img", tmpdir);
    touch(img);
    if (symlink(img, link_path) < 0)
        printf("# symlink failed\n");
    VML_CHECK(acquire(reg, def, img, NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h, &err) == 0,
              "a disk image in the default lockspace");
    VML_CHECK(acquire(reg, def, link_path, NULL, 0, other, 0, &h2, &err) < 0 &&
              has(err.message, "is locked by domain 'me'") &&
              has(err.message, "through '"),
              "a symlink to it is busy, naming the holder through the other path");
    VML_CHECK(acquire(reg, def, dev_null, NULL, 0, other, 0, &h2, &err) < 0 &&
              has(err.message, "not a regular file or a block device"),
              "a character device is refused");
    VML_CHECK(acquire(reg, def, tmpdir, NULL, 0, other, 0, &h2, &err) < 0,
              "a directory is refused");
    dmn_holding_release(reg, h);
    VML_CHECK(exists(img), "a disk image is never removed, even with AUTOCREATE");
    {
        char nolock[300];
        snprintf(nolock, sizeof(nolock), "%s/never-created.img", tmpdir);
        VML_CHECK(acquire(reg, def, nolock, NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h,
                                    &err) < 0 && !exists(nolock),
                  "the default lockspace never creates a missing disk");
    }

    /* a symlink as a lease file in a named lockspace */
    snprintf(path, sizeof(path), "%s/sym", dir);
    if (symlink(img, path) < 0)
        printf("# symlink failed\n");
    VML_CHECK(acquire(reg, ls, "sym", NULL, 0, me, 0, &h, &err) < 0 &&
              has(err.message, "symbolic link"), "a lease file that is a symlink is refused");

    /* CREATE_RESOURCE / DELETE_RESOURCE */
    snprintf(path, sizeof(path), "%s/made", dir);
    VML_CHECK(dmn_resource_create(reg, ls, "made", &err) == 0 && exists(path),
              "CREATE_RESOURCE makes the lease file");
    VML_CHECK(acquire(reg, ls, "made", NULL, 0, me, 0, &h, &err) == 0 &&
              dmn_resource_delete(reg, ls, "made", &err) < 0 && err.code == VIR_ERR_RESOURCE_BUSY &&
              exists(path), "DELETE_RESOURCE of a held resource is busy and keeps the file");
    dmn_holding_release(reg, h);
    VML_CHECK(dmn_resource_delete(reg, ls, "made", &err) == 0 && !exists(path),
              "DELETE_RESOURCE removes an unheld file");
    VML_CHECK(dmn_resource_delete(reg, ls, "made", &err) == 0, "deleting a missing file is fine");
    VML_CHECK(dmn_resource_create(reg, def, img, &err) < 0 && err.code == VIR_ERR_OPERATION_INVALID &&
              dmn_resource_delete(reg, def, img, &err) < 0 && exists(img),
              "the default lockspace's disks are never created or deleted");
    VML_CHECK(dmn_resource_create(reg, ls, "../escape", &err) < 0 && err.code == VIR_ERR_INVALID_ARG,
              "CREATE_RESOURCE checks the name");
}

static void test_batch(dmn_owner *me, dmn_owner *other)
{
    char dir[256], path_a[300];
    dmn_lockspace *ls = NULL;
    vml_error err;
    vml_ext_resource2 res[3];
    uint64_t acquires;

    snprintf(dir, sizeof(dir), "%s/batch", tmpdir);
    dmn_lockspaces_add(reg, dir, &ls, &err);
    snprintf(path_a, sizeof(path_a), "%s/a", dir);

    res[0] = (vml_ext_resource2){ .lockspace = dir, .name = "s", .disk = "/d/s",
                                 .flags = VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE };
    res[1] = res[0];
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 2, me, NULL, &err) == 0 && me->nholdings == 1,
              "a shared resource twice in one batch is taken once");
    res[1].flags = VML_LS_ACQUIRE_AUTOCREATE;
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 2, other, NULL, &err) < 0 &&
              err.code == VIR_ERR_RESOURCE_BUSY && other->nholdings == 0,
              "the same resource shared then exclusive in one batch conflicts; nothing kept");
    res[0].flags = res[1].flags = VML_LS_ACQUIRE_AUTOCREATE;
    res[0].name = res[1].name = "x";
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 2, other, NULL, &err) == 0 &&
              other->nholdings == 1, "an exclusive resource twice in one batch is taken once");
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 1, other, NULL, &err) == 0 &&
              other->nholdings == 1, "... and again in a later batch: still one holding");
    res[1] = (vml_ext_resource2){ .lockspace = dir, .name = "s", .disk = "/d/s", .flags = 0 };
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 2, other, NULL, &err) < 0 &&
              other->nholdings == 1 && dmn_lockspaces_find_lease(reg, dir, "x") != NULL,
              "a failed batch naming a resource held before it leaves that one held");
    VML_CHECK(dmn_lease_release(reg, ls, "x", (unsigned int)other->pid, NULL, &err) == 0 &&
              other->nholdings == 0 && dmn_lockspaces_find_lease(reg, dir, "x") == NULL,
              "one release frees it, however often it was granted");
    acquires = reg->acquires;
    res[0] = (vml_ext_resource2){ .lockspace = dir, .name = "a", .disk = "/d/a",
                                 .flags = VML_LS_ACQUIRE_AUTOCREATE };
    res[1] = (vml_ext_resource2){ .lockspace = dir, .name = "b", .disk = "/d/b",
                                 .flags = VML_LS_ACQUIRE_AUTOCREATE };
    res[2] = (vml_ext_resource2){ .lockspace = dir, .name = "s", .disk = "/d/s", .flags = 0 };
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 3, other, NULL, &err) < 0 &&
              has(err.message, "'s' (disk '/d/s') is locked by domain 'me'"),
              "a batch failing at its third resource reports that resource");
    VML_CHECK(!exists(path_a) && other->nholdings == 0 && reg->acquires == acquires,
              "and undoes the first two: files removed, nothing held, nothing counted");
    res[2].flags = VML_LS_ACQUIRE_SHARED;
    VML_CHECK(dmn_lease_acquire_batch(reg, res, 3, other, NULL, &err) == 0 && other->nholdings == 3 &&
              reg->acquires == acquires + 3, "the same batch with a shared third resource succeeds");
    VML_CHECK(dmn_lease_release_batch(reg, res, 3, (unsigned int)other->pid, NULL, &err) == 0 &&
              other->nholdings == 0 && exists(path_a),
              "BATCH_RELEASE releases all of them (the files stay)");
    VML_CHECK(dmn_lockspaces_release_owner(reg, me) == 1 && me->nholdings == 0,
              "releasing everything of an owner counts its leases");
}

/* One acquisition with an expected generation (epoch 0 = a lease-file generation). */
static int acquire_expect(dmn_lockspace *ls, const char *name, const char *disk,
                          unsigned int flags, dmn_owner *owner, uint64_t expected,
                          uint64_t epoch, vml_ext_generation *gen, dmn_holding **h,
                          vml_error *err)
{
    vml_ext_resource2 res = { .lockspace = ls->path, .name = (char *)name, .disk = (char *)disk,
                              .flags = flags | VML_EXT_RESOURCE_EXPECT_GENERATION,
                              .expected_generation = expected, .expected_epoch = epoch };

    return dmn_lease_acquire(reg, ls, &res, owner, h, gen, err);
}

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            printf("# write failed\n");
        close(fd);
    }
}

typedef struct generation_count {
    const char *name;
    size_t n;
    uint64_t generation;
} generation_count;

static void count_generation(const dmn_generation *g, void *opaque)
{
    generation_count *c = opaque;

    if (strcmp(g->key + strlen(g->key) + 1, c->name) == 0) {
        c->n++;
        c->generation = g->generation;
    }
}

/* How many daemon-local table entries name resource name (any lockspace); *generation
 * (may be NULL) gets the last one's generation. */
static size_t count_generations(const dmn_lockspaces *r, const char *name, uint64_t *generation)
{
    generation_count c = { .name = name, .n = 0, .generation = 0 };

    dmn_lockspaces_each_generation(r, count_generation, &c);
    if (generation != NULL)
        *generation = c.generation;
    return c.n;
}

/* Whether the registry's table has an entry for the default lockspace's name. */
static bool in_table(const char *name)
{
    char key[512];
    size_t len = strlen(name);

    if (len + 2 > sizeof(key))
        return false;
    key[0] = '\0';                 /* lockspace "", NUL, name */
    memcpy(key + 1, name, len);
    return dmn_hash_get(reg->generations, key, 1 + len) != NULL;
}

static void test_generations(dmn_owner *me, dmn_owner *other, pid_t twin_pid)
{
    uint64_t table_gen = 0;
    char dir[256], path[300], img[300], text[DMN_RECORD_SIZE + 1];
    dmn_lockspace *ls = NULL, *def = dmn_lockspaces_find(reg, "");
    dmn_owner *twin = owner_for(twin_pid, "me-migrated", 0x0a);
    vml_ext_resource2 plain = { .disk = (char *)"/img/g" };
    vml_ext_generation gen;
    dmn_holding *h = NULL;
    vml_error err;
    int release_fd;
    pid_t locker;

    snprintf(dir, sizeof(dir), "%s/gens", tmpdir);
    dmn_lockspaces_add(reg, dir, &ls, &err);
    snprintf(path, sizeof(path), "%s/g", dir);
    plain.lockspace = dir;
    plain.name = (char *)"g";
    plain.flags = VML_LS_ACQUIRE_AUTOCREATE;

    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) == 0 && gen.held &&
              gen.generation == 1 && gen.epoch == 0,
              "the first exclusive acquisition is generation 1, kept in the lease file (epoch 0)");
    VML_CHECK(dmn_lease_release(reg, ls, "g", me->pid, &gen, &err) == 0 && gen.generation == 1,
              "its release reports generation 1");
    VML_CHECK(acquire_expect(ls, "g", "/img/g", VML_LS_ACQUIRE_AUTOCREATE, me, 1, 0, &gen, &h,
                             &err) == 0 && gen.generation == 2,
              "resuming with generation 1 when nobody took it: granted, generation 2");
    dmn_holding_release(reg, h);
    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, other, &h, &gen, &err) == 0 &&
              gen.generation == 3, "another domain takes it: generation 3");
    dmn_holding_release(reg, h);
    VML_CHECK(acquire_expect(ls, "g", "/img/g", VML_LS_ACQUIRE_AUTOCREATE, me, 2, 0, &gen, &h,
                             &err) < 0 && err.code == VIR_ERR_OPERATION_INVALID &&
              err.domain == VIR_FROM_LOCKSPACE &&
              has(err.message, "disk '/img/g' was acquired by domain 'other' (uuid 0b0b0b0b") &&
              has(err.message, "while domain 'me' did not hold it (generation 3, expected 2)"),
              "resuming with generation 2 after another domain held it: refused, naming both");
    VML_CHECK(reg->nleases == 0 && has(head_of(path, text, sizeof(text)), "state free\ngeneration 3\n"),
              "the refused acquisition left nothing held and the record untouched");
    /* The same domain's migration target (same uuid, another QEMU) does not fence it. */
    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) == 0 && gen.generation == 4,
              "the domain takes it again: generation 4");
    dmn_holding_release(reg, h);
    VML_CHECK(twin != NULL && dmn_lease_acquire(reg, ls, &plain, twin, &h, &gen, &err) == 0 &&
              gen.generation == 5, "its migration target (same uuid) takes it: generation 5");
    dmn_holding_release(reg, h);
    VML_CHECK(acquire_expect(ls, "g", "/img/g", VML_LS_ACQUIRE_AUTOCREATE, me, 4, 0, &gen, &h,
                             &err) == 0, "the source may resume with generation 4: only its own "
              "domain held the lease since");
    dmn_holding_release(reg, h);
    VML_CHECK(has(head_of(path, text, sizeof(text)), "generation 6\nrun_start 4\n"),
              "the record keeps the run of one domain (run_start 4)");

    /* Sharers never move the generation. */
    plain.flags = VML_LS_ACQUIRE_SHARED;
    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, other, &h, &gen, &err) == 0 &&
              gen.generation == 6, "a shared acquisition reports the last exclusive generation");
    dmn_holding_release(reg, h);
    VML_CHECK(has(head_of(path, text, sizeof(text)), "state free\ngeneration 6\n"),
              "... and writes nothing");

    /* Direct mode: the generation lives in this daemon, named by its epoch. */
    snprintf(img, sizeof(img), "%s/gen.img", tmpdir);
    touch(img);
    plain.lockspace = (char *)"";
    plain.name = img;
    plain.flags = 0;
    VML_CHECK(dmn_lease_acquire(reg, def, &plain, me, &h, &gen, &err) == 0 &&
              gen.generation == 1 && gen.epoch == reg->epoch && reg->epoch != 0,
              "direct mode: generation 1 in this daemon's epoch");
    VML_CHECK(!in_table(img), "while it is held the lease carries it: no table entry "
                              "(memory per held lease)");
    VML_CHECK(count_generations(reg, img, &table_gen) == 1 && table_gen == 1,
              "... and the handover walk still visits it (generation 1), once");
    dmn_holding_release(reg, h);
    VML_CHECK(in_table(img) && count_generations(reg, img, &table_gen) == 1 && table_gen == 1,
              "its release puts generation 1 into the daemon's table");
    VML_CHECK(dmn_lease_acquire(reg, def, &plain, me, &h, &gen, &err) == 0 &&
              gen.generation == 2 && !in_table(img),
              "acquiring it again continues from the table (generation 2) and takes it out");
    dmn_holding_release(reg, h);
    VML_CHECK(in_table(img) && count_generations(reg, img, &table_gen) == 1 && table_gen == 2,
              "... and its release puts generation 2 back");
    VML_CHECK(acquire_expect(def, img, img, 0, other, 7, reg->epoch + 1, &gen, &h, &err) == 0,
              "an expectation from another daemon's epoch cannot be checked: granted (logged)");
    dmn_holding_release(reg, h);
    VML_CHECK(acquire_expect(def, img, img, 0, me, 1, reg->epoch, &gen, &h, &err) < 0 &&
              has(err.message, "was acquired by domain 'other'") && has(err.message, "on this host"),
              "... but one of this epoch is: refused after another domain took the disk");
    VML_CHECK(head_of(img, text, sizeof(text))[0] == '\0', "a disk image is never written to");

    /* A lease file with other content is never written; its generation stays here. */
    snprintf(path, sizeof(path), "%s/foreign", dir);
    write_text(path, "sanlock lease area\n");
    plain.lockspace = dir;
    plain.name = (char *)"foreign";
    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) == 0 &&
              gen.epoch == reg->epoch, "a foreign lease file: the generation is daemon-local");
    dmn_holding_release(reg, h);
    VML_CHECK(strcmp(head_of(path, text, sizeof(text)), "sanlock lease area\n") == 0,
              "... and its content is untouched");

    /* Busy against another host: its record names the holder. */
    snprintf(path, sizeof(path), "%s/remote", dir);
    write_text(path, "vmlockd-owner-record 1\nstate held\ngeneration 9\nrun_start 9\n"
                     "host far.example\nboot_id b\ndaemon_pid 77\nowner_pid 4321\n"
                     "domain faraway\nuuid 01010101-0101-0101-0101-010101010101\n"
                     "acquired_at 1795000000000000 x\nend\n");
    plain.name = (char *)"remote";
    plain.flags = 0;
    locker = spawn_locker(path, F_WRLCK, &release_fd);
    if (VML_CHECK(locker > 0, "another host write-locks a lease file with a record")) {
        VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) < 0 &&
                  has(err.message, "Lockspace resource 'remote' (disk '/img/g') is locked by "
                      "domain 'faraway' (uuid 01010101-0101-0101-0101-010101010101, pid 4321) "
                      "on host far.example since 2026-"),
                  "the busy error names the holder from the record");
        stop_child(locker, release_fd);
    }
    locker = spawn_locker(path, F_RDLCK, &release_fd);
    if (VML_CHECK(locker > 0, "another host read-locks it")) {
        VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) < 0 &&
                  has(err.message, "is locked by another process or host (shared)"),
                  "a shared lock elsewhere: the (stale) record is not believed");
        stop_child(locker, release_fd);
    }
    VML_CHECK(dmn_lease_acquire(reg, ls, &plain, me, &h, &gen, &err) == 0 && gen.generation == 10,
              "once free it is granted, continuing the record's generation (10)");
    dmn_holding_release(reg, h);
    dmn_owners_forget_if_idle(owners, twin);
}

static void test_owners(void)
{
    vml_ls_owner identity = { .name = (char *)"ghost", .id = 1, .pid = 0 };
    dmn_owner *owner = NULL;
    vml_error err;
    pid_t gone = fork();
    char uuid[37];
    const char raw[16] = { 0x12, 0x34, 0x56, 0x78, (char)0x9a, (char)0xbc, (char)0xde, (char)0xf0,
                           0, 1, 2, 3, 4, 5, 6, 7 };

    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    identity.pid = (u_int)gone;
    VML_CHECK(dmn_owners_get(owners, &identity, &owner, &err) < 0 &&
              err.code == VIR_ERR_OPERATION_INVALID && has(err.message, "is not a running process"),
              "an owner pid that has exited is refused: no lock nobody can release");
    identity.pid = 0;
    VML_CHECK(dmn_owners_get(owners, &identity, &owner, &err) < 0, "pid 0 is refused");
    identity.pid = 0x80000001u;
    VML_CHECK(dmn_owners_get(owners, &identity, &owner, &err) < 0, "a pid beyond pid_t is refused");
    VML_CHECK(dmn_owners_find(owners, (unsigned int)gone) == NULL, "refused owners are not recorded");
    dmn_owner_format_uuid(raw, uuid);
    VML_CHECK(strcmp(uuid, "12345678-9abc-def0-0001-020304050607") == 0, "uuid formatting");
}

/* The holder hangup: SIGTERM at once, SIGKILL from the timer, leases untouched meanwhile. */
static void test_kill(void)
{
    char dir[256];
    dmn_lockspace *ls = NULL;
    dmn_holding *h = NULL;
    vml_error err;
    int ready[2];
    pid_t victim;
    dmn_owner *owner;
    int status = 0;
    int64_t deadline = 0;
    char c;

    snprintf(dir, sizeof(dir), "%s/kill", tmpdir);
    dmn_lockspaces_add(reg, dir, &ls, &err);
    if (pipe(ready) < 0)
        return;
    victim = fork();
    if (victim == 0) {
        signal(SIGTERM, SIG_IGN);
        close_inherited(ready[1]);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1)
        printf("# the victim did not start\n");
    close(ready[0]);
    owner = owner_for(victim, "victim", 0x77);
    if (!VML_CHECK(owner != NULL, "a live child is a valid owner"))
        return;
    VML_CHECK(dmn_owners_holder_closed(owners, owner, 1000) == DMN_HANGUP_NOTHING,
              "a hangup of an owner holding nothing kills nothing");
    acquire(reg, ls, "v", NULL, VML_LS_ACQUIRE_AUTOCREATE, owner, 0, &h, &err);
    VML_CHECK(dmn_owners_holder_closed(owners, owner, 1000) == DMN_HANGUP_SIGNALLED &&
              owner->kill_pending && owners->kills == 1,
              "a hangup of an owner holding a lease: SIGTERM sent and counted");
    VML_CHECK(dmn_owners_holder_closed(owners, owner, 1000) == DMN_HANGUP_NOTHING &&
              owners->kills == 1, "a second hangup does not signal again");
    VML_CHECK(dmn_owners_next_deadline(owners, &deadline) && deadline == 1000 + 1600,
              "the SIGKILL is due owner_kill_grace_ms later");
    dmn_owners_run_timers(owners, 2599);
    VML_CHECK(!owner->sigkill_sent, "not before its deadline");
    VML_CHECK(owner->nholdings == 1 && reg->nleases > 0,
              "the lease stays held while the process may still run");
    dmn_owners_run_timers(owners, 2600);
    VML_CHECK(owner->sigkill_sent && !dmn_owners_next_deadline(owners, &deadline),
              "at its deadline SIGKILL is sent");
    waitpid(victim, &status, 0);
    VML_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the owner that ignored SIGTERM died of SIGKILL");
    VML_CHECK(dmn_lockspaces_release_owner(reg, owner) == 1, "its exit releases its lease");
    dmn_owners_remove(owners, owner);
}

/*
 * The lease check verifies locks in a forked probe that shares every lease's open file
 * description.  A lease released after the fork must stay free: the probe used to
 * re-assert a lock it did not find, which locked the file again until the probe exited,
 * and the daemon's next acquisition was refused as busy (issue 3's "spurious busy").
 */
static void test_verify_in_probe(dmn_owner *me)
{
    char dir[256], path[300];
    dmn_lockspace *ls = NULL;
    dmn_holding *h = NULL;
    dmn_lease *lease;
    vml_error err;
    int go[2], verdict[2];
    signed char rcs[2] = { -9, -9 };
    pid_t probe;

    snprintf(dir, sizeof(dir), "%s/ls-probe", tmpdir);
    snprintf(path, sizeof(path), "%s/lease", dir);
    if (!VML_CHECK(dmn_lockspaces_add(reg, dir, &ls, &err) == 0 &&
                   acquire(reg, ls, "lease", NULL, VML_LS_ACQUIRE_AUTOCREATE, me, 0, &h,
                           &err) == 0 && pipe(go) == 0 && pipe(verdict) == 0,
                   "a lease for the probe test"))
        return;
    lease = dmn_lockspaces_find_lease(reg, dir, "lease");
    VML_CHECK(lease != NULL && dmn_lease_verify_lock(lease->fd, false, 0) == 0,
              "a held lock is verified from fdinfo");
    probe = fork();
    if (probe == 0) {
        char c;

        close(go[1]);
        if (read(go[0], &c, 1) == 1) {
            rcs[0] = (signed char)dmn_lease_verify_lock(lease->fd, false, 0);
            rcs[1] = (signed char)dmn_lease_verify_lock(lease->fd, false, getppid());
        }
        if (write(verdict[1], rcs, 2) != 2)
            _exit(1);
        while (read(go[0], &c, 1) > 0)      /* keep the description until told */
            ;
        _exit(0);
    }
    close(go[0]);
    close(verdict[1]);
    VML_CHECK(dmn_lease_release(reg, ls, "lease", (unsigned int)me->pid, NULL, &err) == 0,
              "the daemon releases it after the probe forked");
    VML_CHECK(write(go[1], "x", 1) == 1 && read(verdict[0], rcs, 2) == 2 && rcs[0] == 2,
              "the probe finds it not held on a local filesystem (and takes nothing)");
    VML_CHECK(rcs[1] == 3, "told which process held it, the probe sees that process closed it "
                           "(released meanwhile: nothing checked, nothing re-asserted)");
    VML_CHECK(lockable_now(path) == 1, "the file is free while the probe still lives");
    close(go[1]);
    close(verdict[0]);
    waitpid(probe, NULL, 0);
}

int main(void)
{
    vml_error err;
    int other_fd = -1, third_fd = -1, twin_fd = -1;
    pid_t other_pid, third_pid, twin_pid;
    dmn_owner *me, *other, *third;
    char cmd[128];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dmn_lockspace.XXXXXX");
    if (mkdtemp(tmpdir) == NULL || dmn_lockspaces_new(&reg, &err) < 0 ||
        dmn_owners_new(1600, &owners, &err) < 0) {
        printf("Bail out! cannot set up\n");
        return 1;
    }
    other_pid = spawn_waiter(&other_fd);
    third_pid = spawn_waiter(&third_fd);
    twin_pid = spawn_waiter(&twin_fd);
    me = owner_for(getpid(), "me", 0x0a);
    other = owner_for(other_pid, "other", 0x0b);
    third = owner_for(third_pid, "third", 0x0c);
    if (me == NULL || other == NULL || third == NULL) {
        printf("Bail out! cannot create owners\n");
        return 1;
    }
    test_names();
    test_lockspaces();
    test_recheck(me);
    test_acquire_release(me, other, third);
    test_batch(me, other);
    test_generations(me, other, twin_pid);
    test_owners();
    test_kill();
    test_verify_in_probe(me);

    dmn_lockspaces_free(reg);
    dmn_owners_free(owners);
    stop_child(other_pid, other_fd);
    stop_child(third_pid, third_fd);
    stop_child(twin_pid, twin_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
