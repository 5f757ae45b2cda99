/* test_dmn_daemon.c: the vmlockd executable end to end: --test-config, -d readiness, pid file, socket takeover, holder hangup, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_test.h"
#include "vml_wire.h"

static const char *vmlockd;
static char dir[64];
static char conf[128], pidfile[128], main_sock[128], admin_sock[128], lsdir[128];

static bool has(const char *text, const char *needle)
{
    bool found = strstr(text, needle) != NULL;

    if (!found)
        printf("#   '%s'\n#   does not contain '%s'\n", text, needle);
    return found;
}

/* Run vmlockd with args (NULL-terminated); its stdout+stderr into out; returns the exit status. */
static int run(char *out, size_t out_len, ...)
{
    char *argv[16];
    int argc = 0;
    int fds[2];
    size_t got = 0;
    int status = 0;
    va_list ap;
    pid_t pid;
    ssize_t n;

    argv[argc++] = (char *)vmlockd;
    va_start(ap, out_len);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        execv(vmlockd, argv);
        _exit(127);
    }
    close(fds[1]);
    /* EOF comes when the launcher exited and the daemon pointed its stdio at /dev/null. */
    while ((n = read(fds[0], out + got, out_len - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static pid_t read_pidfile(void)
{
    char text[32] = "";
    int fd = open(pidfile, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    return (pid_t)strtol(text, NULL, 10);
}

/* Block until pid (not our child) has exited: a pidfd becomes readable. */
static bool wait_gone(pid_t pid)
{
    int fd = pidfd_open(pid, 0);
    struct pollfd pfd;
    bool ok;

    if (fd < 0)
        return errno == ESRCH;
    pfd.fd = fd;
    pfd.events = POLLIN;
    ok = poll(&pfd, 1, 30000) == 1;
    close(fd);
    return ok;
}

static int call_admin(unsigned int proc, xdrproc_t args_proc, void *args, xdrproc_t ret_proc,
                      void *ret, vml_error *err)
{
    vml_client c;
    int rc;

    if (vml_client_connect(&c, admin_sock, err) < 0)
        return -1;
    rc = vml_client_call(&c, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, (int)proc, args_proc,
                         args, ret_proc, ret, err);
    vml_client_close(&c);
    return rc;
}

static int status_of(vml_ext_status_ret *st)
{
    vml_error err;

    memset(st, 0, sizeof(*st));
    if (call_admin(VML_EXT_PROC_STATUS, NULL, NULL, (xdrproc_t)xdr_vml_ext_status_ret, st, &err) < 0) {
        printf("#   STATUS: %s\n", err.message);
        return -1;
    }
    xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)st);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_cli(void)
{
    char out[4096], bad[160];

    VML_CHECK(run(out, sizeof(out), "-V", NULL) == 0 && strcmp(out, "vmlockd (vmlockd) 0.1.0\n") == 0,
              "-V prints 'vmlockd (vmlockd) 0.1.0'");
    VML_CHECK(run(out, sizeof(out), "--frobnicate", NULL) == 1 && has(out, "--frobnicate"),
              "an unknown option: exit 1 naming it");
    VML_CHECK(run(out, sizeof(out), "-t", "abc", NULL) == 1 && has(out, "invalid timeout 'abc'"),
              "a bad timeout: exit 1 naming it");
    VML_CHECK(run(out, sizeof(out), "-t", "2147484", NULL) == 1, "a timeout over INT_MAX/1000 is refused");
    VML_CHECK(run(out, sizeof(out), "stray", NULL) == 1 && has(out, "'stray'"),
              "a stray argument: exit 1 naming it");
    VML_CHECK(run(out, sizeof(out), "--test-config", "-f", conf, "-p", pidfile, "-t", "30", NULL) == 0 &&
              has(out, "unix_sock_path = \"") && has(out, main_sock) &&
              has(out, "owner_kill_grace_ms = 300\n") && has(out, pidfile) &&
              has(out, "timeout = 30\n"),
              "--test-config prints the effective settings and the resolved paths, exit 0");
    snprintf(bad, sizeof(bad), "%s/bad.conf", dir);
    write_file(bad, "max_clients = 3\nadmin_max_clients = 0\n");
    VML_CHECK(run(out, sizeof(out), "--test-config", "-f", bad, NULL) == 1 && has(out, "bad.conf:2:"),
              "--test-config on a bad file: exit 1 naming FILE:LINE");
    VML_CHECK(run(out, sizeof(out), "-d", "-f", bad, NULL) == 1 && has(out, "bad.conf:2:"),
              "-d with a bad file: the launcher exits 1 with the error");
    snprintf(bad, sizeof(bad), "%s/missing.conf", dir);
    VML_CHECK(run(out, sizeof(out), "--test-config", "-f", bad, NULL) == 1 && has(out, "missing.conf"),
              "an explicit config file must exist");
}

/* A child that registers itself as owner, gets a lease, closes its connection and lives on
 * ignoring SIGTERM: the daemon must kill it and release only after it died. */
static pid_t spawn_orphan_holder(void)
{
    int ready[2];
    pid_t pid;
    char c = 0;

    if (pipe(ready) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        vml_client client;
        vml_error err;
        vml_ls_register_args reg = { .owner = { .name = "orphan", .id = 5, .pid = (u_int)getpid() } };
        vml_ls_resource_args res = { .path = lsdir, .name = "held", .flags = VML_LS_ACQUIRE_AUTOCREATE };
        char ok = 1;

        signal(SIGTERM, SIG_IGN);
        close(ready[0]);
        if (vml_client_connect(&client, main_sock, &err) < 0 ||
            vml_client_call(&client, VML_LS_PROGRAM, 1, VML_LS_PROC_REGISTER,
                            (xdrproc_t)xdr_vml_ls_register_args, &reg, NULL, NULL, &err) < 0 ||
            vml_client_call(&client, VML_LS_PROGRAM, 1, VML_LS_PROC_ACQUIRE_RESOURCE,
                            (xdrproc_t)xdr_vml_ls_resource_args, &res, NULL, NULL, &err) < 0)
            ok = 0;
        vml_client_close(&client);      /* the holder connection goes away... */
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        for (;;)                        /* ...while the process lives on */
            pause();
    }
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1 || c != 1) {
        close(ready[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    close(ready[0]);
    return pid;
}

static void test_daemon(void)
{
    char out[4096], other_pid[160], lease_path[256];
    vml_ext_status_ret st;
    vml_client client;
    vml_error err;
    pid_t daemon_pid, orphan;
    struct stat sb;
    int status = 0;

    VML_CHECK(run(out, sizeof(out), "-d", "-f", conf, "-p", pidfile, NULL) == 0 && out[0] == '\0',
              "vmlockd -d returns 0 silently");
    daemon_pid = read_pidfile();
    VML_CHECK(daemon_pid > 0 && kill(daemon_pid, 0) == 0, "the pid file names the running daemon");
    /* No polling: when -d returned the socket accepts connections. */
    VML_CHECK(vml_client_connect(&client, main_sock, &err) == 0,
              "the main socket accepts a connection as soon as -d returned");
    vml_client_close(&client);
    VML_CHECK(stat(main_sock, &sb) == 0 && (sb.st_mode & 0777) == 0600, "the main socket is mode 0600");
    VML_CHECK(stat(admin_sock, &sb) == 0 && (sb.st_mode & 0777) == 0600, "the admin socket is mode 0600");

    VML_CHECK(run(out, sizeof(out), "-d", "-f", conf, "-p", pidfile, NULL) == 1 &&
              has(out, "vmlockd is already running (pid ") && has(out, pidfile),
              "a second instance with the same pid file: exit 1 'already running (pid N, pid file P)'");
    snprintf(other_pid, sizeof(other_pid), "%s/other.pid", dir);
    VML_CHECK(run(out, sizeof(out), "-d", "-f", conf, "-p", other_pid, NULL) == 1 &&
              has(out, "already in use"), "a second instance never steals a live socket");
    VML_CHECK(kill(daemon_pid, 0) == 0 && vml_client_connect(&client, main_sock, &err) == 0,
              "the first daemon still serves");
    vml_client_close(&client);

    /* A malformed length word drops that client only. */
    {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        static const unsigned char garbage[4] = { 0xff, 0xff, 0xff, 0xff };
        char byte;

        memcpy(addr.sun_path, main_sock, strlen(main_sock) + 1);
        VML_CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
                  write(fd, garbage, sizeof(garbage)) == 4 && read(fd, &byte, 1) == 0,
                  "an impossible length word: the daemon hangs up on that client");
        close(fd);
        VML_CHECK(status_of(&st) == 0, "and goes on serving others");
    }

    /* Holder hangup while the owner lives: SIGTERM (ignored), SIGKILL, then release. */
    {
        vml_ls_create_lockspace_args cl = { .path = lsdir };
        VML_CHECK(vml_client_connect(&client, main_sock, &err) == 0 &&
                  vml_client_call(&client, VML_LS_PROGRAM, 1, VML_LS_PROC_CREATE_LOCKSPACE,
                                  (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, NULL, NULL,
                                  &err) == 0, "CREATE_LOCKSPACE over the socket");
        vml_client_close(&client);
    }
    snprintf(lease_path, sizeof(lease_path), "%s/held", lsdir);
    orphan = spawn_orphan_holder();
    if (VML_CHECK(orphan > 0, "an owner registers, acquires, and closes its holder connection")) {
        waitpid(orphan, &status, 0);
        VML_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the daemon killed it: SIGKILL after the ignored SIGTERM");
        VML_CHECK(status_of(&st) == 0 && st.leases == 0 && st.owners == 0 && st.owner_kills == 1,
                  "its death is processed before a later connection's request: lease released, kill counted");
        VML_CHECK(access(lease_path, F_OK) == 0, "its lease file stays (generations live on in it)");
    }

    /* A lease held at shutdown is released and its file removed; paths are cleaned up. */
    {
        int hold[2];
        pid_t holder;
        vml_ext_resource res = { .lockspace = lsdir, .name = "kept", .disk = "/img/kept.img",
                                 .flags = VML_LS_ACQUIRE_AUTOCREATE };
        vml_ext_batch_args batch = { .owner = { .name = "keeper", .id = 2 },
                                     .resources = { 1, &res } };
        char c;

        if (pipe(hold) < 0)
            return;
        holder = fork();
        if (holder == 0) {
            close(hold[1]);
            while (read(hold[0], &c, 1) > 0)
                ;
            _exit(0);
        }
        close(hold[0]);
        batch.owner.pid = (u_int)holder;
        snprintf(lease_path, sizeof(lease_path), "%s/kept", lsdir);
        VML_CHECK(vml_client_connect(&client, main_sock, &err) == 0 &&
                  vml_client_call(&client, VML_EXT_PROGRAM, 1, VML_EXT_PROC_BATCH_ACQUIRE,
                                  (xdrproc_t)xdr_vml_ext_batch_args, &batch, NULL, NULL, &err) == 0 &&
                  access(lease_path, F_OK) == 0, "BATCH_ACQUIRE over the socket creates the lease file");
        vml_client_close(&client);
        VML_CHECK(kill(daemon_pid, SIGTERM) == 0 && status_of(&st) == 0 &&
                  st.pid == (u_int)daemon_pid && st.leases == 1,
                  "SIGTERM with a lease held is refused: the daemon serves on, holding it");
        {
            vml_ext_shutdown_args sa = { .flags = 0 };
            vml_ext_shutdown_ret sr = { 0 };
            vml_client admin;

            VML_CHECK(vml_client_connect(&admin, admin_sock, &err) == 0 &&
                      vml_client_call(&admin, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                                      VML_EXT_PROC_SHUTDOWN,
                                      (xdrproc_t)xdr_vml_ext_shutdown_args, &sa,
                                      (xdrproc_t)xdr_vml_ext_shutdown_ret, &sr, &err) < 0 &&
                      err.code == VIR_ERR_OPERATION_INVALID &&
                      has(err.message, "refusing to stop: 1 lease(s) held by 1 domain(s)") &&
                      has(err.message, "vmlockctl shutdown --force"),
                      "SHUTDOWN without force is refused the same way");
            vml_client_close(&admin);
            sa.flags = VML_EXT_SHUTDOWN_FORCE;
            VML_CHECK(vml_client_connect(&admin, admin_sock, &err) == 0 &&
                      vml_client_call(&admin, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                                      VML_EXT_PROC_SHUTDOWN,
                                      (xdrproc_t)xdr_vml_ext_shutdown_args, &sa,
                                      (xdrproc_t)xdr_vml_ext_shutdown_ret, &sr, &err) == 0 &&
                      sr.leases_dropped == 1 && sr.owners == 1,
                      "SHUTDOWN --force stops and reports the 1 lease of 1 domain it dropped");
            vml_client_close(&admin);
        }
        VML_CHECK(wait_gone(daemon_pid), "the daemon is gone after SHUTDOWN --force");
        VML_CHECK(access(lease_path, F_OK) == 0, "the lease file stays, its record cleared");
        VML_CHECK(access(main_sock, F_OK) != 0 && access(admin_sock, F_OK) != 0 &&
                  access(pidfile, F_OK) != 0, "and removed both sockets and the pid file");
        VML_CHECK(kill(holder, 0) == 0, "owners are not killed at shutdown");
        close(hold[1]);
        waitpid(holder, NULL, 0);
    }

    /* A daemon that died without cleaning up leaves a stale socket: the next one replaces it. */
    VML_CHECK(run(out, sizeof(out), "-d", "-f", conf, "-p", pidfile, NULL) == 0, "a new daemon starts");
    daemon_pid = read_pidfile();
    VML_CHECK(daemon_pid > 0 && kill(daemon_pid, SIGKILL) == 0 && wait_gone(daemon_pid) &&
              access(main_sock, F_OK) == 0, "killed with SIGKILL it leaves its socket behind");
    VML_CHECK(run(out, sizeof(out), "-d", "-f", conf, "-p", pidfile, NULL) == 0,
              "the next daemon takes over the stale socket and the unlocked pid file");
    daemon_pid = read_pidfile();
    VML_CHECK(status_of(&st) == 0 && st.pid == (u_int)daemon_pid, "and serves");
    kill(daemon_pid, SIGTERM);
    wait_gone(daemon_pid);
}

int main(void)
{
    char text[1024], cmd[128];

    vmlockd = getenv("VMLOCKD");
    if (vmlockd == NULL) {
        printf("1..0 # SKIP VMLOCKD is not set\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/test_dmn_daemon.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(conf, sizeof(conf), "%s/vmlockd.conf", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/vmlockd.pid", dir);
    snprintf(main_sock, sizeof(main_sock), "%s/run/sock", dir);
    snprintf(admin_sock, sizeof(admin_sock), "%s/run/admin-sock", dir);
    snprintf(lsdir, sizeof(lsdir), "%s/leases", dir);
    snprintf(text, sizeof(text),
             "unix_sock_path = \"%s\"\nadmin_unix_sock_path = \"%s\"\n"
             "log_outputs = \"1:file:%s/vmlockd.log\"\nowner_kill_grace_ms = 300\n",
             main_sock, admin_sock, dir);
    write_file(conf, text);
    test_cli();
    test_daemon();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", dir);
    return vml_test_done();
}
