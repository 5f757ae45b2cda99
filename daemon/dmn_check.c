/* dmn_check.c: lost-lock detection: a forked probe checks every lease and reports fixed-size verdicts over a pipe. */
#include "dmn_check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vml_log.h"
#include "dmn_record.h"
#include "vml_child.h"

/* One verdict on the pipe (host byte order: the probe is our own fork). */
typedef struct verdict {
    uint64_t id;            /* lease id */
    uint32_t what;          /* VERDICT_* */
    int32_t errnum;
} verdict;

enum {
    VERDICT_OK,
    VERDICT_REMOVED,        /* the path no longer exists */
    VERDICT_REPLACED,       /* the path names another file than the locked one */
    VERDICT_LOCK_GONE,      /* someone else holds a conflicting lock */
    VERDICT_RECORD,         /* the owner record no longer names us */
    VERDICT_IO_ERROR,       /* the storage failed (errnum) */
};

struct dmn_checker {
    unsigned int interval_ms;
    unsigned int timeout_ms;
    int64_t next_round_ms;
    pid_t child;                    /* the probe, -1 */
    int pipe_fd;                    /* its verdicts, -1 */
    int64_t round_started_ms;
    bool deadline_done;             /* this round's silent leases were declared lost */
    uint64_t *ids;                  /* the leases of the round, in probe order */
    size_t nids;
    size_t nreported;
    unsigned char partial[sizeof(verdict)];
    size_t partial_len;
    unsigned int round_lost;
    unsigned int last_checked;
    unsigned int last_lost;
    uint64_t rounds_done;
    uint64_t want_round;            /* CHECK_NOW waits for this round: start it when due */
};

int dmn_checker_new(unsigned int interval_ms, unsigned int timeout_ms, int64_t now_ms,
                    dmn_checker **out, vml_error *err)
{
    dmn_checker *checker = calloc(1, sizeof(*checker));

    if (checker == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot create the lease checker");
        return -1;
    }
    checker->interval_ms = interval_ms;
    checker->timeout_ms = timeout_ms;
    checker->next_round_ms = now_ms + interval_ms;
    checker->child = -1;
    checker->pipe_fd = -1;
    *out = checker;
    return 0;
}

void dmn_checker_free(dmn_checker *checker)
{
    if (checker == NULL)
        return;
    if (checker->pipe_fd >= 0)
        close(checker->pipe_fd);
    free(checker->ids);
    free(checker);
}

int dmn_checker_fd(const dmn_checker *checker)
{
    return checker->pipe_fd;
}

bool dmn_checker_busy(const dmn_checker *checker)
{
    return checker->child > 0;
}

bool dmn_checker_stuck(const dmn_checker *checker)
{
    return checker->child > 0 && checker->deadline_done;
}

uint64_t dmn_checker_rounds_done(const dmn_checker *checker)
{
    return checker->rounds_done;
}

uint64_t dmn_checker_round_number(const dmn_checker *checker)
{
    return checker->rounds_done + 1;
}

void dmn_checker_last_round(const dmn_checker *checker, unsigned int *checked,
                            unsigned int *lost)
{
    *checked = checker->last_checked;
    *lost = checker->last_lost;
}

unsigned int dmn_checker_interval_ms(const dmn_checker *checker)
{
    return checker->interval_ms;
}

bool dmn_checker_next_deadline(const dmn_checker *checker, int64_t *deadline_ms)
{
    if (checker->child > 0 && !checker->deadline_done) {
        *deadline_ms = checker->round_started_ms + checker->timeout_ms;
        return true;
    }
    if (checker->child <= 0 && checker->interval_ms > 0) {
        *deadline_ms = checker->next_round_ms;
        return true;
    }
    return false;
}

/* ---- the probe (runs in the forked child) ---- */

/* The verdict on one lease, in the forked probe; daemon is the process that forked it. */
static uint32_t probe_lease(const dmn_lease *lease, pid_t daemon, int *errnum)
{
    bool direct = lease->lockspace->path[0] == '\0';
    struct stat st;
    int rc;

    *errnum = 0;
    if (fstat(lease->fd, &st) < 0) {
        *errnum = errno;
        return VERDICT_IO_ERROR;
    }
    if ((direct ? stat(lease->path, &st) : lstat(lease->path, &st)) < 0) {
        *errnum = errno;
        return errno == ENOENT ? VERDICT_REMOVED : VERDICT_IO_ERROR;
    }
    if ((uint64_t)st.st_dev != lease->inode.dev || (uint64_t)st.st_ino != lease->inode.ino)
        return VERDICT_REPLACED;
    rc = dmn_lease_verify_lock(lease->fd, (lease->flags & VML_LS_ACQUIRE_SHARED) != 0, daemon);
    if (rc == 3)
        return VERDICT_OK;      /* released since the fork: the daemon forgot its id */
    if (rc > 0)
        return VERDICT_LOCK_GONE;
    if (rc < 0) {
        *errnum = errno;
        return VERDICT_IO_ERROR;
    }
    if (!direct && (lease->state & VML_SNAP_RECORD)) {
        dmn_record_kind kind;
        dmn_record rec;

        if (dmn_record_read(lease->fd, lease->path, true, &kind, &rec, NULL) < 0) {
            *errnum = errno;
            return VERDICT_IO_ERROR;
        }
        if ((lease->state & VML_SNAP_RECORD_WRITTEN) &&
            (kind != DMN_RECORD_VALID || !rec.held || rec.generation != lease->generation ||
             rec.owner_pid != lease->holders[0]->owner->pid))
            return VERDICT_RECORD;
    }
    return VERDICT_OK;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            vml_child_exit(1);       /* the daemon went away: nobody to tell */
        p += n;
        len -= (size_t)n;
    }
}

__attribute__((noreturn))
static void probe_main(const dmn_lockspaces *reg, int out_fd)
{
    pid_t daemon = getppid();

    signal(SIGPIPE, SIG_DFL);
    for (const dmn_lease *lease = reg->head; lease != NULL; lease = lease->next) {
        verdict v = { .id = lease->id };

        if (lease->state & VML_SNAP_LOST)
            continue;
        v.what = probe_lease(lease, daemon, &v.errnum);
        /* Our copy goes at once: on a filesystem that keeps locks elsewhere, a copy kept
         * to the end of the round would hold a lock the daemon released meanwhile. */
        close(lease->fd);
        write_all(out_fd, &v, sizeof(v));
    }
    /* Leave nothing open behind (fd-tracking tools judge every process). */
    close_range(0, ~0U, 0);
    vml_child_exit(0);
}

/* ---- the daemon side ---- */

int dmn_checker_start(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                      vml_error *err)
{
    int fds[2];
    size_t n = 0;
    pid_t pid;

    if (checker->child > 0)
        return 0;
    free(checker->ids);
    checker->ids = NULL;
    checker->nids = checker->nreported = 0;
    if (reg->nleases > 0 &&
        (checker->ids = calloc(reg->nleases, sizeof(checker->ids[0]))) == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, ENOMEM, "cannot start a lease check");
        return -1;
    }
    for (const dmn_lease *lease = reg->head; lease != NULL; lease = lease->next) {
        if (!(lease->state & VML_SNAP_LOST))
            checker->ids[n++] = lease->id;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "cannot start a lease check");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "cannot fork the lease check");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        probe_main(reg, fds[1]);
    }
    close(fds[1]);
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
        VML_WARN("cannot make the lease check pipe non-blocking: %s", strerror(errno));
    checker->nids = n;
    checker->child = pid;
    checker->pipe_fd = fds[0];
    checker->round_started_ms = now_ms;
    checker->deadline_done = false;
    checker->partial_len = 0;
    checker->round_lost = 0;
    VML_DEBUG("lease check round %llu: probe pid %d checks %zu lease(s)",
              (unsigned long long)checker->rounds_done + 1, (int)pid, n);
    return 0;
}

int dmn_checker_request(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                        uint64_t *round, vml_error *err)
{
    if (checker->child > 0) {
        *round = checker->rounds_done + 2;
    } else {
        if (dmn_checker_start(checker, reg, now_ms, err) < 0)
            return -1;
        *round = checker->rounds_done + 1;
    }
    if (checker->want_round < *round)
        checker->want_round = *round;
    return 0;
}

static const char *verdict_text(uint32_t what)
{
    switch (what) {
    case VERDICT_REMOVED:
        return "its lease file was removed";
    case VERDICT_REPLACED:
        return "its lease file was replaced by another file";
    case VERDICT_LOCK_GONE:
        return "another process or host holds its lock";
    case VERDICT_RECORD:
        return "its owner record no longer names this holder";
    case VERDICT_IO_ERROR:
        return "the storage reports an error";
    default:
        return "an unknown verdict";
    }
}

static void report(dmn_checker *checker, dmn_lockspaces *reg, const verdict *v, dmn_loss_fn lost,
                   void *opaque)
{
    dmn_lease *lease = dmn_hash_get(reg->by_id, &v->id, sizeof(v->id));
    char reason[256];

    if (checker->nreported < checker->nids)
        checker->nreported++;
    if (v->what == VERDICT_OK || lease == NULL || (lease->state & VML_SNAP_LOST))
        return;
    if (v->what == VERDICT_IO_ERROR)
        snprintf(reason, sizeof(reason), "%s (%s)", verdict_text(v->what), strerror(v->errnum));
    else
        snprintf(reason, sizeof(reason), "%s", verdict_text(v->what));
    checker->round_lost++;
    lost(opaque, lease, reason);
}

/* The round is over (EOF or deadline): account for it and schedule the next. */
static void finish_round(dmn_checker *checker, int64_t now_ms)
{
    checker->last_checked = (unsigned int)checker->nreported;
    checker->last_lost = checker->round_lost;
    checker->rounds_done++;
    checker->next_round_ms = now_ms + checker->interval_ms;
}

void dmn_checker_on_readable(dmn_checker *checker, dmn_lockspaces *reg, dmn_loss_fn lost,
                             void *opaque)
{
    int64_t now_ms;

    for (;;) {
        ssize_t n = read(checker->pipe_fd, checker->partial + checker->partial_len,
                         sizeof(checker->partial) - checker->partial_len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            VML_ERROR("reading the lease check failed: %s", strerror(errno));
            n = 0;
        }
        if (n == 0) {
            struct timespec ts;
            int status = 0;

            close(checker->pipe_fd);
            checker->pipe_fd = -1;
            while (waitpid(checker->child, &status, 0) < 0 && errno == EINTR)
                ;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                VML_WARN("lease check probe pid %d ended with wait status 0x%x",
                         (int)checker->child, (unsigned int)status);
            checker->child = -1;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            if (!checker->deadline_done)
                finish_round(checker, now_ms);
            else
                checker->next_round_ms = now_ms + checker->interval_ms;
            if (checker->rounds_done < checker->want_round) {
                vml_error err = { 0 };

                /* A CHECK_NOW came while this round ran: run the one it waits for. */
                if (dmn_checker_start(checker, reg, now_ms, &err) < 0) {
                    VML_ERROR("%s", err.message);
                    checker->want_round = checker->rounds_done;
                }
            }
            return;
        }
        checker->partial_len += (size_t)n;
        if (checker->partial_len == sizeof(verdict)) {
            verdict v;

            memcpy(&v, checker->partial, sizeof(v));
            checker->partial_len = 0;
            /* Past the deadline the silent leases were already declared lost. */
            if (!checker->deadline_done)
                report(checker, reg, &v, lost, opaque);
        }
    }
}

void dmn_checker_run_timers(dmn_checker *checker, dmn_lockspaces *reg, int64_t now_ms,
                            dmn_loss_fn lost, void *opaque)
{
    if (checker->child > 0) {
        if (checker->deadline_done || now_ms < checker->round_started_ms + checker->timeout_ms)
            return;
        /* The probe is stuck (a hung mount): whatever it has not vouched for is lost. */
        checker->deadline_done = true;
        VML_ERROR("lease check probe pid %d has not answered for %u ms: the %zu lease(s) it "
                  "did not verify are treated as lost", (int)checker->child,
                  checker->timeout_ms, checker->nids - checker->nreported);
        for (size_t i = checker->nreported; i < checker->nids; i++) {
            dmn_lease *lease = dmn_hash_get(reg->by_id, &checker->ids[i], sizeof(uint64_t));
            char reason[128];

            if (lease == NULL || (lease->state & VML_SNAP_LOST))
                continue;
            snprintf(reason, sizeof(reason),
                     "its storage did not answer the check within %u ms", checker->timeout_ms);
            checker->round_lost++;
            lost(opaque, lease, reason);
        }
        finish_round(checker, now_ms);
        return;
    }
    if (checker->interval_ms > 0 && now_ms >= checker->next_round_ms) {
        vml_error err = { 0 };

        if (reg->nleases == 0) {
            checker->next_round_ms = now_ms + checker->interval_ms;
            return;
        }
        if (dmn_checker_start(checker, reg, now_ms, &err) < 0) {
            VML_ERROR("%s", err.message);
            checker->next_round_ms = now_ms + checker->interval_ms;
        }
    }
}
