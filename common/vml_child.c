/* vml_child.c: starting a program from the plugin (lvs, scsi_id, the daemon) and how forked children end. */
#include "vml_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Defined by libgcov in a -coverage build only; a weak reference is NULL elsewhere. */
extern void __gcov_dump(void) __attribute__((weak));

void vml_child_exit(int status)
{
    if (__gcov_dump != NULL)
        __gcov_dump();
    _exit(status);
}

/* In the child of fork(): only async-signal-safe calls.  An exec failure's errno goes to
 * errno_fd (close-on-exec, so the parent reads EOF when the exec succeeds). */
__attribute__((noreturn))
static void exec_child(const char *const argv[], int out_fd, int errno_fd)
{
    sigset_t none;
    int errnum;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (out_fd >= 0) {
        int null_fd;

        /* stdout first: should out_fd be 0 or 2, it is copied before being overwritten. */
        if (dup2(out_fd, STDOUT_FILENO) < 0 ||
            (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
            dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0)
            goto failed;
    }
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    execv(argv[0], (char *const *)argv);
 failed:
    errnum = errno;
    /* Nothing more can be told to the parent if this write fails: the exit code still says it. */
    if (write(errno_fd, &errnum, sizeof(errnum)) != (ssize_t)sizeof(errnum))
        vml_child_exit(126);
    vml_child_exit(127);
}

static void close_if_open(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int vml_child_spawn(const char *const argv[], bool capture_stdout, vml_child *child)
{
    int out_pipe[2] = { -1, -1 };
    int errno_pipe[2] = { -1, -1 };
    int saved;

    child->pid = -1;
    child->out_fd = child->errno_fd = -1;
    if ((capture_stdout && pipe2(out_pipe, O_CLOEXEC) < 0) || pipe2(errno_pipe, O_CLOEXEC) < 0)
        goto fail;
    child->pid = fork();
    if (child->pid < 0)
        goto fail;
    if (child->pid == 0)
        exec_child(argv, out_pipe[1], errno_pipe[1]);
    close(errno_pipe[1]);
    close_if_open(&out_pipe[1]);
    child->out_fd = out_pipe[0];
    child->errno_fd = errno_pipe[0];
    return 0;
 fail:
    saved = errno;
    for (int i = 0; i < 2; i++) {
        close_if_open(&out_pipe[i]);
        close_if_open(&errno_pipe[i]);
    }
    errno = saved;
    return -1;
}

int vml_child_finish(vml_child *child, int *exec_errno, int *status)
{
    ssize_t n;
    pid_t reaped;
    int saved;

    *exec_errno = 0;
    *status = 0;
    do {
        n = read(child->errno_fd, exec_errno, sizeof(*exec_errno));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(*exec_errno))
        *exec_errno = 0;
    do {
        reaped = waitpid(child->pid, status, 0);
    } while (reaped < 0 && errno == EINTR);
    saved = errno;
    close_if_open(&child->out_fd);
    close_if_open(&child->errno_fd);
    child->pid = -1;
    errno = saved;
    return reaped < 0 ? -1 : 0;
}
