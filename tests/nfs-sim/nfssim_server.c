/* nfssim_server.c: vml-nfssim-server, the simulated NFS server: sockets, the poll loop, control commands and the event log. */
#include "nfssim_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vml_log.h"

#define WAIT_EVENT_DEFAULT_MS 30000

static volatile sig_atomic_t stop_requested;
static int signal_pipe_wr = -1;     /* the self-pipe: the one write end a signal handler uses */

static void on_stop_signal(int signo)
{
    int saved = errno;
    char byte = 's';

    (void)signo;
    stop_requested = 1;
    if (signal_pipe_wr >= 0 && write(signal_pipe_wr, &byte, 1) < 0) {
        /* The pipe is full: a wake-up is already pending. */
    }
    errno = saved;
}

/* ---------------------------------------------------------------- messages */

sim_msg *sim_msg_new(const void *head, size_t head_len, const void *data, size_t data_len)
{
    sim_msg *msg = malloc(sizeof(*msg) + head_len + data_len);

    if (msg == NULL)
        return NULL;
    memset(msg, 0, sizeof(*msg));
    msg->len = head_len + data_len;
    memcpy(msg->data, head, head_len);
    if (data_len > 0)
        memcpy(msg->data + head_len, data, data_len);
    return msg;
}

void sim_msg_queue_init(sim_msg_queue *queue)
{
    queue->head = NULL;
    queue->tail = &queue->head;
}

void sim_msg_queue_push(sim_msg_queue *queue, sim_msg *msg)
{
    msg->next = NULL;
    *queue->tail = msg;
    queue->tail = &msg->next;
}

sim_msg *sim_msg_queue_pop(sim_msg_queue *queue)
{
    sim_msg *msg = queue->head;

    if (msg == NULL)
        return NULL;
    queue->head = msg->next;
    if (queue->head == NULL)
        queue->tail = &queue->head;
    msg->next = NULL;
    return msg;
}

void sim_msg_queue_clear(sim_msg_queue *queue)
{
    sim_msg *msg;

    while ((msg = sim_msg_queue_pop(queue)) != NULL)
        free(msg);
}

/* ---------------------------------------------------------------- connections */

static void conn_flush(sim_conn *conn)
{
    while (conn->out.head != NULL && !conn->dead) {
        sim_msg *msg = conn->out.head;
        ssize_t n;

        if (conn->kind == SIM_CONN_HOST) {
            n = send(conn->fd, msg->data, msg->len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n < 0) {
                VML_WARN("dropping host connection %s: send failed: %s",
                         conn->host != NULL ? conn->host->name : "(no HELLO yet)", strerror(errno));
                conn->dead = true;
                return;
            }
            free(sim_msg_queue_pop(&conn->out));
            continue;
        }
        n = send(conn->fd, msg->data + conn->out_off, msg->len - conn->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            conn->dead = true;
            return;
        }
        conn->out_off += (size_t)n;
        if (conn->out_off == msg->len) {
            conn->out_off = 0;
            free(sim_msg_queue_pop(&conn->out));
        }
    }
    if (conn->out.head == NULL && conn->close_after_flush)
        conn->dead = true;
}

void sim_conn_send(sim_server *srv, sim_conn *conn, sim_msg *msg)
{
    (void)srv;
    if (conn->dead) {
        free(msg);
        return;
    }
    sim_msg_queue_push(&conn->out, msg);
    conn_flush(conn);
}

static sim_conn *conn_new(sim_server *srv, int fd, sim_conn_kind kind)
{
    sim_conn *conn = calloc(1, sizeof(*conn));

    if (conn == NULL)
        return NULL;
    conn->fd = fd;
    conn->kind = kind;
    sim_msg_queue_init(&conn->out);
    conn->next = srv->conns;
    srv->conns = conn;
    return conn;
}

static void conn_free(sim_server *srv, sim_conn *conn)
{
    if (conn == NULL)
        return;
    if (conn->host != NULL && conn->host->conn == conn)
        sim_host_disconnected(srv, conn->host);
    sim_msg_queue_clear(&conn->out);
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn);
}

static void reap_dead(sim_server *srv)
{
    sim_conn **link = &srv->conns;

    while (*link != NULL) {
        sim_conn *conn = *link;

        if (!conn->dead) {
            link = &conn->next;
            continue;
        }
        *link = conn->next;
        conn_free(srv, conn);
    }
}

/* ---------------------------------------------------------------- control output */

static void ctl_vprintf(sim_conn *conn, const char *fmt, va_list ap)
{
    char *text = NULL;
    int len = vasprintf(&text, fmt, ap);
    sim_msg *msg;

    if (len < 0)
        return;
    msg = sim_msg_new(text, (size_t)len, NULL, 0);
    free(text);
    if (msg != NULL)
        sim_msg_queue_push(&conn->out, msg);
}

static void ctl_printf(sim_conn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctl_printf(sim_conn *conn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ctl_vprintf(conn, fmt, ap);
    va_end(ap);
}

static void ctl_dump_line(void *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ctl_vprintf(ctx, fmt, ap);
    va_end(ap);
}

/* End the command's answer: "OK" or "ERR message"; the connection closes once it is sent. */
static void ctl_finish(sim_conn *conn, const char *error)
{
    if (error == NULL)
        ctl_printf(conn, "OK\n");
    else
        ctl_printf(conn, "ERR %s\n", error);
    conn->close_after_flush = true;
    conn_flush(conn);
}

/* ---------------------------------------------------------------- events */

static bool event_matches(const sim_event *ev, const char *name, const char *host)
{
    return strcmp(ev->name, name) == 0 && (host[0] == '\0' || strcmp(ev->host, host) == 0);
}

static void ctl_print_event(sim_conn *conn, const sim_event *ev)
{
    ctl_printf(conn, "%llu %lld.%03lld %s %s %s\n", (unsigned long long)ev->seq, (long long)(ev->ms / 1000),
               (long long)(ev->ms % 1000), ev->name, ev->host[0] != '\0' ? ev->host : "-", ev->detail);
}

/* The oldest sequence number still in the ring. */
static uint64_t event_first_seq(const sim_server *srv)
{
    return srv->event_seq >= SIM_EVENTS_MAX ? srv->event_seq - SIM_EVENTS_MAX + 1 : 1;
}

void sim_log_event(sim_server *srv, const char *name, const sim_host *host, const char *fmt, ...)
{
    sim_event *ev;
    va_list ap;

    srv->event_seq++;
    ev = &srv->events[srv->event_seq % SIM_EVENTS_MAX];
    memset(ev, 0, sizeof(*ev));
    ev->seq = srv->event_seq;
    ev->ms = nfssim_now_ms() - srv->start_ms;
    snprintf(ev->name, sizeof(ev->name), "%s", name);
    snprintf(ev->host, sizeof(ev->host), "%s", host != NULL ? host->name : "");
    va_start(ap, fmt);
    vsnprintf(ev->detail, sizeof(ev->detail), fmt, ap);
    va_end(ap);
    if (strcmp(name, "LOCKED") == 0 || strcmp(name, "UNLOCKED") == 0 || strcmp(name, "RELEASED") == 0)
        VML_DEBUG("event %llu %s %s %s", (unsigned long long)ev->seq, ev->name, ev->host, ev->detail);
    else
        VML_INFO("event %llu %s %s %s", (unsigned long long)ev->seq, ev->name, ev->host, ev->detail);

    for (sim_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        if (conn->dead || !conn->waiting || ev->seq <= conn->wait_since)
            continue;
        if (!event_matches(ev, conn->wait_event, conn->wait_host))
            continue;
        conn->waiting = false;
        ctl_print_event(conn, ev);
        ctl_finish(conn, NULL);
    }
}

/* ---------------------------------------------------------------- control commands */

/* Parse a non-negative decimal number of seconds ("1", "0.25") into milliseconds. */
static int parse_seconds(const char *text, int64_t max_ms, int64_t *ms, char *why, size_t why_len)
{
    char *end = NULL;
    double secs;

    errno = 0;
    secs = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(secs >= 0) || secs * 1000.0 > (double)max_ms) {
        snprintf(why, why_len, "'%s' is not a number of seconds from 0 to %lld", text,
                 (long long)(max_ms / 1000));
        return -1;
    }
    *ms = (int64_t)(secs * 1000.0 + 0.5);
    return 0;
}

static int parse_uint(const char *text, unsigned long long max, unsigned long long *value, const char *what,
                      char *why, size_t why_len)
{
    char *end = NULL;

    errno = 0;
    if (text[0] == '-' || text[0] == '+' || text[0] == '\0') {
        snprintf(why, why_len, "%s '%s' is not a whole number from 0 to %llu", what, text, max);
        return -1;
    }
    *value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || *value > max) {
        snprintf(why, why_len, "%s '%s' is not a whole number from 0 to %llu", what, text, max);
        return -1;
    }
    return 0;
}

/* Resolve a host argument; create: hosts may be configured before their mount connects. */
static sim_host *ctl_host(sim_server *srv, const char *name, bool create, char *why, size_t why_len)
{
    sim_host *host;

    if (!nfssim_hostname_valid(name)) {
        snprintf(why, why_len, "'%s' is not a valid host name (1-63 of A-Z a-z 0-9 . _ -)", name);
        return NULL;
    }
    host = sim_host_get(srv, name, create);
    if (host == NULL)
        snprintf(why, why_len, create ? "out of memory" : "no host called '%s'", name);
    return host;
}

#define CTL_MAX_ARGS 16

/* Run one command line; writes the answer (ending in OK or ERR) to conn. */
static void ctl_command(sim_server *srv, sim_conn *conn, char *line)
{
    char *argv[CTL_MAX_ARGS];
    int argc = 0;
    char *save = NULL;
    char why[256] = "";
    const char *cmd;
    sim_host *host = NULL;

    for (char *tok = strtok_r(line, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == CTL_MAX_ARGS) {
            ctl_finish(conn, "too many arguments");
            return;
        }
        argv[argc++] = tok;
    }
    if (argc == 0) {
        ctl_finish(conn, "empty command");
        return;
    }
    cmd = argv[0];
    VML_INFO("control: %s%s%s", cmd, argc > 1 ? " " : "", argc > 1 ? argv[1] : "");

    if (strcmp(cmd, "reboot") == 0) {
        int64_t grace = srv->default_grace_ms;
        bool enolck = false;

        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
                if (parse_seconds(argv[++i], 3600 * 1000, &grace, why, sizeof(why)) < 0)
                    goto out;
            } else if (strcmp(argv[i], "--enolck") == 0) {
                enolck = true;
            } else {
                snprintf(why, sizeof(why), "usage: reboot [--grace SECS] [--enolck]");
                goto out;
            }
        }
        sim_server_reboot(srv, grace, enolck);
    } else if (strcmp(cmd, "end-grace") == 0 && argc == 1) {
        if (!srv->grace_active) {
            snprintf(why, sizeof(why), "no grace period is active");
            goto out;
        }
        sim_end_grace(srv);
    } else if (strcmp(cmd, "expire") == 0 && argc == 2) {
        if ((host = ctl_host(srv, argv[1], false, why, sizeof(why))) == NULL)
            goto out;
        sim_expire_host(srv, host, "forced by control");
    } else if (strcmp(cmd, "partition") == 0 && argc >= 2) {
        bool to_server = true;
        bool to_host = true;

        if ((host = ctl_host(srv, argv[1], true, why, sizeof(why))) == NULL)
            goto out;
        for (int i = 2; i < argc; i++) {
            unsigned long long ms;

            if (strcmp(argv[i], "--oneway") == 0) {
                to_host = false;
            } else if (strcmp(argv[i], "--replies") == 0) {
                to_server = false;
            } else if (strcmp(argv[i], "--timeo") == 0 && i + 1 < argc) {
                if (parse_uint(argv[++i], 3600000, &ms, "timeo", why, sizeof(why)) < 0)
                    goto out;
                host->timeo_ms = (uint32_t)ms;
            } else {
                snprintf(why, sizeof(why), "usage: partition HOST [--oneway|--replies] [--timeo MS]");
                goto out;
            }
        }
        if (!to_server && !to_host) {
            snprintf(why, sizeof(why), "--oneway and --replies exclude each other");
            goto out;
        }
        sim_partition(srv, host, to_server, to_host);
    } else if (strcmp(cmd, "heal") == 0 && argc == 2) {
        if ((host = ctl_host(srv, argv[1], false, why, sizeof(why))) == NULL)
            goto out;
        sim_heal(srv, host);
    } else if (strcmp(cmd, "latency") == 0 && argc == 3) {
        unsigned long long ms;

        if ((host = ctl_host(srv, argv[1], true, why, sizeof(why))) == NULL ||
            parse_uint(argv[2], 600000, &ms, "latency", why, sizeof(why)) < 0)
            goto out;
        sim_set_latency(srv, host, (uint32_t)ms);
    } else if (strcmp(cmd, "enolck") == 0 && argc == 2) {
        unsigned long long n;

        if (parse_uint(argv[1], 1000000, &n, "count", why, sizeof(why)) < 0)
            goto out;
        srv->enolck_pending = n;
    } else if (strcmp(cmd, "lose-locks") == 0 && (argc == 2 || argc == 3)) {
        bool eio = true;

        if (argc == 3) {
            if (strcmp(argv[2], "--no-eio") != 0) {
                snprintf(why, sizeof(why), "usage: lose-locks HOST [--no-eio]");
                goto out;
            }
            eio = false;
        }
        if ((host = ctl_host(srv, argv[1], false, why, sizeof(why))) == NULL)
            goto out;
        sim_lose_locks(srv, host, eio);
    } else if (strcmp(cmd, "host-reboot") == 0 && argc == 2) {
        if ((host = ctl_host(srv, argv[1], false, why, sizeof(why))) == NULL)
            goto out;
        sim_host_reboot(srv, host, "SM_NOTIFY from control");
    } else if (strcmp(cmd, "reclaim") == 0 && argc == 3) {
        if ((host = ctl_host(srv, argv[1], true, why, sizeof(why))) == NULL)
            goto out;
        if (strcmp(argv[2], "on") != 0 && strcmp(argv[2], "off") != 0) {
            snprintf(why, sizeof(why), "usage: reclaim HOST on|off");
            goto out;
        }
        host->reclaim_enabled = strcmp(argv[2], "on") == 0;
    } else if (strcmp(cmd, "mode") == 0 && (argc == 2 || argc == 4)) {
        uint32_t mode;
        int64_t lease = srv->lease_ms;

        if (strcmp(argv[1], "nfs3") == 0) {
            mode = NFSSIM_MODE_NFS3;
        } else if (strcmp(argv[1], "nfs4") == 0) {
            mode = NFSSIM_MODE_NFS4;
        } else {
            snprintf(why, sizeof(why), "mode '%s' is neither nfs3 nor nfs4", argv[1]);
            goto out;
        }
        if (argc == 4) {
            if (strcmp(argv[2], "--lease") != 0) {
                snprintf(why, sizeof(why), "usage: mode nfs3|nfs4 [--lease SECS]");
                goto out;
            }
            if (parse_seconds(argv[3], 3600 * 1000, &lease, why, sizeof(why)) < 0)
                goto out;
            if (lease < 300) {
                snprintf(why, sizeof(why), "a lease shorter than 0.3 s cannot be renewed reliably");
                goto out;
            }
        }
        sim_set_mode(srv, mode, lease);
    } else if (strcmp(cmd, "dump") == 0 && argc == 1) {
        sim_dump(srv, ctl_dump_line, conn);
    } else if (strcmp(cmd, "seq") == 0 && argc == 1) {
        ctl_printf(conn, "%llu\n", (unsigned long long)srv->event_seq);
    } else if (strcmp(cmd, "events") == 0 && (argc == 1 || argc == 3)) {
        unsigned long long since = 0;

        if (argc == 3 && (strcmp(argv[1], "--since") != 0 ||
                          parse_uint(argv[2], ULLONG_MAX, &since, "seq", why, sizeof(why)) < 0)) {
            if (why[0] == '\0')
                snprintf(why, sizeof(why), "usage: events [--since SEQ]");
            goto out;
        }
        for (uint64_t seq = event_first_seq(srv); seq <= srv->event_seq; seq++) {
            if (seq > since)
                ctl_print_event(conn, &srv->events[seq % SIM_EVENTS_MAX]);
        }
    } else if (strcmp(cmd, "wait-event") == 0 && argc >= 2) {
        unsigned long long since = 0;
        int64_t timeout = WAIT_EVENT_DEFAULT_MS;
        const char *want_host = "";

        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
                if (parse_uint(argv[++i], ULLONG_MAX, &since, "seq", why, sizeof(why)) < 0)
                    goto out;
            } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
                if (parse_seconds(argv[++i], 3600 * 1000, &timeout, why, sizeof(why)) < 0)
                    goto out;
            } else if (i == 2 && argv[i][0] != '-') {
                if (!nfssim_hostname_valid(argv[i])) {
                    snprintf(why, sizeof(why), "'%s' is not a valid host name", argv[i]);
                    goto out;
                }
                want_host = argv[i];
            } else {
                snprintf(why, sizeof(why), "usage: wait-event EVENT [HOST] [--since SEQ] [--timeout SECS]");
                goto out;
            }
        }
        if (strlen(argv[1]) >= sizeof(conn->wait_event)) {
            snprintf(why, sizeof(why), "event name '%s' is too long", argv[1]);
            goto out;
        }
        for (uint64_t seq = event_first_seq(srv); seq <= srv->event_seq; seq++) {
            const sim_event *ev = &srv->events[seq % SIM_EVENTS_MAX];

            if (seq > since && event_matches(ev, argv[1], want_host)) {
                ctl_print_event(conn, ev);
                ctl_finish(conn, NULL);
                return;
            }
        }
        conn->waiting = true;
        snprintf(conn->wait_event, sizeof(conn->wait_event), "%s", argv[1]);
        snprintf(conn->wait_host, sizeof(conn->wait_host), "%s", want_host);
        conn->wait_since = since;
        conn->wait_deadline = nfssim_now_ms() + timeout;
        return;
    } else {
        snprintf(why, sizeof(why), "unknown command or wrong number of arguments: '%s' "
                 "(reboot, end-grace, expire, partition, heal, latency, enolck, lose-locks, host-reboot, "
                 "reclaim, mode, dump, seq, events, wait-event)", cmd);
        goto out;
    }

out:
    ctl_finish(conn, why[0] != '\0' ? why : NULL);
}

static void ctl_timeouts(sim_server *srv)
{
    int64_t now = nfssim_now_ms();

    for (sim_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        if (conn->dead || !conn->waiting || conn->wait_deadline > now)
            continue;
        conn->waiting = false;
        ctl_finish(conn, "timed out waiting for the event");
    }
}

static int ctl_next_timeout(const sim_server *srv, int timeout)
{
    int64_t now = nfssim_now_ms();

    for (const sim_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        int64_t left;

        if (conn->dead || !conn->waiting)
            continue;
        left = conn->wait_deadline - now;
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    return timeout;
}

static void ctl_readable(sim_server *srv, sim_conn *conn)
{
    ssize_t n;
    char *nl;

    if (conn->close_after_flush || conn->waiting) {
        char scratch[256];

        /* Only EOF matters now: a waiting client that goes away ends its wait. */
        n = recv(conn->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn->dead = true;
        return;
    }
    n = recv(conn->fd, conn->in + conn->in_len, sizeof(conn->in) - 1 - conn->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn->dead = true;
        return;
    }
    conn->in_len += (size_t)n;
    conn->in[conn->in_len] = '\0';
    nl = memchr(conn->in, '\n', conn->in_len);
    if (nl == NULL) {
        if (conn->in_len == sizeof(conn->in) - 1)
            ctl_finish(conn, "command line longer than 4095 bytes");
        return;
    }
    *nl = '\0';
    if (memchr(conn->in, '\0', (size_t)(nl - conn->in)) != NULL) {
        ctl_finish(conn, "command line contains a NUL byte");
        return;
    }
    ctl_command(srv, conn, conn->in);
}

/* ---------------------------------------------------------------- host connections */

static void host_readable(sim_server *srv, sim_conn *conn)
{
    size_t cap = sizeof(nfssim_req) + NFSSIM_MAX_PAYLOAD;

    /* A bounded number per round, so that one busy host cannot starve the others. */
    for (int round = 0; round < 64 && !conn->dead; round++) {
        nfssim_req *req = malloc(cap);
        struct iovec iov = { .iov_base = req, .iov_len = cap };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        vml_error err = { 0 };
        ssize_t n;

        if (req == NULL) {
            VML_ERROR("out of memory reading from a host; dropping its connection");
            conn->dead = true;
            return;
        }
        n = recvmsg(conn->fd, &msg, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            free(req);
            return;
        }
        if (n <= 0) {
            free(req);
            conn->dead = true;
            return;
        }
        if ((msg.msg_flags & MSG_TRUNC) || nfssim_req_validate(req, (size_t)n, &err) < 0) {
            VML_ERROR("dropping host connection %s: %s",
                      conn->host != NULL ? conn->host->name : "(no HELLO yet)",
                      (msg.msg_flags & MSG_TRUNC) ? "message larger than the protocol allows" : err.message);
            free(req);
            conn->dead = true;
            return;
        }
        if (conn->host == NULL) {
            if (req->op != NFSSIM_OP_HELLO) {
                VML_ERROR("dropping a host connection whose first message is %s, not HELLO",
                          nfssim_op_name(req->op));
                conn->dead = true;
            } else if (sim_host_hello(srv, conn, req) < 0) {
                conn->close_after_flush = true;
                conn_flush(conn);
            }
            free(req);
            continue;
        }
        if (req->op == NFSSIM_OP_HELLO) {
            VML_ERROR("dropping host connection %s: a second HELLO", conn->host->name);
            free(req);
            conn->dead = true;
            return;
        }
        sim_host_receive(srv, conn->host, req);
    }
}

/* ---------------------------------------------------------------- sockets */

static int listen_unix(const char *path, int type, vml_error *err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old_umask;
    int fd = -1;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                      "socket path '%s' is longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                          "'%s' exists and is not a socket; refusing to replace it", path);
            return -1;
        }
        unlink(path);   /* a leftover of an earlier run */
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create a socket for '%s'", path);
        return -1;
    }
    old_umask = umask(0077);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int saved = errno;

        umask(old_umask);
        vml_error_set_errno(err, VIR_FROM_RPC, saved, "cannot bind '%s'", path);
        close(fd);
        return -1;
    }
    umask(old_umask);
    if (listen(fd, 64) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot listen on '%s'", path);
        close(fd);
        return -1;
    }
    return fd;
}

static void accept_all(sim_server *srv, int listen_fd, sim_conn_kind kind)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                VML_WARN("accept failed: %s", strerror(errno));
            return;
        }
        if (conn_new(srv, fd, kind) == NULL) {
            VML_ERROR("out of memory accepting a connection");
            close(fd);
        }
    }
}

/* ---------------------------------------------------------------- the loop */

static int run_loop(sim_server *srv, int signal_pipe_rd, vml_error *err)
{
    struct pollfd *pfds = NULL;
    sim_conn **slots = NULL;
    size_t cap = 0;
    int ret = -1;

    while (!stop_requested) {
        size_t nconn = 0;
        size_t n = 3;
        int timeout;

        for (sim_conn *c = srv->conns; c != NULL; c = c->next)
            nconn++;
        if (nconn + 3 > cap) {
            size_t new_cap = (nconn + 3) * 2;
            struct pollfd *np = realloc(pfds, new_cap * sizeof(*np));
            sim_conn **ns;

            if (np == NULL) {
                vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot grow the poll set");
                goto out;
            }
            pfds = np;
            ns = realloc(slots, new_cap * sizeof(*ns));
            if (ns == NULL) {
                vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot grow the poll set");
                goto out;
            }
            slots = ns;
            cap = new_cap;
        }
        pfds[0] = (struct pollfd){ .fd = signal_pipe_rd, .events = POLLIN };
        pfds[1] = (struct pollfd){ .fd = srv->host_listen, .events = POLLIN };
        pfds[2] = (struct pollfd){ .fd = srv->ctl_listen, .events = POLLIN };
        for (sim_conn *c = srv->conns; c != NULL; c = c->next) {
            slots[n] = c;
            pfds[n] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
            if (c->out.head != NULL)
                pfds[n].events |= POLLOUT;
            n++;
        }
        timeout = ctl_next_timeout(srv, sim_next_timeout(srv));
        if (poll(pfds, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "poll failed");
            goto out;
        }
        if (pfds[0].revents & POLLIN) {
            char drain[64];

            while (read(signal_pipe_rd, drain, sizeof(drain)) > 0)
                ;
        }
        sim_run_timers(srv);
        ctl_timeouts(srv);
        if (pfds[1].revents & POLLIN)
            accept_all(srv, srv->host_listen, SIM_CONN_HOST);
        if (pfds[2].revents & POLLIN)
            accept_all(srv, srv->ctl_listen, SIM_CONN_CTL);
        for (size_t i = 3; i < n; i++) {
            sim_conn *c = slots[i];

            if (c->dead)
                continue;
            if (pfds[i].revents & POLLOUT)
                conn_flush(c);
            if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (c->kind == SIM_CONN_HOST)
                    host_readable(srv, c);
                else
                    ctl_readable(srv, c);
            }
        }
        reap_dead(srv);
    }
    ret = 0;

out:
    free(slots);
    free(pfds);
    return ret;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: vml-nfssim-server HOST_SOCKET CONTROL_SOCKET [options]\n"
            "  --mode nfs3|nfs4     lock semantics (default nfs4)\n"
            "  --lease SECS         NFSv4 lease time (default 10)\n"
            "  --grace SECS         grace period after 'reboot' (default 10)\n"
            "  --ready-fd N         write \"ready\\n\" to fd N once listening, then close it\n"
            "  --log-level 1..4     1 debug, 2 info (default), 3 warning, 4 error\n");
}

int main(int argc, char **argv)
{
    sim_server srv;
    vml_error err = { 0 };
    const char *paths[2] = { NULL, NULL };
    int npaths = 0;
    long ready_fd = -1;
    unsigned long level = VML_LOG_INFO;
    int pipefd[2] = { -1, -1 };
    int64_t lease = 10000;
    int ret = 1;
    char why[256];

    memset(&srv, 0, sizeof(srv));
    srv.host_listen = srv.ctl_listen = -1;
    srv.mode = NFSSIM_MODE_NFS4;
    srv.default_grace_ms = 10000;
    vml_log_set_program("vml-nfssim-server");

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long num;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (arg[0] == '-' && val == NULL) {
            fprintf(stderr, "vml-nfssim-server: option %s needs a value\n", arg);
            return 2;
        } else if (strcmp(arg, "--mode") == 0) {
            if (strcmp(val, "nfs3") == 0) {
                srv.mode = NFSSIM_MODE_NFS3;
            } else if (strcmp(val, "nfs4") == 0) {
                srv.mode = NFSSIM_MODE_NFS4;
            } else {
                fprintf(stderr, "vml-nfssim-server: --mode '%s' is neither nfs3 nor nfs4\n", val);
                return 2;
            }
            i++;
        } else if (strcmp(arg, "--lease") == 0 || strcmp(arg, "--grace") == 0) {
            int64_t ms;

            if (parse_seconds(val, 3600 * 1000, &ms, why, sizeof(why)) < 0 ||
                (arg[2] == 'l' && ms < 300)) {
                fprintf(stderr, "vml-nfssim-server: %s: %s\n", arg,
                        ms < 300 ? "a lease must be at least 0.3 s" : why);
                return 2;
            }
            if (arg[2] == 'l')
                lease = ms;
            else
                srv.default_grace_ms = ms;
            i++;
        } else if (strcmp(arg, "--ready-fd") == 0) {
            if (parse_uint(val, INT_MAX, &num, "--ready-fd", why, sizeof(why)) < 0 ||
                fcntl((int)num, F_GETFD) < 0) {
                fprintf(stderr, "vml-nfssim-server: --ready-fd '%s' is not an open descriptor\n", val);
                return 2;
            }
            ready_fd = (long)num;
            i++;
        } else if (strcmp(arg, "--log-level") == 0) {
            if (parse_uint(val, VML_LOG_ERROR, &num, "--log-level", why, sizeof(why)) < 0 || num < 1) {
                fprintf(stderr, "vml-nfssim-server: --log-level '%s' is not 1..4\n", val);
                return 2;
            }
            level = num;
            i++;
        } else if (arg[0] == '-') {
            fprintf(stderr, "vml-nfssim-server: unknown option '%s'\n", arg);
            usage(stderr);
            return 2;
        } else if (npaths < 2) {
            paths[npaths++] = arg;
        } else {
            fprintf(stderr, "vml-nfssim-server: unexpected argument '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (npaths != 2) {
        usage(stderr);
        return 2;
    }
    vml_log_set_level((unsigned int)level, NULL);
    srv.lease_ms = lease;

    srv.fs = nfssim_fs_new();
    srv.events = calloc(SIM_EVENTS_MAX, sizeof(*srv.events));
    srv.iobuf = malloc(NFSSIM_MAX_PAYLOAD);
    if (srv.fs == NULL || srv.events == NULL || srv.iobuf == NULL) {
        VML_ERROR("out of memory at start-up");
        goto out;
    }
    srv.next_fh = 1;        /* 0 means "no handle" */
    srv.start_ms = nfssim_now_ms();
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        VML_ERROR("cannot create the signal pipe: %s", strerror(errno));
        goto out;
    }
    signal_pipe_wr = pipefd[1];
    {
        struct sigaction sa = { .sa_handler = on_stop_signal };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    srv.host_listen = listen_unix(paths[0], SOCK_SEQPACKET, &err);
    if (srv.host_listen < 0)
        goto out;
    srv.ctl_listen = listen_unix(paths[1], SOCK_STREAM, &err);
    if (srv.ctl_listen < 0)
        goto out;
    VML_INFO("serving hosts on %s, control on %s, mode nfs%u, lease %lld ms", paths[0], paths[1],
             srv.mode, (long long)srv.lease_ms);
    if (ready_fd >= 0) {
        if (write((int)ready_fd, "ready\n", 6) != 6)
            VML_WARN("cannot write to --ready-fd %ld: %s", ready_fd, strerror(errno));
        close((int)ready_fd);
    }
    if (run_loop(&srv, pipefd[0], &err) < 0)
        goto out;
    VML_INFO("stopping on a signal");
    ret = 0;

out:
    if (err.code != 0)
        VML_ERROR("%s", err.message);
    while (srv.conns != NULL) {
        sim_conn *conn = srv.conns;

        srv.conns = conn->next;
        conn_free(&srv, conn);
    }
    if (srv.ctl_listen >= 0) {
        close(srv.ctl_listen);
        unlink(paths[1]);
    }
    if (srv.host_listen >= 0) {
        close(srv.host_listen);
        unlink(paths[0]);
    }
    while (srv.hosts != NULL) {
        sim_host *host = srv.hosts;

        srv.hosts = host->next;
        sim_msg_queue_clear(&host->held);
        while (host->snap != NULL) {
            sim_snap *next = host->snap->next;

            nfssim_locks_clear(&host->snap->locks);
            free(host->snap);
            host->snap = next;
        }
        while (host->in_head != NULL) {
            sim_request *next = host->in_head->next;

            free(host->in_head->req);
            free(host->in_head);
            host->in_head = next;
        }
        free(host);
    }
    for (sim_request *lists[2] = { srv.waiters, srv.grace_waiters }, **l = lists; l < lists + 2; l++) {
        while (*l != NULL) {
            sim_request *next = (*l)->next;

            free((*l)->req);
            free(*l);
            *l = next;
        }
    }
    for (size_t i = 0; i < srv.fhs_cap; i++)
        free(srv.fhs[i]);
    free(srv.fhs);
    nfssim_fs_free(srv.fs);
    free(srv.iobuf);
    free(srv.events);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return ret;
}
