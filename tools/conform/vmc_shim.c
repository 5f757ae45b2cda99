/* vmc_shim.c: interposition on a plugin's own callback table (unknown param keys, object and resource types). */
#include "vmc_shim.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Singleton state of the worker process (see the header). */
static virLockDriverNew plugin_new;
static virLockDriverAddResource plugin_add_resource;
static vmc_shim armed_kind = VMC_SHIM_NONE;
static unsigned int armed_value;

/* A key no plugin can know: libvirt passes exactly uuid, name, id, pid, uri. */
#define SHIM_UNKNOWN_KEY "vmlock-conform-unknown"
#define SHIM_MAX_PARAMS 16

static int shim_new(virLockManager *man, unsigned int type, size_t nparams,
                    virLockManagerParam *params, unsigned int flags)
{
    virLockManagerParam extended[SHIM_MAX_PARAMS];
    vmc_shim kind = armed_kind;

    if (kind == VMC_SHIM_OBJECT_TYPE) {
        armed_kind = VMC_SHIM_NONE;
        return plugin_new(man, armed_value, nparams, params, flags);
    }
    if (kind == VMC_SHIM_EXTRA_PARAM && nparams < SHIM_MAX_PARAMS) {
        armed_kind = VMC_SHIM_NONE;
        if (nparams > 0)
            memcpy(extended, params, nparams * sizeof(*params));
        memset(&extended[nparams], 0, sizeof(extended[nparams]));
        extended[nparams].type = VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING;
        extended[nparams].key = SHIM_UNKNOWN_KEY;
        extended[nparams].value.cstr = "x";
        return plugin_new(man, type, nparams + 1, extended, flags);
    }
    return plugin_new(man, type, nparams, params, flags);
}

static int shim_add_resource(virLockManager *man, unsigned int type, const char *name,
                             size_t nparams, virLockManagerParam *params, unsigned int flags)
{
    if (armed_kind == VMC_SHIM_RESOURCE_TYPE)
        type = armed_value;
    return plugin_add_resource(man, type, name, nparams, params, flags);
}

int vmc_shim_install(const virLockDriver *driver, vml_error *err)
{
    virLockDriver *table = (virLockDriver *)driver;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start;
    uintptr_t end;

    if (plugin_new != NULL)
        return 0;
    if (page <= 0)
        page = 4096;
    /* The table is data of the plugin; make its pages writable whatever the linker did. */
    start = (uintptr_t)table & ~((uintptr_t)page - 1);
    end = ((uintptr_t)table + sizeof(*table) + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    if (mprotect((void *)start, end - start, PROT_READ | PROT_WRITE) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno,
                            "cannot make the plugin's virLockDriverImpl writable");
        return -1;
    }
    plugin_new = table->drvNew;
    plugin_add_resource = table->drvAddResource;
    table->drvNew = shim_new;
    table->drvAddResource = shim_add_resource;
    return 0;
}

void vmc_shim_arm(vmc_shim kind, unsigned int value)
{
    armed_kind = kind;
    armed_value = value;
}

void vmc_shim_disarm(void)
{
    armed_kind = VMC_SHIM_NONE;
}
