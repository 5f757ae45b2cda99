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
#include "dmn_dispatch.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"

#define LISTEN_BACKLOG 128
#define ACCEPTS_PER_ROUND 64
#define INPUT_FIRST_CHUNK 65536

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
} listener;

/*
 * One connection.  Input is read in two steps: the 4-byte length word, then the rest of
 * the frame into in[] (grown as bytes arrive, so a large announced length costs nothing
 * until it is sent).  While out[] holds a reply nothing more is read: one outstanding
 * request per client, as virtlockd.
 */
typedef struct dmn_client {
    int fd;
    listener *via;
    dmn_session session;
    unsigned char word[VML_RPC_LENGTH_WORD];
    size_t word_got;
    unsigned char *in;
    size_t in_len, in_cap, in_total;
    unsigned char *out;
    size_t out_len, out_sent;
    struct dmn_client *prev, *next;     /* creation order */
} dmn_client;

typedef enum { SLOT_SIGNALS, SLOT_OWNER, SLOT_LISTENER, SLOT_CLIENT } slot_kind;

typedef struct poll_slot {
    slot_kind kind;
    void *ptr;
} poll_slot;

struct dmn_server {
    dmn_context ctx;
    dmn_lockspaces *lockspaces;
    dmn_owners *owners;
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
    c->word_got = 0;
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

static void client_dispatch(dmn_server *s, dmn_client *c)
{
    unsigned char *reply = NULL;
    size_t reply_len = 0;
    char why[256];
    int rc = dmn_dispatch_message(&s->ctx, &c->session, c->in, c->in_total, &reply, &reply_len,
                                  why, sizeof(why));

    client_reset_input(c);
    if (rc < 0) {
        client_close(s, c, why);
        return;
    }
    c->out = reply;
    c->out_len = reply_len;
    c->out_sent = 0;
    client_flush(s, c);
}

/* Read toward one complete message; dispatch it when complete.  May close the client. */
static void client_read(dmn_server *s, dmn_client *c)
{
    for (;;) {
        ssize_t n;

        if (c->word_got < sizeof(c->word)) {
            n = read(c->fd, c->word + c->word_got, sizeof(c->word) - c->word_got);
        } else {
            if (c->in_len == c->in_cap) {
                size_t cap = c->in_cap * 2;
                unsigned char *grown;

                if (cap > c->in_total)
                    cap = c->in_total;
                grown = realloc(c->in, cap);
                if (grown == NULL) {
                    client_close(s, c, "out of memory for its message");
                    return;
                }
                c->in = grown;
                c->in_cap = cap;
            }
            n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        }
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
            client_close(s, c, c->word_got > 0 ? "connection closed in the middle of a message"
                                               : NULL);
            return;
        }
        if (c->word_got < sizeof(c->word)) {
            c->word_got += (size_t)n;
            if (c->word_got < sizeof(c->word))
                continue;
            if (vml_wire_frame_length(c->word, VML_WIRE_MAX_MESSAGE, &c->in_total) < 0) {
                char why[128];
                snprintf(why, sizeof(why),
                         "invalid message length %u (must be %d to %d)",
                         ((unsigned int)c->word[0] << 24) | ((unsigned int)c->word[1] << 16) |
                         ((unsigned int)c->word[2] << 8) | c->word[3],
                         VML_WIRE_MIN_MESSAGE, VML_WIRE_MAX_MESSAGE);
                client_close(s, c, why);
                return;
            }
            c->in_cap = c->in_total < INPUT_FIRST_CHUNK ? c->in_total : INPUT_FIRST_CHUNK;
            c->in = malloc(c->in_cap);
            if (c->in == NULL) {
                client_close(s, c, "out of memory for its message");
                return;
            }
            memcpy(c->in, c->word, sizeof(c->word));
            c->in_len = sizeof(c->word);
        } else {
            c->in_len += (size_t)n;
        }
        if (c->in_len == c->in_total) {
            client_dispatch(s, c);
            return;     /* one request per client per round */
        }
    }
}

/* Accept one connection from l; false when there is nothing more to accept this round. */
static bool accept_one(dmn_server *s, listener *l)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    dmn_client *c;
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
            if (fd >= 0)
                close(fd);
            s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            return false;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            VML_ERROR("accept on the %s socket failed: %s", socket_name(l->kind), strerror(errno));
        return false;
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
    if (s->owners->nprobed > 0) {
        /* Owners without a pidfd are checked for exit every DMN_OWNER_PROBE_MS. */
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

/* Idle = no client connected and no lease held (nor an owner being killed). */
static void check_idle(dmn_server *s, int64_t now)
{
    bool idle = s->ctx.nclients == 0 && s->lockspaces->nleases == 0 && s->owners->count == 0;

    if (s->timeout_secs == 0)
        return;
    if (!idle) {
        s->idle_since_ms = -1;
        return;
    }
    if (s->idle_since_ms < 0)
        s->idle_since_ms = now;
    if (now - s->idle_since_ms >= (int64_t)s->timeout_secs * 1000) {
        VML_INFO("idle for %u seconds with no client and no lease: exiting", s->timeout_secs);
        s->quit = true;
    }
}

static void handle_signals(dmn_server *s)
{
    char buf[64];

    while (read(s->signal_pipe[0], buf, sizeof(buf)) > 0)
        ;
    if (usr1_signal) {
        usr1_signal = 0;
        VML_WARN("SIGUSR1 received: re-exec not implemented yet; carrying on with every lease held");
    }
    if (quit_signal) {
        VML_INFO("signal %d received: shutting down", (int)quit_signal);
        s->quit = true;
    }
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
    while (!s->quit && !quit_signal) {
        size_t n = 0;
        size_t need = 1 + s->owners->count + 2 + s->ctx.nclients;
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
        for (size_t i = 0; i < 2; i++)
            add_slot(s, &n, s->listeners[i].fd, POLLIN, SLOT_LISTENER, &s->listeners[i]);
        for (dmn_client *c = s->clients_head; c != NULL; c = c->next)
            add_slot(s, &n, c->fd, c->out != NULL ? POLLOUT : POLLIN, SLOT_CLIENT, c);

        rc = poll(s->pfds, n, poll_timeout(s, monotonic_ms()));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "poll failed");
            return -1;
        }
        /* 1. signals */
        if (s->pfds[0].revents != 0)
            handle_signals(s);
        if (s->quit || quit_signal)
            break;
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
        /* 3. timers */
        dmn_owners_run_timers(s->owners, monotonic_ms());
        check_idle(s, monotonic_ms());
        if (s->quit)
            break;
        /* 4. new connections, 5. client I/O */
        for (size_t i = 1; i < n; i++) {
            if (s->slots[i].kind == SLOT_LISTENER && s->pfds[i].revents != 0) {
                listener *l = s->slots[i].ptr;
                for (int k = 0; k < ACCEPTS_PER_ROUND && accept_one(s, l); k++)
                    ;
            }
        }
        for (size_t i = 1; i < n; i++) {
            dmn_client *c = s->slots[i].ptr;
            short re = s->pfds[i].revents;

            if (s->slots[i].kind != SLOT_CLIENT || re == 0)
                continue;
            if (re & POLLNVAL) {
                client_close(s, c, "invalid descriptor");
            } else if (c->out != NULL) {
                if (re & POLLOUT)
                    client_flush(s, c);
                else if (re & (POLLERR | POLLHUP))
                    client_close(s, c, NULL);
            } else if (re & (POLLIN | POLLHUP | POLLERR)) {
                client_read(s, c);
            }
        }
    }
    return 0;
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
    s->signal_pipe[0] = s->signal_pipe[1] = -1;
    s->reserve_fd = -1;
    s->idle_since_ms = -1;
    s->privileged = opts->privileged;
    s->euid = geteuid();
    s->timeout_secs = opts->timeout_secs;
    s->listeners[0] = (listener){ .fd = -1, .kind = DMN_SOCKET_MAIN,
                                  .max_clients = opts->max_clients };
    s->listeners[1] = (listener){ .fd = -1, .kind = DMN_SOCKET_ADMIN,
                                  .max_clients = opts->admin_max_clients };
    /* Adopt activation fds first: they are ours whatever fails next. */
    if (opts->main_fd >= 0 && listener_adopt(&s->listeners[0], opts->main_fd, err) < 0) {
        if (opts->admin_fd >= 0)
            close(opts->admin_fd);
        goto out;
    }
    if (opts->admin_fd >= 0 && listener_adopt(&s->listeners[1], opts->admin_fd, err) < 0)
        goto out;
    if (pipe2(s->signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the signal pipe");
        goto out;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (dmn_lockspaces_new(&s->lockspaces, err) < 0 ||
        dmn_owners_new(opts->owner_kill_grace_ms, &s->owners, err) < 0)
        goto out;
    s->ctx.lockspaces = s->lockspaces;
    s->ctx.owners = s->owners;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->ctx.start_usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
    if ((opts->main_fd < 0 &&
         listener_bind(&s->listeners[0], opts->main_path, opts->privileged, err) < 0) ||
        (opts->admin_fd < 0 &&
         listener_bind(&s->listeners[1], opts->admin_path, opts->privileged, err) < 0))
        goto out;
    signal_pipe_write = s->signal_pipe[1];
    *out = s;
    s = NULL;
    ret = 0;
 out:
    dmn_server_free(s);
    return ret;
}

void dmn_server_free(dmn_server *s)
{
    if (s == NULL)
        return;
    if (signal_pipe_write == s->signal_pipe[1])
        signal_pipe_write = -1;
    /* At shutdown owners are not killed: close the connections without the hangup logic. */
    while (s->clients_head != NULL)
        client_free(s, s->clients_head);
    if (s->lockspaces != NULL && s->lockspaces->nleases > 0)
        VML_INFO("releasing %zu lease(s) at shutdown", s->lockspaces->nleases);
    dmn_lockspaces_free(s->lockspaces);
    dmn_owners_free(s->owners);
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
