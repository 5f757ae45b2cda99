/* test_drv_conn.c: unit tests of the plugin's persistent connection to the daemon (driver/drv_client.c, drv_client_shared_*) against the fake daemon's connection log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drv_client.h"
#include "fake_daemon.h"
#include "vml_child.h"
#include "vml_test.h"

static char tmpdir[] = "/tmp/vmlockd-drv-conn-XXXXXX";

static vml_ls_owner test_owner(void)
{
    vml_ls_owner owner = { .name = (char *)"vm1", .id = 7, .pid = 1234 };

    for (int i = 0; i < 16; i++)
        owner.uuid[i] = (char)(i + 1);
    return owner;
}

static vml_ext_resource2 res(const char *name)
{
    vml_ext_resource2 r = {
        .lockspace = (char *)"", .name = (char *)name, .disk = (char *)name, .flags = 0,
    };
    return r;
}

/* One parsed line of the connection log. */
typedef struct conn_line {
    long id;
    char word[32];
    long arg;
} conn_line;

/* The connection log as lines (at most max); returns how many. */
static int take_conns(fake_daemon *fake, conn_line *lines, int max)
{
    char *text = fake_daemon_take_conns(fake);
    int n = 0;

    for (char *line = text; *line != '\0' && n < max;) {
        char *end = strchr(line, '\n');

        memset(&lines[n], 0, sizeof(lines[n]));
        if (sscanf(line, "%ld %31s %ld", &lines[n].id, lines[n].word, &lines[n].arg) >= 2)
            n++;
        if (end == NULL)
            break;
        line = end + 1;
    }
    free(text);
    return n;
}

static int count(const conn_line *lines, int n, const char *word, long id);

/* The connection log once it has at least eofs EOF lines (they are logged asynchronously,
 * after the client closed: each one is signalled), or once none came for 2 s. */
static int take_conns_eof(fake_daemon *fake, conn_line *lines, int max, int eofs)
{
    int n = take_conns(fake, lines, max);

    while (count(lines, n, "EOF", 0) < eofs && n < max && fake_daemon_wait_eof(fake, 2000))
        n += take_conns(fake, lines + n, max - n);
    return n;
}

/* How many lines have word (NULL: any call, i.e. neither ACCEPT nor EOF) on connection id
 * (0: any). */
static int count(const conn_line *lines, int n, const char *word, long id)
{
    int found = 0;

    for (int i = 0; i < n; i++) {
        bool is_call = strcmp(lines[i].word, "ACCEPT") != 0 && strcmp(lines[i].word, "EOF") != 0;

        if ((id == 0 || lines[i].id == id) &&
            (word == NULL ? is_call : strcmp(lines[i].word, word) == 0))
            found++;
    }
    return found;
}

/* The connection id of the first call line, 0 when none. */
static long first_call_id(const conn_line *lines, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(lines[i].word, "ACCEPT") != 0 && strcmp(lines[i].word, "EOF") != 0)
            return lines[i].id;
    }
    return 0;
}

/* Every socket descriptor of this process is close-on-exec. */
static bool sockets_cloexec(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    bool ok = true;

    if (dir == NULL)
        return false;
    while ((de = readdir(dir)) != NULL) {
        char path[300];
        char target[64];
        ssize_t len;
        int fd = atoi(de->d_name);

        if (de->d_name[0] == '.' || fd == dirfd(dir))
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, "socket:", 7) == 0 && !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
            ok = false;
    }
    closedir(dir);
    return ok;
}

/* Not enabled (a plain process, or before drvInit): one connection per call, as before. */
static void test_disabled(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    conn_line lines[32];
    vml_error err;
    int n;

    vml_error_clear(&err);
    take_conns(fake, lines, 32);
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0 &&
              drv_client_release(fake->sock_path, &owner, one, 1, NULL, &err) == 0,
              "disabled: acquire and release succeed");
    n = take_conns_eof(fake, lines, 32, 2);
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 2 && count(lines, n, "EOF", 0) == 2,
              "disabled: each call has its own connection, closed after it");
}

/* Enabled: every call of the process on one connection, an ordinary client of our pid. */
static void test_reuse(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    vml_ext_generation gens[1];
    conn_line lines[32];
    vml_error err;
    long id;
    int n;

    vml_error_clear(&err);
    drv_client_shared_enable();
    VML_CHECK(drv_client_create_lockspace(fake->sock_path, "/ls", &err) == 0 &&
              drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, gens, &err) == 0 &&
              drv_client_inquire(fake->sock_path, &owner, one, 1, gens, &err) == 0 &&
              drv_client_release(fake->sock_path, &owner, one, 1, gens, &err) == 0 &&
              drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, gens, &err) == 0,
              "reuse: create lockspace, acquire, inquire, release, acquire succeed");
    n = take_conns(fake, lines, 32);
    id = first_call_id(lines, n);
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 1 && count(lines, n, NULL, id) == 5 &&
              count(lines, n, "EOF", 0) == 0,
              "reuse: one connection carries all five calls and stays open");
    VML_CHECK(n > 0 && strcmp(lines[0].word, "ACCEPT") == 0 && lines[0].arg == (long)getpid(),
              "reuse: the daemon sees the connection's peer as this process (libvirtd)");
    VML_CHECK(sockets_cloexec(), "reuse: the persistent connection is close-on-exec");
}

/* A daemon that dies (or is restarted) while the connection is idle: reconnect, resend once. */
static void test_restart(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    conn_line lines[32];
    vml_error err;
    char *log;
    int n;

    vml_error_clear(&err);
    fake_daemon_stop(fake);
    if (!VML_CHECK(fake_daemon_start(fake, tmpdir, "vmlockd", FAKE_VMLOCKD) == 0,
                   "restart: the fake restarts"))
        return;
    free(fake_daemon_take_log(fake));
    take_conns(fake, lines, 32);
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "restart: the acquire over the broken connection succeeds");
    log = fake_daemon_take_log(fake);
    VML_CHECK_STR(log, "BATCH_ACQUIRE vm1 1234 { a a 0;}\n",
                  "restart: the request reaches the new daemon once");
    free(log);
    n = take_conns(fake, lines, 32);
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 1 && count(lines, n, "EOF", 0) == 0,
              "restart: on one new connection, kept");
}

/* The daemon closes the connection after reading the request, before any reply byte. */
static void test_dropped(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    vml_ext_resource2 dropping[] = { res("drop-a") };
    conn_line lines[32];
    vml_error err;
    int n;

    vml_error_clear(&err);
    take_conns(fake, lines, 32);
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, dropping, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) < 0,
              "dropped: an acquire the daemon drops every time fails");
    VML_CHECK(err.domain == VIR_FROM_RPC && strstr(err.message, "closed the connection"),
              "... with the transport error");
    n = take_conns(fake, lines, 32);
    VML_CHECK(count(lines, n, "BATCH_ACQUIRE", 0) == 2 && count(lines, n, "ACCEPT", 0) == 1 &&
              count(lines, n, "BATCH_ACQUIRE", first_call_id(lines, n)) == 1,
              "dropped: sent on the reused connection, then resent once on a new one");

    /* On a connection just opened (the last drop closed it), no resend. */
    VML_CHECK(drv_client_release(fake->sock_path, &owner, dropping, 1, NULL, &err) < 0,
              "dropped: a release dropped on a fresh connection fails");
    n = take_conns(fake, lines, 32);
    VML_CHECK(count(lines, n, "BATCH_RELEASE", 0) == 1 && count(lines, n, "ACCEPT", 0) == 1,
              "dropped: ... sent once: a fresh connection's failure is reported, not resent");
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "dropped: the next call connects again and succeeds");
    free(fake_daemon_take_log(fake));
    take_conns(fake, lines, 32);
}

typedef struct slow_call {
    const char *sock_path;
    int rc;
} slow_call;

static void *slow_acquire(void *opaque)
{
    slow_call *call = opaque;
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 slow[] = { res("slow-a") };
    vml_error err;

    vml_error_clear(&err);
    call->rc = drv_client_acquire(call->sock_path, &owner, slow, 1,
                                  VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err);
    return NULL;
}

/*
 * While one thread's call is on the persistent connection (its lock held): another thread
 * uses a connection of its own instead of waiting, and a child forked then (libvirt's start
 * hook) neither waits for that lock nor writes to the connection.
 */
static void test_busy_and_fork(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("b") };
    slow_call call = { .sock_path = fake->sock_path, .rc = -1 };
    conn_line lines[32];
    pthread_t thread;
    vml_error err;
    long shared;
    int status = -1;
    pid_t child;
    int n;

    vml_error_clear(&err);
    free(fake_daemon_take_log(fake));
    take_conns(fake, lines, 32);
    if (!VML_CHECK(pthread_create(&thread, NULL, slow_acquire, &call) == 0, "busy: thread"))
        return;
    /* The fake holds the slow call until fake_daemon_slow_finish. */
    VML_CHECK(fake_daemon_slow_started(fake) == 0, "busy: the slow call is on the connection");
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "busy: another thread's call succeeds meanwhile");
    fflush(stdout);
    child = fork();
    if (child == 0) {
        vml_ls_owner child_owner = test_owner();
        vml_error child_err;

        alarm(10);  /* a deadlock on the held lock fails the test instead of hanging it */
        vml_error_clear(&child_err);
        child_owner.name = (char *)"child";
        vml_child_exit(drv_client_acquire(fake->sock_path, &child_owner, one, 1,
                                          VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL,
                                          &child_err) == 0 ? 0 : 1);
    }
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
        continue;
    VML_CHECK(child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork: the child's call succeeds while the parent's lock is held");
    fake_daemon_slow_finish(fake);
    pthread_join(thread, NULL);
    VML_CHECK(call.rc == 0, "busy: the slow call succeeds");
    n = take_conns(fake, lines, 32);
    shared = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(lines[i].word, "BATCH_ACQUIRE") == 0 && shared == 0)
            shared = lines[i].id;   /* the slow call, logged first */
    }
    VML_CHECK(shared != 0 && count(lines, n, NULL, shared) == 1,
              "busy: the persistent connection carried only the slow call");
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 2 && count(lines, n, "BATCH_ACQUIRE", 0) == 3,
              "busy, fork: the other thread and the child each had a connection of their own");
    for (int i = 0; i < n; i++) {
        if (strcmp(lines[i].word, "ACCEPT") == 0 && lines[i].arg != (long)getpid())
            VML_CHECK(lines[i].arg == (long)child, "fork: the child connected itself");
    }

    /* The child used not the parent's connection, and the parent still does. */
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "fork: the parent's next call succeeds");
    n = take_conns(fake, lines, 32);
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 0 && first_call_id(lines, n) == shared,
              "fork: ... on its persistent connection");
    free(fake_daemon_take_log(fake));
}

/* drvDeinit: the connection is closed; later calls have their own again. */
static void test_close_all(fake_daemon *fake)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    conn_line lines[32];
    vml_error err;
    int n = 0;

    vml_error_clear(&err);
    take_conns(fake, lines, 32);
    drv_client_shared_close_all();
    n = take_conns_eof(fake, lines, 32, 1);
    VML_CHECK(n == 1 && strcmp(lines[0].word, "EOF") == 0,
              "close all: the daemon sees the persistent connection end");
    VML_CHECK(drv_client_acquire(fake->sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "close all: a later call succeeds");
    n = take_conns_eof(fake, lines, 32, 1);
    VML_CHECK(count(lines, n, "ACCEPT", 0) == 1 && count(lines, n, "EOF", 0) == 1,
              "close all: ... on a connection of its own");
    free(fake_daemon_take_log(fake));
}

/* virtlockd: REGISTER binds a connection to an owner, so every call has its own. */
static void test_virtlockd(void)
{
    vml_ls_owner owner = test_owner();
    vml_ext_resource2 one[] = { res("a") };
    fake_daemon fake;
    conn_line lines[64];
    vml_error err;
    int n;

    vml_error_clear(&err);
    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "virtlockd", FAKE_VIRTLOCKD) == 0,
                   "virtlockd: fake starts"))
        return;
    drv_client_forget_peer();
    drv_client_shared_enable();
    VML_CHECK(drv_client_acquire(fake.sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0 &&
              drv_client_release(fake.sock_path, &owner, one, 1, NULL, &err) == 0 &&
              drv_client_acquire(fake.sock_path, &owner, one, 1,
                                 VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, NULL, &err) == 0,
              "virtlockd: acquire, release, acquire succeed");
    n = take_conns_eof(&fake, lines, 64, 4);
    VML_CHECK(count(lines, n, "REGISTER", 0) == 3 && count(lines, n, "ACCEPT", 0) == 4 &&
              count(lines, n, "EOF", 0) == 4,
              "virtlockd: the probe's connection is closed once virtlockd is known, and each "
              "REGISTER has a connection of its own, closed after the call");
    drv_client_shared_close_all();
    drv_client_forget_peer();
    fake_daemon_stop(&fake);
}

int main(void)
{
    fake_daemon fake;
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! cannot set up\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    unsetenv("XDG_RUNTIME_DIR");
    if (fake_daemon_start(&fake, tmpdir, "vmlockd", FAKE_VMLOCKD) < 0) {
        printf("Bail out! cannot start the fake daemon\n");
        return 1;
    }
    drv_client_forget_peer();
    test_disabled(&fake);
    test_reuse(&fake);
    test_restart(&fake);
    test_dropped(&fake);
    test_busy_and_fork(&fake);
    test_close_all(&fake);
    fake_daemon_stop(&fake);
    test_virtlockd();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
