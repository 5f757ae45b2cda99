/* vml_lease.c: lease naming from disk paths. */
#include "vml_lease.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

int vml_lease_hash(const char *text, char out[VML_LEASE_NAME_LEN + 1], vml_error *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    if (EVP_Digest(text, strlen(text), digest, &digest_len, EVP_sha256(), NULL) != 1 ||
        digest_len * 2 != VML_LEASE_NAME_LEN) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "cannot compute the SHA-256 of '%s'", text);
        return -1;
    }
    for (unsigned int i = 0; i < digest_len; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[VML_LEASE_NAME_LEN] = '\0';
    return 0;
}

int vml_lease_canonical_path(const char *disk, char **out, vml_error *err)
{
    char *resolved = realpath(disk, NULL);

    if (resolved == NULL) {
        if (errno == ENOMEM) {
            vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot resolve '%s'", disk);
            return -1;
        }
        resolved = strdup(disk);    /* unresolvable: the spelling given is all we have */
        if (resolved == NULL) {
            vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot copy '%s'", disk);
            return -1;
        }
    }
    *out = resolved;
    return 0;
}
