/* drv_pause_memo.h: remembers each domain's last pause state, so libvirt's second release of one pause cannot erase it. */
#ifndef DRV_PAUSE_MEMO_H
#define DRV_PAUSE_MEMO_H

#include <stdbool.h>

/*
 * Why: libvirt 9.0.0 releases a domain's leases twice for one `virsh suspend` (the stop-CPUs
 * path and the STOP event), freeing priv->lockState before each call and storing what the
 * plugin returns.  The second release finds nothing held and would return no state, so the
 * resume would go unfenced.  The first release's state is remembered here per domain uuid
 * and handed back by a release that released nothing.
 *
 * Only used inside libvirtd (pause, resume): never on the start path, which runs in a child
 * forked from libvirtd and must not take locks.  Thread-safe.  Bounded: the oldest entry is
 * forgotten first.
 */

/* Remember state (copied) as uuid's pause state. */
void drv_pause_memo_store(const unsigned char uuid[16], const char *state);

/* A malloc'd copy of uuid's remembered state (owned by the caller), or NULL. */
char *drv_pause_memo_lookup(const unsigned char uuid[16]);

/* Forget uuid's state: it holds its leases again. */
void drv_pause_memo_forget(const unsigned char uuid[16]);

#endif
