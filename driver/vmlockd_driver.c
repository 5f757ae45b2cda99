/* vmlockd_driver.c: the eight lock-driver callbacks libvirt calls, and the exported virLockDriverImpl table. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drv_client.h"
#include "drv_config.h"
#include "drv_error.h"
#include "drv_pause_memo.h"
#include "drv_resource.h"
#include "drv_state.h"
#include "lock_driver_abi.h"
#include "vml_log.h"

/*
 * The plugin is a process-wide singleton (libvirt loads one copy per process and may
 * initialise it once per hypervisor driver): the configuration is shared by every driver
 * that called drvInit and freed when the last one calls drvDeinit.  init_lock serialises
 * drvInit/drvDeinit only; the per-domain callbacks read active_config, which cannot change
 * while any driver using it is running (libvirt deinitialises a driver only after its
 * domains' operations are over).  The lock is never taken on the start path, which runs in
 * a child forked from libvirtd.
 */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int init_count;
static drv_config *active_config;

/* The private data of one lock-manager context (one domain, one operation). */
typedef struct drv_domain {
    const drv_config *config;   /* borrowed from active_config */
    unsigned char uuid[VIR_UUID_BUFLEN];
    char *name;
    unsigned int id;
    unsigned int pid;
    char *uri;                  /* libvirt's connection URI (for the pause action); may be NULL */
    drv_resource_set resources;
} drv_domain;

static void domain_free(drv_domain *dom)
{
    if (dom == NULL)
        return;
    drv_resource_set_clear(&dom->resources);
    free(dom->uri);
    free(dom->name);
    free(dom);
}

static const drv_config *current_config(void)
{
    return __atomic_load_n(&active_config, __ATOMIC_ACQUIRE);
}

static int check_flags(unsigned int flags, unsigned int allowed, const char *function,
                       vml_error *err)
{
    if ((flags & ~allowed) == 0)
        return 0;
    vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                  "unsupported flags (0x%x) in function %s", flags & ~allowed, function);
    return -1;
}

static int get_domain(virLockManager *man, drv_domain **dom, vml_error *err)
{
    if (man == NULL || man->privateData == NULL) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "lock manager context has no domain (drvNew did not succeed)");
        return -1;
    }
    *dom = man->privateData;
    return 0;
}

/* The owner as the wire names it; its name string is borrowed from dom. */
static vml_ls_owner domain_owner(const drv_domain *dom)
{
    vml_ls_owner owner = { .name = dom->name, .id = dom->id, .pid = dom->pid };

    memcpy(owner.uuid, dom->uuid, sizeof(owner.uuid));
    return owner;
}

/* ---- drvInit / drvDeinit ---- */

/* Register each configured directory with the daemon, so leases can be created there. */
static int create_lockspaces(const drv_config *config, vml_error *err)
{
    const char *dirs[] = {
        config->file_lockspace_dir, config->lvm_lockspace_dir, config->scsi_lockspace_dir,
    };

    if (!config->auto_disk_leases)
        return 0;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (dirs[i] != NULL &&
            drv_client_create_lockspace(config->unix_sock_path, dirs[i], err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Whether err is the daemon's refusal of a lockspace it does not know.  A daemon started
 * cold (no keeper to hand it its state) has forgotten the lockspaces registered at drvInit;
 * the caller registers them again and retries once.  The text is virtlockd's (and so the
 * daemon's) and carries the internal-error code, hence the text match.
 */
static bool lockspace_unknown(const vml_error *err)
{
    const char *text = err->detail[0] != '\0' ? err->detail : err->message;

    return err->code == VIR_ERR_INTERNAL_ERROR && strstr(text, "Lockspace for path ") != NULL &&
           strstr(text, " does not exist") != NULL;
}

static int vmlockd_init(unsigned int version, const char *configFile, unsigned int flags)
{
    drv_config *config = NULL;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    drv_error_init();
    vml_log_set_program("vmlockd.so");
    if (check_flags(flags, 0, "drvInit", &err) < 0)
        goto out;
    if (version / 1000000 != VIR_LOCK_MANAGER_VERSION_MAJOR) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "lock manager ABI version %u is not supported (vmlockd.so implements "
                      "version %d.x)", version, VIR_LOCK_MANAGER_VERSION_MAJOR);
        goto out;
    }

    pthread_mutex_lock(&init_lock);
    if (init_count > 0) {
        /* A second hypervisor driver in the same daemon shares the first configuration. */
        init_count++;
        VML_INFO("already initialised (%u users): '%s' is not read, the first configuration "
                 "stays in use", init_count, configFile != NULL ? configFile : "(none)");
        pthread_mutex_unlock(&init_lock);
        ret = 0;
        goto out;
    }
    /* This process (libvirtd) keeps one connection to the daemon from here on; its forked
     * children (the start hook) never use it (drv_client.h). */
    drv_client_shared_enable();
    if (drv_config_load(configFile, &config, &err) < 0 || create_lockspaces(config, &err) < 0) {
        drv_client_shared_close_all();
        pthread_mutex_unlock(&init_lock);
        goto out;
    }
    VML_DEBUG("initialised from '%s': socket '%s'", configFile != NULL ? configFile : "(none)",
              config->unix_sock_path);
    __atomic_store_n(&active_config, config, __ATOMIC_RELEASE);
    config = NULL;
    init_count = 1;
    pthread_mutex_unlock(&init_lock);
    ret = 0;
 out:
    if (ret < 0)
        drv_error_report(&err);
    drv_config_free(config);
    return ret;
}

static int vmlockd_deinit(void)
{
    drv_config *config = NULL;

    pthread_mutex_lock(&init_lock);
    if (init_count > 0 && --init_count == 0) {
        config = active_config;
        __atomic_store_n(&active_config, NULL, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
    if (config != NULL)
        drv_client_shared_close_all();  /* the last user: the daemon sees this client go */
    drv_config_free(config);
    return 0;
}

/* ---- drvNew / drvFree ---- */

/* Store one drvNew param (borrowed) into dom; seen tracks duplicates, one bit per key. */
static int domain_set_param(drv_domain *dom, const virLockManagerParam *param,
                            unsigned int *seen, vml_error *err)
{
    static const struct {
        const char *key;
        int type;
    } known[] = {
        { "uuid", VIR_LOCK_MANAGER_PARAM_TYPE_UUID },
        { "name", VIR_LOCK_MANAGER_PARAM_TYPE_STRING },
        { "id", VIR_LOCK_MANAGER_PARAM_TYPE_UINT },
        { "pid", VIR_LOCK_MANAGER_PARAM_TYPE_UINT },
        { "uri", VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING },
    };
    size_t k;

    if (param->key == NULL) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "a lock manager parameter has no key");
        return -1;
    }
    for (k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        if (strcmp(param->key, known[k].key) == 0)
            break;
    }
    if (k == sizeof(known) / sizeof(known[0])) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Unexpected parameter '%s' for object", param->key);
        return -1;
    }
    if (param->type != known[k].type) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "parameter '%s' has type %d, expected %d", param->key, param->type,
                      known[k].type);
        return -1;
    }
    if (*seen & (1u << k)) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "parameter '%s' is given twice", param->key);
        return -1;
    }
    *seen |= 1u << k;

    switch (k) {
    case 0:
        memcpy(dom->uuid, param->value.uuid, sizeof(dom->uuid));
        break;
    case 1:
        if (param->value.str == NULL)
            break;      /* reported as missing below */
        if (strlen(param->value.str) > VML_LS_STRING_MAX) {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                          "domain name is longer than %d bytes", VML_LS_STRING_MAX);
            return -1;
        }
        dom->name = strdup(param->value.str);
        if (dom->name == NULL) {
            vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot copy the domain name");
            return -1;
        }
        break;
    case 2:
        dom->id = param->value.ui;
        break;
    case 3:
        dom->pid = param->value.ui;
        break;
    default:
        /* uri: NULL on the paths where libvirt has none (pause, inquire, detach). */
        if (param->value.cstr != NULL) {
            if (strlen(param->value.cstr) > VML_EXT_URI_MAX) {
                vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                              "the connection URI is longer than %d bytes", VML_EXT_URI_MAX);
                return -1;
            }
            dom->uri = strdup(param->value.cstr);
            if (dom->uri == NULL) {
                vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot copy the URI");
                return -1;
            }
        }
        break;
    }
    return 0;
}

/* lockd's rule: a UUID whose 16 bytes are all equal (all zero included) is not a real one. */
static bool uuid_is_valid(const unsigned char uuid[VIR_UUID_BUFLEN])
{
    for (size_t i = 1; i < VIR_UUID_BUFLEN; i++) {
        if (uuid[i] != uuid[0])
            return true;
    }
    return false;
}

static int vmlockd_new(virLockManager *man, unsigned int type, size_t nparams,
                       virLockManagerParam *params, unsigned int flags)
{
    const drv_config *config = current_config();
    drv_domain *dom = NULL;
    unsigned int seen = 0;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    if (check_flags(flags, VIR_LOCK_MANAGER_NEW_STARTED, "drvNew", &err) < 0)
        goto out;
    if (man == NULL || config == NULL) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR, "%s",
                      man == NULL ? "drvNew called without a lock manager context"
                                  : "the vmlockd lock driver is not initialised");
        goto out;
    }
    if (type != VIR_LOCK_MANAGER_OBJECT_TYPE_DOMAIN) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Unknown lock manager object type %u", type);
        goto out;
    }
    if (nparams > 0 && params == NULL) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "%zu lock manager parameters but no parameter array", nparams);
        goto out;
    }
    dom = calloc(1, sizeof(*dom));
    if (dom == NULL) {
        vml_error_set_errno(&err, VIR_FROM_LOCKING, ENOMEM, "cannot allocate a lock context");
        goto out;
    }
    dom->config = config;
    for (size_t i = 0; i < nparams; i++) {
        if (domain_set_param(dom, &params[i], &seen, &err) < 0)
            goto out;
    }
    if (!uuid_is_valid(dom->uuid)) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Missing or invalid UUID parameter for domain object");
        goto out;
    }
    if (dom->name == NULL || dom->name[0] == '\0') {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Missing name parameter for domain object");
        goto out;
    }
    if (dom->id == 0) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Missing ID parameter for domain object");
        goto out;
    }
    if (dom->pid == 0)
        VML_DEBUG("domain '%s' has no pid yet", dom->name);
    man->privateData = dom;
    dom = NULL;
    ret = 0;
 out:
    /* On failure libvirt never calls drvFree: nothing partial may survive. */
    domain_free(dom);
    if (ret < 0)
        drv_error_report(&err);
    return ret;
}

static void vmlockd_free(virLockManager *man)
{
    if (man == NULL)
        return;
    domain_free(man->privateData);
    man->privateData = NULL;
}

/* ---- drvAddResource ---- */

static int vmlockd_add_resource(virLockManager *man, unsigned int type, const char *name,
                                size_t nparams, virLockManagerParam *params,
                                unsigned int flags)
{
    drv_domain *dom = NULL;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    if (get_domain(man, &dom, &err) < 0 ||
        drv_resource_add(&dom->resources, dom->config, type, name, nparams, params, flags,
                         &err) < 0)
        goto out;
    ret = 0;
 out:
    if (ret < 0)
        drv_error_report(&err);
    return ret;
}

/* ---- drvAcquire / drvRelease / drvInquire ---- */

/*
 * The wire form of the context's resources, computing the leases now (never on the start
 * path): *wire (version 2, strings borrowed from dom) and *gens (zeroed, one per resource)
 * are malloc'd, freed by the caller with free().
 */
static int domain_wire_resources(drv_domain *dom, vml_ext_resource2 **wire,
                                 vml_ext_generation **gens, vml_error *err)
{
    vml_ext_resource *v1 = NULL;
    size_t n = dom->resources.count;
    int ret = -1;

    *wire = NULL;
    *gens = NULL;
    if (drv_resource_set_resolve(&dom->resources, dom->config, NULL, err) < 0 ||
        drv_resource_set_to_wire(&dom->resources, &v1, err) < 0)
        goto out;
    if (n > 0 && ((*wire = calloc(n, sizeof(**wire))) == NULL ||
                  (*gens = calloc(n, sizeof(**gens))) == NULL)) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build the lock request");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        (*wire)[i].lockspace = v1[i].lockspace;
        (*wire)[i].name = v1[i].name;
        (*wire)[i].disk = v1[i].disk;
        (*wire)[i].flags = v1[i].flags;
    }
    ret = 0;
 out:
    if (ret < 0) {
        free(*wire);
        free(*gens);
        *wire = NULL;
        *gens = NULL;
    }
    free(v1);
    return ret;
}

/* Acquire the domain's leases in one batch.  A refused batch takes nothing (the daemon
 * rolls it back), so retrying it after registering the lockspaces again is safe. */
static int acquire_batch(const drv_domain *dom, const vml_ls_owner *owner,
                         vml_ext_resource2 *wire, virDomainLockFailureAction action,
                         vml_ext_generation *gens, vml_error *err)
{
    const char *sock = dom->config->unix_sock_path;

    if (drv_client_acquire(sock, owner, wire, dom->resources.count, action, dom->uri, gens,
                           err) == 0)
        return 0;
    if (!lockspace_unknown(err))
        return -1;
    VML_WARN("the lock daemon does not know a configured lockspace (restarted without its "
             "state?): registering them again");
    if (create_lockspaces(dom->config, err) < 0)
        return -1;
    return drv_client_acquire(sock, owner, wire, dom->resources.count, action, dom->uri, gens,
                              err);
}

static int vmlockd_acquire(virLockManager *man, const char *state, unsigned int flags,
                           virDomainLockFailureAction action, int *fd)
{
    const unsigned int allowed = VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY |
                                 VIR_LOCK_MANAGER_ACQUIRE_RESTRICT;
    bool register_only = (flags & VIR_LOCK_MANAGER_ACQUIRE_REGISTER_ONLY) != 0;
    bool restrict_conn = (flags & VIR_LOCK_MANAGER_ACQUIRE_RESTRICT) != 0;
    vml_ext_resource2 *wire = NULL;
    vml_ext_generation *gens = NULL;
    drv_domain *dom = NULL;
    vml_ls_owner owner;
    int holder = -1;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    if (fd != NULL)
        *fd = -1;
    if (check_flags(flags, allowed, "drvAcquire", &err) < 0 || get_domain(man, &dom, &err) < 0)
        goto out;
    /* Checked even when only registering, so a refused domain never starts QEMU (as lockd). */
    if (dom->resources.count == 0 && dom->resources.has_rw_disks &&
        dom->config->require_lease_for_disks) {
        vml_error_set(&err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                      "Read/write, exclusive access, disks were present, but no leases "
                      "specified");
        goto out;
    }
    owner = domain_owner(dom);

    /* The start path: fork-safe, no lease names computed, no state looked at. */
    if (register_only || fd != NULL) {
        if (drv_client_register(dom->config->unix_sock_path, &owner, restrict_conn,
                                fd != NULL ? &holder : NULL, &err) < 0)
            goto out;
    }
    if (!register_only && dom->resources.count > 0) {
        /* A state from pause or migration makes this acquisition a fencing check: refused
         * when another domain acquired one of the leases since (docs/LIFETIME.md). */
        if (domain_wire_resources(dom, &wire, &gens, &err) < 0 ||
            drv_state_apply(state, wire, dom->resources.count, &err) < 0)
            goto out;
        if (acquire_batch(dom, &owner, wire, action, gens, &err) < 0)
            goto out;
        drv_pause_memo_forget(dom->uuid);   /* held again: an old pause state is stale */
    }
    if (fd != NULL) {
        *fd = holder;
        holder = -1;
    }
    ret = 0;
 out:
    free(gens);
    free(wire);
    if (holder >= 0)
        close(holder);
    if (ret < 0)
        drv_error_report(&err);
    return ret;
}

static int vmlockd_release(virLockManager *man, char **state, unsigned int flags)
{
    int released;
    vml_ext_resource2 *wire = NULL;
    vml_ext_generation *gens = NULL;
    drv_domain *dom = NULL;
    vml_ls_owner owner;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    if (state != NULL)
        *state = NULL;
    if (check_flags(flags, 0, "drvRelease", &err) < 0 || get_domain(man, &dom, &err) < 0)
        goto out;
    if (dom->resources.count == 0) {
        ret = 0;
        goto out;
    }
    owner = domain_owner(dom);
    if (domain_wire_resources(dom, &wire, &gens, &err) < 0)
        goto out;
    released = drv_client_release(dom->config->unix_sock_path, &owner, wire,
                                  dom->resources.count, gens, &err);
    /* Pause: the generations released are what resume must find unchanged. */
    if (state != NULL && drv_state_format(wire, gens, dom->resources.count, state, &err) < 0)
        goto out;
    if (state != NULL && *state != NULL) {
        drv_pause_memo_store(dom->uuid, *state);
    } else if (state != NULL) {
        /* Nothing released: libvirt's second release of one pause.  Hand back the first
         * one's state instead of erasing it (drv_pause_memo.h). */
        *state = drv_pause_memo_lookup(dom->uuid);
        if (*state != NULL && released < 0 && err.code == VIR_ERR_RESOURCE_BUSY) {
            VML_DEBUG("domain '%s': leases already released; keeping the pause state",
                      dom->name);
            vml_error_clear(&err);
            released = 0;
        }
    }
    if (released < 0)
        goto out;
    ret = 0;
 out:
    free(gens);
    free(wire);
    if (ret < 0)
        drv_error_report(&err);
    return ret;
}

static int vmlockd_inquire(virLockManager *man, char **state, unsigned int flags)
{
    vml_ext_resource2 *wire = NULL;
    vml_ext_generation *gens = NULL;
    drv_domain *dom = NULL;
    vml_ls_owner owner;
    vml_error err;
    int ret = -1;

    vml_error_clear(&err);
    if (state != NULL)
        *state = NULL;
    if (check_flags(flags, 0, "drvInquire", &err) < 0 || get_domain(man, &dom, &err) < 0)
        goto out;
    if (state == NULL || dom->resources.count == 0) {
        ret = 0;
        goto out;
    }
    /* Migration: the generations held now travel in the cookie to the destination's
     * drvAcquire (the same domain's uuid, so its own acquisition there passes). */
    owner = domain_owner(dom);
    if (domain_wire_resources(dom, &wire, &gens, &err) < 0 ||
        drv_client_inquire(dom->config->unix_sock_path, &owner, wire, dom->resources.count,
                           gens, &err) < 0 ||
        drv_state_format(wire, gens, dom->resources.count, state, &err) < 0)
        goto out;
    ret = 0;
 out:
    free(gens);
    free(wire);
    if (ret < 0)
        drv_error_report(&err);
    return ret;
}

/* The one exported symbol (driver/vmlockd.map); libvirt reads it as a virLockDriver. */
__attribute__((visibility("default")))
virLockDriver virLockDriverImpl = {
    .version = VIR_LOCK_MANAGER_VERSION,
    .flags = 0,
    .drvInit = vmlockd_init,
    .drvDeinit = vmlockd_deinit,
    .drvNew = vmlockd_new,
    .drvFree = vmlockd_free,
    .drvAddResource = vmlockd_add_resource,
    .drvAcquire = vmlockd_acquire,
    .drvRelease = vmlockd_release,
    .drvInquire = vmlockd_inquire,
};
