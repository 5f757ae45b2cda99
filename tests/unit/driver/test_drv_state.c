/* test_drv_state.c: unit tests of the plugin's lock state string: format, key mapping, strict parsing and its bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_state.h"
#include "vml_test.h"

static vml_ext_resource2 res(const char *lockspace, const char *name)
{
    vml_ext_resource2 r = { .lockspace = (char *)lockspace, .name = (char *)name,
                            .disk = (char *)"", .flags = 0 };
    return r;
}

static void test_format_and_apply(void)
{
    vml_ext_resource2 set[3] = { res("/ls", "a"), res("", "/img/b"), res("/ls", "c") };
    vml_ext_generation gens[3] = {
        { .generation = 5, .epoch = 0, .held = TRUE },
        { .generation = 12, .epoch = 0xabcdef, .held = TRUE },
        { .generation = 9, .epoch = 0, .held = FALSE },
    };
    vml_ext_resource2 again[3] = { res("/ls", "c"), res("/ls", "a"), res("", "/img/b") };
    char *state = NULL;
    vml_error err;

    VML_CHECK(drv_state_format(set, gens, 3, &state, &err) == 0 && state != NULL,
              "a state is made of the leases held");
    if (state == NULL)
        return;
    VML_CHECK(strncmp(state, "vmlockd:1:", 10) == 0 && strchr(state, '/') == NULL &&
              strspn(state, "0123456789abcdefvmlockd:=,@") == strlen(state),
              "it is versioned and XML-safe (no path, only [0-9a-z:=,@])");
    VML_CHECK(strstr(state, "=5,") != NULL && strstr(state, "=12@abcdef") != NULL &&
              strstr(state, "=9") == NULL,
              "lease-file generations plain, daemon-local ones with their epoch, unheld left out");
    VML_CHECK(drv_state_apply(state, again, 3, &err) == 0, "the state applies to the same set");
    VML_CHECK(!(again[0].flags & VML_EXT_RESOURCE_EXPECT_GENERATION),
              "a resource the state does not name gets no expectation");
    VML_CHECK((again[1].flags & VML_EXT_RESOURCE_EXPECT_GENERATION) &&
              again[1].expected_generation == 5 && again[1].expected_epoch == 0,
              "the others get theirs, whatever their order");
    VML_CHECK((again[2].flags & VML_EXT_RESOURCE_EXPECT_GENERATION) &&
              again[2].expected_generation == 12 && again[2].expected_epoch == 0xabcdef,
              "... with the epoch of a daemon-local generation");
    free(state);
    gens[0].held = gens[1].held = FALSE;
    VML_CHECK(drv_state_format(set, gens, 3, &state, &err) == 0 && state == NULL,
              "nothing held: no state (NULL, as lockd)");
}

static void expect_refused(const char *state, const char *fragment, const char *what)
{
    vml_ext_resource2 set[1] = { res("/ls", "a") };
    vml_error err;

    vml_error_clear(&err);
    if (!VML_CHECK(drv_state_apply(state, set, 1, &err) < 0 && err.code == VIR_ERR_INVALID_ARG &&
                   strstr(err.message, fragment) != NULL && set[0].flags == 0, what))
        printf("#   %s\n", err.message);
}

static void test_bad_states(void)
{
    vml_ext_resource2 set[1] = { res("/ls", "a") };
    vml_error err;
    char *big;

    VML_CHECK(drv_state_apply(NULL, set, 1, &err) == 0 && set[0].flags == 0,
              "a NULL state (lockd, or no pause) changes nothing");
    VML_CHECK(drv_state_apply("", set, 1, &err) == 0 && set[0].flags == 0, "nor does \"\"");
    VML_CHECK(drv_state_apply("vmlockd:1:", set, 1, &err) == 0, "a state with no entry is fine");
    expect_refused("sanlock:xyz", "was not made by vmlockd.so", "another plugin's state");
    expect_refused("vmlockd:2:0123456789abcdef=1", "format version", "an unknown version");
    expect_refused("vmlockd:1:0123456789abcdeg=1", "malformed at byte 25", "a bad key digit");
    expect_refused("vmlockd:1:0123456789abcdef", "malformed", "a key without a generation");
    expect_refused("vmlockd:1:0123456789abcdef=", "malformed", "an empty generation");
    expect_refused("vmlockd:1:0123456789abcdef=18446744073709551616", "malformed",
                   "a generation beyond 64 bits");
    expect_refused("vmlockd:1:0123456789abcdef=1@", "malformed", "an empty epoch");
    expect_refused("vmlockd:1:0123456789abcdef=1@0", "malformed", "a zero epoch");
    expect_refused("vmlockd:1:0123456789abcdef=1,", "malformed", "a trailing comma");
    expect_refused("vmlockd:1:0123456789abcdef=1;x", "malformed", "a foreign separator");
    big = malloc(DRV_STATE_MAX + 2);
    if (big != NULL) {
        memset(big, 'a', DRV_STATE_MAX + 1);
        memcpy(big, "vmlockd:1:", 10);
        big[DRV_STATE_MAX + 1] = '\0';
        expect_refused(big, "longer than", "a state over 1 MiB");
        free(big);
    }
    {
        size_t n = 4097;
        size_t len = 10 + n * 19;
        char *many = malloc(len + 1);
        size_t pos = 10;

        if (many != NULL) {
            memcpy(many, "vmlockd:1:", 10);
            for (size_t i = 0; i < n; i++)
                pos += (size_t)snprintf(many + pos, len + 1 - pos, "%s%016zx=1", i ? "," : "", i);
            expect_refused(many, "more than 4096 entries", "more entries than a domain has leases");
            free(many);
        }
    }
}

/* Many resources (sorted lookup), extreme numbers, and the first of two equal keys. */
static void test_many(void)
{
    enum { N = 300 };
    static char names[N][16];
    static vml_ext_resource2 set[N], reversed[N];
    static vml_ext_generation gens[N];
    vml_ext_resource2 one[1] = { res("/ls", "n0") };
    char *state = NULL;
    char *doubled = NULL;
    vml_error err;
    size_t ok = 0;

    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "n%zu", i);
        set[i] = res("/ls", names[i]);
        reversed[N - 1 - i] = set[i];
        gens[i].generation = i == 0 ? UINT64_MAX : i;
        gens[i].epoch = i % 2 ? UINT64_MAX - i : 0;
        gens[i].held = TRUE;
    }
    VML_CHECK(drv_state_format(set, gens, N, &state, &err) == 0 && state != NULL &&
              strstr(state, "=18446744073709551615,") != NULL &&
              strstr(state, "@fffffffffffffffe") != NULL,
              "300 leases: the largest generation and epoch are written in full");
    if (state == NULL)
        return;
    VML_CHECK(drv_state_apply(state, reversed, N, &err) == 0, "and the state applies to them");
    for (size_t i = 0; i < N; i++) {
        const vml_ext_resource2 *r = &reversed[N - 1 - i];

        ok += (r->flags & VML_EXT_RESOURCE_EXPECT_GENERATION) &&
              r->expected_generation == gens[i].generation && r->expected_epoch == gens[i].epoch;
    }
    VML_CHECK(ok == N, "each of the 300 gets its own generation and epoch, in any order");
    /* The same entry twice, the second with another generation: the first one counts. */
    if (asprintf(&doubled, "%s,%.16s=7", state, state + strlen(DRV_STATE_PREFIX)) > 0) {
        VML_CHECK(drv_state_apply(doubled, one, 1, &err) == 0 &&
                  one[0].expected_generation == UINT64_MAX,
                  "a key given twice: the first entry counts");
        free(doubled);
    }
    free(state);
}

int main(void)
{
    test_format_and_apply();
    test_many();
    test_bad_states();
    return vml_test_done();
}
