/* vmc_checks.c: the conformance checks: libvirt 9.0.0's lock-manager call sequences replayed with separate processes. */
#include "vmc_checks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lock_driver_abi.h"
#include "vmc_worker.h"
#include "vmh_plughost.h"

/*
 * Processes, as in a libvirt host (libvirt-lock-facts.md 2.6 and 3.3):
 *   - the suite (this process): drives, never loads the plugin; a child subreaper, so guests
 *     of a libvirtd that exits become its children;
 *   - libvirtd #N (vmc_worker): loads the plugin, forks guests, makes libvirtd's calls;
 *   - guests: the start hook runs in the forked child, which then execs the stand-in QEMU
 *     (or, for special guests, stays under the worker's control).
 * Every check uses its own images and domains; each group stops the guests it started.
 */

const vmc_check_info vmc_check_catalogue[] = {
    { "load.init", "the plugin loads as libvirt loads it: virLockDriverImpl with eight "
                   "callbacks, drvInit(1000000, config, 0) succeeds" },
    { "load.table", "virLockDriverImpl.flags uses no bit but USES_STATE" },
    { "params.new-flags", "drvNew refuses unknown flags with VIR_ERR_INVALID_ARG" },
    { "params.new-type", "drvNew refuses an unknown object type" },
    { "params.new-key", "drvNew refuses a parameter key libvirt never passes" },
    { "params.new-id", "drvNew refuses a domain id of 0" },
    { "params.new-uuid", "drvNew refuses a UUID whose 16 bytes are all equal" },
    { "params.add-flags", "drvAddResource refuses unknown flags with VIR_ERR_INVALID_ARG" },
    { "params.add-type", "drvAddResource refuses an unknown resource type" },
    { "params.lease-offset", "drvAddResource refuses a lease with a non-zero offset" },
    { "params.lease-lockspace", "drvAddResource refuses a lease without a lockspace" },
    { "params.acquire-flags", "drvAcquire refuses unknown flags with VIR_ERR_INVALID_ARG and "
                              "locks nothing" },
    { "params.release-flags", "drvRelease refuses unknown flags with VIR_ERR_INVALID_ARG" },
    { "params.inquire-flags", "drvInquire refuses unknown flags with VIR_ERR_INVALID_ARG" },
    { "params.actions", "drvAcquire accepts every <on_lockfailure> action (default, poweroff, "
                        "restart, pause, ignore)" },
    { "start.hook", "the start hook in the forked child (drvNew NEW_STARTED, resources, "
                    "drvAcquire REGISTER_ONLY|RESTRICT with &fd) succeeds and leaves QEMU a "
                    "descriptor" },
    { "start.cpu", "libvirtd acquires at CPU start (drvAcquire, fd NULL) on behalf of the "
                   "registered QEMU, and the disk is then held" },
    { "start.restrict", "the descriptor QEMU inherits refuses lock requests after RESTRICT "
                        "(VIR_ERR_OPERATION_DENIED)" },
    { "excl.same-libvirtd", "a second domain of the same libvirtd is refused an exclusive disk "
                            "in use" },
    { "excl.other-libvirtd", "a domain of another libvirtd process is refused an exclusive "
                             "disk in use" },
    { "excl.busy-error", "the refusal is VIR_ERR_RESOURCE_BUSY and names the disk or its "
                         "lease" },
    { "excl.busy-holder", "the refusal names the domain that holds the disk" },
    { "excl.atomic", "a resume refused on its second disk leaves its first disk free for "
                     "others" },
    { "excl.retry", "after a refused resume, the next resume succeeds once the disk is free" },
    { "shared.both", "two domains run with the same shareable disk" },
    { "shared.excl-refused", "an exclusive user is refused a disk in shared use" },
    { "shared.shared-refused", "a shareable user is refused a disk in exclusive use" },
    { "shared.last-out", "a shared disk is free for an exclusive user once every sharer has "
                         "paused" },
    { "readonly.ignored", "read-only disks are not locked: a writer and read-only users run "
                          "together" },
    { "alias.symlink", "a symlink to a disk in use is refused" },
    { "alias.hardlink", "a hard link to a disk in use is refused" },
    { "alias.spelling", "another spelling of the path of a disk in use ('/./') is refused" },
    { "pause.release", "pausing (drvRelease with &state) releases the disks: another domain "
                       "can take them" },
    { "pause.resume-busy", "resuming is refused while another domain holds a disk" },
    { "state.fencing", "a resume with the state saved at pause is refused when another "
                       "domain used the disk while the domain was paused" },
    { "pause.resume", "resuming with the state saved at pause re-acquires the disks" },
    { "pause.double", "a second release (STOP event after stopping the CPUs) leaves the domain "
                      "resumable" },
    { "state.migration", "migration on one host: the state drvInquire gives for the running "
                         "source is accepted by the destination's first acquire once the "
                         "source paused (a USES_STATE plugin must give one)" },
    { "hotplug.attach", "a hot-plugged disk is locked: another domain is refused it" },
    { "hotplug.busy", "hot-plugging a disk that another domain holds is refused" },
    { "hotplug.detach", "a hot-unplugged disk is released: another domain can take it" },
    { "hotplug.paused", "a disk hot-plugged while paused does not make the next resume fail" },
    { "restart.keep", "the leases survive a libvirtd restart (the driving process exits)" },
    { "restart.continue", "a new libvirtd pauses (releasing the disk) and resumes a domain "
                          "started by the old one" },
    { "stop.release", "killing the stand-in QEMU (domain stop) releases its disks for the very "
                      "next acquisition" },
    { "death.no-holder", "the leases of an owner without a holder connection are released "
                         "when it exits" },
    { "holder.close", "closing the holder connection while holding leases gets the owner "
                      "killed (SIGTERM), and its disks released" },
    { "holder.sigkill", "an owner that ignores SIGTERM after closing its holder connection is "
                        "killed with SIGKILL" },
    { "errors.reported", "every refusal in this run was reported through "
                         "virReportErrorHelper (none fell back to libvirt's generic message)" },
};

const size_t vmc_check_catalogue_size =
    sizeof(vmc_check_catalogue) / sizeof(vmc_check_catalogue[0]);

/* ---- the suite's state ---- */

#define MAX_GUESTS 128

typedef struct suite_guest {
    pid_t pid;
    unsigned int worker;            /* the libvirtd that forked it; 0 = orphaned to the suite */
} suite_guest;

typedef struct suite {
    const vmc_options *opts;
    vmc_report *report;
    vmc_worker libvirtd;            /* the libvirtd of the host */
    vmc_worker other;               /* a second libvirtd process, started on demand */
    unsigned int workers_started;
    unsigned int domains;
    unsigned int images;
    suite_guest guests[MAX_GUESTS];
    unsigned int refusals;          /* errors.reported */
    unsigned int unreported;
    vmc_request req;                /* scratch: one request at a time */
    vmc_reply reply;
} suite;

/*
 * The guests' pids, for vmc_checks_emergency_stop() from a signal handler: the suite is a
 * singleton per process, and this copy is all a handler may touch.
 */
static volatile pid_t emergency_pids[MAX_GUESTS];

static long long monotonic_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* ---- reporting helpers ---- */

static const char *code_name(int code)
{
    switch (code) {
    case VIR_ERR_INTERNAL_ERROR: return "VIR_ERR_INTERNAL_ERROR";
    case VIR_ERR_NO_SUPPORT: return "VIR_ERR_NO_SUPPORT";
    case VIR_ERR_INVALID_ARG: return "VIR_ERR_INVALID_ARG";
    case VIR_ERR_OPERATION_FAILED: return "VIR_ERR_OPERATION_FAILED";
    case VIR_ERR_OPERATION_DENIED: return "VIR_ERR_OPERATION_DENIED";
    case VIR_ERR_SYSTEM_ERROR: return "VIR_ERR_SYSTEM_ERROR";
    case VIR_ERR_RPC: return "VIR_ERR_RPC";
    case VIR_ERR_OPERATION_INVALID: return "VIR_ERR_OPERATION_INVALID";
    case VIR_ERR_CONFIG_UNSUPPORTED: return "VIR_ERR_CONFIG_UNSUPPORTED";
    case VIR_ERR_RESOURCE_BUSY: return "VIR_ERR_RESOURCE_BUSY";
    default: return "code";
    }
}

/* True when err is the host's stand-in for "the plugin failed without reporting anything". */
static bool error_is_fallback(const vml_error *err)
{
    return err->code == 0 || err->domain == VIR_FROM_QEMU ||
           strcmp(err->message, "An error occurred, but the cause is unknown") == 0;
}

/* Print what virsh would print for err, and count it for errors.reported. */
static void observe_refusal(suite *s, const char *what, const vml_error *err)
{
    s->refusals++;
    if (error_is_fallback(err)) {
        s->unreported++;
        vmc_report_observe(s->report, "%s: error: %s (the plugin reported nothing: libvirt's "
                           "fallback)", what, err->message);
        return;
    }
    vmc_report_observe(s->report, "%s: error: %s [%s %d, domain %d]", what, err->message,
                       code_name(err->code), err->code, err->domain);
}

/* ---- images and domains ---- */

static int make_image(suite *s, const char *label, char path[VMC_PATH_MAX], vml_error *err)
{
    int len = snprintf(path, VMC_PATH_MAX, "%s/%s-%u.img", s->opts->workdir, label,
                       ++s->images);
    int fd;

    /* Room is left for the suffixes of the alias checks (".hardlink"). */
    if (len < 0 || len >= VMC_PATH_MAX - 32) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INTERNAL_ERROR,
                      "work directory path %s is too long", s->opts->workdir);
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create image %s", path);
        return -1;
    }
    if (ftruncate(fd, 1024 * 1024) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot size image %s", path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static void domain_init(suite *s, vmc_domain *dom, const char *label)
{
    unsigned int n = ++s->domains;
    unsigned int pid = (unsigned int)getpid();

    memset(dom, 0, sizeof(*dom));
    snprintf(dom->name, sizeof(dom->name), "conform-%s-%u", label, n);
    /* Distinct per domain and per run; never 16 equal bytes. */
    memcpy(dom->uuid, "vmcf", 4);
    memcpy(dom->uuid + 4, &pid, sizeof(pid));
    memcpy(dom->uuid + 8, &n, sizeof(n));
    memcpy(dom->uuid + 12, "\x01\x02\x03\x04", 4);
    dom->id = n;
    dom->action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT;
}

/* Paths are the suite's own (make_image bounds them); one that does not fit is not added. */
static void domain_add_disk(vmc_domain *dom, const char *path, unsigned int flags)
{
    size_t len = strlen(path);

    if (dom->ndisks >= VMC_MAX_DISKS || len >= VMC_PATH_MAX)
        return;
    memcpy(dom->disks[dom->ndisks].path, path, len + 1);
    dom->disks[dom->ndisks].flags = flags;
    dom->ndisks++;
}

static void domain_remove_disk(vmc_domain *dom, unsigned int index)
{
    if (index >= dom->ndisks)
        return;
    memmove(&dom->disks[index], &dom->disks[index + 1],
            (dom->ndisks - index - 1) * sizeof(dom->disks[0]));
    dom->ndisks--;
}

/* ---- guests ---- */

static void track_guest(suite *s, pid_t pid, unsigned int worker)
{
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (s->guests[i].pid == 0) {
            s->guests[i].pid = pid;
            s->guests[i].worker = worker;
            emergency_pids[i] = pid;
            return;
        }
    }
    vmc_report_diag(s->report, "warning: more than %d guests: pid %d is not tracked",
                    MAX_GUESTS, (int)pid);
}

static suite_guest *find_guest(suite *s, pid_t pid)
{
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (s->guests[i].pid == pid && pid > 0)
            return &s->guests[i];
    }
    return NULL;
}

static void untrack_guest(suite *s, pid_t pid)
{
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (s->guests[i].pid == pid && pid > 0) {
            s->guests[i].pid = 0;
            emergency_pids[i] = 0;
        }
    }
}

static vmc_worker *worker_by_number(suite *s, unsigned int number)
{
    if (number != 0 && s->libvirtd.pid > 0 && s->libvirtd.number == number)
        return &s->libvirtd;
    if (number != 0 && s->other.pid > 0 && s->other.number == number)
        return &s->other;
    return NULL;
}

/* One exchange with a worker; a dead worker is reported as the request's error. */
static int ask(suite *s, vmc_worker *w, vmc_request_kind kind, const vmc_domain *dom)
{
    vml_error transport;

    s->req.kind = kind;
    if (dom != NULL)
        s->req.dom = *dom;
    if (vmc_worker_call(w, &s->req, &s->reply, &transport) < 0) {
        memset(&s->reply, 0, sizeof(s->reply));
        s->reply.rc = -1;
        s->reply.err = transport;
    }
    return s->reply.rc;
}

static void request_reset(suite *s)
{
    memset(&s->req, 0, sizeof(s->req));
}

/* Kill a guest (a domain stop) and reap it, through the libvirtd that forked it if it lives. */
static void guest_kill(suite *s, pid_t pid)
{
    suite_guest *guest = find_guest(s, pid);
    vmc_worker *w = guest != NULL ? worker_by_number(s, guest->worker) : NULL;

    if (pid <= 0)
        return;
    if (w != NULL) {
        request_reset(s);
        s->req.pid = pid;
        if (ask(s, w, VMC_REQ_KILL, NULL) < 0)
            vmc_report_diag(s->report, "warning: cannot stop guest %d: %s", (int)pid,
                            s->reply.err.message);
    } else {
        vml_error err;

        /* Orphaned by a libvirtd that exited: our child now (subreaper). */
        if (vmh_guest_kill(pid, &err) < 0)
            vmc_report_diag(s->report, "warning: cannot stop guest %d: %s", (int)pid,
                            err.message);
    }
    untrack_guest(s, pid);
}

static void stop_all_guests(suite *s)
{
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (s->guests[i].pid > 0)
            guest_kill(s, s->guests[i].pid);
    }
}

/* libvirt's start up to exec: the hook in the forked child, then the stand-in QEMU. */
static int guest_spawn(suite *s, vmc_worker *w, vmc_domain *dom, vml_error *err)
{
    request_reset(s);
    if (ask(s, w, VMC_REQ_SPAWN, dom) < 0) {
        *err = s->reply.err;
        return -1;
    }
    dom->pid = s->reply.pid;
    track_guest(s, dom->pid, w->number);
    return 0;
}

/* A guest under the worker's control (see VMC_REQ_SPECIAL_SPAWN). */
static int special_spawn(suite *s, vmc_worker *w, vmc_domain *dom, vmc_special_mode mode,
                         bool ignore_sigterm, bool *fd_given, vml_error *err)
{
    request_reset(s);
    s->req.special_mode = mode;
    s->req.ignore_sigterm = ignore_sigterm;
    if (ask(s, w, VMC_REQ_SPECIAL_SPAWN, dom) < 0) {
        *err = s->reply.err;
        return -1;
    }
    dom->pid = s->reply.pid;
    if (fd_given != NULL)
        *fd_given = s->reply.fd_given;
    track_guest(s, dom->pid, w->number);
    return 0;
}

/* CPU start or resume. */
static int domain_acquire(suite *s, vmc_worker *w, const vmc_domain *dom, const char *state,
                          vml_error *err)
{
    request_reset(s);
    if (state != NULL) {
        s->req.with_state = true;
        snprintf(s->req.state, sizeof(s->req.state), "%s", state);
    }
    if (ask(s, w, VMC_REQ_ACQUIRE, dom) < 0) {
        *err = s->reply.err;
        return -1;
    }
    return 0;
}

/* Pause; state (may be NULL) receives the plugin's state or "" with *state_set false. */
static int domain_release(suite *s, vmc_worker *w, const vmc_domain *dom,
                          char state[VMC_STATE_MAX], bool *state_set, vml_error *err)
{
    request_reset(s);
    if (ask(s, w, VMC_REQ_RELEASE, dom) < 0) {
        *err = s->reply.err;
        return -1;
    }
    if (state != NULL)
        snprintf(state, VMC_STATE_MAX, "%s", s->reply.state);
    if (state_set != NULL)
        *state_set = s->reply.state_set;
    return 0;
}

/*
 * libvirt's whole start: spawn (start hook), then acquire at CPU start; a refused acquire
 * kills the guest, as libvirt kills QEMU after a failed start.
 */
static int domain_start(suite *s, vmc_worker *w, vmc_domain *dom, vml_error *err)
{
    if (guest_spawn(s, w, dom, err) < 0)
        return -1;
    if (domain_acquire(s, w, dom, NULL, err) < 0) {
        guest_kill(s, dom->pid);
        dom->pid = 0;
        return -1;
    }
    return 0;
}

/*
 * A check that a start is refused: start dom and report whether it was refused, printing what
 * the user sees.  Returns 1 refused, 0 started (the guest keeps running).
 */
static int start_refused(suite *s, vmc_worker *w, vmc_domain *dom, const char *what,
                         vml_error *err)
{
    if (domain_start(s, w, dom, err) < 0) {
        observe_refusal(s, what, err);
        return 1;
    }
    vmc_report_observe(s->report, "%s: started (pid %d)", what, (int)dom->pid);
    return 0;
}

/* A start that the check needs to succeed: on failure, say so and return -1. */
static int start_needed(suite *s, vmc_worker *w, vmc_domain *dom, const char *what,
                        char *why, size_t why_len)
{
    vml_error err;

    memset(&err, 0, sizeof(err));
    if (domain_start(s, w, dom, &err) < 0) {
        snprintf(why, why_len, "%s did not start: %s", what, err.message);
        return -1;
    }
    return 0;
}

/* Report every id of a group as broken (its setup failed). */
static void all_broken(suite *s, const char *const *ids, size_t nids, const char *why)
{
    for (size_t i = 0; i < nids; i++)
        vmc_report_broken(s->report, ids[i], why);
}

/*
 * After dom's competitor has died: try to acquire for dom (a spawned, paused guest).  The
 * verdict is whether the very first attempt is granted; later attempts (at most max_attempts,
 * for at most max_ms) only measure when the release happened, for the report.
 */
static bool acquire_after_death(suite *s, vmc_worker *w, const vmc_domain *dom,
                                const char *since_what, long long since_us,
                                unsigned int max_attempts, long long max_ms)
{
    unsigned int attempts = 0;
    bool first = false;
    bool granted = false;
    vml_error err;

    memset(&err, 0, sizeof(err));
    while (attempts < max_attempts) {
        attempts++;
        if (domain_acquire(s, w, dom, NULL, &err) == 0) {
            granted = true;
            first = attempts == 1;
            break;
        }
        if (monotonic_us() - since_us > max_ms * 1000)
            break;
    }
    if (granted) {
        vmc_report_observe(s->report, "granted to %s %.3f ms after %s, at attempt %u",
                           dom->name, (double)(monotonic_us() - since_us) / 1000.0, since_what,
                           attempts);
    } else {
        observe_refusal(s, "the first attempt", &err);
        vmc_report_observe(s->report, "still refused after %u attempts over %.3f ms",
                           attempts, (double)(monotonic_us() - since_us) / 1000.0);
    }
    return first;
}

/* ---- load ---- */

static void check_load_table(suite *s)
{
    unsigned int flags = s->libvirtd.driver_flags;

    vmc_report_observe(s->report, "version %u, flags 0x%x%s; libvirt.so.0 loaded: %s",
                       s->libvirtd.driver_version, flags,
                       (flags & VIR_LOCK_MANAGER_USES_STATE) ? " (USES_STATE)" : "",
                       s->libvirtd.uses_libvirt ? "yes" : "no");
    vmc_report_result(s->report, "load.table", (flags & ~VIR_LOCK_MANAGER_USES_STATE) == 0);
}

/* ---- params ---- */

/* Prepare a low-level call on dom. */
static void call_reset(suite *s, const vmc_domain *dom, vmc_call_op op)
{
    request_reset(s);
    s->req.dom = *dom;
    s->req.call.with_uri = true;
    s->req.call.op = op;
}

/*
 * Make the prepared call and report id: passed when it fails in step with want_code (0: any
 * code) and a reported error.
 */
static void expect_call_refused(suite *s, const char *id, const char *step, int want_code)
{
    bool passed;

    ask(s, &s->libvirtd, VMC_REQ_CALL, NULL);
    if (s->reply.rc == 0) {
        vmc_report_observe(s->report, "accepted");
        vmc_report_result(s->report, id, false);
        return;
    }
    observe_refusal(s, s->reply.failed_step, &s->reply.err);
    passed = strcmp(s->reply.failed_step, step) == 0 &&
             (want_code == 0 || s->reply.err.code == want_code);
    if (strcmp(s->reply.failed_step, step) != 0)
        vmc_report_observe(s->report, "expected the refusal from %s", step);
    else if (!passed)
        vmc_report_observe(s->report, "expected %s", code_name(want_code));
    vmc_report_result(s->report, id, passed);
}

static void group_params(suite *s)
{
    static const char *const ids[] = {
        "params.new-flags", "params.new-type", "params.new-key", "params.new-id",
        "params.new-uuid", "params.add-flags", "params.add-type", "params.lease-offset",
        "params.lease-lockspace", "params.acquire-flags", "params.release-flags",
        "params.inquire-flags", "params.actions",
    };
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain dom;
    vmc_domain other;
    vmc_domain probe;
    vml_error err;
    bool actions_ok = true;

    memset(&err, 0, sizeof(err));
    domain_init(s, &dom, "params");
    if (make_image(s, "params", disk, &err) < 0 || guest_spawn(s, &s->libvirtd, &dom, &err) < 0) {
        snprintf(why, sizeof(why), "the domain for parameter checks did not start: %s",
                 err.message);
        all_broken(s, ids, sizeof(ids) / sizeof(ids[0]), why);
        return;
    }
    domain_add_disk(&dom, disk, 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.call.new_flags = 0x80;
    expect_call_refused(s, "params.new-flags", "drvNew", VIR_ERR_INVALID_ARG);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.call.shim = VMC_SHIM_OBJECT_TYPE;
    s->req.call.shim_value = 1;
    expect_call_refused(s, "params.new-type", "drvNew", 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.call.shim = VMC_SHIM_EXTRA_PARAM;
    expect_call_refused(s, "params.new-key", "drvNew", 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.dom.id = 0;
    expect_call_refused(s, "params.new-id", "drvNew", 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    memset(s->req.dom.uuid, 0, sizeof(s->req.dom.uuid));
    expect_call_refused(s, "params.new-uuid", "drvNew", 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.dom.disks[0].flags = 0x4;
    expect_call_refused(s, "params.add-flags", "drvAddResource", VIR_ERR_INVALID_ARG);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.call.shim = VMC_SHIM_RESOURCE_TYPE;
    s->req.call.shim_value = 5;
    expect_call_refused(s, "params.add-type", "drvAddResource", 0);

    call_reset(s, &dom, VMC_CALL_NONE);
    s->req.dom.ndisks = 0;
    s->req.dom.nleases = 1;
    snprintf(s->req.dom.lease.key, sizeof(s->req.dom.lease.key), "conform-lease");
    snprintf(s->req.dom.lease.path, sizeof(s->req.dom.lease.path), "%s", s->opts->workdir);
    s->req.dom.lease.has_lockspace = true;
    snprintf(s->req.dom.lease.lockspace, sizeof(s->req.dom.lease.lockspace), "leases");
    s->req.dom.lease.offset = 1024;
    expect_call_refused(s, "params.lease-offset", "drvAddResource", 0);

    s->req.kind = VMC_REQ_CALL;
    s->req.dom.lease.offset = 0;
    s->req.dom.lease.has_lockspace = false;
    expect_call_refused(s, "params.lease-lockspace", "drvAddResource", 0);

    /* Unknown acquire flags: refused, and the disk stays free for another domain. */
    call_reset(s, &dom, VMC_CALL_ACQUIRE);
    s->req.call.op_flags = 0x4;
    ask(s, &s->libvirtd, VMC_REQ_CALL, NULL);
    if (s->reply.rc == 0) {
        vmc_report_observe(s->report, "accepted");
        vmc_report_result(s->report, "params.acquire-flags", false);
    } else {
        bool passed = strcmp(s->reply.failed_step, "drvAcquire") == 0 &&
                      s->reply.err.code == VIR_ERR_INVALID_ARG;

        observe_refusal(s, s->reply.failed_step, &s->reply.err);
        domain_init(s, &other, "params-other");
        domain_add_disk(&other, disk, 0);
        if (start_refused(s, &s->libvirtd, &other, "another domain on the same disk",
                          &err) != 0) {
            vmc_report_observe(s->report, "the refused call left the disk locked");
            passed = false;
        }
        vmc_report_result(s->report, "params.acquire-flags", passed);
    }

    call_reset(s, &dom, VMC_CALL_RELEASE);
    s->req.call.op_flags = 0x1;
    s->req.call.pass_state = true;
    s->req.call.with_uri = false;
    expect_call_refused(s, "params.release-flags", "drvRelease", VIR_ERR_INVALID_ARG);

    call_reset(s, &dom, VMC_CALL_INQUIRE);
    s->req.call.op_flags = 0x1;
    s->req.call.pass_state = true;
    s->req.call.with_uri = false;
    expect_call_refused(s, "params.inquire-flags", "drvInquire", VIR_ERR_INVALID_ARG);

    /* Every action on a fresh disk and domain: acquire, then release. */
    domain_init(s, &probe, "params-actions");
    if (make_image(s, "params-actions", disk, &err) < 0 ||
        guest_spawn(s, &s->libvirtd, &probe, &err) < 0) {
        snprintf(why, sizeof(why), "the domain for the actions did not start: %s",
                 err.message);
        vmc_report_broken(s->report, "params.actions", why);
        stop_all_guests(s);
        return;
    }
    domain_add_disk(&probe, disk, 0);
    for (int action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT; action < VIR_DOMAIN_LOCK_FAILURE_LAST;
         action++) {
        probe.action = action;
        if (domain_acquire(s, &s->libvirtd, &probe, NULL, &err) < 0) {
            observe_refusal(s, "acquire", &err);
            vmc_report_observe(s->report, "action %d refused", action);
            actions_ok = false;
            continue;
        }
        if (domain_release(s, &s->libvirtd, &probe, NULL, NULL, &err) < 0) {
            observe_refusal(s, "release", &err);
            actions_ok = false;
        }
    }
    vmc_report_result(s->report, "params.actions", actions_ok);
    stop_all_guests(s);
}

/* ---- start ---- */

static void group_start(suite *s)
{
    static const char *const ids[] = { "start.hook", "start.cpu", "start.restrict" };
    char disk[VMC_PATH_MAX];
    char free_disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain guest;
    vmc_domain rival;
    vmc_domain restricted;
    bool fd_given = false;
    vml_error err;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "start", disk, &err) < 0 || make_image(s, "start-free", free_disk, &err) < 0) {
        all_broken(s, ids, sizeof(ids) / sizeof(ids[0]), err.message);
        return;
    }
    domain_init(s, &guest, "start");
    domain_add_disk(&guest, disk, 0);
    if (special_spawn(s, &s->libvirtd, &guest, VMC_SPECIAL_HOOK, false, &fd_given, &err) < 0) {
        observe_refusal(s, "start hook", &err);
        vmc_report_result(s->report, "start.hook", false);
        snprintf(why, sizeof(why), "the start hook failed: %s", err.message);
        vmc_report_broken(s->report, "start.cpu", why);
        vmc_report_broken(s->report, "start.restrict", why);
        return;
    }
    vmc_report_observe(s->report, "start hook done in guest %d; descriptor left for QEMU: %s",
                       (int)guest.pid, fd_given ? "yes" : "no");
    vmc_report_result(s->report, "start.hook", fd_given);

    if (domain_acquire(s, &s->libvirtd, &guest, NULL, &err) < 0) {
        observe_refusal(s, "CPU start", &err);
        vmc_report_result(s->report, "start.cpu", false);
    } else {
        domain_init(s, &rival, "start-rival");
        domain_add_disk(&rival, disk, 0);
        vmc_report_result(s->report, "start.cpu",
                          start_refused(s, &s->libvirtd, &rival, "another domain on its disk",
                                        &err) == 1);
    }

    domain_init(s, &restricted, "start-restrict");
    domain_add_disk(&restricted, free_disk, 0);
    if (special_spawn(s, &s->libvirtd, &restricted, VMC_SPECIAL_HOOK, false, &fd_given,
                      &err) < 0) {
        snprintf(why, sizeof(why), "the start hook failed: %s", err.message);
        vmc_report_broken(s->report, "start.restrict", why);
    } else if (!fd_given) {
        vmc_report_skip(s->report, "start.restrict", "the plugin leaves QEMU no descriptor");
    } else {
        request_reset(s);
        s->req.pid = restricted.pid;
        s->req.ctl = VMC_SPECIAL_PROBE;
        ask(s, &s->libvirtd, VMC_REQ_SPECIAL_CTL, &restricted);
        if (s->reply.rc == -2) {
            vmc_report_skip(s->report, "start.restrict", s->reply.err.message);
        } else if (s->reply.rc == 0) {
            vmc_report_observe(s->report, "ACQUIRE_RESOURCE over QEMU's descriptor was "
                               "granted");
            vmc_report_result(s->report, "start.restrict", false);
        } else {
            vmc_report_observe(s->report, "ACQUIRE_RESOURCE over QEMU's descriptor: %s [%s]",
                               s->reply.err.message, code_name(s->reply.err.code));
            vmc_report_result(s->report, "start.restrict",
                              s->reply.err.code == VIR_ERR_OPERATION_DENIED);
        }
    }
    stop_all_guests(s);
}

/* ---- exclusive ---- */

/* A 64-character lowercase hex word in text (an indirect lease name). */
static bool has_hex_name(const char *text)
{
    size_t run = 0;

    for (const char *p = text; *p != '\0'; p++) {
        if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) {
            if (++run == 64)
                return true;
        } else {
            run = 0;
        }
    }
    return false;
}

static void group_excl(suite *s)
{
    static const char *const ids[] = {
        "excl.same-libvirtd", "excl.other-libvirtd", "excl.busy-error", "excl.busy-holder",
        "excl.atomic", "excl.retry",
    };
    char disk[VMC_PATH_MAX];
    char second[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain holder;
    vmc_domain rival;
    vmc_domain remote;
    vmc_domain pair;
    vmc_domain taker;
    vml_error err;
    vml_error busy;

    memset(&err, 0, sizeof(err));
    memset(&busy, 0, sizeof(busy));
    domain_init(s, &holder, "excl");
    if (make_image(s, "excl", disk, &err) < 0 || make_image(s, "excl-second", second, &err) < 0) {
        all_broken(s, ids, sizeof(ids) / sizeof(ids[0]), err.message);
        return;
    }
    domain_add_disk(&holder, disk, 0);
    if (start_needed(s, &s->libvirtd, &holder, "the holding domain", why, sizeof(why)) < 0) {
        all_broken(s, ids, 4, why);
    } else {
        domain_init(s, &rival, "excl-rival");
        domain_add_disk(&rival, disk, 0);
        bool refused = start_refused(s, &s->libvirtd, &rival, "second domain", &busy) == 1;

        vmc_report_result(s->report, "excl.same-libvirtd", refused);
        if (s->other.pid <= 0 &&
            vmc_worker_start(s->opts->plugin, s->opts->config, s->opts->stub,
                             ++s->workers_started, &s->other, &err) < 0) {
            snprintf(why, sizeof(why), "another libvirtd did not start: %s", err.message);
            vmc_report_broken(s->report, "excl.other-libvirtd", why);
        } else {
            domain_init(s, &remote, "excl-remote");
            domain_add_disk(&remote, disk, 0);
            vmc_report_result(s->report, "excl.other-libvirtd",
                              start_refused(s, &s->other, &remote,
                                            "domain of another libvirtd", &err) == 1);
        }
        if (!refused) {
            vmc_report_broken(s->report, "excl.busy-error", "the second domain was not refused");
            vmc_report_broken(s->report, "excl.busy-holder",
                              "the second domain was not refused");
        } else {
            vmc_report_observe(s->report, "the user sees: error: %s", busy.message);
            vmc_report_result(s->report, "excl.busy-error",
                              busy.code == VIR_ERR_RESOURCE_BUSY &&
                              (strstr(busy.message, disk) != NULL || has_hex_name(busy.message)));
            vmc_report_observe(s->report, "the user sees: error: %s", busy.message);
            if (strstr(busy.message, holder.name) == NULL)
                vmc_report_observe(s->report, "the holder '%s' is not named", holder.name);
            vmc_report_result(s->report, "excl.busy-holder",
                              strstr(busy.message, holder.name) != NULL);
        }
    }
    stop_all_guests(s);

    /*
     * Atomicity on the resume path (libvirt-lock-facts.md 7.8): the holder has the second
     * disk; the pair domain, paused, is refused on it at resume; its first disk must be free.
     */
    domain_init(s, &holder, "excl-atomic-holder");
    domain_add_disk(&holder, second, 0);
    domain_init(s, &pair, "excl-atomic");
    domain_add_disk(&pair, disk, 0);
    domain_add_disk(&pair, second, 0);
    memset(&err, 0, sizeof(err));
    if (start_needed(s, &s->libvirtd, &holder, "the holding domain", why, sizeof(why)) < 0 ||
        guest_spawn(s, &s->libvirtd, &pair, &err) < 0) {
        if (err.code != 0)
            snprintf(why, sizeof(why), "the paused domain did not start: %s", err.message);
        all_broken(s, ids + 4, 2, why);
        stop_all_guests(s);
        return;
    }
    if (domain_acquire(s, &s->libvirtd, &pair, NULL, &err) == 0) {
        vmc_report_observe(s->report, "the resume was granted although its second disk is "
                           "held by %s", holder.name);
        all_broken(s, ids + 4, 2, "the resume was not refused");
        stop_all_guests(s);
        return;
    }
    observe_refusal(s, "resume of the two-disk domain", &err);
    domain_init(s, &taker, "excl-atomic-taker");
    domain_add_disk(&taker, disk, 0);
    if (guest_spawn(s, &s->libvirtd, &taker, &err) < 0) {
        snprintf(why, sizeof(why), "the third domain did not start: %s", err.message);
        vmc_report_broken(s->report, "excl.atomic", why);
    } else if (domain_acquire(s, &s->libvirtd, &taker, NULL, &err) < 0) {
        observe_refusal(s, "another domain on the first disk", &err);
        vmc_report_result(s->report, "excl.atomic", false);
    } else {
        vmc_report_observe(s->report, "another domain took the first disk");
        vmc_report_result(s->report, "excl.atomic", true);
        if (domain_release(s, &s->libvirtd, &taker, NULL, NULL, &err) < 0)
            observe_refusal(s, "its pause", &err);
    }
    if (domain_release(s, &s->libvirtd, &holder, NULL, NULL, &err) < 0)
        observe_refusal(s, "pause of the holder", &err);
    if (domain_acquire(s, &s->libvirtd, &pair, NULL, &err) < 0) {
        observe_refusal(s, "the second resume", &err);
        vmc_report_result(s->report, "excl.retry", false);
    } else {
        vmc_report_observe(s->report, "the second resume was granted");
        vmc_report_result(s->report, "excl.retry", true);
    }
    stop_all_guests(s);
}

/* ---- shared and read-only ---- */

static void group_shared(suite *s)
{
    static const char *const ids[] = {
        "shared.both", "shared.excl-refused", "shared.last-out", "shared.shared-refused",
    };
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain first;
    vmc_domain second;
    vmc_domain exclusive;
    vmc_domain late;
    vml_error err;
    bool ok = true;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "shared", disk, &err) < 0) {
        all_broken(s, ids, 4, err.message);
        return;
    }
    domain_init(s, &first, "shared-1");
    domain_add_disk(&first, disk, VIR_LOCK_MANAGER_RESOURCE_SHARED);
    domain_init(s, &second, "shared-2");
    domain_add_disk(&second, disk, VIR_LOCK_MANAGER_RESOURCE_SHARED);
    if (start_needed(s, &s->libvirtd, &first, "the first sharer", why, sizeof(why)) < 0) {
        all_broken(s, ids, 4, why);
        return;
    }
    if (start_refused(s, &s->libvirtd, &second, "the second sharer", &err) != 0) {
        vmc_report_result(s->report, "shared.both", false);
        all_broken(s, ids + 1, 3, "the disk could not be shared");
        stop_all_guests(s);
        return;
    }
    vmc_report_result(s->report, "shared.both", true);

    domain_init(s, &exclusive, "shared-excl");
    domain_add_disk(&exclusive, disk, 0);
    if (guest_spawn(s, &s->libvirtd, &exclusive, &err) < 0) {
        snprintf(why, sizeof(why), "the exclusive domain did not start: %s", err.message);
        all_broken(s, ids + 1, 3, why);
        stop_all_guests(s);
        return;
    }
    if (domain_acquire(s, &s->libvirtd, &exclusive, NULL, &err) == 0) {
        vmc_report_observe(s->report, "the exclusive user was granted the shared disk");
        vmc_report_result(s->report, "shared.excl-refused", false);
        all_broken(s, ids + 2, 2, "the exclusive user was not refused");
        stop_all_guests(s);
        return;
    }
    observe_refusal(s, "exclusive user", &err);
    vmc_report_result(s->report, "shared.excl-refused", true);

    if (domain_release(s, &s->libvirtd, &first, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause of the first sharer", &err);
        ok = false;
    } else if (domain_acquire(s, &s->libvirtd, &exclusive, NULL, &err) == 0) {
        vmc_report_observe(s->report, "the exclusive user was granted the disk while the "
                           "second sharer still runs");
        ok = false;
    }
    if (domain_release(s, &s->libvirtd, &second, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause of the second sharer", &err);
        ok = false;
    }
    if (ok && domain_acquire(s, &s->libvirtd, &exclusive, NULL, &err) < 0) {
        observe_refusal(s, "exclusive user after both paused", &err);
        ok = false;
    }
    vmc_report_result(s->report, "shared.last-out", ok);
    if (!ok) {
        vmc_report_broken(s->report, "shared.shared-refused",
                          "the disk is not held exclusively");
        stop_all_guests(s);
        return;
    }
    domain_init(s, &late, "shared-late");
    domain_add_disk(&late, disk, VIR_LOCK_MANAGER_RESOURCE_SHARED);
    vmc_report_result(s->report, "shared.shared-refused",
                      start_refused(s, &s->libvirtd, &late, "a sharer", &err) == 1);
    stop_all_guests(s);
}

static void group_readonly(suite *s)
{
    char disk[VMC_PATH_MAX];
    vmc_domain reader;
    vmc_domain writer;
    vmc_domain reader2;
    vml_error err;
    bool ok = true;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "readonly", disk, &err) < 0) {
        vmc_report_broken(s->report, "readonly.ignored", err.message);
        return;
    }
    domain_init(s, &reader, "readonly-1");
    domain_add_disk(&reader, disk, VIR_LOCK_MANAGER_RESOURCE_READONLY);
    domain_init(s, &writer, "readonly-writer");
    domain_add_disk(&writer, disk, 0);
    domain_init(s, &reader2, "readonly-2");
    domain_add_disk(&reader2, disk, VIR_LOCK_MANAGER_RESOURCE_READONLY);
    ok = start_refused(s, &s->libvirtd, &reader, "a read-only user", &err) == 0 && ok;
    ok = start_refused(s, &s->libvirtd, &writer, "a writer", &err) == 0 && ok;
    ok = start_refused(s, &s->libvirtd, &reader2, "another read-only user", &err) == 0 && ok;
    vmc_report_result(s->report, "readonly.ignored", ok);
    stop_all_guests(s);
}

/* ---- aliases ---- */

static void group_alias(suite *s)
{
    static const char *const ids[] = { "alias.symlink", "alias.hardlink", "alias.spelling" };
    char disk[VMC_PATH_MAX];
    char link_path[VMC_PATH_MAX + 16];
    char why[VMC_PATH_MAX + 256];
    const char *base;
    vmc_domain holder;
    vmc_domain user;
    vml_error err;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "alias", disk, &err) < 0) {
        all_broken(s, ids, 3, err.message);
        return;
    }
    domain_init(s, &holder, "alias");
    domain_add_disk(&holder, disk, 0);
    if (start_needed(s, &s->libvirtd, &holder, "the holding domain", why, sizeof(why)) < 0) {
        all_broken(s, ids, 3, why);
        return;
    }

    snprintf(link_path, sizeof(link_path), "%s.symlink", disk);
    if (symlink(disk, link_path) < 0) {
        snprintf(why, sizeof(why), "cannot create symlink %s: %s", link_path, strerror(errno));
        vmc_report_broken(s->report, "alias.symlink", why);
    } else {
        domain_init(s, &user, "alias-symlink");
        domain_add_disk(&user, link_path, 0);
        vmc_report_result(s->report, "alias.symlink",
                          start_refused(s, &s->libvirtd, &user, link_path, &err) == 1);
    }

    snprintf(link_path, sizeof(link_path), "%s.hardlink", disk);
    if (link(disk, link_path) < 0) {
        snprintf(why, sizeof(why), "cannot create hard link %s: %s", link_path,
                 strerror(errno));
        vmc_report_broken(s->report, "alias.hardlink", why);
    } else {
        domain_init(s, &user, "alias-hardlink");
        domain_add_disk(&user, link_path, 0);
        vmc_report_result(s->report, "alias.hardlink",
                          start_refused(s, &s->libvirtd, &user, link_path, &err) == 1);
    }

    base = strrchr(disk, '/');
    snprintf(link_path, sizeof(link_path), "%.*s/.%s", (int)(base - disk), disk, base);
    domain_init(s, &user, "alias-spelling");
    domain_add_disk(&user, link_path, 0);
    vmc_report_result(s->report, "alias.spelling",
                      start_refused(s, &s->libvirtd, &user, link_path, &err) == 1);
    stop_all_guests(s);
}

/* ---- pause, resume, state ---- */

/* Pause, let another domain use the disk, resume with the saved state: fencing. */
static void check_pause_other(suite *s)
{
    static const char *const ids[] = { "pause.release", "pause.resume-busy", "state.fencing" };
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    char state[VMC_STATE_MAX];
    bool state_set = false;
    vmc_domain dom;
    vmc_domain rival;
    vml_error err;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "pause", disk, &err) < 0) {
        all_broken(s, ids, 3, err.message);
        return;
    }
    domain_init(s, &dom, "pause");
    domain_add_disk(&dom, disk, 0);
    if (start_needed(s, &s->libvirtd, &dom, "the domain", why, sizeof(why)) < 0) {
        all_broken(s, ids, 3, why);
        return;
    }
    if (domain_release(s, &s->libvirtd, &dom, state, &state_set, &err) < 0) {
        observe_refusal(s, "pause", &err);
        vmc_report_result(s->report, "pause.release", false);
        all_broken(s, ids + 1, 2, "the pause failed");
        stop_all_guests(s);
        return;
    }
    vmc_report_observe(s->report, "state from pause: %s", state_set ? state : "none (NULL)");
    domain_init(s, &rival, "pause-rival");
    domain_add_disk(&rival, disk, 0);
    if (start_refused(s, &s->libvirtd, &rival, "another domain", &err) != 0) {
        vmc_report_result(s->report, "pause.release", false);
        all_broken(s, ids + 1, 2, "the paused domain's disk stayed held");
        stop_all_guests(s);
        return;
    }
    vmc_report_result(s->report, "pause.release", true);

    if (domain_acquire(s, &s->libvirtd, &dom, state_set ? state : NULL, &err) == 0) {
        vmc_report_observe(s->report, "the resume was granted while %s holds the disk",
                           rival.name);
        vmc_report_result(s->report, "pause.resume-busy", false);
        vmc_report_broken(s->report, "state.fencing", "two domains hold the disk");
        stop_all_guests(s);
        return;
    }
    observe_refusal(s, "resume", &err);
    vmc_report_result(s->report, "pause.resume-busy", true);

    /* The other domain pauses and stops: the disk is free, but it was used meanwhile. */
    if (domain_release(s, &s->libvirtd, &rival, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause of the other domain", &err);
        vmc_report_broken(s->report, "state.fencing", "the other domain did not pause");
        stop_all_guests(s);
        return;
    }
    guest_kill(s, rival.pid);
    if (domain_acquire(s, &s->libvirtd, &dom, state_set ? state : NULL, &err) == 0) {
        vmc_report_observe(s->report, "the resume with the saved state was granted: nothing "
                           "told that %s used the disk meanwhile", rival.name);
        vmc_report_result(s->report, "state.fencing", false);
    } else {
        observe_refusal(s, "resume with the saved state", &err);
        vmc_report_result(s->report, "state.fencing", true);
    }
    stop_all_guests(s);
}

/* Pause and resume untouched, a double release, and a migration hand-off on one host. */
static void check_pause_resume(suite *s)
{
    static const char *const ids[] = { "pause.resume", "pause.double", "state.migration" };
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    char state[VMC_STATE_MAX];
    char inquired[VMC_STATE_MAX];
    bool state_set = false;
    bool inquired_set = false;
    bool uses_state = (s->libvirtd.driver_flags & VIR_LOCK_MANAGER_USES_STATE) != 0;
    vmc_domain dom;
    vmc_domain destination;
    vmc_domain rival;
    vml_error err;
    bool ok = true;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "resume", disk, &err) < 0) {
        all_broken(s, ids, 3, err.message);
        return;
    }
    domain_init(s, &dom, "resume");
    domain_add_disk(&dom, disk, 0);
    if (start_needed(s, &s->libvirtd, &dom, "the domain", why, sizeof(why)) < 0) {
        all_broken(s, ids, 3, why);
        return;
    }

    if (domain_release(s, &s->libvirtd, &dom, state, &state_set, &err) < 0) {
        observe_refusal(s, "pause", &err);
        ok = false;
    } else if (domain_acquire(s, &s->libvirtd, &dom, state_set ? state : NULL, &err) < 0) {
        observe_refusal(s, "resume with the saved state", &err);
        ok = false;
    }
    if (ok && uses_state && !state_set) {
        vmc_report_observe(s->report, "the plugin sets USES_STATE but pause gave no state");
        ok = false;
    }
    vmc_report_result(s->report, "pause.resume", ok);
    if (!ok) {
        all_broken(s, ids + 1, 2, "pause and resume failed");
        stop_all_guests(s);
        return;
    }

    /* The STOP event after qemuProcessStopCPUs: two releases, then a resume. */
    if (domain_release(s, &s->libvirtd, &dom, state, &state_set, &err) < 0) {
        observe_refusal(s, "first release", &err);
        ok = false;
    }
    if (domain_release(s, &s->libvirtd, &dom, NULL, NULL, &err) < 0)
        vmc_report_observe(s->report, "second release: error: %s (libvirt logs it as a "
                           "warning)", err.message);
    else
        vmc_report_observe(s->report, "second release: accepted");
    if (ok && domain_acquire(s, &s->libvirtd, &dom, state_set ? state : NULL, &err) < 0) {
        observe_refusal(s, "resume", &err);
        ok = false;
    }
    vmc_report_result(s->report, "pause.double", ok);
    if (!ok) {
        vmc_report_broken(s->report, "state.migration", "the domain is not running");
        stop_all_guests(s);
        return;
    }

    /*
     * Migration (libvirt-lock-facts.md 3.3): Begin inquires on the running source; the
     * destination QEMU (same domain, another libvirtd, a new pid) runs the start hook; the
     * source pauses at switch-over; Finish acquires on the destination with the cookie's
     * state; the source QEMU is killed.
     */
    request_reset(s);
    if (ask(s, &s->libvirtd, VMC_REQ_INQUIRE, &dom) < 0) {
        observe_refusal(s, "inquire", &s->reply.err);
        ok = false;
    } else {
        inquired_set = s->reply.state_set;
        snprintf(inquired, sizeof(inquired), "%s", s->reply.state);
        vmc_report_observe(s->report, "state from inquire: %s",
                           inquired_set ? inquired : "none (NULL)");
        if (uses_state && !inquired_set) {
            vmc_report_observe(s->report, "the plugin sets USES_STATE but returned no state");
            ok = false;
        }
    }
    destination = dom;
    destination.pid = 0;
    if (ok && s->other.pid <= 0 &&
        vmc_worker_start(s->opts->plugin, s->opts->config, s->opts->stub,
                         ++s->workers_started, &s->other, &err) < 0) {
        vmc_report_observe(s->report, "the destination libvirtd did not start: %s",
                           err.message);
        ok = false;
    }
    if (ok && guest_spawn(s, &s->other, &destination, &err) < 0) {
        observe_refusal(s, "the destination's start hook", &err);
        ok = false;
    }
    if (ok && domain_release(s, &s->libvirtd, &dom, NULL, NULL, &err) < 0) {
        observe_refusal(s, "the source's pause", &err);
        ok = false;
    }
    if (ok && domain_acquire(s, &s->other, &destination, inquired_set ? inquired : NULL,
                             &err) < 0) {
        observe_refusal(s, "the destination's acquire with the cookie's state", &err);
        ok = false;
    }
    if (ok) {
        guest_kill(s, dom.pid);
        domain_init(s, &rival, "migration-rival");
        domain_add_disk(&rival, disk, 0);
        if (start_refused(s, &s->libvirtd, &rival, "another domain after the migration",
                          &err) != 1) {
            vmc_report_observe(s->report, "the destination does not hold the disk");
            ok = false;
        }
    }
    vmc_report_result(s->report, "state.migration", ok);
    stop_all_guests(s);
}

static void group_pause(suite *s)
{
    check_pause_other(s);
    check_pause_resume(s);
}

/* ---- hotplug ---- */

static void group_hotplug(suite *s)
{
    static const char *const ids[] = {
        "hotplug.attach", "hotplug.busy", "hotplug.detach", "hotplug.paused",
    };
    char disks[4][VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain dom;
    vmc_domain waiting;
    vmc_domain other;
    vml_error err;
    bool attached;

    memset(&err, 0, sizeof(err));
    for (int i = 0; i < 4; i++) {
        if (make_image(s, "hotplug", disks[i], &err) < 0) {
            all_broken(s, ids, 4, err.message);
            return;
        }
    }
    domain_init(s, &dom, "hotplug");
    domain_add_disk(&dom, disks[0], 0);
    domain_init(s, &waiting, "hotplug-waiting");
    domain_add_disk(&waiting, disks[1], 0);
    domain_init(s, &other, "hotplug-other");
    domain_add_disk(&other, disks[2], 0);
    memset(&err, 0, sizeof(err));
    if (start_needed(s, &s->libvirtd, &dom, "the domain", why, sizeof(why)) < 0 ||
        start_needed(s, &s->libvirtd, &other, "the other domain", why, sizeof(why)) < 0 ||
        guest_spawn(s, &s->libvirtd, &waiting, &err) < 0) {
        if (err.code != 0)
            snprintf(why, sizeof(why), "the waiting domain did not start: %s", err.message);
        all_broken(s, ids, 4, why);
        stop_all_guests(s);
        return;
    }

    domain_add_disk(&dom, disks[1], 0);
    request_reset(s);
    s->req.disk_index = dom.ndisks - 1;
    attached = ask(s, &s->libvirtd, VMC_REQ_ATTACH, &dom) == 0;
    if (!attached) {
        observe_refusal(s, "attach", &s->reply.err);
        vmc_report_result(s->report, "hotplug.attach", false);
        domain_remove_disk(&dom, dom.ndisks - 1);
    } else if (domain_acquire(s, &s->libvirtd, &waiting, NULL, &err) == 0) {
        vmc_report_observe(s->report, "another domain was granted the hot-plugged disk");
        vmc_report_result(s->report, "hotplug.attach", false);
        attached = false;
    } else {
        observe_refusal(s, "another domain on the hot-plugged disk", &err);
        vmc_report_result(s->report, "hotplug.attach", true);
    }

    domain_add_disk(&dom, disks[2], 0);
    request_reset(s);
    s->req.disk_index = dom.ndisks - 1;
    if (ask(s, &s->libvirtd, VMC_REQ_ATTACH, &dom) == 0) {
        vmc_report_observe(s->report, "attaching a disk %s holds was granted", other.name);
        vmc_report_result(s->report, "hotplug.busy", false);
    } else {
        observe_refusal(s, "attach of a disk in use", &s->reply.err);
        vmc_report_result(s->report, "hotplug.busy", true);
    }
    domain_remove_disk(&dom, dom.ndisks - 1);     /* libvirt does not add a refused device */

    if (!attached) {
        vmc_report_broken(s->report, "hotplug.detach", "the disk was not attached");
    } else {
        request_reset(s);
        s->req.disk_index = 1;
        if (ask(s, &s->libvirtd, VMC_REQ_DETACH, &dom) < 0) {
            observe_refusal(s, "detach", &s->reply.err);
            vmc_report_result(s->report, "hotplug.detach", false);
        } else {
            domain_remove_disk(&dom, 1);
            if (domain_acquire(s, &s->libvirtd, &waiting, NULL, &err) < 0) {
                observe_refusal(s, "another domain on the unplugged disk", &err);
                vmc_report_result(s->report, "hotplug.detach", false);
            } else {
                vmc_report_result(s->report, "hotplug.detach", true);
            }
        }
    }

    /* libvirt-lock-facts.md 7.6: attach while paused acquires at once; resume takes all. */
    if (domain_release(s, &s->libvirtd, &dom, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause", &err);
        vmc_report_broken(s->report, "hotplug.paused", "the pause failed");
        stop_all_guests(s);
        return;
    }
    domain_add_disk(&dom, disks[3], 0);
    request_reset(s);
    s->req.disk_index = dom.ndisks - 1;
    if (ask(s, &s->libvirtd, VMC_REQ_ATTACH, &dom) < 0) {
        observe_refusal(s, "attach while paused", &s->reply.err);
        vmc_report_broken(s->report, "hotplug.paused", "the attach while paused failed");
    } else if (domain_acquire(s, &s->libvirtd, &dom, NULL, &err) < 0) {
        observe_refusal(s, "resume after the attach", &err);
        vmc_report_result(s->report, "hotplug.paused", false);
    } else {
        vmc_report_observe(s->report, "the resume took both disks");
        vmc_report_result(s->report, "hotplug.paused", true);
    }
    stop_all_guests(s);
}

/* ---- libvirtd restart ---- */

static void group_restart(suite *s)
{
    static const char *const ids[] = { "restart.keep", "restart.continue" };
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    unsigned int old_number = s->libvirtd.number;
    vmc_domain dom;
    vmc_domain rival;
    vmc_domain taker;
    vml_error err;
    bool ok = true;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "restart", disk, &err) < 0) {
        all_broken(s, ids, 2, err.message);
        return;
    }
    domain_init(s, &dom, "restart");
    domain_add_disk(&dom, disk, 0);
    if (start_needed(s, &s->libvirtd, &dom, "the domain", why, sizeof(why)) < 0) {
        all_broken(s, ids, 2, why);
        return;
    }
    /* The old libvirtd exits (drvDeinit); its guests become the suite's. */
    vmc_worker_stop(&s->libvirtd);
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (s->guests[i].worker == old_number)
            s->guests[i].worker = 0;
    }
    if (vmc_worker_start(s->opts->plugin, s->opts->config, s->opts->stub,
                         ++s->workers_started, &s->libvirtd, &err) < 0) {
        snprintf(why, sizeof(why), "the new libvirtd did not start: %s", err.message);
        all_broken(s, ids, 2, why);
        stop_all_guests(s);
        return;
    }
    vmc_report_diag(s->report, "libvirtd #%u exited; libvirtd #%u (pid %d) continues",
                    old_number, s->libvirtd.number, (int)s->libvirtd.pid);
    domain_init(s, &rival, "restart-rival");
    domain_add_disk(&rival, disk, 0);
    vmc_report_result(s->report, "restart.keep",
                      start_refused(s, &s->libvirtd, &rival, "another domain", &err) == 1 &&
                      kill(dom.pid, 0) == 0);

    domain_init(s, &taker, "restart-taker");
    domain_add_disk(&taker, disk, 0);
    if (domain_release(s, &s->libvirtd, &dom, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause by the new libvirtd", &err);
        ok = false;
    } else if (start_refused(s, &s->libvirtd, &taker, "another domain while paused",
                             &err) != 0) {
        ok = false;
    } else if (domain_release(s, &s->libvirtd, &taker, NULL, NULL, &err) < 0) {
        observe_refusal(s, "pause of the other domain", &err);
        ok = false;
    } else if (domain_acquire(s, &s->libvirtd, &dom, NULL, &err) < 0) {
        observe_refusal(s, "resume by the new libvirtd", &err);
        ok = false;
    }
    vmc_report_result(s->report, "restart.continue", ok);
    stop_all_guests(s);
}

/* ---- owner death ---- */

static void check_stop_release(suite *s)
{
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain dom;
    vmc_domain next;
    vml_error err;
    long long since;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "stop", disk, &err) < 0) {
        vmc_report_broken(s->report, "stop.release", err.message);
        return;
    }
    domain_init(s, &dom, "stop");
    domain_add_disk(&dom, disk, 0);
    domain_init(s, &next, "stop-next");
    domain_add_disk(&next, disk, 0);
    if (start_needed(s, &s->libvirtd, &dom, "the domain", why, sizeof(why)) < 0 ||
        guest_spawn(s, &s->libvirtd, &next, &err) < 0) {
        if (err.code != 0)
            snprintf(why, sizeof(why), "the next domain did not start: %s", err.message);
        vmc_report_broken(s->report, "stop.release", why);
        stop_all_guests(s);
        return;
    }
    since = monotonic_us();
    guest_kill(s, dom.pid);
    vmc_report_observe(s->report, "stand-in QEMU %d killed and reaped in %.3f ms",
                       (int)dom.pid, (double)(monotonic_us() - since) / 1000.0);
    vmc_report_result(s->report, "stop.release",
                      acquire_after_death(s, &s->libvirtd, &next, "the kill", since,
                                          1000, 5000));
    stop_all_guests(s);
}

static void check_no_holder(suite *s)
{
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain owner;
    vmc_domain next;
    vml_error err;
    long long since;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "noholder", disk, &err) < 0) {
        vmc_report_broken(s->report, "death.no-holder", err.message);
        return;
    }
    domain_init(s, &owner, "noholder");
    domain_add_disk(&owner, disk, 0);
    domain_init(s, &next, "noholder-next");
    domain_add_disk(&next, disk, 0);
    if (special_spawn(s, &s->libvirtd, &owner, VMC_SPECIAL_NO_HOOK, false, NULL, &err) < 0 ||
        domain_acquire(s, &s->libvirtd, &owner, NULL, &err) < 0 ||
        guest_spawn(s, &s->libvirtd, &next, &err) < 0) {
        snprintf(why, sizeof(why), "setup failed: %s", err.message);
        vmc_report_broken(s->report, "death.no-holder", why);
        stop_all_guests(s);
        return;
    }
    vmc_report_observe(s->report, "libvirtd acquired for process %d, which never registered "
                       "a holder connection", (int)owner.pid);
    since = monotonic_us();
    guest_kill(s, owner.pid);
    vmc_report_result(s->report, "death.no-holder",
                      acquire_after_death(s, &s->libvirtd, &next, "the kill", since, 50,
                                          2000));
    stop_all_guests(s);
}

/* The holder connection closes while QEMU lives: the daemon must kill it, then release. */
static void check_holder_close(suite *s, const char *id, bool ignore_sigterm, int want_signal)
{
    char disk[VMC_PATH_MAX];
    char why[VMC_PATH_MAX + 256];
    vmc_domain owner;
    vmc_domain next;
    vml_error err;
    bool fd_given = false;
    bool ok;
    int status;

    memset(&err, 0, sizeof(err));
    if (make_image(s, "holder", disk, &err) < 0) {
        vmc_report_broken(s->report, id, err.message);
        return;
    }
    domain_init(s, &owner, "holder");
    domain_add_disk(&owner, disk, 0);
    domain_init(s, &next, "holder-next");
    domain_add_disk(&next, disk, 0);
    if (special_spawn(s, &s->libvirtd, &owner, VMC_SPECIAL_HOOK, ignore_sigterm, &fd_given,
                      &err) < 0 ||
        domain_acquire(s, &s->libvirtd, &owner, NULL, &err) < 0 ||
        guest_spawn(s, &s->libvirtd, &next, &err) < 0) {
        snprintf(why, sizeof(why), "setup failed: %s", err.message);
        vmc_report_broken(s->report, id, why);
        stop_all_guests(s);
        return;
    }
    if (!fd_given) {
        vmc_report_skip(s->report, id, "the plugin leaves QEMU no descriptor");
        stop_all_guests(s);
        return;
    }
    request_reset(s);
    s->req.pid = owner.pid;
    s->req.ctl = VMC_SPECIAL_CLOSE;
    ask(s, &s->libvirtd, VMC_REQ_SPECIAL_CTL, &owner);
    request_reset(s);
    s->req.pid = owner.pid;
    s->req.timeout_ms = 30000;      /* a liveness bound only: the time itself is reported */
    if (ask(s, &s->libvirtd, VMC_REQ_WAIT, &owner) < 0 || !s->reply.exited) {
        vmc_report_observe(s->report, "the owner %d still runs 30 s after closing its holder "
                           "connection", (int)owner.pid);
        vmc_report_result(s->report, id, false);
        stop_all_guests(s);
        return;
    }
    untrack_guest(s, owner.pid);
    status = s->reply.wait_status;
    if (WIFSIGNALED(status))
        vmc_report_observe(s->report, "the owner was killed by signal %d (%s) %.3f ms after "
                           "closing its holder connection", WTERMSIG(status),
                           strsignal(WTERMSIG(status)), (double)s->reply.elapsed_us / 1000.0);
    else
        vmc_report_observe(s->report, "the owner exited with status 0x%x", status);
    ok = WIFSIGNALED(status) && WTERMSIG(status) == want_signal;
    ok = acquire_after_death(s, &s->libvirtd, &next, "the owner was reaped",
                             monotonic_us(), 50, 2000) && ok;
    vmc_report_result(s->report, id, ok);
    stop_all_guests(s);
}

static void group_death(suite *s)
{
    check_stop_release(s);
    check_no_holder(s);
    check_holder_close(s, "holder.close", false, SIGTERM);
    check_holder_close(s, "holder.sigkill", true, SIGKILL);
}

/* ---- running ---- */

typedef struct group {
    const char *name;
    void (*run)(suite *s);
} group;

static const group groups[] = {
    { "params", group_params },
    { "start", group_start },
    { "excl", group_excl },
    { "shared", group_shared },
    { "readonly", group_readonly },
    { "alias", group_alias },
    { "pause", group_pause },
    { "hotplug", group_hotplug },
    { "restart", group_restart },
    { "death", group_death },
};

bool vmc_checks_group_exists(const char *name)
{
    if (strcmp(name, "load") == 0 || strcmp(name, "errors") == 0)
        return true;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (strcmp(groups[i].name, name) == 0)
            return true;
    }
    return false;
}

static bool selected(const vmc_options *opts, const char *name)
{
    if (opts->nonly == 0)
        return true;
    for (size_t i = 0; i < opts->nonly; i++) {
        if (strcmp(opts->only[i], name) == 0)
            return true;
    }
    return false;
}

void vmc_checks_emergency_stop(void)
{
    for (size_t i = 0; i < MAX_GUESTS; i++) {
        if (emergency_pids[i] > 0)
            kill(emergency_pids[i], SIGKILL);
    }
}

int vmc_checks_run(const vmc_options *opts, vmc_report *report)
{
    suite *s = calloc(1, sizeof(*s));
    vml_error err;
    int ret = -1;

    memset(&err, 0, sizeof(err));
    if (s == NULL) {
        vmc_report_broken(report, "load.init", "out of memory");
        return -1;
    }
    s->opts = opts;
    s->report = report;
    /* Guests of a libvirtd that exits are reparented here, so they can be reaped. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        vmc_report_diag(report, "warning: cannot become a child subreaper: %s",
                        strerror(errno));

    if (vmc_worker_start(opts->plugin, opts->config, opts->stub, ++s->workers_started,
                         &s->libvirtd, &err) < 0) {
        vmc_report_observe(report, "error: %s", err.message);
        vmc_report_result(report, "load.init", false);
        goto out;
    }
    vmc_report_observe(report, "libvirtd #%u (pid %d) loaded %s", s->libvirtd.number,
                       (int)s->libvirtd.pid, opts->plugin);
    vmc_report_result(report, "load.init", true);
    check_load_table(s);

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (!selected(opts, groups[i].name))
            continue;
        vmc_report_diag(report, "---- %s", groups[i].name);
        groups[i].run(s);
    }

    if (s->refusals == 0) {
        vmc_report_skip(report, "errors.reported", "no refusal was observed in this run");
    } else {
        vmc_report_observe(report, "%u refusals observed, %u without a reported error",
                           s->refusals, s->unreported);
        vmc_report_result(report, "errors.reported", s->unreported == 0);
    }
    ret = 0;
 out:
    stop_all_guests(s);
    vmc_worker_stop(&s->other);
    vmc_worker_stop(&s->libvirtd);
    free(s);
    return ret;
}
