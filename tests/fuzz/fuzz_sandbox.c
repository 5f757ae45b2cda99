/* fuzz_sandbox.c: enter a private pid + mount namespace with a read-only host, a scratch tmpfs and stand-in owner processes. */
#include "fuzz_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MOUNTS 512
#define MAX_RW_DIRS 8

/* The sandbox is one per process by nature (it changes the process's namespaces): this
 * module's state is a singleton. */
static pid_t sandboxed_child = -1;      /* in the waiting parent: the sandboxed process */

/* ---- the waiting parent ---- */

static void forward_signal(int signo)
{
    if (sandboxed_child > 0)
        kill(sandboxed_child, signo);
}

static void __attribute__((noreturn)) wait_for_sandbox(pid_t child)
{
    struct sigaction sa;
    int status = 0;

    sandboxed_child = child;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("fuzz sandbox: waitpid");
            _exit(1);
        }
    }
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
        _exit(128 + WTERMSIG(status));
    }
    _exit(WEXITSTATUS(status));
}

/* ---- building the sandbox (in the new namespaces) ---- */

/* Decode mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mount_path(char *s)
{
    char *out = s;

    while (*s != '\0') {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

/* The mount points of this namespace (field 5 of mountinfo); *n set.  Strings malloc'd. */
static int list_mounts(char *points[MAX_MOUNTS], size_t *n, char *why, size_t why_len)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];

    *n = 0;
    if (f == NULL) {
        snprintf(why, why_len, "cannot read /proc/self/mountinfo: %s", strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL && *n < MAX_MOUNTS) {
        char *field = line;
        char *save = NULL;

        for (int i = 0; i < 5 && field != NULL; i++)
            field = strtok_r(i == 0 ? line : NULL, " ", &save);
        if (field == NULL)
            continue;
        unescape_mount_path(field);
        points[*n] = strdup(field);
        if (points[*n] == NULL)
            break;
        (*n)++;
    }
    fclose(f);
    return 0;
}

static unsigned long statvfs_to_mount_flags(unsigned long f)
{
    unsigned long flags = 0;

    if (f & ST_NOSUID)
        flags |= MS_NOSUID;
    if (f & ST_NODEV)
        flags |= MS_NODEV;
    if (f & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (f & ST_NOATIME)
        flags |= MS_NOATIME;
    if (f & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (f & ST_RELATIME)
        flags |= MS_RELATIME;
    return flags;
}

/* Remount mount point path read-only (its other flags kept); 0, or -1 with why. */
static int remount_readonly(const char *path, char *why, size_t why_len)
{
    struct statvfs st;

    if (statvfs(path, &st) < 0) {
        /* A mount point hidden under another mount or gone: nothing reachable to protect. */
        return 0;
    }
    if (st.f_flag & ST_RDONLY)
        return 0;
    if (mount(NULL, path, NULL,
              MS_BIND | MS_REMOUNT | MS_RDONLY | statvfs_to_mount_flags(st.f_flag), NULL) < 0) {
        snprintf(why, why_len, "cannot remount %s read-only: %s", path, strerror(errno));
        return -1;
    }
    if (statvfs(path, &st) == 0 && !(st.f_flag & ST_RDONLY)) {
        snprintf(why, why_len, "%s is still writable after a read-only remount", path);
        return -1;
    }
    return 0;
}

static bool is_rw_dir(char *const rw[], size_t nrw, const char *path)
{
    for (size_t i = 0; i < nrw; i++) {
        if (strcmp(rw[i], path) == 0)
            return true;
    }
    return false;
}

/* Split $VMLFUZZ_RW into canonical directory paths (malloc'd); refuses FUZZ_SCRATCH. */
static int parse_rw_dirs(char *rw[MAX_RW_DIRS], size_t *nrw, char *why, size_t why_len)
{
    const char *env = getenv("VMLFUZZ_RW");
    char *copy, *save = NULL;

    *nrw = 0;
    if (env == NULL || env[0] == '\0')
        return 0;
    copy = strdup(env);
    if (copy == NULL) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    for (char *dir = strtok_r(copy, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        char *real = realpath(dir, NULL);

        if (real == NULL || *nrw == MAX_RW_DIRS) {
            snprintf(why, why_len, "VMLFUZZ_RW: %s: %s", dir,
                     real == NULL ? strerror(errno) : "too many directories");
            free(real);
            free(copy);
            return -1;
        }
        if (strncmp(real, FUZZ_SCRATCH, strlen(FUZZ_SCRATCH)) == 0) {
            snprintf(why, why_len, "VMLFUZZ_RW: %s lies in the scratch tmpfs %s", real,
                     FUZZ_SCRATCH);
            free(real);
            free(copy);
            return -1;
        }
        rw[(*nrw)++] = real;
    }
    free(copy);
    return 0;
}

static void __attribute__((noreturn)) owner_stand_in(void)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (;;)
        pause();
}

/*
 * Start a stand-in owner as pid want: clone3() with set_tid picks the pid (root in the pid
 * namespace's user namespace may), so seeds can name the owners by fixed pids.  The child
 * only blocks in pause(): nothing in it touches the allocator.
 */
static void spawn_owner(pid_t want)
{
    pid_t tid = want;
    struct clone_args args;
    long pid;

    memset(&args, 0, sizeof(args));
    args.exit_signal = SIGCHLD;
    args.set_tid = (uintptr_t)&tid;
    args.set_tid_size = 1;
    pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0)
        owner_stand_in();
}

void fuzz_sandbox_owners_ready(void)
{
    pid_t pid;

    if (getpid() != 1)
        return;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        continue;
    if (kill(FUZZ_OWNER_PID_A, 0) < 0)
        spawn_owner(FUZZ_OWNER_PID_A);
    if (kill(FUZZ_OWNER_PID_B, 0) < 0)
        spawn_owner(FUZZ_OWNER_PID_B);
}

static int remove_tree_at(int dirfd)
{
    DIR *dir = fdopendir(dirfd);
    struct dirent *ent;
    int rc = 0;

    if (dir == NULL) {
        close(dirfd);
        return -1;
    }
    while ((ent = readdir(dir)) != NULL) {
        int sub;

        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd, ent->d_name, 0) == 0)
            continue;
        sub = openat(dirfd, ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || remove_tree_at(sub) < 0 || unlinkat(dirfd, ent->d_name, AT_REMOVEDIR) < 0)
            rc = -1;
    }
    closedir(dir);
    return rc;
}

int fuzz_sandbox_clear_scratch(void)
{
    int fd = open(FUZZ_SCRATCH, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    return remove_tree_at(fd);
}

/* In the new namespaces: make the host read-only, mount /proc and the scratch tmpfs. */
static int build_sandbox(char *why, size_t why_len)
{
    char *points[MAX_MOUNTS];
    char *rw[MAX_RW_DIRS];
    size_t npoints = 0, nrw = 0;
    int rc = -1;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        snprintf(why, why_len, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
        return -1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(why, why_len, "cannot make the mounts private: %s", strerror(errno));
        return -1;
    }
    if (parse_rw_dirs(rw, &nrw, why, why_len) < 0)
        return -1;
    for (size_t i = 0; i < nrw; i++) {
        if (mount(rw[i], rw[i], NULL, MS_BIND, NULL) < 0) {
            snprintf(why, why_len, "cannot bind %s: %s", rw[i], strerror(errno));
            goto out;
        }
    }
    if (list_mounts(points, &npoints, why, why_len) < 0)
        goto out;
    for (size_t i = 0; i < npoints; i++) {
        if (!is_rw_dir(rw, nrw, points[i]) && remount_readonly(points[i], why, why_len) < 0)
            goto out;
    }
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        snprintf(why, why_len, "cannot mount /proc: %s", strerror(errno));
        goto out;
    }
    if (remount_readonly("/proc", why, why_len) < 0)
        goto out;
    if (mount("tmpfs", FUZZ_SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0700") < 0) {
        snprintf(why, why_len, "cannot mount a tmpfs on %s: %s", FUZZ_SCRATCH, strerror(errno));
        goto out;
    }
    fuzz_sandbox_owners_ready();
    rc = 0;
 out:
    for (size_t i = 0; i < npoints; i++)
        free(points[i]);
    for (size_t i = 0; i < nrw; i++)
        free(rw[i]);
    return rc;
}

int fuzz_sandbox_enter(char *why, size_t why_len)
{
    pid_t child;

    if (geteuid() != 0) {
        snprintf(why, why_len, "the sandbox needs root (private pid and mount namespaces)");
        return -1;
    }
    if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) {
        snprintf(why, why_len, "unshare(CLONE_NEWNS|CLONE_NEWPID): %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    child = fork();
    if (child < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (child > 0)
        wait_for_sandbox(child);
    if (build_sandbox(why, why_len) < 0) {
        /* Half a sandbox is no sandbox: the caller must not run inputs here. */
        fprintf(stderr, "fuzz sandbox: %s\n", why);
        _exit(1);
    }
    return 0;
}

void fuzz_fd_snapshot(fuzz_fd_set *set)
{
    memset(set, 0, sizeof(*set));
    for (int fd = 0; fd < FUZZ_FD_WINDOW; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            set->bits[fd / 64] |= 1ULL << (fd % 64);
    }
}

int fuzz_fd_leaked(const fuzz_fd_set *before, const fuzz_fd_set *now)
{
    for (int fd = 0; fd < FUZZ_FD_WINDOW; fd++) {
        unsigned long long bit = 1ULL << (fd % 64);

        if ((now->bits[fd / 64] & bit) && !(before->bits[fd / 64] & bit))
            return fd;
    }
    return -1;
}
