/* drv_client.h: the plugin's conversations with the lock daemon (vmlockd, or virtlockd as a fallback). */
#ifndef DRV_CLIENT_H
#define DRV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "lock_driver_abi.h"
#include "vml_error.h"
#include "vml_wire.h"

/*
 * Every function opens its own connection to sock_path and closes it before returning (as
 * lockd does), so nothing here outlives a call except the holder descriptor handed to QEMU.
 * Connection errors name sock_path.  When the process is unprivileged and nothing listens
 * on sock_path, the daemon is started first (see drv_client_connect).  All arguments are
 * borrowed.
 */

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
 * Acquire resources[0..count) for owner, all or nothing: one BATCH_ACQUIRE with vmlockd;
 * with virtlockd (which answers "Cannot find program"), REGISTER + one ACQUIRE_RESOURCE per
 * resource on the same connection, releasing what this call took when one fails.
 * state and action are the caller's drvAcquire arguments, not used yet (lock state
 * generations and <on_lockfailure> will use them).
 */
int drv_client_acquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource *resources, size_t count, const char *state,
                       virDomainLockFailureAction action, vml_error *err);

/*
 * Release resources[0..count) held by owner: BATCH_RELEASE, or with virtlockd REGISTER +
 * RELEASE_RESOURCE each, carrying on past failures.  Reports the first failure.
 */
int drv_client_release(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource *resources, size_t count, vml_error *err);

/* CREATE_LOCKSPACE dir over an unregistered connection (idempotent on the daemon side). */
int drv_client_create_lockspace(const char *sock_path, const char *dir, vml_error *err);

/*
 * Whether the daemon was last seen to be virtlockd (no batch program).  Process-wide and
 * shared by all threads: the only mutable state of this module.  Exposed for tests.
 */
bool drv_client_peer_is_virtlockd(void);
void drv_client_forget_peer(void);

#endif
