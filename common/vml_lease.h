/* vml_lease.h: how a disk path becomes a lease name (lowercase hex SHA-256, as libvirt's lockd names indirect leases). */
#ifndef VML_LEASE_H
#define VML_LEASE_H

#include "vml_error.h"

#define VML_LEASE_NAME_LEN 64   /* hex characters of a SHA-256 digest */

/* out = lowercase hex SHA-256 of the bytes of text (no terminator hashed). */
int vml_lease_hash(const char *text, char out[VML_LEASE_NAME_LEN + 1], vml_error *err);

/*
 * A SHA-256 hasher for many digests in a row: OpenSSL 3 looks the algorithm up (under a
 * lock) at every one-shot digest, which cost more than the digest itself (0.53 against
 * 0.18 us for a disk path here); a hasher looks it up once.  Not shared between threads.
 * *out is owned by the caller (vml_sha256_free, which accepts NULL).
 */
typedef struct vml_sha256 vml_sha256;

int vml_sha256_new(vml_sha256 **out, vml_error *err);
void vml_sha256_free(vml_sha256 *h);

/* out = lowercase hex SHA-256 of the concatenated bytes of the NUL-terminated parts[0..n). */
int vml_sha256_hex(vml_sha256 *h, const char *const *parts, size_t n,
                   char out[VML_LEASE_NAME_LEN + 1], vml_error *err);

/*
 * The path a disk is identified by: realpath(disk) when it resolves, so that a symlink or a
 * "//" or ".." spelling of one file maps to one lease; the path as given when it does not
 * (not yet created, or on storage this host cannot see).  For a path that is already
 * canonical this is the path itself, so the lease name equals lockd's.
 * *out is malloc'd and owned by the caller.
 */
int vml_lease_canonical_path(const char *disk, char **out, vml_error *err);

#endif
