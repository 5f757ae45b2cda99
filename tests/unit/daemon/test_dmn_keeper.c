/* test_dmn_keeper.c: the keeper end to end through the daemon's API: hand-offs, a "crash", malformed messages, adoption, release, owners dying while no daemon runs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_test.h"
#include "dmn_keeper.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

static char tmpdir[64];
static char sock_path[100];
static char lsdir[128];

/* A child that lives until *release_fd is closed: an owner that is not us. */
static pid_t spawn_waiter(int *release_fd)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        char c;
        for (int fd = 3; fd < 1024; fd++) {
            if (fd != fds[0])
                close(fd);
        }
        while (read(fds[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(fds[0]);
    *release_fd = fds[1];
    return pid;
}

/* In another process: can path be write-locked now?  1 yes, 0 no (someone holds it). */
static int lockable(const char *path)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        int fd = open(path, O_RDWR);
        _exit(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 1 : 0);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool wait_gone(pid_t pid)
{
    int fd = pidfd_open(pid, 0);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    bool gone;

    if (fd < 0)
        return errno == ESRCH;
    gone = poll(&pfd, 1, 30000) == 1;
    close(fd);
    return gone;
}

/* Connect to the keeper raw, send bytes (with n_fds copies of /dev/null), and tell whether
 * the keeper then hung up on us. */
static bool keeper_hangs_up_on(const void *bytes, size_t len, int n_fds)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    int fds[4];
    char byte;
    bool hung_up;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return false;
    if (n_fds > 0) {
        struct cmsghdr *cm;

        memset(&control, 0, sizeof(control));
        for (int i = 0; i < n_fds; i++)
            fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        mh.msg_control = control.space;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_fds);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n_fds);
    }
    hung_up = sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)len && recv(s, &byte, 1, 0) == 0;
    for (int i = 0; i < n_fds; i++)
        close(fds[i]);
    close(s);
    return hung_up;
}

static void lost(void *opaque, dmn_lease *lease, const char *reason)
{
    (void)opaque;
    printf("# unexpectedly lost %s: %s\n", lease->path, reason);
}

static void test_keeper(void)
{
    dmn_lockspaces *reg = NULL;
    dmn_owners *owners = NULL;
    dmn_keeper *k = NULL;
    dmn_lockspace *ls = NULL;
    dmn_owner *owner = NULL;
    dmn_holding *h = NULL;
    vml_error err;
    int release_fd, release2_fd;
    pid_t child = spawn_waiter(&release_fd), child2 = spawn_waiter(&release2_fd);
    vml_ls_owner id = { .name = (char *)"kept", .id = 1, .pid = (u_int)child };
    vml_ext_resource2 res = { .lockspace = lsdir, .name = (char *)"a", .disk = (char *)"/img/a",
                              .flags = VML_LS_ACQUIRE_AUTOCREATE };
    char path[256];
    size_t adopted = 0, released = 0;
    unsigned int keeper_pid;

    snprintf(path, sizeof(path), "%s/a", lsdir);
    if (!VML_CHECK(dmn_lockspaces_new(&reg, &err) == 0 && dmn_owners_new(1600, &owners, &err) == 0 &&
                   dmn_lockspaces_add(reg, lsdir, &ls, &err) == 0, "registries"))
        return;
    VML_CHECK(dmn_keeper_open(sock_path, NULL, &k, &err) == 0 &&
              dmn_keeper_sync(k, reg, owners, true, &adopted, &released, lost, NULL, &err) == 0 &&
              adopted == 0, "a keeper is started and holds nothing yet");
    keeper_pid = dmn_keeper_pid(k);
    VML_CHECK(keeper_pid > 0 && (pid_t)keeper_pid != getpid(), "it reports its own pid");
    VML_CHECK(dmn_owners_get(owners, &id, &owner, &err) == 0 &&
              dmn_lease_acquire(reg, ls, &res, owner, &h, NULL, &err) == 0, "a lease is taken");
    dmn_keeper_flush(k, reg, owners);

    /* The daemon "crashes": its descriptors close without unlocking, no BYE. */
    dmn_keeper_free(k);
    dmn_lockspaces_abandon(reg);
    dmn_owners_free(owners);
    VML_CHECK(lockable(path) == 0, "after the daemon's descriptors are gone the lock is still held");
    VML_CHECK(kill((pid_t)keeper_pid, 0) == 0, "... by the keeper");

    /* Bounded, strictly decoded messages: anything else only costs the sender its connection. */
    VML_CHECK(keeper_hangs_up_on("garbage!", 8, 0), "garbage: the keeper hangs up");
    {
        static const unsigned char wrong_magic[20] = { 'X', 'X', 'X', 'X', 0, 0, 0, 1, 0, 0, 0, 1 };
        static const unsigned char add_without_fd[36] = {
            'V', 'M', 'K', 'P', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1,
            0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 1 };
        static const unsigned char drop_with_fds[32] = {
            'V', 'M', 'K', 'P', 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1,
            0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0 };
        static const unsigned char trailing[24] = {
            'V', 'M', 'K', 'P', 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 9, 9, 9, 9 };

        VML_CHECK(keeper_hangs_up_on(wrong_magic, sizeof(wrong_magic), 0),
                  "a wrong magic: hung up");
        VML_CHECK(keeper_hangs_up_on(add_without_fd, sizeof(add_without_fd), 0),
                  "an ADD naming a descriptor it does not carry: hung up");
        VML_CHECK(keeper_hangs_up_on(drop_with_fds, sizeof(drop_with_fds), 2),
                  "descriptors the items do not name: hung up (and closed)");
        VML_CHECK(keeper_hangs_up_on(trailing, sizeof(trailing), 0),
                  "trailing bytes after a message: hung up");
    }
    VML_CHECK(kill((pid_t)keeper_pid, 0) == 0 && lockable(path) == 0,
              "the keeper lives on and still holds the lock");

    /* The next daemon adopts it. */
    if (!VML_CHECK(dmn_lockspaces_new(&reg, &err) == 0 && dmn_owners_new(1600, &owners, &err) == 0,
                   "new registries"))
        return;
    VML_CHECK(dmn_keeper_open(sock_path, NULL, &k, &err) == 0 &&
              dmn_keeper_sync(k, reg, owners, true, &adopted, &released, lost, NULL, &err) == 0 &&
              adopted == 1 && released == 0 && dmn_keeper_pid(k) == keeper_pid,
              "the next daemon reaches the same keeper and adopts the lease");
    owner = dmn_owners_find(owners, (unsigned int)child);
    VML_CHECK(reg->nleases == 1 && owner != NULL && owner->nholdings == 1 && owner->pidfd >= 0 &&
              strcmp(owner->identity.name, "kept") == 0,
              "with its owner, re-watched by a pidfd, identity intact");
    VML_CHECK(dmn_lockspaces_release_owner(reg, owner) == 1, "the owner's lease is released");
    dmn_keeper_flush(k, reg, owners);
    VML_CHECK(lockable(path) == 1, "... and the lock is free: the keeper dropped its copy");

    /* An owner that dies while no daemon runs: the keeper lets go by itself. */
    id.pid = (u_int)child2;
    id.name = (char *)"orphan";
    res.name = (char *)"b";
    snprintf(path, sizeof(path), "%s/b", lsdir);
    VML_CHECK(dmn_owners_get(owners, &id, &owner, &err) == 0 &&
              dmn_lease_acquire(reg, dmn_lockspaces_find(reg, lsdir), &res, owner, &h, NULL,
                                &err) == 0, "another lease, for another owner");
    dmn_keeper_flush(k, reg, owners);
    dmn_keeper_free(k);
    dmn_lockspaces_abandon(reg);
    dmn_owners_free(owners);
    VML_CHECK(lockable(path) == 0, "the crash leaves it held by the keeper");
    close(release2_fd);
    waitpid(child2, NULL, 0);
    VML_CHECK(wait_gone((pid_t)keeper_pid),
              "its owner exits: the keeper releases it and, holding nothing, exits");
    VML_CHECK(lockable(path) == 1, "the lease is free");
    VML_CHECK(access(sock_path, F_OK) != 0, "the keeper removed its socket");
    close(release_fd);
    waitpid(child, NULL, 0);
}

static void test_bye(void)
{
    dmn_lockspaces *reg = NULL;
    dmn_owners *owners = NULL;
    dmn_keeper *k = NULL;
    vml_error err;
    unsigned int keeper_pid;

    if (dmn_lockspaces_new(&reg, &err) < 0 || dmn_owners_new(1600, &owners, &err) < 0)
        return;
    VML_CHECK(dmn_keeper_open(sock_path, NULL, &k, &err) == 0 &&
              dmn_keeper_sync(k, reg, owners, true, NULL, NULL, lost, NULL, &err) == 0,
              "a fresh keeper for a clean stop");
    keeper_pid = dmn_keeper_pid(k);
    dmn_keeper_bye(k);
    dmn_keeper_free(k);
    VML_CHECK(wait_gone((pid_t)keeper_pid), "BYE: the keeper exits");
    dmn_lockspaces_free(reg);
    dmn_owners_free(owners);
}

int main(void)
{
    char cmd[128];

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dmn_keeper.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/keeper-sock", tmpdir);
    snprintf(lsdir, sizeof(lsdir), "%s/ls", tmpdir);
    test_keeper();
    test_bye();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
