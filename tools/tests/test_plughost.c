/* test_plughost.c: TAP tests of vmh_plughost against a logging fake plugin: loading errors, libvirt's exact params and call sequences, error capture, guests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmh_plughost.h"
#include "vml_test.h"

static char dir[] = "/tmp/vmh-plughost-test-XXXXXX";
static char log_path[128];
static char config_path[128];
static char holder_path[128];
static char guest_log_path[128];

static const vmh_lease leases[] = {
    { "lease1", "/ls/path", 0, "lsA" },
    { "lease2", "/p2", 512, NULL },
};
static const vmh_disk disks[] = {
    { "/img/a.qcow2", 0 },
    { "/img/b,c.raw", VIR_LOCK_MANAGER_RESOURCE_SHARED | VIR_LOCK_MANAGER_RESOURCE_READONLY },
};

static vmh_domain test_domain(void)
{
    vmh_domain dom = {
        .uuid = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff },
        .name = "vm-test",
        .id = 7,
        .pid = 4242,
        .uri = NULL,
        .action = VIR_DOMAIN_LOCK_FAILURE_PAUSE,
        .leases = leases,
        .nleases = 2,
        .disks = disks,
        .ndisks = 2,
    };
    return dom;
}

static __attribute__((noinline)) const char *str(const char *s)
{
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        abort();
    fputs(text, f);
    fclose(f);
}

/* A config for the fake plugin: logging to log_path, plus extra settings. */
static void write_config(const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text), "log = \"%s\"\nholder = \"%s\"\n%s", log_path, holder_path,
             extra);
    write_file(config_path, text);
}

static void empty_log(void)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd >= 0)
        close(fd);
}

static vmh_plugin *open_fake(const char *extra)
{
    vmh_plugin *plugin = NULL;
    vml_error err;

    write_config(extra);
    vml_error_clear(&err);
    if (vmh_plugin_open(FAKE_PLUGIN, config_path, &plugin, &err) < 0)
        printf("# cannot open the fake plugin: %s\n", err.message);
    empty_log();
    return plugin;
}

/*
 * The log must be exactly want[0..n), each line "PID " + want[i].  pid 0 means ours.
 * The log is emptied afterwards.
 */
static bool check_log(const char *const *want, size_t n, pid_t pid, const char *what)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    size_t i = 0;
    bool same = f != NULL;

    if (pid == 0)
        pid = getpid();
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char want_line[4200];

        line[strcspn(line, "\n")] = '\0';
        if (i < n)
            snprintf(want_line, sizeof(want_line), "%ld %s", (long)pid, want[i]);
        if (i >= n || strcmp(line, want_line) != 0) {
            if (same)
                printf("#   line %zu: got  '%s'\n#   want '%s'\n", i + 1, line,
                       i < n ? want_line : "(nothing)");
            same = false;
        }
        i++;
    }
    if (i < n && same) {
        printf("#   missing line %zu: '%s'\n", i + 1, want[i]);
        same = false;
    }
    if (f != NULL)
        fclose(f);
    empty_log();
    return VML_CHECK(same, what);
}

/* "drvNew type=0 flags=F nparams=5 privateData=null uuid:... uri:cstring=URI" */
static void new_line(char *buf, size_t len, unsigned int flags, long pid, const char *uri)
{
    snprintf(buf, len, "drvNew type=0 flags=%u nparams=5 privateData=null "
             "uuid:uuid=00112233445566778899aabbccddeeff name:string=vm-test id:uint=7 "
             "pid:uint=%ld uri:cstring=%s", flags, pid, uri);
}

#define LEASE1 "drvAddResource type=1 name=lease1 flags=0 nparams=3 path:string=/ls/path offset:ulong=0 lockspace:string=lsA"
#define LEASE2 "drvAddResource type=1 name=lease2 flags=0 nparams=2 path:string=/p2 offset:ulong=512"
#define DISK_A "drvAddResource type=0 name=/img/a.qcow2 flags=0 nparams=0"
#define DISK_B "drvAddResource type=0 name=/img/b,c.raw flags=3 nparams=0"

static void test_loading(void)
{
    vmh_plugin *plugin = NULL;
    vml_error err;
    char not_elf[160];

    vml_error_clear(&err);
    VML_CHECK(vmh_plugin_open("/nonexistent-vmh/lockd.so", config_path, &plugin, &err) == -1 &&
              plugin == NULL && err.code == VIR_ERR_SYSTEM_ERROR &&
              err.domain == VIR_FROM_LOCKING, "a missing plugin is a system error");
    VML_CHECK_STR(str(err.message),
                  "Plugin /nonexistent-vmh/lockd.so not accessible: No such file or directory",
                  "  ... in libvirt's words");

    snprintf(not_elf, sizeof(not_elf), "%s/not-elf.so", dir);
    write_file(not_elf, "this is not a shared object\n");
    VML_CHECK(vmh_plugin_open(not_elf, config_path, &plugin, &err) == -1 &&
              err.code == VIR_ERR_SYSTEM_ERROR, "a file that is not a shared object is refused");
    VML_CHECK(strncmp(err.message, "Failed to load plugin ", 22) == 0 &&
              strstr(err.message, not_elf) != NULL, "  ... 'Failed to load plugin PATH: ...'");
    unlink(not_elf);

    VML_CHECK(vmh_plugin_open(FAKE_PLUGIN_NOSYM, config_path, &plugin, &err) == -1 &&
              err.code == VIR_ERR_INTERNAL_ERROR, "a plugin without virLockDriverImpl is refused");
    VML_CHECK_STR(str(err.message),
                  "internal error: Missing plugin initialization symbol 'virLockDriverImpl'",
                  "  ... in libvirt's words");
    VML_CHECK(vmh_plugin_open(FAKE_PLUGIN_NOINQUIRE, config_path, &plugin, &err) == -1,
              "a plugin with a NULL callback is refused");
    VML_CHECK_STR(str(err.message),
                  "internal error: Missing 'drvInquire' field in lock manager driver",
                  "  ... naming the field");

    write_config("");
    empty_log();
    VML_CHECK(vmh_plugin_open(FAKE_PLUGIN, config_path, &plugin, &err) == 0 && plugin != NULL,
              "the fake plugin loads");
    {
        char line[300];
        const char *want[1] = { line };

        snprintf(line, sizeof(line), "drvInit version=1000000 config=%s flags=0", config_path);
        check_log(want, 1, 0, "drvInit(1000000, config path, 0)");
    }
    VML_CHECK(!vmh_plugin_uses_libvirt(plugin) &&
              vmh_plugin_driver(plugin)->version == VIR_LOCK_MANAGER_VERSION,
              "the fake plugin does not bring libvirt.so.0; its table is reachable");
    vmh_plugin_close(plugin);
    {
        const char *want[] = { "drvDeinit" };

        check_log(want, 1, 0, "close calls drvDeinit");
    }
    vmh_plugin_close(NULL);

    write_config("fail = \"drvInit\"\nfail_code = 9\n");
    empty_log();
    plugin = NULL;
    VML_CHECK(vmh_plugin_open(FAKE_PLUGIN, config_path, &plugin, &err) == -1 && plugin == NULL &&
              err.code == VIR_ERR_OPERATION_FAILED && err.domain == VIR_FROM_LOCKING,
              "a failing drvInit fails the open with the plugin's error");
    VML_CHECK_STR(str(err.message), "operation failed: fake failure in drvInit",
                  "  ... formatted with the code's template");
    write_file(config_path, "this is = not valid\n");
    VML_CHECK(vmh_plugin_open(FAKE_PLUGIN, config_path, &plugin, &err) == -1,
              "drvInit failing without an error fails the open");
    VML_CHECK_STR(str(err.message), "An error occurred, but the cause is unknown",
                  "  ... with libvirt's words for an unknown cause");
}

static void test_operations(void)
{
    vmh_plugin *plugin = open_fake("state = \"saved-state\"\n");
    vmh_domain dom = test_domain();
    const char *uri = vmh_default_uri();
    char new_uri[512];
    char new_null[512];
    char *state = NULL;
    vml_error err;

    if (!VML_CHECK(plugin != NULL, "open the fake plugin"))
        return;
    vml_error_clear(&err);
    new_line(new_uri, sizeof(new_uri), 0, 4242, uri);
    new_line(new_null, sizeof(new_null), 0, 4242, "(null)");

    VML_CHECK(vmh_acquire(plugin, &dom, "st1", &err) == 0, "acquire (CPU start) succeeds");
    {
        const char *want[] = { new_uri, LEASE1, LEASE2, DISK_A, DISK_B,
                               "drvAcquire state=st1 flags=0 action=3 fd=null", "drvFree" };

        check_log(want, 7, 0, "  ... new(0, 5 params, uri), leases then disks, acquire(state, 0, "
                  "action, NULL), free");
    }
    VML_CHECK(vmh_release(plugin, &dom, &state, &err) == 0, "release (pause) succeeds");
    VML_CHECK_STR(str(state), "saved-state", "  ... returning the plugin's state string");
    free(state);
    state = NULL;
    {
        const char *want[] = { new_null, LEASE1, LEASE2, DISK_A, DISK_B,
                               "drvRelease state=ptr-to-null flags=0", "drvFree" };

        check_log(want, 7, 0, "  ... uri NULL, release(&state (NULL), 0)");
    }
    VML_CHECK(vmh_inquire(plugin, &dom, &state, &err) == 0 && state != NULL,
              "inquire succeeds with a state");
    free(state);
    state = NULL;
    {
        const char *want[] = { new_null, LEASE1, LEASE2, DISK_A, DISK_B,
                               "drvInquire state=ptr-to-null flags=0", "drvFree" };

        check_log(want, 7, 0, "  ... uri NULL, inquire(&state, 0)");
    }
    VML_CHECK(vmh_attach_disk(plugin, &dom, &disks[1], &err) == 0, "disk hotplug succeeds");
    {
        const char *want[] = { new_uri, DISK_B, "drvAcquire state=(null) flags=0 action=3 fd=null",
                               "drvFree" };

        check_log(want, 4, 0, "  ... that one disk, uri set, acquire(NULL, 0)");
    }
    VML_CHECK(vmh_detach_disk(plugin, &dom, &disks[0], &err) == 0, "disk unplug succeeds");
    {
        const char *want[] = { new_null, DISK_A, "drvRelease state=null flags=0", "drvFree" };

        check_log(want, 4, 0, "  ... that one disk, uri NULL, release(NULL, 0)");
    }
    VML_CHECK(vmh_attach_lease(plugin, &dom, &leases[0], &err) == 0 &&
              vmh_detach_lease(plugin, &dom, &leases[1], &err) == 0,
              "lease hotplug and unplug succeed");
    {
        const char *want[] = { new_uri, LEASE1, "drvAcquire state=(null) flags=0 action=3 fd=null",
                               "drvFree", new_null, LEASE2, "drvRelease state=null flags=0",
                               "drvFree" };

        check_log(want, 8, 0, "  ... each with its one lease");
    }
    dom.uri = "qemu:///embed?root=/x";
    dom.ndisks = 0;
    dom.nleases = 0;
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == 0, "acquire with no resources");
    {
        char line[512];
        const char *want[] = { line, "drvAcquire state=(null) flags=0 action=3 fd=null",
                               "drvFree" };

        new_line(line, sizeof(line), 0, 4242, "qemu:///embed?root=/x");
        check_log(want, 3, 0, "  ... passes the domain's own uri");
    }
    vmh_plugin_close(plugin);
}

static void test_low_level(void)
{
    vmh_plugin *plugin = open_fake("");
    vmh_domain dom = test_domain();
    vmh_context *ctx = NULL;
    int fd = 1234;
    vml_error err;

    if (!VML_CHECK(plugin != NULL, "open the fake plugin"))
        return;
    vml_error_clear(&err);
    VML_CHECK(vmh_context_new(plugin, &dom, VIR_LOCK_MANAGER_NEW_STARTED, false, &ctx, &err) == 0 &&
              vmh_context_acquire(ctx, "s", 7, VIR_DOMAIN_LOCK_FAILURE_IGNORE, &fd, &err) == 0 &&
              fd >= 3, "a context can make calls libvirt never makes; *fd is the plugin's");
    if (fd >= 0)
        close(fd);
    vmh_context_free(ctx);
    vmh_context_free(NULL);
    {
        char line[512];
        const char *want[] = { line, "drvAcquire state=s flags=7 action=4 fd=-1", "drvFree" };

        new_line(line, sizeof(line), VIR_LOCK_MANAGER_NEW_STARTED, 4242, "(null)");
        check_log(want, 3, 0, "  ... with *fd set to -1 before drvAcquire, as libvirt's wrapper");
    }
    vmh_plugin_close(plugin);
}

static void test_errors(void)
{
    vmh_domain dom = test_domain();
    vmh_plugin *plugin;
    char *state = (char *)"untouched";
    char new_uri[512];
    vml_error err;

    new_line(new_uri, sizeof(new_uri), 0, 4242, vmh_default_uri());
    vml_error_clear(&err);

    plugin = open_fake("fail = \"drvNew\"\nfail_code = 87\n");
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 && err.code == VIR_ERR_RESOURCE_BUSY &&
              err.domain == VIR_FROM_LOCKING, "a failing drvNew fails with the plugin's error");
    VML_CHECK_STR(str(err.message), "resource busy: fake failure in drvNew",
                  "  ... message formatted as libvirt formats it");
    {
        const char *want[] = { new_uri, "drvNew FAILS" };

        check_log(want, 2, 0, "  ... and drvFree is not called after a failed drvNew");
    }
    vmh_plugin_close(plugin);

    plugin = open_fake("fail = \"drvAddResource\"\n");
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 && err.code == VIR_ERR_INTERNAL_ERROR,
              "a failing drvAddResource fails the operation");
    {
        const char *want[] = { new_uri, LEASE1, "drvAddResource FAILS", "drvFree" };

        check_log(want, 4, 0, "  ... stops adding and frees the context");
    }
    vmh_plugin_close(plugin);

    plugin = open_fake("fail = \"drvAcquire\"\nfail_silent = 1\n");
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 &&
              err.code == VIR_ERR_OPERATION_FAILED, "a silent acquire failure at CPU start");
    VML_CHECK_STR(str(err.message), "operation failed: resume operation failed",
                  "  ... gets libvirt's substitute message");
    VML_CHECK(vmh_attach_disk(plugin, &dom, &disks[0], &err) == -1,
              "a silent acquire failure at hotplug");
    VML_CHECK_STR(str(err.message), "An error occurred, but the cause is unknown",
                  "  ... gets the unknown-cause message");
    vmh_plugin_close(plugin);

    plugin = open_fake("fail = \"drvRelease\"\nstate = \"x\"\n");
    VML_CHECK(vmh_release(plugin, &dom, &state, &err) == -1 && state == NULL &&
              err.code == VIR_ERR_INTERNAL_ERROR, "a failing release returns no state");
    VML_CHECK_STR(str(err.message), "internal error: fake failure in drvRelease",
                  "  ... and the plugin's error");
    vmh_plugin_close(plugin);

    {
        /* the errors of a plugin call do not leak into the next one */
        plugin = open_fake("fail = \"drvInquire\"\n");
        vml_error_clear(&err);
        VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == 0 && err.code == 0,
                  "a succeeding call leaves err untouched");
        vmh_plugin_close(plugin);
    }
}

/* Sorted descriptor numbers open in pid, into fds; the count. */
static size_t open_fds(pid_t pid, int *fds, size_t max)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && n < max)
            fds[n++] = atoi(e->d_name);
    }
    if (d != NULL)
        closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    }
    return n;
}

/* The SigIgn mask of pid from /proc. */
static unsigned long long ignored_signals(pid_t pid)
{
    char path[64];
    char line[256];
    unsigned long long mask = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "SigIgn:", 7) == 0)
            mask = strtoull(line + 7, NULL, 16);
    }
    if (f != NULL)
        fclose(f);
    return mask;
}

static void test_guests(void)
{
    vmh_plugin *plugin = open_fake("");
    vmh_domain dom = test_domain();
    vmh_guest_opts opts = { .stub_path = STUB_QEMU, .ignore_sigterm = false, .log_fd = -1 };
    pid_t pid = -1;
    bool exited = false;
    vml_error err;

    if (!VML_CHECK(plugin != NULL, "open the fake plugin"))
        return;
    vml_error_clear(&err);
    dom.pid = 1;    /* must be replaced by the child's own pid */
    if (!VML_CHECK(vmh_guest_spawn(plugin, &dom, &opts, &pid, &err) == 0 && pid > 0,
                   "spawn a guest")) {
        printf("#   %s\n", err.message);
        return;
    }
    {
        char line[512];
        const char *want[] = { line, LEASE1, LEASE2, DISK_A, DISK_B,
                               "drvAcquire state=(null) flags=3 action=3 fd=-1", "drvFree" };

        new_line(line, sizeof(line), VIR_LOCK_MANAGER_NEW_STARTED, (long)pid,
                 vmh_default_uri());
        check_log(want, 7, pid, "  ... the start hook ran in the guest process with pid = its "
                  "own: new(NEW_STARTED, uri), all resources, acquire(REGISTER_ONLY|RESTRICT, &fd)");
    }
    {
        char exe[64];
        char target[PATH_MAX];
        char want_exe[PATH_MAX];
        ssize_t n;

        snprintf(exe, sizeof(exe), "/proc/%ld/exe", (long)pid);
        n = readlink(exe, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        VML_CHECK(realpath(STUB_QEMU, want_exe) != NULL && strcmp(target, want_exe) == 0,
                  "  ... and then became the stand-in QEMU");
    }
    {
        int fds[16];
        size_t n = open_fds(pid, fds, 16);
        char link[64];
        char target[PATH_MAX];
        ssize_t len = -1;

        if (n == 4) {
            snprintf(link, sizeof(link), "/proc/%ld/fd/%d", (long)pid, fds[3]);
            len = readlink(link, target, sizeof(target) - 1);
        }
        target[len > 0 ? len : 0] = '\0';
        VML_CHECK(n == 4 && fds[0] == 0 && fds[1] == 1 && fds[2] == 2 &&
                  strcmp(target, holder_path) == 0,
                  "  ... keeping stdio and the plugin's holder descriptor, nothing else");
    }
    VML_CHECK((ignored_signals(pid) & (1ULL << (SIGTERM - 1))) == 0,
              "  ... SIGTERM is not ignored by default");
    VML_CHECK(vmh_wait_exit(pid, 0, &exited, &err) == 0 && !exited,
              "wait_exit with timeout 0 on a live guest: not exited");
    VML_CHECK(vmh_guest_kill(pid, &err) == 0 && waitpid(pid, NULL, WNOHANG) == -1 &&
              errno == ECHILD, "guest_kill kills and reaps the guest");
    VML_CHECK(vmh_wait_exit(pid, -1, &exited, &err) == 0 && exited,
              "wait_exit on a gone pid: exited");
    VML_CHECK(vmh_guest_kill(pid, &err) == 0, "killing a gone guest is not an error");

    opts.ignore_sigterm = true;
    VML_CHECK(vmh_guest_spawn(plugin, &dom, &opts, &pid, &err) == 0, "spawn with ignore_sigterm");
    VML_CHECK((ignored_signals(pid) & (1ULL << (SIGTERM - 1))) != 0,
              "  ... the guest ignores SIGTERM once it is ready");
    kill(pid, SIGKILL);
    VML_CHECK(vmh_wait_exit(pid, -1, &exited, &err) == 0 && exited,
              "wait_exit sees an unreaped (zombie) child as exited");
    waitpid(pid, NULL, 0);
    empty_log();

    opts.ignore_sigterm = false;
    opts.stub_path = "/nonexistent-vmh/stub";
    VML_CHECK(vmh_guest_spawn(plugin, &dom, &opts, &pid, &err) == -1 && pid == -1 &&
              err.code == VIR_ERR_SYSTEM_ERROR, "a stand-in QEMU that cannot be executed");
    VML_CHECK(strstr(err.message, "cannot execute '/nonexistent-vmh/stub'") != NULL &&
              waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD,
              "  ... is reported, and the child is reaped");
    opts.stub_path = "/bin/true";
    VML_CHECK(vmh_guest_spawn(plugin, &dom, &opts, &pid, &err) == -1 &&
              strstr(err.message, "exited with status 0 before it was ready") != NULL,
              "a guest that exits before it is ready is reported");
    vmh_plugin_close(plugin);

    plugin = open_fake("fail = \"drvAcquire\"\nfail_code = 87\n");
    opts.stub_path = STUB_QEMU;
    opts.log_fd = open(guest_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    VML_CHECK(vmh_guest_spawn(plugin, &dom, &opts, &pid, &err) == -1 && pid == -1 &&
              err.code == VIR_ERR_RESOURCE_BUSY && err.domain == VIR_FROM_LOCKING,
              "a failing start hook fails the spawn with the plugin's error");
    VML_CHECK_STR(str(err.message), "resource busy: fake failure in drvAcquire",
                  "  ... and message");
    VML_CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "  ... the child is reaped");
    close(opts.log_fd);
    {
        FILE *f = fopen(guest_log_path, "r");
        char line[256] = "";

        if (f != NULL) {
            if (fgets(line, sizeof(line), f) == NULL)
                line[0] = '\0';
            fclose(f);
        }
        VML_CHECK_STR(str(line), "error: resource busy: fake failure in drvAcquire\n",
                      "  ... after printing 'error: MESSAGE' to its stderr (the log)");
    }
    vmh_plugin_close(plugin);
}

/*
 * libvirt's own lockd.so: errors it raises through virReportErrorHelper and errors raised
 * inside libvirt.so.0 must both reach the caller.  Run as root only (unprivileged lockd.so
 * would spawn a virtlockd) and only when no virtlockd is listening (leave a real one alone):
 * then every acquire fails to connect, inside libvirt.
 */
static void test_lockd(void)
{
    static const char socket_path[] = "/run/libvirt/virtlockd-sock";
    vmh_domain dom = test_domain();
    vmh_disk disk = { "/nonexistent-vmh/disk.img", 0 };
    vmh_plugin *plugin = NULL;
    const char *skip = NULL;
    char *state = (char *)"untouched";
    vml_error err;

    if (geteuid() != 0)
        skip = "not root: lockd.so would spawn a virtlockd";
    else if (access(LOCKD_PLUGIN, R_OK) != 0)
        skip = "libvirt's lockd.so is not installed";
    else if (access(socket_path, F_OK) == 0)
        skip = "a virtlockd is running; leaving it alone";
    if (skip != NULL) {
        char what[160];

        snprintf(what, sizeof(what), "lockd.so error capture # SKIP %s", skip);
        VML_CHECK(true, what);
        return;
    }
    vml_error_clear(&err);
    if (!VML_CHECK(vmh_plugin_open(LOCKD_PLUGIN, "/nonexistent-vmh/qemu-lockd.conf", &plugin,
                                   &err) == 0, "libvirt's lockd.so loads and initialises")) {
        printf("#   %s\n", err.message);
        return;
    }
    VML_CHECK(vmh_plugin_uses_libvirt(plugin), "  ... it brought libvirt.so.0 in");
    dom.nleases = 0;
    dom.ndisks = 1;
    dom.disks = &disk;
    dom.id = 0;
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 && err.code == VIR_ERR_INTERNAL_ERROR &&
              err.domain == VIR_FROM_LOCKING, "an error lockd.so reports itself is captured");
    VML_CHECK_STR(str(err.message), "internal error: Missing ID parameter for domain object",
                  "  ... with lockd's message");
    dom.id = 1;
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 && err.code == VIR_ERR_SYSTEM_ERROR,
              "an error raised inside libvirt.so.0 is captured");
    VML_CHECK_STR(str(err.message), "Failed to connect socket to '/run/libvirt/virtlockd-sock': "
                  "No such file or directory", "  ... with libvirt's message");
    dom.id = 0;
    VML_CHECK(vmh_acquire(plugin, &dom, NULL, &err) == -1 &&
              strstr(err.message, "Missing ID") != NULL,
              "libvirt's earlier error does not mask the next one");
    dom.id = 1;
    VML_CHECK(vmh_inquire(plugin, &dom, &state, &err) == 0 && state == NULL,
              "lockd's inquire returns no state");
    vmh_plugin_close(plugin);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s/calls.log", dir);
    snprintf(config_path, sizeof(config_path), "%s/fake.conf", dir);
    snprintf(holder_path, sizeof(holder_path), "%s/holder", dir);
    snprintf(guest_log_path, sizeof(guest_log_path), "%s/guest.log", dir);

    test_loading();
    test_operations();
    test_low_level();
    test_errors();
    test_guests();
    test_lockd();

    unlink(log_path);
    unlink(config_path);
    unlink(holder_path);
    unlink(guest_log_path);
    rmdir(dir);
    return vml_test_done();
}
