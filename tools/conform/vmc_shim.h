/* vmc_shim.h: interposition on a plugin's own callback table, to make calls libvirt never makes through the plug-in host. */
#ifndef VMC_SHIM_H
#define VMC_SHIM_H

#include "lock_driver_abi.h"
#include "vml_error.h"
#include "vmc_worker.h"

/*
 * The plug-in host only makes calls shaped like libvirt's (five drvNew params, DOMAIN and DISK
 * types), and captures the plugin's errors only around its own calls.  To check that a plugin
 * refuses an unknown param key or an unknown object or resource type, and to see the error it
 * reports, the suite swaps the plugin's drvNew and drvAddResource entries for wrappers that
 * alter the arguments while armed, then call the plugin's own function.  The plug-in host
 * still makes the call, so its error capture applies.
 *
 * This module is a singleton by nature (one plugin table per worker process) and is used only
 * in a worker, a disposable process.
 */

/* Patch driver (the plugin's exported table, made writable for the patch).  Once per process. */
int vmc_shim_install(const virLockDriver *driver, vml_error *err);

/*
 * Alter the next drvNew (EXTRA_PARAM: a sixth param with an unknown key; OBJECT_TYPE: type
 * value) or every drvAddResource (RESOURCE_TYPE: type value) until vmc_shim_disarm().
 */
void vmc_shim_arm(vmc_shim kind, unsigned int value);

void vmc_shim_disarm(void);

#endif
