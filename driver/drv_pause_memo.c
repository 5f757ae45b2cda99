/* drv_pause_memo.c: remembers each domain's last pause state (see drv_pause_memo.h for why). */
#include "drv_pause_memo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAUSE_MEMO_SLOTS 256

typedef struct memo_slot {
    unsigned char uuid[16];
    char *state;                /* NULL: free slot */
    unsigned long stamp;        /* larger = stored later */
} memo_slot;

static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static memo_slot slots[PAUSE_MEMO_SLOTS];
static unsigned long next_stamp;

/* The slot of uuid, or NULL.  Called with memo_lock held. */
static memo_slot *find_slot(const unsigned char uuid[16])
{
    for (size_t i = 0; i < PAUSE_MEMO_SLOTS; i++) {
        if (slots[i].state != NULL && memcmp(slots[i].uuid, uuid, 16) == 0)
            return &slots[i];
    }
    return NULL;
}

void drv_pause_memo_store(const unsigned char uuid[16], const char *state)
{
    char *copy = strdup(state);
    memo_slot *slot;

    if (copy == NULL)
        return;     /* no memory: the resume is then as unfenced as lockd's, never refused */
    pthread_mutex_lock(&memo_lock);
    slot = find_slot(uuid);
    if (slot == NULL) {
        slot = &slots[0];
        for (size_t i = 0; i < PAUSE_MEMO_SLOTS; i++) {
            if (slots[i].state == NULL) {
                slot = &slots[i];
                break;
            }
            if (slots[i].stamp < slot->stamp)
                slot = &slots[i];
        }
    }
    free(slot->state);
    memcpy(slot->uuid, uuid, 16);
    slot->state = copy;
    slot->stamp = ++next_stamp;
    pthread_mutex_unlock(&memo_lock);
}

char *drv_pause_memo_lookup(const unsigned char uuid[16])
{
    char *copy = NULL;
    memo_slot *slot;

    pthread_mutex_lock(&memo_lock);
    slot = find_slot(uuid);
    if (slot != NULL)
        copy = strdup(slot->state);
    pthread_mutex_unlock(&memo_lock);
    return copy;
}

void drv_pause_memo_forget(const unsigned char uuid[16])
{
    memo_slot *slot;

    pthread_mutex_lock(&memo_lock);
    slot = find_slot(uuid);
    if (slot != NULL) {
        free(slot->state);
        slot->state = NULL;
    }
    pthread_mutex_unlock(&memo_lock);
}
