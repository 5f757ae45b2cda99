/* test_drv_client.c: unit tests of the plugin's RPC sequences (driver/drv_client.c) against a scripted fake daemon. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drv_client.h"
#include "drv_error.h"
#include "fake_daemon.h"
#include "vml_test.h"

static char tmpdir[] = "/tmp/vmlockd-drv-client-XXXXXX";

static vml_ls_owner test_owner(void)
{
    vml_ls_owner owner = { .name = (char *)"vm1", .id = 7, .pid = 1234 };

    for (int i = 0; i < 16; i++)
        owner.uuid[i] = (char)(i + 1);
    return owner;
}

static vml_ext_resource2 res(const char *lockspace, const char *name, const char *disk,
                             unsigned int flags)
{
    vml_ext_resource2 r = {
        .lockspace = (char *)lockspace, .name = (char *)name, .disk = (char *)disk, .flags = flags,
    };
    return r;
}

/* Compare the fake's log with want, printing both on a mismatch. */
static void check_log(fake_daemon *fake, const char *want, const char *what)
{
    char *got = fake_daemon_take_log(fake);

    VML_CHECK_STR(got, want, what);
    free(got);
}

static void test_vmlockd_batch(void)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 two[] = {
        res("/ls", "a", "/img/a", VML_LS_ACQUIRE_AUTOCREATE),
        res("", "/img/b", "/img/b", VML_LS_ACQUIRE_SHARED),
    };
    vml_ext_resource2 busy[] = { res("/ls", "busy1", "/img/c", 0) };
    fake_daemon fake;
    vml_error err;

    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "vmlockd", FAKE_VMLOCKD) == 0,
                   "fake vmlockd starts"))
        return;
    drv_client_forget_peer();
    vml_error_clear(&err);
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 2,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "vmlockd: acquire succeeds");
    check_log(&fake, "BATCH_ACQUIRE vm1 1234 {/ls a /img/a 2;} { /img/b /img/b 1;}\n",
              "vmlockd: one BATCH_ACQUIRE round trip with every resource");
    VML_CHECK(!drv_client_peer_is_virtlockd(), "vmlockd: not mistaken for virtlockd");

    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, busy, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0,
              "vmlockd: a busy resource fails the acquire");
    VML_CHECK(err.code == VIR_ERR_RESOURCE_BUSY && err.domain == VIR_FROM_LOCKSPACE,
              "... with the daemon's code and domain");
    VML_CHECK_STR(err.message, "resource busy: Lockspace resource 'busy1' is locked",
                  "... and the daemon's message");
    check_log(&fake, "BATCH_ACQUIRE vm1 1234 {/ls busy1 /img/c 0;}\n",
              "vmlockd: the failed batch is the only call");

    VML_CHECK(drv_client_release(fake.sock_path, &owner, two, 2, NULL, &err) == 0,
              "vmlockd: release succeeds");
    check_log(&fake, "BATCH_RELEASE vm1 1234 {/ls a /img/a 2;} { /img/b /img/b 1;}\n",
              "vmlockd: one BATCH_RELEASE round trip");

    VML_CHECK(drv_client_create_lockspace(fake.sock_path, "/var/lib/vmlockd/files", &err) == 0,
              "CREATE_LOCKSPACE succeeds");
    check_log(&fake, "CREATE_LOCKSPACE /var/lib/vmlockd/files\n",
              "CREATE_LOCKSPACE goes over an unregistered connection");
    fake_daemon_stop(&fake);
}

static void test_register(void)
{
    vml_ls_owner owner = test_owner();
    fake_daemon fake;
    vml_error err;
    char missing[600];
    int fd = 42;
    int flags;

    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "holder", FAKE_VMLOCKD) == 0,
                   "fake daemon for the start hook starts"))
        return;
    vml_error_clear(&err);
    VML_CHECK(drv_client_register(fake.sock_path, &owner, true, &fd, &err) == 0 && fd >= 0,
              "start hook: register succeeds and returns a holder descriptor");
    check_log(&fake, "REGISTER vm1 7 1234\nRESTRICT\n", "start hook: REGISTER then RESTRICT");
    flags = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
    VML_CHECK(flags >= 0 && (flags & FD_CLOEXEC) == 0,
              "the holder descriptor survives exec (no FD_CLOEXEC)");
    if (fd >= 0)
        close(fd);

    VML_CHECK(drv_client_register(fake.sock_path, &owner, false, NULL, &err) == 0,
              "register without fd and without restrict succeeds");
    check_log(&fake, "REGISTER vm1 7 1234\n", "... and sends REGISTER only");
    fake_daemon_stop(&fake);

    snprintf(missing, sizeof(missing), "%s/nobody-listens.sock", tmpdir);
    fd = 42;
    /* XDG_RUNTIME_DIR is unset, so even an unprivileged run starts no daemon here. */
    VML_CHECK(drv_client_register(missing, &owner, true, &fd, &err) < 0 && fd == -1,
              "no daemon: the start hook fails and *fd is -1");
    VML_CHECK(strstr(err.message, "Failed to connect socket to '") != NULL &&
              strstr(err.message, missing) != NULL,
              "... with an error naming the socket path");
}

static void test_virtlockd_fallback(void)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 two[] = {
        res("/ls", "a", "/img/a", VML_LS_ACQUIRE_AUTOCREATE),
        res("/ls", "b", "/img/b", VML_LS_ACQUIRE_AUTOCREATE | VML_LS_ACQUIRE_SHARED),
    };
    vml_ext_resource2 partial[] = {
        res("/ls", "a", "/img/a", 2),
        res("/ls", "x", "/img/x", 2),
        res("/ls", "busy-b", "/img/b", 2),
        res("/ls", "c", "/img/c", 2),
    };
    vml_ext_resource2 direct_busy[] = { res("", "busy-direct", "busy-direct", 0) };
    vml_ext_resource2 release[] = {
        res("/ls", "notheld-a", "/img/a", 2),
        res("/ls", "b", "/img/b", 2),
        res("/ls", "notheld-c", "/img/c", 2),
    };
    vml_ext_resource2 dropping[] = { res("/ls", "a", "/img/a", 2), res("/ls", "drop-b", "/img/b", 2) };
    fake_daemon fake;
    vml_error err;

    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "virtlockd", FAKE_VIRTLOCKD) == 0,
                   "fake virtlockd starts"))
        return;
    drv_client_forget_peer();
    vml_error_clear(&err);
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 2,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "virtlockd: acquire succeeds through the fallback");
    check_log(&fake, "NOPROG 1\nNOPROG 1\nREGISTER vm1 7 1234\nACQUIRE /ls a 2\nACQUIRE /ls b 3\n",
              "virtlockd: probes (version 2, then 1), then REGISTER and one ACQUIRE_RESOURCE "
              "each on one connection");
    VML_CHECK(drv_client_peer_is_virtlockd(), "virtlockd is remembered");

    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "virtlockd: a second acquire succeeds");
    check_log(&fake, "REGISTER vm1 7 1234\nACQUIRE /ls a 2\n",
              "virtlockd: the second acquire does not probe again");

    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, partial, 4,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0,
              "virtlockd: a busy resource fails the acquire");
    check_log(&fake, "REGISTER vm1 7 1234\nACQUIRE /ls a 2\nACQUIRE /ls x 2\nACQUIRE /ls busy-b 2\n"
                     "RELEASE /ls x 0\nRELEASE /ls a 0\n",
              "virtlockd: what this call took is released again, newest first; c is never tried");
    VML_CHECK(err.code == VIR_ERR_RESOURCE_BUSY && err.domain == VIR_FROM_LOCKSPACE,
              "... reporting the busy error's code and domain");
    VML_CHECK_STR(err.message, "resource busy: Lockspace resource 'busy-b' is locked (disk '/img/b')",
                  "... naming the disk behind the lease");
    VML_CHECK_STR(err.detail, "Lockspace resource 'busy-b' is locked (disk '/img/b')",
                  "... in the detail libvirt gets as well");

    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, direct_busy, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0 &&
              strcmp(err.message, "resource busy: Lockspace resource 'busy-direct' is locked") == 0,
              "virtlockd: a direct lease already names the disk: nothing is added");
    free(fake_daemon_take_log(&fake));

    VML_CHECK(drv_client_release(fake.sock_path, &owner, release, 3, NULL, &err) < 0,
              "virtlockd: a release with unheld resources fails");
    check_log(&fake, "REGISTER vm1 7 1234\nRELEASE /ls notheld-a 0\nRELEASE /ls b 0\n"
                     "RELEASE /ls notheld-c 0\n",
              "virtlockd: release carries on past failures, flags 0");
    VML_CHECK(strstr(err.message, "'notheld-a' is not locked (disk '/img/a')") != NULL,
              "... and reports the first failure");

    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, dropping, 2,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0,
              "virtlockd: a connection dropped mid-acquire fails the acquire");
    VML_CHECK(err.code == VIR_ERR_RPC && strstr(err.message, "closed the connection") != NULL,
              "... as a transport error");
    check_log(&fake, "REGISTER vm1 7 1234\nACQUIRE /ls a 2\nACQUIRE /ls drop-b 2\n",
              "... with no undo attempted on the dead connection");
    VML_CHECK(!drv_client_peer_is_virtlockd(), "a transport error forgets what the daemon was");
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "the next acquire succeeds");
    check_log(&fake, "NOPROG 1\nNOPROG 1\nREGISTER vm1 7 1234\nACQUIRE /ls a 2\n",
              "... after probing for the batch program again");
    fake_daemon_stop(&fake);
}

/* Version 2: generations come back, expectations and <on_lockfailure> go out. */
static void test_generations(void)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 two[] = {
        res("/ls", "a", "/img/a", VML_LS_ACQUIRE_AUTOCREATE),
        res("", "/img/b", "/img/b", 0),
    };
    vml_ext_resource2 moved[] = { res("/ls", "moved-a", "/img/a", VML_LS_ACQUIRE_AUTOCREATE) };
    vml_ext_generation gens[2];
    fake_daemon fake;
    vml_error err;

    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "gens", FAKE_VMLOCKD) == 0,
                   "fake vmlockd for generations starts"))
        return;
    drv_client_forget_peer();
    vml_error_clear(&err);
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 2, VIR_DOMAIN_LOCK_FAILURE_PAUSE,
                                 "qemu:///system", gens, &err) == 0 &&
              gens[0].held && gens[0].generation == 10 && gens[0].epoch == 0 &&
              gens[1].held && gens[1].generation == 11 && gens[1].epoch == 0xe9,
              "version 2 acquire returns one generation per resource, with its epoch");
    check_log(&fake, "BATCH_ACQUIRE vm1 1234 {/ls a /img/a 2;} { /img/b /img/b 0;} action=3 "
              "uri=qemu:///system\n", "... and carries the pause action and the URI");
    two[0].flags |= VML_EXT_RESOURCE_EXPECT_GENERATION;
    two[0].expected_generation = 10;
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 2, VIR_DOMAIN_LOCK_FAILURE_DEFAULT,
                                 NULL, gens, &err) == 0, "an acquire with an expectation");
    check_log(&fake, "BATCH_ACQUIRE vm1 1234 {/ls a /img/a 6 expect=10@0;} { /img/b /img/b 0;}\n",
              "... sends the expected generation of that resource only");
    moved[0].flags |= VML_EXT_RESOURCE_EXPECT_GENERATION;
    moved[0].expected_generation = 3;
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, moved, 1, VIR_DOMAIN_LOCK_FAILURE_DEFAULT,
                                 NULL, gens, &err) < 0 && err.code == VIR_ERR_OPERATION_INVALID &&
              strstr(err.message, "was acquired by domain 'intruder'") != NULL,
              "a refused expectation reaches the caller with the daemon's code and text");
    free(fake_daemon_take_log(&fake));
    VML_CHECK(drv_client_release(fake.sock_path, &owner, two, 2, gens, &err) == 0 &&
              gens[0].generation == 10 && gens[1].generation == 11 && gens[1].held,
              "version 2 release returns the generations released");
    VML_CHECK(drv_client_inquire(fake.sock_path, &owner, two, 2, gens, &err) == 0 &&
              gens[0].generation == 10 && gens[0].held, "INQUIRE returns the generations held");
    check_log(&fake, "BATCH_RELEASE vm1 1234 {/ls a /img/a 6 expect=10@0;} { /img/b /img/b 0;}\n"
              "INQUIRE vm1 1234 {/ls a /img/a 6 expect=10@0;} { /img/b /img/b 0;}\n",
              "release and inquire are one call each");
    fake_daemon_stop(&fake);

    /* An older vmlockd (extension version 1 only). */
    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "oldvmlockd", FAKE_VMLOCKD_V1) == 0,
                   "fake vmlockd of version 1 starts"))
        return;
    drv_client_forget_peer();
    gens[0].held = true;
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, two, 2, VIR_DOMAIN_LOCK_FAILURE_DEFAULT,
                                 NULL, gens, &err) == 0 && !gens[0].held && !gens[1].held,
              "version 1 daemon: the acquire succeeds without generations");
    check_log(&fake, "NOVERS 1\nBATCH_ACQUIRE(v1) vm1 1234 {/ls a /img/a 2;} { /img/b /img/b 0;}\n",
              "... after one version 2 probe, version 1 without the expectation flag");
    VML_CHECK(drv_client_peer_is_v1() && !drv_client_peer_is_virtlockd(),
              "... and the daemon is remembered as version 1, not virtlockd");
    VML_CHECK(drv_client_release(fake.sock_path, &owner, two, 2, gens, &err) == 0,
              "version 1 daemon: release succeeds");
    VML_CHECK(drv_client_inquire(fake.sock_path, &owner, two, 2, gens, &err) == 0 && !gens[0].held,
              "version 1 daemon: INQUIRE is not even tried");
    check_log(&fake, "BATCH_RELEASE(v1) vm1 1234 {/ls a /img/a 2;} { /img/b /img/b 0;}\n",
              "... no probe again");
    drv_client_forget_peer();
    fake_daemon_stop(&fake);
}

/* ---- auto-start of a per-user daemon ---- */

/*
 * The test binary doubles as the "vmlockd" an unprivileged plugin starts: called as
 * "PROG --daemon ...", it logs its arguments, forks a fake daemon on $FAKE_SOCK, and exits 0
 * once that listens (the contract of vmlockd -d).
 */
static int run_as_spawned_daemon(int argc, char **argv)
{
    const char *fail = getenv("FAKE_FAIL");
    FILE *f = fopen(getenv("FAKE_ARGV_LOG"), "ae");
    int ready[2];
    char byte;
    pid_t pid;

    if (f == NULL)
        return 2;
    for (int i = 1; i < argc; i++)
        fprintf(f, "%s%s", argv[i], i + 1 < argc ? " " : "\n");
    fclose(f);
    if (fail != NULL) {
        fprintf(stderr, "fake vmlockd: %s\n", fail);
        return 1;
    }
    if (pipe(ready) < 0)
        return 2;
    pid = fork();
    if (pid == 0) {
        close(ready[0]);
        setsid();
        fake_daemon_serve(getenv("FAKE_SOCK"), getenv("FAKE_LOG"), FAKE_VMLOCKD, ready[1]);
    }
    close(ready[1]);
    if (pid < 0 || read(ready[0], &byte, 1) != 1)
        return 2;
    f = fopen(getenv("FAKE_PID_FILE"), "we");
    if (f == NULL)
        return 2;
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
    return 0;
}

/* In a child running as an unprivileged user: one CREATE_LOCKSPACE; returns the exit status. */
static int unprivileged_create_lockspace(const char *sock_path, const char *vmlockd_path,
                                         const char *fail, char *message, size_t message_size)
{
    int pipe_fds[2];
    vml_error err;
    pid_t pid;
    int status = -1;
    ssize_t n;

    message[0] = '\0';
    if (pipe(pipe_fds) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(pipe_fds[0]);
        if (geteuid() == 0 &&
            (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
            _exit(3);
        if (vmlockd_path != NULL)
            setenv("VMLOCKD_PATH", vmlockd_path, 1);
        if (fail != NULL)
            setenv("FAKE_FAIL", fail, 1);
        vml_error_clear(&err);
        /* exit(), not _exit(): coverage data of this child must be written too. */
        if (drv_client_create_lockspace(sock_path, "/srv/leases", &err) == 0)
            exit(0);
        if (write(pipe_fds[1], err.message, strlen(err.message)) < 0)
            exit(4);
        exit(1);
    }
    close(pipe_fds[1]);
    n = read(pipe_fds[0], message, message_size - 1);
    message[n > 0 ? n : 0] = '\0';
    close(pipe_fds[0]);
    if (pid > 0)
        waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void kill_spawned(const char *pid_file)
{
    char *text = fake_read_file(pid_file);
    pid_t pid = (pid_t)atoi(text);

    if (pid > 0) {
        kill(pid, SIGKILL);
        /* Not our child (it was double-forked), so it cannot be reaped here. */
    }
    free(text);
    unlink(pid_file);
}

static void test_spawn(const char *self)
{
    char run[600], sock[700], log[700], argv_log[700], pid_file[700], lock_dir[700], lock[800];
    char message[2048];
    char *text;
    struct stat st;
    int status;

    snprintf(run, sizeof(run), "%s/run", tmpdir);
    snprintf(sock, sizeof(sock), "%s/user.sock", run);
    snprintf(log, sizeof(log), "%s/user.log", run);
    snprintf(argv_log, sizeof(argv_log), "%s/argv.log", run);
    snprintf(pid_file, sizeof(pid_file), "%s/daemon.pid", run);
    snprintf(lock_dir, sizeof(lock_dir), "%s/vmlockd", run);
    snprintf(lock, sizeof(lock), "%s/vmlockd.lock", lock_dir);
    if (mkdir(run, 0700) < 0 || (geteuid() == 0 && (chown(run, 65534, 65534) < 0 ||
                                                     chmod(tmpdir, 0711) < 0))) {
        printf("Bail out! cannot prepare %s\n", run);
        exit(1);
    }
    setenv("XDG_RUNTIME_DIR", run, 1);
    setenv("FAKE_SOCK", sock, 1);
    setenv("FAKE_LOG", log, 1);
    setenv("FAKE_ARGV_LOG", argv_log, 1);
    setenv("FAKE_PID_FILE", pid_file, 1);

    status = unprivileged_create_lockspace(sock, self, NULL, message, sizeof(message));
    if (!VML_CHECK(status == 0, "unprivileged: nothing listens, the daemon is started"))
        printf("#   exit %d: %s\n", status, message);
    text = fake_read_file(argv_log);
    VML_CHECK_STR(text, "--daemon --timeout=120\n", "... as VMLOCKD_PATH --daemon --timeout=120");
    free(text);
    text = fake_read_file(log);
    VML_CHECK_STR(text, "CREATE_LOCKSPACE /srv/leases\n", "... and the call reaches it");
    free(text);
    VML_CHECK(stat(lock_dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
              "the spawn lock directory is created 0700");
    VML_CHECK(stat(lock, &st) == 0 && S_ISREG(st.st_mode), "the spawn lock file exists");

    status = unprivileged_create_lockspace(sock, self, NULL, message, sizeof(message));
    VML_CHECK(status == 0, "unprivileged: a running daemon is used as is");
    text = fake_read_file(argv_log);
    VML_CHECK_STR(text, "--daemon --timeout=120\n", "... without starting another");
    free(text);
    kill_spawned(pid_file);
    unlink(sock);

    status = unprivileged_create_lockspace(sock, self, "no configuration", message,
                                           sizeof(message));
    VML_CHECK(status == 1 && strstr(message, "failed to start") != NULL &&
              strstr(message, self) != NULL,
              "a daemon that fails to start is reported, naming the binary");

    status = unprivileged_create_lockspace(sock, "/nonexistent/vmlockd", NULL, message,
                                           sizeof(message));
    VML_CHECK(status == 1 && strstr(message, "cannot run the lock daemon '/nonexistent/vmlockd'"),
              "a missing daemon binary is reported by path");
    status = unprivileged_create_lockspace(sock, "bin/vmlockd", NULL, message, sizeof(message));
    VML_CHECK(status == 1 && strstr(message, "VMLOCKD_PATH 'bin/vmlockd' is not an absolute path"),
              "a relative VMLOCKD_PATH is refused");
    unsetenv("XDG_RUNTIME_DIR");
}

/* virtlockd: an undo that fails is logged and the other undos still run; the caller gets
 * the error that failed the acquire, not the undo's. */
static void test_virtlockd_undo_failure(void)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 three[] = {
        res("/ls", "notheld-a", "/img/a", 2),
        res("/ls", "b", "/img/b", 2),
        res("/ls", "busy-c", "/img/c", 2),
    };
    fake_daemon fake;
    vml_error err;

    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "virtlockd-undo", FAKE_VIRTLOCKD) == 0,
                   "fake virtlockd starts"))
        return;
    drv_client_forget_peer();
    vml_error_clear(&err);
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, three, 3,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0,
              "virtlockd: a busy third resource fails the acquire");
    check_log(&fake, "NOPROG 1\nNOPROG 1\nREGISTER vm1 7 1234\nACQUIRE /ls notheld-a 2\n"
                     "ACQUIRE /ls b 2\nACQUIRE /ls busy-c 2\nRELEASE /ls b 0\n"
                     "RELEASE /ls notheld-a 0\n",
              "... every undo is tried, newest first, although one of them fails");
    VML_CHECK(err.code == VIR_ERR_RESOURCE_BUSY &&
              strstr(err.message, "'busy-c' is locked (disk '/img/c')") != NULL,
              "... and the caller gets the busy error, not the undo's");
    fake_daemon_stop(&fake);
}

/* More resources than the protocol allows are refused before anything is sent. */
static void test_too_many_resources(void)
{
    vml_ls_owner owner = test_owner();
    size_t count = VML_EXT_BATCH_MAX + 1;
    vml_ext_resource2 *many = calloc(count, sizeof(*many));
    fake_daemon fake;
    vml_error err;
    char want[128];

    if (many == NULL ||
        !VML_CHECK(fake_daemon_start(&fake, tmpdir, "many", FAKE_VMLOCKD) == 0,
                   "fake vmlockd starts")) {
        free(many);
        return;
    }
    for (size_t i = 0; i < count; i++)
        many[i] = res("/ls", "r", "/img/r", VML_LS_ACQUIRE_AUTOCREATE);
    drv_client_forget_peer();
    vml_error_clear(&err);
    snprintf(want, sizeof(want), "a domain may have at most %d lock resources, not %zu",
             VML_EXT_BATCH_MAX, count);
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, many, count,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0 &&
              err.code == VIR_ERR_CONFIG_UNSUPPORTED && strstr(err.message, want) != NULL,
              "an acquire of more than VML_EXT_BATCH_MAX resources is refused, saying so");
    vml_error_clear(&err);
    VML_CHECK(drv_client_release(fake.sock_path, &owner, many, count, NULL, &err) < 0 &&
              strstr(err.message, want) != NULL, "... and so is such a release");
    check_log(&fake, "", "... before anything reaches the daemon");
    fake_daemon_stop(&fake);
    free(many);
}

/* Outside libvirt (no virReportErrorHelper in this executable) errors go to stderr. */
static void test_error_without_libvirt(void)
{
    vml_error err;
    char text[2048];
    int pipe_fds[2];
    int saved_stderr = dup(STDERR_FILENO);
    ssize_t n;

    drv_error_init();
    VML_CHECK(!drv_error_has_libvirt(), "without libvirt, errors are not sent to it");
    if (saved_stderr < 0 || pipe(pipe_fds) < 0 || dup2(pipe_fds[1], STDERR_FILENO) < 0) {
        printf("Bail out! cannot redirect stderr\n");
        exit(1);
    }
    vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_RESOURCE_BUSY, "disk '%s' is busy", "/img/a");
    drv_error_report(&err);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    close(pipe_fds[1]);
    n = read(pipe_fds[0], text, sizeof(text) - 1);
    text[n > 0 ? n : 0] = '\0';
    close(pipe_fds[0]);
    VML_CHECK(strstr(text, "error") != NULL &&
              strstr(text, "resource busy: disk '/img/a' is busy") != NULL,
              "... but logged on stderr with the full message");
}

int main(int argc, char **argv)
{
    char self[PATH_MAX];
    char cmd[600];
    ssize_t n;

    if (argc >= 2 && strcmp(argv[1], "--daemon") == 0)
        return run_as_spawned_daemon(argc, argv);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || mkdtemp(tmpdir) == NULL) {
        printf("Bail out! cannot set up\n");
        return 1;
    }
    self[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    unsetenv("XDG_RUNTIME_DIR");
    test_error_without_libvirt();
    test_vmlockd_batch();
    test_register();
    test_virtlockd_fallback();
    test_generations();
    test_virtlockd_undo_failure();
    test_too_many_resources();
    test_spawn(self);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
