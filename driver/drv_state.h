/* drv_state.h: the lock state string vmlockd.so gives libvirt at pause and migration (lease generations) and checks at resume. */
#ifndef DRV_STATE_H
#define DRV_STATE_H

#include <stddef.h>

#include "vml_error.h"
#include "vml_extension.h"

/*
 * The state is plain text that survives libvirt's domain status XML and migration cookie:
 *
 *   vmlockd:1:KEY=GEN[@EPOCH],KEY=GEN[@EPOCH],...
 *
 * "vmlockd" and the format version 1, then one entry per lease the domain held: KEY is the
 * first 16 hex digits of SHA-256(lockspace "\n" name) (so neither paths nor names reach the
 * XML), GEN the lease's generation in decimal, EPOCH (hex) only for daemon-local
 * generations (direct mode: valid on that daemon only).  Only [0-9a-z:=,@] appear: nothing
 * to escape.  At most DRV_STATE_MAX bytes.
 */
#define DRV_STATE_PREFIX "vmlockd:1:"
#define DRV_STATE_MAX (1024 * 1024)
#define DRV_STATE_KEY_LEN 16

/*
 * *out = the state of resources[0..n) with their generations gens[0..n) (entries whose
 * held is false are left out), malloc'd and owned by the caller; NULL when no entry
 * remains.  Hashes: call it outside the start path only.
 */
int drv_state_format(const vml_ext_resource2 *resources, const vml_ext_generation *gens,
                     size_t n, char **out, vml_error *err);

/*
 * Apply state (NULL or "" = none: nothing changes) to resources[0..n): each resource whose
 * key appears gets VML_EXT_RESOURCE_EXPECT_GENERATION and the expected generation and
 * epoch; entries for resources not in the set are ignored (a disk detached since).  A
 * state that is not this format, or is malformed, is a VIR_ERR_INVALID_ARG error saying
 * what is wrong, and nothing is applied.
 */
int drv_state_apply(const char *state, vml_ext_resource2 *resources, size_t n, vml_error *err);

#endif
