/* fuzz_sandbox.h: a private pid and mount namespace in which a fuzz target may create, lock and unlink files and name processes without harming the host. */
#ifndef FUZZ_SANDBOX_H
#define FUZZ_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The one writable place inside the sandbox: a private tmpfs mounted over this path (the
 * host's directory of that name is hidden from the sandbox, never written).  A fixed path,
 * so seed inputs can name lockspaces and disks in it.
 */
#define FUZZ_SCRATCH "/var/tmp"

/* Pids of the stand-in owner processes inside the sandbox (pid 1 is the fuzzer itself). */
#define FUZZ_OWNER_PID_A 2
#define FUZZ_OWNER_PID_B 3

/*
 * Move the calling process into the sandbox.  Returns 0 in the sandboxed process (pid 1 of a
 * new pid namespace, in a new mount namespace where every mount is read-only except
 * FUZZ_SCRATCH and the directories listed, colon-separated, in $VMLFUZZ_RW, and with a
 * /proc of its own).  The calling process itself never returns: it waits for the sandboxed
 * one, forwards SIGINT/SIGTERM/SIGHUP to it and exits with its status.  Returns -1 with
 * why[] filled when the sandbox cannot be built (not root, no namespaces); nothing has
 * changed then.  Call it once, before any thread exists (LLVMFuzzerInitialize).
 *
 * Why a sandbox: the dispatcher run by a fuzz target creates directories (CREATE_LOCKSPACE
 * makes any path), writes owner records into files named by the input, unlinks files and
 * SIGKILLs owner pids (BREAK); outside a sandbox that would hit the host's files and any
 * process on it.  Inside, the only processes are this one (pid 1, which the kernel never lets
 * a SIGKILL from inside reach) and the two stand-in owners.
 */
int fuzz_sandbox_enter(char *why, size_t why_len);

/*
 * Make sure the stand-in owners FUZZ_OWNER_PID_A and _B run (a BREAK of their lease SIGKILLs
 * them; they are reaped and started again under the same pids).  Call before every input.
 */
void fuzz_sandbox_owners_ready(void);

/* Remove everything below FUZZ_SCRATCH (the tmpfs); 0, or -1 when something stays. */
int fuzz_sandbox_clear_scratch(void);

/* The descriptors open in [0, FUZZ_FD_WINDOW) as a bit set, to detect leaks across inputs. */
#define FUZZ_FD_WINDOW 256
typedef struct fuzz_fd_set {
    unsigned long long bits[FUZZ_FD_WINDOW / 64];
} fuzz_fd_set;

void fuzz_fd_snapshot(fuzz_fd_set *set);

/* The first descriptor open in now but not in before, or -1 when none was leaked. */
int fuzz_fd_leaked(const fuzz_fd_set *before, const fuzz_fd_set *now);

#endif
