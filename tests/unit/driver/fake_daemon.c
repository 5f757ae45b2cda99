/* fake_daemon.c: a scripted stand-in lock daemon for the plugin's unit tests. */
#include "fake_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_wire.h"

static int log_fd = -1;
/* The connection log (fake_daemon.h) and this connection's id (the serving child's pid). */
static int conns_fd = -1;
static long conn_id;
/* Exists while the fake "forgot" its lockspaces; a file, since every connection is served by
 * its own process. */
static char forgotten_path[300];
/* FIFOs for "slow..." calls: the fake opens started_path for writing (which returns once the
 * test opens it for reading: the call has arrived), then finish_path for reading (which
 * returns once the test opens it for writing: it may reply).  Events, no timing. */
static char started_path[300];
static char finish_path[300];
/* FIFO on which each connection process writes one byte after logging its EOF line (the test
 * holds it open for reading from fake_daemon_start on, so no byte is lost). */
static char eofs_path[300];

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void conn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Format one line (newline added) and append it to fd with one write. */
static void write_line(int fd, const char *fmt, va_list ap)
{
    char line[8192];
    int n;

    if (fd < 0)
        return;
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(fd, line, (size_t)n) < 0)
        _exit(3);
}

static void append_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append_line(int fd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line(fd, fmt, ap);
    va_end(ap);
}

/* One line of the connection log. */
static void conn_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line(conns_fd, fmt, ap);
    va_end(ap);
}

/* One call: its line in the main log, and the same line under the connection's id in the
 * connection log (written first). */
static void log_line(const char *fmt, ...)
{
    char text[8000];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    conn_log("%ld %s", conn_id, text);
    append_line(log_fd, "%s", text);
}

static int read_full(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_full(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int reply_ok(int fd, const vml_rpc_header *call)
{
    vml_rpc_header hdr = *call;
    unsigned char *msg = NULL;
    size_t len = 0;
    int rc;

    hdr.type = VML_RPC_REPLY;
    hdr.status = VML_RPC_OK;
    if (vml_wire_encode(&hdr, NULL, NULL, &msg, &len) < 0)
        return -1;
    rc = send_full(fd, msg, len);
    free(msg);
    return rc;
}

static int reply_error(int fd, const vml_rpc_header *call, int domain, int code,
                       const char *detail)
{
    vml_error err;
    unsigned char *msg = NULL;
    size_t len = 0;
    int rc;

    vml_error_set(&err, domain, code, "%s", detail);
    if (vml_wire_encode_error(call, &err, &msg, &len) < 0)
        return -1;
    rc = send_full(fd, msg, len);
    free(msg);
    return rc;
}

static bool has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Answer one resource procedure of virtlockd's program; 1 = drop the connection. */
static int answer_resource(int fd, const vml_rpc_header *hdr, const unsigned char *msg,
                           size_t len)
{
    vml_ls_resource_args args;
    bool acquire = hdr->proc == VML_LS_PROC_ACQUIRE_RESOURCE;
    char detail[512];
    int rc;

    memset(&args, 0, sizeof(args));
    if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_ls_resource_args, &args) < 0)
        return 1;
    log_line("%s %s %s %u", acquire ? "ACQUIRE" : "RELEASE", args.path, args.name, args.flags);
    if (has_prefix(args.name, "drop")) {
        rc = 1;
    } else if (acquire && has_prefix(args.name, "busy")) {
        snprintf(detail, sizeof(detail), "Lockspace resource '%s' is locked", args.name);
        rc = reply_error(fd, hdr, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY, detail);
    } else if (!acquire && has_prefix(args.name, "notheld")) {
        snprintf(detail, sizeof(detail), "Lockspace resource '%s' is not locked", args.name);
        rc = reply_error(fd, hdr, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY, detail);
    } else {
        rc = reply_ok(fd, hdr);
    }
    xdr_free((xdrproc_t)xdr_vml_ls_resource_args, (char *)&args);
    return rc;
}

static int answer_batch(int fd, const vml_rpc_header *hdr, const unsigned char *msg,
                        size_t len)
{
    vml_ext_batch_args args;
    bool acquire = hdr->proc == VML_EXT_PROC_BATCH_ACQUIRE;
    char line[6000];
    size_t used;
    const char *refuse = NULL;
    char detail[512];
    int rc;

    memset(&args, 0, sizeof(args));
    if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_ext_batch_args, &args) < 0)
        return 1;
    used = (size_t)snprintf(line, sizeof(line), "%s %s %u",
                            acquire ? "BATCH_ACQUIRE(v1)" : "BATCH_RELEASE(v1)",
                            args.owner.name, args.owner.pid);
    for (u_int i = 0; i < args.resources.resources_len; i++) {
        const vml_ext_resource *res = &args.resources.resources_val[i];

        if (used < sizeof(line))
            used += (size_t)snprintf(line + used, sizeof(line) - used, " {%s %s %s %u;}",
                                     res->lockspace, res->name, res->disk, res->flags);
        if (refuse == NULL && ((acquire && has_prefix(res->name, "busy")) ||
                               (!acquire && has_prefix(res->name, "notheld"))))
            refuse = res->name;
    }
    log_line("%s", line);
    if (refuse != NULL) {
        snprintf(detail, sizeof(detail), "Lockspace resource '%s' is %s", refuse,
                 acquire ? "locked" : "not locked");
        rc = reply_error(fd, hdr, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY, detail);
    } else {
        rc = reply_ok(fd, hdr);
    }
    xdr_free((xdrproc_t)xdr_vml_ext_batch_args, (char *)&args);
    return rc;
}

static int reply_generations(int fd, const vml_rpc_header *call, const vml_ext_batch2_args *args)
{
    vml_rpc_header hdr = *call;
    vml_ext_generation gens[64];
    vml_ext_batch2_ret ret = { { 0, gens } };
    unsigned char *msg = NULL;
    size_t len = 0;
    int rc;

    memset(gens, 0, sizeof(gens));
    ret.generations.generations_len = args->resources.resources_len;
    for (u_int i = 0; i < args->resources.resources_len && i < 64; i++) {
        gens[i].generation = 10 + i;
        gens[i].epoch = args->resources.resources_val[i].lockspace[0] == '\0' ? 0xe9 : 0;
        gens[i].held = TRUE;
    }
    hdr.type = VML_RPC_REPLY;
    hdr.status = VML_RPC_OK;
    if (vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ext_batch2_ret, &ret, &msg, &len) < 0)
        return -1;
    rc = send_full(fd, msg, len);
    free(msg);
    return rc;
}

static int answer_batch2(int fd, const vml_rpc_header *hdr, const unsigned char *msg,
                         size_t len)
{
    vml_ext_batch2_args args;
    bool acquire = hdr->proc == VML_EXT_PROC_BATCH_ACQUIRE;
    const char *verb = acquire ? "BATCH_ACQUIRE"
                       : hdr->proc == VML_EXT_PROC_INQUIRE ? "INQUIRE" : "BATCH_RELEASE";
    char line[6000];
    size_t used;
    const char *refuse = NULL;
    bool moved = false;
    const char *unknown = NULL;
    char detail[512];
    int rc;

    memset(&args, 0, sizeof(args));
    if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_ext_batch2_args, &args) < 0)
        return 1;
    used = (size_t)snprintf(line, sizeof(line), "%s %s %u", verb, args.owner.name,
                            args.owner.pid);
    for (u_int i = 0; i < args.resources.resources_len; i++) {
        const vml_ext_resource2 *res = &args.resources.resources_val[i];
        char expect[64] = "";

        if (res->flags & VML_EXT_RESOURCE_EXPECT_GENERATION)
            snprintf(expect, sizeof(expect), " expect=%llu@%llx",
                     (unsigned long long)res->expected_generation,
                     (unsigned long long)res->expected_epoch);
        if (used < sizeof(line))
            used += (size_t)snprintf(line + used, sizeof(line) - used, " {%s %s %s %u%s;}",
                                     res->lockspace, res->name, res->disk, res->flags, expect);
        if (refuse == NULL && acquire && has_prefix(res->name, "busy"))
            refuse = res->name;
        if (refuse == NULL && acquire && has_prefix(res->name, "moved") && expect[0] != '\0') {
            refuse = res->name;
            moved = true;
        }
        if (refuse == NULL && !acquire && hdr->proc != VML_EXT_PROC_INQUIRE &&
            has_prefix(res->name, "notheld"))
            refuse = res->name;
        if (unknown == NULL && acquire && res->lockspace[0] != '\0' &&
            access(forgotten_path, F_OK) == 0)
            unknown = res->lockspace;
    }
    if (used < sizeof(line) && args.on_lockfailure != 0)
        used += (size_t)snprintf(line + used, sizeof(line) - used, " action=%d",
                                 args.on_lockfailure);
    if (used < sizeof(line) && args.uri[0] != '\0')
        used += (size_t)snprintf(line + used, sizeof(line) - used, " uri=%s", args.uri);
    log_line("%s", line);
    for (u_int i = 0; i < args.resources.resources_len; i++) {
        const char *name = args.resources.resources_val[i].name;

        if (has_prefix(name, "slow")) {
            int gate = open(started_path, O_WRONLY | O_CLOEXEC);

            if (gate >= 0)
                close(gate);
            gate = open(finish_path, O_RDONLY | O_CLOEXEC);
            if (gate >= 0)
                close(gate);
        }
        if (has_prefix(name, "drop")) {
            xdr_free((xdrproc_t)xdr_vml_ext_batch2_args, (char *)&args);
            return 1;
        }
    }
    if (unknown != NULL) {
        snprintf(detail, sizeof(detail), "Lockspace for path %s does not exist", unknown);
        rc = reply_error(fd, hdr, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR, detail);
    } else if (refuse != NULL && moved) {
        snprintf(detail, sizeof(detail), "disk '%s' was acquired by domain 'intruder' while "
                 "domain '%s' did not hold it", refuse, args.owner.name);
        rc = reply_error(fd, hdr, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID, detail);
    } else if (refuse != NULL) {
        snprintf(detail, sizeof(detail), "Lockspace resource '%s' is %s", refuse,
                 acquire ? "locked" : "not locked");
        rc = reply_error(fd, hdr, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY, detail);
    } else {
        rc = reply_generations(fd, hdr, &args);
    }
    xdr_free((xdrproc_t)xdr_vml_ext_batch2_args, (char *)&args);
    return rc;
}

/* Answer one call; 1 = drop the connection. */
static int answer(int fd, const unsigned char *msg, size_t len, fake_mode mode)
{
    vml_rpc_header hdr;
    char detail[128];

    if (vml_wire_decode_header(msg, len, &hdr) < 0)
        return 1;
    if (hdr.prog == VML_EXT_PROGRAM) {
        if (mode == FAKE_VIRTLOCKD || (mode == FAKE_VMLOCKD_V1 && hdr.vers != 1)) {
            log_line("%s %d", mode == FAKE_VIRTLOCKD ? "NOPROG" : "NOVERS", hdr.proc);
            snprintf(detail, sizeof(detail), "Cannot find program %d version %d",
                     (int)hdr.prog, (int)hdr.vers);
            return reply_error(fd, &hdr, VIR_FROM_RPC, VIR_ERR_RPC, detail);
        }
        if (hdr.vers == VML_EXT_PROTOCOL_VERSION_2)
            return answer_batch2(fd, &hdr, msg, len);
        return answer_batch(fd, &hdr, msg, len);
    }
    switch (hdr.proc) {
    case VML_LS_PROC_REGISTER: {
        vml_ls_register_args args;
        int rc;

        memset(&args, 0, sizeof(args));
        if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_ls_register_args, &args) < 0)
            return 1;
        log_line("REGISTER %s %u %u", args.owner.name, args.owner.id, args.owner.pid);
        rc = reply_ok(fd, &hdr);
        xdr_free((xdrproc_t)xdr_vml_ls_register_args, (char *)&args);
        return rc;
    }
    case VML_LS_PROC_RESTRICT:
        log_line("RESTRICT");
        return reply_ok(fd, &hdr);
    case VML_LS_PROC_CREATE_LOCKSPACE: {
        vml_ls_create_lockspace_args args;
        int rc;

        memset(&args, 0, sizeof(args));
        if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_ls_create_lockspace_args,
                                    &args) < 0)
            return 1;
        log_line("CREATE_LOCKSPACE %s", args.path);
        unlink(forgotten_path);
        rc = reply_ok(fd, &hdr);
        xdr_free((xdrproc_t)xdr_vml_ls_create_lockspace_args, (char *)&args);
        return rc;
    }
    case VML_LS_PROC_ACQUIRE_RESOURCE:
    case VML_LS_PROC_RELEASE_RESOURCE:
        return answer_resource(fd, &hdr, msg, len);
    default:
        snprintf(detail, sizeof(detail), "unknown procedure: %d", hdr.proc);
        return reply_error(fd, &hdr, VIR_FROM_RPC, VIR_ERR_RPC, detail);
    }
}

static void serve_client(int fd, fake_mode mode)
{
    for (;;) {
        unsigned char word[VML_RPC_LENGTH_WORD];
        unsigned char *msg;
        size_t len;
        int rc;

        if (read_full(fd, word, sizeof(word)) < 0 ||
            vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &len) < 0)
            return;
        msg = malloc(len);
        if (msg == NULL)
            return;
        memcpy(msg, word, sizeof(word));
        if (read_full(fd, msg + sizeof(word), len - sizeof(word)) < 0) {
            free(msg);
            return;
        }
        rc = answer(fd, msg, len, mode);
        free(msg);
        if (rc != 0)
            return;
    }
}

void fake_daemon_serve(const char *sock_path, const char *log_path, fake_mode mode,
                       int ready_fd)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int listen_fd;

    char conns_path[300];

    alarm(60);
    /* Its own process group, which the connection children join: fake_daemon_stop kills
     * them all, as a daemon that dies drops every connection. */
    setpgid(0, 0);
    snprintf(forgotten_path, sizeof(forgotten_path), "%s.forgotten", log_path);
    snprintf(eofs_path, sizeof(eofs_path), "%s.eofs", log_path);
    snprintf(started_path, sizeof(started_path), "%s.slow-started", log_path);
    snprintf(finish_path, sizeof(finish_path), "%s.slow-finish", log_path);
    unlink(started_path);
    unlink(finish_path);
    if (mkfifo(started_path, 0600) < 0 || mkfifo(finish_path, 0600) < 0)
        _exit(2);
    snprintf(conns_path, sizeof(conns_path), "%s.conns", log_path);
    conns_fd = open(conns_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN);   /* connection children reap themselves */
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
    unlink(sock_path);
    if (log_fd < 0 || listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(listen_fd, 16) < 0)
        _exit(2);
    if (ready_fd >= 0) {
        if (write(ready_fd, "r", 1) != 1)
            _exit(2);
        close(ready_fd);
    }
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            _exit(2);
        }
        /* One process per connection: a holder connection left open blocks nobody. */
        pid_t pid = fork();

        if (pid == 0) {
            struct ucred cred;
            socklen_t cred_len = sizeof(cred);

            alarm(60);
            close(listen_fd);
            conn_id = (long)getpid();
            if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
                cred.pid = 0;
            conn_log("%ld ACCEPT %d", conn_id, (int)cred.pid);
            serve_client(fd, mode);
            conn_log("%ld EOF", conn_id);
            {
                int eofs = open(eofs_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

                if (eofs >= 0) {
                    if (write(eofs, "e", 1) != 1)
                        conn_log("%ld cannot signal its EOF", conn_id);
                    close(eofs);
                }
            }
            _exit(0);
        }
        close(fd);
    }
}

int fake_daemon_start(fake_daemon *fake, const char *dir, const char *name, fake_mode mode)
{
    int ready[2];
    char byte;
    ssize_t n;

    snprintf(fake->sock_path, sizeof(fake->sock_path), "%s/%s.sock", dir, name);
    snprintf(fake->log_path, sizeof(fake->log_path), "%s/%s.log", dir, name);
    {
        /* A restarted fake appends to the same connection log: start after its end. */
        char *conns = NULL;
        char conns_path[300];

        snprintf(conns_path, sizeof(conns_path), "%s.conns", fake->log_path);
        conns = fake_read_file(conns_path);
        fake->conns_taken = strlen(conns);
        free(conns);
    }
    {
        char eofs[300];

        snprintf(eofs, sizeof(eofs), "%s.eofs", fake->log_path);
        if (mkfifo(eofs, 0600) < 0 && errno != EEXIST)
            return -1;
        /* Read and write: the open never blocks, and writers always find a reader. */
        fake->eof_fd = open(eofs, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fake->eof_fd < 0)
            return -1;
    }
    if (pipe2(ready, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    fake->pid = fork();
    if (fake->pid < 0)
        return -1;
    if (fake->pid == 0) {
        close(fake->eof_fd);
        close(ready[0]);
        fake_daemon_serve(fake->sock_path, fake->log_path, mode, ready[1]);
    }
    close(ready[1]);
    do {
        n = read(ready[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    close(ready[0]);
    return n == 1 ? 0 : -1;
}

/* Open the fake's FIFO LOG.suffix with flags and close it again: the rendezvous. */
static int fifo_meet(const fake_daemon *fake, const char *suffix, int flags)
{
    char path[300];
    int fd;

    snprintf(path, sizeof(path), "%s.%s", fake->log_path, suffix);
    fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int fake_daemon_slow_started(fake_daemon *fake)
{
    return fifo_meet(fake, "slow-started", O_RDONLY);
}

void fake_daemon_slow_finish(fake_daemon *fake)
{
    fifo_meet(fake, "slow-finish", O_WRONLY);
}

void fake_daemon_forget_lockspaces(fake_daemon *fake)
{
    char path[300];
    int fd;

    snprintf(path, sizeof(path), "%s.forgotten", fake->log_path);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

void fake_daemon_stop(fake_daemon *fake)
{
    if (fake->pid <= 0)
        return;
    kill(-fake->pid, SIGKILL);     /* the fake and every connection it serves */
    kill(fake->pid, SIGKILL);
    while (waitpid(fake->pid, NULL, 0) < 0 && errno == EINTR)
        continue;
    fake->pid = -1;
    unlink(fake->sock_path);
    if (fake->eof_fd >= 0)
        close(fake->eof_fd);
    fake->eof_fd = -1;
}

bool fake_daemon_wait_eof(fake_daemon *fake, int timeout_ms)
{
    struct pollfd pfd = { .fd = fake->eof_fd, .events = POLLIN };
    char byte;
    int rc;

    if (fake->eof_fd < 0)
        return false;
    do {
        rc = poll(&pfd, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc == 1 && read(fake->eof_fd, &byte, 1) == 1;
}

char *fake_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    char buf[4096];
    size_t n;

    if (out == NULL) {
        if (f != NULL)
            fclose(f);
        return strdup("");
    }
    while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, out);
    if (f != NULL)
        fclose(f);
    fclose(out);
    return text;
}

char *fake_daemon_take_log(fake_daemon *fake)
{
    char *text = fake_read_file(fake->log_path);

    if (truncate(fake->log_path, 0) < 0 && errno != ENOENT)
        perror("truncate");
    return text;
}

char *fake_daemon_take_conns(fake_daemon *fake)
{
    char path[300];
    char *text;
    char *rest;
    size_t len;

    /* Not truncated (a connection's line written between the read and a truncation would
     * be lost): the caller gets what follows the lines taken before, whole lines only. */
    snprintf(path, sizeof(path), "%s.conns", fake->log_path);
    text = fake_read_file(path);
    len = strlen(text);
    if (fake->conns_taken > len)
        fake->conns_taken = len;
    while (len > fake->conns_taken && text[len - 1] != '\n')
        len--;
    rest = strndup(text + fake->conns_taken, len - fake->conns_taken);
    fake->conns_taken = len;
    free(text);
    return rest;
}
