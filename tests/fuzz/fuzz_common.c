/* fuzz_common.c: what every fuzz target links: the setup-failure and invariant-failure exits of fuzz_target.h. */
#include "fuzz_target.h"

#include <stdio.h>
#include <stdlib.h>

void fuzz_cannot_run(const char *why)
{
    if (getenv("VMLFUZZ_STANDALONE") != NULL) {
        /* The standalone driver runs under meson's TAP protocol: a plan of 0 is a skip. */
        printf("1..0 # SKIP %s\n", why);
        fflush(stdout);
        exit(0);
    }
    fprintf(stderr, "fuzz target cannot run: %s\n", why);
    exit(1);
}

void fuzz_invariant_failed(const char *what)
{
    fprintf(stderr, "INVARIANT BROKEN: %s\n", what);
    fflush(stderr);
    abort();
}
