/* dmn_hash.c: a small chained hash table with byte-string keys (word-at-a-time hash, power-of-two buckets). */
#include "dmn_hash.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_MIN_BUCKETS 16

typedef struct hash_entry {
    const void *key;
    size_t key_len;
    uint64_t hash;
    void *value;
    struct hash_entry *next;
} hash_entry;

/* Invariant: nbuckets is a power of two; every entry sits in buckets[hash & (nbuckets - 1)]. */
struct dmn_hash {
    hash_entry **buckets;
    size_t nbuckets;
    size_t count;
};

/*
 * Eight bytes at a time, then a final avalanche (the bucket is taken from the low bits).
 * Keys are paths and lease names on every acquisition: FNV-1a's byte-at-a-time loop was a
 * measurable part of a 256-disk request.
 */
static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)len * 0xFF51AFD7ED558CCDULL);
    uint64_t w;

    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}

dmn_hash *dmn_hash_new(void)
{
    dmn_hash *hash = calloc(1, sizeof(*hash));

    if (hash == NULL)
        return NULL;
    hash->buckets = calloc(HASH_MIN_BUCKETS, sizeof(hash->buckets[0]));
    if (hash->buckets == NULL) {
        free(hash);
        return NULL;
    }
    hash->nbuckets = HASH_MIN_BUCKETS;
    return hash;
}

void dmn_hash_free(dmn_hash *hash)
{
    if (hash == NULL)
        return;
    for (size_t i = 0; i < hash->nbuckets; i++) {
        hash_entry *entry = hash->buckets[i];
        while (entry != NULL) {
            hash_entry *next = entry->next;
            free(entry);
            entry = next;
        }
    }
    free(hash->buckets);
    free(hash);
}

static hash_entry **find_slot(const dmn_hash *hash, const void *key, size_t key_len, uint64_t h)
{
    hash_entry **slot = &hash->buckets[h & (hash->nbuckets - 1)];

    for (; *slot != NULL; slot = &(*slot)->next) {
        if ((*slot)->hash == h && (*slot)->key_len == key_len &&
            memcmp((*slot)->key, key, key_len) == 0)
            return slot;
    }
    return slot;
}

void *dmn_hash_get(const dmn_hash *hash, const void *key, size_t key_len)
{
    hash_entry **slot = find_slot(hash, key, key_len, hash_bytes(key, key_len));

    return *slot != NULL ? (*slot)->value : NULL;
}

/* Double the bucket array; a failed allocation just leaves the table denser. */
static void grow(dmn_hash *hash)
{
    size_t nbuckets = hash->nbuckets * 2;
    hash_entry **buckets = calloc(nbuckets, sizeof(buckets[0]));

    if (buckets == NULL)
        return;
    for (size_t i = 0; i < hash->nbuckets; i++) {
        hash_entry *entry = hash->buckets[i];
        while (entry != NULL) {
            hash_entry *next = entry->next;
            size_t b = entry->hash & (nbuckets - 1);
            entry->next = buckets[b];
            buckets[b] = entry;
            entry = next;
        }
    }
    free(hash->buckets);
    hash->buckets = buckets;
    hash->nbuckets = nbuckets;
}

int dmn_hash_put(dmn_hash *hash, const void *key, size_t key_len, void *value)
{
    uint64_t h = hash_bytes(key, key_len);
    hash_entry **slot = find_slot(hash, key, key_len, h);
    hash_entry *entry;

    if (*slot != NULL) {
        errno = EEXIST;
        return -1;
    }
    entry = malloc(sizeof(*entry));
    if (entry == NULL) {
        errno = ENOMEM;
        return -1;
    }
    entry->key = key;
    entry->key_len = key_len;
    entry->hash = h;
    entry->value = value;
    entry->next = NULL;
    *slot = entry;
    hash->count++;
    if (hash->count > hash->nbuckets - hash->nbuckets / 4)
        grow(hash);
    return 0;
}

int dmn_hash_replace(dmn_hash *hash, const void *key, size_t key_len, void *value)
{
    hash_entry **slot = find_slot(hash, key, key_len, hash_bytes(key, key_len));

    if (*slot == NULL)
        return -1;
    (*slot)->key = key;
    (*slot)->value = value;
    return 0;
}

void *dmn_hash_remove(dmn_hash *hash, const void *key, size_t key_len)
{
    hash_entry **slot = find_slot(hash, key, key_len, hash_bytes(key, key_len));
    hash_entry *entry = *slot;
    void *value;

    if (entry == NULL)
        return NULL;
    value = entry->value;
    *slot = entry->next;
    free(entry);
    hash->count--;
    return value;
}

size_t dmn_hash_count(const dmn_hash *hash)
{
    return hash->count;
}

void dmn_hash_each(const dmn_hash *hash, dmn_hash_visit visit, void *opaque)
{
    if (hash == NULL)
        return;
    for (size_t i = 0; i < hash->nbuckets; i++) {
        hash_entry *entry = hash->buckets[i];

        while (entry != NULL) {
            /* Read next first: the visitor may free the value (and with it the key). */
            hash_entry *next = entry->next;
            visit(entry->value, opaque);
            entry = next;
        }
    }
}
