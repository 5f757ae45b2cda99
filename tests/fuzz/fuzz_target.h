/* fuzz_target.h: the libFuzzer entry points every target defines, and what a target may ask of the driver running it. */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/*
 * Both drivers call these: libFuzzer (-fsanitize=fuzzer, clang builds) and
 * fuzz_standalone.c (every build: replays the seed corpus and the regression inputs as a
 * TAP test).  LLVMFuzzerTestOneInput returns 0; a bug is a crash or an abort().
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A target whose environment cannot be set up (fuzz_sandbox_enter() failing for want of
 * root) calls this: the standalone driver reports a TAP skip naming why, libFuzzer exits 1.
 */
void fuzz_cannot_run(const char *why) __attribute__((noreturn));

/* A broken invariant found by a target's own oracle: print it and abort() (a crash). */
void fuzz_invariant_failed(const char *what) __attribute__((noreturn));

#endif
