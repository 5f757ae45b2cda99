/* test_vmlock_host.c: TAP tests of the vmlock-host CLI against the logging fake plugin: usage errors, every command, guests left running or killed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_lease.h"
#include "vml_test.h"

static char dir[] = "/tmp/vmlock-host-test-XXXXXX";
static char log_path[128];
static char config_path[128];
static char out_path[128];
static char err_path[128];
static char guest_log_path[128];

typedef struct result {
    int status;             /* exit status, or 128 + signal */
    char out[8192];
    char err[8192];
} result;

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        abort();
    fputs(text, f);
    fclose(f);
}

static void write_config(const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text), "log = \"%s\"\n%s", log_path, extra);
    write_file(config_path, text);
    write_file(log_path, "");
}

/* Run vmlock-host with a NULL-terminated argument list (after the program name). */
static void run(result *r, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    pid_t pid;
    int status = 0;

    argv[argc++] = (char *)VMLOCK_HOST;
    va_start(ap, r);
    while (argc < 63 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(99);
        execv(VMLOCK_HOST, argv);
        _exit(98);
    }
    waitpid(pid, &status, 0);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
}

static bool check_usage(result *r, const char *needle, const char *what)
{
    bool ok = r->status == 2 && strstr(r->err, needle) != NULL &&
              strstr(r->err, "Try 'vmlock-host --help'.") != NULL && r->out[0] == '\0';

    VML_CHECK(ok, what);
    if (!ok)
        printf("#   status %d, stderr: %s", r->status, r->err);
    return ok;
}

/* The fake plugin's log, lines "PID CALL ..." */
static void read_log(char *buf, size_t len)
{
    slurp(log_path, buf, len);
}

/* pid of the first log line containing needle, or -1 */
static pid_t log_pid_of(const char *needle)
{
    char text[16384];
    char *line;
    char *save = NULL;

    read_log(text, sizeof(text));
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, needle) != NULL)
            return (pid_t)atol(line);
    }
    return -1;
}

static bool alive(pid_t pid)
{
    return pid > 0 && kill(pid, 0) == 0;
}

/* Reap any guest reparented to us (we are a subreaper) without blocking. */
static void reap_orphans(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void test_usage(void)
{
    result r;

    run(&r, "--help", NULL);
    VML_CHECK(r.status == 0 && strstr(r.out, "usage: vmlock-host") != NULL &&
              strstr(r.out, "wait-exit PID") != NULL, "--help prints the usage, exit 0");
    run(&r, NULL);
    check_usage(&r, "no command given", "no command: usage error");
    run(&r, "frobnicate", NULL);
    check_usage(&r, "unknown command 'frobnicate'", "unknown command");
    run(&r, "--bogus", "start", NULL);
    check_usage(&r, "unknown option '--bogus'", "unknown option");
    run(&r, "start", "--name", NULL);
    check_usage(&r, "option '--name' needs a value", "option without its value");
    run(&r, "start", NULL);
    check_usage(&r, "'start' needs --name", "start without --name");
    run(&r, "acquire", "--name", "vm", NULL);
    check_usage(&r, "'acquire' needs --pid", "acquire without --pid");
    run(&r, "acquire", "--name", "vm", "--pid", "abc", NULL);
    check_usage(&r, "--pid 'abc' is not a process id", "--pid abc");
    run(&r, "acquire", "--name", "vm", "--pid", "0", NULL);
    check_usage(&r, "--pid '0' is not a process id", "--pid 0");
    run(&r, "acquire", "--name", "vm", "--pid", "12x", NULL);
    check_usage(&r, "--pid '12x' is not a process id", "--pid 12x");
    run(&r, "start", "--name", "vm", "--id", "-1", NULL);
    check_usage(&r, "--id '-1' is not a domain id", "--id -1");
    run(&r, "start", "--name", "vm", "--id", "99999999999", NULL);
    check_usage(&r, "--id '99999999999' is not a domain id", "--id out of range");
    run(&r, "start", "--name", "vm", "--uuid", "not-a-uuid", NULL);
    check_usage(&r, "--uuid 'not-a-uuid' is not a UUID", "--uuid malformed");
    run(&r, "start", "--name", "vm", "--uuid", "0011223344556677-8899aabbccddeeff0", NULL);
    check_usage(&r, "is not a UUID", "--uuid with misplaced dashes");
    run(&r, "start", "--name", "", NULL);
    check_usage(&r, "--name must not be empty", "--name ''");
    run(&r, "start", "--name", "vm", "--disk", "", NULL);
    check_usage(&r, "the disk path is empty", "--disk ''");
    run(&r, "start", "--name", "vm", "--disk", "/a,bogus", NULL);
    check_usage(&r, "--disk '/a,bogus': unknown flag 'bogus'", "--disk with an unknown flag");
    run(&r, "start", "--name", "vm", "--disk", "/a,", NULL);
    check_usage(&r, "unknown flag ''", "--disk with a trailing comma");
    run(&r, "start", "--name", "vm", "--lease", "k", NULL);
    check_usage(&r, "path=P and lockspace=L are both required", "--lease without path");
    run(&r, "start", "--name", "vm", "--lease", "path=/p,lockspace=l", NULL);
    check_usage(&r, "it must start with the lease key", "--lease without a key");
    run(&r, "start", "--name", "vm", "--lease", "k,path=/p,lockspace=l,offset=x", NULL);
    check_usage(&r, "offset 'x' is not a non-negative number", "--lease with a bad offset");
    run(&r, "start", "--name", "vm", "--lease", "k,path=/p,lockspace=l,colour=red", NULL);
    check_usage(&r, "unknown field 'colour'", "--lease with an unknown field");
    run(&r, "start", "--name", "vm", "--lease", "k,path=/p,path=/q,lockspace=l", NULL);
    check_usage(&r, "path is given twice", "--lease with path twice");
    run(&r, "start", "--name", "vm", "--lease", "k,path=/p,lockspace", NULL);
    check_usage(&r, "'lockspace' is not FIELD=VALUE", "--lease with a bare field");
    run(&r, "start", "--name", "vm", "--action", "explode", NULL);
    check_usage(&r, "--action 'explode' is not one of", "--action unknown");
    run(&r, "release", "--name", "vm", "--pid", "1", "--paused", NULL);
    check_usage(&r, "option '--paused' is not valid with 'release'", "an option of another command");
    run(&r, "start", "--name", "a", "--name", "b", NULL);
    check_usage(&r, "option '--name' is given twice", "a single-valued option given twice");
    run(&r, "attach", "--name", "vm", "--pid", "1", "--disk", "/a", "--disk", "/b", NULL);
    check_usage(&r, "'attach' needs exactly one --disk or --lease (got 2)", "attach with two disks");
    run(&r, "detach", "--name", "vm", "--pid", "1", NULL);
    check_usage(&r, "'detach' needs exactly one --disk or --lease (got 0)", "detach with none");
    run(&r, "wait-exit", NULL);
    check_usage(&r, "'wait-exit' needs a PID", "wait-exit without a pid");
    run(&r, "wait-exit", "abc", NULL);
    check_usage(&r, "wait-exit PID 'abc' is not a process id", "wait-exit abc");
    run(&r, "wait-exit", "1", "2", NULL);
    check_usage(&r, "unexpected argument '2'", "wait-exit with two pids");
    run(&r, "wait-exit", "1", "--timeout", "-1", NULL);
    check_usage(&r, "--timeout '-1' is not a number of seconds", "--timeout -1");
    run(&r, "wait-exit", "1", "--name", "x", NULL);
    check_usage(&r, "option '--name' is not valid with 'wait-exit'", "domain options with wait-exit");
}

static void test_plugin_errors(void)
{
    result r;

    run(&r, "--plugin", "/nonexistent-vmh/x.so", "--config", config_path, "acquire", "--name",
        "vm", "--pid", "1", NULL);
    VML_CHECK(r.status == 1 && strcmp(r.err, "error: Plugin /nonexistent-vmh/x.so not "
                                             "accessible: No such file or directory\n") == 0,
              "a missing plugin: exit 1, 'error: MESSAGE'");
    write_config("fail = \"drvAcquire\"\nfail_code = 87\n");
    run(&r, "--plugin", FAKE_PLUGIN, "--config", config_path, "acquire", "--name", "vm",
        "--pid", "1", NULL);
    VML_CHECK(r.status == 1 && strcmp(r.err, "error: resource busy: fake failure in "
                                             "drvAcquire\n") == 0 && r.out[0] == '\0',
              "a refused acquire: exit 1 and the plugin's message as virsh shows it");
}

static void test_commands(void)
{
    char log[16384];
    char hex[VML_LEASE_NAME_LEN + 1];
    char want[512];
    result r;

    setenv("VMLOCK_PLUGIN", FAKE_PLUGIN, 1);
    setenv("VMLOCK_PLUGIN_CONFIG", config_path, 1);
    write_config("");

    run(&r, "acquire", "--name", "vm1", "--pid", "4242", "--id", "9", "--state", "S1",
        "--action", "restart", "--lease", "key1,path=/leases,lockspace=ls,offset=0",
        "--disk", "/img/a,,b.img,shared,readonly", "--disk", "/img/c.img", NULL);
    VML_CHECK(r.status == 0 && r.out[0] == '\0' && r.err[0] == '\0',
              "acquire through $VMLOCK_PLUGIN and $VMLOCK_PLUGIN_CONFIG: exit 0, silent");
    read_log(log, sizeof(log));
    VML_CHECK(vml_lease_hash("vm1", hex, NULL) == 0, "hash the name");
    /* derived uuid: SHA-256(name)[0..16] with version 8 and the RFC variant */
    snprintf(want, sizeof(want), "uuid:uuid=%.12s8%.3s%x%.3s%.12s name:string=vm1 id:uint=9 "
             "pid:uint=4242 uri:cstring=qemu:///", hex, hex + 13,
             (unsigned int)(8 + (strtoul((char[]){ hex[16], '\0' }, NULL, 16) & 3)), hex + 17,
             hex + 20);
    VML_CHECK(strstr(log, want) != NULL, "  ... uuid derived from the name; id, pid, uri passed");
    if (strstr(log, want) == NULL)
        printf("#   want %s\n#   log:\n%s", want, log);
    VML_CHECK(strstr(log, "drvAddResource type=1 name=key1 flags=0 nparams=3 path:string=/leases "
                          "offset:ulong=0 lockspace:string=ls") != NULL,
              "  ... the lease, with its three params");
    VML_CHECK(strstr(log, "drvAddResource type=0 name=/img/a,b.img flags=3 nparams=0") != NULL,
              "  ... a disk with ',,' in its path, shared and readonly");
    VML_CHECK(strstr(log, "drvAcquire state=S1 flags=0 action=2 fd=null") != NULL,
              "  ... acquire with the state and the action");

    write_config("state = \"lock-state-1\"\n");
    run(&r, "release", "--name", "vm1", "--pid", "4242", "--disk", "/img/c.img", NULL);
    VML_CHECK(r.status == 0 && strcmp(r.out, "state: lock-state-1\n") == 0,
              "release prints the plugin's state");
    read_log(log, sizeof(log));
    VML_CHECK(strstr(log, "uri:cstring=(null)") != NULL &&
              strstr(log, "drvRelease state=ptr-to-null flags=0") != NULL,
              "  ... with uri NULL and a state pointer");
    run(&r, "inquire", "--name", "vm1", "--pid", "4242", NULL);
    VML_CHECK(r.status == 0 && strcmp(r.out, "state: lock-state-1\n") == 0,
              "inquire prints the state");
    write_config("");
    run(&r, "release", "--name", "vm1", "--pid", "4242", NULL);
    VML_CHECK(r.status == 0 && strcmp(r.out, "state: none\n") == 0,
              "release without a state prints 'state: none'");

    write_config("");
    run(&r, "attach", "--name", "vm1", "--pid", "4242", "--disk", "/img/hot.img", NULL);
    read_log(log, sizeof(log));
    VML_CHECK(r.status == 0 && strstr(log, "name=/img/hot.img") != NULL &&
              strstr(log, "drvAcquire state=(null) flags=0") != NULL, "attach acquires one disk");
    write_config("");
    run(&r, "detach", "--name", "vm1", "--pid", "4242", "--lease",
        "k2,path=/l,lockspace=s,offset=4096", NULL);
    read_log(log, sizeof(log));
    VML_CHECK(r.status == 0 && strstr(log, "name=k2 flags=0 nparams=3 path:string=/l "
                                           "offset:ulong=4096") != NULL &&
              strstr(log, "drvRelease state=null flags=0") != NULL,
              "detach releases one lease, no state pointer");
}

static void test_start(void)
{
    char log[16384];
    char line[256];
    result r;
    pid_t pid = -1;
    pid_t hook_pid;
    long parsed = 0;

    write_config("");
    run(&r, "start", "--name", "vm-start", "--disk", "/img/s.img", NULL);
    VML_CHECK(r.status == 0 && sscanf(r.out, "started vm-start pid %ld\n", &parsed) == 1,
              "start prints 'started NAME pid PID'");
    pid = (pid_t)parsed;
    snprintf(line, sizeof(line), "started vm-start pid %ld\nuuid ", parsed);
    VML_CHECK(strncmp(r.out, line, strlen(line)) == 0 && strlen(r.out) == strlen(line) + 37,
              "  ... then 'uuid UUID' for a derived UUID");
    VML_CHECK(alive(pid), "  ... and the guest keeps running after vmlock-host exits");
    read_log(log, sizeof(log));
    hook_pid = log_pid_of("drvAcquire state=(null) flags=3");
    VML_CHECK(hook_pid == pid, "  ... the start hook ran in the guest (flags REGISTER_ONLY|RESTRICT)");
    VML_CHECK(log_pid_of("drvAcquire state=(null) flags=0") > 0 &&
              log_pid_of("drvAcquire state=(null) flags=0") != pid,
              "  ... then vmlock-host acquired for it, as libvirtd at CPU start");
    snprintf(line, sizeof(line), "pid:uint=%ld", parsed);
    VML_CHECK(strstr(log, line) != NULL, "  ... both for the guest's pid");

    {
        char pid_text[32];

        snprintf(pid_text, sizeof(pid_text), "%ld", parsed);
        run(&r, "wait-exit", pid_text, "--timeout", "0", NULL);
        VML_CHECK(r.status == 1 && strstr(r.err, "is still running") != NULL,
                  "wait-exit --timeout 0 on a running guest: exit 1");
        kill(pid, SIGTERM);
        run(&r, "wait-exit", pid_text, "--timeout", "30", NULL);
        VML_CHECK(r.status == 0, "wait-exit returns once the guest is gone");
        reap_orphans();
    }

    write_config("");
    run(&r, "start", "--name", "vm-paused", "--uuid", "00112233-4455-6677-8899-aabbccddeeff",
        "--paused", "--ignore-sigterm", NULL);
    VML_CHECK(r.status == 0 && sscanf(r.out, "started vm-paused pid %ld\n", &parsed) == 1 &&
              strchr(r.out, '\n') == r.out + strlen(r.out) - 1,
              "start --paused with --uuid: one line, no uuid line");
    pid = (pid_t)parsed;
    VML_CHECK(log_pid_of("drvAcquire state=(null) flags=0") == -1 &&
              log_pid_of("uuid:uuid=00112233445566778899aabbccddeeff") == pid,
              "  ... only the start hook ran, with the given uuid");
    {
        char status_path[64];
        char text[4096];
        char *sigign;

        snprintf(status_path, sizeof(status_path), "/proc/%ld/status", parsed);
        slurp(status_path, text, sizeof(text));
        sigign = strstr(text, "SigIgn:");
        VML_CHECK(sigign != NULL && (strtoull(sigign + 7, NULL, 16) & (1ULL << (SIGTERM - 1))),
                  "  ... --ignore-sigterm: the guest ignores SIGTERM");
    }
    kill(pid, SIGKILL);
    {
        char pid_text[32];

        snprintf(pid_text, sizeof(pid_text), "%ld", parsed);
        run(&r, "wait-exit", pid_text, NULL);
        VML_CHECK(r.status == 0, "  ... SIGKILL ends it");
    }
    reap_orphans();

    write_config("fail = \"drvAcquire\"\nfail_flags = 0\nfail_code = 87\n");
    run(&r, "start", "--name", "vm-busy", NULL);
    hook_pid = log_pid_of("drvAcquire state=(null) flags=3");
    VML_CHECK(r.status == 1 && strcmp(r.err, "error: resource busy: fake failure in "
                                             "drvAcquire\n") == 0 && r.out[0] == '\0',
              "start refused at CPU start: exit 1, 'error: MESSAGE'");
    VML_CHECK(hook_pid > 0 && !alive(hook_pid), "  ... and the guest was killed and reaped");

    write_config("fail = \"drvAcquire\"\nfail_flags = 3\n");
    run(&r, "start", "--name", "vm-hook", "--log", guest_log_path, NULL);
    hook_pid = log_pid_of("drvAcquire state=(null) flags=3");
    VML_CHECK(r.status == 1 && strcmp(r.err, "error: internal error: fake failure in "
                                             "drvAcquire\n") == 0,
              "start refused in the start hook: exit 1, the hook's error");
    VML_CHECK(hook_pid > 0 && !alive(hook_pid), "  ... no guest is left");
    slurp(guest_log_path, log, sizeof(log));
    VML_CHECK(strcmp(log, "error: internal error: fake failure in drvAcquire\n") == 0,
              "  ... the hook printed the error to the guest's log");
}

int main(void)
{
    /* guests outlive vmlock-host; as their subreaper we can reap them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (mkdtemp(dir) == NULL) {
        printf("Bail out! no temp dir\n");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s/calls.log", dir);
    snprintf(config_path, sizeof(config_path), "%s/fake.conf", dir);
    snprintf(out_path, sizeof(out_path), "%s/out", dir);
    snprintf(err_path, sizeof(err_path), "%s/err", dir);
    snprintf(guest_log_path, sizeof(guest_log_path), "%s/guest.log", dir);
    unsetenv("VMLOCK_PLUGIN");
    unsetenv("VMLOCK_PLUGIN_CONFIG");
    unsetenv("VMLOCK_HOST_LOG");
    setenv("VMLOCK_STUB_QEMU", STUB_QEMU, 1);

    test_usage();
    test_plugin_errors();
    test_commands();
    test_start();

    reap_orphans();
    unlink(log_path);
    unlink(config_path);
    unlink(out_path);
    unlink(err_path);
    unlink(guest_log_path);
    rmdir(dir);
    return vml_test_done();
}
