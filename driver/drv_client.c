/* drv_client.c: connecting to (and if need be starting) the lock daemon, and the plugin's RPC sequences. */
#include "drv_client.h"

#include <errno.h>
#include <fcntl.h>
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

/* Every generation unknown (the daemon cannot tell). */
static void clear_generations(vml_ext_generation *gens, size_t count)
{
    if (gens != NULL && count > 0)
        memset(gens, 0, count * sizeof(gens[0]));
}

int drv_client_acquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       virDomainLockFailureAction action, const char *uri,
                       vml_ext_generation *gens, vml_error *err)
{
    vml_client client = { .fd = -1 };
    vml_ext_resource *v1 = NULL;
    int ret = -1;
    int rc;

    clear_generations(gens, count);
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
    vml_client client = { .fd = -1 };
    vml_ext_resource *v1 = NULL;
    int ret = -1;
    int rc;

    clear_generations(gens, count);
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

int drv_client_inquire(const char *sock_path, const vml_ls_owner *owner,
                       const vml_ext_resource2 *resources, size_t count,
                       vml_ext_generation *gens, vml_error *err)
{
    vml_client client = { .fd = -1 };
    vml_error call_err;
    int ret = -1;

    clear_generations(gens, count);
    if (count == 0 || drv_client_peer_is_virtlockd() || drv_client_peer_is_v1())
        return 0;
    if (drv_client_connect(&client, sock_path, err) < 0)
        goto out;
    vml_error_clear(&call_err);
    if (call_batch2(&client, VML_EXT_PROC_INQUIRE, owner, resources, count,
                    VIR_DOMAIN_LOCK_FAILURE_DEFAULT, NULL, gens, &call_err) < 0) {
        if (!is_unknown_program(&call_err)) {
            if (err != NULL)
                *err = call_err;
            goto out;
        }
        /* virtlockd or an older vmlockd: no generations to report (the next batch tells
         * which of the two it is). */
        remember_peer(PEER_V1);
        clear_generations(gens, count);
    }
    ret = 0;
 out:
    vml_client_close(&client);
    return ret;
}

int drv_client_create_lockspace(const char *sock_path, const char *dir, vml_error *err)
{
    vml_client client = { .fd = -1 };
    vml_ls_create_lockspace_args args = { .path = (char *)dir };
    int ret = -1;

    if (drv_client_connect(&client, sock_path, err) < 0 ||
        call_void(&client, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                  (xdrproc_t)xdr_vml_ls_create_lockspace_args, &args, err) < 0)
        goto out;
    ret = 0;
 out:
    vml_client_close(&client);
    return ret;
}
