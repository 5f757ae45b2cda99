/* lt_hang.c: run a command whose stat calls on paths containing a marker can be held (seccomp user notification), to play storage that stops answering, for the lifetime tests. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * usage: lt_hang MARKER -- COMMAND [ARGS...]
 *
 * COMMAND, and every process it forks from then on (a daemon, its keeper, its probes),
 * runs under a seccomp filter that hands each newfstatat (stat, lstat, fstat) to this
 * supervisor, which lets it go on, or, once told to, holds it: the caller blocks in the
 * kernel as on a hung hard NFS mount.  Lines on stdout:
 *   exit N          COMMAND returned N (vmlockd -d returns once it listens)
 *   hanging         acknowledges "hang"
 *   held PID PATH   a call is being held (the first one of each process)
 *   released N      acknowledges "release": N held calls went on
 * Commands on stdin:
 *   hang PID        from now on hold every stat of a path containing MARKER made by any
 *                   process but PID (the daemon itself must keep serving)
 *   release         let every held call go on, and hold no more
 * Ends once no process uses the filter any more (they all exited).  Exit status 2 for a
 * usage error, 3 when seccomp user notification is not available here (a skip).
 */

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#endif

#define HELD_MAX 256

#if defined(THIS_ARCH) && defined(__NR_newfstatat)

static int install_filter(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_newfstatat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                        &prog);
}

static int send_fd(int sock, int fd)
{
    char byte = 'x';
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof(u.buf) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

    memset(u.buf, 0, sizeof(u.buf));
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof(u.buf) };
    struct cmsghdr *cmsg;
    int fd = -1;

    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == NULL || cmsg->cmsg_type != SCM_RIGHTS)
        return -1;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

/* The path argument of the held call (newfstatat's second), read from the caller. */
static void read_path(pid_t pid, unsigned long long addr, char *out, size_t len)
{
    char mem[64];
    ssize_t n;
    int fd;

    out[0] = '\0';
    snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)pid);
    fd = open(mem, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = pread(fd, out, len - 1, (off_t)addr);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

static void answer(int notify, unsigned long long id)
{
    struct seccomp_notif_resp resp = { .id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };

    /* ENOENT: the caller is gone (killed while held); nothing to answer. */
    ioctl(notify, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int main(int argc, char **argv)
{
    const char *marker;
    unsigned long long held[HELD_MAX];
    pid_t held_pid[HELD_MAX];
    size_t nheld = 0;
    pid_t spare = -1, child;
    char line[256];
    size_t line_len = 0;
    bool stdin_open = true;
    int sv[2], notify, status;

    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: lt_hang MARKER -- COMMAND [ARGS...]\n");
        return 2;
    }
    marker = argv[1];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 3;
    child = fork();
    if (child == 0) {
        int fd = install_filter();

        if (fd < 0 || send_fd(sv[1], fd) < 0)
            _exit(126);
        close(fd);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    close(sv[1]);
    notify = child > 0 ? recv_fd(sv[0]) : -1;
    close(sv[0]);
    if (notify < 0) {
        fprintf(stderr, "lt_hang: seccomp user notification is not available\n");
        if (child > 0)
            waitpid(child, NULL, 0);
        return 3;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        struct pollfd pfd[2] = { { .fd = notify, .events = POLLIN },
                                 { .fd = stdin_open ? 0 : -1, .events = POLLIN } };

        if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
            printf("exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            child = -1;
        }
        if (poll(pfd, 2, child > 0 ? 10 : -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            struct seccomp_notif req;
            char path[4096];

            memset(&req, 0, sizeof(req));
            if (ioctl(notify, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                continue;
            read_path((pid_t)req.pid, req.data.args[1], path, sizeof(path));
            if (ioctl(notify, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) < 0)
                continue;
            if (spare > 0 && (pid_t)req.pid != spare && strstr(path, marker) != NULL &&
                nheld < HELD_MAX) {
                bool first = true;

                for (size_t i = 0; i < nheld; i++)
                    first = first && held_pid[i] != (pid_t)req.pid;
                held[nheld] = req.id;
                held_pid[nheld++] = (pid_t)req.pid;
                if (first)
                    printf("held %u %s\n", req.pid, path);
            } else {
                answer(notify, req.id);
            }
        } else if (pfd[0].revents & (POLLHUP | POLLERR)) {
            break;      /* every process under the filter has exited */
        }
        if (pfd[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, line + line_len, sizeof(line) - 1 - line_len);

            if (n <= 0) {
                stdin_open = false;
                continue;
            }
            line_len += (size_t)n;
            line[line_len] = '\0';
            for (char *nl; (nl = strchr(line, '\n')) != NULL;) {
                *nl = '\0';
                if (strncmp(line, "hang ", 5) == 0) {
                    spare = (pid_t)atoi(line + 5);
                    printf("hanging\n");
                } else if (strcmp(line, "release") == 0) {
                    for (size_t i = 0; i < nheld; i++)
                        answer(notify, held[i]);
                    printf("released %zu\n", nheld);
                    nheld = 0;
                    spare = -1;
                }
                line_len -= (size_t)(nl + 1 - line);
                memmove(line, nl + 1, line_len + 1);
            }
        }
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    return 0;
}

#else

int main(void)
{
    fprintf(stderr, "lt_hang: not supported on this architecture\n");
    return 3;
}

#endif
