/* lock_driver_abi.h: libvirt's lock-driver plugin ABI (version 1.0.0), declared from its documented layout and pinned with static assertions. */
#ifndef LOCK_DRIVER_ABI_H
#define LOCK_DRIVER_ABI_H

/*
 * libvirt does not install its lock_driver.h, so a plugin declares the ABI itself.  The
 * names below follow libvirt's so that a reader can match them against libvirt's docs;
 * every size, offset and value is asserted at the bottom of this file against the
 * documented x86_64 tables (docs/PROTOCOL.md, "Plugin ABI").  The ABI has been unchanged
 * from libvirt 9.0.0 to 11.3.0.
 */

#include <stddef.h>

#define VIR_LOCK_MANAGER_VERSION_MAJOR 1
#define VIR_LOCK_MANAGER_VERSION_MINOR 0
#define VIR_LOCK_MANAGER_VERSION_MICRO 0
#define VIR_LOCK_MANAGER_VERSION \
    ((VIR_LOCK_MANAGER_VERSION_MAJOR * 1000 * 1000) + \
     (VIR_LOCK_MANAGER_VERSION_MINOR * 1000) + \
     VIR_LOCK_MANAGER_VERSION_MICRO)

/* virLockDriver.flags */
enum {
    VIR_LOCK_MANAGER_USES_STATE = (1 << 0),
};

/* drvNew type */
enum {
    VIR_LOCK_MANAGER_OBJECT_TYPE_DOMAIN = 0,
};

/* drvAddResource type */
enum {
    VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK = 0,
    VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE = 1,
};

/* drvAddResource flags */
enum {
    VIR_LOCK_MANAGER_RESOURCE_READONLY = (1 << 0),
    VIR_LOCK_MANAGER_RESOURCE_SHARED = (1 << 1),
};

/* drvAcquire flags */
enum {
    VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY = (1 << 0),
    VIR_LOCK_MANAGER_ACQUIRE_RESTRICT = (1 << 1),
};

/* drvNew flags */
enum {
    VIR_LOCK_MANAGER_NEW_STARTED = (1 << 0),
};

/* virLockManagerParam.type */
enum {
    VIR_LOCK_MANAGER_PARAM_TYPE_STRING = 0,
    VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING = 1,
    VIR_LOCK_MANAGER_PARAM_TYPE_INT = 2,
    VIR_LOCK_MANAGER_PARAM_TYPE_LONG = 3,
    VIR_LOCK_MANAGER_PARAM_TYPE_UINT = 4,
    VIR_LOCK_MANAGER_PARAM_TYPE_ULONG = 5,
    VIR_LOCK_MANAGER_PARAM_TYPE_DOUBLE = 6,
    VIR_LOCK_MANAGER_PARAM_TYPE_UUID = 7,
};

/* The domain's <on_lockfailure> (libvirt's domain_conf.h); an int-sized C enum. */
typedef enum {
    VIR_DOMAIN_LOCK_FAILURE_DEFAULT = 0,
    VIR_DOMAIN_LOCK_FAILURE_POWEROFF = 1,
    VIR_DOMAIN_LOCK_FAILURE_RESTART = 2,
    VIR_DOMAIN_LOCK_FAILURE_PAUSE = 3,
    VIR_DOMAIN_LOCK_FAILURE_IGNORE = 4,
    VIR_DOMAIN_LOCK_FAILURE_LAST = 5,
} virDomainLockFailureAction;

/* Spelled exactly as libvirt-host.h spells it, so including both is not a redefinition. */
#ifndef VIR_UUID_BUFLEN
# define VIR_UUID_BUFLEN (16)
#endif

typedef struct _virLockManagerParam virLockManagerParam;
struct _virLockManagerParam {
    int type;
    const char *key;
    union {
        int iv;
        long long l;
        unsigned int ui;
        unsigned long long ul;
        double d;
        char *str;
        const char *cstr;
        unsigned char uuid[16];
    } value;
};

typedef struct _virLockDriver virLockDriver;

/* Allocated, zeroed and freed by libvirt; privateData belongs to the plugin. */
typedef struct _virLockManager virLockManager;
struct _virLockManager {
    virLockDriver *driver;
    void *privateData;
};

typedef int (*virLockDriverInit)(unsigned int version, const char *configFile,
                                 unsigned int flags);
typedef int (*virLockDriverDeinit)(void);
typedef int (*virLockDriverNew)(virLockManager *man, unsigned int type, size_t nparams,
                                virLockManagerParam *params, unsigned int flags);
typedef void (*virLockDriverFree)(virLockManager *man);
typedef int (*virLockDriverAddResource)(virLockManager *man, unsigned int type,
                                        const char *name, size_t nparams,
                                        virLockManagerParam *params, unsigned int flags);
typedef int (*virLockDriverAcquire)(virLockManager *man, const char *state,
                                    unsigned int flags, virDomainLockFailureAction action,
                                    int *fd);
typedef int (*virLockDriverRelease)(virLockManager *man, char **state, unsigned int flags);
typedef int (*virLockDriverInquire)(virLockManager *man, char **state, unsigned int flags);

/* The table a plugin exports as the data symbol "virLockDriverImpl". */
struct _virLockDriver {
    unsigned int version;
    unsigned int flags;
    virLockDriverInit drvInit;
    virLockDriverDeinit drvDeinit;
    virLockDriverNew drvNew;
    virLockDriverFree drvFree;
    virLockDriverAddResource drvAddResource;
    virLockDriverAcquire drvAcquire;
    virLockDriverRelease drvRelease;
    virLockDriverInquire drvInquire;
};

/* libvirt's private error entry point, looked up at run time (never linked). */
typedef void (*virReportErrorHelperFunc)(int domcode, int errcode, const char *filename,
                                         const char *funcname, size_t linenr,
                                         const char *fmt, ...);

/* ---- the documented layout (x86_64, LP64) ---- */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(VIR_LOCK_MANAGER_VERSION == 1000000, "drvInit version argument");
_Static_assert(sizeof(virLockDriver) == 72, "virLockDriver is 72 bytes");
_Static_assert(offsetof(virLockDriver, version) == 0, "version at 0");
_Static_assert(offsetof(virLockDriver, flags) == 4, "flags at 4");
_Static_assert(offsetof(virLockDriver, drvInit) == 8, "drvInit at 8");
_Static_assert(offsetof(virLockDriver, drvDeinit) == 16, "drvDeinit at 16");
_Static_assert(offsetof(virLockDriver, drvNew) == 24, "drvNew at 24");
_Static_assert(offsetof(virLockDriver, drvFree) == 32, "drvFree at 32");
_Static_assert(offsetof(virLockDriver, drvAddResource) == 40, "drvAddResource at 40");
_Static_assert(offsetof(virLockDriver, drvAcquire) == 48, "drvAcquire at 48");
_Static_assert(offsetof(virLockDriver, drvRelease) == 56, "drvRelease at 56");
_Static_assert(offsetof(virLockDriver, drvInquire) == 64, "drvInquire at 64");
_Static_assert(sizeof(virLockManager) == 16, "virLockManager is 16 bytes");
_Static_assert(offsetof(virLockManager, privateData) == 8, "privateData at 8");
_Static_assert(sizeof(virLockManagerParam) == 32, "virLockManagerParam is 32 bytes");
_Static_assert(offsetof(virLockManagerParam, key) == 8, "key at 8");
_Static_assert(offsetof(virLockManagerParam, value) == 16, "value at 16");
_Static_assert(sizeof(((virLockManagerParam *)0)->value) == 16, "value union is 16 bytes");
_Static_assert(sizeof(virDomainLockFailureAction) == sizeof(int), "action is int-sized");
#endif

#endif
