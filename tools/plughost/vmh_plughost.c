/* vmh_plughost.c: hosts a libvirt lock-driver plugin as libvirt 9.0.0 does: loading, contexts, the start hook in a forked child, guests. */
#include "vmh_plughost.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vml_log.h"
#include "vml_io.h"

/* libvirt's error API, looked up in libvirt.so.0 when a plugin brought it in. */
typedef int (*vir_initialize_fn)(void);
typedef virErrorPtr (*vir_get_last_error_fn)(void);
typedef void (*vir_reset_last_error_fn)(void);

struct vmh_plugin {
    char *path;
    void *handle;
    virLockDriver *driver;
    bool initialised;                       /* drvInit succeeded: drvDeinit is owed */
    void *libvirt_handle;                   /* our reference on libvirt.so.0, or NULL */
    bool libvirt_user;                      /* counted in libvirt_users */
};

struct vmh_context {
    vmh_plugin *plugin;
    virLockManager *man;                    /* zero-allocated with driver set, as libvirt does */
};

/*
 * The error sink behind virReportErrorHelper.  This module is a singleton by nature: the
 * exported symbol is one per process.  The record is per thread, like libvirt's last error.
 * While some open plugin uses libvirt.so.0 (libvirt_users counts them), the libvirt_*
 * pointers are its functions and every plugin's errors go through libvirt, whichever plugin
 * brought it in.  Plugins are opened and closed from one thread.
 */
static _Thread_local vml_error captured_error;
static unsigned int libvirt_users;
static virReportErrorHelperFunc libvirt_report;
static vir_get_last_error_fn libvirt_get_last_error;
static vir_reset_last_error_fn libvirt_reset_last_error;

/*
 * What libvirt's own virReportErrorHelper does for a plugin: format the text, prefix it with
 * the code's template, and make it the last error.  Once libvirt.so.0 is loaded, this
 * definition also receives libvirt's internal reports (libvirt.so.0 calls the symbol through
 * its PLT), so the report is handed to libvirt's own helper: as inside libvirtd, libvirt's
 * last error is then the one record of every error, libvirt's and the plugin's alike.
 */
void virReportErrorHelper(int domcode, int errcode, const char *filename, const char *funcname,
                          size_t linenr, const char *fmt, ...)
{
    char detail[VML_ERROR_MESSAGE_MAX] = "";
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    if (libvirt_report != NULL) {
        if (fmt != NULL)
            libvirt_report(domcode, errcode, filename, funcname, linenr, "%s", detail);
        else
            libvirt_report(domcode, errcode, filename, funcname, linenr, NULL);
        return;
    }
    vml_error_set(&captured_error, domcode, errcode, "%s", detail);
    if (detail[0] == '\0') {
        /* No text: libvirt shows the bare template ("internal error"), not "internal error: ". */
        const char *template = vml_error_template(errcode);
        size_t len = strcspn(template, "%");

        if (len >= 2 && template[len - 2] == ':')
            len -= 2;
        snprintf(captured_error.message, sizeof(captured_error.message), "%.*s",
                 (int)len, template);
    }
    VML_DEBUG("plugin error (code %d, domain %d) at %s:%zu %s(): %s", errcode, domcode,
              filename != NULL ? filename : "?", linenr, funcname != NULL ? funcname : "?",
              captured_error.message);
}

/* Forget earlier errors before calling into the plugin. */
static void capture_begin(void)
{
    vml_error_clear(&captured_error);
    if (libvirt_reset_last_error != NULL)
        libvirt_reset_last_error();
}

typedef enum {
    FALLBACK_UNKNOWN,       /* what virsh prints when nothing was reported */
    FALLBACK_RESUME,        /* libvirt's own words after a failed CPU start */
} capture_fallback;

/* After a failed plugin call: fill err with the error the user would see. */
static void capture_end(capture_fallback fallback, vml_error *err)
{
    virErrorPtr lverr = libvirt_get_last_error != NULL ? libvirt_get_last_error() : NULL;

    if (lverr != NULL && lverr->code != VIR_ERR_OK) {
        VML_DEBUG("error raised inside libvirt.so.0: %s", lverr->message);
        vml_error_set_raw(err, lverr->domain, lverr->code,
                          lverr->message != NULL ? lverr->message : "");
        if (err != NULL && lverr->str2 != NULL)
            snprintf(err->detail, sizeof(err->detail), "%s", lverr->str2);
    } else if (captured_error.code != 0) {
        VML_DEBUG("error raised through virReportErrorHelper: %s", captured_error.message);
        if (err != NULL)
            *err = captured_error;
    } else if (fallback == FALLBACK_RESUME) {
        vml_error_set(err, VIR_FROM_QEMU, VIR_ERR_OPERATION_FAILED, "resume operation failed");
    } else {
        vml_error_set_raw(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                          "An error occurred, but the cause is unknown");
    }
}

/* ---- plugins ---- */

static int check_callbacks(const virLockDriver *driver, vml_error *err)
{
    static const struct {
        const char *field;
        size_t offset;
    } callbacks[] = {
        { "drvInit", offsetof(virLockDriver, drvInit) },
        { "drvDeinit", offsetof(virLockDriver, drvDeinit) },
        { "drvNew", offsetof(virLockDriver, drvNew) },
        { "drvFree", offsetof(virLockDriver, drvFree) },
        { "drvAddResource", offsetof(virLockDriver, drvAddResource) },
        { "drvAcquire", offsetof(virLockDriver, drvAcquire) },
        { "drvRelease", offsetof(virLockDriver, drvRelease) },
        { "drvInquire", offsetof(virLockDriver, drvInquire) },
    };

    for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++) {
        void *fn;

        memcpy(&fn, (const char *)driver + callbacks[i].offset, sizeof(fn));
        if (fn == NULL) {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                          "Missing '%s' field in lock manager driver", callbacks[i].field);
            return -1;
        }
    }
    return 0;
}

/*
 * When the plugin pulled libvirt.so.0 in, take a reference on it, initialise it as libvirtd
 * would have (without virInitialize lockd.so crashes: libvirt's thread-local error storage
 * is set up there), and keep its last-error functions and its own virReportErrorHelper
 * (private, but looked up unversioned, so any libvirt release serves).
 */
static int attach_libvirt(vmh_plugin *plugin, vml_error *err)
{
    void *handle = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    vir_initialize_fn initialize;
    vir_get_last_error_fn get_last_error;
    vir_reset_last_error_fn reset_last_error;
    virReportErrorHelperFunc report;

    if (handle == NULL)
        return 0;
    plugin->libvirt_handle = handle;     /* released by vmh_plugin_close */
    initialize = (vir_initialize_fn)dlsym(handle, "virInitialize");
    get_last_error = (vir_get_last_error_fn)dlsym(handle, "virGetLastError");
    reset_last_error = (vir_reset_last_error_fn)dlsym(handle, "virResetLastError");
    report = (virReportErrorHelperFunc)dlsym(handle, "virReportErrorHelper");
    if (initialize == NULL || get_last_error == NULL || reset_last_error == NULL ||
        report == NULL || report == virReportErrorHelper) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "plugin %s loaded a libvirt.so.0 without virInitialize, virGetLastError, "
                      "virResetLastError or its own virReportErrorHelper", plugin->path);
        return -1;
    }
    if (initialize() < 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "cannot initialise libvirt.so.0 for plugin %s", plugin->path);
        return -1;
    }
    libvirt_report = report;
    libvirt_get_last_error = get_last_error;
    libvirt_reset_last_error = reset_last_error;
    libvirt_users++;
    plugin->libvirt_user = true;
    return 0;
}

int vmh_plugin_open(const char *path, const char *config_path, vmh_plugin **out,
                    vml_error *err)
{
    vmh_plugin *plugin = NULL;
    int ret = -1;

    *out = NULL;
    if (access(path, R_OK) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "Plugin %s not accessible", path);
        goto out;
    }
    plugin = calloc(1, sizeof(*plugin));
    if (plugin == NULL || (plugin->path = strdup(path)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot load plugin %s", path);
        goto out;
    }
    plugin->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (plugin->handle == NULL) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_SYSTEM_ERROR,
                      "Failed to load plugin %s: %s", path, dlerror());
        goto out;
    }
    plugin->driver = dlsym(plugin->handle, "virLockDriverImpl");
    if (plugin->driver == NULL) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Missing plugin initialization symbol 'virLockDriverImpl'");
        goto out;
    }
    if (check_callbacks(plugin->driver, err) < 0 || attach_libvirt(plugin, err) < 0)
        goto out;
    VML_DEBUG("plugin %s: version %u flags 0x%x, drvInit(%u, %s, 0)", path,
              plugin->driver->version, plugin->driver->flags, VIR_LOCK_MANAGER_VERSION,
              config_path != NULL ? config_path : "(null)");
    capture_begin();
    if (plugin->driver->drvInit(VIR_LOCK_MANAGER_VERSION, config_path, 0) < 0) {
        capture_end(FALLBACK_UNKNOWN, err);
        goto out;
    }
    plugin->initialised = true;
    *out = plugin;
    plugin = NULL;
    ret = 0;
 out:
    vmh_plugin_close(plugin);
    return ret;
}

void vmh_plugin_close(vmh_plugin *plugin)
{
    bool unload = true;

    if (plugin == NULL)
        return;
    if (plugin->initialised && plugin->driver->drvDeinit() < 0) {
        /* libvirt leaves a plugin whose deinit failed loaded. */
        VML_WARN("plugin %s: drvDeinit failed; leaving it loaded", plugin->path);
        unload = false;
    }
    if (plugin->handle != NULL && unload)
        dlclose(plugin->handle);
    if (plugin->libvirt_user && --libvirt_users == 0) {
        libvirt_report = NULL;
        libvirt_get_last_error = NULL;
        libvirt_reset_last_error = NULL;
    }
    if (plugin->libvirt_handle != NULL)
        dlclose(plugin->libvirt_handle);
    free(plugin->path);
    free(plugin);
}

const virLockDriver *vmh_plugin_driver(const vmh_plugin *plugin)
{
    return plugin->driver;
}

bool vmh_plugin_uses_libvirt(const vmh_plugin *plugin)
{
    return plugin->libvirt_handle != NULL;
}

const char *vmh_default_uri(void)
{
    return geteuid() == 0 ? "qemu:///system" : "qemu:///session";
}

/* ---- contexts ---- */

int vmh_context_new(vmh_plugin *plugin, const vmh_domain *dom, unsigned int new_flags,
                    bool with_uri, vmh_context **out, vml_error *err)
{
    virLockManagerParam params[5];
    vmh_context *ctx = NULL;
    int ret = -1;

    *out = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL || (ctx->man = calloc(1, sizeof(*ctx->man))) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot create a lock manager");
        goto out;
    }
    ctx->plugin = plugin;
    ctx->man->driver = plugin->driver;

    /* libvirt's order and types; STRING values share storage with .cstr, UINTs go through .iv. */
    memset(params, 0, sizeof(params));
    params[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_UUID;
    params[0].key = "uuid";
    memcpy(params[0].value.uuid, dom->uuid, VIR_UUID_BUFLEN);
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[1].key = "name";
    params[1].value.cstr = dom->name;
    params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_UINT;
    params[2].key = "id";
    params[2].value.iv = (int)dom->id;
    params[3].type = VIR_LOCK_MANAGER_PARAM_TYPE_UINT;
    params[3].key = "pid";
    params[3].value.iv = (int)dom->pid;
    params[4].type = VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING;
    params[4].key = "uri";
    params[4].value.cstr = with_uri ? (dom->uri != NULL ? dom->uri : vmh_default_uri()) : NULL;

    capture_begin();
    if (plugin->driver->drvNew(ctx->man, VIR_LOCK_MANAGER_OBJECT_TYPE_DOMAIN, 5, params,
                               new_flags) < 0) {
        /* libvirt frees the manager without drvFree when drvNew fails. */
        capture_end(FALLBACK_UNKNOWN, err);
        goto out;
    }
    *out = ctx;
    ctx = NULL;
    ret = 0;
 out:
    if (ctx != NULL)
        free(ctx->man);
    free(ctx);
    return ret;
}

int vmh_context_add_disk(vmh_context *ctx, const vmh_disk *disk, vml_error *err)
{
    capture_begin();
    if (ctx->plugin->driver->drvAddResource(ctx->man, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK,
                                            disk->path, 0, NULL, disk->flags) < 0) {
        capture_end(FALLBACK_UNKNOWN, err);
        return -1;
    }
    return 0;
}

int vmh_context_add_lease(vmh_context *ctx, const vmh_lease *lease, vml_error *err)
{
    virLockManagerParam params[3];
    size_t nparams = 2;

    memset(params, 0, sizeof(params));
    params[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[0].key = "path";
    params[0].value.cstr = lease->path;
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_ULONG;
    params[1].key = "offset";
    params[1].value.ul = lease->offset;
    if (lease->lockspace != NULL) {
        params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
        params[2].key = "lockspace";
        params[2].value.cstr = lease->lockspace;
        nparams = 3;
    }
    capture_begin();
    if (ctx->plugin->driver->drvAddResource(ctx->man, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE,
                                            lease->key, nparams, params, 0) < 0) {
        capture_end(FALLBACK_UNKNOWN, err);
        return -1;
    }
    return 0;
}

/* drvAcquire with the fallback error chosen by the caller's path. */
static int context_acquire(vmh_context *ctx, const char *state, unsigned int flags,
                           virDomainLockFailureAction action, int *fd,
                           capture_fallback fallback, vml_error *err)
{
    if (fd != NULL)
        *fd = -1;
    capture_begin();
    if (ctx->plugin->driver->drvAcquire(ctx->man, state, flags, action, fd) < 0) {
        capture_end(fallback, err);
        return -1;
    }
    return 0;
}

int vmh_context_acquire(vmh_context *ctx, const char *state, unsigned int flags,
                        virDomainLockFailureAction action, int *fd, vml_error *err)
{
    return context_acquire(ctx, state, flags, action, fd, FALLBACK_UNKNOWN, err);
}

/* drvRelease or drvInquire; on failure any state the plugin handed back is freed. */
static int context_state_call(vmh_context *ctx, bool inquire, char **state, unsigned int flags,
                              vml_error *err)
{
    int rc;

    if (state != NULL)
        *state = NULL;
    capture_begin();
    if (inquire)
        rc = ctx->plugin->driver->drvInquire(ctx->man, state, flags);
    else
        rc = ctx->plugin->driver->drvRelease(ctx->man, state, flags);
    if (rc < 0) {
        capture_end(FALLBACK_UNKNOWN, err);
        if (state != NULL) {
            free(*state);
            *state = NULL;
        }
        return -1;
    }
    return 0;
}

int vmh_context_release(vmh_context *ctx, char **state, unsigned int flags, vml_error *err)
{
    return context_state_call(ctx, false, state, flags, err);
}

int vmh_context_inquire(vmh_context *ctx, char **state, unsigned int flags, vml_error *err)
{
    return context_state_call(ctx, true, state, flags, err);
}

void vmh_context_free(vmh_context *ctx)
{
    if (ctx == NULL)
        return;
    ctx->plugin->driver->drvFree(ctx->man);
    free(ctx->man);
    free(ctx);
}

/* ---- libvirt's operations ---- */

/*
 * A fresh context with the resources libvirt passes on that path: the one disk or lease
 * given, else the full set (leases first, then disks).  On failure nothing is left over.
 */
static int context_with_resources(vmh_plugin *plugin, const vmh_domain *dom,
                                  unsigned int new_flags, bool with_uri,
                                  const vmh_disk *one_disk, const vmh_lease *one_lease,
                                  vmh_context **out, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    *out = NULL;
    if (vmh_context_new(plugin, dom, new_flags, with_uri, &ctx, err) < 0)
        goto out;
    if (one_disk != NULL) {
        if (vmh_context_add_disk(ctx, one_disk, err) < 0)
            goto out;
    } else if (one_lease != NULL) {
        if (vmh_context_add_lease(ctx, one_lease, err) < 0)
            goto out;
    } else {
        for (size_t i = 0; i < dom->nleases; i++) {
            if (vmh_context_add_lease(ctx, &dom->leases[i], err) < 0)
                goto out;
        }
        for (size_t i = 0; i < dom->ndisks; i++) {
            if (vmh_context_add_disk(ctx, &dom->disks[i], err) < 0)
                goto out;
        }
    }
    *out = ctx;
    ctx = NULL;
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

int vmh_start_hook(vmh_plugin *plugin, const vmh_domain *dom, int *holder_fd, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    *holder_fd = -1;
    if (context_with_resources(plugin, dom, VIR_LOCK_MANAGER_NEW_STARTED, true, NULL, NULL,
                               &ctx, err) < 0)
        goto out;
    if (context_acquire(ctx, NULL, VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY |
                        VIR_LOCK_MANAGER_ACQUIRE_RESTRICT, dom->action, holder_fd,
                        FALLBACK_RESUME, err) < 0)
        goto out;
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

int vmh_acquire(vmh_plugin *plugin, const vmh_domain *dom, const char *state, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    if (context_with_resources(plugin, dom, 0, true, NULL, NULL, &ctx, err) < 0 ||
        context_acquire(ctx, state, 0, dom->action, NULL, FALLBACK_RESUME, err) < 0)
        goto out;
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

int vmh_release(vmh_plugin *plugin, const vmh_domain *dom, char **state, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    *state = NULL;
    if (context_with_resources(plugin, dom, 0, false, NULL, NULL, &ctx, err) < 0 ||
        vmh_context_release(ctx, state, 0, err) < 0)
        goto out;
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

int vmh_inquire(vmh_plugin *plugin, const vmh_domain *dom, char **state, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    *state = NULL;
    if (context_with_resources(plugin, dom, 0, false, NULL, NULL, &ctx, err) < 0 ||
        vmh_context_inquire(ctx, state, 0, err) < 0)
        goto out;
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

/* Hotplug (acquire, uri set) or unplug (release, no uri, no state) of one resource. */
static int modify_one(vmh_plugin *plugin, const vmh_domain *dom, const vmh_disk *disk,
                      const vmh_lease *lease, bool attach, vml_error *err)
{
    vmh_context *ctx = NULL;
    int ret = -1;

    if (context_with_resources(plugin, dom, 0, attach, disk, lease, &ctx, err) < 0)
        goto out;
    if (attach) {
        if (context_acquire(ctx, NULL, 0, dom->action, NULL, FALLBACK_UNKNOWN, err) < 0)
            goto out;
    } else if (vmh_context_release(ctx, NULL, 0, err) < 0) {
        goto out;
    }
    ret = 0;
 out:
    vmh_context_free(ctx);
    return ret;
}

int vmh_attach_disk(vmh_plugin *plugin, const vmh_domain *dom, const vmh_disk *disk,
                    vml_error *err)
{
    return modify_one(plugin, dom, disk, NULL, true, err);
}

int vmh_detach_disk(vmh_plugin *plugin, const vmh_domain *dom, const vmh_disk *disk,
                    vml_error *err)
{
    return modify_one(plugin, dom, disk, NULL, false, err);
}

int vmh_attach_lease(vmh_plugin *plugin, const vmh_domain *dom, const vmh_lease *lease,
                     vml_error *err)
{
    return modify_one(plugin, dom, NULL, lease, true, err);
}

int vmh_detach_lease(vmh_plugin *plugin, const vmh_domain *dom, const vmh_lease *lease,
                     vml_error *err)
{
    return modify_one(plugin, dom, NULL, lease, false, err);
}

/* ---- guests ---- */

/* Descriptors the child sets up before the hook; the plugin's own start at GUEST_FIRST_FREE_FD. */
#define GUEST_READY_FD 3
#define GUEST_STATUS_FD 4
#define GUEST_FIRST_FREE_FD 5

/* What a child that did not reach the stand-in QEMU reports through the status pipe. */
typedef struct spawn_report {
    int exit_status;            /* VMH_HOOK_FAILED_STATUS or VMH_EXEC_FAILED_STATUS */
    vml_error error;
} spawn_report;

_Static_assert(sizeof(spawn_report) <= 4096, "a report is written atomically (PIPE_BUF)");

/* In the child: report why it stops, print it as libvirt's hook does, and exit. */
static void __attribute__((noreturn)) child_fail(int exit_status, const vml_error *error)
{
    spawn_report report;
    char line[VML_ERROR_MESSAGE_MAX + 16];
    int len;

    /* field by field: the tails of a record's text buffers are not initialised */
    memset(&report, 0, sizeof(report));
    report.exit_status = exit_status;
    report.error.code = error->code;
    report.error.domain = error->domain;
    snprintf(report.error.message, sizeof(report.error.message), "%s", error->message);
    snprintf(report.error.detail, sizeof(report.error.detail), "%s", error->detail);
    (void)vml_io_write_all(GUEST_STATUS_FD, &report, sizeof(report));
    len = snprintf(line, sizeof(line), "error: %s\n", error->message);
    if (len > 0)
        (void)vml_io_write_all(STDERR_FILENO, line, (size_t)len < sizeof(line) ? (size_t)len
                                                                          : sizeof(line) - 1);
    _exit(exit_status);
}

static void close_from(unsigned int first)
{
    if (close_range(first, ~0U, 0) < 0) {
        long max = sysconf(_SC_OPEN_MAX);

        for (long fd = first; fd < (max > 0 ? max : 65536); fd++)
            close((int)fd);
    }
}

/*
 * Give the child what libvirt gives QEMU before its hook: default signal handling, its own
 * session, stdio on /dev/null and the log, and none of our other descriptors.  The readiness
 * pipe lands on GUEST_READY_FD (inherited by the stand-in QEMU), the status pipe on
 * GUEST_STATUS_FD (close-on-exec, so its end of file tells the parent the exec happened).
 */
static int child_setup(int ready_w, int status_w, int log_fd, vml_error *err)
{
    struct sigaction dfl;
    sigset_t none;
    int tmp_ready;
    int tmp_status;
    int null_fd;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);   /* SIGKILL, SIGSTOP and RT internals refuse: fine */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot start a new session");
        return -1;
    }
    tmp_ready = fcntl(ready_w, F_DUPFD_CLOEXEC, 16);
    tmp_status = fcntl(status_w, F_DUPFD_CLOEXEC, 16);
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (tmp_ready < 0 || tmp_status < 0 || null_fd < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot set up the guest's descriptors");
        return -1;
    }
    if (dup2(log_fd >= 0 ? log_fd : null_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO) < 0 ||
        dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(tmp_ready, GUEST_READY_FD) < 0 ||
        dup3(tmp_status, GUEST_STATUS_FD, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot set up the guest's descriptors");
        return -1;
    }
    close_from(GUEST_FIRST_FREE_FD);
    return 0;
}

static void __attribute__((noreturn)) guest_child(vmh_plugin *plugin, const vmh_domain *dom,
                                                  const vmh_guest_opts *opts, int ready_w,
                                                  int status_w)
{
    vmh_domain child_dom = *dom;
    char *argv[5];
    int argc = 0;
    int holder_fd = -1;
    vml_error err;

    memset(&err, 0, sizeof(err));   /* the whole record goes down the status pipe */
    if (child_setup(ready_w, status_w, opts->log_fd, &err) < 0) {
        /* The status pipe may not be in place yet: write to the original. */
        spawn_report report;

        memset(&report, 0, sizeof(report));
        report.exit_status = VMH_EXEC_FAILED_STATUS;
        report.error.code = err.code;
        report.error.domain = err.domain;
        snprintf(report.error.message, sizeof(report.error.message), "%s", err.message);
        (void)vml_io_write_all(status_w, &report, sizeof(report));
        _exit(VMH_EXEC_FAILED_STATUS);
    }
    child_dom.pid = getpid();
    if (vmh_start_hook(plugin, &child_dom, &holder_fd, &err) < 0)
        child_fail(VMH_HOOK_FAILED_STATUS, &err);
    VML_DEBUG("guest %d: start hook done, holder descriptor %d", (int)child_dom.pid, holder_fd);

    argv[argc++] = (char *)opts->stub_path;
    argv[argc++] = (char *)"--ready-fd";
    argv[argc++] = (char *)"3";
    if (opts->ignore_sigterm)
        argv[argc++] = (char *)"--ignore-sigterm";
    argv[argc] = NULL;
    _Static_assert(GUEST_READY_FD == 3, "argv names the readiness descriptor");
    execv(opts->stub_path, argv);
    vml_error_set_errno(&err, VIR_FROM_NONE, errno, "cannot execute '%s'", opts->stub_path);
    child_fail(VMH_EXEC_FAILED_STATUS, &err);
}

/* waitpid that retries on EINTR; the raw status, or -1 with err. */
static int reap(pid_t pid, int *status, vml_error *err)
{
    while (waitpid(pid, status, 0) < 0) {
        if (errno == EINTR)
            continue;
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot wait for process %d", (int)pid);
        return -1;
    }
    return 0;
}

/* "exited with status N" / "was killed by signal N" */
static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "ended with wait status 0x%x", (unsigned int)status);
}

int vmh_guest_spawn(vmh_plugin *plugin, const vmh_domain *dom, const vmh_guest_opts *opts,
                    pid_t *pid, vml_error *err)
{
    int ready[2] = { -1, -1 };
    int status[2] = { -1, -1 };
    spawn_report report;
    pid_t child = -1;
    ssize_t got;
    char byte;
    int ret = -1;

    *pid = -1;
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create the guest's pipes");
        goto out;
    }
    fflush(NULL);   /* the child must not write out our buffered output a second time */
    child = fork();
    if (child < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork the guest");
        goto out;
    }
    if (child == 0)
        guest_child(plugin, dom, opts, ready[1], status[1]);

    close(ready[1]);
    ready[1] = -1;
    close(status[1]);
    status[1] = -1;

    /* End of file without a report: the exec happened (the status pipe is close-on-exec). */
    got = vml_io_read_full(status[0], &report, sizeof(report));
    if (got != 0) {
        int wstatus = 0;

        if (reap(child, &wstatus, err) < 0)
            goto out;
        child = -1;
        if (got == (ssize_t)sizeof(report)) {
            if (err != NULL)
                *err = report.error;
        } else {
            char how[64];

            describe_status(wstatus, how, sizeof(how));
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                          "Process exited prior to exec: the guest process %s", how);
        }
        goto out;
    }
    /* Ready is the byte and then end of file: the stand-in QEMU has closed the pipe and
     * holds exactly what it inherited. */
    got = vml_io_read_full(ready[0], &byte, 1);
    if (got == 1 && vml_io_read_full(ready[0], &byte, 1) != 0)
        got = -1;
    if (got != 1) {
        int wstatus = 0;
        char how[64];

        /* No readiness byte (or more than one): the stand-in QEMU is gone or misbehaves. */
        kill(child, SIGKILL);
        if (reap(child, &wstatus, err) < 0)
            goto out;
        child = -1;
        describe_status(wstatus, how, sizeof(how));
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "the stand-in QEMU %s %s before it was ready", opts->stub_path, how);
        goto out;
    }
    VML_DEBUG("guest %d ready", (int)child);
    *pid = child;
    child = -1;
    ret = 0;
 out:
    for (int i = 0; i < 2; i++) {
        if (ready[i] >= 0)
            close(ready[i]);
        if (status[i] >= 0)
            close(status[i]);
    }
    return ret;
}

int vmh_guest_kill(pid_t pid, vml_error *err)
{
    bool exited = false;

    if (pid <= 0) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "no guest process %d", (int)pid);
        return -1;
    }
    if (kill(pid, SIGKILL) < 0) {
        if (errno == ESRCH)
            return 0;
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot kill process %d", (int)pid);
        return -1;
    }
    while (waitpid(pid, NULL, 0) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == ECHILD)    /* not our child: wait for it another way */
            return vmh_wait_exit(pid, -1, &exited, err);
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot wait for process %d", (int)pid);
        return -1;
    }
    return 0;
}

static long long monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int vmh_wait_exit(pid_t pid, int timeout_ms, bool *exited, vml_error *err)
{
    long long deadline = timeout_ms >= 0 ? monotonic_ms() + timeout_ms : -1;
    struct pollfd pfd;
    int pidfd;
    int ret = -1;

    *exited = false;
    if (pid <= 0) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "no process %d", (int)pid);
        return -1;
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        if (errno == ESRCH) {
            *exited = true;
            return 0;
        }
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot watch process %d", (int)pid);
        return -1;
    }
    pfd.fd = pidfd;
    pfd.events = POLLIN;
    for (;;) {
        int wait_ms = -1;
        int n;

        if (deadline >= 0) {
            long long left = deadline - monotonic_ms();

            wait_ms = left > 0 ? (int)left : 0;
        }
        n = poll(&pfd, 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot wait for process %d",
                                (int)pid);
            goto out;
        }
        *exited = n > 0;
        break;
    }
    ret = 0;
 out:
    close(pidfd);
    return ret;
}
