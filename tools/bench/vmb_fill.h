/* vmb_fill.h: fills a lock daemon with many held leases over the wire, for vmlock-bench's "many leases" measurement. */
#ifndef VMB_FILL_H
#define VMB_FILL_H

#include <stdbool.h>
#include <sys/types.h>

#include "vml_error.h"

/*
 * Make the daemon at sock_path hold count leases named "fill-NNNNNNNN" in the lockspace
 * directory lockspace_dir (registered with CREATE_LOCKSPACE; the lease files are autocreated
 * by the daemon), all for one owner: the live process owner_pid (vmlockd refuses owners that
 * are not running; the leases go when it exits).  With vmlockd, BATCH_ACQUIRE calls of up to
 * 4096 leases; with a daemon that answers "Cannot find program" (virtlockd), REGISTER and one
 * ACQUIRE_RESOURCE per lease.  *used_batch says which.  All arguments are borrowed.
 */
int vmb_fill(const char *sock_path, const char *lockspace_dir, pid_t owner_pid,
             unsigned int count, bool *used_batch, vml_error *err);

#endif
