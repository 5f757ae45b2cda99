/* fake_daemon.h: a scripted stand-in lock daemon (vmlockd or virtlockd flavour) in a child process, logging every call. */
#ifndef FAKE_DAEMON_H
#define FAKE_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * How the fake answers (by resource name prefix, so one test script drives every case):
 *   "busy..."     ACQUIRE_RESOURCE / BATCH_ACQUIRE: resource busy (VIR_FROM_LOCKSPACE)
 *   "notheld..."  RELEASE_RESOURCE / BATCH_RELEASE: resource busy "is not locked"
 *   "drop..."     any resource procedure (version 2 batches too): the connection is closed
 *                 without a reply, after the call was logged
 *   "slow..."     version 2 batches: the reply waits for the test (fake_daemon_slow_started,
 *                 then fake_daemon_slow_finish)
 *   "moved..."   BATCH_ACQUIRE (version 2) with an expected generation: refused as vmlockd
 *                 refuses a resume after another domain held the lease
 * everything else succeeds.  After fake_daemon_forget_lockspaces(), a version 2 BATCH_ACQUIRE
 * naming a lockspace other than "" is refused as a daemon started cold refuses it ("Lockspace
 * for path P does not exist", an internal error) until the next CREATE_LOCKSPACE.  Version 2 batches answer generation 10 + the resource's index,
 * epoch 0xe9 for the default lockspace and 0 for the others.  FAKE_VIRTLOCKD answers the
 * extension program with virtlockd's "Cannot find program" error; FAKE_VMLOCKD_V1 does so
 * for extension version 2 only (an older vmlockd).  Each call is appended to the log file
 * as one line before the reply is sent, so the log is complete once the client has its
 * reply:
 *   REGISTER <name> <id> <pid> | RESTRICT | CREATE_LOCKSPACE <path>
 *   ACQUIRE <lockspace> <name> <flags> | RELEASE <lockspace> <name> <flags>
 *   BATCH_ACQUIRE <owner name> <pid> {<lockspace> <name> <disk> <flags>[ expect=G@E];}...
 *       [ action=N] [ uri=U]                       (version 2)
 *   BATCH_RELEASE <owner name> <pid> {...}      | INQUIRE <owner name> <pid> {...}
 *   BATCH_ACQUIRE(v1) ... | BATCH_RELEASE(v1) ...  (version 1)
 *   NOPROG <proc> (virtlockd) | NOVERS <proc> (version 2 to FAKE_VMLOCKD_V1)
 */
typedef enum {
    FAKE_VMLOCKD,
    FAKE_VIRTLOCKD,
    FAKE_VMLOCKD_V1,
} fake_mode;

typedef struct fake_daemon {
    pid_t pid;
    char sock_path[256];
    char log_path[256];
    size_t conns_taken;     /* bytes of the connection log already taken */
    int eof_fd;             /* FIFO the fake's connections signal their EOF lines on */
} fake_daemon;

/* Start a fake serving dir/name.sock, logging to dir/name.log; returns once it listens. */
int fake_daemon_start(fake_daemon *fake, const char *dir, const char *name, fake_mode mode);

/*
 * Serve sock_path in the calling process until killed (or 60 s pass: a safety net for a
 * broken test, not a synchronisation).  Writes one byte to ready_fd (if >= 0) once listening.
 */
void fake_daemon_serve(const char *sock_path, const char *log_path, fake_mode mode,
                       int ready_fd) __attribute__((noreturn));

/* Make the fake forget every lockspace, as a daemon restarted without its state has. */
void fake_daemon_forget_lockspaces(fake_daemon *fake);

/*
 * The connection log since the last call (malloc'd, caller frees; the file keeps it all).  One line per
 * accepted connection, per call and per connection end, each naming the connection by an id
 * (the pid of the process serving it, unique across restarts of the fake):
 *   <id> ACCEPT <peer pid (SO_PEERCRED)> | <id> <the call's line in the main log> | <id> EOF
 */
char *fake_daemon_take_conns(fake_daemon *fake);

/*
 * Wait (at most timeout_ms) until one more connection of the fake logged its EOF line; true
 * when one did.  Each EOF is signalled once, so a caller that looks at the log again after
 * every true return never misses one.
 */
bool fake_daemon_wait_eof(fake_daemon *fake, int timeout_ms);

/* Block until a "slow..." call has reached the fake (it is waiting to reply); 0, or -1. */
int fake_daemon_slow_started(fake_daemon *fake);

/* Let the waiting "slow..." call reply. */
void fake_daemon_slow_finish(fake_daemon *fake);

/* Kill and reap the fake and every connection it serves (their clients see EOF). */
void fake_daemon_stop(fake_daemon *fake);

/* The log so far (malloc'd, caller frees), then the log is emptied. */
char *fake_daemon_take_log(fake_daemon *fake);

/* The whole of a file as a malloc'd string ("" when missing). */
char *fake_read_file(const char *path);

#endif
