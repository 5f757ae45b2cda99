/* dmn_keeper.h: the daemon's side of the keeper: starting it, handing it every lease descriptor, and adopting what it kept after a crash. */
#ifndef DMN_KEEPER_H
#define DMN_KEEPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vml_error.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

typedef struct dmn_keeper dmn_keeper;

/* Told about each adopted lease whose lock was found lost (reason for the log). */
typedef void (*dmn_keeper_lost_fn)(void *opaque, dmn_lease *lease, const char *reason);

/*
 * Connect to the keeper listening on sock_path, starting one when nobody answers there (a
 * process double-forked from this one, running dmn_keepd_run; log_outputs, may be NULL, is
 * passed on without its stderr items).  *out is owned by the caller (dmn_keeper_free).
 */
int dmn_keeper_open(const char *sock_path, const char *log_outputs, dmn_keeper **out,
                    vml_error *err);

/* Wait at most timeout_ms (0: the default, 10 s) for the keeper from now on: a send, a HELLO
 * answer.  A keeper that listens but does not answer in time is tried again after 5 s,
 * then twice as late after each such try (up to 5 min). */
void dmn_keeper_set_timeout(dmn_keeper *k, unsigned int timeout_ms);

/* Take over a connection inherited from the previous image (handover); fd is owned from
 * this call on, even on error. */
int dmn_keeper_inherit(const char *sock_path, const char *log_outputs, int fd,
                       unsigned int keeper_pid, dmn_keeper **out, vml_error *err);

/*
 * HELLO, then reconcile with what the keeper holds: its items that reg has are confirmed;
 * with adopt, the others are rebuilt into reg and owners (ARCHITECTURE daemon invariant 12:
 * each descriptor's lock verified, each holder re-watched by its pidfd with its start time
 * checked, holders that exited meanwhile dropped, leases left without a holder released),
 * else they are dropped; leases of reg the keeper lacks are queued for ADD.  Journaling is
 * on afterwards.  *adopted / *released (may be NULL) count adopted leases and adopted
 * leases released because every holder had exited.  Adopted leases found lost are passed
 * to lost after they are restored.
 */
int dmn_keeper_sync(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners, bool adopt,
                    size_t *adopted, size_t *released, dmn_keeper_lost_fn lost, void *opaque,
                    vml_error *err);

/*
 * Send what reg's journal holds (ADD with descriptors and pidfds, UPDATE, DROP; packed into
 * as few messages as the bounds allow: one per request in practice), and every DROP still
 * waiting.  A keeper that cannot be reached is restarted and resynced; when even that
 * fails, journaling goes off (locks then die with the daemon) and is retried at the next
 * flush.
 */
void dmn_keeper_flush(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners);

/*
 * The same for one request (or loop round): ADD and UPDATE now (they must precede the
 * reply), DROPs of released leases queued and sent in batches, at the latest after a short
 * delay (dmn_keeper_next_deadline); their locks are already released.
 */
void dmn_keeper_flush_request(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners);

/* When the keeper needs the loop next (flush_request then acts): queued DROPs due, or, while
 * no keeper is connected, the next attempt to reach one.  True and *deadline_ms set
 * (CLOCK_MONOTONIC ms), false when nothing waits. */
bool dmn_keeper_next_deadline(const dmn_keeper *k, int64_t *deadline_ms);

/* The connection to poll (only hangups are expected on it), or -1 when there is none. */
int dmn_keeper_fd(const dmn_keeper *k);

/* The connection polled readable: the keeper died (or misbehaved): reconnect, resync. */
void dmn_keeper_on_event(dmn_keeper *k, dmn_lockspaces *reg, dmn_owners *owners);

/* The keeper's pid, 0 when unknown. */
unsigned int dmn_keeper_pid(const dmn_keeper *k);

/* Clean stop: tell the keeper to close everything and exit (every lease already released). */
void dmn_keeper_bye(dmn_keeper *k);

/* Give up the connection for a re-exec: returns it (CLOEXEC still set), -1 when none. */
int dmn_keeper_release_fd(dmn_keeper *k);

/* Close the connection without BYE (the keeper keeps what it holds); accepts NULL. */
void dmn_keeper_free(dmn_keeper *k);

#endif
