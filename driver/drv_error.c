/* drv_error.c: reporting plugin errors through libvirt's virReportErrorHelper, found at run time. */
#include "drv_error.h"

#include <dlfcn.h>

#include "lock_driver_abi.h"
#include "vml_log.h"

/*
 * Set by drvInit, read by every callback, possibly from several libvirtd worker threads: an
 * atomic pointer so a late re-lookup never tears.  A forked child inherits the value.
 */
static virReportErrorHelperFunc report_helper;

void drv_error_init(void)
{
    virReportErrorHelperFunc helper;
    void *sym = dlsym(RTLD_DEFAULT, "virReportErrorHelper");

    /* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
    *(void **)(&helper) = sym;
    __atomic_store_n(&report_helper, helper, __ATOMIC_RELEASE);
    VML_DEBUG("errors go to %s", helper != NULL ? "libvirt" : "the log");
}

bool drv_error_has_libvirt(void)
{
    return __atomic_load_n(&report_helper, __ATOMIC_ACQUIRE) != NULL;
}

void drv_error_report_at(const vml_error *err, const char *file, const char *func, int line)
{
    virReportErrorHelperFunc helper = __atomic_load_n(&report_helper, __ATOMIC_ACQUIRE);

    if (err == NULL || err->code == 0)
        return;
    if (helper == NULL) {
        vml_log_message(VML_LOG_ERROR, func, line, "%s", err->message);
        return;
    }
    helper(err->domain, err->code, file, func, (size_t)line, "%s", err->detail);
}
