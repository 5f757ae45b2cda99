/* vmb_floor.c: a minimal connect-lock-reply lock daemon (one poll loop, OFD locks) and its client: the benchmark's floor. */
#include "vmb_floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_MAX_CLIENTS 64
#define FLOOR_MESSAGE_MAX 4096
#define FLOOR_LOCK 'L'
#define FLOOR_UNLOCK 'U'

/* A client of the floor daemon: what it has read of its one request. */
typedef struct floor_client {
    int fd;
    size_t got;
    unsigned char buf[FLOOR_MESSAGE_MAX];
} floor_client;

static double now_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
}

/* Apply one request (op, path): the reply status is 0 or an errno value. */
static uint32_t floor_apply(unsigned char op, const char *path, int *lock_fd)
{
    struct flock fl = { .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

    if (op == FLOOR_LOCK) {
        int fd;

        if (*lock_fd >= 0)
            return EBUSY;
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return (uint32_t)errno;
        fl.l_type = F_WRLCK;
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            uint32_t status = (uint32_t)errno;

            close(fd);
            return status;
        }
        *lock_fd = fd;
        return 0;
    }
    if (op == FLOOR_UNLOCK) {
        if (*lock_fd < 0)
            return ENOLCK;
        fl.l_type = F_UNLCK;
        (void)fcntl(*lock_fd, F_OFD_SETLK, &fl);
        close(*lock_fd);
        *lock_fd = -1;
        return 0;
    }
    return EINVAL;
}

/* Read what is there; once the request is whole, answer it.  -1: drop the client. */
static int floor_serve(floor_client *client, int *lock_fd)
{
    uint32_t length;
    uint32_t status;
    ssize_t n = read(client->fd, client->buf + client->got, sizeof(client->buf) - client->got);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    client->got += (size_t)n;
    if (client->got < 5)
        return 0;
    memcpy(&length, client->buf, sizeof(length));
    length = ntohl(length);
    if (length < 5 || length >= sizeof(client->buf))
        return -1;
    if (client->got < length)
        return 0;
    client->buf[length] = '\0';
    status = htonl(floor_apply(client->buf[4], (const char *)client->buf + 5, lock_fd));
    client->got = 0;
    return write(client->fd, &status, sizeof(status)) == (ssize_t)sizeof(status) ? 0 : -1;
}

static void __attribute__((noreturn)) floor_main(int listen_fd)
{
    floor_client clients[FLOOR_MAX_CLIENTS];
    struct pollfd pfds[FLOOR_MAX_CLIENTS + 1];
    int lock_fd = -1;

    for (size_t i = 0; i < FLOOR_MAX_CLIENTS; i++)
        clients[i].fd = -1;
    for (;;) {
        nfds_t n = 0;

        pfds[n].fd = listen_fd;
        pfds[n++].events = POLLIN;
        for (size_t i = 0; i < FLOOR_MAX_CLIENTS; i++) {
            pfds[n].fd = clients[i].fd;     /* -1 entries are ignored by poll */
            pfds[n++].events = POLLIN;
        }
        if (poll(pfds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        for (size_t i = 0; i < FLOOR_MAX_CLIENTS; i++) {
            if (clients[i].fd >= 0 && (pfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) &&
                floor_serve(&clients[i], &lock_fd) < 0) {
                close(clients[i].fd);
                clients[i].fd = -1;
            }
        }
        if (pfds[0].revents & POLLIN) {
            struct ucred cred;
            socklen_t len = sizeof(cred);
            int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            size_t slot = 0;

            if (fd < 0)
                continue;
            /* Every lock daemon checks who its peer is. */
            if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
                cred.uid != geteuid()) {
                close(fd);
                continue;
            }
            while (slot < FLOOR_MAX_CLIENTS && clients[slot].fd >= 0)
                slot++;
            if (slot == FLOOR_MAX_CLIENTS) {
                close(fd);
                continue;
            }
            clients[slot].fd = fd;
            clients[slot].got = 0;
        }
    }
}

int vmb_floor_start(const char *dir, vmb_floor *floor, vml_error *err)
{
    struct sockaddr_un addr;
    int listen_fd = -1;
    int fd;
    pid_t child;
    int len;
    int ret = -1;

    memset(floor, 0, sizeof(*floor));
    len = snprintf(floor->sock_path, sizeof(floor->sock_path), "%s/floor-sock", dir);
    if (len < 0 || (size_t)len >= sizeof(floor->sock_path)) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                      "directory %s is too long for a socket path", dir);
        goto out;
    }
    snprintf(floor->lock_path, sizeof(floor->lock_path), "%s/floor.img", dir);
    fd = open(floor->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create %s", floor->lock_path);
        goto out;
    }
    close(fd);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, floor->sock_path, strlen(floor->sock_path) + 1);
    (void)unlink(floor->sock_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(listen_fd, 30) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot listen on %s", floor->sock_path);
        goto out;
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork the floor daemon");
        goto out;
    }
    if (child == 0) {
        signal(SIGPIPE, SIG_IGN);
        floor_main(listen_fd);
    }
    floor->pid = child;
    ret = 0;
 out:
    if (listen_fd >= 0)
        close(listen_fd);
    return ret;
}

/* connect, send (op, path), read the status, close: the client-side time in *us. */
static int floor_round_trip(const vmb_floor *floor, unsigned char op, double *us,
                            vml_error *err)
{
    unsigned char msg[FLOOR_MESSAGE_MAX];
    size_t path_len = strlen(floor->lock_path);
    struct sockaddr_un addr;
    uint32_t length = (uint32_t)(5 + path_len);
    uint32_t status = 0;
    size_t got = 0;
    double start = now_us();
    int fd = -1;
    int ret = -1;

    if (length >= sizeof(msg)) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG, "floor lock path too long");
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, floor->sock_path, strlen(floor->sock_path) + 1);
    length = htonl(length);
    memcpy(msg, &length, sizeof(length));
    msg[4] = op;
    memcpy(msg + 5, floor->lock_path, path_len);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot connect to the floor daemon");
        goto out;
    }
    if (write(fd, msg, 5 + path_len) != (ssize_t)(5 + path_len)) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot write to the floor daemon");
        goto out;
    }
    while (got < sizeof(status)) {
        ssize_t n = read(fd, (char *)&status + got, sizeof(status) - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_RPC, "the floor daemon hung up");
            goto out;
        }
        got += (size_t)n;
    }
    close(fd);
    fd = -1;
    *us = now_us() - start;
    status = ntohl(status);
    if (status != 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, (int)status, "the floor daemon refused '%c'",
                            op);
        goto out;
    }
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    return ret;
}

int vmb_floor_cycle(const vmb_floor *floor, double *lock_us, double *unlock_us, vml_error *err)
{
    if (floor_round_trip(floor, FLOOR_LOCK, lock_us, err) < 0 ||
        floor_round_trip(floor, FLOOR_UNLOCK, unlock_us, err) < 0)
        return -1;
    return 0;
}

void vmb_floor_stop(vmb_floor *floor)
{
    if (floor == NULL || floor->pid <= 0)
        return;
    kill(floor->pid, SIGKILL);
    while (waitpid(floor->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    floor->pid = 0;
    (void)unlink(floor->sock_path);
}
