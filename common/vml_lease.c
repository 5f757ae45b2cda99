/* vml_lease.c: lease naming from disk paths. */
#include "vml_lease.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct vml_sha256 {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

int vml_sha256_new(vml_sha256 **out, vml_error *err)
{
    vml_sha256 *h = calloc(1, sizeof(*h));

    *out = NULL;
    if (h == NULL || (h->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
        (h->ctx = EVP_MD_CTX_new()) == NULL) {
        vml_sha256_free(h);
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "cannot set up SHA-256 (libcrypto)");
        return -1;
    }
    *out = h;
    return 0;
}

void vml_sha256_free(vml_sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}

int vml_sha256_hex(vml_sha256 *h, const char *const *parts, size_t n,
                   char out[VML_LEASE_NAME_LEN + 1], vml_error *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    bool ok = EVP_DigestInit_ex(h->ctx, h->md, NULL) == 1;

    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(h->ctx, parts[i], strlen(parts[i])) == 1;
    if (!ok || EVP_DigestFinal_ex(h->ctx, digest, &digest_len) != 1 ||
        digest_len * 2 != VML_LEASE_NAME_LEN) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "cannot compute the SHA-256 of '%s'", n > 0 ? parts[0] : "");
        return -1;
    }
    for (unsigned int i = 0; i < digest_len; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[VML_LEASE_NAME_LEN] = '\0';
    return 0;
}

int vml_lease_hash(const char *text, char out[VML_LEASE_NAME_LEN + 1], vml_error *err)
{
    vml_sha256 *h = NULL;
    int ret = -1;

    if (vml_sha256_new(&h, err) < 0 || vml_sha256_hex(h, &text, 1, out, err) < 0)
        goto out;
    ret = 0;
 out:
    vml_sha256_free(h);
    return ret;
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
