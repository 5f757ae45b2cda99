/* ctl_domain.h: the parts of a libvirt domain definition (XML) that decide what its lock manager locks. */
#ifndef CTL_DOMAIN_H
#define CTL_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "vml_error.h"

/* Domain definitions larger than this are refused (libvirt's own are a few KiB). */
#define CTL_DOMAIN_XML_MAX (16 * 1024 * 1024)

/*
 * One <disk>.  Strings are owned by the disk; any may be NULL when the XML does not give it.
 * path is what libvirt hands the lock manager: source/@file, @dev or @dir for disks of type
 * file, block and dir; NULL for every other type (and for an empty CD-ROM).
 */
typedef struct ctl_disk {
    char *type;             /* the type attribute; "file" when absent, as libvirt defaults */
    char *device;           /* disk, cdrom, floppy, lun; "disk" when absent */
    char *target;           /* target/@dev, e.g. "vda" */
    char *path;
    char *source_text;      /* what the source names when path is NULL (pool/volume, protocol:name) */
    bool readonly;
    bool shareable;
    unsigned int line;      /* of the <disk> element */
} ctl_disk;

/* One <lease> (libvirt hands the lock manager key, target path, offset and lockspace). */
typedef struct ctl_lease {
    char *lockspace;        /* NULL when absent (libvirt refuses such a definition) */
    char *key;
    char *target_path;
    char *offset;           /* target/@offset as written, NULL when absent */
    unsigned int line;
} ctl_lease;

typedef struct ctl_domain {
    char *name;
    bool has_uuid;
    unsigned char uuid[16];
    ctl_disk *disks;
    size_t ndisks;
    ctl_lease *leases;
    size_t nleases;
} ctl_domain;

/*
 * Parse a domain definition from text[0..len) named filename in messages.  Errors name
 * FILE:LINE (VIR_ERR_XML_ERROR for malformed XML, VIR_ERR_XML_DETAIL for XML that is not a
 * domain definition).  No network access and no entity expansion.  On success *out is a
 * new domain owned by the caller (ctl_domain_free).
 */
int ctl_domain_parse_text(const char *filename, const char *text, size_t len,
                          ctl_domain **out, vml_error *err);

/* As ctl_domain_parse_text from a file ("-" = standard input), at most CTL_DOMAIN_XML_MAX bytes. */
int ctl_domain_parse_file(const char *path, ctl_domain **out, vml_error *err);

void ctl_domain_free(ctl_domain *dom);

#endif
