/* vml_child.h: starting a program from the plugin (lvs, scsi_id, the daemon) and how forked children end. */
#ifndef VML_CHILD_H
#define VML_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

/* End a forked child with status: like _exit() (no atexit handlers of the parent, no second
 * flush of stdio buffers copied at fork), except that a coverage build first writes the
 * child's gcov counters, so that code run only in children is measured too. */
__attribute__((noreturn)) void vml_child_exit(int status);

/* A program started by vml_child_spawn(); owned by the caller until vml_child_finish(). */
typedef struct vml_child {
    pid_t pid;
    int out_fd;         /* read end of its stdout when captured, else -1 */
    int errno_fd;       /* read end of the exec-failure pipe (EOF once exec succeeded) */
} vml_child;

/*
 * Fork and exec argv[0] (an absolute path) with an empty signal mask and none of the
 * caller's descriptors beyond 0-2 (they are all marked close-on-exec in the child: the
 * plugin runs inside libvirtd, whose descriptors must not leak).  With capture_stdout the
 * program's stdout is a pipe read through child->out_fd and its stdin and stderr are
 * /dev/null; otherwise it keeps the caller's 0-2.  0, or -1 with errno (nothing started).
 */
int vml_child_spawn(const char *const argv[], bool capture_stdout, vml_child *child);

/*
 * Wait for the program and close child's descriptors.  *exec_errno: the errno of a failed
 * exec, else 0; *status: the wait status.  0, or -1 with errno when it cannot be reaped.
 */
int vml_child_finish(vml_child *child, int *exec_errno, int *status);

#endif
