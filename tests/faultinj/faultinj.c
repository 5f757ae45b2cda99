/* faultinj.c: LD_PRELOAD shim (tests only) that makes the N-th call of one libc function family fail, once or from then on. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * Configuration (environment of the process the shim is preloaded into):
 *
 *   VMLFI_CALL=FAMILY     which calls to count: open (open, open64, __open_2, __open64_2),
 *                         openat (openat, openat64, __openat_2, __openat64_2), fcntl (fcntl,
 *                         fcntl64), close, write, pwrite (pwrite, pwrite64), read, pread (pread,
 *                         pread64), rename (rename, renameat, renameat2), unlink (unlink,
 *                         unlinkat), fsync (fsync, fdatasync), accept4 (accept4, accept),
 *                         sendmsg, send (send, sendto), recvmsg, recv (recv, recvfrom),
 *                         mkdir, malloc (malloc, calloc, realloc).  Unset: the shim does nothing.
 *   VMLFI_NTH=N           the N-th counted call (1-based) fails.
 *   VMLFI_MODE=transient  only that call fails (default); "persistent": it and every later one.
 *   VMLFI_ERRNO=E         errno of the failure (a number); default per family: ENOMEM for
 *                         malloc, EMFILE for open/openat/accept4, ENOLCK for fcntl, EIO else.
 *   VMLFI_ARM=signal      count only once armed: SIGRTMIN+5 arms, SIGRTMIN+6 disarms (default);
 *                         "start": armed from the start; "argv:STRING": armed from the start
 *                         in a process whose command line has an argument equal to STRING
 *                         (a re-executed daemon: argv:--handover-fd), else by signal.
 *   VMLFI_REPORT=PATH     one line per injected failure is appended here (the first 100):
 *                         "inject FAMILY FUNCTION call=N errno=E pid=P caller=[SYMBOL+OFF ]MODULE+OFF"
 *
 * Semantics of a failure: the function returns its error value with errno set, without doing
 * anything, except close(), which really closes the descriptor and then reports EIO (as Linux
 * does: the descriptor is gone whatever close returns).
 *
 * A process forked after arming is disarmed for good (only the process under test fails).
 * The shim's own work (reports, symbol lookup) goes through raw syscalls and never counts.
 *
 * The shim is, by nature, one per process: its state is a process-wide singleton.
 */

typedef enum {
    FAM_NONE, FAM_OPEN, FAM_OPENAT, FAM_FCNTL, FAM_CLOSE, FAM_WRITE, FAM_PWRITE, FAM_READ,
    FAM_PREAD, FAM_RENAME, FAM_UNLINK, FAM_FSYNC, FAM_ACCEPT4, FAM_SENDMSG, FAM_SEND,
    FAM_RECVMSG, FAM_RECV, FAM_MKDIR, FAM_MALLOC,
} family;

static const struct { const char *name; family fam; int default_errno; } families[] = {
    { "open", FAM_OPEN, EMFILE }, { "openat", FAM_OPENAT, EMFILE },
    { "fcntl", FAM_FCNTL, ENOLCK }, { "close", FAM_CLOSE, EIO }, { "write", FAM_WRITE, EIO },
    { "pwrite", FAM_PWRITE, EIO }, { "read", FAM_READ, EIO }, { "pread", FAM_PREAD, EIO },
    { "rename", FAM_RENAME, EIO }, { "unlink", FAM_UNLINK, EIO }, { "fsync", FAM_FSYNC, EIO },
    { "accept4", FAM_ACCEPT4, EMFILE }, { "sendmsg", FAM_SENDMSG, EIO },
    { "send", FAM_SEND, EIO }, { "recvmsg", FAM_RECVMSG, EIO }, { "recv", FAM_RECV, EIO },
    { "mkdir", FAM_MKDIR, EIO }, { "malloc", FAM_MALLOC, ENOMEM },
};

static family target = FAM_NONE;
static unsigned long nth;
static bool persistent;
static int fail_errno = EIO;
static volatile sig_atomic_t armed;
static unsigned long counted;           /* calls of the target family since armed */
static char report_path[512];
static pid_t armed_pid;                 /* the process that was armed (forks are not) */
static __thread int in_shim __attribute__((tls_model("initial-exec")));  /* ours never count */

/* ---- reporting without libc's buffered I/O or allocation ---- */

static size_t put_str(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s != '\0' && pos + 1 < cap)
        buf[pos++] = *s++;
    return pos;
}

static size_t put_num(char *buf, size_t pos, size_t cap, unsigned long v, int base)
{
    char tmp[32];
    size_t n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % (unsigned long)base];
        v /= (unsigned long)base;
    } while (v != 0 && n < sizeof(tmp));
    while (n > 0 && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

/* A persistent fault in a loop can fire millions of times: report the first ones only. */
#define REPORT_MAX 100

static void report(const char *func, void *caller)
{
    static unsigned long reported;
    char line[512];
    size_t pos = 0;
    Dl_info info;
    long fd;

    if (report_path[0] == '\0' || reported++ >= REPORT_MAX)
        return;
    pos = put_str(line, pos, sizeof(line), "inject ");
    pos = put_str(line, pos, sizeof(line), getenv("VMLFI_CALL"));
    pos = put_str(line, pos, sizeof(line), " ");
    pos = put_str(line, pos, sizeof(line), func);
    pos = put_str(line, pos, sizeof(line), " call=");
    pos = put_num(line, pos, sizeof(line), counted, 10);
    pos = put_str(line, pos, sizeof(line), " errno=");
    pos = put_num(line, pos, sizeof(line), (unsigned long)fail_errno, 10);
    pos = put_str(line, pos, sizeof(line), " pid=");
    pos = put_num(line, pos, sizeof(line), (unsigned long)syscall(SYS_getpid), 10);
    pos = put_str(line, pos, sizeof(line), " caller=");
    if (dladdr(caller, &info) != 0) {
        /* module+offset feeds addr2line -e MODULE OFFSET, static functions included. */
        const char *module = info.dli_fname != NULL ? strrchr(info.dli_fname, '/') : NULL;

        if (info.dli_sname != NULL) {
            pos = put_str(line, pos, sizeof(line), info.dli_sname);
            pos = put_str(line, pos, sizeof(line), "+0x");
            pos = put_num(line, pos, sizeof(line),
                          (unsigned long)((char *)caller - (char *)info.dli_saddr), 16);
            pos = put_str(line, pos, sizeof(line), " ");
        }
        pos = put_str(line, pos, sizeof(line), module != NULL ? module + 1 : "?");
        pos = put_str(line, pos, sizeof(line), "+0x");
        pos = put_num(line, pos, sizeof(line),
                      (unsigned long)((char *)caller - (char *)info.dli_fbase), 16);
    } else {
        pos = put_str(line, pos, sizeof(line), "0x");
        pos = put_num(line, pos, sizeof(line), (unsigned long)(uintptr_t)caller, 16);
    }
    line[pos++] = '\n';
    fd = syscall(SYS_open, report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    (void)syscall(SYS_write, fd, line, pos);
    (void)syscall(SYS_close, fd);
}

/* Count one call of fam; true when this one must fail (errno is then set). */
static bool should_fail(family fam, const char *func, void *caller)
{
    bool fail;

    if (fam != target || !armed || in_shim)
        return false;
    if ((pid_t)syscall(SYS_getpid) != armed_pid) {
        armed = 0;      /* a child forked after arming: never fails */
        return false;
    }
    in_shim++;
    counted++;
    fail = counted == nth || (persistent && counted > nth);
    if (fail)
        report(func, caller);
    in_shim--;
    if (fail)
        errno = fail_errno;
    return fail;
}

#define CALLER __builtin_return_address(0)

/* ---- arming ---- */

static void on_arm(int signo)
{
    (void)signo;
    armed_pid = (pid_t)syscall(SYS_getpid);
    armed = 1;
}

static void on_disarm(int signo)
{
    (void)signo;
    armed = 0;
}

static bool argv_has(const char *want)
{
    char buf[8192];
    long fd = syscall(SYS_open, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    long n;

    if (fd < 0)
        return false;
    n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    for (long i = 0; i < n; i += (long)strlen(buf + i) + 1) {
        if (strcmp(buf + i, want) == 0)
            return true;
    }
    return false;
}

__attribute__((constructor)) static void faultinj_init(void)
{
    const char *call = getenv("VMLFI_CALL");
    const char *value;
    struct sigaction sa;

    if (call == NULL)
        return;
    in_shim++;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (strcmp(families[i].name, call) == 0) {
            target = families[i].fam;
            fail_errno = families[i].default_errno;
        }
    }
    nth = (value = getenv("VMLFI_NTH")) != NULL ? strtoul(value, NULL, 10) : 0;
    persistent = (value = getenv("VMLFI_MODE")) != NULL && strcmp(value, "persistent") == 0;
    if ((value = getenv("VMLFI_ERRNO")) != NULL)
        fail_errno = (int)strtol(value, NULL, 10);
    if ((value = getenv("VMLFI_REPORT")) != NULL)
        snprintf(report_path, sizeof(report_path), "%s", value);
    memset(&sa, 0, sizeof(sa));
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_arm;
    sigaction(SIGRTMIN + 5, &sa, NULL);
    sa.sa_handler = on_disarm;
    sigaction(SIGRTMIN + 6, &sa, NULL);
    value = getenv("VMLFI_ARM");
    if (value != NULL && (strcmp(value, "start") == 0 ||
                          (strncmp(value, "argv:", 5) == 0 && argv_has(value + 5))))
        on_arm(0);
    in_shim--;
}

/* ---- the real functions ---- */

/* dlsym may allocate before the real allocator is known: serve that from a static arena. */
static char bootstrap_arena[8192];
static size_t bootstrap_used;

static void *bootstrap_alloc(size_t size)
{
    void *p;

    size = (size + 15) & ~(size_t)15;
    if (bootstrap_used + size > sizeof(bootstrap_arena))
        return NULL;
    p = bootstrap_arena + bootstrap_used;
    bootstrap_used += size;
    return p;
}

static bool is_bootstrap(const void *p)
{
    return (const char *)p >= bootstrap_arena &&
           (const char *)p < bootstrap_arena + sizeof(bootstrap_arena);
}

#define REAL(ret, name, params) \
    static ret (*real_##name) params; \
    static ret (*get_##name(void)) params \
    { \
        if (real_##name == NULL) { \
            in_shim++; \
            real_##name = (ret (*) params)dlsym(RTLD_NEXT, #name); \
            in_shim--; \
        } \
        return real_##name; \
    }

REAL(int, open, (const char *, int, ...))
REAL(int, open64, (const char *, int, ...))
REAL(int, __open_2, (const char *, int))
REAL(int, __open64_2, (const char *, int))
REAL(int, openat, (int, const char *, int, ...))
REAL(int, openat64, (int, const char *, int, ...))
REAL(int, __openat_2, (int, const char *, int))
REAL(int, __openat64_2, (int, const char *, int))
REAL(int, fcntl, (int, int, ...))
REAL(int, fcntl64, (int, int, ...))
REAL(int, close, (int))
REAL(ssize_t, write, (int, const void *, size_t))
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t))
REAL(ssize_t, read, (int, void *, size_t))
REAL(ssize_t, pread, (int, void *, size_t, off_t))
REAL(ssize_t, pread64, (int, void *, size_t, off_t))
REAL(int, rename, (const char *, const char *))
REAL(int, renameat, (int, const char *, int, const char *))
REAL(int, renameat2, (int, const char *, int, const char *, unsigned int))
REAL(int, unlink, (const char *))
REAL(int, unlinkat, (int, const char *, int))
REAL(int, fsync, (int))
REAL(int, fdatasync, (int))
REAL(int, accept4, (int, struct sockaddr *, socklen_t *, int))
REAL(int, accept, (int, struct sockaddr *, socklen_t *))
REAL(ssize_t, sendmsg, (int, const struct msghdr *, int))
REAL(ssize_t, send, (int, const void *, size_t, int))
REAL(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))
REAL(ssize_t, recvmsg, (int, struct msghdr *, int))
REAL(ssize_t, recv, (int, void *, size_t, int))
REAL(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *))
REAL(int, mkdir, (const char *, mode_t))

/* ---- the wrappers ---- */

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, last) \
    mode_t mode = 0; \
    if ((flags) & (O_CREAT | __O_TMPFILE)) { \
        va_list ap; \
        va_start(ap, last); \
        mode = (mode_t)va_arg(ap, int); \
        va_end(ap); \
    }

int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (should_fail(FAM_OPEN, "open", CALLER))
        return -1;
    return get_open()(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (should_fail(FAM_OPEN, "open64", CALLER))
        return -1;
    return get_open64()(path, flags, mode);
}

int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
    if (should_fail(FAM_OPEN, "__open_2", CALLER))
        return -1;
    return get___open_2()(path, flags);
}

int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags)
{
    if (should_fail(FAM_OPEN, "__open64_2", CALLER))
        return -1;
    return get___open64_2()(path, flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (should_fail(FAM_OPENAT, "openat", CALLER))
        return -1;
    return get_openat()(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, flags);
    if (should_fail(FAM_OPENAT, "openat64", CALLER))
        return -1;
    return get_openat64()(dirfd, path, flags, mode);
}

int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags)
{
    if (should_fail(FAM_OPENAT, "__openat_2", CALLER))
        return -1;
    return get___openat_2()(dirfd, path, flags);
}

int __openat64_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags)
{
    if (should_fail(FAM_OPENAT, "__openat64_2", CALLER))
        return -1;
    return get___openat64_2()(dirfd, path, flags);
}

/* Every fcntl command's argument fits a pointer-sized word. */
int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (should_fail(FAM_FCNTL, "fcntl", CALLER))
        return -1;
    return get_fcntl()(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, cmd);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (should_fail(FAM_FCNTL, "fcntl64", CALLER))
        return -1;
    return get_fcntl64()(fd, cmd, arg);
}

int close(int fd)
{
    if (should_fail(FAM_CLOSE, "close", CALLER)) {
        int saved = errno;

        get_close()(fd);
        errno = saved;
        return -1;
    }
    return get_close()(fd);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (should_fail(FAM_WRITE, "write", CALLER))
        return -1;
    return get_write()(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (should_fail(FAM_PWRITE, "pwrite", CALLER))
        return -1;
    return get_pwrite()(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    if (should_fail(FAM_PWRITE, "pwrite64", CALLER))
        return -1;
    return get_pwrite64()(fd, buf, n, off);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (should_fail(FAM_READ, "read", CALLER))
        return -1;
    return get_read()(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (should_fail(FAM_PREAD, "pread", CALLER))
        return -1;
    return get_pread()(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    if (should_fail(FAM_PREAD, "pread64", CALLER))
        return -1;
    return get_pread64()(fd, buf, n, off);
}

int rename(const char *from, const char *to)
{
    if (should_fail(FAM_RENAME, "rename", CALLER))
        return -1;
    return get_rename()(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    if (should_fail(FAM_RENAME, "renameat", CALLER))
        return -1;
    return get_renameat()(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags)
{
    if (should_fail(FAM_RENAME, "renameat2", CALLER))
        return -1;
    return get_renameat2()(fromfd, from, tofd, to, flags);
}

int unlink(const char *path)
{
    if (should_fail(FAM_UNLINK, "unlink", CALLER))
        return -1;
    return get_unlink()(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (should_fail(FAM_UNLINK, "unlinkat", CALLER))
        return -1;
    return get_unlinkat()(dirfd, path, flags);
}

int fsync(int fd)
{
    if (should_fail(FAM_FSYNC, "fsync", CALLER))
        return -1;
    return get_fsync()(fd);
}

int fdatasync(int fd)
{
    if (should_fail(FAM_FSYNC, "fdatasync", CALLER))
        return -1;
    return get_fdatasync()(fd);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (should_fail(FAM_ACCEPT4, "accept4", CALLER))
        return -1;
    return get_accept4()(fd, addr, len, flags);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (should_fail(FAM_ACCEPT4, "accept", CALLER))
        return -1;
    return get_accept()(fd, addr, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (should_fail(FAM_SENDMSG, "sendmsg", CALLER))
        return -1;
    return get_sendmsg()(fd, msg, flags);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    if (should_fail(FAM_SEND, "send", CALLER))
        return -1;
    return get_send()(fd, buf, n, flags);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
               socklen_t len)
{
    if (should_fail(FAM_SEND, "sendto", CALLER))
        return -1;
    return get_sendto()(fd, buf, n, flags, addr, len);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (should_fail(FAM_RECVMSG, "recvmsg", CALLER))
        return -1;
    return get_recvmsg()(fd, msg, flags);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    if (should_fail(FAM_RECV, "recv", CALLER))
        return -1;
    return get_recv()(fd, buf, n, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *len)
{
    if (should_fail(FAM_RECV, "recvfrom", CALLER))
        return -1;
    return get_recvfrom()(fd, buf, n, flags, addr, len);
}

int mkdir(const char *path, mode_t mode)
{
    if (should_fail(FAM_MKDIR, "mkdir", CALLER))
        return -1;
    return get_mkdir()(path, mode);
}

/* ---- the allocator: forwarded to the next one (libc's, or a sanitizer's) ---- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static __thread int resolving __attribute__((tls_model("initial-exec")));

static void resolve_allocator(void)
{
    if (real_malloc != NULL || resolving)
        return;
    resolving = 1;
    in_shim++;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    in_shim--;
    resolving = 0;
}

void *malloc(size_t size)
{
    resolve_allocator();
    if (real_malloc == NULL)
        return bootstrap_alloc(size);
    if (should_fail(FAM_MALLOC, "malloc", CALLER))
        return NULL;
    return real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    resolve_allocator();
    if (real_calloc == NULL) {
        /* The arena is static storage: already zeroed. */
        return n != 0 && size > SIZE_MAX / n ? NULL : bootstrap_alloc(n * size);
    }
    if (should_fail(FAM_MALLOC, "calloc", CALLER))
        return NULL;
    return real_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    resolve_allocator();
    if (is_bootstrap(p)) {
        void *q = malloc(size);

        size_t room = (size_t)(bootstrap_arena + sizeof(bootstrap_arena) - (char *)p);

        if (q != NULL)
            memcpy(q, p, size < room ? size : room);
        return q;
    }
    if (real_realloc == NULL)
        return NULL;
    if (should_fail(FAM_MALLOC, "realloc", CALLER))
        return NULL;
    return real_realloc(p, size);
}

void free(void *p)
{
    if (p == NULL || is_bootstrap(p))
        return;
    resolve_allocator();
    if (real_free != NULL)
        real_free(p);
}
