/* test_drv_spawn.c: the plugin started by an unprivileged user (a user namespace): it starts the real vmlockd once, waits on the spawn lock, and reports each way starting the daemon can fail. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drv_client.h"
#include "fake_daemon.h"
#include "vml_test.h"
#include "vml_wire.h"

/*
 * Each scenario runs in a child that enters a new user namespace where the test's uid 0 is
 * uid 1000 and drops every capability: geteuid() != 0 makes the plugin take its
 * unprivileged path (start a per-user daemon), exactly as in a session libvirtd, while
 * files keep their real owner, so a coverage build can still write its counters.
 */

static char tmpdir[] = "/tmp/vmlockd-drv-spawn-XXXXXX";
static const char *vmlockd;

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In the child: become uid/gid 1000 of a new user namespace, without capabilities. */
static int become_user(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    if (unshare(CLONE_NEWUSER) < 0 || write_file("/proc/self/setgroups", "deny") < 0 ||
        write_file("/proc/self/uid_map", "1000 0 1") < 0 ||
        write_file("/proc/self/gid_map", "1000 0 1") < 0 ||
        syscall(SYS_capset, &hdr, data) < 0)
        return -1;
    return geteuid() == 1000 ? 0 : -1;
}

/* Can this machine make user namespaces at all?  (A skip, not a failure, where it cannot.) */
static bool userns_available(void)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0)
        _exit(become_user() == 0 ? 0 : 1);
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

typedef struct scenario {
    const char *runtime_dir;    /* XDG_RUNTIME_DIR, NULL = unset */
    const char *vmlockd_path;   /* VMLOCKD_PATH, NULL = unset */
    const char *sock;
    const char *lockspace;
} scenario;

/*
 * Run one CREATE_LOCKSPACE as the unprivileged user; returns its exit status (0: done, 1:
 * error in message, other: the child could not set up).  If started is not NULL, the
 * child pid is stored there and the function returns at once (-2): collect it with
 * finish_user_call.
 */
static int user_call(const scenario *sc, char *message, size_t size, pid_t *started,
                     int *msg_fd);

static int finish_user_call(pid_t pid, int msg_fd, char *message, size_t size)
{
    int status = -1;
    ssize_t n, got = 0;

    while (got < (ssize_t)size - 1 &&
           (n = read(msg_fd, message + got, size - 1 - (size_t)got)) > 0)
        got += n;
    message[got] = '\0';
    close(msg_fd);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int user_call(const scenario *sc, char *message, size_t size, pid_t *started,
                     int *msg_fd)
{
    int fds[2];
    pid_t pid;

    message[0] = '\0';
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        vml_error err;

        close(fds[0]);
        if (become_user() < 0)
            _exit(3);
        if (sc->runtime_dir != NULL)
            setenv("XDG_RUNTIME_DIR", sc->runtime_dir, 1);
        else
            unsetenv("XDG_RUNTIME_DIR");
        if (sc->vmlockd_path != NULL)
            setenv("VMLOCKD_PATH", sc->vmlockd_path, 1);
        else
            unsetenv("VMLOCKD_PATH");
        vml_error_clear(&err);
        /* exit(), not _exit(): the coverage counters of this child are written too. */
        if (drv_client_create_lockspace(sc->sock, sc->lockspace, &err) == 0)
            exit(0);
        if (write(fds[1], err.message, strlen(err.message)) < 0)
            exit(4);
        exit(1);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    if (started != NULL) {
        *started = pid;
        *msg_fd = fds[0];
        return -2;
    }
    return finish_user_call(pid, fds[0], message, size);
}

static bool contains(const char *text, const char *needle)
{
    if (strstr(text, needle) != NULL)
        return true;
    printf("#   '%s'\n#   does not contain '%s'\n", text, needle);
    return false;
}

static pid_t read_pid_file(const char *path)
{
    char *text = fake_read_file(path);
    pid_t pid = (pid_t)atoi(text);

    free(text);
    return pid;
}

/* Wait (bounded) for a process that is not our child to exit. */
static bool wait_gone(pid_t pid, int timeout_ms)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    bool gone;

    if (fd < 0)
        return errno == ESRCH;
    gone = poll(&pfd, 1, timeout_ms) == 1;
    close(fd);
    return gone;
}

static bool_t no_args(XDR *xdrs, void *unused)
{
    (void)xdrs;
    (void)unused;
    return TRUE;
}

/* The keeper pid of the daemon behind admin_sock (STATUS version 2), 0 when unknown. */
static unsigned int keeper_of(const char *admin_sock)
{
    vml_client client = { .fd = -1 };
    vml_ext_status2_ret st;
    vml_error err;
    unsigned int pid = 0;

    memset(&st, 0, sizeof(st));
    if (vml_client_connect(&client, admin_sock, &err) == 0 &&
        vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                        VML_EXT_PROC_STATUS, (xdrproc_t)no_args, NULL,
                        (xdrproc_t)xdr_vml_ext_status2_ret, &st, &err) == 0) {
        pid = st.keeper_pid;
        xdr_free((xdrproc_t)xdr_vml_ext_status2_ret, (char *)&st);
    } else {
        printf("#   STATUS: %s\n", err.message);
    }
    vml_client_close(&client);
    return pid;
}

static bool runs_vmlockd(pid_t pid)
{
    char path[64], exe[4096];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    n = readlink(path, exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    return strstr(exe, "vmlockd") != NULL;
}

/* The real vmlockd, started by the plugin of an unprivileged user, then used as is. */
static void test_real_daemon(void)
{
    char run[600], sock[700], admin[700], pid_file[700], ls[700], ls2[700], cfg[600];
    char conf[700], log[700], want[128];
    char message[2048];
    char *text;
    scenario sc;
    struct stat st;
    pid_t daemon_pid, second;
    unsigned int keeper;
    int status;

    snprintf(run, sizeof(run), "%s/run-real", tmpdir);
    snprintf(sock, sizeof(sock), "%s/vmlockd/vmlockd-sock", run);
    snprintf(admin, sizeof(admin), "%s/vmlockd/vmlockd-admin-sock", run);
    snprintf(pid_file, sizeof(pid_file), "%s/vmlockd/vmlockd.pid", run);
    snprintf(ls, sizeof(ls), "%s/leases", tmpdir);
    snprintf(ls2, sizeof(ls2), "%s/leases2", tmpdir);
    snprintf(cfg, sizeof(cfg), "%s/config", tmpdir);
    if (mkdir(run, 0700) < 0) {
        printf("Bail out! cannot create %s\n", run);
        exit(1);
    }
    /* The daemon reads $XDG_CONFIG_HOME/libvirt/vmlockd.conf: only its log goes elsewhere
     * than the default (syslog, for a daemon). */
    snprintf(conf, sizeof(conf), "%s/libvirt", cfg);
    if (mkdir(cfg, 0755) < 0 || mkdir(conf, 0755) < 0) {
        printf("Bail out! cannot create %s\n", conf);
        exit(1);
    }
    snprintf(conf, sizeof(conf), "%s/libvirt/vmlockd.conf", cfg);
    snprintf(log, sizeof(log), "%s/spawned.log", tmpdir);
    {
        FILE *f = fopen(conf, "we");

        if (f == NULL || fprintf(f, "log_level = 2\nlog_outputs = \"2:file:%s\"\n", log) < 0 ||
            fclose(f) != 0) {
            printf("Bail out! cannot write %s\n", conf);
            exit(1);
        }
    }
    setenv("XDG_CONFIG_HOME", cfg, 1);
    sc = (scenario){ .runtime_dir = run, .vmlockd_path = vmlockd, .sock = sock, .lockspace = ls };
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    if (!VML_CHECK(status == 0, "unprivileged, nothing listening: the plugin starts vmlockd "
                   "and its call succeeds"))
        printf("#   exit %d: %s\n", status, message);
    VML_CHECK(stat(ls, &st) == 0 && S_ISDIR(st.st_mode),
              "... the daemon it started did the call (the lockspace directory exists)");
    daemon_pid = read_pid_file(pid_file);
    VML_CHECK(daemon_pid > 0 && runs_vmlockd(daemon_pid),
              "... that daemon runs, named by its pid file in $XDG_RUNTIME_DIR/vmlockd");
    text = fake_read_file(log);
    snprintf(want, sizeof(want), "started (pid %d, unprivileged)", (int)daemon_pid);
    VML_CHECK(contains(text, want), "... as an unprivileged daemon, with the user's config");
    free(text);
    keeper = daemon_pid > 0 ? keeper_of(admin) : 0;
    VML_CHECK(keeper > 0, "... with a keeper, like any vmlockd");

    sc.lockspace = ls2;
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    second = read_pid_file(pid_file);
    VML_CHECK(status == 0 && stat(ls2, &st) == 0 && second == daemon_pid,
              "a second call uses the running daemon: no other one is started");

    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        VML_CHECK(wait_gone(daemon_pid, 30000), "the started daemon stops on SIGTERM");
    }
    if (keeper > 0) {
        if (!VML_CHECK(wait_gone((pid_t)keeper, 30000), "... and its keeper with it"))
            kill((pid_t)keeper, SIGKILL);
    }
    unsetenv("XDG_CONFIG_HOME");
}

/* A second caller waits on the spawn lock; when the first one's daemon is up it connects to
 * it instead of starting another. */
static void test_spawn_lock_waiter(void)
{
    char run[600], lock_dir[700], lock[800], message[2048];
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    fake_daemon fake = { .pid = -1 };
    struct stat st;
    scenario sc;
    pid_t child = -1;
    int msg_fd = -1, lock_fd, status;
    bool waiting = false;
    char *log;

    snprintf(run, sizeof(run), "%s/run-wait", tmpdir);
    snprintf(lock_dir, sizeof(lock_dir), "%s/vmlockd", run);
    snprintf(lock, sizeof(lock), "%s/vmlockd.lock", lock_dir);
    if (mkdir(run, 0700) < 0 || mkdir(lock_dir, 0700) < 0 ||
        (lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
        fcntl(lock_fd, F_OFD_SETLK, &fl) < 0 || fstat(lock_fd, &st) < 0) {
        printf("Bail out! cannot hold %s\n", lock);
        exit(1);
    }
    /* The socket the fake will serve; any attempt to start a daemon would fail loudly. */
    sc = (scenario){ .runtime_dir = run, .vmlockd_path = "/nonexistent/vmlockd",
                     .sock = NULL, .lockspace = "/srv/waited" };
    {
        static char sock[700];

        snprintf(sock, sizeof(sock), "%s/wait.sock", tmpdir);
        sc.sock = sock;
    }
    user_call(&sc, message, sizeof(message), &child, &msg_fd);
    /* Bounded wait until the child blocks on the lock (/proc/locks shows a waiter "->"). */
    for (int i = 0; i < 2000 && !waiting; i++) {
        char line[512], inode[64];
        FILE *f = fopen("/proc/locks", "re");

        snprintf(inode, sizeof(inode), ":%llu ", (unsigned long long)st.st_ino);
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, "->") != NULL && strstr(line, inode) != NULL)
                waiting = true;
        }
        if (f != NULL)
            fclose(f);
        if (!waiting)
            poll(NULL, 0, 5);
    }
    VML_CHECK(waiting, "a caller that finds nothing listening waits on the spawn lock held "
              "by another");
    VML_CHECK(fake_daemon_start(&fake, tmpdir, "wait", FAKE_VMLOCKD) == 0,
              "meanwhile the other caller's daemon comes up");
    /* Unlock explicitly: the fake, forked meanwhile, shares the locked open file. */
    fl.l_type = F_UNLCK;
    fcntl(lock_fd, F_OFD_SETLK, &fl);
    close(lock_fd);
    status = child > 0 ? finish_user_call(child, msg_fd, message, sizeof(message)) : -1;
    if (!VML_CHECK(status == 0, "once the lock is free, the waiter connects to that daemon"))
        printf("#   exit %d: %s\n", status, message);
    log = fake_daemon_take_log(&fake);
    VML_CHECK_STR(log, "CREATE_LOCKSPACE /srv/waited\n", "... and its call reaches it, "
                  "without starting a daemon of its own");
    free(log);
    fake_daemon_stop(&fake);
}

/* Each way starting the daemon can fail is reported, naming what failed. */
static void test_spawn_failures(void)
{
    char run[600], sock[700], file[600], bad_run[640], lock_dir[700], lock[800];
    char message[2048], want[1200];
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    scenario sc;
    int status, fd;

    snprintf(run, sizeof(run), "%s/run-fail", tmpdir);
    snprintf(sock, sizeof(sock), "%s/none.sock", run);
    if (mkdir(run, 0700) < 0) {
        printf("Bail out! cannot create %s\n", run);
        exit(1);
    }

    sc = (scenario){ .runtime_dir = run, .vmlockd_path = "/bin/true", .sock = sock,
                     .lockspace = "/srv/x" };
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    snprintf(want, sizeof(want), "%s", sock);
    VML_CHECK(status == 1 && contains(message, want),
              "a started daemon that exits 0 without listening: the connect error, naming "
              "the socket");

    sc.vmlockd_path = "/bin/false";
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && contains(message, "the lock daemon '/bin/false' failed to start "
                                      "(wait status 0x100)"),
              "a daemon that fails to start: its wait status, naming the binary");

    sc.vmlockd_path = "/nonexistent/vmlockd";
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && contains(message, "cannot run the lock daemon "
                                      "'/nonexistent/vmlockd'") &&
              contains(message, "No such file or directory"),
              "a missing daemon binary: the exec error, naming the path");

    sc.vmlockd_path = "sbin/vmlockd";
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && contains(message, "VMLOCKD_PATH 'sbin/vmlockd' is not an absolute "
                                      "path"), "a relative VMLOCKD_PATH is refused");

    /* Without a usable XDG_RUNTIME_DIR no daemon is started: the connect error stands. */
    sc.vmlockd_path = "/bin/false";
    sc.runtime_dir = NULL;
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && contains(message, sock) &&
              strstr(message, "failed to start") == NULL,
              "XDG_RUNTIME_DIR unset: no daemon is started, the connect error names the socket");
    sc.runtime_dir = "relative/run";
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && strstr(message, "failed to start") == NULL,
              "XDG_RUNTIME_DIR relative: no daemon is started either");

    /* A runtime directory that is a file: the spawn lock directory cannot be made. */
    snprintf(file, sizeof(file), "%s/not-a-dir", tmpdir);
    fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    sc.runtime_dir = file;
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    snprintf(want, sizeof(want), "cannot create directory '%s/vmlockd'", file);
    VML_CHECK(status == 1 && contains(message, want) && contains(message, "Not a directory"),
              "a spawn lock directory that cannot be created is reported, naming it");

    /* The spawn lock file is a symlink (someone else's file): never followed. */
    snprintf(bad_run, sizeof(bad_run), "%s/run-symlink", tmpdir);
    snprintf(lock_dir, sizeof(lock_dir), "%s/vmlockd", bad_run);
    snprintf(lock, sizeof(lock), "%s/vmlockd.lock", lock_dir);
    if (mkdir(bad_run, 0700) < 0 || mkdir(lock_dir, 0700) < 0 || symlink(file, lock) < 0) {
        printf("Bail out! cannot prepare %s\n", lock);
        exit(1);
    }
    sc.runtime_dir = bad_run;
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    snprintf(want, sizeof(want), "cannot open '%s'", lock);
    VML_CHECK(status == 1 && contains(message, want),
              "a spawn lock that is a symlink is refused, naming it");

    /* A socket the user may not connect to: not "nobody listens", so nothing is started. */
    snprintf(sock, sizeof(sock), "%s/closed.sock", run);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(sock) < sizeof(addr.sun_path))
        memcpy(addr.sun_path, sock, strlen(sock) + 1);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0 ||
        chmod(sock, 0) < 0) {
        printf("Bail out! cannot bind %s\n", sock);
        exit(1);
    }
    sc.runtime_dir = run;
    sc.sock = sock;
    status = user_call(&sc, message, sizeof(message), NULL, NULL);
    VML_CHECK(status == 1 && contains(message, sock) && contains(message, "Permission denied") &&
              strstr(message, "failed to start") == NULL,
              "a socket the user may not use: its connect error, and no daemon is started");
    close(fd);
}

int main(void)
{
    char cmd[600];

    vmlockd = getenv("VMLOCKD");
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) < 0) {
        printf("Bail out! cannot set up\n");
        return 1;
    }
    if (!userns_available()) {
        printf("1..0 # SKIP cannot create a user namespace here\n");
        rmdir(tmpdir);
        return 0;
    }
    if (vmlockd != NULL && vmlockd[0] == '/')
        test_real_daemon();
    else
        printf("ok %u # SKIP VMLOCKD is not set\n", ++vml_test_count);
    test_spawn_lock_waiter();
    test_spawn_failures();
    VML_CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child process is left");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
