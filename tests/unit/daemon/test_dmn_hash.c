/* test_dmn_hash.c: unit tests of the daemon's byte-keyed hash table (put/get/replace/remove, growth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vml_test.h"
#include "dmn_hash.h"

#define NKEYS 5000

int main(void)
{
    dmn_hash *hash = dmn_hash_new();
    static char keys[NKEYS][16];
    static int values[NKEYS];
    bool all_found = true;
    bool none_left = true;
    char other[16];

    if (!VML_CHECK(hash != NULL, "a new table"))
        return vml_test_done();
    VML_CHECK(dmn_hash_get(hash, "x", 1) == NULL, "an empty table finds nothing");
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
        values[i] = i;
        if (dmn_hash_put(hash, keys[i], strlen(keys[i]), &values[i]) < 0)
            all_found = false;
    }
    VML_CHECK(all_found, "5000 distinct keys are stored (the table grows)");
    VML_CHECK(dmn_hash_count(hash) == NKEYS, "the count follows the puts");
    for (int i = 0; i < NKEYS; i++) {
        int *v = dmn_hash_get(hash, keys[i], strlen(keys[i]));
        if (v == NULL || *v != i)
            all_found = false;
    }
    VML_CHECK(all_found, "every key finds its own value after growing");
    VML_CHECK(dmn_hash_put(hash, "key-7", 5, &values[0]) < 0, "a key present already is refused");
    VML_CHECK(*(int *)dmn_hash_get(hash, "key-7", 5) == 7, "a refused put changes nothing");
    VML_CHECK(dmn_hash_get(hash, "key-7", 4) == NULL, "the key length is part of the key");

    /* Binary keys with embedded NULs (the inode keys are such). */
    {
        static const unsigned char a[8] = { 0, 0, 0, 1, 0, 0, 0, 2 };
        static const unsigned char b[8] = { 0, 0, 0, 1, 0, 0, 0, 3 };
        int va = 1, vb = 2;
        VML_CHECK(dmn_hash_put(hash, a, sizeof(a), &va) == 0 &&
                  dmn_hash_put(hash, b, sizeof(b), &vb) == 0 &&
                  dmn_hash_get(hash, a, sizeof(a)) == &va && dmn_hash_get(hash, b, sizeof(b)) == &vb,
                  "binary keys that differ after a NUL byte are distinct");
        dmn_hash_remove(hash, a, sizeof(a));
        dmn_hash_remove(hash, b, sizeof(b));
    }

    /* replace: same key bytes at a new address, new value */
    memcpy(other, keys[3], sizeof(other));
    VML_CHECK(dmn_hash_replace(hash, other, strlen(other), &values[9]) == 0 &&
              dmn_hash_get(hash, "key-3", 5) == &values[9], "replace points a key at a new value");
    memset(keys[3], 'Z', 5);     /* the old key bytes may now change: the table uses `other` */
    VML_CHECK(dmn_hash_get(hash, "key-3", 5) == &values[9], "replace adopted the new key bytes");
    VML_CHECK(dmn_hash_replace(hash, "absent", 6, &values[1]) < 0, "replace of an absent key fails");

    VML_CHECK(dmn_hash_remove(hash, "key-10", 6) == &values[10], "remove returns the value");
    VML_CHECK(dmn_hash_remove(hash, "key-10", 6) == NULL, "a second remove finds nothing");
    VML_CHECK(dmn_hash_get(hash, "key-10", 6) == NULL, "a removed key is gone");
    VML_CHECK(dmn_hash_count(hash) == NKEYS - 1, "remove decrements the count");
    dmn_hash_remove(hash, other, strlen(other));
    for (int i = 0; i < NKEYS; i++) {
        if (i != 3 && i != 10)
            dmn_hash_remove(hash, keys[i], strlen(keys[i]));
    }
    for (int i = 0; i < NKEYS; i++) {
        if (dmn_hash_get(hash, keys[i], strlen(keys[i])) != NULL)
            none_left = false;
    }
    VML_CHECK(none_left && dmn_hash_count(hash) == 0, "removing every key empties the table");
    dmn_hash_free(hash);
    dmn_hash_free(NULL);
    VML_CHECK(true, "free accepts NULL");
    return vml_test_done();
}
