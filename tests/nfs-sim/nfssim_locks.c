/* nfssim_locks.c: byte-range lock lists with POSIX split/merge semantics. */
#include "nfssim_locks.h"

#include <fcntl.h>
#include <stdlib.h>

bool nfssim_range_overlaps(int64_t a_start, int64_t a_end, int64_t b_start, int64_t b_end)
{
    return a_start <= b_end && b_start <= a_end;
}

/* Overlapping or adjacent (no byte between them); written so that INT64_MAX cannot overflow. */
static bool ranges_touch(int64_t a_start, int64_t a_end, int64_t b_start, int64_t b_end)
{
    if (nfssim_range_overlaps(a_start, a_end, b_start, b_end))
        return true;
    if (a_end < b_start)
        return b_start - a_end == 1;
    return a_start - b_end == 1;
}

static bool same_owner(const nfssim_lock *lock, uint32_t host, uint64_t owner)
{
    return lock->host == host && lock->owner == owner;
}

const nfssim_lock *nfssim_locks_conflict(const nfssim_lock_list *list, uint32_t host, uint64_t owner,
                                         int type, int64_t start, int64_t end)
{
    for (const nfssim_lock *lock = list->head; lock != NULL; lock = lock->next) {
        if (same_owner(lock, host, owner))
            continue;
        if (!nfssim_range_overlaps(lock->start, lock->end, start, end))
            continue;
        if (type == F_WRLCK || lock->type == F_WRLCK)
            return lock;
    }
    return NULL;
}

int nfssim_locks_apply(nfssim_lock_list *list, uint32_t host, uint64_t owner, uint64_t fh,
                       uint32_t pid, int type, int64_t start, int64_t end)
{
    /*
     * Both records the change may need are allocated first, so that once the list starts
     * to change nothing can fail: the new lock, and the right-hand piece of a record of a
     * different type that the new range cuts in two (at most one record can contain the
     * range strictly, since an owner's records are disjoint).
     */
    nfssim_lock *fresh = NULL;
    nfssim_lock *spare = calloc(1, sizeof(*spare));
    nfssim_lock **link;

    if (spare == NULL)
        return -1;
    if (type != F_UNLCK) {
        fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL) {
            free(spare);
            return -1;
        }
    }

    link = &list->head;
    while (*link != NULL) {
        nfssim_lock *lock = *link;

        if (!same_owner(lock, host, owner)) {
            link = &lock->next;
            continue;
        }
        if (type != F_UNLCK && lock->type == type && ranges_touch(lock->start, lock->end, start, end)) {
            /* Same type, touching: absorb it into the new range. */
            if (lock->start < start)
                start = lock->start;
            if (lock->end > end)
                end = lock->end;
            *link = lock->next;
            free(lock);
            continue;
        }
        if (!nfssim_range_overlaps(lock->start, lock->end, start, end)) {
            link = &lock->next;
            continue;
        }
        if (lock->start < start && lock->end > end) {
            /* The new range lies strictly inside: keep both sides. */
            *spare = *lock;
            spare->start = end + 1;
            lock->end = start - 1;
            spare->next = lock->next;
            lock->next = spare;
            spare = NULL;
            link = &lock->next->next;
        } else if (lock->start < start) {
            lock->end = start - 1;
            link = &lock->next;
        } else if (lock->end > end) {
            lock->start = end + 1;
            link = &lock->next;
        } else {
            *link = lock->next;
            free(lock);
        }
    }

    if (fresh != NULL) {
        fresh->host = host;
        fresh->owner = owner;
        fresh->pid = pid;
        fresh->type = type;
        fresh->start = start;
        fresh->end = end;
        fresh->next = list->head;
        list->head = fresh;
    }
    for (nfssim_lock *lock = list->head; lock != NULL; lock = lock->next) {
        if (same_owner(lock, host, owner))
            lock->fh = fh;
    }
    free(spare);
    return 0;
}

size_t nfssim_locks_remove_if(nfssim_lock_list *list,
                              bool (*match)(const nfssim_lock *lock, void *ctx),
                              void (*removed)(const nfssim_lock *lock, void *ctx), void *ctx)
{
    nfssim_lock **link = &list->head;
    size_t count = 0;

    while (*link != NULL) {
        nfssim_lock *lock = *link;

        if (!match(lock, ctx)) {
            link = &lock->next;
            continue;
        }
        *link = lock->next;
        if (removed != NULL)
            removed(lock, ctx);
        free(lock);
        count++;
    }
    return count;
}

void nfssim_locks_move_all(nfssim_lock_list *dest, nfssim_lock_list *list)
{
    nfssim_lock **tail = &dest->head;

    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = list->head;
    list->head = NULL;
}

size_t nfssim_locks_count(const nfssim_lock_list *list)
{
    size_t count = 0;

    for (const nfssim_lock *lock = list->head; lock != NULL; lock = lock->next)
        count++;
    return count;
}

void nfssim_locks_clear(nfssim_lock_list *list)
{
    while (list->head != NULL) {
        nfssim_lock *next = list->head->next;

        free(list->head);
        list->head = next;
    }
}
