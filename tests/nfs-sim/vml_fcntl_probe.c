/* vml_fcntl_probe.c: vml-fcntl-probe, a small fcntl lock tool for the multi-host tests (hold, try, wait, getlk, write-verify). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Every mode locks byte 0, length 1 (like vmlockd), as a classic POSIX lock or, with --ofd,
 * an OFD lock; --shared takes a read lock instead of a write lock.
 *
 * Exit status: 0 done/granted, 1 refused (EAGAIN/EACCES), 2 any other error (the errno name
 * is printed on stdout), 64 usage.
 *
 * hold: take the lock without waiting (--wait: F_SETLKW), announce "ready" (on --ready-fd N,
 * else stdout), then obey commands read line by line from stdin, answering one line each:
 *   write | read | fsync     pwrite/pread 512 bytes at offset 4096 (write also fsyncs) -> ok | ERRNO
 *   close-other              open and close a second descriptor of the file -> ok | ERRNO
 *   unlock | relock          drop / take the lock again without waiting -> ok | ERRNO
 *   close                    close the locking descriptor -> ok
 *   getlk                    F_GETLK (or F_OFD_GETLK) from this process -> as the getlk mode
 *   exit                     exit 0 (so does end of input)
 * wait: SIGUSR1 interrupts the F_SETLKW (it then fails with EINTR).
 * With --keep-going, a failed first lock is reported (as the first line, instead of "ready")
 * and the descriptor stays open for the commands.
 *
 * pidwait PID [--timeout SECS]: wait (on a pidfd, no polling) until process PID is gone;
 * exit 0, or 3 when it is still there after the timeout (default 10 s).
 */

typedef struct probe_opts {
    const char *path;
    bool ofd;
    bool shared;
    bool wait;
    bool keep_going;
    int ready_fd;
    long timeout_s;
    long long size;
} probe_opts;

static const struct {
    int num;
    const char *name;
} errno_names[] = {
    { EAGAIN, "EAGAIN" }, { EACCES, "EACCES" }, { EINTR, "EINTR" }, { EIO, "EIO" },
    { ENOLCK, "ENOLCK" }, { EDEADLK, "EDEADLK" }, { ENOENT, "ENOENT" }, { ESTALE, "ESTALE" },
    { EBADF, "EBADF" }, { EINVAL, "EINVAL" }, { ETIMEDOUT, "ETIMEDOUT" }, { ENOTCONN, "ENOTCONN" },
    { EPERM, "EPERM" }, { ENOSPC, "ENOSPC" }, { EEXIST, "EEXIST" }, { ENOMEM, "ENOMEM" },
    { EROFS, "EROFS" }, { ELOOP, "ELOOP" }, { EISDIR, "EISDIR" }, { ENOTDIR, "ENOTDIR" },
    { ENOSYS, "ENOSYS" }, { EBADFD, "EBADFD" }, { ECONNREFUSED, "ECONNREFUSED" },
};

static const char *errno_name(int err)
{
    static char buf[32];

    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
        if (errno_names[i].num == err)
            return errno_names[i].name;
    }
    snprintf(buf, sizeof(buf), "E%d", err);
    return buf;
}

static int exit_for(int err)
{
    return (err == EAGAIN || err == EACCES) ? 1 : 2;
}

static int lock_cmd(const probe_opts *o, bool wait)
{
    if (o->ofd)
        return wait ? F_OFD_SETLKW : F_OFD_SETLK;
    return wait ? F_SETLKW : F_SETLK;
}

/* fcntl a lock of type on byte 0; returns 0 or an errno. */
static int do_lock(int fd, const probe_opts *o, short type, bool wait)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    return fcntl(fd, lock_cmd(o, wait), &fl) < 0 ? errno : 0;
}

static int open_file(const probe_opts *o)
{
    int fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0)
        printf("%s\n", errno_name(errno));
    return fd;
}

/* Print what F_GETLK says about byte 0.  Returns 0 or an errno. */
static int print_getlk(int fd, const probe_opts *o)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = o->shared ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = 1;
    if (fcntl(fd, o->ofd ? F_OFD_GETLK : F_GETLK, &fl) < 0)
        return errno;
    if (fl.l_type == F_UNLCK)
        printf("unlocked\n");
    else
        printf("locked type=%s pid=%d start=%lld len=%lld\n", fl.l_type == F_WRLCK ? "W" : "R",
               (int)fl.l_pid, (long long)fl.l_start, (long long)fl.l_len);
    return 0;
}

static void answer(int err)
{
    printf("%s\n", err == 0 ? "ok" : errno_name(err));
    fflush(stdout);
}

static int run_hold(const probe_opts *o)
{
    char line[128];
    char block[512];
    int fd = open_file(o);
    int err;

    if (fd < 0)
        return 2;
    err = do_lock(fd, o, o->shared ? F_RDLCK : F_WRLCK, o->wait);
    if (err != 0 && !o->keep_going) {
        printf("%s\n", errno_name(err));
        return exit_for(err);
    }
    if (err != 0) {
        printf("%s\n", errno_name(err));
        fflush(stdout);
    } else if (o->ready_fd >= 0) {
        if (write(o->ready_fd, "ready\n", 6) != 6)
            return 2;
        close(o->ready_fd);
    } else {
        printf("ready\n");
        fflush(stdout);
    }
    memset(block, 'x', sizeof(block));
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "write") == 0) {
            if (pwrite(fd, block, sizeof(block), 4096) != (ssize_t)sizeof(block))
                answer(errno);
            else
                answer(fsync(fd) < 0 ? errno : 0);
        } else if (strcmp(line, "read") == 0) {
            answer(pread(fd, block, sizeof(block), 4096) < 0 ? errno : 0);
        } else if (strcmp(line, "fsync") == 0) {
            answer(fsync(fd) < 0 ? errno : 0);
        } else if (strcmp(line, "close-other") == 0) {
            int other = open(o->path, O_RDONLY | O_CLOEXEC);

            answer(other < 0 ? errno : (close(other) < 0 ? errno : 0));
        } else if (strcmp(line, "unlock") == 0) {
            answer(do_lock(fd, o, F_UNLCK, false));
        } else if (strcmp(line, "relock") == 0) {
            answer(do_lock(fd, o, o->shared ? F_RDLCK : F_WRLCK, false));
        } else if (strcmp(line, "close") == 0) {
            answer(close(fd) < 0 ? errno : 0);
            fd = -1;
        } else if (strcmp(line, "getlk") == 0) {
            err = print_getlk(fd, o);
            if (err != 0)
                answer(err);
            fflush(stdout);
        } else if (strcmp(line, "exit") == 0) {
            break;
        } else {
            printf("unknown command '%s'\n", line);
            fflush(stdout);
        }
    }
    return 0;
}

static void on_usr1(int signo)
{
    (void)signo;    /* only there to interrupt F_SETLKW with EINTR */
}

static int run_lock_once(const probe_opts *o, bool wait)
{
    int fd = open_file(o);
    int err;

    if (fd < 0)
        return 2;
    err = do_lock(fd, o, o->shared ? F_RDLCK : F_WRLCK, wait);
    printf("%s\n", err == 0 ? "granted" : errno_name(err));
    close(fd);
    return err == 0 ? 0 : exit_for(err);
}

static int run_getlk(const probe_opts *o)
{
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    int err;

    if (fd < 0) {
        printf("%s\n", errno_name(errno));
        return 2;
    }
    err = print_getlk(fd, o);
    if (err != 0)
        printf("%s\n", errno_name(err));
    close(fd);
    return err == 0 ? 0 : 2;
}

/* Write a pattern, fsync, close, then read it back through a new descriptor. */
static int run_write_verify(const probe_opts *o)
{
    size_t size = (size_t)o->size;
    unsigned char *want = malloc(size);
    unsigned char *got = malloc(size);
    size_t done = 0;
    int fd = -1;
    int ret = 2;

    if (want == NULL || got == NULL) {
        printf("ENOMEM\n");
        goto out;
    }
    for (size_t i = 0; i < size; i++)
        want[i] = (unsigned char)(i * 7 + 3);
    fd = open(o->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, want, size) != (ssize_t)size || fsync(fd) < 0 || close(fd) < 0) {
        printf("%s\n", errno_name(errno));
        fd = -1;
        goto out;
    }
    fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("%s\n", errno_name(errno));
        goto out;
    }
    while (done < size) {
        ssize_t n = read(fd, got + done, size - done);

        if (n <= 0) {
            printf("%s\n", n < 0 ? errno_name(errno) : "short read");
            goto out;
        }
        done += (size_t)n;
    }
    if (memcmp(want, got, size) != 0) {
        printf("mismatch\n");
        goto out;
    }
    printf("ok\n");
    ret = 0;

out:
    if (fd >= 0)
        close(fd);
    free(got);
    free(want);
    return ret;
}

/* Wait for an arbitrary process (not necessarily our child) to go away. */
static int run_pidwait(const char *pid_text, long timeout_s)
{
    char *end = NULL;
    long pid = strtol(pid_text, &end, 10);
    struct pollfd pfd;
    int fd;
    int n;

    if (*end != '\0' || pid <= 0 || pid > INT_MAX) {
        fprintf(stderr, "vml-fcntl-probe: '%s' is not a process id\n", pid_text);
        return 64;
    }
    fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0) {
        if (errno == ESRCH) {
            printf("gone\n");
            return 0;
        }
        printf("%s\n", errno_name(errno));
        return 2;
    }
    pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
    do {
        n = poll(&pfd, 1, (int)(timeout_s * 1000));
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n == 0) {
        printf("still running\n");
        return 3;
    }
    printf("gone\n");
    return 0;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: vml-fcntl-probe hold PATH [--ofd] [--shared] [--wait] [--keep-going] [--ready-fd N]\n"
            "       vml-fcntl-probe try PATH [--ofd] [--shared]      exit 0 granted, 1 EAGAIN, 2 error\n"
            "       vml-fcntl-probe wait PATH [--ofd] [--shared]     F_SETLKW, then release and exit\n"
            "       vml-fcntl-probe getlk PATH [--ofd] [--shared]\n"
            "       vml-fcntl-probe write-verify PATH [--size BYTES]\n"
            "       vml-fcntl-probe pidwait PID [--timeout SECS]     exit 0 gone, 3 still running\n");
}

int main(int argc, char **argv)
{
    probe_opts o = { .ready_fd = -1, .size = 1 << 20, .timeout_s = 10 };
    const char *mode;

    if (argc < 3) {
        usage(stderr);
        return 64;
    }
    mode = argv[1];
    o.path = argv[2];
    for (int i = 3; i < argc; i++) {
        char *end = NULL;

        if (strcmp(argv[i], "--ofd") == 0) {
            o.ofd = true;
        } else if (strcmp(argv[i], "--shared") == 0) {
            o.shared = true;
        } else if (strcmp(argv[i], "--wait") == 0) {
            o.wait = true;
        } else if (strcmp(argv[i], "--keep-going") == 0) {
            o.keep_going = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            o.timeout_s = strtol(argv[++i], &end, 10);
            if (*end != '\0' || o.timeout_s <= 0 || o.timeout_s > 3600) {
                fprintf(stderr, "vml-fcntl-probe: --timeout '%s' is not 1..3600 seconds\n", argv[i]);
                return 64;
            }
        } else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);

            if (*end != '\0' || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
                fprintf(stderr, "vml-fcntl-probe: --ready-fd '%s' is not an open descriptor\n", argv[i]);
                return 64;
            }
            o.ready_fd = (int)v;
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            o.size = strtoll(argv[++i], &end, 10);
            if (*end != '\0' || o.size <= 0 || o.size > (64LL << 20)) {
                fprintf(stderr, "vml-fcntl-probe: --size '%s' is not 1..64 MiB\n", argv[i]);
                return 64;
            }
        } else {
            fprintf(stderr, "vml-fcntl-probe: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 64;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "hold") == 0)
        return run_hold(&o);
    if (strcmp(mode, "try") == 0)
        return run_lock_once(&o, false);
    if (strcmp(mode, "wait") == 0) {
        /* SIGUSR1 interrupts the wait (no SA_RESTART): fcntl then fails with EINTR. */
        struct sigaction sa = { .sa_handler = on_usr1 };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        return run_lock_once(&o, true);
    }
    if (strcmp(mode, "getlk") == 0)
        return run_getlk(&o);
    if (strcmp(mode, "pidwait") == 0)
        return run_pidwait(o.path, o.timeout_s);
    if (strcmp(mode, "write-verify") == 0)
        return run_write_verify(&o);
    fprintf(stderr, "vml-fcntl-probe: unknown mode '%s'\n", mode);
    usage(stderr);
    return 64;
}
