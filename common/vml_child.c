/* vml_child.c: how a forked child of the daemon or the plugin ends. */
#include "vml_child.h"

#include <unistd.h>

/* Defined by libgcov in a -coverage build only; a weak reference is NULL elsewhere. */
extern void __gcov_dump(void) __attribute__((weak));

void vml_child_exit(int status)
{
    if (__gcov_dump != NULL)
        __gcov_dump();
    _exit(status);
}
