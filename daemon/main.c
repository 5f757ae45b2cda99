/* main.c: vmlockd's command line, config loading, pid file, daemonizing, socket activation, signals, and the run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_build_config.h"
#include "vml_error.h"
#include "vml_log.h"
#include "dmn_config.h"
#include "dmn_handover.h"
#include "dmn_server.h"
#include "vml_child.h"

#define PROGRAM "vmlockd"
#define TIMEOUT_MAX (INT_MAX / 1000)

/* The readiness byte the daemon sends its launcher; anything else on the pipe is an error text. */
#define READY_BYTE '\0'

typedef struct options {
    bool daemon;
    bool verbose;
    bool test_config;
    const char *config_file;
    const char *pid_file;
    unsigned int timeout_secs;
    int handover_fd;                /* -1, or the previous image's handover (SIGUSR1 re-exec) */
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [OPTION]...\n"
            "The vmlockd lock daemon (virtlockd-compatible).\n"
            "\n"
            "  -d, --daemon          run in the background; return once listening\n"
            "  -f, --config FILE     configuration file (must exist)\n"
            "  -p, --pid-file FILE   pid file (written and locked while running)\n"
            "  -t, --timeout SECS    exit after SECS seconds with no lease and no active client\n"
            "                        (0 to %d; 0 = never)\n"
            "  -v, --verbose         log at info level\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n"
            "      --test-config     check the configuration, print the effective settings, exit\n"
            "      --handover-fd N   (internal) continue a running daemon from its handover;\n"
            "                        SIGUSR1 re-executes the daemon this way\n",
            PROGRAM, TIMEOUT_MAX);
}

/* Report a bad command line the same way for every argument; returns -1. */
static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", PROGRAM);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", PROGRAM);
    return -1;
}

/* Parse argv into *opts; returns 0, 1 when the program should exit 0 (help, version), -1 on
 * a bad argument (already reported). */
static int parse_args(int argc, char **argv, options *opts)
{
    static const struct option long_options[] = {
        { "daemon", no_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'f' },
        { "pid-file", required_argument, NULL, 'p' },
        { "timeout", required_argument, NULL, 't' },
        { "verbose", no_argument, NULL, 'v' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { "test-config", no_argument, NULL, 'T' },
        { "handover-fd", required_argument, NULL, 'H' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":df:p:t:vVh", long_options, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts->daemon = true;
            break;
        case 'f':
            opts->config_file = optarg;
            break;
        case 'p':
            if (optarg[0] == '\0')
                return bad_usage("option '--pid-file' needs a file name, not ''");
            opts->pid_file = optarg;
            break;
        case 't': {
            char *end = NULL;
            long value;

            errno = 0;
            value = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || value < 0 || value > TIMEOUT_MAX)
                return bad_usage("invalid timeout '%s': expected a number of seconds from 0 to %d",
                                 optarg, TIMEOUT_MAX);
            opts->timeout_secs = (unsigned int)value;
            break;
        }
        case 'v':
            opts->verbose = true;
            break;
        case 'V':
            printf("%s (vmlockd) %s\n", PROGRAM, VML_VERSION);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        case 'T':
            opts->test_config = true;
            break;
        case 'H': {
            char *end = NULL;
            long value;

            errno = 0;
            value = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || value < 3 || value > INT_MAX)
                return bad_usage("invalid --handover-fd '%s': expected a descriptor number "
                                 "from 3 up", optarg);
            opts->handover_fd = (int)value;
            break;
        }
        case ':':
            return bad_usage("option '%s' needs an argument", argv[optind - 1]);
        default:
            /* A long option comes back with optopt set to its value: name it as written
             * ("--daemon=1"), a short one by its letter. */
            if (strncmp(argv[optind - 1], "--", 2) == 0 || optopt == 0)
                return bad_usage("unknown option or unexpected value '%s'", argv[optind - 1]);
            return bad_usage("unknown option '-%c'", optopt);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    return 0;
}

/* An absolute spelling of a command-line path (the daemon chdirs to /); caller frees. */
static char *absolute_path(const char *path)
{
    char cwd[PATH_MAX];
    char *abs = NULL;

    if (path[0] == '/')
        return strdup(path);
    if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&abs, "%s/%s", cwd, path) < 0)
        return NULL;
    return abs;
}

/* ---- start-up error reporting ---- */

/* Where a start-up error goes: the launcher's readiness pipe in daemon mode, else stderr. */
static int ready_fd = -1;

static void report_startup_error(const vml_error *err)
{
    /* The detail, without libvirt's per-code prefix: on a terminal "vmlockd: FILE:LINE: ..."
     * reads better than "vmlockd: configuration file syntax error: FILE:LINE: ...". */
    const char *text = err->detail[0] != '\0' ? err->detail : err->message;
    char line[VML_ERROR_MESSAGE_MAX + 32];
    int len = snprintf(line, sizeof(line), "%s: %s\n", PROGRAM, text);

    if (ready_fd >= 0) {
        /* stderr is /dev/null now: keep a trace in the log too. */
        VML_ERROR("%s", text);
        ssize_t ignored = write(ready_fd, line, (size_t)len < sizeof(line) ? (size_t)len
                                                                           : sizeof(line) - 1);
        (void)ignored;      /* the launcher then reports "exited during start-up" */
    } else {
        fputs(line, stderr);
    }
}

/* ---- socket activation ---- */

static int parse_uint(const char *text, unsigned long *out)
{
    char *end = NULL;

    if (text == NULL || text[0] == '\0')
        return -1;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

/*
 * systemd socket activation (LISTEN_PID == our pid): fds 3.. named by LISTEN_FDNAMES
 * (vmlockd.socket / virtlockd.socket = main, vmlockd-admin.socket / virtlockd-admin.socket =
 * admin); without names the first is main and the second admin.  Every fd must be claimed.
 * LISTEN_* are unset so children never see them.
 */
static int take_activation_fds(int *main_fd, int *admin_fd, vml_error *err)
{
    const char *names_env = getenv("LISTEN_FDNAMES");
    char *names = names_env != NULL ? strdup(names_env) : NULL;
    char *save = NULL;
    char *name;
    unsigned long pid = 0, nfds = 0;
    int ret = -1;

    *main_fd = *admin_fd = -1;
    if (parse_uint(getenv("LISTEN_PID"), &pid) < 0 || pid != (unsigned long)getpid() ||
        parse_uint(getenv("LISTEN_FDS"), &nfds) < 0 || nfds == 0) {
        ret = 0;
        goto out;
    }
    if (nfds > 16) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                      "LISTEN_FDS=%lu: at most 2 activation sockets are expected", nfds);
        goto out;
    }
    if (names_env != NULL && names == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot read LISTEN_FDNAMES");
        goto out;
    }
    name = names != NULL ? strtok_r(names, ":", &save) : NULL;
    for (unsigned long i = 0; i < nfds; i++) {
        int fd = 3 + (int)i;
        int *slot = NULL;

        if (names != NULL) {
            if (name == NULL) {
                vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                              "LISTEN_FDNAMES '%s' names fewer sockets than LISTEN_FDS=%lu",
                              names_env, nfds);
                goto out;
            }
            if (strcmp(name, "vmlockd.socket") == 0 || strcmp(name, "virtlockd.socket") == 0)
                slot = main_fd;
            else if (strcmp(name, "vmlockd-admin.socket") == 0 ||
                     strcmp(name, "virtlockd-admin.socket") == 0)
                slot = admin_fd;
        } else {
            slot = i == 0 ? main_fd : i == 1 ? admin_fd : NULL;
        }
        if (slot == NULL || *slot >= 0) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                          "activation fd %d%s%s%s is not claimed: expected vmlockd.socket "
                          "and vmlockd-admin.socket", fd, name != NULL ? " (name '" : "",
                          name != NULL ? name : "", name != NULL ? "')" : "");
            goto out;
        }
        *slot = fd;
        if (names != NULL)
            name = strtok_r(NULL, ":", &save);
    }
    if (name != NULL) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_CONFIG_UNSUPPORTED,
                      "LISTEN_FDNAMES '%s' names more sockets than LISTEN_FDS=%lu", names_env, nfds);
        goto out;
    }
    ret = 0;
 out:
    if (ret < 0) {
        if (*main_fd >= 0)
            close(*main_fd);
        if (*admin_fd >= 0)
            close(*admin_fd);
        *main_fd = *admin_fd = -1;
    }
    free(names);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return ret;
}

/* ---- sd_notify ---- */

static void notify_service_manager(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t len;
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@'))
        return;
    len = strlen(path);
    if (len >= sizeof(addr.sun_path)) {
        VML_WARN("NOTIFY_SOCKET path is too long; not notifying");
        return;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        VML_WARN("cannot notify the service manager (%s): %s", state, strerror(errno));
    close(fd);
}

/* ---- daemonizing ---- */

/* End a launcher process (the original or the intermediate one) without running the
 * daemon's exit path, closing what it holds so that fd-tracking tools see a clean exit. */
static void exit_launcher(int fd, int code)
{
    close(fd);
    vml_log_reset();
    vml_child_exit(code);
}

/*
 * Double fork + setsid.  The original process waits on the readiness pipe and exits 0 only
 * when the daemon reports it is listening, or 1 printing the daemon's start-up error; it
 * never returns.  In the daemon, ready_fd is the pipe's write end.
 */
static int daemonize(vml_error *err)
{
    int pipefd[2];
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot create the readiness pipe");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot fork");
        return -1;
    }
    if (pid > 0) {
        char buf[VML_ERROR_MESSAGE_MAX + 64];
        size_t got = 0;
        ssize_t n;

        close(pipefd[1]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        while (got < sizeof(buf) - 1 &&
               ((n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0 ||
                (n < 0 && errno == EINTR))) {
            if (n < 0)
                continue;
            if (got == 0 && buf[0] == READY_BYTE)
                exit_launcher(pipefd[0], 0);
            got += (size_t)n;
        }
        buf[got] = '\0';
        if (got > 0)
            fputs(buf, stderr);
        else
            fprintf(stderr, "%s: the daemon exited during start-up\n", PROGRAM);
        fflush(stderr);
        exit_launcher(pipefd[0], 1);
    }
    close(pipefd[0]);
    ready_fd = pipefd[1];
    if (setsid() < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "setsid failed");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot fork");
        return -1;
    }
    if (pid > 0)
        exit_launcher(ready_fd, 0);
    if (chdir("/") < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot change directory to /");
        return -1;
    }
    {
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
            dup2(null_fd, STDERR_FILENO) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot redirect stdio to /dev/null");
            if (null_fd >= 0)
                close(null_fd);
            return -1;
        }
        if (null_fd > STDERR_FILENO)
            close(null_fd);
    }
    return 0;
}

/* Tell the launcher we are listening; from now on errors are only logged. */
static void report_ready(void)
{
    char byte = READY_BYTE;

    if (ready_fd < 0)
        return;
    if (write(ready_fd, &byte, 1) < 0)
        VML_WARN("cannot report readiness to the launcher: %s", strerror(errno));
    close(ready_fd);
    ready_fd = -1;
}

/* ---- pid file ---- */

/*
 * Create and lock the pid file (non-blocking write lock on byte 0, held for the daemon's
 * life through *fd_out), then write our pid.  A classic POSIX lock is used here, not an
 * OFD lock, because F_GETLK then names the pid of the instance that holds it.
 */
static int pidfile_acquire(const char *path, bool privileged, int *fd_out, vml_error *err)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    char *dir = strdup(path);
    char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
    char text[32];
    int fd = -1;
    int len;
    int ret = -1;

    /* The default unprivileged pid file lives in the runtime directory we may create. */
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, privileged ? 0755 : 0700) == 0)
            chmod(dir, privileged ? 0755 : 0700);
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot open pid file %s", path);
        goto out;
    }
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES) {
            struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0,
                                 .l_len = 1 };
            long other = -1;

            if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) {
                other = (long)who.l_pid;
            } else {
                ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
                if (n > 0) {
                    text[n] = '\0';
                    other = strtol(text, NULL, 10);
                }
            }
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                          "vmlockd is already running (pid %ld, pid file %s)", other, path);
        } else {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot lock pid file %s", path);
        }
        goto out;
    }
    len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot write pid file %s", path);
        goto out;
    }
    *fd_out = fd;
    fd = -1;
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    free(dir);
    return ret;
}

/* Remove the pid file while still holding its lock, if it still is ours, then unlock. */
static void pidfile_release(const char *path, int fd)
{
    struct stat mine, now;

    if (fd < 0)
        return;
    if (fstat(fd, &mine) == 0 && lstat(path, &now) == 0 && mine.st_dev == now.st_dev &&
        mine.st_ino == now.st_ino)
        unlink(path);
    close(fd);
}

/* ---- signals and limits ---- */

static void on_signal(int signo)
{
    dmn_server_on_signal(signo);
}

static int install_signals(vml_error *err)
{
    struct sigaction sa = { .sa_handler = on_signal };
    struct sigaction ignore = { .sa_handler = SIG_IGN };
    const int quit_signals[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };

    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(quit_signals) / sizeof(quit_signals[0]); i++) {
        if (sigaction(quit_signals[i], &sa, NULL) < 0) {
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot install signal handlers");
            return -1;
        }
    }
    if (sigaction(SIGPIPE, &ignore, NULL) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot ignore SIGPIPE");
        return -1;
    }
    return 0;
}

/* Every lease holds a descriptor: use all the descriptors we are allowed. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            VML_WARN("cannot raise the descriptor limit: %s", strerror(errno));
    }
}

/* ---- main ---- */

static int setup_logging(const dmn_config *cfg, bool daemonized, vml_error *err)
{
    char *outputs = dmn_config_effective_log_outputs(cfg, daemonized);
    int ret = -1;

    if (outputs == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot set up logging");
        goto out;
    }
    if (vml_log_set_level(cfg->log_level, err) < 0 || vml_log_set_outputs(outputs, err) < 0)
        goto out;
    if (cfg->log_filters != NULL)
        VML_INFO("log_filters is accepted for virtlockd.conf compatibility and ignored");
    ret = 0;
 out:
    free(outputs);
    return ret;
}

/* The binary SIGUSR1 re-executes: this one's path as it was when it started (a package
 * upgrade replaces the file at that path).  Caller frees; NULL when unknown. */
static char *own_executable(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        return NULL;
    path[n] = '\0';
    return strdup(path);
}

/* Continue the daemon of the previous image from its handover: LOUD failure or serving.
 * keeper_configured: keeper_sock_path was set in the config file (else it is derived from
 * the pid file). */
static int run_from_handover(const options *opts, dmn_config *cfg, dmn_server_options *sopts,
                             bool privileged, bool keeper_configured, int *pid_fd)
{
    vml_handover ho;
    vml_error err = { 0 };
    dmn_server *server = NULL;
    int exit_code = 1;

    if (dmn_handover_read(opts->handover_fd, &ho, &err) < 0)
        goto out;
    *pid_fd = ho.pid_file_fd;
    if (fcntl(*pid_fd, F_SETFD, FD_CLOEXEC) < 0) {
        vml_error_set_errno(&err, VIR_FROM_RPC, errno, "cannot keep the pid file");
        goto out;
    }
    if (cfg->pid_file != NULL && strcmp(cfg->pid_file, ho.pid_file) != 0)
        VML_WARN("the pid file is still %s (the configuration now names %s)", ho.pid_file,
                 cfg->pid_file);
    free(cfg->pid_file);
    cfg->pid_file = strdup(ho.pid_file);
    if (cfg->pid_file == NULL) {
        vml_error_set_errno(&err, VIR_FROM_RPC, ENOMEM, "cannot keep the pid file");
        goto out;
    }
    /* A keeper socket derived from the pid file follows the pid file actually kept: a
     * relative --pid-file, replayed by the re-exec, now names a file in / (the daemon's
     * directory), and a keeper restarted there would be lost to the next daemon. */
    if (!keeper_configured) {
        free(cfg->keeper_sock_path);
        cfg->keeper_sock_path = NULL;
        if (dmn_config_resolve_paths(cfg, privileged, &err) < 0)
            goto out;
        sopts->keeper_path = cfg->keeper_sock_path;
    }
    sopts->pid_file = cfg->pid_file;
    sopts->pid_file_fd = *pid_fd;
    if (dmn_server_restore(sopts, &ho, &server, &err) < 0)
        goto out;
    notify_service_manager("READY=1");
    if (dmn_server_run(server, &err) < 0) {
        VML_ERROR("%s", err.message);
        dmn_server_abandon(server);
        server = NULL;
        vml_error_clear(&err);
        goto out;
    }
    exit_code = 0;
    notify_service_manager("STOPPING=1");
    VML_INFO("vmlockd stopping");
 out:
    if (err.code != 0) {
        /* Never a silent empty start: the keeper still holds every lock, and a plain
         * restart of the daemon adopts them. */
        VML_ERROR("HANDOVER FAILED, exiting: %s", err.message);
        fprintf(stderr, "%s: handover failed: %s\n", PROGRAM, err.message);
    }
    dmn_server_free(server);
    xdr_free((xdrproc_t)xdr_vml_handover, (char *)&ho);
    return exit_code;
}

int main(int argc, char **argv)
{
    options opts = { .handover_fd = -1 };
    dmn_config cfg;
    vml_error err = { 0 };
    dmn_server *server = NULL;
    dmn_server_options sopts = { .main_fd = -1, .admin_fd = -1, .pid_file_fd = -1 };
    char *config_file = NULL;
    char *outputs = NULL;
    char *exe = NULL;
    bool privileged = geteuid() == 0;
    bool keeper_configured = false;
    int pid_fd = -1;
    int exit_code = 1;
    int rc;

    vml_log_set_program(PROGRAM);
    dmn_config_init(&cfg);
    rc = parse_args(argc, argv, &opts);
    if (rc != 0) {
        exit_code = rc > 0 ? 0 : 1;     /* already reported */
        goto out;
    }
    if (opts.config_file != NULL)
        config_file = strdup(opts.config_file);
    else if (dmn_config_default_file(privileged, &config_file, &err) < 0)
        goto out;
    if (config_file == NULL) {
        vml_error_set_errno(&err, VIR_FROM_CONF, ENOMEM, "cannot start");
        goto out;
    }
    if (dmn_config_load_file(&cfg, config_file, opts.config_file == NULL, &err) < 0)
        goto out;
    keeper_configured = cfg.keeper_sock_path != NULL;
    if (opts.pid_file != NULL && (cfg.pid_file = absolute_path(opts.pid_file)) == NULL) {
        vml_error_set_errno(&err, VIR_FROM_CONF, errno != 0 ? errno : ENOMEM,
                            "cannot resolve pid file %s", opts.pid_file);
        goto out;
    }
    if (opts.verbose && cfg.log_level > VML_LOG_INFO)
        cfg.log_level = VML_LOG_INFO;
    if (dmn_config_resolve_paths(&cfg, privileged, &err) < 0)
        goto out;
    if (opts.test_config) {
        dmn_config_print(&cfg, opts.daemon, opts.timeout_secs, stdout);
        exit_code = 0;
        goto out;
    }
    if (setup_logging(&cfg, opts.daemon, &err) < 0)
        goto out;
    exe = own_executable();
    outputs = dmn_config_effective_log_outputs(&cfg, opts.daemon);
    sopts.main_path = cfg.unix_sock_path;
    sopts.admin_path = cfg.admin_unix_sock_path;
    sopts.privileged = privileged;
    sopts.max_clients = cfg.max_clients;
    sopts.admin_max_clients = cfg.admin_max_clients;
    sopts.owner_kill_grace_ms = cfg.owner_kill_grace_ms;
    sopts.timeout_secs = opts.timeout_secs;
    sopts.lease_check_interval_ms = cfg.lease_check_interval_ms;
    sopts.lease_check_timeout_ms = cfg.lease_check_timeout_ms;
    sopts.keeper_timeout_ms = cfg.keeper_timeout_ms;
    sopts.pause_helper = cfg.lockfailure_pause_helper;
    sopts.keeper_path = cfg.keeper_sock_path;
    sopts.log_outputs = outputs;
    sopts.exe_path = exe;
    sopts.argv = argv;
    if (opts.handover_fd >= 0) {
        /* A re-exec: already detached, already holding the pid file and every socket. */
        if (install_signals(&err) < 0)
            goto out;
        raise_fd_limit();
        exit_code = run_from_handover(&opts, &cfg, &sopts, privileged, keeper_configured,
                                      &pid_fd);
        goto out;
    }
    if (take_activation_fds(&sopts.main_fd, &sopts.admin_fd, &err) < 0)
        goto out;
    if (opts.daemon && daemonize(&err) < 0)
        goto out;
    if (install_signals(&err) < 0)
        goto out;
    raise_fd_limit();
    if (pidfile_acquire(cfg.pid_file, privileged, &pid_fd, &err) < 0)
        goto out;
    sopts.pid_file = cfg.pid_file;
    sopts.pid_file_fd = pid_fd;
    rc = dmn_server_new(&sopts, &server, &err);
    sopts.main_fd = sopts.admin_fd = -1;    /* the server owns them now */
    if (rc < 0)
        goto out;
    VML_INFO("vmlockd %s started (pid %ld, %s)", VML_VERSION, (long)getpid(),
             privileged ? "privileged" : "unprivileged");
    report_ready();
    notify_service_manager("READY=1");
    if (dmn_server_run(server, &err) < 0) {
        VML_ERROR("%s", err.message);
        vml_error_clear(&err);      /* not a start-up error: logged, nothing to report */
        /* The loop itself failed: leave the locks to the keeper rather than drop them. */
        dmn_server_abandon(server);
        server = NULL;
    } else {
        exit_code = 0;
    }
    notify_service_manager("STOPPING=1");
    VML_INFO("vmlockd stopping");
 out:
    if (err.code != 0)
        report_startup_error(&err);
    dmn_server_free(server);
    if (sopts.main_fd >= 0)
        close(sopts.main_fd);
    if (sopts.admin_fd >= 0)
        close(sopts.admin_fd);
    pidfile_release(cfg.pid_file, pid_fd);
    if (ready_fd >= 0)
        close(ready_fd);
    free(outputs);
    free(exe);
    free(config_file);
    dmn_config_clear(&cfg);
    vml_log_reset();
    return exit_code;
}
