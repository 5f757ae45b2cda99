/* vmlock-conform.c: conformance suite for any libvirt lock-driver plugin: replays libvirt 9.0.0's call sequences with separate processes, TAP output. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmc_checks.h"
#include "vmc_report.h"
#include "vml_log.h"

#ifndef VMC_DEFAULT_PLUGIN
#error "VMC_DEFAULT_PLUGIN (the built vmlockd.so) must be defined by the build"
#endif
#ifndef VMC_DEFAULT_STUB
#error "VMC_DEFAULT_STUB (the built vmlock-stub-qemu) must be defined by the build"
#endif

/* drvInit always gets a path, as from libvirt; without --config, one that does not exist. */
#define NO_CONFIG_PATH "/nonexistent/vmlock-conform/qemu-lockd.conf"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

#define MAX_ONLY 32

typedef struct conform_args {
    const char *plugin;
    const char *config;
    const char *deviations;
    const char *stub;
    const char *workdir;
    const char *only[MAX_ONLY];
    size_t nonly;
    bool list;
    bool keep;
} conform_args;

static const struct option long_options[] = {
    { "plugin", required_argument, NULL, 'P' },
    { "config", required_argument, NULL, 'C' },
    { "deviations", required_argument, NULL, 'D' },
    { "stub", required_argument, NULL, 'S' },
    { "workdir", required_argument, NULL, 'W' },
    { "only", required_argument, NULL, 'O' },
    { "list", no_argument, NULL, 'l' },
    { "keep", no_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlock-conform [--plugin SO] [--config FILE] [--deviations FILE] [OPTIONS]\n"
"\n"
"Conformance suite for a libvirt lock-driver plugin (any .so exporting virLockDriverImpl:\n"
"vmlockd.so, libvirt's lockd.so, a third party's).  It replays libvirt 9.0.0's call\n"
"sequences with separate processes: \"libvirtd\" processes that load the plugin, guests\n"
"whose start hook runs in a forked child that then execs a stand-in QEMU keeping the\n"
"inherited descriptor, pause/resume, hotplug, migration's inquire, libvirtd restarts and\n"
"domain stops.  The plugin's lock daemon must already run, as the config says.\n"
"\n"
"  --plugin SO        the plugin (default $VMLOCK_PLUGIN, else the built vmlockd.so)\n"
"  --config FILE      passed to drvInit (default: a path that does not exist)\n"
"  --deviations FILE  known deviations of this plugin: lines 'CHECK-ID REASON'; a listed\n"
"                     check that fails is reported as a known deviation (TAP TODO), never\n"
"                     as a pass; a listed check that passes is a failure (stale list)\n"
"  --stub PATH        the stand-in QEMU (default $VMLOCK_STUB_QEMU, else the built one)\n"
"  --workdir DIR      where disk images are made (default: a new directory under\n"
"                     $TMPDIR, removed at the end unless --keep)\n"
"  --only GROUP       run only this group of checks (repeatable): params, start, excl,\n"
"                     shared, readonly, alias, pause, hotplug, restart, death\n"
"  --list             print every check id and what it asserts, then exit\n"
"  --keep             keep the work directory\n"
"\n"
"Output: TAP on stdout, one line per check, then a summary listing the known deviations\n"
"(with their reasons and what was observed, including the error a user would see) and the\n"
"failures.  $VMLOCK_CONFORM_LOG takes log_outputs (e.g. '1:stderr') for the suite's own\n"
"debug log.  Exit status: 0 every check passed or is a listed deviation, 1 a check failed,\n"
"2 usage error.  Run it as the user libvirt runs as (root for qemu:///system).\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("vmlock-conform: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vmlock-conform --help'.\n", stderr);
    return -1;
}

/* 0 parsed, 1 done (help), -1 usage error (reported). */
static int parse_args(int argc, char **argv, conform_args *args)
{
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'P':
            args->plugin = optarg;
            break;
        case 'C':
            args->config = optarg;
            break;
        case 'D':
            args->deviations = optarg;
            break;
        case 'S':
            args->stub = optarg;
            break;
        case 'W':
            args->workdir = optarg;
            break;
        case 'O':
            if (!vmc_checks_group_exists(optarg))
                return usage_error("--only: '%s' is not a group of checks", optarg);
            if (args->nonly >= MAX_ONLY)
                return usage_error("--only: at most %d groups", MAX_ONLY);
            args->only[args->nonly++] = optarg;
            break;
        case 'l':
            args->list = true;
            break;
        case 'k':
            args->keep = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    return 0;
}

static const char *from_env(const char *given, const char *variable, const char *fallback)
{
    const char *env = getenv(variable);

    if (given != NULL)
        return given;
    return env != NULL && env[0] != '\0' ? env : fallback;
}

/* Remove the files the suite made in dir (flat: images, links), then dir itself. */
static void remove_workdir(const char *dir)
{
    DIR *handle = opendir(dir);
    struct dirent *entry;

    if (handle == NULL)
        return;
    while ((entry = readdir(handle)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            (void)unlinkat(dirfd(handle), entry->d_name, 0);
    }
    closedir(handle);
    if (rmdir(dir) < 0)
        fprintf(stderr, "vmlock-conform: cannot remove %s: %s\n", dir, strerror(errno));
}

static void on_fatal_signal(int sig)
{
    vmc_checks_emergency_stop();
    _exit(128 + sig);
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_fatal_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv)
{
    char workdir[PATH_MAX] = "";
    char created[PATH_MAX] = "";
    conform_args args;
    vmc_options opts;
    vmc_report report;
    const char *log_outputs;
    vml_error err;
    int parsed;
    int ret = EXIT_USAGE;

    memset(&args, 0, sizeof(args));
    memset(&opts, 0, sizeof(opts));
    vml_error_clear(&err);
    vmc_report_init(&report, stdout, vmc_check_catalogue, vmc_check_catalogue_size);
    vml_log_set_program("vmlock-conform");
    log_outputs = getenv("VMLOCK_CONFORM_LOG");
    if (log_outputs != NULL && log_outputs[0] != '\0' &&
        vml_log_set_outputs(log_outputs, &err) < 0) {
        fprintf(stderr, "vmlock-conform: $VMLOCK_CONFORM_LOG: %s\n", err.message);
        goto out;
    }
    parsed = parse_args(argc, argv, &args);
    if (parsed != 0) {
        ret = parsed > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    if (args.list) {
        for (size_t i = 0; i < vmc_check_catalogue_size; i++)
            printf("%-24s %s\n", vmc_check_catalogue[i].id, vmc_check_catalogue[i].description);
        ret = 0;
        goto out;
    }
    if (args.deviations != NULL && vmc_report_load_deviations(&report, args.deviations, &err) < 0) {
        fprintf(stderr, "vmlock-conform: %s\n", err.message);
        goto out;
    }
    opts.plugin = from_env(args.plugin, "VMLOCK_PLUGIN", VMC_DEFAULT_PLUGIN);
    opts.stub = from_env(args.stub, "VMLOCK_STUB_QEMU", VMC_DEFAULT_STUB);
    opts.config = args.config != NULL ? args.config : NO_CONFIG_PATH;
    opts.only = args.only;
    opts.nonly = args.nonly;
    if (access(opts.stub, X_OK) < 0) {
        usage_error("the stand-in QEMU %s is not executable: %s", opts.stub, strerror(errno));
        goto out;
    }
    if (args.workdir != NULL) {
        if (realpath(args.workdir, workdir) == NULL) {
            usage_error("--workdir %s: %s", args.workdir, strerror(errno));
            goto out;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        char template[PATH_MAX];

        snprintf(template, sizeof(template), "%s/vmlock-conform.XXXXXX",
                 tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
        if (mkdtemp(template) == NULL || realpath(template, workdir) == NULL) {
            fprintf(stderr, "vmlock-conform: cannot create a work directory in %s: %s\n",
                    tmp != NULL && tmp[0] == '/' ? tmp : "/tmp", strerror(errno));
            ret = EXIT_FAILED;
            goto out;
        }
        snprintf(created, sizeof(created), "%s", workdir);
    }
    opts.workdir = workdir;
    install_signals();

    printf("# vmlock-conform: plugin %s\n# config %s\n# deviations %s\n# work directory %s\n",
           opts.plugin, opts.config, args.deviations != NULL ? args.deviations : "(none)",
           opts.workdir);
    fflush(stdout);
    vmc_checks_run(&opts, &report);
    ret = vmc_report_finish(&report, opts.plugin, opts.config) == 0 ? 0 : EXIT_FAILED;
 out:
    if (created[0] != '\0') {
        if (args.keep)
            fprintf(stderr, "vmlock-conform: kept %s\n", created);
        else
            remove_workdir(created);
    }
    vmc_report_free(&report);
    return ret;
}
