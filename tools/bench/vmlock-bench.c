/* vmlock-bench.c: latency benchmark for any libvirt lock-driver plugin and its daemon, with interleaved comparisons, a floor daemon, /proc CPU and memory readings. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmb_fill.h"
#include "vmb_participant.h"
#include "vmb_plot.h"
#include "vmb_proc.h"
#include "vmb_results.h"
#include "vml_log.h"

#ifndef VMB_DEFAULT_PLUGIN
#error "VMB_DEFAULT_PLUGIN (the built vmlockd.so) must be defined by the build"
#endif
#ifndef VMB_DEFAULT_STUB
#error "VMB_DEFAULT_STUB (the built vmlock-stub-qemu) must be defined by the build"
#endif

#define NO_CONFIG_PATH "/nonexistent/vmlock-bench/qemu-lockd.conf"
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MAX_K 64                    /* entries of a disks list */
#define MAX_DISKS 4096
#define MAX_THREADS 64

typedef struct bench_args {
    const char *plugin;
    const char *config;
    const char *pidfile;
    const char *socket;
    const char *label;
    const char *vs_plugin;
    const char *vs_config;
    const char *vs_pidfile;
    const char *vs_socket;
    const char *vs_label;
    const char *plot;
    const char *json_out;
    const char *workdir;
    const char *stub;
    bool floor;
    int daemon_cpu;                 /* -1: not pinned */
    bool json;
    unsigned int warmup;
    unsigned int rounds;
    unsigned int reps;
    const char *mode;
    char **mode_args;
    int nmode_args;
} bench_args;

typedef struct bench {
    const bench_args *args;
    vmb_participant parts[VMB_MAX_PARTICIPANTS];
    unsigned int nparts;
    vmb_results results;
    pid_t fill_owners[VMB_MAX_PARTICIPANTS];
    int fill_pipes[VMB_MAX_PARTICIPANTS];
} bench;

/* For the signal handler only: the bench is a singleton of this process. */
static bench *volatile active_bench;

static const struct option long_options[] = {
    { "plugin", required_argument, NULL, 'P' },
    { "config", required_argument, NULL, 'C' },
    { "pidfile", required_argument, NULL, 'p' },
    { "socket", required_argument, NULL, 's' },
    { "label", required_argument, NULL, 'L' },
    { "vs", required_argument, NULL, 'V' },
    { "vs-pidfile", required_argument, NULL, 'q' },
    { "vs-socket", required_argument, NULL, 't' },
    { "vs-label", required_argument, NULL, 'M' },
    { "floor", no_argument, NULL, 'F' },
    { "json", no_argument, NULL, 'j' },
    { "json-out", required_argument, NULL, 'J' },
    { "plot", required_argument, NULL, 'G' },
    { "workdir", required_argument, NULL, 'W' },
    { "stub", required_argument, NULL, 'S' },
    { "warmup", required_argument, NULL, 'w' },
    { "rounds", required_argument, NULL, 'r' },
    { "reps", required_argument, NULL, 'R' },
    { "daemon-cpu", required_argument, NULL, 'c' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlock-bench [OPTIONS] MODE ARGS...\n"
"\n"
"Measures a libvirt lock-driver plugin (any .so exporting virLockDriverImpl) and its lock\n"
"daemon the way libvirt uses them: the plugin is loaded as libvirtd loads it, every domain\n"
"has a stand-in QEMU registered by the start hook in a forked child, and libvirtd's calls\n"
"acquire and release on its behalf.  The daemon must already run, as the config says.\n"
"\n"
"modes:\n"
"  latency N          N cycles of one 1-disk domain: new + add disk + acquire + free, then\n"
"                     new + add disk + release + free (CPU start, then pause)\n"
"  disks K1,K2,...    cycles of one domain with K disks, for each K (--reps each)\n"
"  parallel P N       P threads (libvirtd's workers), each its own domain and disk, N\n"
"                     cycles each; aggregate operations per second of wall time\n"
"  handoff N          one disk, two domains: the holder releases, a waiting thread is told\n"
"                     and acquires; the time from the release call to the grant\n"
"  floor N            the floor alone: a minimal connect-lock-reply daemon forked by the\n"
"                     bench (one poll loop, an OFD lock per request), N lock/unlock cycles\n"
"  fill LEASES N      N 1-disk cycles on the daemon as it is, then make it hold LEASES more\n"
"                     leases (needs --socket), then N cycles again; with its VmRSS\n"
"\n"
"options (before MODE):\n"
"  --plugin SO        the plugin (default $VMLOCK_PLUGIN, else the built vmlockd.so)\n"
"  --config FILE      passed to its drvInit (default: a path that does not exist)\n"
"  --pidfile FILE     its daemon's pid file: CPU per operation (/proc/PID/stat and\n"
"                     schedstat), VmRSS\n"
"  --socket PATH      its daemon's socket (fill mode talks to it directly)\n"
"  --label NAME       its name in the output (default: the plugin's file name)\n"
"  --vs SO2:CONF2     a second plugin and its config, run interleaved with the first\n"
"                     (A B A B ...) in the same run; the output adds B / A ratios\n"
"  --vs-pidfile FILE, --vs-socket PATH, --vs-label NAME    the same for the second\n"
"  --floor            also run the floor daemon interleaved (latency mode): X / floor ratios\n"
"  --daemon-cpu CPU   pin every daemon measured (the --pidfile ones, all their threads, and\n"
"                     the floor) to CPU, so that all run where the others do; run the bench\n"
"                     under taskset to place it too, and start a daemon that forks helpers\n"
"                     (vmlockd's keeper) under taskset so they follow.  Unpinned, each\n"
"                     wake-up lands on the same or the other CPU as the scheduler decides,\n"
"                     and on a VM an idle CPU's wake-up costs tens of microseconds\n"
"  --warmup N         unmeasured cycles first (default 20)\n"
"  --reps N           cycles per K in disks mode (default 20)\n"
"  --rounds N         interleaving rounds in parallel mode (default 10)\n"
"  --json             one JSON document on stdout instead of the table\n"
"  --json-out FILE    also write the JSON document to FILE\n"
"  --plot FILE.png    draw the latency distribution (or, in disks mode, the K-disk\n"
"                     curve) with gnuplot (Debian package gnuplot-nox)\n"
"  --workdir DIR      where images go (default: a new directory under $TMPDIR, removed)\n"
"  --stub PATH        the stand-in QEMU (default $VMLOCK_STUB_QEMU, else the built one)\n"
"\n"
"Every latency is reported as median, p90, p99 and max in microseconds, with operations\n"
"per second; nothing is compared with a time bound.  Exit status: 0 measured, 1 a plugin or\n"
"daemon failed (message on stderr), 2 usage error.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("vmlock-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vmlock-bench --help'.\n", stderr);
    return -1;
}

/* A decimal number in [min, max], nothing else. */
static int parse_uint(const char *text, unsigned long min, unsigned long max,
                      unsigned long *out)
{
    char *end = NULL;
    unsigned long value;

    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int option_uint(const char *name, const char *text, unsigned long min,
                       unsigned long max, unsigned int *out)
{
    unsigned long value;

    if (parse_uint(text, min, max, &value) < 0)
        return usage_error("%s needs a number from %lu to %lu, not '%s'", name, min, max,
                           text);
    *out = (unsigned int)value;
    return 0;
}

/* 0 parsed, 1 done (help), -1 usage error (reported). */
static int parse_args(int argc, char **argv, bench_args *args)
{
    int opt;

    args->warmup = 20;
    args->daemon_cpu = -1;
    args->rounds = 10;
    args->reps = 20;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'P': args->plugin = optarg; break;
        case 'C': args->config = optarg; break;
        case 'p': args->pidfile = optarg; break;
        case 's': args->socket = optarg; break;
        case 'L': args->label = optarg; break;
        case 'V': {
            char *colon = strrchr(optarg, ':');

            if (colon == NULL || colon == optarg || colon[1] == '\0')
                return usage_error("--vs needs PLUGIN:CONFIG, not '%s'", optarg);
            *colon = '\0';
            args->vs_plugin = optarg;
            args->vs_config = colon + 1;
            break;
        }
        case 'q': args->vs_pidfile = optarg; break;
        case 't': args->vs_socket = optarg; break;
        case 'M': args->vs_label = optarg; break;
        case 'F': args->floor = true; break;
        case 'j': args->json = true; break;
        case 'J': args->json_out = optarg; break;
        case 'G': args->plot = optarg; break;
        case 'W': args->workdir = optarg; break;
        case 'S': args->stub = optarg; break;
        case 'w':
            if (option_uint("--warmup", optarg, 0, 1000000, &args->warmup) < 0)
                return -1;
            break;
        case 'r':
            if (option_uint("--rounds", optarg, 1, 1000, &args->rounds) < 0)
                return -1;
            break;
        case 'R':
            if (option_uint("--reps", optarg, 1, 1000000, &args->reps) < 0)
                return -1;
            break;
        case 'c': {
            unsigned int cpu;

            if (option_uint("--daemon-cpu", optarg, 0, CPU_SETSIZE - 1, &cpu) < 0)
                return -1;
            args->daemon_cpu = (int)cpu;
            break;
        }
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("no MODE given");
    args->mode = argv[optind];
    args->mode_args = argv + optind + 1;
    args->nmode_args = argc - optind - 1;
    if ((args->vs_pidfile != NULL || args->vs_socket != NULL || args->vs_label != NULL) &&
        args->vs_plugin == NULL)
        return usage_error("--vs-pidfile, --vs-socket and --vs-label need --vs");
    return 0;
}

/* ---- measuring ---- */

/* CPU readings of every participant's daemon (has[p] false when unknown). */
static void cpu_snapshot(bench *b, vmb_cpu *cpu, bool *has)
{
    for (unsigned int p = 0; p < b->nparts; p++) {
        has[p] = b->parts[p].daemon_pid > 0 &&
                 vmb_proc_cpu(b->parts[p].daemon_pid, &cpu[p], NULL) == 0;
    }
}

/* Set the daemon CPU per operation on row of participant p. */
static void cpu_assign(vmb_row *row, const vmb_cpu *before, const vmb_cpu *after, bool known,
                       unsigned long ops)
{
    if (row != NULL && known && ops > 0)
        row->cpu_us_per_op = vmb_proc_cpu_delta_us(before, after) / (double)ops;
}

static int record(bench *b, unsigned int p, const char *scope, double x, double acquire_us,
                  double release_us, vml_error *err)
{
    const char *const metrics[] = { "acquire", "release", "cycle" };
    const double values[] = { acquire_us, release_us, acquire_us + release_us };

    /* One row at a time: creating a row may move the others. */
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        vmb_row *row = vmb_results_row(&b->results, p, scope, metrics[i], x, err);

        if (row == NULL || vmb_samples_add(&row->samples, values[i], err) < 0)
            return -1;
    }
    return 0;
}

/* Name a failure with the participant it happened to. */
static int participant_failed(const vmb_participant *p, const char *what, vml_error *err)
{
    vml_error inner = *err;

    vml_error_set_raw(err, inner.domain, inner.code, "");
    snprintf(err->message, sizeof(err->message), "%.64s: %.128s: %.800s", p->label, what,
             inner.message);
    return -1;
}

/* n interleaved 1-disk cycles of every participant (warmup first), recorded under scope. */
static int run_cycles(bench *b, unsigned int n, unsigned int warmup, const char *scope,
                      vml_error *err)
{
    vmh_domain doms[VMB_MAX_PARTICIPANTS];
    vmh_disk disks[VMB_MAX_PARTICIPANTS][1];
    vmb_cpu before[VMB_MAX_PARTICIPANTS];
    vmb_cpu after[VMB_MAX_PARTICIPANTS];
    bool has_before[VMB_MAX_PARTICIPANTS];
    bool has_after[VMB_MAX_PARTICIPANTS];
    char *states[VMB_MAX_PARTICIPANTS] = { NULL };
    int ret = -1;

    for (unsigned int p = 0; p < b->nparts; p++) {
        if (vmb_participant_domain(&b->parts[p], 0, 0, 1, &doms[p], disks[p], err) < 0) {
            participant_failed(&b->parts[p], "setting up a domain", err);
            goto out;
        }
    }
    for (unsigned int i = 0; i < warmup + n; i++) {
        if (i == warmup)
            cpu_snapshot(b, before, has_before);
        /* Each participant goes first in turn, so none always follows the same one. */
        for (unsigned int k = 0; k < b->nparts; k++) {
            unsigned int p = (i + k) % b->nparts;
            double acq;
            double rel;

            if (vmb_participant_cycle(&b->parts[p], &doms[p], &states[p], &acq, &rel,
                                      err) < 0) {
                participant_failed(&b->parts[p], "cycle", err);
                goto out;
            }
            if (i >= warmup && record(b, p, scope, 0, acq, rel, err) < 0)
                goto out;
        }
    }
    cpu_snapshot(b, after, has_after);
    for (unsigned int p = 0; p < b->nparts; p++) {
        cpu_assign(vmb_results_row(&b->results, p, scope, "cycle", 0, err), &before[p],
                   &after[p], has_before[p] && has_after[p], n);
    }
    ret = 0;
 out:
    for (unsigned int p = 0; p < VMB_MAX_PARTICIPANTS; p++)
        free(states[p]);
    return ret;
}

static int mode_latency(bench *b, vml_error *err)
{
    unsigned long n;

    if (b->args->nmode_args != 1 || parse_uint(b->args->mode_args[0], 1, 100000000, &n) < 0)
        return usage_error("usage: %s N (a number of cycles, at least 1)", b->args->mode);
    return run_cycles(b, (unsigned int)n, b->args->warmup, "1 disk", err) < 0 ? 1 : 0;
}

static int mode_disks(bench *b, vml_error *err)
{
    unsigned long ks[MAX_K];
    size_t nk = 0;
    char *list;
    char *save = NULL;
    vmh_disk (*disks)[MAX_DISKS] = NULL;
    int rc;
    int ret = -1;

    if (b->args->nmode_args != 1)
        return usage_error("usage: disks K1,K2,... (disks per domain, 1 to %d)", MAX_DISKS);
    list = b->args->mode_args[0];
    for (char *item = strtok_r(list, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        if (nk == MAX_K || parse_uint(item, 1, MAX_DISKS, &ks[nk]) < 0)
            return usage_error("disks: '%s' is not a number of disks from 1 to %d (at most "
                               "%d of them)", item, MAX_DISKS, MAX_K);
        nk++;
    }
    if (nk == 0)
        return usage_error("disks: no K given");
    disks = calloc(VMB_MAX_PARTICIPANTS, sizeof(*disks));
    if (disks == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot describe %d disks", MAX_DISKS);
        return 1;
    }
    for (size_t k = 0; k < nk; k++) {
        vmh_domain doms[VMB_MAX_PARTICIPANTS];
        vmb_cpu before[VMB_MAX_PARTICIPANTS];
        vmb_cpu after[VMB_MAX_PARTICIPANTS];
        bool has_before[VMB_MAX_PARTICIPANTS];
        bool has_after[VMB_MAX_PARTICIPANTS];
        unsigned int warmup = b->args->warmup < 2 ? b->args->warmup : 2;
        char *states[VMB_MAX_PARTICIPANTS] = { NULL };
        char scope[32];

        snprintf(scope, sizeof(scope), "K=%lu", ks[k]);
        for (unsigned int p = 0; p < b->nparts; p++) {
            if (vmb_participant_domain(&b->parts[p], 0, 0, ks[k], &doms[p], disks[p], err) < 0) {
                participant_failed(&b->parts[p], "setting up a domain", err);
                goto out;
            }
        }
        for (unsigned int i = 0; i < warmup + b->args->reps; i++) {
            if (i == warmup)
                cpu_snapshot(b, before, has_before);
            for (unsigned int turn = 0; turn < b->nparts; turn++) {
                unsigned int p = (i + turn) % b->nparts;
                double acq;
                double rel;

                rc = vmb_participant_cycle(&b->parts[p], &doms[p], &states[p], &acq, &rel,
                                           err);
                if (rc < 0)
                    participant_failed(&b->parts[p], "cycle", err);
                else
                    rc = i >= warmup ? record(b, p, scope, (double)ks[k], acq, rel, err) : 0;
                if (rc < 0) {
                    for (unsigned int q = 0; q < VMB_MAX_PARTICIPANTS; q++)
                        free(states[q]);
                    goto out;
                }
            }
        }
        /* The next K is another disk set: its first resume has no state. */
        for (unsigned int q = 0; q < VMB_MAX_PARTICIPANTS; q++)
            free(states[q]);
        cpu_snapshot(b, after, has_after);
        for (unsigned int p = 0; p < b->nparts; p++)
            cpu_assign(vmb_results_row(&b->results, p, scope, "cycle", (double)ks[k], err),
                       &before[p], &after[p], has_before[p] && has_after[p], b->args->reps);
    }
    ret = 0;
 out:
    free(disks);
    return ret;
}

/* ---- parallel ---- */

typedef struct worker_thread {
    vmb_participant *part;
    vmh_domain dom;
    vmh_disk disk;
    unsigned int cycles;
    pthread_barrier_t *start;
    vmb_samples samples;
    vml_error err;
    char *state;                    /* the domain's lock state between cycles */
    int rc;
} worker_thread;

static void *worker_run(void *opaque)
{
    worker_thread *w = opaque;

    pthread_barrier_wait(w->start);
    for (unsigned int i = 0; i < w->cycles; i++) {
        double acq;
        double rel;

        if (vmb_participant_cycle(w->part, &w->dom, &w->state, &acq, &rel, &w->err) < 0 ||
            vmb_samples_add(&w->samples, acq + rel, &w->err) < 0) {
            w->rc = -1;
            break;
        }
    }
    return NULL;
}

/* One round: threads threads of participant p run cycles each; the wall time goes to *wall_us. */
static int parallel_round(bench *b, unsigned int p, unsigned int threads, unsigned int cycles,
                          worker_thread *workers, double *wall_us, vml_error *err)
{
    pthread_t ids[MAX_THREADS];
    pthread_barrier_t start;
    unsigned int started = 0;
    double t0;
    int ret = 0;

    if (pthread_barrier_init(&start, NULL, threads + 1) != 0) {
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_SYSTEM_ERROR, "cannot create a barrier");
        return -1;
    }
    for (unsigned int t = 0; t < threads; t++) {
        workers[t].part = &b->parts[p];
        workers[t].cycles = cycles;
        workers[t].start = &start;
        workers[t].rc = 0;
        if (pthread_create(&ids[t], NULL, worker_run, &workers[t]) != 0)
            break;
        started++;
    }
    if (started < threads) {
        /* Release the threads that wait: the barrier counts threads + 1, so cancel by count. */
        vml_error_set(err, VIR_FROM_NONE, VIR_ERR_SYSTEM_ERROR, "cannot start %u threads",
                      threads);
        for (unsigned int t = 0; t < started; t++)
            pthread_cancel(ids[t]);
        for (unsigned int t = 0; t < started; t++)
            pthread_join(ids[t], NULL);
        pthread_barrier_destroy(&start);
        return -1;
    }
    pthread_barrier_wait(&start);
    t0 = vmb_now_us();
    for (unsigned int t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    *wall_us += vmb_now_us() - t0;
    pthread_barrier_destroy(&start);
    for (unsigned int t = 0; t < threads; t++) {
        if (workers[t].rc < 0 && ret == 0) {
            *err = workers[t].err;
            ret = participant_failed(&b->parts[p], "parallel cycle", err);
        }
    }
    return ret;
}

static int mode_parallel(bench *b, vml_error *err)
{
    worker_thread (*workers)[MAX_THREADS] = NULL;
    double wall[VMB_MAX_PARTICIPANTS] = { 0 };
    vmb_cpu before[VMB_MAX_PARTICIPANTS];
    vmb_cpu after[VMB_MAX_PARTICIPANTS];
    bool has_before[VMB_MAX_PARTICIPANTS];
    bool has_after[VMB_MAX_PARTICIPANTS];
    unsigned long threads;
    unsigned long n;
    unsigned int rounds = b->args->rounds;
    unsigned int per_round;
    char scope[32];
    int ret = -1;

    if (b->args->nmode_args != 2 || parse_uint(b->args->mode_args[0], 1, MAX_THREADS, &threads) < 0 ||
        parse_uint(b->args->mode_args[1], 1, 100000000, &n) < 0)
        return usage_error("usage: parallel P N (P threads from 1 to %d, N cycles each)",
                           MAX_THREADS);
    if (rounds > n)
        rounds = (unsigned int)n;
    per_round = (unsigned int)(n / rounds);
    snprintf(scope, sizeof(scope), "P=%lu", threads);
    workers = calloc(VMB_MAX_PARTICIPANTS, sizeof(*workers));
    if (workers == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot set up %lu threads", threads);
        return 1;
    }
    for (unsigned int p = 0; p < b->nparts; p++) {
        for (unsigned int t = 0; t < threads; t++) {
            if (vmb_participant_domain(&b->parts[p], t + 1, t + 1, 1, &workers[p][t].dom,
                                       &workers[p][t].disk, err) < 0) {
                participant_failed(&b->parts[p], "setting up a domain", err);
                goto out;
            }
            /* vmb_participant_domain pointed dom.disks at the caller's array: ours. */
            workers[p][t].dom.disks = &workers[p][t].disk;
        }
    }
    /* Warm up every thread's path once, unmeasured. */
    for (unsigned int p = 0; p < b->nparts; p++) {
        double unused = 0;

        if (parallel_round(b, p, (unsigned int)threads, 1, workers[p], &unused, err) < 0)
            goto out;
        for (unsigned int t = 0; t < threads; t++)
            vmb_samples_free(&workers[p][t].samples);
    }
    cpu_snapshot(b, before, has_before);
    for (unsigned int r = 0; r < rounds; r++) {
        for (unsigned int k = 0; k < b->nparts; k++) {
            unsigned int p = (r + k) % b->nparts;

            if (parallel_round(b, p, (unsigned int)threads, per_round, workers[p], &wall[p],
                               err) < 0)
                goto out;
        }
    }
    cpu_snapshot(b, after, has_after);
    for (unsigned int p = 0; p < b->nparts; p++) {
        vmb_row *row = vmb_results_row(&b->results, p, scope, "cycle", 0, err);
        unsigned long total = (unsigned long)threads * per_round * rounds;

        if (row == NULL)
            goto out;
        for (unsigned int t = 0; t < threads; t++) {
            if (vmb_samples_merge(&row->samples, &workers[p][t].samples, err) < 0)
                goto out;
        }
        row->wall_ops_per_s = wall[p] > 0 ? (double)total * 1e6 / wall[p] : 0.0;
        cpu_assign(row, &before[p], &after[p], has_before[p] && has_after[p], total);
    }
    ret = 0;
 out:
    for (unsigned int p = 0; p < VMB_MAX_PARTICIPANTS; p++) {
        for (unsigned int t = 0; t < MAX_THREADS; t++) {
            vmb_samples_free(&workers[p][t].samples);
            free(workers[p][t].state);
        }
    }
    free(workers);
    return ret;
}

/* ---- handoff ---- */

typedef struct waiter {
    vmb_participant *part;
    vmh_domain dom;
    vmh_disk disk;
    int go[2];                      /* main -> waiter: the release start time */
    int done[2];                    /* waiter -> main: the measured latency (< 0: failed) */
    vml_error err;
} waiter;

static void *waiter_run(void *opaque)
{
    waiter *w = opaque;
    double t0;

    while (read(w->go[0], &t0, sizeof(t0)) == (ssize_t)sizeof(t0) && t0 >= 0) {
        char *state = NULL;
        double latency = -1.0;

        if (vmh_acquire(w->part->plugin, &w->dom, NULL, &w->err) == 0) {
            latency = vmb_now_us() - t0;
            if (vmh_release(w->part->plugin, &w->dom, &state, &w->err) < 0)
                latency = -1.0;
            free(state);
        }
        if (write(w->done[1], &latency, sizeof(latency)) != (ssize_t)sizeof(latency))
            break;
    }
    return NULL;
}

static int mode_handoff(bench *b, vml_error *err)
{
    waiter waiters[VMB_MAX_PARTICIPANTS];
    vmh_domain holders[VMB_MAX_PARTICIPANTS];
    vmh_disk holder_disks[VMB_MAX_PARTICIPANTS][1];
    pthread_t ids[VMB_MAX_PARTICIPANTS];
    unsigned int started = 0;
    unsigned long n;
    int ret = -1;

    if (b->args->nmode_args != 1 || parse_uint(b->args->mode_args[0], 1, 100000000, &n) < 0)
        return usage_error("usage: handoff N (a number of hand-offs, at least 1)");
    memset(waiters, 0, sizeof(waiters));
    for (unsigned int p = 0; p < b->nparts; p++) {
        waiter *w = &waiters[p];

        w->go[0] = w->go[1] = w->done[0] = w->done[1] = -1;
        if (b->parts[p].kind == VMB_FLOOR) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_INVALID_ARG,
                          "handoff needs plugins: the floor has one client at a time");
            goto out;
        }
        w->part = &b->parts[p];
        if (vmb_participant_domain(&b->parts[p], 0, 0, 1, &holders[p], holder_disks[p],
                                   err) < 0 ||
            vmb_participant_domain(&b->parts[p], 1, 0, 1, &w->dom, &w->disk, err) < 0) {
            participant_failed(&b->parts[p], "setting up the domains", err);
            goto out;
        }
        w->dom.disks = &w->disk;
        if (pipe2(w->go, O_CLOEXEC) < 0 || pipe2(w->done, O_CLOEXEC) < 0) {
            vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create pipes");
            goto out;
        }
        if (pthread_create(&ids[p], NULL, waiter_run, w) != 0) {
            vml_error_set(err, VIR_FROM_NONE, VIR_ERR_SYSTEM_ERROR, "cannot start a thread");
            goto out;
        }
        started++;
    }
    for (unsigned int i = 0; i < b->args->warmup + n; i++) {
        for (unsigned int k = 0; k < b->nparts; k++) {
            unsigned int p = (i + k) % b->nparts;
            waiter *w = &waiters[p];
            char *state = NULL;
            double latency = -1.0;
            double t0;
            vmb_row *row;

            if (vmh_acquire(b->parts[p].plugin, &holders[p], NULL, err) < 0) {
                participant_failed(&b->parts[p], "the holder's acquire", err);
                goto out;
            }
            t0 = vmb_now_us();
            if (vmh_release(b->parts[p].plugin, &holders[p], &state, err) < 0) {
                participant_failed(&b->parts[p], "the holder's release", err);
                goto out;
            }
            free(state);
            if (write(w->go[1], &t0, sizeof(t0)) != (ssize_t)sizeof(t0) ||
                read(w->done[0], &latency, sizeof(latency)) != (ssize_t)sizeof(latency) ||
                latency < 0) {
                *err = w->err;
                participant_failed(&b->parts[p], "the waiter's acquire", err);
                goto out;
            }
            if (i < b->args->warmup)
                continue;
            row = vmb_results_row(&b->results, p, "1 disk", "handoff", 0, err);
            if (row == NULL || vmb_samples_add(&row->samples, latency, err) < 0)
                goto out;
        }
    }
    ret = 0;
 out:
    for (unsigned int p = 0; p < started; p++) {
        double stop = -1.0;

        if (write(waiters[p].go[1], &stop, sizeof(stop)) != (ssize_t)sizeof(stop))
            close(waiters[p].go[1]);
        pthread_join(ids[p], NULL);
    }
    for (unsigned int p = 0; p < b->nparts; p++) {
        for (int i = 0; i < 2; i++) {
            if (waiters[p].go[i] >= 0)
                close(waiters[p].go[i]);
            if (waiters[p].done[i] >= 0)
                close(waiters[p].done[i]);
        }
    }
    return ret;
}

/* ---- fill ---- */

/* A process that only waits: the owner of the filled leases; it exits when fd_w closes. */
static int spawn_owner(pid_t *pid, int *fd_w, vml_error *err)
{
    int fds[2];
    pid_t child;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create a pipe");
        return -1;
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork the lease owner");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (child == 0) {
        char byte;

        close(fds[1]);
        while (read(fds[0], &byte, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(fds[0]);
    *pid = child;
    *fd_w = fds[1];
    return 0;
}

static void stop_owners(bench *b)
{
    for (unsigned int p = 0; p < VMB_MAX_PARTICIPANTS; p++) {
        if (b->fill_pipes[p] >= 0)
            close(b->fill_pipes[p]);
        b->fill_pipes[p] = -1;
        if (b->fill_owners[p] > 0)
            while (waitpid(b->fill_owners[p], NULL, 0) < 0 && errno == EINTR)
                ;
        b->fill_owners[p] = 0;
    }
}

static int mode_fill(bench *b, vml_error *err)
{
    unsigned long leases;
    unsigned long n;
    char full_scope[48];

    if (b->args->nmode_args != 2 || parse_uint(b->args->mode_args[0], 1, 10000000, &leases) < 0 ||
        parse_uint(b->args->mode_args[1], 1, 100000000, &n) < 0)
        return usage_error("usage: fill LEASES N (leases to add, cycles before and after)");
    for (unsigned int p = 0; p < b->nparts; p++) {
        if (b->parts[p].kind == VMB_PLUGIN && b->parts[p].socket_path == NULL)
            return usage_error("fill needs the daemon's socket: --socket%s",
                               p > 0 ? " and --vs-socket" : "");
    }
    if (run_cycles(b, (unsigned int)n, b->args->warmup, "empty", err) < 0)
        return 1;
    for (unsigned int p = 0; p < b->nparts; p++) {
        vmb_row *row = vmb_results_row(&b->results, p, "empty", "cycle", 0, err);
        long kib;

        if (row != NULL && b->parts[p].daemon_pid > 0 &&
            vmb_proc_rss_kib(b->parts[p].daemon_pid, &kib, NULL) == 0)
            row->rss_kib = kib;
    }
    snprintf(full_scope, sizeof(full_scope), "+%lu leases", leases);
    for (unsigned int p = 0; p < b->nparts; p++) {
        char lockspace[PATH_MAX];
        bool batch = false;
        double t0 = vmb_now_us();

        if (b->parts[p].kind != VMB_PLUGIN)
            continue;
        /* dir is bounded well below PATH_MAX (vmb_participant_open). */
        snprintf(lockspace, sizeof(lockspace), "%.*s/fill", PATH_MAX - 16, b->parts[p].dir);
        if (spawn_owner(&b->fill_owners[p], &b->fill_pipes[p], err) < 0 ||
            vmb_fill(b->parts[p].socket_path, lockspace, b->fill_owners[p],
                     (unsigned int)leases, &batch, err) < 0)
        {
            participant_failed(&b->parts[p], "filling the daemon", err);
            return 1;
        }
        fprintf(stderr, "vmlock-bench: %s: %lu leases held for process %d in %.1f s (%s)\n",
                b->parts[p].label, leases, (int)b->fill_owners[p],
                (vmb_now_us() - t0) / 1e6, batch ? "BATCH_ACQUIRE" : "one ACQUIRE_RESOURCE each");
    }
    if (run_cycles(b, (unsigned int)n, b->args->warmup, full_scope, err) < 0)
        return 1;
    for (unsigned int p = 0; p < b->nparts; p++) {
        vmb_row *row = vmb_results_row(&b->results, p, full_scope, "cycle", 0, err);
        long kib;

        if (row != NULL && b->parts[p].daemon_pid > 0 &&
            vmb_proc_rss_kib(b->parts[p].daemon_pid, &kib, NULL) == 0)
            row->rss_kib = kib;
    }
    return 0;
}

/* ---- main ---- */

static void on_fatal_signal(int sig)
{
    bench *b = active_bench;

    if (b != NULL) {
        for (unsigned int p = 0; p < b->nparts; p++) {
            for (size_t i = 0; i < VMB_MAX_SLOTS; i++) {
                if (b->parts[p].guests[i] > 0)
                    kill(b->parts[p].guests[i], SIGKILL);
            }
            if (b->parts[p].floor.pid > 0)
                kill(b->parts[p].floor.pid, SIGKILL);
            if (b->fill_owners[p] > 0)
                kill(b->fill_owners[p], SIGKILL);
        }
    }
    _exit(128 + sig);
}

/*
 * In every child the bench forks (stand-in QEMUs through the plug-in host, the floor daemon,
 * lease owners): die with the bench.  A benchmark's guests have no life of their own, and a
 * bench that crashes must not leave processes holding leases behind.
 */
static void die_with_parent(void)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);     /* best effort: what cannot be removed is left for the user */
    return 0;
}

static char *join_command(int argc, char **argv)
{
    size_t len = 1;
    char *text;

    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    text = calloc(1, len);
    if (text == NULL)
        return NULL;
    for (int i = 0; i < argc; i++) {
        if (i > 0)
            strcat(text, " ");
        strcat(text, argv[i]);
    }
    return text;
}

int main(int argc, char **argv)
{
    bench b;
    char workdir[PATH_MAX] = "";
    bool created = false;
    char *command = join_command(argc, argv);
    const char *log_outputs;
    bench_args args;
    struct sigaction sa;
    vml_error err;
    int parsed;
    int rc;
    int ret = EXIT_USAGE;

    memset(&args, 0, sizeof(args));
    memset(&b, 0, sizeof(b));
    for (unsigned int p = 0; p < VMB_MAX_PARTICIPANTS; p++)
        b.fill_pipes[p] = -1;
    vml_error_clear(&err);
    vml_log_set_program("vmlock-bench");
    log_outputs = getenv("VMLOCK_BENCH_LOG");
    if (log_outputs != NULL && log_outputs[0] != '\0' &&
        vml_log_set_outputs(log_outputs, &err) < 0) {
        fprintf(stderr, "vmlock-bench: $VMLOCK_BENCH_LOG: %s\n", err.message);
        goto out;
    }
    parsed = parse_args(argc, argv, &args);
    if (parsed != 0) {
        ret = parsed > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    b.args = &args;
    if (strcmp(args.mode, "latency") != 0 && strcmp(args.mode, "disks") != 0 &&
        strcmp(args.mode, "parallel") != 0 && strcmp(args.mode, "handoff") != 0 &&
        strcmp(args.mode, "floor") != 0 && strcmp(args.mode, "fill") != 0) {
        usage_error("unknown mode '%s' (latency, disks, parallel, handoff, floor, fill)",
                    args.mode);
        goto out;
    }
    if (args.floor && strcmp(args.mode, "latency") != 0) {
        usage_error("--floor goes with latency mode (the floor daemon has one lock)");
        goto out;
    }
    if (args.workdir != NULL) {
        if (realpath(args.workdir, workdir) == NULL) {
            usage_error("--workdir %s: %s", args.workdir, strerror(errno));
            goto out;
        }
    } else {
        const char *tmp = getenv("TMPDIR");

        snprintf(workdir, sizeof(workdir), "%s/vmlock-bench.XXXXXX",
                 tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
        if (mkdtemp(workdir) == NULL) {
            fprintf(stderr, "vmlock-bench: cannot create a work directory %s: %s\n", workdir,
                    strerror(errno));
            ret = EXIT_FAILED;
            goto out;
        }
        created = true;
    }
    if (args.stub == NULL)
        args.stub = getenv("VMLOCK_STUB_QEMU");
    if (args.stub == NULL || args.stub[0] == '\0')
        args.stub = VMB_DEFAULT_STUB;
    if (args.plugin == NULL)
        args.plugin = getenv("VMLOCK_PLUGIN");
    if (args.plugin == NULL || args.plugin[0] == '\0')
        args.plugin = VMB_DEFAULT_PLUGIN;
    if (args.config == NULL)
        args.config = NO_CONFIG_PATH;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_fatal_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    active_bench = &b;
    if (pthread_atfork(NULL, NULL, die_with_parent) != 0)
        fprintf(stderr, "vmlock-bench: warning: children will not die with the bench\n");

    ret = EXIT_FAILED;
    if (strcmp(args.mode, "floor") != 0) {
        if (vmb_participant_open(&b.parts[b.nparts], b.nparts,
                                 args.label != NULL ? args.label : basename_of(args.plugin),
                                 VMB_PLUGIN, args.plugin, args.config, args.pidfile,
                                 args.socket, args.stub, workdir, &err) < 0) {
            fprintf(stderr, "vmlock-bench: %s: %s\n", args.plugin, err.message);
            goto out;
        }
        b.nparts++;
        if (args.vs_plugin != NULL) {
            if (vmb_participant_open(&b.parts[b.nparts], b.nparts,
                                     args.vs_label != NULL ? args.vs_label
                                                           : basename_of(args.vs_plugin),
                                     VMB_PLUGIN, args.vs_plugin, args.vs_config,
                                     args.vs_pidfile, args.vs_socket, args.stub, workdir,
                                     &err) < 0) {
                fprintf(stderr, "vmlock-bench: %s: %s\n", args.vs_plugin, err.message);
                goto out;
            }
            b.nparts++;
        }
    }
    if (args.floor || strcmp(args.mode, "floor") == 0) {
        if (vmb_participant_open(&b.parts[b.nparts], b.nparts, "floor", VMB_FLOOR, NULL, NULL,
                                 NULL, NULL, args.stub, workdir, &err) < 0) {
            fprintf(stderr, "vmlock-bench: floor: %s\n", err.message);
            goto out;
        }
        b.nparts++;
    }
    if (args.daemon_cpu >= 0) {
        for (unsigned int p = 0; p < b.nparts; p++) {
            if (b.parts[p].daemon_pid > 0 &&
                vmb_proc_pin(b.parts[p].daemon_pid, args.daemon_cpu, &err) < 0) {
                fprintf(stderr, "vmlock-bench: %s: %s\n", b.parts[p].label, err.message);
                goto out;
            }
        }
    }
    b.results.mode = args.mode;
    b.results.command = command;
    vmb_proc_machine(b.results.machine, sizeof(b.results.machine));
    b.results.nparticipants = b.nparts;
    for (unsigned int p = 0; p < b.nparts; p++) {
        vmb_participant_info *info = &b.results.participants[p];

        info->label = b.parts[p].label;
        info->plugin = b.parts[p].plugin_path;
        info->config = b.parts[p].config_path;
        info->daemon_pid = (int)b.parts[p].daemon_pid;
        info->is_floor = b.parts[p].kind == VMB_FLOOR;
    }

    if (strcmp(args.mode, "latency") == 0 || strcmp(args.mode, "floor") == 0)
        rc = mode_latency(&b, &err);
    else if (strcmp(args.mode, "disks") == 0)
        rc = mode_disks(&b, &err);
    else if (strcmp(args.mode, "parallel") == 0)
        rc = mode_parallel(&b, &err);
    else if (strcmp(args.mode, "handoff") == 0)
        rc = mode_handoff(&b, &err);
    else
        rc = mode_fill(&b, &err);
    if (rc != 0) {
        if (err.message[0] != '\0')
            fprintf(stderr, "vmlock-bench: %s\n", err.message);
        ret = rc == -1 && err.message[0] == '\0' ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    if (vmb_results_finish(&b.results, &err) < 0) {
        fprintf(stderr, "vmlock-bench: %s\n", err.message);
        goto out;
    }
    if (args.json)
        vmb_results_print_json(&b.results, stdout);
    else
        vmb_results_print_table(&b.results, stdout);
    if (args.json_out != NULL) {
        FILE *file = fopen(args.json_out, "we");

        if (file == NULL) {
            fprintf(stderr, "vmlock-bench: --json-out %s: %s\n", args.json_out,
                    strerror(errno));
            goto out;
        }
        vmb_results_print_json(&b.results, file);
        if (fclose(file) != 0) {
            fprintf(stderr, "vmlock-bench: --json-out %s: %s\n", args.json_out,
                    strerror(errno));
            goto out;
        }
    }
    if (args.plot != NULL && vmb_plot(&b.results, args.plot, &err) < 0) {
        fprintf(stderr, "vmlock-bench: --plot %s: %s\n", args.plot, err.message);
        goto out;
    }
    ret = 0;
 out:
    active_bench = NULL;
    stop_owners(&b);
    for (unsigned int p = 0; p < b.nparts; p++)
        vmb_participant_close(&b.parts[p]);
    vmb_results_free(&b.results);
    if (created)
        (void)nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(command);
    return ret;
}
