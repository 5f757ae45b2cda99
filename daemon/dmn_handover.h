/* dmn_handover.h: the re-exec handover blob (vml_handover.x) in a sealed memfd: writing, strict reading, descriptor inheritance. */
#ifndef DMN_HANDOVER_H
#define DMN_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "vml_error.h"
#include "vml_handover.h"

/*
 * Encode ho into a new sealed memfd positioned at 0.  *fd_out is owned by the caller and is
 * close-on-exec (the caller clears it with the others just before exec).
 */
int dmn_handover_write(vml_handover *ho, int *fd_out, vml_error *err);

/*
 * Read and decode the handover on fd (which is closed): it must be a regular file or memfd
 * of at most VML_HANDOVER_MAX bytes that decodes exactly, with the right magic and format
 * version, and every descriptor it names must be >= 3, distinct, and open.  *ho is zeroed
 * first and must be freed with xdr_free(xdr_vml_handover, ho) whether or not this succeeds.
 * Errors say what is wrong (they are logged loudly and stop the new image).
 */
int dmn_handover_read(int fd, vml_handover *ho, vml_error *err);

/* Every descriptor the handover names (for CLOEXEC changes): *fds malloc'd, caller frees. */
int dmn_handover_fds(const vml_handover *ho, int **fds, size_t *nfds, vml_error *err);

/* Set (on) or clear FD_CLOEXEC on fds[0..n); clearing stops at the first failure (-1). */
int dmn_fds_set_cloexec(const int *fds, size_t n, bool on);

/*
 * The command line of the re-exec: exe, then argv[1..] without --daemon/-d (the process is
 * already detached) and without an earlier --handover-fd, then "--handover-fd N".  A
 * malloc'd NULL-terminated array whose strings are malloc'd too: dmn_argv_free.
 */
char **dmn_handover_argv(const char *exe, char *const *argv, int fd);
void dmn_argv_free(char **argv);

#endif
