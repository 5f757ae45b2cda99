/* drv_state.c: formatting and strict parsing of the plugin's lock state string (lease generations). */
#include "drv_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vml_lease.h"

/* The entry key of (lockspace, name) into key (DRV_STATE_KEY_LEN + 1 bytes). */
static int resource_key(vml_sha256 *h, const vml_ext_resource2 *res,
                        char key[DRV_STATE_KEY_LEN + 1], vml_error *err)
{
    const char *const parts[] = { res->lockspace, "\n", res->name };
    char digest[VML_LEASE_NAME_LEN + 1];

    if (vml_sha256_hex(h, parts, 3, digest, err) < 0)
        return -1;
    memcpy(key, digest, DRV_STATE_KEY_LEN);
    key[DRV_STATE_KEY_LEN] = '\0';
    return 0;
}

/* Append value in base 10 or 16 (lowercase) at *p, which has room for 20 digits. */
static void put_number(char **p, uint64_t value, unsigned int base)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value > 0);
    while (n > 0)
        *(*p)++ = digits[--n];
}

/* Longest entry: ",KEY=GEN@EPOCH" (20 decimal digits, 16 hex digits). */
#define ENTRY_MAX (1 + DRV_STATE_KEY_LEN + 1 + 20 + 1 + 16)

int drv_state_format(const vml_ext_resource2 *resources, const vml_ext_generation *gens,
                     size_t n, char **out, vml_error *err)
{
    const size_t prefix_len = strlen(DRV_STATE_PREFIX);
    vml_sha256 *h = NULL;
    char *text = NULL;
    char *p;
    size_t entries = 0;
    int ret = -1;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        entries += gens[i].held;
    if (entries == 0)
        return 0;
    /* Formatted by hand into one buffer sized for the worst case: fprintf was the largest
     * cost of a 256-disk release in the plugin after the digests. */
    if ((text = malloc(prefix_len + entries * ENTRY_MAX + 1)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build the lock state");
        goto out;
    }
    if (vml_sha256_new(&h, err) < 0)
        goto out;
    memcpy(text, DRV_STATE_PREFIX, prefix_len);
    p = text + prefix_len;
    for (size_t i = 0; i < n; i++) {
        if (!gens[i].held)
            continue;
        if (p > text + prefix_len)
            *p++ = ',';
        if (resource_key(h, &resources[i], p, err) < 0)
            goto out;
        p += DRV_STATE_KEY_LEN;
        *p++ = '=';
        put_number(&p, gens[i].generation, 10);
        if (gens[i].epoch != 0) {
            *p++ = '@';
            put_number(&p, gens[i].epoch, 16);
        }
    }
    *p = '\0';
    *out = text;
    text = NULL;
    ret = 0;
 out:
    vml_sha256_free(h);
    free(text);
    return ret;
}

/* Parse an unsigned number in base (10 or 16) from *p up to a character of stop; advances. */
static bool parse_number(const char **p, int base, const char *stop, uint64_t *value)
{
    const char *start = *p;
    uint64_t v = 0;

    for (; **p != '\0' && strchr(stop, **p) == NULL; (*p)++) {
        unsigned int digit;
        char c = **p;

        if (c >= '0' && c <= '9')
            digit = (unsigned int)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = (unsigned int)(c - 'a' + 10);
        else
            return false;
        if (v > (UINT64_MAX - digit) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + digit;
    }
    *value = v;
    return *p > start && *p - start <= 20;
}

typedef struct state_entry {
    char key[DRV_STATE_KEY_LEN + 1];
    uint64_t generation;
    uint64_t epoch;
    size_t order;                   /* position in the state: the first of equal keys wins */
} state_entry;

static int compare_entries(const void *a, const void *b)
{
    const state_entry *x = a, *y = b;
    int c = memcmp(x->key, y->key, DRV_STATE_KEY_LEN);

    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The first entry (in state order) with key, in entries sorted by compare_entries. */
static const state_entry *find_entry(const state_entry *entries, size_t n, const char *key)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (memcmp(entries[mid].key, key, DRV_STATE_KEY_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && memcmp(entries[lo].key, key, DRV_STATE_KEY_LEN) == 0 ? &entries[lo] : NULL;
}

int drv_state_apply(const char *state, vml_ext_resource2 *resources, size_t n, vml_error *err)
{
    const size_t prefix_len = strlen(DRV_STATE_PREFIX);
    state_entry *entries = NULL;
    vml_sha256 *h = NULL;
    size_t nentries = 0, aentries = 0;
    const char *p;
    int ret = -1;

    if (state == NULL || state[0] == '\0')
        return 0;
    if (strnlen(state, DRV_STATE_MAX + 1) > DRV_STATE_MAX) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "lock state is longer than %d bytes", DRV_STATE_MAX);
        return -1;
    }
    if (strncmp(state, "vmlockd:", 8) != 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "lock state '%.40s' was not made by vmlockd.so (expected '%s...')",
                      state, DRV_STATE_PREFIX);
        return -1;
    }
    if (strncmp(state, DRV_STATE_PREFIX, prefix_len) != 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "lock state '%.40s' has a format version this vmlockd.so does not know "
                      "(it reads '%s...')", state, DRV_STATE_PREFIX);
        return -1;
    }
    for (p = state + prefix_len; *p != '\0';) {
        state_entry e = { .epoch = 0 };
        const char *key = p;

        if (nentries > 0) {
            if (*p != ',')
                goto malformed;
            key = ++p;
        }
        for (size_t i = 0; i < DRV_STATE_KEY_LEN; i++, p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                goto malformed;
        }
        memcpy(e.key, key, DRV_STATE_KEY_LEN);
        if (*p++ != '=' || !parse_number(&p, 10, ",@", &e.generation))
            goto malformed;
        if (*p == '@') {
            p++;
            if (!parse_number(&p, 16, ",", &e.epoch) || e.epoch == 0)
                goto malformed;
        }
        if (nentries == VML_EXT_BATCH_MAX) {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                          "lock state has more than %d entries", VML_EXT_BATCH_MAX);
            goto out;
        }
        if (nentries == aentries) {
            size_t grow = aentries == 0 ? 8 : aentries * 2;
            state_entry *bigger = realloc(entries, grow * sizeof(*bigger));

            if (bigger == NULL) {
                vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot read the lock state");
                goto out;
            }
            entries = bigger;
            aentries = grow;
        }
        e.order = nentries;
        entries[nentries++] = e;
    }
    /* Sorted, so that n resources against as many entries cost n log n, not n * n. */
    qsort(entries, nentries, sizeof(entries[0]), compare_entries);
    if (nentries > 0 && n > 0 && vml_sha256_new(&h, err) < 0)
        goto out;
    for (size_t i = 0; i < n && nentries > 0; i++) {
        char key[DRV_STATE_KEY_LEN + 1];
        const state_entry *e;

        if (resource_key(h, &resources[i], key, err) < 0)
            goto out;
        if ((e = find_entry(entries, nentries, key)) == NULL)
            continue;
        resources[i].flags |= VML_EXT_RESOURCE_EXPECT_GENERATION;
        resources[i].expected_generation = e->generation;
        resources[i].expected_epoch = e->epoch;
    }
    ret = 0;
    goto out;
 malformed:
    vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                  "lock state '%.60s' is malformed at byte %zu (expected KEY=GENERATION[@EPOCH] "
                  "entries separated by ',')", state, (size_t)(p - state));
 out:
    if (ret < 0) {
        for (size_t i = 0; i < n; i++) {
            resources[i].flags &= ~(unsigned int)VML_EXT_RESOURCE_EXPECT_GENERATION;
            resources[i].expected_generation = resources[i].expected_epoch = 0;
        }
    }
    vml_sha256_free(h);
    free(entries);
    return ret;
}
