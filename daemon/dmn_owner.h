/* dmn_owner.h: lock owners (QEMU processes) by pid, their pidfds, and killing an owner whose holder connection closed. */
#ifndef DMN_OWNER_H
#define DMN_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vml_error.h"
#include "vml_lockspace.h"
#include "dmn_hash.h"

/* One lease held by one owner; defined and maintained by dmn_lockspace.c. */
typedef struct dmn_holding dmn_holding;

/*
 * An owner exists while it holds at least one lease or a kill is under way, and, when it
 * has a pidfd, until its process exits (an idle owner is kept for its next acquisition:
 * dmn_owners_forget_if_idle); while it exists its pidfd is open and watched by the poll
 * loop, so its death releases its leases and frees it.
 * Invariant: pidfd refers to the process that had pid when the owner was created, so a
 * recycled pid can never be signalled or mistaken for it.
 * Where pidfd_open() does not exist (ENOSYS: old kernels, valgrind 3.19) pidfd is -1 and
 * the owner is probed instead (dmn_owner_probe_exited), identified by pid AND start time
 * so that a recycled pid still reads as "exited".
 */
typedef struct dmn_owner {
    unsigned int pid;               /* key in dmn_owners.by_pid */
    vml_ls_owner identity;          /* latest REGISTER/batch identity; identity.name owned */
    int pidfd;                      /* -1: probed through /proc (no pidfd support) */
    unsigned long long start_time;  /* /proc/PID/stat starttime: pid reuse guard (keeper, probes) */
    int on_lockfailure;             /* the domain's <on_lockfailure> (virDomainLockFailureAction) */
    char *uri;                      /* libvirt URI for the pause action; NULL when unknown */
    bool lockfailure_applied;       /* a lost lease already triggered its action */
    dmn_holding *holdings;          /* the owner's leases: list kept by dmn_lockspace.c */
    size_t nholdings;
    bool kill_pending;              /* SIGTERM sent after its holder connection closed */
    bool sigkill_sent;
    int64_t sigkill_at_ms;          /* CLOCK_MONOTONIC deadline of the SIGKILL */
    struct dmn_owner *prev, *next;  /* dmn_owners list, creation order */
} dmn_owner;

/* libvirt's virDomainLockFailureAction values (<on_lockfailure>), as the wire carries them. */
enum {
    DMN_LOCKFAILURE_DEFAULT = 0,
    DMN_LOCKFAILURE_POWEROFF = 1,
    DMN_LOCKFAILURE_RESTART = 2,
    DMN_LOCKFAILURE_PAUSE = 3,
    DMN_LOCKFAILURE_IGNORE = 4,
    DMN_LOCKFAILURE_LAST = 5,
};

/* How often probed owners (no pidfd support) are checked for exit. */
#define DMN_OWNER_PROBE_MS 100

/* A running vmlockd-pause-helper: when it fails, its owner is killed instead. */
typedef struct dmn_helper {
    pid_t pid;
    int pidfd;                      /* -1: reaped by waitpid(WNOHANG) on the probe timer */
    unsigned int owner_pid;
    unsigned long long owner_start_time;
    struct dmn_helper *next;
} dmn_helper;

typedef struct dmn_owners {
    dmn_hash *by_pid;
    dmn_owner *head, *tail;
    size_t count;
    size_t nprobed;                 /* owners without a pidfd */
    unsigned int kill_grace_ms;     /* SIGTERM -> SIGKILL delay */
    uint64_t kills;                 /* owners signalled to die: their holder connection
                                     * closed, or their on_lockfailure action */
    const char *pause_helper;       /* vmlockd-pause-helper path (borrowed); NULL = none */
    dmn_helper *helpers;            /* pause helpers still running */
    size_t nhelpers;
} dmn_owners;

/* A new empty registry, owned by the caller (dmn_owners_free). */
int dmn_owners_new(unsigned int kill_grace_ms, dmn_owners **out, vml_error *err);

/* Free every owner (closing its pidfd) and the registry; accepts NULL.  Leases must already
 * have been released (dmn_lockspaces_free does it), or the holdings are just forgotten. */
void dmn_owners_free(dmn_owners *owners);

/* The owner with this pid, or NULL.  The registry keeps ownership. */
dmn_owner *dmn_owners_find(const dmn_owners *owners, unsigned int pid);

/*
 * The owner for identity->pid, created (with a pidfd) when absent, its identity replaced by
 * *identity (copied) when present.  *out is borrowed from the registry.  An identity whose
 * pid is not a running process is refused with VIR_ERR_OPERATION_INVALID, so no lease is
 * ever taken for a process that could never release it.  A new owner holding nothing must
 * be handed back to dmn_owners_forget_if_idle() when the caller's acquisition fails.
 */
int dmn_owners_get(dmn_owners *owners, const vml_ls_owner *identity, dmn_owner **out,
                   vml_error *err);

/*
 * Re-create an owner handed over by the keeper or by the previous image: identity (copied),
 * start_time as recorded, pidfd (taken over, -1 for none: then the pid is probed).  Returns
 * 0 with *out set when that very process still runs, 1 when it has exited (or its pid now
 * names another process: the start time differs) and nothing was created (pidfd closed),
 * -1 on error (pidfd closed).  An owner with this pid already present is returned as is
 * (pidfd closed).
 */
int dmn_owners_adopt(dmn_owners *owners, const vml_ls_owner *identity,
                     unsigned long long start_time, int pidfd, dmn_owner **out,
                     vml_error *err);

/* Record the domain's <on_lockfailure> action and libvirt URI (copied; NULL/"" = unknown). */
int dmn_owner_set_lockfailure(dmn_owner *owner, int action, const char *uri, vml_error *err);

/* The name of a virDomainLockFailureAction value ("poweroff", ...; "default" otherwise). */
const char *dmn_lockfailure_name(int action);

/*
 * One of owner's leases (described by what, for the log) was lost: apply its
 * <on_lockfailure> once per owner.  poweroff, restart and default: SIGKILL through the pidfd
 * (restart cannot be done from here: the domain is powered off and libvirt's own policy
 * decides what follows); pause: run owners->pause_helper URI UUID in the background, and
 * SIGKILL the owner if the helper fails; ignore: log only.  Never blocks.
 */
void dmn_owner_lockfailure(dmn_owners *owners, dmn_owner *owner, const char *what);

/* A pause helper's pidfd became readable (or, without pidfds, its probe timer ran): reap
 * every helper that exited, killing the owners of those that failed. */
void dmn_owners_reap_helpers(dmn_owners *owners);

/* Replace the identity of an existing owner with this pid (REGISTER); no-op when absent. */
int dmn_owners_update_identity(dmn_owners *owners, const vml_ls_owner *identity, vml_error *err);

/* The owner holds nothing now: free it when no kill is under way and it has no pidfd (a
 * probed owner; the pointer is then invalid).  One with a pidfd is kept until its process
 * exits. */
void dmn_owners_forget_if_idle(dmn_owners *owners, dmn_owner *owner);

/* Owners that hold a lease or are being killed (the idle ones kept for their next
 * acquisition left out): what STATUS reports.  O(owners). */
size_t dmn_owners_active(const dmn_owners *owners);

/* Free the owner unconditionally (it exited and its leases were released); invalid afterwards. */
void dmn_owners_remove(dmn_owners *owners, dmn_owner *owner);

typedef enum {
    DMN_HANGUP_NOTHING,     /* holds no lease, or a kill is already under way */
    DMN_HANGUP_SIGNALLED,   /* SIGTERM sent, SIGKILL scheduled; leases stay until it exits */
    DMN_HANGUP_GONE,        /* already gone: the caller releases its leases now */
} dmn_hangup_result;

/*
 * The holder connection of owner closed: SIGTERM it now and schedule a SIGKILL
 * kill_grace_ms after now_ms.  Never releases anything itself (ARCHITECTURE invariant 6).
 */
dmn_hangup_result dmn_owners_holder_closed(dmn_owners *owners, dmn_owner *owner, int64_t now_ms);

/* The earliest pending SIGKILL deadline: true and *deadline_ms set, or false when none. */
bool dmn_owners_next_deadline(const dmn_owners *owners, int64_t *deadline_ms);

/* Send every SIGKILL whose deadline is <= now_ms. */
void dmn_owners_run_timers(dmn_owners *owners, int64_t now_ms);

/* For an owner without a pidfd: true once its process has exited (gone, a zombie, or its
 * pid now names a process with another start time).  Always false with a pidfd (the poll
 * loop watches those). */
bool dmn_owner_probe_exited(const dmn_owner *owner);

/* The start time (/proc/PID/stat field 22) of pid: 0, or -1 when there is no such live
 * process (gone or a zombie). */
int dmn_proc_start_time(unsigned int pid, unsigned long long *start_time);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into out. */
void dmn_owner_format_uuid(const char uuid[16], char out[37]);

/* Deep copy of an identity into *dst (which must hold no allocation); dst->name owned by dst. */
int dmn_identity_copy(vml_ls_owner *dst, const vml_ls_owner *src, vml_error *err);

/* Free what dmn_identity_copy allocated and zero the identity; accepts a zeroed one. */
void dmn_identity_clear(vml_ls_owner *identity);

#endif
