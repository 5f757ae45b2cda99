/* dmn_server.c: listening sockets, clients with non-blocking framing, owner pidfds, timers, all in one poll loop. */
#include "dmn_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vml_log.h"
#include "vml_wire.h"
#include "dmn_check.h"
#include "dmn_dispatch.h"
#include "dmn_handover.h"
#include "dmn_keeper.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

#define LISTEN_BACKLOG 128
#define INPUT_FIRST_CHUNK 65536
/* The first read of a message: a 1-disk request (about 200 bytes) arrives whole. */
#define INPUT_FIRST_READ 4096

/* Process-wide signal state (one loop per process): set by handlers, read by the loop. */
static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t usr1_signal;
static int signal_pipe_write = -1;

typedef struct listener {
    int fd;
    dmn_socket_kind kind;
    char *path;                 /* set when we bound it: unlinked at exit */
    dev_t dev;                  /* the socket node we bound, to unlink only our own */
    ino_t ino;
    unsigned int max_clients;
    unsigned int nclients;
    /* After accept4() failed for a reason that does not go away by itself (ENOMEM, ENOBUFS,
     * EMFILE without a spare descriptor...): not polled until then (monotonic ms, 0 = no
     * pause), or the level-triggered listener would spin the loop at 100 % CPU. */
    int64_t paused_until_ms;
    unsigned int failures;      /* consecutive failed accepts, for the log */
} listener;

/* How long a listener rests after a failed accept: short enough that a client waiting in the
 * backlog is served soon after the shortage ends. */
#define ACCEPT_BACKOFF_MS 100

/*
 * One connection.  in[0..in_len) holds what was read and not yet dispatched, starting at a
 * message boundary; in_total is that message's length (length word included) once its
 * length word is in, else 0.  The first read of a message asks for INPUT_FIRST_READ bytes,
 * so that a small request costs one read(); it may also take the start of a request sent
 * right behind it (pipelined), which is dispatched in a later round.  Once the length is
 * known, reads never go past the message, and in[] grows only as bytes arrive (a large
 * announced length costs nothing until it is sent).  While out[] holds a reply nothing
 * more is dispatched: one outstanding request per client, as virtlockd.
 */
typedef struct dmn_client {
    int fd;
    listener *via;
    dmn_session session;
    unsigned char *in;
    size_t in_len, in_cap, in_total;
    unsigned char *out;
    size_t out_len, out_sent;
    struct dmn_client *prev, *next;     /* creation order */
} dmn_client;

typedef enum {
    SLOT_SIGNALS,
    SLOT_OWNER,
    SLOT_CHECK,         /* the lease check probe's verdicts */
    SLOT_HELPER,        /* a pause helper's pidfd */
    SLOT_KEEPER,        /* the keeper connection (hangups only) */
    SLOT_LISTENER,
    SLOT_CLIENT,
} slot_kind;

typedef struct poll_slot {
    slot_kind kind;
    void *ptr;
} poll_slot;

struct dmn_server {
    dmn_context ctx;
    dmn_lockspaces *lockspaces;
    dmn_owners *owners;
    dmn_checker *checker;
    dmn_keeper *keeper;         /* NULL: no keeper */
    bool started;               /* serving: an orderly stop releases, else abandon */
    bool reexec_pending;        /* SIGUSR1 waits for a quiet moment */
    const char *exe_path;       /* borrowed from the options (they outlive the server) */
    char *const *argv;
    const char *pid_file;
    int pid_file_fd;
    listener listeners[2];      /* main, admin */
    dmn_client *clients_head, *clients_tail;
    int signal_pipe[2];
    int reserve_fd;             /* spare descriptor to refuse clients when out of fds */
    bool privileged;
    uid_t euid;
    unsigned int timeout_secs;
    int64_t idle_since_ms;      /* -1: not idle */
    bool quit;
    struct pollfd *pfds;
    poll_slot *slots;
    size_t aslots;
};

void dmn_server_on_signal(int signo)
{
    int saved = errno;

    if (signo == SIGUSR1)
        usr1_signal = 1;
    else
        quit_signal = signo;
    if (signal_pipe_write >= 0) {
        ssize_t ignored = write(signal_pipe_write, "", 1);
        (void)ignored;      /* a full pipe already guarantees a wake-up */
    }
    errno = saved;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *socket_name(dmn_socket_kind kind)
{
    return kind == DMN_SOCKET_ADMIN ? "admin" : "main";
}

/* ---- listening sockets ---- */

/* mkdir -p of the directory holding path, new directories getting exactly mode. */
static int make_socket_dir(const char *path, mode_t mode, vml_error *err)
{
    char *dir = strdup(path);
    char *slash;
    int ret = -1;

    if (dir == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot create the directory of %s", path);
        goto out;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        ret = 0;
        goto out;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, mode) == 0) {
            if (chmod(dir, mode) < 0) {
                vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot set the mode of %s", dir);
                goto out;
            }
        } else if (errno != EEXIST) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create directory %s", dir);
            goto out;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    ret = 0;
 out:
    free(dir);
    return ret;
}

/* Refuse a path another live daemon answers on; remove a stale socket file. */
static int claim_socket_path(const char *path, const struct sockaddr_un *addr, vml_error *err)
{
    struct stat st;
    int fd;
    int ret = -1;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot check socket path %s", path);
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "socket path %s exists and is not a socket", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create a socket");
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "socket %s is already in use by another running daemon", path);
        goto out;
    }
    if (errno != ECONNREFUSED) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot check socket %s", path);
        goto out;
    }
    VML_INFO("removing stale socket %s", path);
    if (unlink(path) < 0 && errno != ENOENT) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot remove stale socket %s", path);
        goto out;
    }
    ret = 0;
 out:
    close(fd);
    return ret;
}

static int listener_bind(listener *l, const char *path, bool privileged, vml_error *err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old_umask;
    int fd = -1;
    int rc;
    int ret = -1;

    if (path == NULL || path[0] != '/' || strlen(path) >= sizeof(addr.sun_path)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                      "%s socket path '%s' must be absolute and shorter than %zu bytes",
                      socket_name(l->kind), path != NULL ? path : "", sizeof(addr.sun_path));
        goto out;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (make_socket_dir(path, privileged ? 0755 : 0700, err) < 0 ||
        claim_socket_path(path, &addr, err) < 0)
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create a socket");
        goto out;
    }
    /* Never a moment with a socket node others could connect to before the chmod. */
    old_umask = umask(077);
    rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_umask);
    if (rc < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot bind socket %s", path);
        goto out;
    }
    if (chmod(path, 0600) < 0 || stat(path, &st) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot set up socket %s", path);
        unlink(path);
        goto out;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot listen on socket %s", path);
        unlink(path);
        goto out;
    }
    if ((l->path = strdup(path)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot record socket %s", path);
        unlink(path);
        goto out;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->fd = fd;
    fd = -1;
    VML_INFO("listening on %s socket %s", socket_name(l->kind), path);
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Take over a socket-activated fd after checking it is a listening UNIX stream socket. */
static int listener_adopt(listener *l, int fd, vml_error *err)
{
    int type = 0, domain = 0, accepting = 0;
    socklen_t len = sizeof(int);
    int fl;

    l->fd = fd;     /* owned from here on, even on error */
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0 ||
        (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len)) < 0 ||
        type != SOCK_STREAM || domain != AF_UNIX || !accepting) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                      "activation fd %d for the %s socket is not a listening UNIX stream socket",
                      fd, socket_name(l->kind));
        return -1;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot set up activation fd %d", fd);
        return -1;
    }
    VML_INFO("serving the %s socket on activation fd %d", socket_name(l->kind), fd);
    return 0;
}

static void listener_close(listener *l)
{
    struct stat st;

    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    /* Unlink only the node we bound: a successor may have replaced a stale-looking one. */
    if (l->path != NULL && lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(l->path);
    free(l->path);
    l->path = NULL;
}

/* ---- clients ---- */

static void client_reset_input(dmn_client *c)
{
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = c->in_total = 0;
}

/* The message of in_total bytes at the front of in[] was dispatched: keep what follows it. */
static void client_consume(dmn_client *c, size_t total)
{
    if (c->in_len <= total) {
        client_reset_input(c);
        return;
    }
    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;
    c->in_total = 0;
}

/* Whether in[] already holds a whole message, or a length word that will close the client:
 * either way client_read has work without reading. */
static bool client_has_message(const dmn_client *c)
{
    size_t total = 0;

    if (c->in_len < VML_RPC_LENGTH_WORD)
        return false;
    if (vml_wire_frame_length(c->in, VML_WIRE_MAX_MESSAGE, &total) < 0)
        return true;
    return c->in_len >= total;
}

static void client_free(dmn_server *s, dmn_client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->clients_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->clients_tail = c->prev;
    c->via->nclients--;
    s->ctx.nclients--;
    close(c->fd);
    client_reset_input(c);
    free(c->out);
    dmn_session_clear(&c->session);
    free(c);
}

/* The owner exited (or was found gone): release everything it held and forget it. */
static void reap_owner(dmn_server *s, dmn_owner *owner)
{
    size_t n = dmn_lockspaces_release_owner(s->lockspaces, owner);

    VML_INFO("owner pid %u (domain '%s') exited: released %zu lease(s)", owner->pid,
             owner->identity.name, n);
    dmn_owners_remove(s->owners, owner);
}

/*
 * Close a connection.  When it was its owner's holder connection and the owner holds
 * leases, the owner is SIGTERMed (then SIGKILLed from a timer) and its leases stay held
 * until its pidfd reports the exit (ARCHITECTURE invariant 6), whatever the reason for the
 * close: EOF, an error, or a dropped malformed message.
 */
static void client_close(dmn_server *s, dmn_client *c, const char *why)
{
    if (why != NULL)
        VML_WARN("dropping client pid %d: %s", (int)c->session.peer_pid, why);
    else
        VML_DEBUG("client pid %d disconnected", (int)c->session.peer_pid);
    if (dmn_session_is_holder(&c->session)) {
        dmn_owner *owner = dmn_owners_find(s->owners, c->session.owner.pid);

        if (owner != NULL &&
            dmn_owners_holder_closed(s->owners, owner, monotonic_ms()) == DMN_HANGUP_GONE)
            reap_owner(s, owner);
    }
    client_free(s, c);
}

/* Send what is queued; returns -1 when the client was closed. */
static int client_flush(dmn_server *s, dmn_client *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            char why[128];
            snprintf(why, sizeof(why), "cannot send the reply: %s", strerror(errno));
            client_close(s, c, errno == EPIPE || errno == ECONNRESET ? NULL : why);
            return -1;
        }
        c->out_sent += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_sent = 0;
    return 0;
}

/* Everything queued for the keeper, now (start-up, re-exec). */
static void keeper_flush(dmn_server *s)
{
    if (s->keeper != NULL)
        dmn_keeper_flush(s->keeper, s->lockspaces, s->owners);
    s->ctx.keeper_pid = dmn_keeper_pid(s->keeper);
}

/* After a request or a loop round: new leases now, DROPs of released ones batched. */
static void keeper_flush_request(dmn_server *s)
{
    if (s->keeper != NULL)
        dmn_keeper_flush_request(s->keeper, s->lockspaces, s->owners);
    s->ctx.keeper_pid = dmn_keeper_pid(s->keeper);
}

/* Send a client's pending reply before the daemon stops: wait for the socket, briefly. */
static void flush_before_stop(dmn_server *s, dmn_client *c)
{
    for (int tries = 0; tries < 100 && c->out != NULL; tries++) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

        if (poll(&pfd, 1, 10) < 0 && errno != EINTR)
            return;
        if (client_flush(s, c) < 0)
            return;
    }
}

static void client_dispatch(dmn_server *s, dmn_client *c)
{
    unsigned char *reply = NULL;
    size_t reply_len = 0;
    char why[256];
    size_t total = c->in_total;
    int rc = dmn_dispatch_message(&s->ctx, &c->session, c->in, total, &reply, &reply_len,
                                  why, sizeof(why));

    s->idle_since_ms = -1;      /* a request: the idle time starts again (check_idle) */
    client_consume(c, total);
    if (rc < 0) {
        client_close(s, c, why);
        return;
    }
    if (reply == NULL)
        return;     /* deferred (CHECK_NOW): answered when its check round is done */
    /* What this request acquired reaches the keeper before the caller hears it is granted
     * (ARCHITECTURE daemon invariant 12).  What it released is unlocked already (explicitly:
     * the keeper's duplicate shares the lock); the keeper hears of it in a later batch. */
    keeper_flush_request(s);
    c->out = reply;
    c->out_len = reply_len;
    c->out_sent = 0;
    if (s->ctx.stop_requested) {
        /* SHUTDOWN: the caller hears how many leases were dropped before we go. */
        flush_before_stop(s, c);
        s->quit = true;
        return;
    }
    client_flush(s, c);
}

/* Frame what in[] holds: in_total set once the length word is in.  1 when a whole message
 * is there, 0 when more is needed, -1 when the client was closed (a bad length). */
static int client_frame(dmn_server *s, dmn_client *c)
{
    if (c->in_total == 0 && c->in_len >= VML_RPC_LENGTH_WORD &&
        vml_wire_frame_length(c->in, VML_WIRE_MAX_MESSAGE, &c->in_total) < 0) {
        char why[128];

        snprintf(why, sizeof(why), "invalid message length %u (must be %d to %d)",
                 ((unsigned int)c->in[0] << 24) | ((unsigned int)c->in[1] << 16) |
                 ((unsigned int)c->in[2] << 8) | c->in[3],
                 VML_WIRE_MIN_MESSAGE, VML_WIRE_MAX_MESSAGE);
        c->in_total = 0;
        client_close(s, c, why);
        return -1;
    }
    return c->in_total != 0 && c->in_len >= c->in_total;
}

/* Make room in in[] for the next read; how many bytes it may take (never past the current
 * message once its length is known), 0 when out of memory. */
static size_t client_room(dmn_client *c)
{
    size_t want = c->in_total == 0 ? INPUT_FIRST_READ : c->in_total;

    if (c->in_len == c->in_cap) {
        size_t cap = c->in_cap < INPUT_FIRST_READ ? INPUT_FIRST_READ : c->in_cap * 2;
        unsigned char *grown;

        if (c->in_total != 0 && cap > c->in_total)
            cap = c->in_total;
        grown = realloc(c->in, cap);
        if (grown == NULL)
            return 0;
        c->in = grown;
        c->in_cap = cap;
    }
    if (want > c->in_cap)
        want = c->in_cap;
    return want - c->in_len;
}

/* Read toward one complete message; dispatch it when complete.  May close the client. */
static void client_read(dmn_server *s, dmn_client *c)
{
    for (;;) {
        ssize_t n;
        size_t room;
        int framed = client_frame(s, c);

        if (framed < 0)
            return;
        if (framed > 0) {
            client_dispatch(s, c);
            return;     /* one request per client per round */
        }
        room = client_room(c);
        if (room == 0) {
            client_close(s, c, "out of memory for its message");
            return;
        }
        n = read(c->fd, c->in + c->in_len, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            char why[128];
            snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
            client_close(s, c, errno == ECONNRESET ? NULL : why);
            return;
        }
        if (n == 0) {
            client_close(s, c, c->in_len > 0 ? "connection closed in the middle of a message"
                                             : NULL);
            return;
        }
        c->in_len += (size_t)n;
    }
}

/* Accept one connection from l; false when there is nothing more to accept this round. */
static bool accept_one(dmn_server *s, listener *l)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    dmn_client *c;
    int saved_errno;
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED)
            return true;
        if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
            /* Free the spare descriptor to take the connection off the queue, or the loop
             * would spin on a listener that stays readable. */
            VML_ERROR("out of file descriptors: refusing a client on the %s socket",
                      socket_name(l->kind));
            close(s->reserve_fd);
            fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
            saved_errno = errno;
            if (fd >= 0)
                close(fd);
            s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                return false;
            errno = saved_errno;
            /* Still failing with the spare descriptor freed: rest, as below. */
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* Logged on the first failure and then every 100th: the pause repeats. */
            if (l->failures++ % 100 == 0)
                VML_ERROR("accept on the %s socket failed: %s; not accepting for %d ms "
                          "(%u failure(s) in a row)", socket_name(l->kind), strerror(errno),
                          ACCEPT_BACKOFF_MS, l->failures);
            l->paused_until_ms = monotonic_ms() + ACCEPT_BACKOFF_MS;
        }
        return false;
    }
    if (l->failures > 0) {
        VML_INFO("accepting on the %s socket again after %u failure(s)", socket_name(l->kind),
                 l->failures);
        l->failures = 0;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        VML_WARN("refusing a client: cannot read its credentials: %s", strerror(errno));
        close(fd);
        return true;
    }
    if (s->privileged ? cred.uid != 0 : cred.uid != s->euid) {
        VML_WARN("refusing client pid %d uid %u: only uid %u may use this daemon",
                 (int)cred.pid, (unsigned int)cred.uid, s->privileged ? 0u : (unsigned int)s->euid);
        close(fd);
        return true;
    }
    if (l->nclients >= l->max_clients) {
        VML_WARN("refusing client pid %d uid %u: the %s socket already has %u clients (max)",
                 (int)cred.pid, (unsigned int)cred.uid, socket_name(l->kind), l->nclients);
        close(fd);
        return true;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        VML_ERROR("refusing client pid %d: out of memory", (int)cred.pid);
        close(fd);
        return true;
    }
    c->fd = fd;
    c->via = l;
    dmn_session_init(&c->session, l->kind, cred.pid, cred.uid);
    c->prev = s->clients_tail;
    if (s->clients_tail != NULL)
        s->clients_tail->next = c;
    else
        s->clients_head = c;
    s->clients_tail = c;
    l->nclients++;
    s->ctx.nclients++;
    VML_DEBUG("client pid %d uid %u connected to the %s socket", (int)cred.pid,
              (unsigned int)cred.uid, socket_name(l->kind));
    return true;
}

/* ---- the loop ---- */

static int ensure_slots(dmn_server *s, size_t n)
{
    struct pollfd *pfds;
    poll_slot *slots;

    if (n <= s->aslots)
        return 0;
    n = n < 64 ? 64 : n * 2;
    pfds = realloc(s->pfds, n * sizeof(pfds[0]));
    if (pfds == NULL)
        return -1;
    s->pfds = pfds;
    slots = realloc(s->slots, n * sizeof(slots[0]));
    if (slots == NULL)
        return -1;
    s->slots = slots;
    s->aslots = n;
    return 0;
}

static void add_slot(dmn_server *s, size_t *n, int fd, short events, slot_kind kind, void *ptr)
{
    s->pfds[*n].fd = fd;
    s->pfds[*n].events = events;
    s->pfds[*n].revents = 0;
    s->slots[*n].kind = kind;
    s->slots[*n].ptr = ptr;
    (*n)++;
}

/* Milliseconds poll may sleep: until the next SIGKILL or the idle deadline, else forever. */
static int poll_timeout(const dmn_server *s, int64_t now)
{
    int64_t deadline = 0;
    bool have = dmn_owners_next_deadline(s->owners, &deadline);

    if (s->timeout_secs > 0 && s->idle_since_ms >= 0) {
        int64_t idle_deadline = s->idle_since_ms + (int64_t)s->timeout_secs * 1000;
        if (!have || idle_deadline < deadline)
            deadline = idle_deadline;
        have = true;
    }
    {
        int64_t check = 0;
        if (dmn_checker_next_deadline(s->checker, &check) && (!have || check < deadline)) {
            deadline = check;
            have = true;
        }
    }
    {
        int64_t drops = 0;
        if (dmn_keeper_next_deadline(s->keeper, &drops) && (!have || drops < deadline)) {
            deadline = drops;
            have = true;
        }
    }
    for (size_t i = 0; i < 2; i++) {
        int64_t resume = s->listeners[i].paused_until_ms;
        if (resume != 0 && (!have || resume < deadline)) {
            deadline = resume;
            have = true;
        }
    }
    if (s->owners->nprobed > 0 || s->owners->nhelpers > 0) {
        /* Owners (and pause helpers) without a pidfd are checked every DMN_OWNER_PROBE_MS. */
        int64_t probe = now + DMN_OWNER_PROBE_MS;
        if (!have || probe < deadline)
            deadline = probe;
        have = true;
    }
    if (!have)
        return -1;
    if (deadline <= now)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/*
 * A client that keeps the daemon from idling out: one registered as an owner (a holder
 * connection), or in the middle of a request or reply.  vmlockd.so keeps one connection open
 * between calls: counting it would keep a daemon started with -t alive for as long as
 * libvirtd runs, and the plugin reconnects (socket activation starts the daemon again).
 */
static bool client_keeps_daemon(const dmn_client *c)
{
    return c->session.registered || c->in_len > 0 || c->out_len > c->out_sent;
}

/* Idle = no lease held, no owner being killed, and no client but quiet ones connected. */
static void check_idle(dmn_server *s, int64_t now)
{
    /* Owners kept idle for their next acquisition do not count; without leases the only
     * other owners are those being killed.  Clients are walked only when the rest holds. */
    bool idle = s->lockspaces->nleases == 0 &&
                (s->owners->count == 0 || dmn_owners_active(s->owners) == 0);

    for (const dmn_client *c = s->clients_head; idle && c != NULL; c = c->next)
        idle = !client_keeps_daemon(c);

    if (s->timeout_secs == 0)
        return;
    if (!idle) {
        s->idle_since_ms = -1;
        return;
    }
    if (s->idle_since_ms < 0)
        s->idle_since_ms = now;
    if (now - s->idle_since_ms >= (int64_t)s->timeout_secs * 1000) {
        VML_INFO("idle for %u seconds with no lease and no active client (%u quiet "
                 "connection(s) closed): exiting", s->timeout_secs, s->ctx.nclients);
        s->quit = true;
    }
}

/* Release the leases of every owner that has exited by now, without waiting for poll. */
static void reap_exited_owners(dmn_server *s)
{
    dmn_owner *next;

    for (dmn_owner *o = s->owners->head; o != NULL; o = next) {
        struct pollfd pfd = { .fd = o->pidfd, .events = POLLIN };

        next = o->next;     /* reaping frees o only */
        if (o->pidfd >= 0 ? poll(&pfd, 1, 0) > 0 : dmn_owner_probe_exited(o))
            reap_owner(s, o);
    }
}

static void handle_signals(dmn_server *s)
{
    char buf[64];

    while (read(s->signal_pipe[0], buf, sizeof(buf)) > 0)
        ;
    if (usr1_signal) {
        usr1_signal = 0;
        if (s->exe_path == NULL) {
            VML_ERROR("SIGUSR1 received, but this daemon cannot re-execute itself (its own "
                      "binary is unknown); carrying on with every lease held");
        } else {
            VML_WARN("SIGUSR1 received: re-executing %s with every lease and connection",
                     s->exe_path);
            s->reexec_pending = true;
        }
    }
    if (quit_signal) {
        int signo = (int)quit_signal;
        char why[256];

        quit_signal = 0;
        /* An owner that died just before the signal must not hold the daemon up. */
        reap_exited_owners(s);
        if (dmn_context_refuse_stop(&s->ctx, why, sizeof(why))) {
            VML_WARN("signal %d received: %s", signo, why);
        } else {
            VML_INFO("signal %d received: shutting down", signo);
            s->quit = true;
        }
    }
}

static void on_lease_lost(void *opaque, dmn_lease *lease, const char *reason)
{
    dmn_server *s = opaque;

    dmn_context_lease_lost(&s->ctx, lease, reason);
}

/* Answer the CHECK_NOW calls whose round is over (or that no round will answer). */
static void answer_deferred(dmn_server *s)
{
    dmn_client *next;

    for (dmn_client *c = s->clients_head; c != NULL; c = next) {
        char why[256];

        next = c->next;
        if (!c->session.deferred ||
            (dmn_checker_rounds_done(s->checker) < c->session.deferred_round &&
             dmn_checker_busy(s->checker)))
            continue;
        if (dmn_dispatch_finish_deferred(&s->ctx, &c->session, &c->out, &c->out_len, why,
                                         sizeof(why)) < 0) {
            client_close(s, c, why);
            continue;
        }
        c->out_sent = 0;
        client_flush(s, c);
    }
}


/* ---- re-exec (SIGUSR1) ---- */

typedef struct handover_generations {
    vml_handover *ho;
    size_t cap;
    bool failed;
} handover_generations;

static void add_generation(const dmn_generation *gen, void *opaque)
{
    handover_generations *walk = opaque;
    vml_ho_generation *out;
    vml_handover *ho = walk->ho;

    if (walk->failed)
        return;
    if (ho->generations.generations_len == walk->cap) {
        size_t cap = walk->cap == 0 ? 64 : walk->cap * 2;
        vml_ho_generation *grown = realloc(ho->generations.generations_val,
                                           cap * sizeof(*grown));
        if (grown == NULL) {
            walk->failed = true;
            return;
        }
        memset(grown + walk->cap, 0, (cap - walk->cap) * sizeof(*grown));
        ho->generations.generations_val = grown;
        walk->cap = cap;
    }
    out = &ho->generations.generations_val[ho->generations.generations_len++];
    out->generation = gen->generation;
    out->run_start = gen->run_start;
    out->last_since_usec = gen->last_since_usec;
    out->last.pid = gen->last_pid;
    memcpy(out->last.uuid, gen->last_uuid, sizeof(out->last.uuid));
    /* key = lockspace, NUL, name */
    if ((out->lockspace = strdup(gen->key)) == NULL ||
        (out->name = strdup(gen->key + strlen(gen->key) + 1)) == NULL ||
        (out->last.name = strdup(gen->last_name != NULL ? gen->last_name : "")) == NULL)
        walk->failed = true;
}

/* Input bytes of c not yet dispatched (length word first) into *out (malloc'd). */
static int client_input(const dmn_client *c, char **out, u_int *len)
{
    const unsigned char *src = c->in;
    size_t n = c->in_len;

    *out = NULL;
    *len = (u_int)n;
    if (n == 0)
        return 0;
    if ((*out = malloc(n)) == NULL)
        return -1;
    memcpy(*out, src, n);
    return 0;
}

/* The whole state as a handover (every string and buffer malloc'd: xdr_free it). */
static int build_handover(dmn_server *s, vml_handover *ho, vml_error *err)
{
    size_t nls = 0, ncl = 0, now = 0;
    int64_t now_ms = monotonic_ms();

    memset(ho, 0, sizeof(*ho));
    ho->magic = VML_HANDOVER_MAGIC;
    ho->format_version = VML_HANDOVER_VERSION;
    ho->pid_file_fd = s->pid_file_fd;
    ho->keeper_fd = dmn_keeper_fd(s->keeper);
    ho->keeper_pid = dmn_keeper_pid(s->keeper);
    ho->epoch = s->lockspaces->epoch;
    ho->next_lease_id = s->lockspaces->next_id;
    ho->next_seq = s->lockspaces->next_seq;
    ho->next_batch = s->lockspaces->next_batch;
    ho->start_usec = s->ctx.start_usec;
    ho->acquires = s->lockspaces->acquires;
    ho->conflicts = s->lockspaces->conflicts;
    ho->owner_kills = s->owners->kills;
    ho->lost_leases = s->lockspaces->lost;
    ho->check_rounds = dmn_checker_rounds_done(s->checker);
    ho->reexecs = s->ctx.reexecs + 1;
    ho->adopted = s->ctx.adopted;
    if ((ho->pid_file = strdup(s->pid_file != NULL ? s->pid_file : "")) == NULL)
        goto nomem;
    for (const dmn_lockspace *ls = s->lockspaces->lockspaces; ls != NULL; ls = ls->next)
        nls += ls->path[0] != '\0';
    ho->lockspaces.lockspaces_val = calloc(nls + 1, sizeof(char *));
    ho->listeners.listeners_val = calloc(2, sizeof(vml_ho_listener));
    ho->clients.clients_val = calloc(s->ctx.nclients + 1, sizeof(vml_ho_client));
    ho->owners.owners_val = calloc(s->owners->count + 1, sizeof(vml_ho_owner));
    ho->leases.leases_val = calloc(s->lockspaces->nleases + 1, sizeof(vml_ho_lease));
    if (ho->lockspaces.lockspaces_val == NULL || ho->listeners.listeners_val == NULL ||
        ho->clients.clients_val == NULL || ho->owners.owners_val == NULL ||
        ho->leases.leases_val == NULL)
        goto nomem;
    for (const dmn_lockspace *ls = s->lockspaces->lockspaces; ls != NULL; ls = ls->next) {
        if (ls->path[0] == '\0')
            continue;
        if ((ho->lockspaces.lockspaces_val[ho->lockspaces.lockspaces_len] = strdup(ls->path)) == NULL)
            goto nomem;
        ho->lockspaces.lockspaces_len++;
    }
    for (size_t i = 0; i < 2; i++) {
        const listener *l = &s->listeners[i];
        vml_ho_listener *out = &ho->listeners.listeners_val[i];

        ho->listeners.listeners_len++;
        out->fd = l->fd;
        out->kind = (int)l->kind;
        out->dev = (uint64_t)l->dev;
        out->ino = (uint64_t)l->ino;
        out->max_clients = l->max_clients;
        if ((out->path = strdup(l->path != NULL ? l->path : "")) == NULL)
            goto nomem;
    }
    for (const dmn_client *c = s->clients_head; c != NULL; c = c->next, ncl++) {
        vml_ho_client *out = &ho->clients.clients_val[ncl];

        ho->clients.clients_len++;
        out->fd = c->fd;
        out->kind = (int)c->via->kind;
        out->peer_pid = (int)c->session.peer_pid;
        out->peer_uid = (u_int)c->session.peer_uid;
        out->registered = c->session.registered;
        out->restricted = c->session.restricted;
        if ((c->session.registered
                 ? dmn_identity_copy(&out->owner, &c->session.owner, err)
                 : ((out->owner.name = strdup("")) == NULL ? -1 : 0)) < 0 ||
            client_input(c, &out->input.input_val, &out->input.input_len) < 0)
            goto nomem;
        if (c->out != NULL && c->out_len > c->out_sent) {
            out->output.output_len = (u_int)(c->out_len - c->out_sent);
            if ((out->output.output_val = malloc(out->output.output_len)) == NULL)
                goto nomem;
            memcpy(out->output.output_val, c->out + c->out_sent, out->output.output_len);
        }
    }
    for (const dmn_owner *o = s->owners->head; o != NULL; o = o->next, now++) {
        vml_ho_owner *out = &ho->owners.owners_val[now];

        ho->owners.owners_len++;
        out->pidfd = o->pidfd;
        out->start_time = o->start_time;
        out->on_lockfailure = o->on_lockfailure;
        out->kill_pending = o->kill_pending;
        out->sigkill_sent = o->sigkill_sent;
        out->sigkill_in_ms = o->kill_pending ? o->sigkill_at_ms - now_ms : 0;
        if (dmn_identity_copy(&out->identity, &o->identity, err) < 0 ||
            (out->uri = strdup(o->uri != NULL ? o->uri : "")) == NULL)
            goto nomem;
    }
    for (const dmn_lease *l = s->lockspaces->head; l != NULL; l = l->next) {
        vml_ho_lease *out = &ho->leases.leases_val[ho->leases.leases_len];

        ho->leases.leases_len++;
        out->fd = l->fd;
        if (dmn_lease_snapshot(l, SIZE_MAX, &out->snap, err) < 0)
            return -1;
    }
    {
        handover_generations walk = { .ho = ho, .failed = false };
        dmn_lockspaces_each_generation(s->lockspaces, add_generation, &walk);
        if (walk.failed)
            goto nomem;
    }
    return 0;
 nomem:
    vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot build the handover");
    return -1;
}

/*
 * SIGUSR1: hand everything to a fresh image of the binary, in this very process (the pid,
 * the pid file lock, every descriptor stay).  Not while a lease check, a pause helper or a
 * deferred CHECK_NOW is under way (they would be orphaned): it waits for the next quiet
 * round.  When anything fails before the exec, the descriptors get their close-on-exec flag
 * back and the daemon carries on; only the new image's own checks can still fail, loudly.
 */
static void try_reexec(dmn_server *s)
{
    vml_handover ho;
    vml_error err = { 0 };
    char **argv = NULL;
    int *fds = NULL;
    size_t nfds = 0;
    int blob = -1;

    if (dmn_checker_busy(s->checker) || s->owners->nhelpers > 0)
        return;
    for (const dmn_client *c = s->clients_head; c != NULL; c = c->next) {
        if (c->session.deferred)
            return;
    }
    s->reexec_pending = false;
    keeper_flush(s);
    if (build_handover(s, &ho, &err) < 0 || dmn_handover_write(&ho, &blob, &err) < 0 ||
        dmn_handover_fds(&ho, &fds, &nfds, &err) < 0)
        goto fail;
    argv = dmn_handover_argv(s->exe_path, s->argv, blob);
    if (argv == NULL) {
        vml_error_set_errno(&err, VIR_FROM_RPC, ENOMEM, "cannot build the command line");
        goto fail;
    }
    VML_WARN("re-exec: handing %zu lease(s), %u owner(s), %u client(s) to a new image of %s",
             s->lockspaces->nleases, (unsigned int)s->owners->count, s->ctx.nclients,
             s->exe_path);
    if (dmn_fds_set_cloexec(fds, nfds, false) < 0 || dmn_fds_set_cloexec(&blob, 1, false) < 0) {
        vml_error_set_errno(&err, VIR_FROM_RPC, errno, "cannot keep the descriptors across exec");
        goto fail;
    }
    execv(argv[0], argv);
    vml_error_set_errno(&err, VIR_FROM_RPC, errno, "cannot execute %s", argv[0]);
 fail:
    VML_ERROR("re-exec failed, carrying on in the running image: %s", err.message);
    if (fds != NULL)
        dmn_fds_set_cloexec(fds, nfds, true);
    if (blob >= 0)
        close(blob);
    dmn_argv_free(argv);
    free(fds);
    xdr_free((xdrproc_t)xdr_vml_handover, (char *)&ho);
}

/*
 * The loop.  Event order inside one round, relied on by tests (ARCHITECTURE invariant 2):
 *   1. the self-pipe (signals),
 *   2. owner pidfds (exited owners release their leases; owners without a pidfd are
 *      probed here),
 *   3. timers (SIGKILLs due, the idle timeout),
 *   4. new connections on the listening sockets,
 *   5. client I/O, in connection-creation order (the pollfd array is rebuilt each round in
 *      that order).
 * So anything that happened before a client connected (an owner's death, a holder's hangup)
 * is fully processed before that client's first request is dispatched.
 */
int dmn_server_run(dmn_server *s, vml_error *err)
{
    while (!s->quit) {
        size_t n = 0;
        size_t need = 1 + s->owners->count + 2 + s->owners->nhelpers + 2 + s->ctx.nclients;
        bool buffered;
        int rc;

        /* The last round may have closed the last client or released the last lease. */
        check_idle(s, monotonic_ms());
        if (s->quit)
            break;
        if (ensure_slots(s, need) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot grow the poll set");
            return -1;
        }
        add_slot(s, &n, s->signal_pipe[0], POLLIN, SLOT_SIGNALS, NULL);
        for (dmn_owner *o = s->owners->head; o != NULL; o = o->next) {
            if (o->pidfd >= 0)
                add_slot(s, &n, o->pidfd, POLLIN, SLOT_OWNER, o);
        }
        if (dmn_checker_fd(s->checker) >= 0)
            add_slot(s, &n, dmn_checker_fd(s->checker), POLLIN, SLOT_CHECK, NULL);
        for (dmn_helper *h = s->owners->helpers; h != NULL; h = h->next) {
            if (h->pidfd >= 0)
                add_slot(s, &n, h->pidfd, POLLIN, SLOT_HELPER, h);
        }
        if (dmn_keeper_fd(s->keeper) >= 0)
            add_slot(s, &n, dmn_keeper_fd(s->keeper), POLLIN, SLOT_KEEPER, NULL);
        for (size_t i = 0; i < 2; i++) {
            listener *l = &s->listeners[i];

            if (l->paused_until_ms != 0 && monotonic_ms() >= l->paused_until_ms)
                l->paused_until_ms = 0;
            if (l->paused_until_ms == 0)
                add_slot(s, &n, l->fd, POLLIN, SLOT_LISTENER, l);
        }
        buffered = false;
        for (dmn_client *c = s->clients_head; c != NULL; c = c->next) {
            /* A deferred CHECK_NOW reads nothing more until answered; hangups still show. */
            short events = c->out != NULL ? POLLOUT : c->session.deferred ? 0 : POLLIN;
            add_slot(s, &n, c->fd, events, SLOT_CLIENT, c);
            buffered |= events == POLLIN && client_has_message(c);
        }

        /* A request already read (sent right behind the previous one) is not announced by
         * poll: look, do not wait. */
        rc = poll(s->pfds, n, buffered ? 0 : poll_timeout(s, monotonic_ms()));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "poll failed");
            return -1;
        }
        /* 1. signals: also when the handler ran as poll returned, after the self-pipe's
         * readiness was taken, so that a signal sent before a client connected is always
         * handled before that client's request. */
        if (s->pfds[0].revents != 0 || quit_signal || usr1_signal)
            handle_signals(s);
        if (s->quit)
            break;
        /* Re-exec before anything else of this round: every event not handled yet (an
         * owner's exit, a client's request) waits for the new image, so a request made
         * after the signal is always answered by it. */
        if (s->reexec_pending)
            try_reexec(s);
        /* 2. owner exits: slots are in order, so the kinds come in runs */
        for (size_t i = 1; i < n && s->slots[i].kind == SLOT_OWNER; i++) {
            if (s->pfds[i].revents != 0)
                reap_owner(s, s->slots[i].ptr);
        }
        if (s->owners->nprobed > 0) {
            dmn_owner *next;
            for (dmn_owner *o = s->owners->head; o != NULL; o = next) {
                next = o->next;     /* reaping frees o only */
                if (dmn_owner_probe_exited(o))
                    reap_owner(s, o);
            }
        }
        /* 2b. lease check verdicts and pause helpers (both may act on owners) */
        {
            bool helpers = s->owners->nhelpers > 0 && s->owners->helpers != NULL;
            for (size_t i = 1; i < n; i++) {
                if (s->slots[i].kind == SLOT_CHECK && s->pfds[i].revents != 0)
                    dmn_checker_on_readable(s->checker, s->lockspaces, on_lease_lost, s);
                if (s->slots[i].kind == SLOT_KEEPER && s->pfds[i].revents != 0)
                    dmn_keeper_on_event(s->keeper, s->lockspaces, s->owners);
            }
            if (helpers)
                dmn_owners_reap_helpers(s->owners);
        }
        /* 3. timers */
        dmn_owners_run_timers(s->owners, monotonic_ms());
        dmn_checker_run_timers(s->checker, s->lockspaces, monotonic_ms(), on_lease_lost, s);
        answer_deferred(s);
        check_idle(s, monotonic_ms());
        if (s->quit)
            break;
        /* 4. new connections, 5. client I/O */
        for (size_t i = 1; i < n; i++) {
            /* One connection per listener per round: poll is level-triggered, so another
             * one waiting shows in the next round.  Accepting until EAGAIN cost a failing
             * accept4 for every connection in the common case of one at a time. */
            if (s->slots[i].kind == SLOT_LISTENER && s->pfds[i].revents != 0)
                accept_one(s, s->slots[i].ptr);
        }
        for (size_t i = 1; i < n; i++) {
            dmn_client *c = s->slots[i].ptr;
            short re = s->pfds[i].revents;

            if (s->slots[i].kind != SLOT_CLIENT || re == 0)
                continue;
            if (re & POLLNVAL) {
                client_close(s, c, "invalid descriptor");
            } else if (c->session.deferred) {
                if (re & (POLLERR | POLLHUP))
                    client_close(s, c, NULL);
            } else if (c->out != NULL) {
                if (re & POLLOUT)
                    client_flush(s, c);
                else if (re & (POLLERR | POLLHUP))
                    client_close(s, c, NULL);
            } else if (re & (POLLIN | POLLHUP | POLLERR)) {
                client_read(s, c);
            }
            if (s->quit)
                break;
        }
        for (size_t i = 1; buffered && i < n && !s->quit; i++) {
            dmn_client *c = s->slots[i].ptr;

            /* Requests read ahead, in a round where their connection showed nothing new
             * (those that did were served above, one request each). */
            if (s->slots[i].kind == SLOT_CLIENT && s->pfds[i].revents == 0 &&
                c->out == NULL && !c->session.deferred && client_has_message(c))
                client_read(s, c);
            if (s->quit)
                break;
        }
        /* Owner exits, timers and losses changed leases too: the keeper hears of them (and
         * of the DROPs whose delay ran out). */
        keeper_flush_request(s);
        if (s->reexec_pending && !s->quit)
            try_reexec(s);
    }
    return 0;
}

/* What must hold before anything can fail: every descriptor field says "none". */
static void server_preinit(dmn_server *s, const dmn_server_options *opts)
{
    s->signal_pipe[0] = s->signal_pipe[1] = -1;
    s->reserve_fd = -1;
    s->pid_file_fd = -1;
    s->listeners[0] = (listener){ .fd = -1, .kind = DMN_SOCKET_MAIN,
                                  .max_clients = opts->max_clients };
    s->listeners[1] = (listener){ .fd = -1, .kind = DMN_SOCKET_ADMIN,
                                  .max_clients = opts->admin_max_clients };
}

/* The parts of a server every start shares: options, signal pipe, registries. */
static int server_init(dmn_server *s, const dmn_server_options *opts, vml_error *err)
{
    s->idle_since_ms = -1;
    s->privileged = opts->privileged;
    s->euid = geteuid();
    s->timeout_secs = opts->timeout_secs;
    s->exe_path = opts->exe_path;
    s->argv = opts->argv;
    s->pid_file = opts->pid_file;
    s->pid_file_fd = opts->pid_file_fd;
    if (pipe2(s->signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the signal pipe");
        return -1;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (dmn_lockspaces_new(&s->lockspaces, err) < 0 ||
        dmn_owners_new(opts->owner_kill_grace_ms, &s->owners, err) < 0 ||
        dmn_checker_new(opts->lease_check_interval_ms, opts->lease_check_timeout_ms,
                        monotonic_ms(), &s->checker, err) < 0)
        return -1;
    s->owners->pause_helper = opts->pause_helper;
    s->ctx.lockspaces = s->lockspaces;
    s->ctx.owners = s->owners;
    s->ctx.checker = s->checker;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->ctx.start_usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
    return 0;
}

/*
 * Reach the keeper and take back what it kept for us (a crash of the previous daemon):
 * every lease it holds is verified and re-adopted with its owners before anything is
 * served.  A keeper that cannot be reached is a loud error but not fatal: the daemon
 * serves, and its locks then die with it.
 */
static void start_keeper(dmn_server *s, const dmn_server_options *opts)
{
    vml_error err = { 0 };
    size_t adopted = 0, released = 0;

    if (opts->keeper_path == NULL)
        return;
    if (dmn_keeper_open(opts->keeper_path, opts->log_outputs, &s->keeper, &err) == 0)
        dmn_keeper_set_timeout(s->keeper, opts->keeper_timeout_ms);
    if (s->keeper == NULL ||
        dmn_keeper_sync(s->keeper, s->lockspaces, s->owners, true, &adopted, &released,
                        on_lease_lost, s, &err) < 0) {
        VML_ERROR("no keeper: %s; leases will NOT survive a crash of this daemon",
                  err.message);
        dmn_keeper_free(s->keeper);
        s->keeper = NULL;
        return;
    }
    s->ctx.adopted = (unsigned int)adopted;
    s->ctx.keeper_pid = dmn_keeper_pid(s->keeper);
    if (adopted > 0 || released > 0)
        VML_WARN("adopted %zu lease(s) of %zu owner(s) from keeper pid %u; released %zu "
                 "whose holders all exited while no daemon ran", adopted, s->owners->count,
                 s->ctx.keeper_pid, released);
    else
        VML_INFO("keeper pid %u at %s holds nothing from a previous daemon", s->ctx.keeper_pid,
                 opts->keeper_path);
    /* Adopted owners left without a lease (their other leases released) are forgotten. */
    {
        dmn_owner *next;
        for (dmn_owner *o = s->owners->head; o != NULL; o = next) {
            next = o->next;
            dmn_owners_forget_if_idle(s->owners, o);
        }
    }
    keeper_flush(s);
}

int dmn_server_new(const dmn_server_options *opts, dmn_server **out, vml_error *err)
{
    dmn_server *s = calloc(1, sizeof(*s));
    int ret = -1;

    if (s == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot create the server");
        if (opts->main_fd >= 0)
            close(opts->main_fd);
        if (opts->admin_fd >= 0)
            close(opts->admin_fd);
        return -1;
    }
    server_preinit(s, opts);
    /* Adopt activation fds first: they are ours whatever fails next. */
    if (opts->main_fd >= 0 && listener_adopt(&s->listeners[0], opts->main_fd, err) < 0) {
        if (opts->admin_fd >= 0)
            close(opts->admin_fd);
        goto out;
    }
    if (opts->admin_fd >= 0 && listener_adopt(&s->listeners[1], opts->admin_fd, err) < 0)
        goto out;
    if (server_init(s, opts, err) < 0)
        goto out;
    start_keeper(s, opts);
    if ((opts->main_fd < 0 &&
         listener_bind(&s->listeners[0], opts->main_path, opts->privileged, err) < 0) ||
        (opts->admin_fd < 0 &&
         listener_bind(&s->listeners[1], opts->admin_path, opts->privileged, err) < 0))
        goto out;
    signal_pipe_write = s->signal_pipe[1];
    s->started = true;
    *out = s;
    s = NULL;
    ret = 0;
 out:
    dmn_server_free(s);     /* not started: abandons (the keeper keeps what was adopted) */
    return ret;
}

/* ---- restore from a handover ---- */

static int restore_client(dmn_server *s, const vml_ho_client *src, vml_error *err)
{
    listener *l = &s->listeners[src->kind == DMN_SOCKET_ADMIN ? 1 : 0];
    struct ucred cred;
    socklen_t len = sizeof(cred);
    dmn_client *c = NULL;
    int fl;

    if (src->kind != DMN_SOCKET_MAIN && src->kind != DMN_SOCKET_ADMIN) {
        close(src->fd);
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "handed-over client %d names socket kind %d", src->fd, src->kind);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(src->fd);
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot restore a client");
        return -1;
    }
    c->fd = src->fd;
    c->via = l;
    dmn_session_init(&c->session, l->kind, src->peer_pid, src->peer_uid);
    /* Link first: from here on the client is freed with the server. */
    c->prev = s->clients_tail;
    if (s->clients_tail != NULL)
        s->clients_tail->next = c;
    else
        s->clients_head = c;
    s->clients_tail = c;
    l->nclients++;
    s->ctx.nclients++;
    if ((fl = fcntl(c->fd, F_GETFL)) < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(c->fd, F_SETFD, FD_CLOEXEC) < 0 ||
        getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno,
                            "handed-over client descriptor %d is not a connected socket", c->fd);
        return -1;
    }
    if (cred.pid != src->peer_pid || cred.uid != src->peer_uid) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "handed-over client descriptor %d is peer pid %d uid %u, the handover "
                      "says pid %d uid %u", c->fd, (int)cred.pid, (unsigned int)cred.uid,
                      src->peer_pid, src->peer_uid);
        return -1;
    }
    if (s->privileged ? cred.uid != 0 : cred.uid != s->euid) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "handed-over client %d has uid %u, which this daemon does not serve",
                      c->fd, (unsigned int)cred.uid);
        return -1;
    }
    if (src->registered) {
        if (dmn_identity_copy(&c->session.owner, &src->owner, err) < 0)
            return -1;
        c->session.registered = true;
    }
    c->session.restricted = src->restricted;
    /* Framed (and a whole message dispatched) by the loop, as if just read. */
    if (src->input.input_len > 0) {
        size_t n = src->input.input_len;

        if ((c->in = malloc(n < INPUT_FIRST_READ ? INPUT_FIRST_READ : n)) == NULL) {
            vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot restore a client");
            return -1;
        }
        memcpy(c->in, src->input.input_val, n);
        c->in_len = n;
        c->in_cap = n < INPUT_FIRST_READ ? INPUT_FIRST_READ : n;
    }
    if (src->output.output_len > 0) {
        if ((c->out = malloc(src->output.output_len)) == NULL) {
            vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot restore a client");
            return -1;
        }
        memcpy(c->out, src->output.output_val, src->output.output_len);
        c->out_len = src->output.output_len;
    }
    return 0;
}

static int restore_listener(listener *l, const vml_ho_listener *src, vml_error *err)
{
    if (listener_adopt(l, src->fd, err) < 0)
        return -1;
    l->max_clients = src->max_clients;
    if (src->path[0] != '\0') {
        if ((l->path = strdup(src->path)) == NULL) {
            vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot restore a listener");
            return -1;
        }
        l->dev = (dev_t)src->dev;
        l->ino = (ino_t)src->ino;
    }
    return 0;
}

static int restore_state(dmn_server *s, const dmn_server_options *opts, const vml_handover *ho,
                         vml_error *err)
{
    dmn_lockspaces *reg = s->lockspaces;
    int64_t now = monotonic_ms();

    (void)opts;
    s->ctx.start_usec = ho->start_usec;
    s->ctx.reexecs = ho->reexecs;
    s->ctx.adopted = ho->adopted;
    reg->epoch = ho->epoch;
    reg->next_id = ho->next_lease_id;
    reg->next_seq = ho->next_seq != 0 ? ho->next_seq : 1;
    reg->next_batch = ho->next_batch;
    reg->acquires = ho->acquires;
    reg->conflicts = ho->conflicts;
    reg->lost = ho->lost_leases;
    s->owners->kills = ho->owner_kills;
    for (u_int i = 0; i < ho->listeners.listeners_len; i++) {
        const vml_ho_listener *src = &ho->listeners.listeners_val[i];
        listener *l = &s->listeners[src->kind == DMN_SOCKET_ADMIN ? 1 : 0];

        if (src->kind != DMN_SOCKET_MAIN && src->kind != DMN_SOCKET_ADMIN) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "the handover names a listener of kind %d", src->kind);
            return -1;
        }
        if (l->fd >= 0) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "the handover names two %s listeners", socket_name(l->kind));
            return -1;
        }
        if (restore_listener(l, src, err) < 0)
            return -1;
    }
    if (s->listeners[0].fd < 0 || s->listeners[1].fd < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "the handover lacks a listening socket");
        return -1;
    }
    if (ho->keeper_fd >= 0) {
        if (dmn_keeper_inherit(opts->keeper_path != NULL ? opts->keeper_path : "",
                               opts->log_outputs, ho->keeper_fd, ho->keeper_pid, &s->keeper,
                               err) < 0)
            return -1;
        dmn_keeper_set_timeout(s->keeper, opts->keeper_timeout_ms);
        dmn_lockspaces_set_journaling(reg, true);
    }
    for (u_int i = 0; i < ho->lockspaces.lockspaces_len; i++) {
        const char *path = ho->lockspaces.lockspaces_val[i];

        if (dmn_lockspaces_find(reg, path) == NULL && dmn_lockspaces_add(reg, path, NULL, err) < 0)
            return -1;
    }
    for (u_int i = 0; i < ho->generations.generations_len; i++) {
        const vml_ho_generation *g = &ho->generations.generations_val[i];

        if (dmn_generation_restore(reg, g->lockspace, g->name, g->generation, g->run_start,
                                   &g->last, g->last_since_usec, err) < 0)
            return -1;
    }
    for (u_int i = 0; i < ho->owners.owners_len; i++) {
        const vml_ho_owner *src = &ho->owners.owners_val[i];
        dmn_owner *owner = NULL;
        int rc = dmn_owners_adopt(s->owners, &src->identity, src->start_time, src->pidfd,
                                  &owner, err);

        if (rc < 0)
            return -1;
        if (rc > 0) {
            VML_INFO("owner pid %u (domain '%s') exited during the re-exec", src->identity.pid,
                     src->identity.name);
            continue;
        }
        if (owner->pidfd >= 0 && fcntl(owner->pidfd, F_SETFD, FD_CLOEXEC) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot restore owner pid %u",
                                owner->pid);
            return -1;
        }
        if (dmn_owner_set_lockfailure(owner, src->on_lockfailure, src->uri, err) < 0)
            return -1;
        owner->kill_pending = src->kill_pending;
        owner->sigkill_sent = src->sigkill_sent;
        owner->sigkill_at_ms = now + src->sigkill_in_ms;
    }
    for (u_int i = 0; i < ho->leases.leases_len; i++) {
        const vml_ho_lease *src = &ho->leases.leases_val[i];
        const vml_snap_lease *snap = &src->snap;
        size_t n = snap->holders.holders_len;
        dmn_owner **holders = calloc(n + 1, sizeof(*holders));
        int64_t *since = calloc(n + 1, sizeof(*since));
        dmn_lease *lease = NULL;
        struct stat st;
        int verdict;
        int rc;

        if (holders == NULL || since == NULL) {
            free(holders);
            free(since);
            close(src->fd);
            vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot restore lease %s", snap->path);
            return -1;
        }
        /* THE check the handover exists for: the lock must have survived the exec. */
        verdict = fstat(src->fd, &st) == 0 && (uint64_t)st.st_dev == snap->dev &&
                  (uint64_t)st.st_ino == snap->ino
                  ? dmn_lease_verify_lock(src->fd, (snap->flags & VML_LS_ACQUIRE_SHARED) != 0, 0)
                  : -1;
        if (verdict != 0 && !(snap->state_flags & VML_SNAP_LOST)) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                          "handed-over descriptor %d of lease %s %s", src->fd, snap->path,
                          verdict > 0 ? "no longer holds its lock"
                                      : "is not the locked file, or its lock cannot be read");
            free(holders);
            free(since);
            close(src->fd);
            return -1;
        }
        fcntl(src->fd, F_SETFD, FD_CLOEXEC);
        for (size_t h = 0; h < n; h++) {
            holders[h] = dmn_owners_find(s->owners, snap->holders.holders_val[h].identity.pid);
            since[h] = snap->holders.holders_val[h].since_usec;
        }
        rc = dmn_lease_restore(reg, snap, src->fd, holders, since, n, s->keeper != NULL,
                               &lease, err);
        free(holders);
        free(since);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int dmn_server_restore(const dmn_server_options *opts, const vml_handover *ho,
                       dmn_server **out, vml_error *err)
{
    dmn_server *s = calloc(1, sizeof(*s));
    int ret = -1;

    if (s == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot create the server");
        goto out;
    }
    server_preinit(s, opts);
    if (server_init(s, opts, err) < 0)
        goto out;
    /* Clients are restored after the listeners their counts belong to. */
    if (restore_state(s, opts, ho, err) < 0)
        goto out;
    for (u_int i = 0; i < ho->clients.clients_len; i++) {
        if (restore_client(s, &ho->clients.clients_val[i], err) < 0)
            goto out;
    }
    /* Owners whose holdings all went (they exited during the exec) are forgotten. */
    {
        dmn_owner *next;
        for (dmn_owner *o = s->owners->head; o != NULL; o = next) {
            next = o->next;
            dmn_owners_forget_if_idle(s->owners, o);
        }
    }
    s->ctx.keeper_pid = dmn_keeper_pid(s->keeper);
    signal_pipe_write = s->signal_pipe[1];
    s->started = true;
    VML_WARN("re-exec complete: %zu lease(s), %u owner(s), %u client(s) taken over "
             "(re-exec #%u)", s->lockspaces->nleases, (unsigned int)s->owners->count,
             s->ctx.nclients, s->ctx.reexecs);
    keeper_flush(s);
    *out = s;
    s = NULL;
    ret = 0;
 out:
    dmn_server_abandon(s);
    return ret;
}

/* Close everything but the leases and the keeper. */
static void server_close_common(dmn_server *s)
{
    if (signal_pipe_write == s->signal_pipe[1])
        signal_pipe_write = -1;
    /* At shutdown owners are not killed: close the connections without the hangup logic. */
    while (s->clients_head != NULL)
        client_free(s, s->clients_head);
}

static void server_free_rest(dmn_server *s)
{
    dmn_owners_free(s->owners);
    dmn_checker_free(s->checker);
    listener_close(&s->listeners[1]);
    listener_close(&s->listeners[0]);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    if (s->signal_pipe[0] >= 0)
        close(s->signal_pipe[0]);
    if (s->signal_pipe[1] >= 0)
        close(s->signal_pipe[1]);
    free(s->slots);
    free(s->pfds);
    free(s);
}

void dmn_server_abandon(dmn_server *s)
{
    if (s == NULL)
        return;
    server_close_common(s);
    if (s->lockspaces != NULL && s->lockspaces->nleases > 0)
        VML_WARN("exiting without releasing %zu lease(s): %s", s->lockspaces->nleases,
                 s->keeper != NULL ? "the keeper keeps them for the next daemon"
                                   : "there is no keeper: their locks go with this process");
    dmn_lockspaces_abandon(s->lockspaces);
    dmn_keeper_free(s->keeper);
    server_free_rest(s);
}

void dmn_server_free(dmn_server *s)
{
    if (s == NULL)
        return;
    if (!s->started) {
        dmn_server_abandon(s);
        return;
    }
    server_close_common(s);
    if (s->lockspaces != NULL && s->lockspaces->nleases > 0)
        VML_INFO("releasing %zu lease(s) at shutdown", s->lockspaces->nleases);
    /* Released first (records cleared, locks dropped), then the keeper is sent away. */
    dmn_lockspaces_free(s->lockspaces);
    dmn_keeper_bye(s->keeper);
    dmn_keeper_free(s->keeper);
    server_free_rest(s);
}
