/* dmn_hash.h: a small chained hash table with byte-string keys, for the daemon's O(1) lookups. */
#ifndef DMN_HASH_H
#define DMN_HASH_H

#include <stddef.h>

/*
 * Keys are borrowed: the table stores the pointer and length the caller passed, so the key
 * bytes must stay valid and unchanged while the entry is in the table (callers point the key
 * into the stored value itself, e.g. a lease's name).  Values are borrowed too: freeing the
 * table never frees them.  Each key is present at most once.
 */
typedef struct dmn_hash dmn_hash;

/* A new empty table owned by the caller (dmn_hash_free), or NULL when out of memory. */
dmn_hash *dmn_hash_new(void);

/* Free the table itself; accepts NULL.  Keys and values are not touched. */
void dmn_hash_free(dmn_hash *hash);

/* The value stored under key, or NULL. */
void *dmn_hash_get(const dmn_hash *hash, const void *key, size_t key_len);

/*
 * Store value under key.  Returns 0, or -1 when the key is already present (nothing
 * changes) or memory ran out (errno ENOMEM; nothing changes).
 */
int dmn_hash_put(dmn_hash *hash, const void *key, size_t key_len, void *value);

/*
 * Point an existing key at a new value and a new (equal) key pointer: used when the object
 * that owned the key bytes leaves and another object with the same key takes its place.
 * Returns 0, or -1 when the key is absent.
 */
int dmn_hash_replace(dmn_hash *hash, const void *key, size_t key_len, void *value);

/* Remove key; returns the value it had, or NULL when it was absent. */
void *dmn_hash_remove(dmn_hash *hash, const void *key, size_t key_len);

/*
 * Call visit(value, opaque) for every entry, in no particular order.  The visitor must not
 * add or remove entries; it may free a value when the whole table is about to be freed.
 */
typedef void (*dmn_hash_visit)(void *value, void *opaque);
void dmn_hash_each(const dmn_hash *hash, dmn_hash_visit visit, void *opaque);

/* Number of entries. */
size_t dmn_hash_count(const dmn_hash *hash);

#endif
