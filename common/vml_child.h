/* vml_child.h: how a forked child of the daemon or the plugin ends. */
#ifndef VML_CHILD_H
#define VML_CHILD_H

/* End a forked child with status: like _exit() (no atexit handlers of the parent, no second
 * flush of stdio buffers copied at fork), except that a coverage build first writes the
 * child's gcov counters, so that code run only in children is measured too. */
__attribute__((noreturn)) void vml_child_exit(int status);

#endif
