/* vmh_plughost.h: hosts any libvirt lock-driver plugin the way libvirt 9.0.0 does (loading, per-operation contexts, the start hook, guest spawning). */
#ifndef VMH_PLUGHOST_H
#define VMH_PLUGHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lock_driver_abi.h"
#include "vml_error.h"

/*
 * Error capture.  A plugin reports errors by calling virReportErrorHelper(), which libvirt
 * resolves to its own private function.  This module defines and exports that symbol, so an
 * executable linking it must be linked with export_dynamic (meson) / -rdynamic for plugins to
 * find it.  Errors are recorded per thread, as libvirt records its "last error".
 *
 * A plugin that links libvirt.so.0 itself (libvirt's own lockd.so) raises some errors inside
 * libvirt instead (its RPC client re-raises the daemon's error there).  For such a plugin the
 * host calls virInitialize() (lockd.so crashes without it), forwards every report it gets to
 * libvirt's own virReportErrorHelper (libvirt.so.0 calls that symbol through its PLT, so ours
 * receives libvirt's internal reports too), and reads the outcome with the public
 * virGetLastError(): libvirt's last error is then the one record, as inside libvirtd, and
 * what it holds is the error a user would have seen from virsh.
 *
 * Every operation below that fails returns -1 with err holding that error: code and domain
 * as libvirt's, message the complete text virsh prints after "error: ".
 */

/* Defined by this module and exported to plugins: records a plugin's error (see above). */
void virReportErrorHelper(int domcode, int errcode, const char *filename, const char *funcname,
                          size_t linenr, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A loaded and initialised plugin. */
typedef struct vmh_plugin vmh_plugin;

/*
 * Load the plugin at path like libvirt: access(R_OK), dlopen(RTLD_NOW|RTLD_LOCAL), look up the
 * data symbol virLockDriverImpl, check that all eight callbacks are set, then
 * drvInit(VIR_LOCK_MANAGER_VERSION, config_path, 0).  config_path is passed as given (libvirt
 * always passes one, whether or not the file exists); NULL is passed through as NULL.
 * On success *out is owned by the caller (vmh_plugin_close).  Errors are worded as libvirt's:
 * "Failed to load plugin PATH: DLERROR", "Missing plugin initialization symbol
 * 'virLockDriverImpl'", or the plugin's own drvInit error.
 */
int vmh_plugin_open(const char *path, const char *config_path, vmh_plugin **out,
                    vml_error *err);

/* drvDeinit, then dlclose (kept loaded, as libvirt does, when drvDeinit fails).  Accepts NULL. */
void vmh_plugin_close(vmh_plugin *plugin);

/* The plugin's driver table (borrowed; valid until vmh_plugin_close). */
const virLockDriver *vmh_plugin_driver(const vmh_plugin *plugin);

/* True when loading the plugin pulled libvirt.so.0 into the process (libvirt's lockd.so). */
bool vmh_plugin_uses_libvirt(const vmh_plugin *plugin);

/* One <disk>: flags are VIR_LOCK_MANAGER_RESOURCE_READONLY and/or _SHARED. */
typedef struct vmh_disk {
    const char *path;
    unsigned int flags;
} vmh_disk;

/* One <lease>: lockspace NULL drops the lockspace param, as libvirt does for a lease without one. */
typedef struct vmh_lease {
    const char *key;
    const char *path;
    unsigned long long offset;
    const char *lockspace;
} vmh_lease;

/*
 * What libvirt knows about a domain when it calls the lock manager.  Every pointer is borrowed
 * from the caller for the duration of a call.  uri is passed on the paths where libvirt passes
 * one (start, CPU start/resume, attach) and replaced by NULL where libvirt passes NULL (pause,
 * detach, inquire); uri NULL means vmh_default_uri().  The full resource set is all leases
 * first, then all disks, in array order.
 */
typedef struct vmh_domain {
    unsigned char uuid[VIR_UUID_BUFLEN];
    const char *name;
    unsigned int id;
    pid_t pid;                              /* the QEMU pid; the spawned child's own at start */
    const char *uri;
    virDomainLockFailureAction action;      /* <on_lockfailure> */
    const vmh_lease *leases;
    size_t nleases;
    const vmh_disk *disks;
    size_t ndisks;
} vmh_domain;

/* "qemu:///system" when the effective uid is 0, "qemu:///session" otherwise (static string). */
const char *vmh_default_uri(void);

/*
 * A lock-manager context: one virLockManager, as libvirt creates afresh for every operation.
 * The low-level calls below are for callers (conformance tests) that need sequences libvirt
 * never makes; the operations further down are what libvirt does.
 */
typedef struct vmh_context vmh_context;

/*
 * drvNew with exactly libvirt's five params (uuid, name, id, pid, uri; UINTs written through
 * .iv), type DOMAIN and flags new_flags.  with_uri false passes the uri param as NULL.  On
 * success *out is owned by the caller (vmh_context_free); on failure the plugin's drvFree is
 * not called, as in libvirt.
 */
int vmh_context_new(vmh_plugin *plugin, const vmh_domain *dom, unsigned int new_flags,
                    bool with_uri, vmh_context **out, vml_error *err);

/* drvAddResource for a disk: type DISK, name = path, no params, flags = disk->flags. */
int vmh_context_add_disk(vmh_context *ctx, const vmh_disk *disk, vml_error *err);

/* drvAddResource for a lease: type LEASE, name = key, params path, offset, lockspace; flags 0. */
int vmh_context_add_lease(vmh_context *ctx, const vmh_lease *lease, vml_error *err);

/* drvAcquire; fd may be NULL, else *fd is set to -1 before the call as libvirt's wrapper does. */
int vmh_context_acquire(vmh_context *ctx, const char *state, unsigned int flags,
                        virDomainLockFailureAction action, int *fd, vml_error *err);

/*
 * drvRelease / drvInquire.  state may be NULL; else *state is set to NULL before the call and
 * afterwards holds the plugin's malloc'd state string (or NULL), owned by the caller.
 */
int vmh_context_release(vmh_context *ctx, char **state, unsigned int flags, vml_error *err);
int vmh_context_inquire(vmh_context *ctx, char **state, unsigned int flags, vml_error *err);

/* drvFree, then free the context.  Accepts NULL. */
void vmh_context_free(vmh_context *ctx);

/*
 * The operations of libvirt's QEMU driver (libvirt-lock-facts.md 3.3), each on a fresh
 * context: new, add resources, the call, free.
 */

/*
 * The start hook, as run in the forked child before exec: new(NEW_STARTED, uri), the full
 * resource set, acquire(state NULL, REGISTER_ONLY|RESTRICT, action, &fd).  *holder_fd is the
 * descriptor the plugin leaves for QEMU to inherit, or -1; it is the caller's (it is meant to
 * be kept open across exec).  dom->pid must already be the pid QEMU will have.
 */
int vmh_start_hook(vmh_plugin *plugin, const vmh_domain *dom, int *holder_fd, vml_error *err);

/* CPU start or resume, as libvirtd: new(0, uri), the full set, acquire(state, 0, action, NULL). */
int vmh_acquire(vmh_plugin *plugin, const vmh_domain *dom, const char *state, vml_error *err);

/*
 * Pause: new(0, uri NULL), the full set, release(&state, 0).  *state is the plugin's state
 * string (malloc'd, owned by the caller) or NULL.
 */
int vmh_release(vmh_plugin *plugin, const vmh_domain *dom, char **state, vml_error *err);

/* Migration's query: new(0, uri NULL), the full set, inquire(&state, 0); *state as above. */
int vmh_inquire(vmh_plugin *plugin, const vmh_domain *dom, char **state, vml_error *err);

/* Disk hotplug: new(0, uri), that one disk, acquire(NULL, 0, action, NULL). */
int vmh_attach_disk(vmh_plugin *plugin, const vmh_domain *dom, const vmh_disk *disk,
                    vml_error *err);

/* Disk hot-unplug: new(0, uri NULL), that one disk, release(NULL, 0). */
int vmh_detach_disk(vmh_plugin *plugin, const vmh_domain *dom, const vmh_disk *disk,
                    vml_error *err);

/* Lease hotplug and unplug: as the disk variants, with that one lease. */
int vmh_attach_lease(vmh_plugin *plugin, const vmh_domain *dom, const vmh_lease *lease,
                     vml_error *err);
int vmh_detach_lease(vmh_plugin *plugin, const vmh_domain *dom, const vmh_lease *lease,
                     vml_error *err);

/* How to start the stand-in QEMU. */
typedef struct vmh_guest_opts {
    const char *stub_path;      /* the vmlock-stub-qemu executable */
    bool ignore_sigterm;        /* pass --ignore-sigterm */
    int log_fd;                 /* the guest's stdout and stderr (its "QEMU log"); -1: /dev/null */
} vmh_guest_opts;

/* Exit status of a child whose start hook failed (libvirt's hook status). */
#define VMH_HOOK_FAILED_STATUS 125
/* Exit status of a child that could not exec the stand-in QEMU. */
#define VMH_EXEC_FAILED_STATUS 127

/*
 * Start a guest as libvirt starts QEMU: fork; in the child start a new session, point
 * stdin at /dev/null and stdout/stderr at opts->log_fd, close every other descriptor of
 * ours, run the start hook with pid = getpid(), then exec the stand-in QEMU with the holder
 * descriptor left open and a readiness pipe.  If the hook fails the child prints
 * "error: MESSAGE" to its stderr and exits VMH_HOOK_FAILED_STATUS.
 * The parent blocks (no polling, no sleeps) until the guest has written its readiness byte
 * and closed the pipe (so it holds exactly what it inherited), or the child has exited.  On success *pid is the guest's pid, a child of the caller, which
 * the caller reaps (vmh_guest_kill) or leaves running.  On failure the child has been reaped
 * and err holds the hook's error (code and domain as the plugin raised them) or why the
 * guest did not start.
 */
int vmh_guest_spawn(vmh_plugin *plugin, const vmh_domain *dom, const vmh_guest_opts *opts,
                    pid_t *pid, vml_error *err);

/*
 * SIGKILL pid and wait until it has exited, as libvirt kills QEMU after a failed start: a
 * child of the caller is reaped; any other process is waited for through a pidfd.  A pid that
 * is already gone is not an error.
 */
int vmh_guest_kill(pid_t pid, vml_error *err);

/*
 * Wait for pid (any process, not only a child) to exit, through pidfd_open and poll.
 * timeout_ms < 0 waits forever.  *exited is false when the timeout passed first.  A pid that
 * does not exist counts as exited.
 */
int vmh_wait_exit(pid_t pid, int timeout_ms, bool *exited, vml_error *err);

#endif
