/* vmc_worker.c: the conformance suite's "libvirtd" processes: each loads the plugin and makes libvirt's calls on request. */
#include "vmc_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmc_shim.h"
#include "vmh_plughost.h"
#include "vml_log.h"
#include "vml_wire.h"
#include "vml_io.h"

/* Descriptors of a special guest: its status pipe and its command pipe. */
#define SPECIAL_STATUS_FD 3
#define SPECIAL_CTL_FD 4

/* A special guest the worker controls (see VMC_REQ_SPECIAL_SPAWN). */
typedef struct special_guest {
    pid_t pid;
    int ctl_w;                  /* commands to it */
    int status_r;               /* its answers */
    long long last_ctl_us;      /* when its last command was answered (CLOCK_MONOTONIC) */
} special_guest;

#define MAX_SPECIAL 32

/* Everything one worker process owns. */
typedef struct worker_state {
    vmh_plugin *plugin;
    const char *stub_path;
    special_guest special[MAX_SPECIAL];
} worker_state;

/* vmh_domain and its arrays, pointing into a vmc_domain (borrowed). */
typedef struct host_domain {
    vmh_domain dom;
    vmh_disk disks[VMC_MAX_DISKS];
    vmh_lease lease;
} host_domain;

static long long monotonic_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void to_host(const vmc_domain *in, host_domain *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->dom.uuid, in->uuid, sizeof(out->dom.uuid));
    out->dom.name = in->name;
    out->dom.id = in->id;
    out->dom.pid = in->pid;
    out->dom.uri = NULL;                     /* vmh_default_uri() where libvirt passes one */
    out->dom.action = (virDomainLockFailureAction)in->action;
    for (unsigned int i = 0; i < in->ndisks && i < VMC_MAX_DISKS; i++) {
        out->disks[i].path = in->disks[i].path;
        out->disks[i].flags = in->disks[i].flags;
    }
    out->dom.disks = out->disks;
    out->dom.ndisks = in->ndisks < VMC_MAX_DISKS ? in->ndisks : VMC_MAX_DISKS;
    if (in->nleases > 0) {
        out->lease.key = in->lease.key;
        out->lease.path = in->lease.path;
        out->lease.offset = in->lease.offset;
        out->lease.lockspace = in->lease.has_lockspace ? in->lease.lockspace : NULL;
        out->dom.leases = &out->lease;
        out->dom.nleases = 1;
    }
}

/* Copy a plugin's state string (may be NULL) into the reply; the string stays the caller's. */
static void reply_state(vmc_reply *reply, const char *state)
{
    if (state == NULL)
        return;
    reply->state_set = true;
    if (strlen(state) >= sizeof(reply->state))
        reply->state_truncated = true;
    snprintf(reply->state, sizeof(reply->state), "%s", state);
}

/* ---- special guests ---- */

static special_guest *special_find(worker_state *ws, pid_t pid)
{
    for (size_t i = 0; i < MAX_SPECIAL; i++) {
        if (ws->special[i].pid == pid && pid > 0)
            return &ws->special[i];
    }
    return NULL;
}

static void special_forget(special_guest *guest)
{
    if (guest == NULL)
        return;
    if (guest->ctl_w >= 0)
        close(guest->ctl_w);
    if (guest->status_r >= 0)
        close(guest->status_r);
    memset(guest, 0, sizeof(*guest));
    guest->ctl_w = -1;
    guest->status_r = -1;
}

/*
 * In a special guest: send one ACQUIRE_RESOURCE over the descriptor the start hook left for
 * QEMU.  After RESTRICT it must be refused; the answer (or why there was none) goes in reply.
 */
static void special_probe(int holder, const vmc_domain *dom, vmc_reply *reply)
{
    struct timeval patience = { .tv_sec = 10, .tv_usec = 0 };
    vml_client client = { .fd = holder, .serial = 1000 };
    vml_ls_resource_args args;
    int flags;

    memset(&args, 0, sizeof(args));
    if (holder < 0) {
        reply->rc = -2;
        vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "the start hook left no descriptor for QEMU");
        return;
    }
    if (setsockopt(holder, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience)) < 0) {
        reply->rc = -2;
        vml_error_set_errno(&reply->err, VIR_FROM_NONE, errno,
                            "the descriptor left for QEMU is not a socket");
        return;
    }
    /* libvirt's client leaves its socket non-blocking; the probe waits for the answer. */
    flags = fcntl(holder, F_GETFL);
    if (flags < 0 || fcntl(holder, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        reply->rc = -2;
        vml_error_set_errno(&reply->err, VIR_FROM_NONE, errno,
                            "cannot make the descriptor left for QEMU blocking");
        return;
    }
    args.path = (char *)"";
    args.name = (char *)(dom->ndisks > 0 ? dom->disks[0].path : "/nonexistent");
    args.flags = 0;
    reply->rc = vml_client_call(&client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                                VML_LS_PROC_ACQUIRE_RESOURCE,
                                (xdrproc_t)xdr_vml_ls_resource_args, &args, NULL, NULL,
                                &reply->err);
}

/* The body of a special guest; never returns. */
static void __attribute__((noreturn)) special_child(worker_state *ws, const vmc_request *req,
                                                    int status_w, int ctl_r)
{
    struct sigaction dfl;
    host_domain hd;
    vmc_domain dom = req->dom;
    vmc_reply reply;
    sigset_t none;
    int holder = -1;
    int null_fd;
    int tmp_status;
    int tmp_ctl;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    (void)setsid();
    tmp_status = fcntl(status_w, F_DUPFD_CLOEXEC, 16);
    tmp_ctl = fcntl(ctl_r, F_DUPFD_CLOEXEC, 16);
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (tmp_status < 0 || tmp_ctl < 0 || null_fd < 0 ||
        dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
        dup3(tmp_status, SPECIAL_STATUS_FD, O_CLOEXEC) < 0 ||
        dup3(tmp_ctl, SPECIAL_CTL_FD, O_CLOEXEC) < 0)
        _exit(127);
    /* Like QEMU after libvirt's fork: nothing of the parent's but what it passes. */
    close_range(SPECIAL_CTL_FD + 1, ~0U, 0);
    if (req->ignore_sigterm)
        signal(SIGTERM, SIG_IGN);

    memset(&reply, 0, sizeof(reply));
    dom.pid = getpid();
    reply.pid = dom.pid;
    if (req->special_mode == VMC_SPECIAL_HOOK) {
        to_host(&dom, &hd);
        reply.rc = vmh_start_hook(ws->plugin, &hd.dom, &holder, &reply.err);
        reply.fd_given = holder >= 0;
    }
    if (vml_io_write_all(SPECIAL_STATUS_FD, &reply, sizeof(reply)) < 0 || reply.rc < 0)
        _exit(VMH_HOOK_FAILED_STATUS);

    for (;;) {
        char command;
        ssize_t n = read(SPECIAL_CTL_FD, &command, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;                      /* the worker is gone: keep running, as QEMU does */
        memset(&reply, 0, sizeof(reply));
        reply.pid = dom.pid;
        if (command == VMC_SPECIAL_PROBE) {
            special_probe(holder, &dom, &reply);
            if (vml_io_write_all(SPECIAL_STATUS_FD, &reply, sizeof(reply)) < 0)
                break;
        } else if (command == VMC_SPECIAL_CLOSE) {
            /* Answer first: the daemon may kill this process as soon as the close is seen. */
            reply.fd_given = holder >= 0;
            if (vml_io_write_all(SPECIAL_STATUS_FD, &reply, sizeof(reply)) < 0)
                break;
            if (holder >= 0)
                close(holder);
            holder = -1;
        }
    }
    close(SPECIAL_CTL_FD);
    close(SPECIAL_STATUS_FD);
    for (;;)
        pause();
}

static int special_spawn(worker_state *ws, const vmc_request *req, vmc_reply *reply)
{
    int status_pipe[2] = { -1, -1 };
    int ctl_pipe[2] = { -1, -1 };
    special_guest *slot = NULL;
    pid_t child;
    ssize_t got;
    int ret = -1;

    for (size_t i = 0; slot == NULL && i < MAX_SPECIAL; i++) {
        if (ws->special[i].pid == 0)
            slot = &ws->special[i];
    }
    if (slot == NULL) {
        vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "too many special guests in one worker");
        goto out;
    }
    if (pipe2(status_pipe, O_CLOEXEC) < 0 || pipe2(ctl_pipe, O_CLOEXEC) < 0) {
        vml_error_set_errno(&reply->err, VIR_FROM_NONE, errno, "cannot create pipes");
        goto out;
    }
    child = fork();
    if (child < 0) {
        vml_error_set_errno(&reply->err, VIR_FROM_NONE, errno, "cannot fork a guest");
        goto out;
    }
    if (child == 0)
        special_child(ws, req, status_pipe[1], ctl_pipe[0]);
    close(status_pipe[1]);
    status_pipe[1] = -1;
    close(ctl_pipe[0]);
    ctl_pipe[0] = -1;
    got = vml_io_read_full(status_pipe[0], reply, sizeof(*reply));
    if (got != (ssize_t)sizeof(*reply)) {
        memset(reply, 0, sizeof(*reply));
        vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "the guest died before reporting its start");
        (void)waitpid(child, NULL, 0);
        goto out;
    }
    if (reply->rc < 0) {
        (void)waitpid(child, NULL, 0);
        goto out;
    }
    slot->pid = child;
    slot->ctl_w = ctl_pipe[1];
    slot->status_r = status_pipe[0];
    slot->last_ctl_us = monotonic_us();
    ctl_pipe[1] = -1;
    status_pipe[0] = -1;
    ret = 0;
 out:
    for (int i = 0; i < 2; i++) {
        if (status_pipe[i] >= 0)
            close(status_pipe[i]);
        if (ctl_pipe[i] >= 0)
            close(ctl_pipe[i]);
    }
    return ret;
}

static int special_ctl(worker_state *ws, const vmc_request *req, vmc_reply *reply)
{
    special_guest *guest = special_find(ws, req->pid);

    if (guest == NULL) {
        vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                      "process %d is not a special guest of this worker", (int)req->pid);
        return -1;
    }
    if (vml_io_write_all(guest->ctl_w, &req->ctl, 1) < 0 ||
        vml_io_read_full(guest->status_r, reply, sizeof(*reply)) != (ssize_t)sizeof(*reply)) {
        memset(reply, 0, sizeof(*reply));
        vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "guest %d did not answer command '%c'", (int)req->pid, req->ctl);
        return -1;
    }
    guest->last_ctl_us = monotonic_us();
    return reply->rc;
}

/* Wait for child pid to exit (pidfd, no polling loop), then reap it. */
static int wait_child(worker_state *ws, const vmc_request *req, vmc_reply *reply)
{
    special_guest *guest = special_find(ws, req->pid);
    long long since = guest != NULL ? guest->last_ctl_us : monotonic_us();
    bool exited = false;
    int status = 0;

    if (vmh_wait_exit(req->pid, req->timeout_ms, &exited, &reply->err) < 0)
        return -1;
    reply->elapsed_us = monotonic_us() - since;
    reply->exited = exited;
    if (exited) {
        while (waitpid(req->pid, &status, 0) < 0 && errno == EINTR)
            ;
        reply->wait_status = status;
        special_forget(guest);
    }
    return 0;
}

/* ---- the low-level sequence ---- */

static int do_call(worker_state *ws, const vmc_request *req, vmc_reply *reply)
{
    const vmc_call *call = &req->call;
    vmh_context *ctx = NULL;
    host_domain hd;
    char *state = NULL;
    int ret = -1;

    to_host(&req->dom, &hd);
    snprintf(reply->failed_step, sizeof(reply->failed_step), "drvNew");
    vmc_shim_arm(call->shim, call->shim_value);
    if (vmh_context_new(ws->plugin, &hd.dom, call->new_flags, call->with_uri, &ctx,
                        &reply->err) < 0)
        goto out;
    snprintf(reply->failed_step, sizeof(reply->failed_step), "drvAddResource");
    for (size_t i = 0; i < hd.dom.nleases; i++) {
        if (vmh_context_add_lease(ctx, &hd.dom.leases[i], &reply->err) < 0)
            goto out;
    }
    for (size_t i = 0; i < hd.dom.ndisks; i++) {
        if (vmh_context_add_disk(ctx, &hd.dom.disks[i], &reply->err) < 0)
            goto out;
    }
    vmc_shim_disarm();
    switch (call->op) {
    case VMC_CALL_NONE:
        break;
    case VMC_CALL_ACQUIRE: {
        int fd = -1;

        snprintf(reply->failed_step, sizeof(reply->failed_step), "drvAcquire");
        if (vmh_context_acquire(ctx, call->with_state ? call->state : NULL, call->op_flags,
                                (virDomainLockFailureAction)req->dom.action,
                                call->pass_fd ? &fd : NULL, &reply->err) < 0)
            goto out;
        reply->fd_given = fd >= 0;
        if (fd >= 0)
            close(fd);
        break;
    }
    case VMC_CALL_RELEASE:
        snprintf(reply->failed_step, sizeof(reply->failed_step), "drvRelease");
        if (vmh_context_release(ctx, call->pass_state ? &state : NULL, call->op_flags,
                                &reply->err) < 0)
            goto out;
        reply_state(reply, state);
        break;
    case VMC_CALL_INQUIRE:
        snprintf(reply->failed_step, sizeof(reply->failed_step), "drvInquire");
        if (vmh_context_inquire(ctx, call->pass_state ? &state : NULL, call->op_flags,
                                &reply->err) < 0)
            goto out;
        reply_state(reply, state);
        break;
    }
    reply->failed_step[0] = '\0';
    ret = 0;
 out:
    vmc_shim_disarm();
    free(state);
    vmh_context_free(ctx);
    return ret;
}

/* ---- dispatch ---- */

static int dispatch(worker_state *ws, const vmc_request *req, vmc_reply *reply)
{
    host_domain hd;
    char *state = NULL;
    int rc = -1;

    to_host(&req->dom, &hd);
    switch (req->kind) {
    case VMC_REQ_SPAWN: {
        vmh_guest_opts opts = {
            .stub_path = ws->stub_path, .ignore_sigterm = req->ignore_sigterm, .log_fd = -1,
        };

        rc = vmh_guest_spawn(ws->plugin, &hd.dom, &opts, &reply->pid, &reply->err);
        break;
    }
    case VMC_REQ_ACQUIRE:
        rc = vmh_acquire(ws->plugin, &hd.dom, req->with_state ? req->state : NULL, &reply->err);
        break;
    case VMC_REQ_RELEASE:
        rc = vmh_release(ws->plugin, &hd.dom, &state, &reply->err);
        reply_state(reply, state);
        break;
    case VMC_REQ_INQUIRE:
        rc = vmh_inquire(ws->plugin, &hd.dom, &state, &reply->err);
        reply_state(reply, state);
        break;
    case VMC_REQ_ATTACH:
    case VMC_REQ_DETACH:
        if (req->disk_index >= hd.dom.ndisks) {
            vml_error_set(&reply->err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                          "domain %s has no disk %u", req->dom.name, req->disk_index);
            break;
        }
        if (req->kind == VMC_REQ_ATTACH)
            rc = vmh_attach_disk(ws->plugin, &hd.dom, &hd.disks[req->disk_index], &reply->err);
        else
            rc = vmh_detach_disk(ws->plugin, &hd.dom, &hd.disks[req->disk_index], &reply->err);
        break;
    case VMC_REQ_KILL:
        rc = vmh_guest_kill(req->pid, &reply->err);
        special_forget(special_find(ws, req->pid));
        break;
    case VMC_REQ_CALL:
        rc = do_call(ws, req, reply);
        break;
    case VMC_REQ_SPECIAL_SPAWN:
        rc = special_spawn(ws, req, reply);
        break;
    case VMC_REQ_SPECIAL_CTL:
        rc = special_ctl(ws, req, reply);
        break;
    case VMC_REQ_WAIT:
        rc = wait_child(ws, req, reply);
        break;
    case VMC_REQ_EXIT:
        rc = 0;
        break;
    }
    free(state);
    return rc;
}

static void __attribute__((noreturn)) worker_main(const char *plugin_path,
                                                  const char *config_path,
                                                  const char *stub_path, int sock)
{
    vmc_request req;
    vmc_reply reply;
    worker_state ws;
    int status = 0;

    memset(&ws, 0, sizeof(ws));
    for (size_t i = 0; i < MAX_SPECIAL; i++) {
        ws.special[i].ctl_w = -1;
        ws.special[i].status_r = -1;
    }
    ws.stub_path = stub_path;
    /* stdout carries the suite's TAP: nothing of the plugin's may land there. */
    dup2(STDERR_FILENO, STDOUT_FILENO);

    memset(&reply, 0, sizeof(reply));
    reply.rc = vmh_plugin_open(plugin_path, config_path, &ws.plugin, &reply.err);
    if (reply.rc == 0) {
        const virLockDriver *driver = vmh_plugin_driver(ws.plugin);

        reply.driver_version = driver->version;
        reply.driver_flags = driver->flags;
        reply.uses_libvirt = vmh_plugin_uses_libvirt(ws.plugin);
        if (vmc_shim_install(driver, &reply.err) < 0)
            reply.rc = -1;
    }
    if (send(sock, &reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply) ||
        reply.rc < 0) {
        status = 1;
        goto out;
    }
    for (;;) {
        ssize_t n = recv(sock, &req, sizeof(req), 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(req))
            break;                          /* the suite is gone or confused: stop */
        memset(&reply, 0, sizeof(reply));
        reply.rc = dispatch(&ws, &req, &reply);
        if (send(sock, &reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply))
            break;
        if (req.kind == VMC_REQ_EXIT)
            break;
    }
 out:
    for (size_t i = 0; i < MAX_SPECIAL; i++)
        special_forget(&ws.special[i]);
    vmh_plugin_close(ws.plugin);
    close(sock);
    _exit(status);
}

int vmc_worker_start(const char *plugin_path, const char *config_path, const char *stub_path,
                     unsigned int number, vmc_worker *worker, vml_error *err)
{
    vmc_reply ready;
    int pair[2] = { -1, -1 };
    pid_t child;
    ssize_t n;
    int ret = -1;

    memset(worker, 0, sizeof(*worker));
    worker->sock = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create a socketpair");
        goto out;
    }
    fflush(NULL);   /* the child must not write out our buffered output again */
    child = fork();
    if (child < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork libvirtd #%u", number);
        goto out;
    }
    if (child == 0) {
        close(pair[0]);
        worker_main(plugin_path, config_path, stub_path, pair[1]);
    }
    close(pair[1]);
    pair[1] = -1;
    do {
        n = recv(pair[0], &ready, sizeof(ready), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(ready) || ready.rc < 0) {
        if (n == (ssize_t)sizeof(ready)) {
            if (err != NULL)
                *err = ready.err;
        } else {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                          "libvirtd #%u died while loading %s", number, plugin_path);
        }
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
        goto out;
    }
    worker->pid = child;
    worker->sock = pair[0];
    worker->number = number;
    worker->driver_version = ready.driver_version;
    worker->driver_flags = ready.driver_flags;
    worker->uses_libvirt = ready.uses_libvirt;
    pair[0] = -1;
    ret = 0;
 out:
    for (int i = 0; i < 2; i++) {
        if (pair[i] >= 0)
            close(pair[i]);
    }
    return ret;
}

int vmc_worker_call(vmc_worker *worker, const vmc_request *req, vmc_reply *reply, vml_error *err)
{
    ssize_t n;

    memset(reply, 0, sizeof(*reply));
    if (worker->pid <= 0) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR, "libvirtd #%u is not running",
                      worker->number);
        return -1;
    }
    if (send(worker->sock, req, sizeof(*req), MSG_NOSIGNAL) != (ssize_t)sizeof(*req)) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot talk to libvirtd #%u",
                            worker->number);
        return -1;
    }
    do {
        n = recv(worker->sock, reply, sizeof(*reply), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(*reply)) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "libvirtd #%u died during a request", worker->number);
        return -1;
    }
    return 0;
}

void vmc_worker_stop(vmc_worker *worker)
{
    vmc_request req;
    vmc_reply reply;

    if (worker == NULL || worker->pid <= 0)
        return;
    memset(&req, 0, sizeof(req));
    req.kind = VMC_REQ_EXIT;
    (void)vmc_worker_call(worker, &req, &reply, NULL);
    close(worker->sock);
    while (waitpid(worker->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    worker->pid = 0;
    worker->sock = -1;
}
