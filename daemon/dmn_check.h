/* dmn_check.h: periodic re-verification of held leases in a forked probe, with a deadline that turns silence into loss. */
#ifndef DMN_CHECK_H
#define DMN_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vml_error.h"
#include "dmn_lockspace.h"

/*
 * Every interval_ms a round starts: the daemon forks a probe child, which inherits every
 * lease descriptor and checks each lease with plain syscalls (fstat, stat of the path
 * against the locked inode, the lock itself, and for exclusive leases with an owner record
 * a cache-dropping pread of it that must still name us: this is what surfaces a lost NFS
 * lease as EIO).  It writes one fixed-size verdict per lease to a pipe and exits.  The
 * loop never blocks on storage: a lease the probe has not vouched for timeout_ms after the
 * round began is declared lost, so a mount that hangs is treated like one that fails
 * (docs/LIFETIME.md has the timeline this buys).  One round at a time: while a probe is
 * stuck in the kernel no new one is forked.
 */
typedef struct dmn_checker dmn_checker;

/* Called for each lease a round finds lost (not yet marked LOST); reason is for the log. */
typedef void (*dmn_loss_fn)(void *opaque, dmn_lease *lease, const char *reason);

/* interval_ms 0 disables the periodic rounds (CHECK_NOW still runs one).  *out owned by the
 * caller (dmn_checker_free). */
int dmn_checker_new(unsigned int interval_ms, unsigned int timeout_ms, int64_t now_ms,
                    dmn_checker **out, vml_error *err);

/* Free the checker; a running probe is left to finish on its own (its pipe is closed). */
void dmn_checker_free(dmn_checker *checker);

/*
 * Start a round now unless one is running (returns 0 either way: the caller waits for the
 * round in progress).  -1 with err when the probe cannot be forked.
 */
int dmn_checker_start(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                      vml_error *err);

/*
 * CHECK_NOW: make sure a round runs that lists every lease held now.  *round is the number
 * the caller waits for (dmn_checker_rounds_done reaching it): the round started now, or,
 * when one is already running (it listed its leases before this request), the one started
 * right after it.
 */
int dmn_checker_request(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                        uint64_t *round, vml_error *err);

/* The pipe to poll for verdicts while a round runs, else -1. */
int dmn_checker_fd(const dmn_checker *checker);

/* The next time dmn_checker_run_timers has something to do (round start or deadline). */
bool dmn_checker_next_deadline(const dmn_checker *checker, int64_t *deadline_ms);

/* The pipe is readable: take the verdicts, reporting losses through lost; at EOF the round
 * completes. */
void dmn_checker_on_readable(dmn_checker *checker, dmn_lockspaces *reg, dmn_loss_fn lost,
                             void *opaque);

/* Start the periodic round when due; declare unverified leases lost past the deadline. */
void dmn_checker_run_timers(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                            dmn_loss_fn lost, void *opaque);

/* True while a probe child exists (running, or stuck past its deadline). */
bool dmn_checker_busy(const dmn_checker *checker);

/* True when the probe child is still stuck after its round's deadline ended the round. */
bool dmn_checker_stuck(const dmn_checker *checker);

/* Rounds completed (or ended by their deadline) so far; a waiter for "the round that
 * started at or after my request" compares against what dmn_checker_start returned. */
uint64_t dmn_checker_rounds_done(const dmn_checker *checker);

/* The number the round in progress (or the next one) will have when done. */
uint64_t dmn_checker_round_number(const dmn_checker *checker);

/* What the last finished round verified and found lost. */
void dmn_checker_last_round(const dmn_checker *checker, unsigned int *checked,
                            unsigned int *lost);

unsigned int dmn_checker_interval_ms(const dmn_checker *checker);

#endif
