/* drv_error.h: hands the plugin's errors to libvirt (its thread-local "last error"), or to the log outside libvirt. */
#ifndef DRV_ERROR_H
#define DRV_ERROR_H

#include <stdbool.h>

#include "vml_error.h"

/*
 * Look up libvirt's private virReportErrorHelper in the hosting process with
 * dlsym(RTLD_DEFAULT): the plugin never links libvirt.so, whose private symbol versions change
 * with every release.  Called from drvInit; calling it again repeats the lookup (cheap, and a
 * host that dlopen'ed libvirt late is then seen).  The pointer is process-wide state: this
 * module is a singleton because the hosting process has one libvirt.
 */
void drv_error_init(void);

/* True when errors go to libvirt rather than to the log (for tests and debug messages). */
bool drv_error_has_libvirt(void);

/*
 * Report err (borrowed; ignored when its code is 0).  libvirt gets (domain, code, detail) and
 * adds the code's prefix itself, so the user sees the same text as err->message.  Without
 * libvirt, err->message is logged at error level.  file/func/line name the reporting site.
 * Safe in a child forked from a multi-threaded libvirtd as far as libvirt's own lockd.so is:
 * libvirt's error helper only touches thread-local storage and malloc.
 */
void drv_error_report_at(const vml_error *err, const char *file, const char *func, int line);

#define drv_error_report(err) drv_error_report_at((err), __FILE__, __func__, __LINE__)

#endif
