/* drv_client.c: connecting to (and if need be starting) the lock daemon, and the plugin's RPC sequences. */
#include "drv_client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_build_config.h"
#include "vml_log.h"
#include "vml_child.h"

#define DAEMON_DEFAULT_PATH VML_SBINDIR "/vmlockd"
#define SPAWN_LOCK_DIR "vmlockd"
#define SPAWN_LOCK_FILE "vmlockd.lock"

/*
 * What the daemon answered to the extension program, so later calls skip the probes:
 * PEER_V1 once extension version 2 was unknown but version 1 worked (an older vmlockd),
 * PEER_VIRTLOCKD once the program itself was unknown.  Cleared when the connection fails in
 * a way that suggests the daemon was restarted (maybe replaced).  Shared by every libvirtd
 * thread, hence atomic; a stale value only costs one extra round trip, never correctness.
 */
enum { PEER_V2 = 0, PEER_V1 = 1, PEER_VIRTLOCKD = 2 };
static int peer_kind;

bool drv_client_peer_is_virtlockd(void)
{
    return __atomic_load_n(&peer_kind, __ATOMIC_RELAXED) == PEER_VIRTLOCKD;
}

bool drv_client_peer_is_v1(void)
{
    return __atomic_load_n(&peer_kind, __ATOMIC_RELAXED) == PEER_V1;
}

void drv_client_forget_peer(void)
{
    __atomic_store_n(&peer_kind, PEER_V2, __ATOMIC_RELAXED);
}

static void remember_peer(int kind)
{
    __atomic_store_n(&peer_kind, kind, __ATOMIC_RELAXED);
}

/* An error made by our side of the connection (it broke), not one the daemon replied with. */
static bool is_transport_error(const vml_error *err)
{
    return err->domain == VIR_FROM_RPC &&
           (err->code == VIR_ERR_SYSTEM_ERROR ||
            (err->code == VIR_ERR_RPC && strncmp(err->detail, "unknown procedure", 17) != 0 &&
             strncmp(err->detail, "Cannot find program", 19) != 0));
}

/* The reply a daemon without our program gives: virtlockd's dispatcher error. */
static bool is_unknown_program(const vml_error *err)
{
    static const char prefix[] = "Cannot find program";

    return err->code == VIR_ERR_RPC &&
           (strncmp(err->detail, prefix, sizeof(prefix) - 1) == 0 ||
            strncmp(err->message, prefix, sizeof(prefix) - 1) == 0);
}

/* ---- connecting, and starting a per-user daemon ---- */

/* One connect attempt; *errnum = the connect errno on failure (0 for non-system errors). */
static int connect_once(vml_client *client, const char *sock_path, int *errnum,
                        vml_error *err)
{
    int saved_errno;

    if (vml_client_connect(client, sock_path, err) == 0)
        return 0;
    /* vml_client_connect leaves connect(2)'s errno in place (it only formats and closes). */
    saved_errno = errno;
    *errnum = err != NULL && err->code == VIR_ERR_SYSTEM_ERROR ? saved_errno : 0;
    return -1;
}

static bool nobody_listens(int errnum)
{
    return errnum == ENOENT || errnum == ECONNREFUSED;
}

/*
 * Take the per-user spawn lock: an OFD write lock, so two libvirtd threads exclude each other
 * as well as two processes.  *lock_fd is the descriptor holding it (closing it releases it);
 * -1 with no error when XDG_RUNTIME_DIR is unusable (then no daemon can be started).
 */
static int take_spawn_lock(int *lock_fd, vml_error *err)
{
    const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
    struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    char *dir = NULL;
    char *path = NULL;
    int fd = -1;
    int ret = -1;

    *lock_fd = -1;
    if (runtime_dir == NULL || runtime_dir[0] != '/') {
        VML_DEBUG("XDG_RUNTIME_DIR is not an absolute path: not starting a lock daemon");
        return 0;
    }
    if (asprintf(&dir, "%s/%s", runtime_dir, SPAWN_LOCK_DIR) < 0) {
        dir = NULL;
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot name the spawn lock");
        goto out;
    }
    if (asprintf(&path, "%s/%s", dir, SPAWN_LOCK_FILE) < 0) {
        path = NULL;
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot name the spawn lock");
        goto out;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot create directory '%s'", dir);
        goto out;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot open '%s'", path);
        goto out;
    }
    while (fcntl(fd, F_OFD_SETLKW, &lock) < 0) {
        if (errno == EINTR)
            continue;
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot lock '%s'", path);
        goto out;
    }
    *lock_fd = fd;
    fd = -1;
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    free(path);
    free(dir);
    return ret;
}

/*
 * Run the daemon in --daemon mode and wait for that command: it returns only once the
 * daemon listens (or has failed), so no polling is needed afterwards.
 */
static int spawn_daemon(vml_error *err)
{
    const char *binary = getenv("VMLOCKD_PATH");
    vml_child child;
    int exec_errno = 0;
    int status = 0;

    if (binary == NULL || binary[0] == '\0')
        binary = DAEMON_DEFAULT_PATH;
    if (binary[0] != '/') {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                      "VMLOCKD_PATH '%s' is not an absolute path to the vmlockd binary", binary);
        return -1;
    }
    const char *const argv[] = { binary, "--daemon", "--timeout=120", NULL };

    VML_INFO("starting the lock daemon '%s'", binary);
    if (vml_child_spawn(argv, false, &child) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot start '%s'", binary);
        return -1;
    }
    if (vml_child_finish(&child, &exec_errno, &status) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot wait for '%s'", binary);
        return -1;
    }
    if (exec_errno != 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, exec_errno, "cannot run the lock daemon '%s'",
                            binary);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_OPERATION_FAILED,
                      "the lock daemon '%s' failed to start (wait status 0x%x)", binary,
                      (unsigned int)status);
        return -1;
    }
    return 0;
}

int drv_client_connect(vml_client *client, const char *sock_path, vml_error *err)
{
    int lock_fd = -1;
    int errnum = 0;
    int ret = -1;

    if (connect_once(client, sock_path, &errnum, err) == 0)
        return 0;
    if (geteuid() == 0 || !nobody_listens(errnum))
        goto out;
    if (take_spawn_lock(&lock_fd, err) < 0 || lock_fd < 0)
        goto out;
    /* Someone else may have started it while we waited for the lock. */
    if (connect_once(client, sock_path, &errnum, err) == 0) {
        ret = 0;
        goto out;
    }
    if (!nobody_listens(errnum) || spawn_daemon(err) < 0 ||
        connect_once(client, sock_path, &errnum, err) < 0)
        goto out;
    ret = 0;
 out:
    if (ret < 0)
        drv_client_forget_peer();
    if (lock_fd >= 0)
        close(lock_fd);
    return ret;
}

/* ---- calls ---- */

static int call_void(vml_client *client, unsigned int prog, int proc, xdrproc_t args_proc,
                     const void *args, vml_error *err)
{
    unsigned int vers = prog == VML_EXT_PROGRAM ? VML_EXT_PROTOCOL_VERSION
                                                : VML_LS_PROTOCOL_VERSION;

    return vml_client_call(client, prog, vers, proc, args_proc, args, NULL, NULL, err);
}

static int call_register(vml_client *client, const vml_ls_owner *owner, vml_error *err)
{
    vml_ls_register_args args = { .owner = *owner, .flags = 0 };

    return call_void(client, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                     (xdrproc_t)xdr_vml_ls_register_args, &args, err);
}

static int call_resource(vml_client *client, int proc, const vml_ext_resource *res,
                         unsigned int flags, vml_error *err)
{
    vml_ls_resource_args args = { .path = res->lockspace, .name = res->name, .flags = flags };

    return call_void(client, VML_LS_PROGRAM, proc, (xdrproc_t)xdr_vml_ls_resource_args, &args,
                     err);
}

static int check_count(size_t count, vml_error *err)
{
    if (count <= VML_EXT_BATCH_MAX)
        return 0;
    vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                  "a domain may have at most %d lock resources, not %zu",
                  VML_EXT_BATCH_MAX, count);
    return -1;
}

/* Version 1 resources of version 2 ones: strings borrowed, generation flag dropped.  *out
 * is malloc'd (NULL for count 0), freed with free(). */
static int downgrade(const vml_ext_resource2 *resources, size_t count, vml_ext_resource **out,
                     vml_error *err)
{
    *out = NULL;
    if (count == 0)
        return 0;
    *out = calloc(count, sizeof(**out));
    if (*out == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build the lock request");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        (*out)[i].lockspace = resources[i].lockspace;
        (*out)[i].name = resources[i].name;
        (*out)[i].disk = resources[i].disk;
        (*out)[i].flags = resources[i].flags & (VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE);
    }
    return 0;
}

/* Extension version 1 batch (an older vmlockd). */
static int call_batch(vml_client *client, int proc, const vml_ls_owner *owner,
                      const vml_ext_resource *resources, size_t count, vml_error *err)
{
    vml_ext_batch_args args = { .owner = *owner, .flags = 0 };

    if (check_count(count, err) < 0)
        return -1;
    args.resources.resources_len = (u_int)count;
    args.resources.resources_val = (vml_ext_resource *)resources;
    return call_void(client, VML_EXT_PROGRAM, proc, (xdrproc_t)xdr_vml_ext_batch_args, &args,
                     err);
}

/* Extension version 2: BATCH_ACQUIRE, BATCH_RELEASE or INQUIRE, generations into gens. */
static int call_batch2(vml_client *client, int proc, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       virDomainLockFailureAction action, const char *uri,
                       vml_ext_generation *gens, vml_error *err)
{
    vml_ext_batch2_args args = { .owner = *owner, .on_lockfailure = (int)action,
                                 .uri = (char *)(uri != NULL ? uri : ""), .flags = 0 };
    vml_ext_batch2_ret ret = { { 0, NULL } };
    int rc;

    if (check_count(count, err) < 0)
        return -1;
    args.resources.resources_len = (u_int)count;
    args.resources.resources_val = (vml_ext_resource2 *)resources;
    rc = vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, proc,
                         (xdrproc_t)xdr_vml_ext_batch2_args, &args,
                         (xdrproc_t)xdr_vml_ext_batch2_ret, &ret, err);
    if (rc == 0 && ret.generations.generations_len != count) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "the lock daemon returned %u generations for %zu resources",
                      ret.generations.generations_len, count);
        rc = -1;
    }
    if (rc == 0 && gens != NULL && count > 0)
        memcpy(gens, ret.generations.generations_val, count * sizeof(gens[0]));
    xdr_free((xdrproc_t)xdr_vml_ext_batch2_ret, (char *)&ret);
    return rc;
}

/* virtlockd names only the lease (often a hash) when busy: say which disk that is. */
static void name_disk_in_error(vml_error *err, const vml_ext_resource *res)
{
    size_t len;

    if (err == NULL || err->code != VIR_ERR_RESOURCE_BUSY || res->disk[0] == '\0' ||
        strcmp(res->disk, res->name) == 0)
        return;
    len = strlen(err->message);
    snprintf(err->message + len, sizeof(err->message) - len, " (disk '%s')", res->disk);
    len = strlen(err->detail);
    snprintf(err->detail + len, sizeof(err->detail) - len, " (disk '%s')", res->disk);
}

/* Per-resource acquisition (virtlockd): all or nothing, undoing this call's work on failure. */
static int fallback_acquire(vml_client *client, const vml_ls_owner *owner,
                            const vml_ext_resource *resources, size_t count, vml_error *err)
{
    size_t taken = 0;
    int ret = -1;

    if (call_register(client, owner, err) < 0)
        goto out;
    for (; taken < count; taken++) {
        if (call_resource(client, VML_LS_PROC_ACQUIRE_RESOURCE, &resources[taken],
                          resources[taken].flags, err) < 0) {
            name_disk_in_error(err, &resources[taken]);
            goto out;
        }
    }
    ret = 0;
 out:
    if (ret < 0 && err != NULL && is_transport_error(err))
        drv_client_forget_peer();
    /* Best effort: if the connection broke, the owner's next start or exit cleans up. */
    while (ret < 0 && taken > 0 && (err == NULL || !is_transport_error(err))) {
        vml_error undo_err;

        taken--;
        vml_error_clear(&undo_err);
        if (call_resource(client, VML_LS_PROC_RELEASE_RESOURCE, &resources[taken], 0,
                          &undo_err) < 0) {
            VML_WARN("cannot undo the acquisition of '%s' in lockspace '%s': %s",
                     resources[taken].name, resources[taken].lockspace, undo_err.message);
            if (is_transport_error(&undo_err))
                break;
        }
    }
    return ret;
}

/* Per-resource release (virtlockd): carry on past failures, report the first. */
static int fallback_release(vml_client *client, const vml_ls_owner *owner,
                            const vml_ext_resource *resources, size_t count, vml_error *err)
{
    vml_error item_err;
    int ret = 0;

    if (call_register(client, owner, err) < 0) {
        if (err != NULL && is_transport_error(err))
            drv_client_forget_peer();
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        vml_error_clear(&item_err);
        if (call_resource(client, VML_LS_PROC_RELEASE_RESOURCE, &resources[i], 0,
                          &item_err) == 0)
            continue;
        VML_WARN("cannot release '%s' in lockspace '%s': %s", resources[i].name,
                 resources[i].lockspace, item_err.message);
        name_disk_in_error(&item_err, &resources[i]);
        if (ret == 0 && err != NULL)
            *err = item_err;
        ret = -1;
        if (is_transport_error(&item_err)) {
            drv_client_forget_peer();
            break;
        }
    }
    return ret;
}

/*
 * The batch procedure in the newest version the daemon knows: version 2 (generations into
 * gens), else version 1 (an older vmlockd: gens left as they are).  Returns 0/-1 for a
 * batch answer, 1 when the daemon is virtlockd and the caller must use the per-resource
 * procedures.
 */
static int try_batch(vml_client *client, int proc, const vml_ls_owner *owner,
                     const vml_ext_resource2 *resources, size_t count,
                     virDomainLockFailureAction action, const char *uri,
                     vml_ext_generation *gens, vml_error *err)
{
    vml_ext_resource *v1 = NULL;
    vml_error batch_err;
    int rc = -1;

    if (drv_client_peer_is_virtlockd())
        return 1;
    vml_error_clear(&batch_err);
    if (!drv_client_peer_is_v1()) {
        if (call_batch2(client, proc, owner, resources, count, action, uri, gens,
                        &batch_err) == 0)
            return 0;
        if (!is_unknown_program(&batch_err))
            goto fail;
        VML_INFO("the lock daemon does not know program 0x%x version %d: trying version %d",
                 (unsigned int)VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                 VML_EXT_PROTOCOL_VERSION);
        remember_peer(PEER_V1);
        vml_error_clear(&batch_err);
    }
    for (size_t i = 0; i < count; i++) {
        if (resources[i].flags & VML_EXT_RESOURCE_EXPECT_GENERATION) {
            VML_WARN("the lock daemon cannot check lease generations (it predates them): "
                     "resuming '%s' without checking that nobody held it meanwhile",
                     resources[i].disk[0] != '\0' ? resources[i].disk : resources[i].name);
            break;
        }
    }
    if (downgrade(resources, count, &v1, err) < 0)
        return -1;
    if (call_batch(client, proc, owner, v1, count, &batch_err) == 0) {
        rc = 0;
        goto out;
    }
    if (is_unknown_program(&batch_err)) {
        VML_INFO("the lock daemon does not know program 0x%x (it is virtlockd): using "
                 "per-resource calls", (unsigned int)VML_EXT_PROGRAM);
        remember_peer(PEER_VIRTLOCKD);
        rc = 1;
        goto out;
    }
 fail:
    if (err != NULL)
        *err = batch_err;
 out:
    free(v1);
    return rc;
}

int drv_client_register(const char *sock_path, const vml_ls_owner *owner, bool restrict_conn,
                        int *fd, vml_error *err)
{
    vml_client client = { .fd = -1 };
    vml_ls_restrict_args restrict_args = { .flags = 0 };
    int holder = -1;
    int ret = -1;

    if (fd != NULL)
        *fd = -1;
    if (drv_client_connect(&client, sock_path, err) < 0 ||
        call_register(&client, owner, err) < 0)
        goto out;
    if (fd != NULL) {
        holder = vml_client_dup_holder(&client, err);
        if (holder < 0)
            goto out;
    }
    if (restrict_conn &&
        call_void(&client, VML_LS_PROGRAM, VML_LS_PROC_RESTRICT,
                  (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, err) < 0)
        goto out;
    if (fd != NULL) {
        *fd = holder;
        holder = -1;
    }
    ret = 0;
 out:
    if (holder >= 0)
        close(holder);
    vml_client_close(&client);
    return ret;
}

/* ---- the persistent connection (libvirtd only) ---- */

/*
 * One connection per socket path, kept by the process that enabled it (shared_home_pid,
 * libvirtd) across operations: it saves socket/connect/accept/SO_PEERCRED/close and two of
 * the daemon's four wake-ups per pause/resume cycle (docs/performance.md).  To the daemon it
 * is an ordinary main-socket client of libvirtd's pid: never registered (every procedure
 * used on it names its owner in its arguments), never restricted, one of max_clients.
 *
 * Fork safety: a child libvirt forks (the start hook) may be forked while another thread
 * holds an entry's lock, and shares the descriptor.  It must neither wait for that lock nor
 * write to the connection: every entry point compares getpid() with shared_home_pid before
 * touching the list or a lock, and a child (another pid) opens its own connections as
 * before.  The descriptor is close-on-exec (vml_client_connect), so QEMU never inherits it;
 * a child that exits without exec closes its copy, which the daemon does not see as EOF
 * while libvirtd's copy lives.
 *
 * Threads: list_lock guards the list (entries live until drv_client_shared_close_all); an
 * entry's lock is held for the whole of one operation (one call at a time on a connection,
 * as the protocol has one outstanding call per connection).  It is only ever try-locked: a
 * thread that finds it busy uses a connection of its own for that call, so a slow call
 * (say, a lease on a hung NFS server) never stalls the other domains.
 */
typedef struct shared_conn {
    struct shared_conn *next;
    char *sock_path;
    pthread_mutex_t lock;
    vml_client client;          /* fd -1 while not connected */
} shared_conn;

static pthread_mutex_t shared_list_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_conn *shared_list;
static pid_t shared_home_pid;   /* 0: disabled; atomic */

void drv_client_shared_enable(void)
{
    __atomic_store_n(&shared_home_pid, getpid(), __ATOMIC_RELEASE);
}

void drv_client_shared_close_all(void)
{
    pid_t home = __atomic_exchange_n(&shared_home_pid, 0, __ATOMIC_ACQ_REL);
    shared_conn *list;

    if (home == 0 || home != getpid())
        return;     /* never enabled here, or a forked child: the parent's, not ours */
    pthread_mutex_lock(&shared_list_lock);
    list = shared_list;
    shared_list = NULL;
    pthread_mutex_unlock(&shared_list_lock);
    while (list != NULL) {
        shared_conn *next = list->next;

        /* drvDeinit comes after the last operation: nobody holds the entry's lock. */
        vml_client_close(&list->client);
        pthread_mutex_destroy(&list->lock);
        free(list->sock_path);
        free(list);
        list = next;
    }
}

/*
 * The persistent connection to sock_path, locked, or NULL when this call must open its own
 * (not enabled, a forked child, busy, out of memory).  Release with shared_put.
 */
static shared_conn *shared_get(const char *sock_path)
{
    pid_t home = __atomic_load_n(&shared_home_pid, __ATOMIC_ACQUIRE);
    shared_conn *e;

    if (home == 0 || home != getpid())
        return NULL;
    pthread_mutex_lock(&shared_list_lock);
    for (e = shared_list; e != NULL; e = e->next) {
        if (strcmp(e->sock_path, sock_path) == 0)
            break;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e != NULL && (e->sock_path = strdup(sock_path)) == NULL) {
            free(e);
            e = NULL;
        }
        if (e != NULL) {
            pthread_mutex_init(&e->lock, NULL);
            e->client.fd = -1;
            e->next = shared_list;
            shared_list = e;
        }
    }
    pthread_mutex_unlock(&shared_list_lock);
    if (e == NULL || pthread_mutex_trylock(&e->lock) != 0)
        return NULL;
    return e;
}

static void shared_put(shared_conn *e)
{
    pthread_mutex_unlock(&e->lock);
}

/*
 * Whether a failed call broke before the daemon sent any reply byte: sending failed with
 * EPIPE or ECONNRESET (nothing read yet), or reading the reply's length word found EOF or
 * ECONNRESET.  (vml_client_call reports EOF inside the 4-byte length word the same way as
 * EOF before it; the daemon writes each reply as one frame with one send, so a reply cut
 * inside its first 4 bytes means it died mid-send, and the resend below is safe in that
 * case too: see run_shared.)  "truncated reply" (EOF after the length word) is not retried.
 */
static bool broke_before_reply(const vml_error *err)
{
    static const char *const prefixes[] = {
        "cannot send to the lock daemon: ", "cannot read from the lock daemon: ",
    };
    const int errnos[] = { EPIPE, ECONNRESET };

    if (err->domain != VIR_FROM_RPC)
        return false;
    if (err->code == VIR_ERR_RPC)
        return strcmp(err->detail, "the lock daemon closed the connection") == 0;
    if (err->code != VIR_ERR_SYSTEM_ERROR)
        return false;
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        size_t len = strlen(prefixes[p]);

        if (strncmp(err->detail, prefixes[p], len) != 0)
            continue;
        for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
            /* Reading gets ECONNRESET, never EPIPE. */
            if ((p == 0 || errnos[i] == ECONNRESET) &&
                strcmp(err->detail + len, strerror(errnos[i])) == 0)
                return true;
        }
    }
    return false;
}

/* One operation on a connection: 0/-1, or 1 (acquire/release: the daemon is virtlockd). */
typedef int (*conn_op)(vml_client *client, void *ctx, vml_error *err);

/*
 * Run op on the persistent connection e (connecting it first when it is not).  A transport
 * failure closes it (the next operation connects again, starting a per-user daemon if need
 * be, see drv_client_connect).  When a connection that was already open broke before any
 * reply byte, the operation is sent once more on a new connection.
 *
 * Why resending is safe.  A reused connection may have been closed by the daemon at any time
 * (it was restarted, re-exec'd without its clients, or crashed), and we learn it only when
 * the call fails; the call then may or may not have reached the daemon, and may or may not
 * have been carried out.  Each operation sent here gives the same result whether it was
 * carried out once or twice, so the resend is the answer to the call:
 *   - BATCH_ACQUIRE (versions 1 and 2) of the same owner and modes: a lease the owner
 *     already holds in that mode is granted as it stands, generation unchanged, and an
 *     expected generation still passes (the daemon accepts generations of the owner's own
 *     run: daemon invariant 7, dmn_lockspace.c check_expected); a batch refused the first
 *     time took nothing (all or nothing) and is simply decided again.  A daemon that
 *     restarted meanwhile has forgotten the first call entirely (and maybe the lockspaces:
 *     acquire_batch in vmlockd_driver.c registers them again on "does not exist").
 *   - BATCH_RELEASE: if the first one was carried out, the second finds nothing held and
 *     fails with "not locked", an error drvRelease already handles (a second release of a
 *     pause; otherwise it is reported, and the leases are free as asked).  Nothing else of
 *     the owner can be released by it: libvirt runs one job per domain at a time.
 *   - INQUIRE only reads; CREATE_LOCKSPACE is idempotent.
 * REGISTER is never sent here (it binds a connection to an owner: the start hook and the
 * virtlockd fallback keep a connection per call) and nothing else is resent: an operation
 * that failed on a connection it just opened, or after reply bytes arrived, reports its
 * error.  Only one resend: a daemon that closes again (it drops that request) is reported.
 */
static int run_shared(shared_conn *e, const char *sock_path, conn_op op, void *ctx,
                      vml_error *err)
{
    bool reused = e->client.fd >= 0;
    vml_error call_err;
    int rc;

    if (!reused && drv_client_connect(&e->client, sock_path, err) < 0)
        return -1;
    vml_error_clear(&call_err);
    rc = op(&e->client, ctx, &call_err);
    if (rc < 0 && is_transport_error(&call_err)) {
        vml_client_close(&e->client);
        drv_client_forget_peer();   /* maybe a restarted (replaced) daemon */
        if (reused && broke_before_reply(&call_err)) {
            VML_INFO("the connection to the lock daemon at '%s' broke (%s): reconnecting and "
                     "sending the request again", sock_path, call_err.detail);
            if (drv_client_connect(&e->client, sock_path, err) < 0)
                return -1;
            vml_error_clear(&call_err);
            rc = op(&e->client, ctx, &call_err);
            if (rc < 0 && is_transport_error(&call_err)) {
                vml_client_close(&e->client);
                drv_client_forget_peer();
            }
        }
    }
    if (rc < 0 && err != NULL)
        *err = call_err;
    return rc;
}

/* Every generation unknown (the daemon cannot tell). */
static void clear_generations(vml_ext_generation *gens, size_t count)
{
    if (gens != NULL && count > 0)
        memset(gens, 0, count * sizeof(gens[0]));
}

/* The arguments of a batch operation, for run_shared. */
typedef struct batch_ctx {
    int proc;
    const vml_ls_owner *owner;
    const vml_ext_resource2 *resources;
    size_t count;
    virDomainLockFailureAction action;
    const char *uri;
    vml_ext_generation *gens;
} batch_ctx;

static int op_batch(vml_client *client, void *opaque, vml_error *err)
{
    const batch_ctx *c = opaque;

    clear_generations(c->gens, c->count);
    return try_batch(client, c->proc, c->owner, c->resources, c->count, c->action, c->uri,
                     c->gens, err);
}

/*
 * The batch on the persistent connection: 0/-1, or 1 when this call must use a connection
 * of its own (none to be had, or the daemon turned out to be virtlockd, whose per-resource
 * fallback needs a connection registered to the owner: the persistent one is closed).
 */
static int shared_batch(const char *sock_path, const batch_ctx *ctx, vml_error *err)
{
    shared_conn *e;
    int rc;

    if (drv_client_peer_is_virtlockd() || (e = shared_get(sock_path)) == NULL)
        return 1;
    rc = run_shared(e, sock_path, op_batch, (void *)ctx, err);
    if (rc == 1)
        vml_client_close(&e->client);
    shared_put(e);
    return rc;
}

int drv_client_acquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       virDomainLockFailureAction action, const char *uri,
                       vml_ext_generation *gens, vml_error *err)
{
    batch_ctx ctx = { .proc = VML_EXT_PROC_BATCH_ACQUIRE, .owner = owner,
                      .resources = resources, .count = count, .action = action, .uri = uri,
                      .gens = gens };
    vml_client client = { .fd = -1 };
    vml_ext_resource *v1 = NULL;
    int ret = -1;
    int rc;

    clear_generations(gens, count);
    rc = shared_batch(sock_path, &ctx, err);
    if (rc != 1)
        return rc;
    if (drv_client_connect(&client, sock_path, err) < 0)
        goto out;
    rc = try_batch(&client, VML_EXT_PROC_BATCH_ACQUIRE, owner, resources, count, action, uri,
                   gens, err);
    if (rc == 1) {
        if (downgrade(resources, count, &v1, err) < 0)
            goto out;
        rc = fallback_acquire(&client, owner, v1, count, err);
    }
    ret = rc;
 out:
    free(v1);
    vml_client_close(&client);
    return ret;
}

int drv_client_release(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       vml_ext_generation *gens, vml_error *err)
{
    batch_ctx ctx = { .proc = VML_EXT_PROC_BATCH_RELEASE, .owner = owner,
                      .resources = resources, .count = count,
                      .action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT, .uri = NULL, .gens = gens };
    vml_client client = { .fd = -1 };
    vml_ext_resource *v1 = NULL;
    int ret = -1;
    int rc;

    clear_generations(gens, count);
    rc = shared_batch(sock_path, &ctx, err);
    if (rc != 1)
        return rc;
    if (drv_client_connect(&client, sock_path, err) < 0)
        goto out;
    rc = try_batch(&client, VML_EXT_PROC_BATCH_RELEASE, owner, resources, count,
                   VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, gens, err);
    if (rc == 1) {
        if (downgrade(resources, count, &v1, err) < 0)
            goto out;
        rc = fallback_release(&client, owner, v1, count, err);
    }
    ret = rc;
 out:
    free(v1);
    vml_client_close(&client);
    return ret;
}

/* INQUIRE (version 2) on client; an unknown program leaves every generation unknown. */
static int op_inquire(vml_client *client, void *opaque, vml_error *err)
{
    const batch_ctx *c = opaque;
    vml_error call_err;

    clear_generations(c->gens, c->count);
    vml_error_clear(&call_err);
    if (call_batch2(client, VML_EXT_PROC_INQUIRE, c->owner, c->resources, c->count,
                    VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, c->gens, &call_err) == 0)
        return 0;
    if (!is_unknown_program(&call_err)) {
        if (err != NULL)
            *err = call_err;
        return -1;
    }
    /* virtlockd or an older vmlockd: no generations to report (the next batch tells
     * which of the two it is). */
    remember_peer(PEER_V1);
    clear_generations(c->gens, c->count);
    return 0;
}

int drv_client_inquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       vml_ext_generation *gens, vml_error *err)
{
    batch_ctx ctx = { .proc = VML_EXT_PROC_INQUIRE, .owner = owner, .resources = resources,
                      .count = count, .action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT, .uri = NULL,
                      .gens = gens };
    vml_client client = { .fd = -1 };
    shared_conn *e;
    int ret = -1;

    clear_generations(gens, count);
    if (count == 0 || drv_client_peer_is_virtlockd() || drv_client_peer_is_v1())
        return 0;
    if ((e = shared_get(sock_path)) != NULL) {
        ret = run_shared(e, sock_path, op_inquire, &ctx, err);
        shared_put(e);
        return ret;
    }
    if (drv_client_connect(&client, sock_path, err) < 0)
        goto out;
    ret = op_inquire(&client, &ctx, err);
 out:
    vml_client_close(&client);
    return ret;
}

static int op_create_lockspace(vml_client *client, void *opaque, vml_error *err)
{
    vml_ls_create_lockspace_args args = { .path = opaque };

    return call_void(client, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                     (xdrproc_t)xdr_vml_ls_create_lockspace_args, &args, err);
}

int drv_client_create_lockspace(const char *sock_path, const char *dir, vml_error *err)
{
    vml_client client = { .fd = -1 };
    shared_conn *e;
    int ret = -1;

    /* Not while the daemon is known to be virtlockd: the persistent connection is vmlockd's. */
    if (!drv_client_peer_is_virtlockd() && (e = shared_get(sock_path)) != NULL) {
        ret = run_shared(e, sock_path, op_create_lockspace, (void *)dir, err);
        shared_put(e);
        return ret;
    }
    if (drv_client_connect(&client, sock_path, err) < 0 ||
        op_create_lockspace(&client, (void *)dir, err) < 0)
        goto out;
    ret = 0;
 out:
    vml_client_close(&client);
    return ret;
}
