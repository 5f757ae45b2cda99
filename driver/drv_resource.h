/* drv_resource.h: a domain's disks and leases, and how each becomes a daemon lease (lockspace, name, flags). */
#ifndef DRV_RESOURCE_H
#define DRV_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "drv_config.h"
#include "lock_driver_abi.h"
#include "vml_error.h"
#include "vml_extension.h"

/*
 * One resource as drvAddResource recorded it, plus (once drv_resource_set_resolve() ran) the
 * lease it maps to.  Every string is owned by the resource.
 */
typedef struct drv_resource {
    unsigned int type;          /* VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK or _LEASE */
    char *name;                 /* DISK: the disk path as libvirt gave it; LEASE: the lease key */
    bool shared;
    char *lease_path;           /* LEASE: the target path; NULL for disks */
    char *lease_lockspace;      /* LEASE: the lockspace name; NULL for disks */
    /* The lease, NULL until resolved. */
    char *lockspace;            /* "" = the default (direct) lockspace */
    char *lock_name;
    unsigned int lock_flags;    /* VML_LS_ACQUIRE_SHARED / _AUTOCREATE */
} drv_resource;

/* The resources of one lock-manager context, in the order libvirt added them. */
typedef struct drv_resource_set {
    drv_resource *items;
    size_t count;
    size_t capacity;
    bool resolved;              /* every item has its lease */
    bool has_rw_disks;          /* a r/w exclusive disk was seen while auto leases are off */
} drv_resource_set;

/* Programs that identify block devices; tests substitute stand-ins. */
typedef struct drv_resource_tools {
    const char *lvs;            /* prints an LV's UUID */
    const char *scsi_id;        /* prints a SCSI LUN's identifier */
} drv_resource_tools;

#define DRV_RESOURCE_LVS "/sbin/lvs"
#define DRV_RESOURCE_SCSI_ID "/lib/udev/scsi_id"

/* Bytes of a tool's output that are kept; more is read and discarded, then refused. */
#define DRV_RESOURCE_TOOL_OUTPUT_MAX 4096

/*
 * Validate one drvAddResource call and record it in set (libvirt's arguments are borrowed and
 * copied).  Nothing is computed here: this runs in the child forked from libvirtd, where only
 * malloc and plain syscalls are safe.  A read-only resource is validated and dropped (it is
 * never locked); with auto_disk_leases off a disk is dropped too, marking has_rw_disks when
 * it is neither shared nor read-only.  On error set is unchanged.
 */
int drv_resource_add(drv_resource_set *set, const drv_config *config, unsigned int type,
                     const char *name, size_t nparams, const virLockManagerParam *params,
                     unsigned int flags, vml_error *err);

/*
 * Give every recorded resource its lease (first call only; later calls return 0).  May run
 * tools (fork+execv) and hash paths: call it only in libvirtd itself, never on the start
 * path.  tools NULL = the system's.  On error the set stays unresolved.
 */
int drv_resource_set_resolve(drv_resource_set *set, const drv_config *config,
                             const drv_resource_tools *tools, vml_error *err);

/*
 * *out = a new array of set->count wire resources (malloc'd, owned by the caller and freed
 * with free() alone) whose strings are BORROWED from set: valid until set changes.  The set
 * must be resolved.  count 0 gives *out = NULL.
 */
int drv_resource_set_to_wire(const drv_resource_set *set, vml_ext_resource **out,
                             vml_error *err);

/* Free every resource; set itself (caller-owned) becomes empty. Accepts NULL. */
void drv_resource_set_clear(drv_resource_set *set);

/*
 * Run argv[0] (an absolute path; no shell, no PATH search) with stdin and stderr on /dev/null
 * and return the first line of its standard output with leading blanks removed, as a
 * malloc'd string owned by the caller, in *line.  *line is NULL when the program exited
 * non-zero or printed nothing.  Failing to run it at all, or more than 1 MiB of output, is
 * an error.  Exposed for tests.
 */
int drv_resource_run_tool(const char *const argv[], char **line, vml_error *err);

#endif
