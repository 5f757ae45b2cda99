/* sim_contend.c: vml-sim-contend, one simulated host's guests racing for shared disks through the lock plugin, with an O_DIRECT oracle that counts double grants. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmh_plughost.h"
#include "vml_lease.h"
#include "vml_log.h"

/*
 * What it does.  The main process plays one host's libvirtd pool: it forks --guests worker
 * processes and each worker plays "libvirtd acting for one guest": it forks that guest's
 * stand-in QEMU (a child that only waits for its parent to go away; its pid is the lock
 * owner), loads the plugin itself (as a separate libvirtd would) and runs --rounds rounds:
 *
 *   pick one of the K --disk paths at random;
 *   vmh_acquire (libvirt's CPU-start call: new, add the disk, acquire) for that one disk;
 *   refused as busy -> next round; failed with ESTALE or EEXIST (a lease file unlinked or
 *   recreated by another host under our feet) -> counted as a race; any other failure ->
 *   counted as an error;
 *   granted -> the oracle (below), then vmh_release (libvirt's pause call).
 *
 * The oracle does not trust the lock manager: the disk image itself, read and written with
 * O_DIRECT (so every access reaches the shared storage, never a page cache), carries a
 * 4 KiB record in its first block.  A winner reads the block (it must not say HELD: nobody
 * else may be inside), writes "HELD by me", re-reads it --verify-reads times (each must still
 * be its own record: nobody else may have written), then writes "FREE by me" and releases.
 * Any violation is a double grant.  Two holders inside at once are caught unless their
 * whole critical sections happen not to overlap in storage order, in which case nobody
 * was harmed.
 *
 * The stop conditions: --rounds reached, or SIGTERM/SIGINT (the round in progress
 * finishes, then the worker reports).  --expect-busy makes every grant a violation too
 * (a host hammering a disk that another host holds).
 *
 * Start barrier (so that the hosts really race): with --go-fifo PATH, the main process
 * prints "ready" once every worker has loaded the plugin and opened the disks, then waits
 * for a line on PATH before it lets the workers go.
 *
 * Output: one line on stdout,
 *   contend host=H guests=M disks=K rounds=R attempts=A granted=G busy=B errors=E races=S
 *           double_grants=D release_errors=X unexpected_grants=U elapsed_ms=T
 *           acquire_p50_us=.. acquire_p99_us=.. acquire_max_us=..
 * and on stderr the first few errors and every violation, each naming host, guest and round.
 * Exit status: 0 no violation; 1 a violation (double grant, unexpected grant, failed
 * release); 2 setup failure; 64 usage.
 */

#define EXIT_VIOLATION 1
#define EXIT_SETUP 2
#define EXIT_USAGE 64

#define ORACLE_BLOCK 4096
#define MAX_DISKS 64
#define MAX_GUESTS 64
#define MAX_REPORTED_ERRORS 3
#define HIST_BUCKETS 40             /* log2 buckets of microseconds */

typedef struct contend_opts {
    const char *plugin;
    const char *config;
    const char *host;
    const char *go_fifo;
    const char *disks[MAX_DISKS];
    size_t ndisks;
    unsigned int guests;
    unsigned long rounds;
    unsigned int verify_reads;
    unsigned long seed;
    bool expect_busy;
} contend_opts;

/* What one worker sends back to the main process: fixed-size, written once to a pipe. */
typedef struct contend_result {
    unsigned long attempts;
    unsigned long granted;
    unsigned long busy;
    unsigned long errors;
    unsigned long races;                /* lease-file races: ESTALE, EEXIST (see below) */
    unsigned long double_grants;
    unsigned long release_errors;
    unsigned long unexpected_grants;
    unsigned long hist[HIST_BUCKETS];   /* acquire latency, bucket i = [2^i, 2^(i+1)) us */
    uint64_t max_us;
    int setup_failed;
} contend_result;

/* Set from the signal handler: finish the current round, then report.  Process-wide by nature. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: a per-worker generator, seeded from host, guest and --seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

static uint64_t seed_for(const contend_opts *o, unsigned int guest)
{
    uint64_t h = 1469598103934665603ULL ^ o->seed;

    for (const char *p = o->host; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h ^= (uint64_t)(guest + 1) * 0x9E3779B97F4A7C15ULL;
    return h != 0 ? h : 1;
}

static void hist_add(contend_result *r, uint64_t us)
{
    unsigned int bucket = 0;

    while (bucket + 1 < HIST_BUCKETS && (us >> (bucket + 1)) != 0)
        bucket++;
    r->hist[bucket]++;
    if (us > r->max_us)
        r->max_us = us;
}

/* The upper bound (us) of the bucket holding the given fraction of the samples. */
static uint64_t hist_percentile(const contend_result *r, double fraction)
{
    unsigned long total = 0;
    unsigned long seen = 0;

    for (unsigned int i = 0; i < HIST_BUCKETS; i++)
        total += r->hist[i];
    if (total == 0)
        return 0;
    for (unsigned int i = 0; i < HIST_BUCKETS; i++) {
        seen += r->hist[i];
        if ((double)seen >= fraction * (double)total)
            return (uint64_t)1 << (i + 1);
    }
    return r->max_us;
}

/* ---- the oracle ---- */

/* The record a holder writes: "VMLSIM HELD host=H guest=G round=N\n" or FREE, NUL-padded. */
static void oracle_record(char *block, const char *state, const char *host, unsigned int guest,
                          unsigned long round)
{
    memset(block, 0, ORACLE_BLOCK);
    snprintf(block, ORACLE_BLOCK, "VMLSIM %s host=%s guest=%u round=%lu\n", state, host, guest,
             round);
}

/* The first line of a record, for messages (into out, always NUL-terminated). */
static void oracle_describe(const char *block, char *out, size_t size)
{
    size_t len = 0;

    while (len + 1 < size && len < ORACLE_BLOCK && block[len] != '\0' && block[len] != '\n') {
        out[len] = (block[len] >= ' ' && block[len] < 127) ? block[len] : '?';
        len++;
    }
    out[len] = '\0';
    if (len == 0)
        snprintf(out, size, "(empty)");
}

static int oracle_read(int fd, char *block)
{
    ssize_t n = pread(fd, block, ORACLE_BLOCK, 0);

    if (n == ORACLE_BLOCK)
        return 0;
    if (n >= 0)
        errno = EIO;
    return -1;
}

static int oracle_write(int fd, const char *block)
{
    ssize_t n = pwrite(fd, block, ORACLE_BLOCK, 0);

    if (n == ORACLE_BLOCK)
        return 0;
    if (n >= 0)
        errno = EIO;
    return -1;
}

/*
 * The critical section of one grant.  Returns the number of violations seen (each also
 * printed); an I/O failure is counted in r->errors, not as a violation.  mine and seen are
 * caller-owned 4 KiB blocks aligned for O_DIRECT.
 */
static int oracle_check(const contend_opts *o, int fd, const char *disk, unsigned int guest,
                        unsigned long round, char *mine, char *seen, contend_result *r)
{
    char what[160];
    int violations = 0;
    bool io_ok = false;

    if (oracle_read(fd, seen) < 0)
        goto out;
    if (strncmp(seen, "VMLSIM HELD ", 12) == 0) {
        oracle_describe(seen, what, sizeof(what));
        fprintf(stderr, "DOUBLE GRANT host=%s guest=%u round=%lu disk=%s: at acquire the "
                "disk says '%s'\n", o->host, guest, round, disk, what);
        violations++;
    }
    oracle_record(mine, "HELD", o->host, guest, round);
    if (oracle_write(fd, mine) < 0)
        goto out;
    for (unsigned int i = 0; i < o->verify_reads; i++) {
        if (oracle_read(fd, seen) < 0)
            goto out;
        if (memcmp(seen, mine, ORACLE_BLOCK) != 0) {
            oracle_describe(seen, what, sizeof(what));
            fprintf(stderr, "DOUBLE GRANT host=%s guest=%u round=%lu disk=%s: while held the "
                    "disk was overwritten with '%s'\n", o->host, guest, round, disk, what);
            violations++;
            break;
        }
    }
    oracle_record(mine, "FREE", o->host, guest, round);
    if (oracle_write(fd, mine) < 0)
        goto out;
    io_ok = true;

out:
    if (!io_ok) {
        if (r->errors < MAX_REPORTED_ERRORS)
            fprintf(stderr, "error host=%s guest=%u round=%lu disk=%s: oracle I/O: %s\n",
                    o->host, guest, round, disk, strerror(errno));
        r->errors++;
    }
    return violations;
}

/* ---- one worker: "libvirtd" for one guest ---- */

/*
 * The guest's stand-in QEMU: waits until the worker (its parent) goes away.  It is a
 * separate process because a lease belongs to the pid of a running QEMU, never to the
 * process that asks for it.
 */
static pid_t spawn_guest(int *keepalive_fd)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        char byte;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[1]);
        while (read(fds[0], &byte, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(fds[0]);
    *keepalive_fd = fds[1];
    return pid;
}

/* Runs in the worker process; fills *r.  Never returns an error: failures are counted in r. */
static void worker_run(const contend_opts *o, unsigned int guest, int ready_fd, int go_fd,
                       contend_result *r)
{
    vmh_plugin *plugin = NULL;
    vml_error err;
    char name[128];
    char *mine = NULL;
    char *seen = NULL;
    int disk_fds[MAX_DISKS];
    vmh_disk disks[MAX_DISKS];
    vmh_domain dom;
    uint64_t rng = seed_for(o, guest);
    int keepalive_fd = -1;
    pid_t guest_pid = -1;
    char byte = 'r';
    char hex[VML_LEASE_NAME_LEN + 1];

    for (size_t i = 0; i < MAX_DISKS; i++)
        disk_fds[i] = -1;
    memset(&err, 0, sizeof(err));
    memset(&dom, 0, sizeof(dom));
    snprintf(name, sizeof(name), "%s-g%u", o->host, guest);
    /* First, before this process opens anything the guest should not inherit. */
    guest_pid = spawn_guest(&keepalive_fd);
    if (guest_pid < 0) {
        fprintf(stderr, "vml-sim-contend: %s: cannot start its guest: %s\n", name,
                strerror(errno));
        r->setup_failed = 1;
        goto out;
    }
    if (posix_memalign((void **)&mine, ORACLE_BLOCK, ORACLE_BLOCK) != 0 ||
        posix_memalign((void **)&seen, ORACLE_BLOCK, ORACLE_BLOCK) != 0) {
        fprintf(stderr, "vml-sim-contend: %s: out of memory\n", name);
        r->setup_failed = 1;
        goto out;
    }
    for (size_t i = 0; i < o->ndisks; i++) {
        disk_fds[i] = open(o->disks[i], O_RDWR | O_DIRECT | O_CLOEXEC);
        if (disk_fds[i] < 0) {
            fprintf(stderr, "vml-sim-contend: %s: cannot open disk %s with O_DIRECT: %s\n", name,
                    o->disks[i], strerror(errno));
            r->setup_failed = 1;
            goto out;
        }
        disks[i].path = o->disks[i];
        disks[i].flags = 0;
    }
    if (vmh_plugin_open(o->plugin, o->config, &plugin, &err) < 0) {
        fprintf(stderr, "vml-sim-contend: %s: %s\n", name, err.message);
        r->setup_failed = 1;
        goto out;
    }
    /* The UUID is the name's SHA-256 prefix, as vmlock-host derives one. */
    if (vml_lease_hash(name, hex, &err) < 0) {
        fprintf(stderr, "vml-sim-contend: %s: %s\n", name, err.message);
        r->setup_failed = 1;
        goto out;
    }
    for (size_t i = 0; i < VIR_UUID_BUFLEN; i++) {
        unsigned int v;

        sscanf(hex + 2 * i, "%2x", &v);
        dom.uuid[i] = (unsigned char)v;
    }
    dom.name = name;
    dom.id = guest + 1;
    dom.pid = guest_pid;
    dom.action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT;
    dom.ndisks = 1;

out:
    /* Ready ('r') or failed ('f'): tell the main process, then wait for the go. */
    if (r->setup_failed)
        byte = 'f';
    if (write(ready_fd, &byte, 1) != 1)
        r->setup_failed = 1;
    close(ready_fd);
    if (!r->setup_failed) {
        ssize_t n;

        do {
            n = read(go_fd, &byte, 1);
        } while (n < 0 && errno == EINTR && !stop_requested);
        if (n != 1)
            stop_requested = 1;     /* the main process went away or was stopped before go */
    }
    close(go_fd);
    for (unsigned long round = 0; !r->setup_failed && round < o->rounds && !stop_requested;
         round++) {
        size_t d = (size_t)(next_random(&rng) % o->ndisks);
        uint64_t t0 = now_us();
        char *state = NULL;

        r->attempts++;
        dom.disks = &disks[d];
        if (vmh_acquire(plugin, &dom, NULL, &err) < 0) {
            hist_add(r, now_us() - t0);
            if (err.code == VIR_ERR_RESOURCE_BUSY) {
                r->busy++;
            } else if (strstr(err.message, strerror(ESTALE)) != NULL ||
                       strstr(err.message, strerror(EEXIST)) != NULL) {
                /*
                 * The lease file was unlinked (and maybe created again) by another host
                 * between our lookup and our open: ESTALE, or EEXIST from a FUSE create
                 * that lost a race.  A refused start, not a safety problem; counted apart
                 * because a lock manager that keeps its lease files never meets it.
                 */
                if (r->races < MAX_REPORTED_ERRORS)
                    fprintf(stderr, "race host=%s guest=%u round=%lu disk=%s: acquire: %s\n",
                            o->host, guest, round, o->disks[d], err.message);
                r->races++;
            } else {
                if (r->errors < MAX_REPORTED_ERRORS)
                    fprintf(stderr, "error host=%s guest=%u round=%lu disk=%s: acquire: %s\n",
                            o->host, guest, round, o->disks[d], err.message);
                r->errors++;
            }
            continue;
        }
        hist_add(r, now_us() - t0);
        r->granted++;
        if (o->expect_busy) {
            fprintf(stderr, "UNEXPECTED GRANT host=%s guest=%u round=%lu disk=%s: the disk "
                    "should be held elsewhere\n", o->host, guest, round, o->disks[d]);
            r->unexpected_grants++;
        }
        r->double_grants += (unsigned long)oracle_check(o, disk_fds[d], o->disks[d], guest,
                                                        round, mine, seen, r);
        if (vmh_release(plugin, &dom, &state, &err) < 0) {
            /* A lease we cannot release would stall everyone: stop this worker. */
            fprintf(stderr, "RELEASE FAILED host=%s guest=%u round=%lu disk=%s: %s\n", o->host,
                    guest, round, o->disks[d], err.message);
            r->release_errors++;
            free(state);
            break;
        }
        free(state);
    }
    vmh_plugin_close(plugin);
    if (keepalive_fd >= 0)
        close(keepalive_fd);        /* the guest exits at end of input */
    if (guest_pid > 0)
        while (waitpid(guest_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    for (size_t i = 0; i < MAX_DISKS; i++)
        if (disk_fds[i] >= 0)
            close(disk_fds[i]);
    free(seen);
    free(mine);
}

/* ---- the main process ---- */

static void usage(FILE *to)
{
    fprintf(to,
"usage: vml-sim-contend --plugin SO --config FILE --host NAME --disk PATH [--disk PATH]...\n"
"                       [--guests M] [--rounds R] [--verify-reads N] [--seed N]\n"
"                       [--go-fifo PATH] [--expect-busy]\n"
"\n"
"M guests of host NAME (default 2) each run R rounds (default 1000): acquire one random\n"
"--disk through the plugin, check and write an ownership record in the disk with O_DIRECT,\n"
"re-read it N times (default 2), mark it free, release.  Prints one 'contend ...' line.\n"
"--go-fifo: print 'ready', then start only after a line arrives on PATH.  --expect-busy:\n"
"every grant is a violation.  SIGTERM ends the runs after the current round.\n"
"Exit: 0 no violation, 1 violation (double grant, unexpected grant, failed release),\n"
"2 setup failure, 64 usage.\n");
}

static int parse_ulong(const char *what, const char *text, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long value;

    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        goto bad;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max)
        goto bad;
    *out = value;
    return 0;
bad:
    fprintf(stderr, "vml-sim-contend: %s '%s' is not a number from 0 to %lu\n", what, text, max);
    return -1;
}

static int parse_args(int argc, char **argv, contend_opts *o)
{
    static const struct option options[] = {
        { "plugin", required_argument, NULL, 'P' },
        { "config", required_argument, NULL, 'C' },
        { "host", required_argument, NULL, 'H' },
        { "disk", required_argument, NULL, 'd' },
        { "guests", required_argument, NULL, 'g' },
        { "rounds", required_argument, NULL, 'r' },
        { "verify-reads", required_argument, NULL, 'v' },
        { "seed", required_argument, NULL, 's' },
        { "go-fifo", required_argument, NULL, 'G' },
        { "expect-busy", no_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long value = 0;
    int opt;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'P': o->plugin = optarg; break;
        case 'C': o->config = optarg; break;
        case 'H': o->host = optarg; break;
        case 'G': o->go_fifo = optarg; break;
        case 'B': o->expect_busy = true; break;
        case 'd':
            if (o->ndisks == MAX_DISKS) {
                fprintf(stderr, "vml-sim-contend: at most %d --disk\n", MAX_DISKS);
                return -1;
            }
            if (optarg[0] != '/') {
                fprintf(stderr, "vml-sim-contend: --disk '%s' is not an absolute path\n", optarg);
                return -1;
            }
            o->disks[o->ndisks++] = optarg;
            break;
        case 'g':
            if (parse_ulong("--guests", optarg, MAX_GUESTS, &value) < 0)
                return -1;
            if (value == 0) {
                fprintf(stderr, "vml-sim-contend: --guests must be 1 to %d\n", MAX_GUESTS);
                return -1;
            }
            o->guests = (unsigned int)value;
            break;
        case 'r':
            if (parse_ulong("--rounds", optarg, 100000000UL, &o->rounds) < 0)
                return -1;
            break;
        case 'v':
            if (parse_ulong("--verify-reads", optarg, 1000, &value) < 0)
                return -1;
            o->verify_reads = (unsigned int)value;
            break;
        case 's':
            if (parse_ulong("--seed", optarg, ULONG_MAX, &o->seed) < 0)
                return -1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vml-sim-contend: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->plugin == NULL || o->config == NULL || o->host == NULL || o->ndisks == 0) {
        fprintf(stderr, "vml-sim-contend: --plugin, --config, --host and at least one --disk "
                "are required\n");
        return -1;
    }
    if (o->host[0] == '\0' || strpbrk(o->host, " \t\n=") != NULL) {
        fprintf(stderr, "vml-sim-contend: --host '%s' must be a non-empty word\n", o->host);
        return -1;
    }
    return 0;
}

/* Wait for one line on the go FIFO (opened here, so the caller may create it late). */
static int wait_for_go(const char *path)
{
    char line[64];
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "vml-sim-contend: cannot open --go-fifo %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        fprintf(stderr, "vml-sim-contend: --go-fifo %s closed without a line\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static void merge(contend_result *total, const contend_result *r)
{
    total->attempts += r->attempts;
    total->granted += r->granted;
    total->busy += r->busy;
    total->errors += r->errors;
    total->races += r->races;
    total->double_grants += r->double_grants;
    total->release_errors += r->release_errors;
    total->unexpected_grants += r->unexpected_grants;
    for (unsigned int i = 0; i < HIST_BUCKETS; i++)
        total->hist[i] += r->hist[i];
    if (r->max_us > total->max_us)
        total->max_us = r->max_us;
    total->setup_failed |= r->setup_failed;
}

int main(int argc, char **argv)
{
    contend_opts o = { .guests = 2, .rounds = 1000, .verify_reads = 2 };
    contend_result total;
    pid_t workers[MAX_GUESTS];
    int result_fds[MAX_GUESTS];
    int go_pipe[2] = { -1, -1 };
    struct sigaction sa;
    uint64_t started;
    unsigned int spawned = 0;
    bool stop_forwarded = false;
    sigset_t stop_signals;
    int stop_fd;
    int status = 0;

    memset(&total, 0, sizeof(total));
    if (parse_args(argc, argv, &o) < 0)
        return EXIT_USAGE;
    vml_log_set_program("vml-sim-contend");
    /*
     * The main process takes SIGTERM/SIGINT through a signalfd (no race with its blocking
     * waits) and forwards them; the workers unblock them and use the handler.
     */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;      /* a worker's plugin calls must not fail with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("vml-sim-contend: signalfd");
        return EXIT_SETUP;
    }
    if (pipe2(go_pipe, O_CLOEXEC) < 0) {
        perror("vml-sim-contend: pipe");
        return EXIT_SETUP;
    }
    for (unsigned int g = 0; g < o.guests; g++) {
        int ready[2];
        int result[2];

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(result, O_CLOEXEC) < 0) {
            perror("vml-sim-contend: pipe");
            status = EXIT_SETUP;
            break;
        }
        workers[g] = fork();
        if (workers[g] < 0) {
            perror("vml-sim-contend: fork");
            status = EXIT_SETUP;
            break;
        }
        if (workers[g] == 0) {
            contend_result r;

            memset(&r, 0, sizeof(r));
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(stop_fd);
            sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
            close(go_pipe[1]);
            close(ready[0]);
            close(result[0]);
            worker_run(&o, g, ready[1], go_pipe[0], &r);
            _exit(write(result[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : EXIT_SETUP);
        }
        close(ready[1]);
        close(result[1]);
        result_fds[g] = result[0];
        spawned++;
        {
            char byte;
            ssize_t n;

            do {
                n = read(ready[0], &byte, 1);
            } while (n < 0 && errno == EINTR);
            close(ready[0]);
            if (n != 1 || byte != 'r')
                status = EXIT_SETUP;
        }
        if (status != 0)
            break;
    }
    if (status == 0) {
        printf("ready\n");
        fflush(stdout);
        if (o.go_fifo != NULL && wait_for_go(o.go_fifo) < 0)
            status = EXIT_SETUP;
    }
    started = now_us();
    if (status == 0) {
        char go[MAX_GUESTS];

        memset(go, 'g', sizeof(go));
        if (write(go_pipe[1], go, o.guests) != (ssize_t)o.guests)
            status = EXIT_SETUP;
    }
    close(go_pipe[1]);     /* a worker that got no byte sees end of file and stops */
    close(go_pipe[0]);
    for (unsigned int g = 0; g < spawned; g++) {
        contend_result r;
        ssize_t n = -1;

        for (;;) {
            struct pollfd pfds[2] = {
                { .fd = result_fds[g], .events = POLLIN },
                { .fd = stop_fd, .events = POLLIN },
            };

            if (poll(pfds, stop_forwarded ? 1 : 2, -1) < 0 && errno != EINTR) {
                perror("vml-sim-contend: poll");
                break;
            }
            if (!stop_forwarded && (pfds[1].revents & POLLIN) != 0) {
                /* Our stop request is the workers' too: each finishes its round and reports. */
                for (unsigned int w = 0; w < spawned; w++)
                    kill(workers[w], SIGTERM);
                stop_forwarded = true;
            }
            if ((pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                do {
                    n = read(result_fds[g], &r, sizeof(r));
                } while (n < 0 && errno == EINTR);
                break;
            }
        }
        close(result_fds[g]);
        if (n != (ssize_t)sizeof(r)) {
            fprintf(stderr, "vml-sim-contend: guest %u of %s died without a report\n", g, o.host);
            total.setup_failed = 1;
        } else {
            merge(&total, &r);
        }
        while (waitpid(workers[g], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    printf("contend host=%s guests=%u disks=%zu rounds=%lu attempts=%lu granted=%lu busy=%lu "
           "errors=%lu races=%lu double_grants=%lu release_errors=%lu unexpected_grants=%lu "
           "elapsed_ms=%" PRIu64 " acquire_p50_us=%" PRIu64 " acquire_p99_us=%" PRIu64
           " acquire_max_us=%" PRIu64 "\n",
           o.host, o.guests, o.ndisks, o.rounds, total.attempts, total.granted, total.busy,
           total.errors, total.races, total.double_grants, total.release_errors, total.unexpected_grants,
           (now_us() - started) / 1000, hist_percentile(&total, 0.5),
           hist_percentile(&total, 0.99), total.max_us);
    fflush(stdout);
    if (total.double_grants != 0 || total.release_errors != 0 || total.unexpected_grants != 0)
        return EXIT_VIOLATION;
    if (status != 0 || total.setup_failed)
        return EXIT_SETUP;
    return 0;
}
