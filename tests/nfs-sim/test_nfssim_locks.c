/* test_nfssim_locks.c: unit tests of the simulated server's byte-range lock lists (split, merge, conflicts). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfssim_locks.h"
#include "vml_test.h"

#define EOF_ INT64_MAX

/* Render the records of (host, owner) sorted by start, as "W0-4 R5-9". */
static const char *render(const nfssim_lock_list *list, uint32_t host, uint64_t owner)
{
    static char buf[512];
    const nfssim_lock *sorted[64];
    size_t n = 0;
    size_t pos = 0;

    for (const nfssim_lock *l = list->head; l != NULL && n < 64; l = l->next) {
        if (l->host == host && l->owner == owner)
            sorted[n++] = l;
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && sorted[j - 1]->start > sorted[j]->start; j--) {
            const nfssim_lock *t = sorted[j];

            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    }
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char end[24];

        if (sorted[i]->end == EOF_)
            snprintf(end, sizeof(end), "EOF");
        else
            snprintf(end, sizeof(end), "%lld", (long long)sorted[i]->end);
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "%s%c%lld-%s", i ? " " : "",
                                sorted[i]->type == F_WRLCK ? 'W' : 'R', (long long)sorted[i]->start, end);
    }
    return buf;
}

static void set(nfssim_lock_list *list, uint32_t host, uint64_t owner, int type, int64_t start, int64_t end)
{
    if (nfssim_locks_apply(list, host, owner, 7, 100, type, start, end) < 0) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
}

static bool owns_fh(const nfssim_lock_list *list, uint64_t fh)
{
    for (const nfssim_lock *l = list->head; l != NULL; l = l->next) {
        if (l->fh != fh)
            return false;
    }
    return true;
}

static bool match_host(const nfssim_lock *lock, void *ctx)
{
    return lock->host == *(uint32_t *)ctx;
}

int main(void)
{
    nfssim_lock_list list = { NULL };
    uint32_t host2 = 2;

    set(&list, 1, 10, F_WRLCK, 0, 9);
    VML_CHECK_STR(render(&list, 1, 10), "W0-9", "a write lock on 0-9");
    set(&list, 1, 10, F_UNLCK, 3, 5);
    VML_CHECK_STR(render(&list, 1, 10), "W0-2 W6-9", "unlocking the middle splits it");
    set(&list, 1, 10, F_WRLCK, 3, 5);
    VML_CHECK_STR(render(&list, 1, 10), "W0-9", "re-locking the hole merges all three");
    set(&list, 1, 10, F_RDLCK, 4, 4);
    VML_CHECK_STR(render(&list, 1, 10), "W0-3 R4-4 W5-9", "a read lock inside a write lock converts one byte");
    set(&list, 1, 10, F_RDLCK, 5, 5);
    VML_CHECK_STR(render(&list, 1, 10), "W0-3 R4-5 W6-9", "adjacent read locks merge");
    set(&list, 1, 10, F_UNLCK, 0, EOF_);
    VML_CHECK(list.head == NULL, "unlocking 0-EOF removes everything");

    set(&list, 1, 10, F_RDLCK, 100, EOF_);
    set(&list, 1, 10, F_RDLCK, 0, 99);
    VML_CHECK_STR(render(&list, 1, 10), "R0-EOF", "a range touching EOF merges without overflow");
    set(&list, 1, 10, F_UNLCK, 50, 50);
    VML_CHECK_STR(render(&list, 1, 10), "R0-49 R51-EOF", "a split of a range to EOF keeps EOF");
    set(&list, 1, 10, F_UNLCK, 0, EOF_);

    /* Conflicts between owners and hosts. */
    set(&list, 1, 10, F_WRLCK, 0, 0);
    VML_CHECK(nfssim_locks_conflict(&list, 1, 10, F_WRLCK, 0, 0) == NULL, "an owner never conflicts with itself");
    VML_CHECK(nfssim_locks_conflict(&list, 1, 11, F_RDLCK, 0, 0) != NULL, "another owner's read conflicts with a write");
    VML_CHECK(nfssim_locks_conflict(&list, 2, 10, F_WRLCK, 0, 0) != NULL,
              "the same owner number on another host is another owner");
    VML_CHECK(nfssim_locks_conflict(&list, 2, 10, F_WRLCK, 1, 100) == NULL, "a disjoint range does not conflict");
    set(&list, 1, 10, F_RDLCK, 0, 0);
    VML_CHECK(nfssim_locks_conflict(&list, 2, 10, F_RDLCK, 0, 0) == NULL, "two readers share");
    VML_CHECK(nfssim_locks_conflict(&list, 2, 10, F_WRLCK, 0, 0) != NULL, "a writer conflicts with a reader");
    set(&list, 2, 10, F_RDLCK, 0, 0);
    VML_CHECK(nfssim_locks_count(&list) == 2, "two hosts share a read lock: two records");

    VML_CHECK(owns_fh(&list, 7), "records carry the handle they were last locked through");
    VML_CHECK(nfssim_locks_apply(&list, 1, 10, 9, 100, F_RDLCK, 5, 5) == 0, "lock more through another handle");
    {
        bool all_moved = true;

        for (const nfssim_lock *l = list.head; l != NULL; l = l->next) {
            if (l->host == 1 && l->owner == 10 && l->fh != 9)
                all_moved = false;
        }
        VML_CHECK(all_moved, "every record of the owner follows its latest handle");
    }
    VML_CHECK(nfssim_locks_remove_if(&list, match_host, NULL, &host2) == 1, "remove_if drops one host's records");
    VML_CHECK_STR(render(&list, 1, 10), "R0-0 R5-5", "the other host's records stay");
    {
        nfssim_lock_list dest = { NULL };

        nfssim_locks_move_all(&dest, &list);
        VML_CHECK(list.head == NULL && nfssim_locks_count(&dest) == 2, "move_all moves every record");
        nfssim_locks_clear(&dest);
    }
    VML_CHECK(nfssim_range_overlaps(0, EOF_, EOF_, EOF_), "ranges to EOF overlap at the end");
    VML_CHECK(!nfssim_range_overlaps(0, 4, 5, 9), "adjacent ranges do not overlap");
    nfssim_locks_clear(&list);
    return vml_test_done();
}
