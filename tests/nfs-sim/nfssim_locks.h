/* nfssim_locks.h: one file's byte-range lock list with POSIX split/merge and read/write conflicts. */
#ifndef NFSSIM_LOCKS_H
#define NFSSIM_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A lock owner is (host, owner): owner is the FUSE lock_owner, which the kernel derives from
 * the process's file table for POSIX locks and from the open file description for OFD locks;
 * it is only unique within one mount, hence the host.
 *
 * Invariants of a list: the records of one owner never overlap, and two records of one owner
 * with the same type never touch (adjacent ranges are merged).  Ranges are inclusive;
 * end == NFSSIM_LOCK_EOF (INT64_MAX) means "to end of file".
 */
typedef struct nfssim_lock {
    struct nfssim_lock *next;
    uint32_t host;          /* the server's host id */
    uint64_t owner;
    uint64_t fh;            /* the handle the owner last locked through (see nfssim_locks_apply) */
    uint32_t pid;           /* the locking process as its host's kernel sees it */
    int type;               /* F_RDLCK or F_WRLCK */
    int64_t start;
    int64_t end;
} nfssim_lock;

typedef struct nfssim_lock_list {
    nfssim_lock *head;      /* owned; in no particular order */
} nfssim_lock_list;

/* True when the two inclusive ranges share a byte. */
bool nfssim_range_overlaps(int64_t a_start, int64_t a_end, int64_t b_start, int64_t b_end);

/*
 * The first record of another owner that conflicts with a lock of this type on
 * [start, end] (a write lock conflicts with anything, a read lock with write locks), or NULL.
 * The result points into the list and is valid until it changes.
 */
const nfssim_lock *nfssim_locks_conflict(const nfssim_lock_list *list, uint32_t host, uint64_t owner,
                                         int type, int64_t start, int64_t end);

/*
 * Set [start, end] of (host, owner) to type: F_RDLCK/F_WRLCK take or convert (merging with
 * touching records of the same type), F_UNLCK releases (splitting records that stick out).
 * Conflicts are NOT checked here (nfssim_locks_conflict first).  Afterwards every record of
 * the owner in this list carries fh, so RELEASE of that handle can find the owner's locks.
 * Returns 0, or -1 when memory ran out, in which case the list is unchanged.
 */
int nfssim_locks_apply(nfssim_lock_list *list, uint32_t host, uint64_t owner, uint64_t fh,
                       uint32_t pid, int type, int64_t start, int64_t end);

/*
 * Remove every record for which match(record, ctx) is true.  Before a record is freed,
 * removed(record, ctx) is called when non-NULL.  Returns how many were removed.
 */
size_t nfssim_locks_remove_if(nfssim_lock_list *list,
                              bool (*match)(const nfssim_lock *lock, void *ctx),
                              void (*removed)(const nfssim_lock *lock, void *ctx), void *ctx);

/* Move every record of list to the end of dest (dest takes ownership). */
void nfssim_locks_move_all(nfssim_lock_list *dest, nfssim_lock_list *list);

size_t nfssim_locks_count(const nfssim_lock_list *list);

/* Free every record; the list becomes empty.  Accepts an empty list. */
void nfssim_locks_clear(nfssim_lock_list *list);

#endif
