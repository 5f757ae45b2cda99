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
static int resource_key(const vml_ext_resource2 *res, char key[DRV_STATE_KEY_LEN + 1],
                        vml_error *err)
{
    char digest[VML_LEASE_NAME_LEN + 1];
    char *text = NULL;
    int rc;

    if (asprintf(&text, "%s\n%s", res->lockspace, res->name) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build the lock state");
        return -1;
    }
    rc = vml_lease_hash(text, digest, err);
    free(text);
    if (rc < 0)
        return -1;
    memcpy(key, digest, DRV_STATE_KEY_LEN);
    key[DRV_STATE_KEY_LEN] = '\0';
    return 0;
}

int drv_state_format(const vml_ext_resource2 *resources, const vml_ext_generation *gens,
                     size_t n, char **out, vml_error *err)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = NULL;
    size_t entries = 0;
    int ret = -1;

    *out = NULL;
    f = open_memstream(&text, &size);
    if (f == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot build the lock state");
        goto out;
    }
    fputs(DRV_STATE_PREFIX, f);
    for (size_t i = 0; i < n; i++) {
        char key[DRV_STATE_KEY_LEN + 1];

        if (!gens[i].held)
            continue;
        if (resource_key(&resources[i], key, err) < 0)
            goto out;
        fprintf(f, "%s%s=%" PRIu64, entries > 0 ? "," : "", key, (uint64_t)gens[i].generation);
        if (gens[i].epoch != 0)
            fprintf(f, "@%" PRIx64, (uint64_t)gens[i].epoch);
        entries++;
    }
    if (fclose(f) != 0) {
        f = NULL;
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build the lock state");
        goto out;
    }
    f = NULL;
    if (entries > 0) {
        *out = text;
        text = NULL;
    }
    ret = 0;
 out:
    if (f != NULL)
        fclose(f);
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
} state_entry;

int drv_state_apply(const char *state, vml_ext_resource2 *resources, size_t n, vml_error *err)
{
    const size_t prefix_len = strlen(DRV_STATE_PREFIX);
    state_entry *entries = NULL;
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
        entries[nentries++] = e;
    }
    for (size_t i = 0; i < n; i++) {
        char key[DRV_STATE_KEY_LEN + 1];

        if (resource_key(&resources[i], key, err) < 0)
            goto out;
        for (size_t j = 0; j < nentries; j++) {
            if (memcmp(entries[j].key, key, DRV_STATE_KEY_LEN) != 0)
                continue;
            resources[i].flags |= VML_EXT_RESOURCE_EXPECT_GENERATION;
            resources[i].expected_generation = entries[j].generation;
            resources[i].expected_epoch = entries[j].epoch;
            break;
        }
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
    free(entries);
    return ret;
}
