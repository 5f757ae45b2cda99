/* dmn_lockspace.h: lockspaces, leases and holdings; the only place a lock is taken (lease_lock) or dropped (lease_unlock). */
#ifndef DMN_LOCKSPACE_H
#define DMN_LOCKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vml_error.h"
#include "vml_extension.h"
#include "dmn_hash.h"
#include "dmn_owner.h"

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

/*
 * A locked resource.  Invariants: fd holds an OFD lock on byte 0 (F_RDLCK when
 * flags has VML_LS_ACQUIRE_SHARED, else F_WRLCK); nholders >= 1 (the lease is removed with
 * its last holder); no owner appears twice in holders; holders[0] is the oldest holder.
 */
struct dmn_lease {
    dmn_lockspace *lockspace;
    char *name;                     /* key in lockspace->leases */
    char *path;                     /* the file carrying the lock */
    char *disk;                     /* the disk named by the acquirer, "" when unknown */
    unsigned int flags;             /* VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE */
    int fd;
    dmn_inode_key inode;            /* key in dmn_lockspaces.by_inode (for the first alias) */
    dmn_holding **holders;
    size_t nholders, aholders;
    uint32_t seq;                   /* creation order, the LIST cursor */
    dmn_lease *prev, *next;         /* dmn_lockspaces list, creation order */
    dmn_lease *alias_next;          /* other leases on the same inode (shared aliases) */
};

/* A directory of lease files, or the default lockspace "" (names are the disk paths). */
struct dmn_lockspace {
    char *path;                     /* exact string as registered; key in by_path */
    dmn_hash *leases;               /* name -> dmn_lease */
    dmn_lockspace *next;
};

/* Test hook: called between opening a lease file and locking it (see lease_lock()). */
typedef void (*dmn_open_hook)(const char *path, void *opaque);

typedef struct dmn_lockspaces {
    dmn_hash *by_path;              /* path -> dmn_lockspace */
    dmn_lockspace *lockspaces;      /* all of them, the default one first */
    size_t nlockspaces;
    dmn_hash *by_inode;             /* dmn_inode_key -> first dmn_lease on that inode */
    dmn_lease *head, *tail;         /* every lease, creation order */
    size_t nleases;
    uint32_t next_seq;
    uint64_t next_batch;
    uint64_t acquires;              /* resources granted since start */
    uint64_t conflicts;             /* acquisitions refused as busy since start */
    dmn_open_hook after_open;       /* NULL except in tests */
    void *after_open_opaque;
} dmn_lockspaces;

/* A registry holding only the default lockspace; owned by the caller (dmn_lockspaces_free). */
int dmn_lockspaces_new(dmn_lockspaces **out, vml_error *err);

/*
 * Release every lease as an explicit release would (autocreated lease files are removed),
 * then free everything; accepts NULL.  The owners the holdings point at must still exist.
 */
void dmn_lockspaces_free(dmn_lockspaces *reg);

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
 * Acquire (ls, name) for owner with flags VML_LS_ACQUIRE_SHARED|AUTOCREATE (the caller has
 * refused other bits).  disk (may be NULL) names the disk in busy messages and is recorded
 * on a new lease.  batch is 0 outside a batch; inside one (dmn_lease_acquire_batch) a
 * repeated shared resource is taken once.  On success *taken is the new holding (borrowed),
 * or NULL when this batch already holds it.  The same owner acquiring twice is busy.
 */
int dmn_lease_acquire(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      const char *disk, unsigned int flags, dmn_owner *owner, uint64_t batch,
                      dmn_holding **taken, vml_error *err);

/*
 * BATCH_ACQUIRE: all of resources[0..n) for owner, or none: on the first failure every
 * holding this call took is released again and that failure is returned.
 */
int dmn_lease_acquire_batch(dmn_lockspaces *reg, const vml_ext_resource *resources, size_t n,
                            dmn_owner *owner, vml_error *err);

/*
 * Release owner_pid's hold on (ls, name).  Errors: not held by anyone (RESOURCE_BUSY "is not
 * locked"), not held by this owner (INTERNAL_ERROR).  The caller forgets an owner left idle.
 */
int dmn_lease_release(dmn_lockspaces *reg, dmn_lockspace *ls, const char *name,
                      unsigned int owner_pid, vml_error *err);

/* BATCH_RELEASE: release every listed resource owner_pid holds; the first error is returned
 * after all the others were released.  The caller forgets an owner left idle. */
int dmn_lease_release_batch(dmn_lockspaces *reg, const vml_ext_resource *resources, size_t n,
                            unsigned int owner_pid, vml_error *err);

/* Drop one holding; the last holder of a lease unlocks and removes it.  h is freed. */
void dmn_holding_release(dmn_lockspaces *reg, dmn_holding *h);

/* Release everything owner holds (it exited); returns how many leases it held. */
size_t dmn_lockspaces_release_owner(dmn_lockspaces *reg, dmn_owner *owner);

/* Test hook (NULL to remove): run between open and lock of every lease file. */
void dmn_lockspaces_set_open_hook(dmn_lockspaces *reg, dmn_open_hook hook, void *opaque);

#endif
