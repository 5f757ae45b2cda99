/* test_drv_plugin.c: the built vmlockd.so loaded as libvirt loads it, driven through virLockDriverImpl. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#undef VIR_UUID_BUFLEN              /* lock_driver_abi.h spells it differently */
#include "lock_driver_abi.h"

#include "fake_daemon.h"
#include "vml_error.h"
#include "vml_lease.h"
#include "vml_test.h"

#ifndef VMLOCKD_PLUGIN_PATH
#error "meson passes the path of the built vmlockd.so"
#endif

static char tmpdir[] = "/tmp/vmlockd-drv-plugin-XXXXXX";
static virLockDriver *drv;
static fake_daemon fake;

/* ---- libvirt's error entry point, as the plugin finds it with dlsym(RTLD_DEFAULT) ---- */

static struct {
    unsigned int count;
    int domain;
    int code;
    char detail[2048];
    char message[2048];
    bool located;       /* file, function and line were given */
} reported;

void virReportErrorHelper(int domcode, int errcode, const char *filename, const char *funcname,
                          size_t linenr, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void virReportErrorHelper(int domcode, int errcode, const char *filename, const char *funcname,
                          size_t linenr, const char *fmt, ...)
{
    va_list ap;

    reported.count++;
    reported.domain = domcode;
    reported.code = errcode;
    va_start(ap, fmt);
    vsnprintf(reported.detail, sizeof(reported.detail), fmt, ap);
    va_end(ap);
    /* libvirt prefixes the detail the same way vml_error_template() describes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(reported.message, sizeof(reported.message), vml_error_template(errcode),
             reported.detail);
#pragma GCC diagnostic pop
    reported.located = filename != NULL && funcname != NULL && linenr > 0;
}

static void forget_reported(void)
{
    memset(&reported, 0, sizeof(reported));
}

/* The last call reported exactly one error with this code and domain, and the message contains want. */
static void check_reported(int code, int domain, const char *want, const char *what)
{
    bool ok = reported.count == 1 && reported.code == code && reported.domain == domain &&
              strstr(reported.message, want) != NULL && reported.located;

    if (!VML_CHECK(ok, what))
        printf("#   got %u error(s): code %d domain %d '%s'\n", reported.count, reported.code,
               reported.domain, reported.message);
    forget_reported();
}

/* ---- domain description, as libvirt builds it ---- */

typedef struct {
    virLockManagerParam params[6];
    size_t nparams;
    char name[64];
} domain_params;

static void domain_init(domain_params *dp, const char *name, unsigned int id, unsigned int pid,
                        const char *uri)
{
    memset(dp, 0, sizeof(*dp));
    snprintf(dp->name, sizeof(dp->name), "%s", name);
    dp->params[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_UUID;
    dp->params[0].key = "uuid";
    for (int i = 0; i < 16; i++)
        dp->params[0].value.uuid[i] = (unsigned char)(0xc0 + i);
    dp->params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    dp->params[1].key = "name";
    dp->params[1].value.str = dp->name;
    dp->params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_UINT;
    dp->params[2].key = "id";
    dp->params[2].value.iv = (int)id;           /* libvirt writes UINT params through .iv */
    dp->params[3].type = VIR_LOCK_MANAGER_PARAM_TYPE_UINT;
    dp->params[3].key = "pid";
    dp->params[3].value.iv = (int)pid;
    dp->params[4].type = VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING;
    dp->params[4].key = "uri";
    dp->params[4].value.cstr = uri;
    dp->nparams = 5;
}

static int new_context(virLockManager *man, domain_params *dp, unsigned int flags)
{
    memset(man, 0, sizeof(*man));
    man->driver = drv;
    return drv->drvNew(man, VIR_LOCK_MANAGER_OBJECT_TYPE_DOMAIN, dp->nparams, dp->params, flags);
}

static const char *write_config(const char *name, const char *text)
{
    static char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "we");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

static void check_log(const char *want, const char *what)
{
    char *got = fake_daemon_take_log(&fake);

    VML_CHECK_STR(got, want, what);
    free(got);
}

/* ---- tests ---- */

static void *test_load(void)
{
    void *handle = dlopen(VMLOCKD_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    static const char *const internal[] = {
        "drv_config_load", "drv_client_acquire", "vml_lease_hash", "vml_client_call",
        "vml_log_message", "xdr_vml_ext_batch_args",
    };
    bool hidden = true;

    if (!VML_CHECK(handle != NULL, "vmlockd.so loads with RTLD_NOW|RTLD_LOCAL")) {
        printf("#   %s\n", dlerror());
        return NULL;
    }
    drv = dlsym(handle, "virLockDriverImpl");
    if (!VML_CHECK(drv != NULL, "virLockDriverImpl is exported"))
        return NULL;
    VML_CHECK(drv->version == 1000000 && drv->flags == 0,
              "version is VIR_LOCK_MANAGER_VERSION, flags 0 (a lock state is produced, but "
              "not required: no USES_STATE, so migration v2 and lockd peers keep working)");
    VML_CHECK(drv->drvInit && drv->drvDeinit && drv->drvNew && drv->drvFree &&
              drv->drvAddResource && drv->drvAcquire && drv->drvRelease && drv->drvInquire,
              "all eight callbacks are set");
    for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
        if (dlsym(handle, internal[i]) != NULL) {
            printf("#   %s is exported\n", internal[i]);
            hidden = false;
        }
    }
    VML_CHECK(hidden, "no internal symbol is exported");
    return handle;
}

static void test_init(void)
{
    domain_params dp;
    virLockManager man;
    char config_text[1200];
    const char *bad;

    forget_reported();
    VML_CHECK(drv->drvInit(VIR_LOCK_MANAGER_VERSION, NULL, 1) < 0, "drvInit refuses flags");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING,
                   "invalid argument: unsupported flags (0x1) in function drvInit",
                   "... reported to libvirt with lockd's message");
    VML_CHECK(drv->drvInit(2000000, NULL, 0) < 0, "drvInit refuses ABI major version 2");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "version 2000000 is not supported",
                   "... naming the version");

    bad = write_config("bad.conf", "auto_disk_leases = 1\nfile_lockspace_dir = 7\n");
    VML_CHECK(drv->drvInit(VIR_LOCK_MANAGER_VERSION, bad, 0) < 0, "drvInit refuses a bad config");
    check_reported(VIR_ERR_CONF_SYNTAX, VIR_FROM_CONF, "bad.conf:2: 'file_lockspace_dir'",
                   "... naming FILE:LINE and the key");

    domain_init(&dp, "vm1", 7, (unsigned int)getpid(), "qemu:///system");
    VML_CHECK(new_context(&man, &dp, 0) < 0 && man.privateData == NULL,
              "drvNew fails while the plugin is not initialised");
    forget_reported();

    snprintf(config_text, sizeof(config_text),
             "file_lockspace_dir = \"/leases\"\nunix_sock_path = \"%s\"\n", fake.sock_path);
    VML_CHECK(drv->drvInit(VIR_LOCK_MANAGER_VERSION, write_config("good.conf", config_text), 0) == 0,
              "drvInit accepts a good config");
    check_log("CREATE_LOCKSPACE /leases\n", "drvInit registers file_lockspace_dir with the daemon");

    VML_CHECK(drv->drvInit(VIR_LOCK_MANAGER_VERSION, bad, 0) == 0,
              "a second drvInit (another hypervisor driver) succeeds");
    check_log("", "... without reading its file or talking to the daemon");
    VML_CHECK(drv->drvDeinit() == 0, "the second driver's drvDeinit succeeds");
    VML_CHECK(new_context(&man, &dp, 0) == 0, "the first driver's configuration survives it");
    drv->drvFree(&man);
    VML_CHECK(man.privateData == NULL, "drvFree clears privateData");
    VML_CHECK(reported.count == 0, "no error was reported on the way");
}

static void test_new(void)
{
    domain_params dp;
    virLockManager man;

    forget_reported();
    domain_init(&dp, "vm1", 7, 1234, NULL);
    VML_CHECK(new_context(&man, &dp, 0) == 0, "drvNew accepts uuid, name, id, pid and a NULL uri");
    drv->drvFree(&man);
    VML_CHECK(new_context(&man, &dp, VIR_LOCK_MANAGER_NEW_STARTED) == 0,
              "drvNew accepts NEW_STARTED");
    drv->drvFree(&man);

    VML_CHECK(new_context(&man, &dp, 2) < 0 && man.privateData == NULL, "drvNew refuses flag 2");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING, "unsupported flags (0x2) in function drvNew",
                   "... as an invalid argument");
    memset(&man, 0, sizeof(man));
    VML_CHECK(drv->drvNew(&man, 1, dp.nparams, dp.params, 0) < 0, "drvNew refuses object type 1");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Unknown lock manager object type 1",
                   "... naming the type");

    dp.params[5] = dp.params[4];
    dp.params[5].key = "colour";
    dp.nparams = 6;
    VML_CHECK(new_context(&man, &dp, 0) < 0 && man.privateData == NULL,
              "drvNew refuses an unknown parameter");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Unexpected parameter 'colour' for object",
                   "... naming it");
    dp.params[5] = dp.params[1];
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses a parameter given twice");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "'name' is given twice", "... naming it");
    dp.nparams = 5;

    dp.params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses a parameter of the wrong type");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "'id' has type 0, expected 4",
                   "... naming the parameter and both types");
    dp.params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_UINT;

    memset(dp.params[0].value.uuid, 0, 16);
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses an all-zero UUID");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Missing or invalid UUID", "... as lockd");
    memset(dp.params[0].value.uuid, 0xaa, 16);
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses a UUID of 16 equal bytes");
    forget_reported();
    VML_CHECK(drv->drvNew(&man, 0, dp.nparams - 1, dp.params + 1, 0) < 0,
              "drvNew refuses a missing UUID");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Missing or invalid UUID", "... as lockd");

    domain_init(&dp, "vm1", 0, 1234, NULL);
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses id 0");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Missing ID parameter", "... as lockd");
    domain_init(&dp, "vm1", 7, 1234, NULL);
    dp.params[1].value.str = NULL;
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses a NULL name");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "Missing name parameter", "... as lockd");
    dp.params[3] = dp.params[4];
    dp.params[4].key = NULL;
    VML_CHECK(new_context(&man, &dp, 0) < 0, "drvNew refuses a parameter without key");
    forget_reported();
}

static void test_callback_validation(void)
{
    domain_params dp;
    virLockManager man;
    virLockManager empty = { .driver = NULL, .privateData = NULL };
    char *state = (char *)"untouched";
    int fd = 99;

    domain_init(&dp, "vm1", 7, 1234, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "context for validation tests"))
        return;
    forget_reported();
    VML_CHECK(drv->drvAddResource(&man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL, 4) < 0,
              "drvAddResource refuses flag 4");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING,
                   "unsupported flags (0x4) in function drvAddResource", "... as an invalid argument");
    VML_CHECK(drv->drvAddResource(&empty, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL, 0) < 0,
              "drvAddResource refuses a context drvNew did not fill");
    check_reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_LOCKING, "no domain", "... saying so");

    VML_CHECK(drv->drvAcquire(&man, NULL, 4, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, &fd) < 0 && fd == -1,
              "drvAcquire refuses flag 4 and leaves *fd at -1");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING,
                   "unsupported flags (0x4) in function drvAcquire", "... as an invalid argument");
    VML_CHECK(drv->drvRelease(&man, &state, 1) < 0 && state == NULL,
              "drvRelease refuses flag 1 (and still clears *state)");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING,
                   "unsupported flags (0x1) in function drvRelease", "... as an invalid argument");
    VML_CHECK(drv->drvInquire(&man, &state, 1) < 0, "drvInquire refuses flag 1");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING,
                   "unsupported flags (0x1) in function drvInquire", "... as an invalid argument");

    state = (char *)"untouched";
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_PAUSE, NULL) == 0,
              "drvAcquire with nothing to lock succeeds");
    VML_CHECK(drv->drvRelease(&man, &state, 0) == 0 && state == NULL,
              "drvRelease with nothing to release succeeds, *state = NULL");
    state = (char *)"untouched";
    VML_CHECK(drv->drvInquire(&man, &state, 0) == 0 && state == NULL,
              "drvInquire gives no state");
    check_log("", "... and none of them talks to the daemon");
    VML_CHECK(reported.count == 0, "... or reports an error");
    drv->drvFree(&man);
    drv->drvFree(&empty);
}

static void add_disks(virLockManager *man)
{
    VML_CHECK(drv->drvAddResource(man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL, 0) == 0 &&
              drv->drvAddResource(man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/b", 0, NULL,
                                  VIR_LOCK_MANAGER_RESOURCE_SHARED) == 0 &&
              drv->drvAddResource(man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/c.iso", 0, NULL,
                                  VIR_LOCK_MANAGER_RESOURCE_READONLY) == 0,
              "a r/w, a shareable and a read-only disk are added");
}

static void test_lifecycle(void)
{
    domain_params dp;
    virLockManager man;
    char want[1024];
    char *state = (char *)"untouched";
    char expected_state[256];
    unsigned int pid = (unsigned int)getpid();
    int fd = 99;
    int flags;

    /* Start: the hook in the child that becomes QEMU. */
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, VIR_LOCK_MANAGER_NEW_STARTED) == 0, "start: drvNew"))
        return;
    strcpy(dp.name, "scribbled");   /* params are borrowed: the plugin must have copied */
    add_disks(&man);
    VML_CHECK(drv->drvAcquire(&man, NULL, VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY |
                              VIR_LOCK_MANAGER_ACQUIRE_RESTRICT,
                              VIR_DOMAIN_LOCK_FAILURE_DEFAULT, &fd) == 0 && fd >= 0,
              "start: drvAcquire(REGISTER_ONLY|RESTRICT) gives a holder descriptor");
    snprintf(want, sizeof(want), "REGISTER vm1 7 %u\nRESTRICT\n", pid);
    check_log(want, "start: REGISTER (with the copied name) then RESTRICT, nothing acquired");
    flags = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
    VML_CHECK(flags >= 0 && (flags & FD_CLOEXEC) == 0, "start: the holder descriptor is inherited by exec");
    if (fd >= 0)
        close(fd);
    drv->drvFree(&man);

    /* CPUs start: libvirtd acquires for the domain. */
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "resume: drvNew"))
        return;
    add_disks(&man);
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) == 0,
              "resume: drvAcquire succeeds");
    snprintf(want, sizeof(want),
             "BATCH_ACQUIRE vm1 %u "
             "{/leases c8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527 /img/a 2;} "
             "{/leases e5cd120b3525183b991585d571e801887d7bdc7cc0898b064e0954de21b8c481 /img/b 3;} "
             "uri=qemu:///system\n",
             pid);
    check_log(want, "resume: one BATCH_ACQUIRE with hashed names, SHARED for the shareable disk, "
                    "nothing for the read-only one, the domain's URI for the pause action");
    drv->drvFree(&man);

    /* Pause: release. */
    domain_init(&dp, "vm1", 7, pid, NULL);
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "pause: drvNew"))
        return;
    add_disks(&man);
    VML_CHECK(drv->drvRelease(&man, &state, 0) == 0 && state != NULL,
              "pause: drvRelease succeeds and returns a lock state");
    {
        char key_a[VML_LEASE_NAME_LEN + 1], key_b[VML_LEASE_NAME_LEN + 1];
        vml_error herr;

        vml_lease_hash("/leases\nc8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527",
                       key_a, &herr);
        vml_lease_hash("/leases\ne5cd120b3525183b991585d571e801887d7bdc7cc0898b064e0954de21b8c481",
                       key_b, &herr);
        snprintf(expected_state, sizeof(expected_state), "vmlockd:1:%.16s=10,%.16s=11", key_a,
                 key_b);
        VML_CHECK_STR(state, expected_state,
                      "pause: the state names each lease by a hash key and its generation");
    }
    free(state);
    state = NULL;
    snprintf(want, sizeof(want),
             "BATCH_RELEASE vm1 %u "
             "{/leases c8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527 /img/a 2;} "
             "{/leases e5cd120b3525183b991585d571e801887d7bdc7cc0898b064e0954de21b8c481 /img/b 3;}\n",
             pid);
    check_log(want, "pause: one BATCH_RELEASE");
    VML_CHECK(drv->drvInquire(&man, &state, 0) == 0 && state != NULL &&
              strcmp(state, expected_state) == 0,
              "migration: drvInquire returns the state of the leases held now");
    free(state);
    state = NULL;
    free(fake_daemon_take_log(&fake));
    drv->drvFree(&man);

    /* Resume with the state: every lease carries its expected generation. */
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "resume with state: drvNew"))
        return;
    add_disks(&man);
    VML_CHECK(drv->drvAcquire(&man, expected_state, 0, VIR_DOMAIN_LOCK_FAILURE_POWEROFF, NULL) == 0,
              "resume with state: drvAcquire succeeds");
    snprintf(want, sizeof(want),
             "BATCH_ACQUIRE vm1 %u "
             "{/leases c8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527 /img/a 6 expect=10@0;} "
             "{/leases e5cd120b3525183b991585d571e801887d7bdc7cc0898b064e0954de21b8c481 /img/b 7 expect=11@0;} "
             "action=1 uri=qemu:///system\n",
             pid);
    check_log(want, "resume with state: the expected generations and the action go to the daemon");
    forget_reported();
    VML_CHECK(drv->drvAcquire(&man, "sanlock-state:xyz", 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT,
                              NULL) < 0, "a state vmlockd.so did not make is refused");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING, "was not made by vmlockd.so",
                   "... saying so (nothing is acquired)");
    forget_reported();
    VML_CHECK(drv->drvAcquire(&man, "vmlockd:2:abc", 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT,
                              NULL) < 0, "a state of an unknown format version is refused");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING, "format version",
                   "... naming the version problem");
    forget_reported();
    VML_CHECK(drv->drvAcquire(&man, "vmlockd:1:0123456789abcdef=x", 0,
                              VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) < 0,
              "a malformed state is refused");
    check_reported(VIR_ERR_INVALID_ARG, VIR_FROM_LOCKING, "is malformed at byte 27",
                   "... naming where");
    check_log("", "refused states reach no daemon");
    drv->drvFree(&man);

    /* A busy lease: the daemon's error reaches libvirt untouched. */
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "busy: drvNew"))
        return;
    {
        virLockManagerParam lease[3];

        memset(lease, 0, sizeof(lease));
        lease[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
        lease[0].key = "path";
        lease[0].value.str = (char *)"/leases";
        lease[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_ULONG;
        lease[1].key = "offset";
        lease[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
        lease[2].key = "lockspace";
        lease[2].value.str = (char *)"ls";
        VML_CHECK(drv->drvAddResource(&man, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, "busy-lease", 3,
                                      lease, 0) == 0, "busy: a lease is added");
    }
    forget_reported();
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) < 0,
              "busy: drvAcquire fails");
    check_reported(VIR_ERR_RESOURCE_BUSY, VIR_FROM_LOCKSPACE,
                   "resource busy: Lockspace resource 'busy-lease' is locked",
                   "busy: libvirt gets the daemon's code, domain and text (prefixed once)");
    snprintf(want, sizeof(want), "BATCH_ACQUIRE vm1 %u {/leases/ls busy-lease  0;} "
             "uri=qemu:///system\n", pid);
    check_log(want, "busy: the lease's lockspace is <path>/<lockspace>, no disk");
    drv->drvFree(&man);
}

/* A daemon restarted cold has forgotten the lockspaces registered at drvInit: the plugin
 * registers them again and retries, instead of failing every start until libvirtd restarts. */
static void test_cold_daemon(void)
{
    domain_params dp;
    virLockManager man;
    char want[1024];
    const char *disk_a = "{/leases c8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527 /img/a 2;}";
    unsigned int pid = (unsigned int)getpid();

    free(fake_daemon_take_log(&fake));
    fake_daemon_forget_lockspaces(&fake);
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "cold daemon: drvNew"))
        return;
    VML_CHECK(drv->drvAddResource(&man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL,
                                  0) == 0, "cold daemon: drvAddResource");
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) == 0,
              "cold daemon: drvAcquire succeeds although the daemon forgot the lockspace");
    snprintf(want, sizeof(want),
             "BATCH_ACQUIRE vm1 %u %s uri=qemu:///system\n"
             "CREATE_LOCKSPACE /leases\n"
             "BATCH_ACQUIRE vm1 %u %s uri=qemu:///system\n", pid, disk_a, pid, disk_a);
    check_log(want, "cold daemon: refused batch, the configured lockspace registered again, "
                    "the same batch retried once");
    drv->drvFree(&man);
}

/* The connection id of every line of conns that names a call (not ACCEPT/EOF); how many
 * distinct ids they have; *accepts the ACCEPT lines, each naming peer as its pid. */
static int call_connections(const char *conns, long *id, int *accepts, long peer)
{
    int distinct = 0;

    *id = 0;
    *accepts = 0;
    for (const char *line = conns; *line != '\0';) {
        const char *end = strchr(line, '\n');
        char word[32] = "";
        long this_id = 0;
        int pid = 0;

        if (sscanf(line, "%ld %31s %d", &this_id, word, &pid) >= 2) {
            if (strcmp(word, "ACCEPT") == 0) {
                if (pid == peer)
                    (*accepts)++;
            } else if (strcmp(word, "EOF") != 0 && this_id != *id) {
                *id = this_id;
                distinct++;
            }
        }
        if (end == NULL)
            break;
        line = end + 1;
    }
    return distinct;
}

static long shared_id;

/* libvirtd's calls share one connection, which survives a daemon restart (reconnected once,
 * the request sent again, the forgotten lockspace registered again on it). */
static void test_persistent_connection(void)
{
    domain_params dp;
    virLockManager man;
    char want[1024];
    const char *disk_a = "{/leases c8a7b81bd165be9037f40c0dba07cdd71a31314eaf7ad24f42d68c098d323527 /img/a 2;}";
    unsigned int pid = (unsigned int)getpid();
    char *conns;
    char *state = NULL;
    int accepts;
    long id;

    free(fake_daemon_take_log(&fake));
    free(fake_daemon_take_conns(&fake));
    domain_init(&dp, "vm1", 7, pid, "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, 0) == 0, "persistent: drvNew"))
        return;
    VML_CHECK(drv->drvAddResource(&man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, "/img/a", 0, NULL,
                                  0) == 0, "persistent: drvAddResource");
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) == 0 &&
              drv->drvRelease(&man, &state, 0) == 0 && state != NULL,
              "persistent: acquire and release (pause) succeed");
    free(state);
    state = NULL;
    conns = fake_daemon_take_conns(&fake);
    VML_CHECK(call_connections(conns, &id, &accepts, (long)pid) == 1 && accepts == 0,
              "persistent: both calls on the connection opened earlier, no new connection");
    free(conns);

    /* The daemon dies with every connection and comes back cold. */
    fake_daemon_stop(&fake);
    if (!VML_CHECK(fake_daemon_start(&fake, tmpdir, "daemon", FAKE_VMLOCKD) == 0,
                   "persistent: the fake restarts"))
        return;
    free(fake_daemon_take_log(&fake));
    free(fake_daemon_take_conns(&fake));
    fake_daemon_forget_lockspaces(&fake);
    VML_CHECK(drv->drvAcquire(&man, NULL, 0, VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL) == 0,
              "persistent: drvAcquire after a cold restart succeeds");
    snprintf(want, sizeof(want),
             "BATCH_ACQUIRE vm1 %u %s uri=qemu:///system\n"
             "CREATE_LOCKSPACE /leases\n"
             "BATCH_ACQUIRE vm1 %u %s uri=qemu:///system\n", pid, disk_a, pid, disk_a);
    check_log(want, "persistent: the broken connection's request reached the new daemon once, "
                    "then the lockspace registered again and the batch retried");
    VML_CHECK(drv->drvRelease(&man, NULL, 0) == 0, "persistent: drvRelease");
    conns = fake_daemon_take_conns(&fake);
    VML_CHECK(call_connections(conns, &id, &accepts, (long)pid) == 1 && accepts == 1,
              "persistent: one new connection from libvirtd's pid carries all four calls");
    if (!VML_CHECK(strstr(conns, " EOF") == NULL, "... and stays open"))
        printf("# %s", conns);
    free(conns);
    shared_id = id;
    free(fake_daemon_take_log(&fake));
    drv->drvFree(&man);
}

static void test_require_lease(void)
{
    domain_params dp;
    virLockManager man;
    char config_text[600];
    int fd = 99;

    VML_CHECK(drv->drvDeinit() == 0, "the last drvDeinit succeeds");
    snprintf(config_text, sizeof(config_text),
             "auto_disk_leases = 0\nfile_lockspace_dir = \"/leases\"\nunix_sock_path = \"%s\"\n",
             fake.sock_path);
    VML_CHECK(drv->drvInit(VIR_LOCK_MANAGER_VERSION, write_config("manual.conf", config_text), 0) == 0,
              "drvInit with auto_disk_leases = 0 (a new configuration after the last deinit)");
    check_log("", "... registers no lockspace");

    domain_init(&dp, "vm2", 8, (unsigned int)getpid(), "qemu:///system");
    if (!VML_CHECK(new_context(&man, &dp, VIR_LOCK_MANAGER_NEW_STARTED) == 0, "drvNew"))
        return;
    add_disks(&man);
    forget_reported();
    VML_CHECK(drv->drvAcquire(&man, NULL, VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY |
                              VIR_LOCK_MANAGER_ACQUIRE_RESTRICT,
                              VIR_DOMAIN_LOCK_FAILURE_DEFAULT, &fd) < 0 && fd == -1,
              "r/w disks without a lease: even the start hook is refused");
    check_reported(VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_LOCKING, "no leases specified",
                   "... as an unsupported configuration");
    check_log("", "... before any I/O");
    drv->drvFree(&man);
    VML_CHECK(drv->drvDeinit() == 0, "drvDeinit");
}

/* The last drvDeinit closed the persistent connection: the daemon saw its end. */
static void check_closed_at_deinit(void)
{
    char want[64];
    char *conns = NULL;

    snprintf(want, sizeof(want), "%ld EOF\n", shared_id);
    /* The fake logs EOF asynchronously and signals each: look again after every one. */
    do {
        free(conns);
        conns = fake_read_file(strcat(strcpy((char[300]){ 0 }, fake.log_path), ".conns"));
    } while (strstr(conns, want) == NULL && fake_daemon_wait_eof(&fake, 2000));
    VML_CHECK(shared_id != 0 && strstr(conns, want) != NULL,
              "drvDeinit closes the persistent connection");
    free(conns);
}

int main(void)
{
    void *handle;
    char cmd[600];

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    unsetenv("XDG_RUNTIME_DIR");
    if (fake_daemon_start(&fake, tmpdir, "daemon", FAKE_VMLOCKD) < 0) {
        printf("Bail out! cannot start the fake daemon\n");
        return 1;
    }
    handle = test_load();
    if (handle != NULL && drv != NULL) {
        test_init();
        test_new();
        test_callback_validation();
        test_lifecycle();
        test_cold_daemon();
        test_persistent_connection();
        test_require_lease();
        check_closed_at_deinit();
        VML_CHECK(dlclose(handle) == 0, "dlclose succeeds (the module stays mapped: -z nodelete)");
    }
    fake_daemon_stop(&fake);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
