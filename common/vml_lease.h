/* vml_lease.h: how a disk path becomes a lease name (lowercase hex SHA-256, as libvirt's lockd names indirect leases). */
#ifndef VML_LEASE_H
#define VML_LEASE_H

#include "vml_error.h"

#define VML_LEASE_NAME_LEN 64   /* hex characters of a SHA-256 digest */

/* out = lowercase hex SHA-256 of the bytes of text (no terminator hashed). */
int vml_lease_hash(const char *text, char out[VML_LEASE_NAME_LEN + 1], vml_error *err);

/*
 * The path a disk is identified by: realpath(disk) when it resolves, so that a symlink or a
 * "//" or ".." spelling of one file maps to one lease; the path as given when it does not
 * (not yet created, or on storage this host cannot see).  For a path that is already
 * canonical this is the path itself, so the lease name equals lockd's.
 * *out is malloc'd and owned by the caller.
 */
int vml_lease_canonical_path(const char *disk, char **out, vml_error *err);

#endif
