/* dmn_owner.c: lock owners by pid, pidfds, and SIGTERM-then-SIGKILL of an owner whose holder connection closed. */
#include "dmn_owner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_log.h"
#include "vml_child.h"

int dmn_identity_copy(vml_ls_owner *dst, const vml_ls_owner *src, vml_error *err)
{
    char *name = strdup(src->name != NULL ? src->name : "");

    if (name == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record the owner identity");
        return -1;
    }
    memcpy(dst->uuid, src->uuid, sizeof(dst->uuid));
    dst->name = name;
    dst->id = src->id;
    dst->pid = src->pid;
    return 0;
}

void dmn_identity_clear(vml_ls_owner *identity)
{
    free(identity->name);
    memset(identity, 0, sizeof(*identity));
}

void dmn_owner_format_uuid(const char uuid[16], char out[37])
{
    const unsigned char *u = (const unsigned char *)uuid;

    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/*
 * State and start time of pid from /proc/PID/stat.  Returns 0, or -1 with errno ESRCH when
 * there is no such process, another errno when it could not be read (EMFILE, ENOMEM, ...:
 * the process may well exist).  The command name (field 2) may hold spaces and
 * parentheses: parse after the last ')'.
 */
static int read_proc_stat(unsigned int pid, char *state, unsigned long long *start_time)
{
    char path[64], buf[1024];
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            errno = ESRCH;
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0 && errno == ESRCH) {
        close(fd);
        return -1;      /* it exited between open and read */
    }
    {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    if (n < 0)
        return -1;
    if (n == 0) {
        errno = ESRCH;
        return -1;
    }
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ') {
        errno = EIO;
        return -1;
    }
    p += 2;
    *state = *p;
    /* starttime is field 22; the state is field 3. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL) {
            errno = EIO;
            return -1;
        }
        p++;
    }
    *start_time = strtoull(p, NULL, 10);
    return 0;
}

int dmn_proc_start_time(unsigned int pid, unsigned long long *start_time)
{
    char state;

    if (pid == 0 || pid > (unsigned int)INT32_MAX) {
        errno = ESRCH;
        return -1;
    }
    if (read_proc_stat(pid, &state, start_time) < 0)
        return -1;
    if (state == 'Z' || state == 'X') {
        errno = ESRCH;
        return -1;
    }
    return 0;
}

bool dmn_owner_probe_exited(const dmn_owner *owner)
{
    unsigned long long start_time;
    char state;

    if (owner->pidfd >= 0)
        return false;
    /* Only proof counts: a /proc that cannot be read now (EMFILE...) is asked again later. */
    if (read_proc_stat(owner->pid, &state, &start_time) < 0)
        return errno == ESRCH;
    return state == 'Z' || state == 'X' || start_time != owner->start_time;
}

/* Signal the owner's process: through the pidfd, or, for a probed owner, by pid once the
 * probe shows the pid still names the same process. */
static int owner_signal(const dmn_owner *owner, int signo)
{
    if (owner->pidfd >= 0)
        return pidfd_send_signal(owner->pidfd, signo, NULL, 0);
    if (dmn_owner_probe_exited(owner)) {
        errno = ESRCH;
        return -1;
    }
    return kill((pid_t)owner->pid, signo);
}

int dmn_owners_new(unsigned int kill_grace_ms, dmn_owners **out, vml_error *err)
{
    dmn_owners *owners = calloc(1, sizeof(*owners));

    if (owners == NULL || (owners->by_pid = dmn_hash_new()) == NULL) {
        free(owners);
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot create the owner table");
        return -1;
    }
    owners->kill_grace_ms = kill_grace_ms;
    *out = owners;
    return 0;
}

static void owner_free(dmn_owner *owner)
{
    if (owner == NULL)
        return;
    if (owner->pidfd >= 0)
        close(owner->pidfd);
    dmn_identity_clear(&owner->identity);
    free(owner->uri);
    free(owner);
}

void dmn_owners_free(dmn_owners *owners)
{
    if (owners == NULL)
        return;
    while (owners->head != NULL)
        dmn_owners_remove(owners, owners->head);
    /* Helpers still running are left to finish on their own; only our pidfds go. */
    while (owners->helpers != NULL) {
        dmn_helper *helper = owners->helpers;
        owners->helpers = helper->next;
        if (helper->pidfd >= 0)
            close(helper->pidfd);
        free(helper);
    }
    dmn_hash_free(owners->by_pid);
    free(owners);
}

dmn_owner *dmn_owners_find(const dmn_owners *owners, unsigned int pid)
{
    return dmn_hash_get(owners->by_pid, &pid, sizeof(pid));
}

int dmn_owners_update_identity(dmn_owners *owners, const vml_ls_owner *identity, vml_error *err)
{
    dmn_owner *owner = dmn_owners_find(owners, identity->pid);
    vml_ls_owner copy = { 0 };

    if (owner == NULL)
        return 0;
    if (dmn_identity_copy(&copy, identity, err) < 0)
        return -1;
    dmn_identity_clear(&owner->identity);
    owner->identity = copy;
    return 0;
}

/* Index a new owner in the registry. */
static int owner_link(dmn_owners *owners, dmn_owner *owner, vml_error *err)
{
    if (dmn_hash_put(owners->by_pid, &owner->pid, sizeof(owner->pid), owner) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record owner pid %u",
                            owner->pid);
        return -1;
    }
    owner->prev = owners->tail;
    if (owners->tail != NULL)
        owners->tail->next = owner;
    else
        owners->head = owner;
    owners->tail = owner;
    owners->count++;
    if (owner->pidfd < 0)
        owners->nprobed++;
    return 0;
}

int dmn_owners_get(dmn_owners *owners, const vml_ls_owner *identity, dmn_owner **out,
                   vml_error *err)
{
    dmn_owner *owner = dmn_owners_find(owners, identity->pid);
    int ret = -1;

    if (owner != NULL) {
        if (dmn_owners_update_identity(owners, identity, err) < 0)
            return -1;
        *out = owner;
        return 0;
    }
    owner = calloc(1, sizeof(*owner));
    if (owner == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record owner pid %u",
                            identity->pid);
        goto out;
    }
    owner->pidfd = -1;
    owner->pid = identity->pid;
    if (dmn_identity_copy(&owner->identity, identity, err) < 0)
        goto out;
    /* pid 0 and pids beyond pid_t's range name no process: pidfd_open would act on ours. */
    if (identity->pid == 0 || identity->pid > (unsigned int)INT32_MAX) {
        errno = ESRCH;
    } else {
        owner->pidfd = pidfd_open((pid_t)identity->pid, 0);
    }
    if (owner->pidfd < 0 && errno == ENOSYS) {
        char state;

        if (owners->nprobed == 0)
            VML_WARN("pidfd_open() is not available: watching owner processes through /proc "
                     "every %d ms instead", DMN_OWNER_PROBE_MS);
        if (read_proc_stat(identity->pid, &state, &owner->start_time) == 0 && state != 'Z' &&
            state != 'X')
            errno = 0;
        else
            errno = ESRCH;
    }
    if (owner->pidfd < 0 && errno != 0) {
        if (errno == ESRCH || errno == EINVAL)
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                          "owner pid %u is not a running process", identity->pid);
        else
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno,
                                "cannot watch owner pid %u", identity->pid);
        goto out;
    }
    if (owner->pidfd >= 0 && dmn_proc_start_time(owner->pid, &owner->start_time) < 0) {
        /* It exited between pidfd_open and now: no lease for a process that is gone. */
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                      "owner pid %u is not a running process", identity->pid);
        goto out;
    }
    if (owner_link(owners, owner, err) < 0)
        goto out;
    *out = owner;
    owner = NULL;
    ret = 0;
 out:
    owner_free(owner);
    return ret;
}

/* True when pidfd is a pidfd of process pid (its /proc/self/fdinfo says "Pid: PID"; -1 once
 * the process is gone and reaped, which also reads as not naming it). */
static bool pidfd_names(int pidfd, unsigned int pid)
{
    char path[64], buf[1024], want[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    snprintf(want, sizeof(want), "\nPid:\t%u\n", pid);
    return strstr(buf, want) != NULL;
}

int dmn_owners_adopt(dmn_owners *owners, const vml_ls_owner *identity,
                     unsigned long long start_time, int pidfd, dmn_owner **out,
                     vml_error *err)
{
    dmn_owner *owner = dmn_owners_find(owners, identity->pid);
    unsigned long long now_start = 0;
    struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
    int ret = -1;

    if (owner != NULL) {
        if (pidfd >= 0)
            close(pidfd);
        *out = owner;
        return 0;
    }
    if (pidfd >= 0 && !pidfd_names(pidfd, identity->pid)) {
        /* Not a pidfd of that pid (or that process is gone and reaped): probe by pid. */
        VML_WARN("the descriptor handed over for owner pid %u is not its pidfd: probing the "
                 "pid instead", identity->pid);
        close(pidfd);
        pidfd = -1;
    }
    /* The pidfd (when there is one) names the very process; the start time guards a pid
     * that was probed, or reused since the snapshot was taken.  Only proof of an exit
     * counts: a /proc that cannot be read (EMFILE, ENOMEM...) keeps the owner (and with it
     * its leases), as the recorded start time says. */
    if (pidfd >= 0 && poll(&pfd, 1, 0) > 0) {
        close(pidfd);
        return 1;
    }
    if (dmn_proc_start_time(identity->pid, &now_start) < 0) {
        if (errno == ESRCH) {
            if (pidfd >= 0)
                close(pidfd);
            return 1;
        }
        VML_WARN("cannot read /proc for owner pid %u (%s): keeping it as recorded",
                 identity->pid, strerror(errno));
        now_start = start_time;
    }
    if (now_start != start_time) {
        if (pidfd >= 0)
            close(pidfd);
        return 1;
    }
    owner = calloc(1, sizeof(*owner));
    if (owner == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record owner pid %u",
                            identity->pid);
        if (pidfd >= 0)
            close(pidfd);
        goto out;
    }
    owner->pidfd = pidfd;
    owner->pid = identity->pid;
    owner->start_time = start_time;
    if (dmn_identity_copy(&owner->identity, identity, err) < 0 ||
        owner_link(owners, owner, err) < 0)
        goto out;
    *out = owner;
    owner = NULL;
    ret = 0;
 out:
    owner_free(owner);
    return ret;
}

int dmn_owner_set_lockfailure(dmn_owner *owner, int action, const char *uri, vml_error *err)
{
    char *copy = NULL;

    if (uri != NULL && uri[0] != '\0' && (copy = strdup(uri)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot record the URI of owner %u",
                            owner->pid);
        return -1;
    }
    free(owner->uri);
    owner->uri = copy;
    owner->on_lockfailure = action;
    return 0;
}

const char *dmn_lockfailure_name(int action)
{
    switch (action) {
    case DMN_LOCKFAILURE_POWEROFF:
        return "poweroff";
    case DMN_LOCKFAILURE_RESTART:
        return "restart";
    case DMN_LOCKFAILURE_PAUSE:
        return "pause";
    case DMN_LOCKFAILURE_IGNORE:
        return "ignore";
    default:
        return "default";
    }
}

static void owner_kill(dmn_owners *owners, dmn_owner *owner, const char *why)
{
    if (owner_signal(owner, SIGKILL) < 0) {
        if (errno != ESRCH)
            VML_ERROR("cannot send SIGKILL to owner pid %u (domain '%s'): %s", owner->pid,
                      owner->identity.name, strerror(errno));
        return;
    }
    /* Being killed: a holder connection closing as it dies must not count (nor signal) it
     * again, and no SIGKILL is due after this one. */
    owner->kill_pending = true;
    owner->sigkill_sent = true;
    owners->kills++;
    VML_ERROR("sent SIGKILL to owner pid %u (domain '%s'): %s", owner->pid,
              owner->identity.name, why);
}

/* Run the pause helper for owner in the background; -1 when it cannot be started. */
static int spawn_pause_helper(dmn_owners *owners, dmn_owner *owner)
{
    char uuid[37];
    dmn_helper *helper;
    pid_t pid;

    if (owners->pause_helper == NULL || owner->uri == NULL) {
        VML_ERROR("cannot pause domain '%s' (owner pid %u): %s", owner->identity.name,
                  owner->pid, owners->pause_helper == NULL ? "no pause helper is configured"
                                                           : "its libvirt URI is not known");
        return -1;
    }
    helper = calloc(1, sizeof(*helper));
    if (helper == NULL) {
        VML_ERROR("cannot pause domain '%s': out of memory", owner->identity.name);
        return -1;
    }
    dmn_owner_format_uuid(owner->identity.uuid, uuid);
    pid = fork();
    if (pid < 0) {
        VML_ERROR("cannot pause domain '%s': fork failed: %s", owner->identity.name,
                  strerror(errno));
        free(helper);
        return -1;
    }
    if (pid == 0) {
        const char *argv[] = { owners->pause_helper, owner->uri, uuid, NULL };
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        execv(argv[0], (char *const *)argv);
        vml_child_exit(127);
    }
    helper->pid = pid;
    helper->pidfd = pidfd_open(pid, 0);
    helper->owner_pid = owner->pid;
    helper->owner_start_time = owner->start_time;
    helper->next = owners->helpers;
    owners->helpers = helper;
    owners->nhelpers++;
    VML_WARN("pausing domain '%s' (owner pid %u) through %s %s %s (helper pid %d)",
             owner->identity.name, owner->pid, owners->pause_helper, owner->uri, uuid, (int)pid);
    return 0;
}

void dmn_owner_lockfailure(dmn_owners *owners, dmn_owner *owner, const char *what)
{
    const char *action = dmn_lockfailure_name(owner->on_lockfailure);

    if (owner->lockfailure_applied) {
        VML_ERROR("domain '%s' (owner pid %u) lost %s; its on_lockfailure action (%s) was "
                  "already applied", owner->identity.name, owner->pid, what, action);
        return;
    }
    owner->lockfailure_applied = true;
    VML_ERROR("domain '%s' (owner pid %u) lost %s: applying on_lockfailure=%s",
              owner->identity.name, owner->pid, what, action);
    switch (owner->on_lockfailure) {
    case DMN_LOCKFAILURE_IGNORE:
        VML_ERROR("domain '%s' keeps running without that lock (on_lockfailure=ignore)",
                  owner->identity.name);
        break;
    case DMN_LOCKFAILURE_PAUSE:
        if (spawn_pause_helper(owners, owner) < 0)
            owner_kill(owners, owner, "the pause action could not be started, powering off instead");
        break;
    default:
        /* poweroff, restart (powered off here; libvirt decides on a restart), default */
        owner_kill(owners, owner, "its lock was lost (on_lockfailure)");
        break;
    }
}

void dmn_owners_reap_helpers(dmn_owners *owners)
{
    dmn_helper **link = &owners->helpers;

    while (*link != NULL) {
        dmn_helper *helper = *link;
        int status = 0;
        pid_t got = waitpid(helper->pid, &status, WNOHANG);

        if (got == 0) {
            link = &helper->next;
            continue;
        }
        *link = helper->next;
        owners->nhelpers--;
        if (got == helper->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            VML_WARN("pause helper pid %d paused the domain of owner pid %u", (int)helper->pid,
                     helper->owner_pid);
        } else {
            dmn_owner *owner = dmn_owners_find(owners, helper->owner_pid);

            VML_ERROR("pause helper pid %d failed (wait status 0x%x): powering off the owner "
                      "pid %u instead", (int)helper->pid, (unsigned int)status,
                      helper->owner_pid);
            if (owner != NULL && owner->start_time == helper->owner_start_time)
                owner_kill(owners, owner, "the pause helper failed (on_lockfailure=pause)");
        }
        if (helper->pidfd >= 0)
            close(helper->pidfd);
        free(helper);
    }
}

void dmn_owners_remove(dmn_owners *owners, dmn_owner *owner)
{
    dmn_hash_remove(owners->by_pid, &owner->pid, sizeof(owner->pid));
    if (owner->prev != NULL)
        owner->prev->next = owner->next;
    else
        owners->head = owner->next;
    if (owner->next != NULL)
        owner->next->prev = owner->prev;
    else
        owners->tail = owner->prev;
    owners->count--;
    if (owner->pidfd < 0)
        owners->nprobed--;
    owner_free(owner);
}

void dmn_owners_forget_if_idle(dmn_owners *owners, dmn_owner *owner)
{
    /*
     * An idle owner watched by a pidfd is kept while its process lives: libvirt releases
     * and re-acquires for the same QEMU at every pause/resume and hot-plug, and each new
     * owner cost a pidfd_open, a /proc/PID/stat read and (with a keeper) the pidfd's trip
     * there.  Its pidfd still says when it exits (the poll loop reaps it then, before any
     * request of that round), so a recycled pid never finds it.  An owner probed through
     * /proc costs a read every DMN_OWNER_PROBE_MS instead: that one goes at once.
     */
    if (owner == NULL || owner->nholdings > 0 || owner->kill_pending)
        return;
    if (owner->pidfd < 0) {
        dmn_owners_remove(owners, owner);
        return;
    }
    /* Kept: a lock lost after its next acquisition must trigger <on_lockfailure> again, as
     * it would for a new owner. */
    owner->lockfailure_applied = false;
}

size_t dmn_owners_active(const dmn_owners *owners)
{
    size_t n = 0;

    for (const dmn_owner *o = owners->head; o != NULL; o = o->next)
        n += o->nholdings > 0 || o->kill_pending;
    return n;
}

dmn_hangup_result dmn_owners_holder_closed(dmn_owners *owners, dmn_owner *owner, int64_t now_ms)
{
    if (owner->nholdings == 0 || owner->kill_pending)
        return DMN_HANGUP_NOTHING;
    if (owner_signal(owner, SIGTERM) < 0) {
        if (errno == ESRCH)
            return DMN_HANGUP_GONE;
        /* We cannot kill it (e.g. another user's process for an unprivileged daemon): its
         * leases stay held until it exits on its own, which is the safe side. */
        VML_ERROR("holder connection of owner pid %u (domain '%s') closed while it holds "
                  "%zu lease(s), but it cannot be signalled: %s; its leases stay held "
                  "until it exits", owner->pid, owner->identity.name, owner->nholdings,
                  strerror(errno));
        return DMN_HANGUP_NOTHING;
    }
    owner->kill_pending = true;
    owner->sigkill_at_ms = now_ms + owners->kill_grace_ms;
    owners->kills++;
    VML_WARN("holder connection of owner pid %u (domain '%s') closed while it holds %zu "
             "lease(s): sent SIGTERM, SIGKILL in %u ms unless it exits; its leases are "
             "released when it has exited", owner->pid, owner->identity.name,
             owner->nholdings, owners->kill_grace_ms);
    return DMN_HANGUP_SIGNALLED;
}

bool dmn_owners_next_deadline(const dmn_owners *owners, int64_t *deadline_ms)
{
    bool found = false;

    for (const dmn_owner *owner = owners->head; owner != NULL; owner = owner->next) {
        if (!owner->kill_pending || owner->sigkill_sent)
            continue;
        if (!found || owner->sigkill_at_ms < *deadline_ms)
            *deadline_ms = owner->sigkill_at_ms;
        found = true;
    }
    return found;
}

void dmn_owners_run_timers(dmn_owners *owners, int64_t now_ms)
{
    for (dmn_owner *owner = owners->head; owner != NULL; owner = owner->next) {
        if (!owner->kill_pending || owner->sigkill_sent || owner->sigkill_at_ms > now_ms)
            continue;
        owner->sigkill_sent = true;
        if (owner_signal(owner, SIGKILL) < 0) {
            if (errno != ESRCH)
                VML_ERROR("cannot send SIGKILL to owner pid %u (domain '%s'): %s",
                          owner->pid, owner->identity.name, strerror(errno));
            continue;
        }
        VML_WARN("owner pid %u (domain '%s') still running %u ms after SIGTERM: sent SIGKILL",
                 owner->pid, owner->identity.name, owners->kill_grace_ms);
    }
}
