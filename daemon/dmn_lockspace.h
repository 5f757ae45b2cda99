/* dmn_lockspace.h: lockspaces, leases and holdings; the only place a lock is taken (lease_lock) or dropped (lease_unlock). */
#ifndef DMN_LOCKSPACE_H
#define DMN_LOCKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vml_error.h"
#include "vml_extension.h"
#include "vml_handover.h"
#include "dmn_hash.h"
#include "dmn_owner.h"
#include "dmn_record.h"

/* Tries of open + lock + re-stat before giving up on a lease file that keeps being replaced. */
#define DMN_LEASE_LOCK_ATTEMPTS 16

typedef struct dmn_lease dmn_lease;
typedef struct dmn_lockspace dmn_lockspace;

/* One owner holding one lease.  Owned by the lease (its holders array) and linked into the
 * owner's list of holdings, so an owner's death releases in O(its leases). */
struct dmn_holding {
    dmn_lease *lease;
    dmn_owner *owner;
    int64_t since_usec;             /* CLOCK_REALTIME of the acquisition */
    uint64_t batch;                 /* the BATCH_ACQUIRE call that took it, 0 for none */
    dmn_holding *owner_prev, *owner_next;
};

/* (st_dev, st_ino) of a lease file, laid out without padding so it can be a hash key. */
typedef struct dmn_inode_key {
    uint64_t dev;
    uint64_t ino;
} dmn_inode_key;

/* Where a lease stands with the keeper (see dmn_lockspaces_take_journal). */
typedef enum {
    DMN_KEEPER_NONE,                /* not sent, nothing queued (no keeper, or not yet) */
    DMN_KEEPER_ADD_QUEUED,          /* queued for ADD: the keeper does not have it yet */
    DMN_KEEPER_SENT,                /* the keeper holds a duplicate of fd */
    DMN_KEEPER_UPDATE_QUEUED,       /* the keeper holds it; a new snapshot is queued */
} dmn_keeper_state;

/*
 * A locked resource.  Invariants: fd holds an OFD lock on byte 0 (F_RDLCK when
 * flags has VML_LS_ACQUIRE_SHARED, else F_WRLCK) unless state has VML_SNAP_LOST; nholders
 * >= 1 (the lease is removed with its last holder); no owner appears twice in holders;
 * holders[0] is the oldest holder.  generation is this exclusive acquisition's generation,
 * or for a shared lease the generation of the last exclusive acquisition; epoch is 0 when
 * it lives in the lease file's owner record, else the registry's epoch (daemon-local).
 */
struct dmn_lease {
    dmn_lockspace *lockspace;
    char *name;                     /* key in lockspace->leases */
    char *path;                     /* the file carrying the lock (name itself in direct mode) */
    char *disk;                     /* the disk named by the acquirer, "" when unknown (may
                                     * share name's or path's bytes; never written to) */
    unsigned int flags;             /* VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE */
    int fd;
    dmn_inode_key inode;            /* key in dmn_lockspaces.by_inode (for the first alias) */
    uint64_t id;                    /* unique in this daemon and its keeper */
    uint64_t generation;
    uint64_t run_start;             /* first generation of the current run of one domain */
    uint64_t epoch;
    unsigned int state;             /* VML_SNAP_* bits */
    dmn_keeper_state keeper;
    dmn_holding **holders;
    size_t nholders, aholders;
    uint32_t seq;                   /* creation order, the LIST cursor */
    bool commit_pending;            /* acquired, owner record / generation not yet written */
    unsigned char locality;         /* DMN_LOCKS_*: where the filesystem keeps its locks */
    dmn_lease *prev, *next;         /* dmn_lockspaces list, creation order */
    dmn_lease *alias_next;          /* other leases on the same inode (shared aliases) */
};

/* Whether a lease's filesystem keeps its locks in the local inode (see locks_are_local). */
enum {
    DMN_LOCKS_UNKNOWN = 0,          /* ask the filesystem when it matters (restored leases) */
    DMN_LOCKS_LOCAL = 1,
    DMN_LOCKS_ELSEWHERE = 2,        /* FUSE, network and cluster filesystems */
};

/* Filesystems whose lock locality this registry knows, by unique mount id (at most). */
#define DMN_LOCALITY_CACHE 32

/* A directory of lease files, or the default lockspace "" (names are the disk paths). */
struct dmn_lockspace {
    char *path;                     /* exact string as registered; key in by_path */
    dmn_hash *leases;               /* name -> dmn_lease */
    bool sync_records;              /* a shared filesystem: fdatasync owner records */
    dmn_lockspace *next;
};

/* A daemon-local generation (direct mode, and lease files that cannot carry a record) of a
 * resource not held exclusively now: while it is, its lease carries the generation. */
typedef struct dmn_generation {
    char *key;                      /* lockspace, NUL, name, NUL: key in dmn_lockspaces.generations */
    size_t key_len;
    uint64_t generation;
    uint64_t run_start;
    unsigned char last_uuid[16];
    char *last_name;
    unsigned int last_pid;
    int64_t last_since_usec;
} dmn_generation;

/*
 * Changes the keeper has not been told yet.  Leases are borrowed (a lease leaving the
 * registry takes itself out of these lists); dropped are the ids of released leases the
 * keeper still has (their locks already released explicitly).
 */
typedef struct dmn_journal {
    dmn_lease **added;
    size_t nadded, aadded;
    dmn_lease **updated;
    size_t nupdated, aupdated;
    uint64_t *dropped;
    size_t ndropped, adropped;
    /* A dropped lease lives on a filesystem whose locks /proc does not list (FUSE, NFS):
     * adoption could not tell its unlocked keeper copy from a held lock and would re-assert
     * it, so its DROP must not wait in a batch. */
    bool drops_urgent;
} dmn_journal;

/* Test hook: called between opening a lease file and locking it (see lease_lock()). */
typedef void (*dmn_open_hook)(const char *path, void *opaque);

typedef struct dmn_lockspaces {
    dmn_hash *by_path;              /* path -> dmn_lockspace */
    dmn_lockspace *lockspaces;      /* all of them, the default one first */
    size_t nlockspaces;
    dmn_hash *by_inode;             /* dmn_inode_key -> first dmn_lease on that inode */
    dmn_hash *by_id;                /* lease id -> dmn_lease */
    dmn_lease *head, *tail;         /* every lease, creation order */
    size_t nleases;
    uint32_t next_seq;
    uint64_t next_batch;
    uint64_t next_id;
    uint64_t acquires;              /* resources granted since start */
    uint64_t conflicts;             /* acquisitions refused as busy since start */
    uint64_t lost;                  /* leases found lost since start */
    dmn_hash *generations;          /* daemon-local generations: key -> dmn_generation */
    uint64_t epoch;                 /* names the daemon-local generation table */
    char host[DMN_RECORD_VALUE_MAX + 1];        /* written into owner records */
    char boot_id[DMN_RECORD_BOOT_ID_MAX + 1];
    unsigned int daemon_pid;
    bool journaling;                /* a keeper exists: queue changes, defer unlocks */
    dmn_journal journal;
    /* Lock locality by unique mount id (statx, Linux 6.8+), so that a release need not
     * ask the filesystem (fstatfs cost ext4 a sum over every CPU's counters). */
    struct {
        uint64_t mnt_id;
        unsigned char locality;
    } locality[DMN_LOCALITY_CACHE];
    size_t nlocality;
    dmn_open_hook after_open;       /* NULL except in tests */
    void *after_open_opaque;
} dmn_lockspaces;

/* A registry holding only the default lockspace; owned by the caller (dmn_lockspaces_free).
 * It names this host (gethostname, boot id) and process in owner records and draws a
 * random epoch for its daemon-local generations. */
int dmn_lockspaces_new(dmn_lockspaces **out, vml_error *err);

/*
 * Release every lease as an explicit release would (owner records cleared), then free
 * everything; accepts NULL.  The owners the holdings point at must still exist.  Queued
 * journal entries are discarded (deferred descriptors are unlocked and closed).
 */
void dmn_lockspaces_free(dmn_lockspaces *reg);

/*
 * Free everything WITHOUT releasing: descriptors are closed but nothing is unlocked or
 * written (the keeper, or the next image, holds the locks).  For a failed handover and the
 * re-exec path; accepts NULL.
 */
void dmn_lockspaces_abandon(dmn_lockspaces *reg);

/* The lockspace registered under exactly this path ("" = default), or NULL; borrowed. */
dmn_lockspace *dmn_lockspaces_find(const dmn_lockspaces *reg, const char *path);

/*
 * Register a new lockspace for path (absolute, no ".." component), creating the directory
 * and missing parents with mode 0700.  The caller has checked it is not registered yet.
 * *out (may be NULL) is borrowed from the registry.
 */
int dmn_lockspaces_add(dmn_lockspaces *reg, const char *path, dmn_lockspace **out,
                       vml_error *err);

/* Check a lockspace path: absolute, no "." or ".." component, shorter than PATH_MAX. */
int dmn_lockspace_check_path(const char *path, vml_error *err);

/* Check a resource name for ls: one path component in a named lockspace, an absolute path
 * in the default one.  Errors are VIR_ERR_INVALID_ARG naming the name. */
int dmn_lockspace_check_name(const dmn_lockspace *ls, const char *name, vml_error *err);

/* CREATE_RESOURCE: touch the lease file (0600) unless the resource is held. */
int dmn_resource_create(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                        vml_error *err);

/* DELETE_RESOURCE: unlink the lease file unless the resource is held; a missing file is fine. */
int dmn_resource_delete(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                        vml_error *err);

/*
 * Acquire (ls, res->name) for owner (single-resource form, committed at once): res->flags
 * are VML_LS_ACQUIRE_SHARED|AUTOCREATE|VML_EXT_RESOURCE_EXPECT_GENERATION (the caller has
 * refused other bits); res->disk (may be NULL) names the disk in messages and is recorded
 * on a new lease; res->lockspace is ignored (ls is given).  An exclusive acquisition
 * increments the lease's generation (in its owner record, or in the daemon-local table);
 * with EXPECT_GENERATION it is refused (VIR_ERR_OPERATION_INVALID, naming the disk and who
 * held it meanwhile) when another domain acquired the lease since expected_generation.  On
 * success *taken is the holding (borrowed) and *gen (may be NULL) its generation.  An owner
 * that holds the lease in the same mode already gets it again as it stands (no second
 * holding, generation unchanged; one release frees it); in the other mode, or lost, busy.
 */
int dmn_lease_acquire(dmn_lockspaces *reg, dmn_lockspace *ls, const vml_ext_resource2 *res,
                      dmn_owner *owner, dmn_holding **taken, vml_ext_generation *gen,
                      vml_error *err);

/*
 * BATCH_ACQUIRE: all of resources[0..n) for owner, or none: on the first failure every
 * holding this call took is released again (lease files it created are removed, no owner
 * record is written) and that failure is returned; leases owner held before the call stay
 * held.  A resource owner holds in the same mode already (earlier, or earlier in this
 * batch) is granted as it stands.  gens (may be NULL) gets n generations.
 */
int dmn_lease_acquire_batch(dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                            dmn_owner *owner, vml_ext_generation *gens, vml_error *err);

/*
 * Release owner_pid's hold on (ls, name).  Errors: not held by anyone (RESOURCE_BUSY "is not
 * locked"), not held by this owner (INTERNAL_ERROR).  *gen (may be NULL) gets the
 * generation released.  The caller forgets an owner left idle.
 */
int dmn_lease_release(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      unsigned int owner_pid, vml_ext_generation *gen, vml_error *err);

/* BATCH_RELEASE: release every listed resource owner_pid holds; the first error is returned
 * after all the others were released.  gens (may be NULL) gets n generations (held false for
 * the resources it did not hold).  The caller forgets an owner left idle. */
int dmn_lease_release_batch(dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                            unsigned int owner_pid, vml_ext_generation *gens, vml_error *err);

/* INQUIRE: the generations of the listed resources owner_pid holds now (held false for the
 * others).  gens has n entries. */
void dmn_lease_inquire(const dmn_lockspaces *reg, const vml_ext_resource2 *resources, size_t n,
                       unsigned int owner_pid, vml_ext_generation *gens);

/* Drop one holding; the last holder of a lease unlocks and removes it.  h is freed. */
void dmn_holding_release(dmn_lockspaces *reg, dmn_holding *h);

/* Release everything owner holds (it exited); returns how many leases it held. */
size_t dmn_lockspaces_release_owner(dmn_lockspaces *reg, dmn_owner *owner);

/* The lease held as (lockspace path, name), or NULL; borrowed. */
dmn_lease *dmn_lockspaces_find_lease(const dmn_lockspaces *reg, const char *lockspace,
                                     const char *name);

/*
 * The lease's lock is lost (found by a check, or broken by an administrator): mark it (its
 * descriptor is kept: a lost lease stays in the table, refusing local acquirers, until its
 * holders release it or exit), count it, and tell the keeper.  Returns false when it was
 * already marked.  The caller applies the holders' <on_lockfailure> actions.
 */
bool dmn_lease_mark_lost(dmn_lockspaces *reg, dmn_lease *lease);

/* Remove the lease whatever its holders (BREAK): every holding goes, nothing is written. */
void dmn_lease_drop(dmn_lockspaces *reg, dmn_lease *lease);

/*
 * "domain 'vm1' (uuid U, pid P)[ and N other(s)]" for the lease's holders, into out.
 */
void dmn_lease_describe_holders(const dmn_lease *lease, char *out, size_t out_len);

/*
 * A self-contained snapshot of lease with at most max_holders holders (keeper meta and
 * handover).  Strings in *snap are malloc'd: free with xdr_free(xdr_vml_snap_lease, snap)
 * whether or not this succeeds.
 */
int dmn_lease_snapshot(const dmn_lease *lease, size_t max_holders, vml_snap_lease *snap,
                       vml_error *err);

/*
 * The same snapshot of lease's first nholders holders, its strings borrowed from the lease
 * and its owners (valid while they are unchanged; never xdr_free it), the holders written
 * to hold[0..nholders), the caller's.  For encoding at once, without a copy.
 */
void dmn_lease_snapshot_view(const dmn_lease *lease, size_t nholders, vml_snap_lease *snap,
                             vml_snap_holder *hold);

/*
 * Put back a lease handed over by the keeper or the previous image: snap as the snapshot
 * said, fd its (already verified) locked descriptor, taken over even on error; holders[i]
 * the live owners (NULL entries are holders that exited and are skipped) with since[i].
 * The lockspace is registered when missing.  keeper says whether the keeper already has
 * it.  A lease whose holders all exited is released at once (*out NULL, returns 0).
 */
int dmn_lease_restore(dmn_lockspaces *reg, const vml_snap_lease *snap, int fd,
                      dmn_owner *const *holders, const int64_t *since, size_t nholders,
                      bool keeper, dmn_lease **out, vml_error *err);

/*
 * An adopted lease with a daemon-local generation from an earlier start takes this
 * registry's epoch, its generation going into this registry's table at its release (the earlier
 * table of released leases died with the earlier daemon, so states naming its epoch are
 * no longer checkable, while states made from now on are).
 */
void dmn_lease_rebase_epoch(dmn_lockspaces *reg, dmn_lease *lease);

/* Put back one daemon-local generation (handover). */
int dmn_generation_restore(dmn_lockspaces *reg, const char *lockspace, const char *name,
                           uint64_t generation, uint64_t run_start, const vml_ls_owner *last,
                           int64_t last_since_usec, vml_error *err);

/* Visit every daemon-local generation (handover): the table's (resources not held
 * exclusively now), then those held leases carry, as entries built for the visit (borrowed
 * for its duration).  dmn_lease_restore takes a held lease's entry out of the table again. */
typedef void (*dmn_generation_visit)(const dmn_generation *gen, void *opaque);
void dmn_lockspaces_each_generation(const dmn_lockspaces *reg, dmn_generation_visit visit,
                                    void *opaque);

/*
 * Verify that fd still holds its OFD lock of the given type on byte 0: /proc/self/fdinfo
 * shows it (local filesystems), or, where the filesystem keeps locks elsewhere (FUSE,
 * network filesystems) and nobody else conflicts, re-asserting it succeeds.  Returns 0
 * when held, 1 when another process or host holds a conflicting lock (lost), 2 when a
 * local filesystem shows it is not held (never re-taken here: the caller may be a forked
 * probe that must not revive a lock the daemon released meanwhile), -1 on error with
 * errno set.  holder > 0 names the process whose descriptor fd (same number) must still be
 * this open file description (a forked probe passes the daemon): when it is not, the lease
 * was released meanwhile and 3 is returned, nothing checked and, above all, nothing
 * re-asserted (on FUSE or NFS that would take the released lock again for as long as the
 * probe keeps its copy).  Where that cannot be told (no kcmp), it is checked as before.
 */
int dmn_lease_verify_lock(int fd, bool shared, pid_t holder);

/* ---- the keeper journal ---- */

/* Turn journaling on (a keeper exists) or off (releases unlock at once); turning it off
 * first finishes what is queued. */
void dmn_lockspaces_set_journaling(dmn_lockspaces *reg, bool on);

/*
 * Move what is queued into *out and mark the queued leases as sent.  *out is zeroed or a
 * journal taken earlier (emptied first; its lists' room is reused).  The registry keeps
 * its lists and their room, so a request allocates nothing the size of the table.
 */
void dmn_lockspaces_take_journal(dmn_lockspaces *reg, dmn_journal *out);

/* Empty the lists, keeping their room. */
void dmn_journal_clear(dmn_journal *journal);

/* Free the lists; the journal is zeroed afterwards. */
void dmn_journal_free(dmn_journal *journal);

/* Queue the lease for ADD (the keeper does not have it). */
void dmn_lease_journal_add(dmn_lockspaces *reg, dmn_lease *lease);

/* Queue the lease for UPDATE (its holders changed) when the keeper holds it. */
void dmn_lease_journal_update(dmn_lockspaces *reg, dmn_lease *lease);

/* Forget what the keeper was told: every lease is queued for ADD again (a new keeper). */
void dmn_lockspaces_resend_all(dmn_lockspaces *reg);

/* Test hook (NULL to remove): run between open and lock of every lease file. */
void dmn_lockspaces_set_open_hook(dmn_lockspaces *reg, dmn_open_hook hook, void *opaque);

#endif
