/* test_dmn_check.c: unit tests of lost-lock detection: each verdict of the forked probe, the deadline that turns silence into loss, CHECK_NOW during a round, a probe that dies. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_test.h"
#include "vml_log.h"
#include "dmn_check.h"
#include "dmn_lockspace.h"
#include "dmn_owner.h"
#include "dmn_record.h"

#define TIMEOUT_MS 1000

static char tmpdir[] = "/tmp/vmlockd-check-XXXXXX";
static char log_path[128];
static dmn_lockspaces *reg;
static dmn_owners *owners;
static dmn_owner *owner;

/* What the loss callback was told, as the daemon's on_lease_lost is (it marks the lease). */
static struct {
    char name[256];             /* the lease file */
    char reason[256];
} losses[16];
static size_t nlosses;

static void on_lost(void *opaque, dmn_lease *lease, const char *reason)
{
    (void)opaque;
    if (nlosses < sizeof(losses) / sizeof(losses[0])) {
        snprintf(losses[nlosses].name, sizeof(losses[0].name), "%s", lease->path);
        snprintf(losses[nlosses].reason, sizeof(losses[0].reason), "%s", reason);
    }
    nlosses++;
    dmn_lease_mark_lost(reg, lease);
}

/* The reason given for the lease whose file ends with suffix, or NULL when not reported. */
static const char *loss_of(const char *suffix)
{
    size_t slen = strlen(suffix);

    for (size_t i = 0; i < nlosses && i < sizeof(losses) / sizeof(losses[0]); i++) {
        size_t nlen = strlen(losses[i].name);

        if (nlen >= slen && strcmp(losses[i].name + nlen - slen, suffix) == 0)
            return losses[i].reason;
    }
    return NULL;
}

static bool reason_is(const char *suffix, const char *want)
{
    const char *got = loss_of(suffix);

    if (got == NULL || strcmp(got, want) != 0) {
        printf("#   %s: got '%s', want '%s'\n", suffix, got != NULL ? got : "(not reported)",
               want);
        return false;
    }
    return true;
}

static void path_of(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", tmpdir, rel);
}

static dmn_lease *acquire(const char *lockspace, const char *name, unsigned int flags)
{
    dmn_lockspace *ls = dmn_lockspaces_find(reg, lockspace);
    vml_ext_resource2 res = { .lockspace = (char *)lockspace, .name = (char *)name,
                              .disk = (char *)"", .flags = flags | VML_LS_ACQUIRE_AUTOCREATE };
    dmn_holding *h = NULL;
    vml_error err = { 0 };

    if (ls == NULL && dmn_lockspaces_add(reg, lockspace, &ls, &err) < 0) {
        printf("#   %s\n", err.message);
        return NULL;
    }
    if (lockspace[0] == '\0')
        res.flags &= ~(unsigned int)VML_LS_ACQUIRE_AUTOCREATE;
    if (dmn_lease_acquire(reg, ls, &res, owner, &h, NULL, &err) < 0) {
        printf("#   acquiring %s: %s\n", name, err.message);
        return NULL;
    }
    return dmn_lockspaces_find_lease(reg, lockspace, name);
}

/* Wait (bounded) for the probe's verdicts until rounds_done reaches round. */
static bool wait_round(dmn_checker *checker, uint64_t round)
{
    for (int i = 0; i < 1000 && dmn_checker_rounds_done(checker) < round; i++) {
        struct pollfd pfd = { .fd = dmn_checker_fd(checker), .events = POLLIN };

        if (pfd.fd < 0)
            return false;
        if (poll(&pfd, 1, 10000) <= 0)
            return false;
        dmn_checker_on_readable(checker, reg, on_lost, NULL);
    }
    return dmn_checker_rounds_done(checker) >= round;
}

/* The pid of this process's only child (the probe), or -1: /proc/self/task/TID/children. */
static pid_t only_child(void)
{
    char path[64], text[256] = "";
    FILE *f;
    int pid = -1;

    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    if (fgets(text, sizeof(text), f) == NULL || sscanf(text, "%d", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid;
}

/* A child holding an OFD write lock on byte 0 of path (another host taking the lease once
 * our lock was lost); returns once it holds it; closing *release makes it exit. */
static pid_t spawn_locker(const char *path, int *release)
{
    int ready[2], hold[2];
    pid_t pid;
    char c;

    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        int fd;

        close(ready[0]);
        close(hold[1]);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0 || write(ready[1], "x", 1) != 1)
            _exit(1);
        while (read(hold[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    if (pid < 0 || read(ready[0], &c, 1) != 1) {
        close(ready[0]);
        close(hold[1]);
        return -1;
    }
    close(ready[0]);
    *release = hold[1];
    return pid;
}

static bool log_has(const char *needle)
{
    char buf[16384];
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    if (strstr(buf, needle) == NULL) {
        printf("#   the log does not contain '%s'\n", needle);
        return false;
    }
    return true;
}

static void replace_file(const char *path)
{
    char tmp[600];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.new", path);
    fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    if (rename(tmp, path) < 0)
        printf("#   cannot replace %s: %s\n", path, strerror(errno));
}

/* Every kind of verdict in one round, then a round that finds nothing new. */
static void test_verdicts(void)
{
    char ls[256], ls2[256], ls2_moved[300], disk[256], path[1024];
    dmn_lease *ok, *removed, *replaced, *record, *gone, *ioerr, *shared, *direct, *direct_gone;
    dmn_checker *checker = NULL;
    unsigned int checked, lost;
    uint64_t round;
    vml_error err = { 0 };
    int release_locker = -1;
    pid_t locker;

    path_of(ls, sizeof(ls), "ls");
    path_of(ls2, sizeof(ls2), "ls2");
    path_of(disk, sizeof(disk), "disk.img");
    close(open(disk, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ok = acquire(ls, "ok", 0);
    removed = acquire(ls, "removed", 0);
    replaced = acquire(ls, "replaced", 0);
    record = acquire(ls, "record", 0);
    gone = acquire(ls, "gone", 0);
    shared = acquire(ls, "shared", VML_LS_ACQUIRE_SHARED);
    ioerr = acquire(ls2, "ioerr", 0);
    direct = acquire("", disk, 0);
    if (!VML_CHECK(ok && removed && replaced && record && gone && shared && ioerr && direct,
                   "eight leases are acquired (named, shared, direct)"))
        return;
    VML_CHECK(dmn_checker_new(0, TIMEOUT_MS, 0, &checker, &err) == 0, "a checker is created");
    VML_CHECK(dmn_checker_fd(checker) < 0 && !dmn_checker_busy(checker),
              "... idle: no pipe, no probe");

    VML_CHECK(dmn_checker_request(checker, reg, 0, &round, &err) == 0 && round == 1,
              "CHECK_NOW starts round 1");
    VML_CHECK(dmn_checker_busy(checker) && dmn_checker_round_number(checker) == 1,
              "... a probe runs for round 1");
    VML_CHECK(wait_round(checker, 1) && !dmn_checker_busy(checker), "... and completes");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(checked == 8 && lost == 0 && nlosses == 0,
              "untouched leases: all 8 verified, none lost");

    /* Break each lease a different way. */
    unlink(removed->path);
    replace_file(replaced->path);
    {
        dmn_record_kind kind;
        dmn_record rec;
        int fd = open(record->path, O_RDWR | O_CLOEXEC);

        /* Another host's daemon wrote its record: the lease names someone else now. */
        if (fd < 0 || dmn_record_read(fd, record->path, false, &kind, &rec, &err) < 0 ||
            kind != DMN_RECORD_VALID)
            printf("#   cannot read the record of %s\n", record->path);
        rec.owner_pid = 1;
        dmn_record_set_text(rec.host, sizeof(rec.host), "other-host");
        if (fd >= 0 && dmn_record_write(fd, record->path, &rec, false, &err) < 0)
            printf("#   %s\n", err.message);
        if (fd >= 0)
            close(fd);
    }
    {
        /* The server dropped our lock and gave it to another host. */
        struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        if (fcntl(gone->fd, F_OFD_SETLK, &un) < 0)
            printf("#   cannot unlock %s\n", gone->path);
        locker = spawn_locker(gone->path, &release_locker);
    }
    /* The lockspace directory became a plain file: the lease path cannot be looked up. */
    snprintf(ls2_moved, sizeof(ls2_moved), "%s.moved", ls2);
    if (rename(ls2, ls2_moved) < 0)
        printf("#   cannot move %s\n", ls2);
    close(open(ls2, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    replace_file(disk);

    VML_CHECK(dmn_checker_request(checker, reg, 10, &round, &err) == 0 && round == 2,
              "CHECK_NOW starts round 2");
    VML_CHECK(wait_round(checker, 2), "... and completes");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(checked == 8 && lost == 6, "round 2 verified 8 leases and found 6 lost");
    VML_CHECK(reason_is("/removed", "its lease file was removed"), "a removed lease file");
    VML_CHECK(reason_is("/replaced", "its lease file was replaced by another file"),
              "a replaced lease file");
    VML_CHECK(reason_is("/record", "its owner record no longer names this holder"),
              "an owner record naming another holder");
    VML_CHECK(reason_is("/gone", "another process or host holds its lock"),
              "a lock another process holds");
    VML_CHECK(reason_is("/ioerr", "the storage reports an error (Not a directory)"),
              "a lease path that cannot be looked up: a storage error with its errno");
    VML_CHECK(reason_is("/disk.img", "its lease file was replaced by another file"),
              "a replaced disk (direct mode)");
    VML_CHECK(loss_of("/ok") == NULL && loss_of("/shared") == NULL,
              "the intact exclusive and shared leases are not reported");
    VML_CHECK(!(ok->state & VML_SNAP_LOST) && !(shared->state & VML_SNAP_LOST),
              "... and not marked lost");
    VML_CHECK((removed->state & VML_SNAP_LOST) && (gone->state & VML_SNAP_LOST),
              "the lost ones are marked lost (they stay in the table)");

    nlosses = 0;
    VML_CHECK(dmn_checker_request(checker, reg, 20, &round, &err) == 0 && round == 3 &&
              wait_round(checker, 3), "round 3 runs");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(checked == 2 && lost == 0 && nlosses == 0,
              "round 3 probes only the 2 leases not lost, and finds nothing new");

    if (locker > 0) {
        close(release_locker);
        waitpid(locker, NULL, 0);
    }
    /* The default lockspace's lease is released with the others at the end; a new direct
     * lease on the replaced disk is not needed. */
    direct_gone = dmn_lockspaces_find_lease(reg, "", disk);
    VML_CHECK(direct_gone != NULL && (direct_gone->state & VML_SNAP_LOST),
              "the direct-mode lease stays, marked lost, until its holder goes");
    dmn_checker_free(checker);
    snprintf(path, sizeof(path), "rm -rf '%s' && mv '%s' '%s'", ls2, ls2_moved, ls2);
    if (system(path) != 0)
        printf("#   cannot restore %s\n", ls2);
}

/* A probe that does not answer by the deadline: every lease it did not vouch for is lost. */
static void test_deadline(void)
{
    char ls[256];
    dmn_checker *checker = NULL;
    dmn_lease *a, *b;
    unsigned int checked, lost;
    int64_t deadline = 0;
    uint64_t round;
    vml_error err = { 0 };
    pid_t probe;
    int status = 0;

    path_of(ls, sizeof(ls), "slow");
    a = acquire(ls, "a", 0);
    b = acquire(ls, "b", VML_LS_ACQUIRE_SHARED);
    nlosses = 0;
    if (!VML_CHECK(a != NULL && b != NULL, "two more leases are acquired"))
        return;
    VML_CHECK(dmn_checker_new(0, TIMEOUT_MS, 1000, &checker, &err) == 0, "a checker is created");
    VML_CHECK(!dmn_checker_next_deadline(checker, &deadline),
              "without periodic rounds an idle checker has no deadline");
    VML_CHECK(dmn_checker_request(checker, reg, 1000, &round, &err) == 0 && round == 1,
              "CHECK_NOW starts round 1");
    /* A hung mount: the probe is stopped before it writes anything. */
    probe = only_child();
    VML_CHECK(probe > 0 && kill(probe, SIGSTOP) == 0, "the probe is stopped (a hung mount)");
    VML_CHECK(dmn_checker_next_deadline(checker, &deadline) && deadline == 1000 + TIMEOUT_MS,
              "the round's deadline is its start + lease_check_timeout_ms");
    dmn_checker_run_timers(checker, reg, 1000 + TIMEOUT_MS - 1, on_lost, NULL);
    VML_CHECK(nlosses == 0 && !dmn_checker_stuck(checker), "nothing is lost before the deadline");
    dmn_checker_run_timers(checker, reg, 1000 + TIMEOUT_MS, on_lost, NULL);
    VML_CHECK(nlosses >= 2 && reason_is("/slow/a", "its storage did not answer the check within "
                                        "1000 ms") &&
              reason_is("/slow/b", "its storage did not answer the check within 1000 ms"),
              "at the deadline every unverified lease is lost, saying the storage did not answer");
    VML_CHECK(log_has("has not answered for 1000 ms"), "... and the daemon logs it as an error");
    VML_CHECK(dmn_checker_rounds_done(checker) == 1 && dmn_checker_stuck(checker) &&
              dmn_checker_busy(checker), "the round is over but the probe is stuck");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(checked == 0 && lost >= 2, "the round verified nothing and lost the silent leases");
    VML_CHECK(!dmn_checker_next_deadline(checker, &deadline),
              "no new round is due while the probe is stuck");
    nlosses = 0;
    dmn_checker_run_timers(checker, reg, 100000, on_lost, NULL);
    VML_CHECK(nlosses == 0, "the deadline is not applied twice");

    /* The mount comes back: the probe's late verdicts are ignored as it ends. */
    kill(probe, SIGCONT);
    for (int i = 0; i < 1000 && dmn_checker_fd(checker) >= 0; i++) {
        struct pollfd pfd = { .fd = dmn_checker_fd(checker), .events = POLLIN };

        if (poll(&pfd, 1, 10000) <= 0)
            break;
        dmn_checker_on_readable(checker, reg, on_lost, NULL);
    }
    VML_CHECK(!dmn_checker_busy(checker) && dmn_checker_rounds_done(checker) == 1 &&
              nlosses == 0, "once the stuck probe ends, its late verdicts resurrect nothing");
    VML_CHECK(dmn_checker_next_deadline(checker, &deadline) == false,
              "... and no periodic round is scheduled (interval 0)");
    VML_CHECK(dmn_checker_request(checker, reg, 6000, &round, &err) == 0 && round == 2 &&
              wait_round(checker, 2), "CHECK_NOW then runs round 2");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(lost == 0 && nlosses == 0, "... which finds nothing new");
    VML_CHECK(a->state & VML_SNAP_LOST, "the lease stays lost");
    dmn_checker_free(checker);
    (void)status;
}

/* CHECK_NOW while a round runs waits for the next round, started as soon as this one ends;
 * a probe that dies ends its round with what it verified. */
static void test_rounds(void)
{
    char ls[256];
    dmn_checker *checker = NULL;
    unsigned int checked, lost;
    uint64_t round;
    int64_t deadline = 0;
    vml_error err = { 0 };
    pid_t probe;

    path_of(ls, sizeof(ls), "rounds");
    nlosses = 0;
    for (int i = 0; i < 40; i++) {
        char name[16];

        snprintf(name, sizeof(name), "c%d", i);
        if (acquire(ls, name, 0) == NULL)
            break;
    }
    if (!VML_CHECK(dmn_lockspaces_find_lease(reg, ls, "c39") != NULL, "40 more leases are acquired"))
        return;
    VML_CHECK(dmn_checker_new(0, TIMEOUT_MS, 0, &checker, &err) == 0, "a checker is created");
    VML_CHECK(dmn_checker_request(checker, reg, 0, &round, &err) == 0 && round == 1,
              "CHECK_NOW starts round 1");
    VML_CHECK(dmn_checker_start(checker, reg, 0, &err) == 0 && dmn_checker_busy(checker),
              "starting while a round runs is a no-op");
    VML_CHECK(dmn_checker_request(checker, reg, 0, &round, &err) == 0 && round == 2,
              "a second CHECK_NOW meanwhile is told to wait for round 2");
    VML_CHECK(wait_round(checker, 1) && dmn_checker_busy(checker),
              "when round 1 ends, round 2 starts at once");
    VML_CHECK(wait_round(checker, 2) && !dmn_checker_busy(checker), "... and completes");
    dmn_checker_last_round(checker, &checked, &lost);
    VML_CHECK(nlosses == 0 && lost == 0, "... finding nothing lost");

    /* The probe may finish before the kill lands: try again (a new round) until the kill
     * beat it, which the round's short count of verified leases shows. */
    {
        bool killed_early = false, rounds_ok = true;
        unsigned int before;

        for (int attempt = 0; attempt < 50 && !killed_early && rounds_ok; attempt++) {
            uint64_t done = dmn_checker_rounds_done(checker);

            dmn_checker_last_round(checker, &before, &lost);
            rounds_ok = dmn_checker_start(checker, reg, 0, &err) == 0 &&
                        (probe = only_child()) > 0 && kill(probe, SIGKILL) == 0 &&
                        wait_round(checker, done + 1) && !dmn_checker_busy(checker);
            dmn_checker_last_round(checker, &checked, &lost);
            killed_early = rounds_ok && checked < before;
        }
        VML_CHECK(rounds_ok, "a round whose probe is killed ends when its pipe closes");
        VML_CHECK(killed_early, "... with fewer leases verified than the round before");
    }
    VML_CHECK(lost == 0 && nlosses == 0, "a dead probe makes nobody lose a lease");
    VML_CHECK(log_has("ended with wait status 0x9"), "... and its death is logged");
    dmn_checker_free(checker);

    /* Periodic rounds. */
    VML_CHECK(dmn_checker_new(50, TIMEOUT_MS, 0, &checker, &err) == 0 &&
              dmn_checker_interval_ms(checker) == 50, "a checker with 50 ms rounds");
    VML_CHECK(dmn_checker_next_deadline(checker, &deadline) && deadline == 50,
              "... its first round is due after one interval");
    dmn_checker_run_timers(checker, reg, 49, on_lost, NULL);
    VML_CHECK(!dmn_checker_busy(checker), "... not before");
    dmn_checker_run_timers(checker, reg, 50, on_lost, NULL);
    VML_CHECK(dmn_checker_busy(checker) && wait_round(checker, 1),
              "... when due, the timer starts a round");
    dmn_checker_free(checker);
}

/* With no lease held the periodic timer forks nothing. */
static void test_idle(void)
{
    dmn_lockspaces *empty = NULL;
    dmn_checker *checker = NULL;
    int64_t deadline = 0;
    vml_error err = { 0 };

    VML_CHECK(dmn_lockspaces_new(&empty, &err) == 0 &&
              dmn_checker_new(10, TIMEOUT_MS, 0, &checker, &err) == 0,
              "an empty registry and a 10 ms checker");
    dmn_checker_run_timers(checker, empty, 10, on_lost, NULL);
    VML_CHECK(!dmn_checker_busy(checker) && dmn_checker_rounds_done(checker) == 0,
              "with no lease the due round forks no probe");
    VML_CHECK(dmn_checker_next_deadline(checker, &deadline) && deadline == 20,
              "... and the next one is scheduled an interval later");
    dmn_checker_free(checker);
    dmn_lockspaces_free(empty);
}

int main(void)
{
    vml_ls_owner identity = { .name = (char *)"vm-check", .id = 7, .pid = (u_int)getpid() };
    vml_error err = { 0 };
    char cmd[256];

    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s.log", tmpdir);
    snprintf(cmd, sizeof(cmd), "3:file:%s", log_path);
    memset(identity.uuid, 0x42, sizeof(identity.uuid));
    if (vml_log_set_outputs(cmd, &err) < 0 || dmn_lockspaces_new(&reg, &err) < 0 ||
        dmn_owners_new(1000, &owners, &err) < 0 ||
        dmn_owners_get(owners, &identity, &owner, &err) < 0) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    test_verdicts();
    test_deadline();
    test_rounds();
    test_idle();
    dmn_lockspaces_free(reg);
    dmn_owners_free(owners);
    vml_log_reset();
    /* Probes are reaped by the checker; anything else would be a leak of this test. */
    VML_CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child process is left");
    unlink(log_path);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", tmpdir);
    return vml_test_done();
}
