/* drv_client.h: the plugin's conversations with the lock daemon (vmlockd, or virtlockd as a fallback). */
#ifndef DRV_CLIENT_H
#define DRV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "lock_driver_abi.h"
#include "vml_error.h"
#include "vml_wire.h"

/*
 * Connections.  drv_client_register (the start hook) always opens its own connection: in
 * the child libvirt forks, it becomes QEMU's holder connection.  The other calls against
 * vmlockd (drv_client_acquire, _release, _inquire, _create_lockspace) reuse one persistent
 * connection per socket path once drv_client_shared_enable() was called, but only in the
 * process that called it (libvirtd; a forked child gets getpid() != that pid and never
 * touches the connection nor its lock) and only while no other thread is using it (a busy
 * connection is not waited for: that call opens its own, as lockd does).  Against virtlockd
 * (whose REGISTER binds a connection to one owner) every call has its own connection.
 * Connection errors name sock_path.  When the process is unprivileged and nothing listens
 * on sock_path, the daemon is started first (see drv_client_connect).  All arguments are
 * borrowed.
 */

/*
 * Let the calling process (libvirtd, at drvInit) keep one connection per socket path.  The
 * descriptors are close-on-exec, so QEMU never inherits them.
 */
void drv_client_shared_enable(void);

/* drvDeinit: close every persistent connection (in the process that opened them only) and
 * go back to one connection per call. */
void drv_client_shared_close_all(void);

/*
 * Connect to sock_path.  Unprivileged callers (geteuid() != 0) whose connect fails with
 * ENOENT or ECONNREFUSED take a blocking write lock on $XDG_RUNTIME_DIR/vmlockd/vmlockd.lock
 * (so concurrent callers start one daemon), retry, and otherwise run
 * "$VMLOCKD_PATH --daemon --timeout=120" (default VML_SBINDIR/vmlockd), wait for it (its
 * --daemon mode returns once it listens) and connect once more.  Privileged callers never
 * start the daemon: that is systemd socket activation's job.  Uses only plain syscalls
 * (safe in the child forked from libvirtd).  On success client is connected (close it with
 * vml_client_close).
 */
int drv_client_connect(vml_client *client, const char *sock_path, vml_error *err);

/*
 * The start hook (drvAcquire with REGISTER_ONLY, in the child that becomes QEMU): connect,
 * REGISTER owner; when fd is not NULL store in *fd a duplicate of the connection that is NOT
 * close-on-exec (QEMU inherits it and so becomes the lease holder; the caller owns it);
 * when restrict_conn, RESTRICT the connection.  The original descriptor is closed.  On
 * failure *fd is -1 and no descriptor is left open.  Only malloc and plain syscalls.
 */
int drv_client_register(const char *sock_path, const vml_ls_owner *owner, bool restrict_conn,
                        int *fd, vml_error *err);

/*
 * Acquire resources[0..count) for owner, all or nothing.  With vmlockd: one BATCH_ACQUIRE of
 * extension version 2, carrying the expected generations (VML_EXT_RESOURCE_EXPECT_GENERATION
 * resources), the domain's <on_lockfailure> action and its libvirt uri (may be NULL), and
 * filling gens (count entries; may be NULL) with the generations acquired.  A daemon that
 * only knows version 1 (an older vmlockd) gets version 1 without generations; virtlockd
 * (which answers "Cannot find program" to both) gets REGISTER + one ACQUIRE_RESOURCE per
 * resource on the same connection, releasing what this call took when one fails.  Against
 * those two, expected generations cannot be checked (a warning says so) and gens report
 * held false.
 */
int drv_client_acquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       virDomainLockFailureAction action, const char *uri,
                       vml_ext_generation *gens, vml_error *err);

/*
 * Release resources[0..count) held by owner: BATCH_RELEASE (version 2 fills gens, count
 * entries, may be NULL, with the generations released), or with virtlockd REGISTER +
 * RELEASE_RESOURCE each, carrying on past failures.  Reports the first failure.
 */
int drv_client_release(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       vml_ext_generation *gens, vml_error *err);

/*
 * The generations of resources[0..count) that owner holds now (INQUIRE, version 2) into
 * gens (count entries).  A daemon without version 2 leaves every entry held false.
 */
int drv_client_inquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       vml_ext_generation *gens, vml_error *err);

/* CREATE_LOCKSPACE dir over an unregistered connection (idempotent on the daemon side). */
int drv_client_create_lockspace(const char *sock_path, const char *dir, vml_error *err);

/*
 * What the daemon was last seen to be: virtlockd (no extension program), or a vmlockd that
 * only knows extension version 1.  Process-wide and shared by all threads: the only mutable
 * state of this module.  Exposed for tests.
 */
bool drv_client_peer_is_virtlockd(void);
bool drv_client_peer_is_v1(void);
void drv_client_forget_peer(void);

#endif
