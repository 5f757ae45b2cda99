/* fake_plugin.c: a lock-driver plugin for testing hosts: logs every call it receives, with its arguments, and fails on request. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock_driver_abi.h"
#include "vml_conf.h"

/*
 * Configured through drvInit's config file (vml_conf syntax):
 *   log = "/path"          append one line per call: "PID CALLBACK details"
 *   fail = "drvAcquire"    that callback fails, reporting error code fail_code
 *   fail_code = 87         (default VIR_ERR_INTERNAL_ERROR)
 *   fail_silent = 1        fail without reporting any error
 *   fail_flags = 3         only fail a drvAcquire whose flags are exactly this
 *   state = "text"         what drvRelease and drvInquire hand back
 *   holder = "/path"       drvAcquire with a non-NULL fd opens this file (not close-on-exec)
 * Built three ways: normally, with -DFAKE_NO_SYMBOL (no virLockDriverImpl) and with
 * -DFAKE_NO_INQUIRE (drvInquire missing).
 */
typedef struct fake_config {
    char *log;
    char *fail;
    unsigned int fail_code;
    bool fail_silent;
    unsigned int fail_flags;    /* FAIL_ANY_FLAGS: whatever the flags */
    char *state;
    char *holder;
} fake_config;

#define FAIL_ANY_FLAGS 0xffffffffu

static fake_config config;      /* the plugin's one global state, as libvirt's plugins have */

static const vml_conf_key config_keys[] = {
    { "log", VML_KEY_PATH, offsetof(fake_config, log), 0, 0 },
    { "fail", VML_KEY_STRING, offsetof(fake_config, fail), 0, 0 },
    { "fail_code", VML_KEY_UINT, offsetof(fake_config, fail_code), 1, 200 },
    { "fail_silent", VML_KEY_BOOL, offsetof(fake_config, fail_silent), 0, 0 },
    { "fail_flags", VML_KEY_UINT, offsetof(fake_config, fail_flags), 0, 255 },
    { "state", VML_KEY_STRING, offsetof(fake_config, state), 0, 0 },
    { "holder", VML_KEY_PATH, offsetof(fake_config, holder), 0, 0 },
};

static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void record(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    int len;
    int fd;

    if (config.log == NULL)
        return;
    len = snprintf(line, sizeof(line), "%ld ", (long)getpid());
    va_start(ap, fmt);
    len += vsnprintf(line + len, sizeof(line) - (size_t)len - 1, fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof(line) - 1)
        len = (int)sizeof(line) - 2;
    line[len++] = '\n';
    fd = open(config.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)len) < 0)
        len = 0;
    close(fd);
}

/* True when callback should fail; reports the error through the host's virReportErrorHelper. */
static bool failing(const char *callback)
{
    virReportErrorHelperFunc report;

    if (config.fail == NULL || strcmp(config.fail, callback) != 0)
        return false;
    if (!config.fail_silent) {
        report = (virReportErrorHelperFunc)dlsym(RTLD_DEFAULT, "virReportErrorHelper");
        if (report != NULL)
            report(VIR_FROM_LOCKING, (int)config.fail_code, __FILE__, callback, __LINE__,
                   "fake failure in %s", callback);
    }
    record("%s FAILS", callback);
    return true;
}

static void describe_params(char *buf, size_t len, size_t nparams,
                            const virLockManagerParam *params)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < nparams && used < len; i++) {
        const virLockManagerParam *p = &params[i];
        int n = 0;

        switch (p->type) {
        case VIR_LOCK_MANAGER_PARAM_TYPE_STRING:
            n = snprintf(buf + used, len - used, " %s:string=%s", p->key, p->value.str);
            break;
        case VIR_LOCK_MANAGER_PARAM_TYPE_CSTRING:
            n = snprintf(buf + used, len - used, " %s:cstring=%s", p->key,
                         p->value.cstr != NULL ? p->value.cstr : "(null)");
            break;
        case VIR_LOCK_MANAGER_PARAM_TYPE_UINT:
            n = snprintf(buf + used, len - used, " %s:uint=%u", p->key, p->value.ui);
            break;
        case VIR_LOCK_MANAGER_PARAM_TYPE_ULONG:
            n = snprintf(buf + used, len - used, " %s:ulong=%llu", p->key, p->value.ul);
            break;
        case VIR_LOCK_MANAGER_PARAM_TYPE_UUID:
            n = snprintf(buf + used, len - used, " %s:uuid=", p->key);
            for (int b = 0; b < 16 && n >= 0; b++)
                n += snprintf(buf + used + (size_t)n, len - used - (size_t)n, "%02x",
                              p->value.uuid[b]);
            break;
        default:
            n = snprintf(buf + used, len - used, " %s:type%d", p->key, p->type);
            break;
        }
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void fake_deinit_config(void)
{
    free(config.log);
    free(config.fail);
    free(config.state);
    free(config.holder);
    memset(&config, 0, sizeof(config));
}

static int fake_init(unsigned int version, const char *config_file, unsigned int flags)
{
    vml_conf *conf = NULL;

    memset(&config, 0, sizeof(config));
    config.fail_code = VIR_ERR_INTERNAL_ERROR;
    config.fail_flags = FAIL_ANY_FLAGS;
    if (config_file != NULL &&
        (vml_conf_parse_file(config_file, true, &conf, NULL) < 0 ||
         vml_conf_apply(conf, config_keys, sizeof(config_keys) / sizeof(config_keys[0]),
                        &config, NULL) < 0)) {
        vml_conf_free(conf);
        fake_deinit_config();
        return -1;
    }
    vml_conf_free(conf);
    record("drvInit version=%u config=%s flags=%u", version,
           config_file != NULL ? config_file : "(null)", flags);
    if (failing("drvInit")) {
        fake_deinit_config();
        return -1;
    }
    return 0;
}

static int fake_deinit(void)
{
    record("drvDeinit");
    fake_deinit_config();
    return 0;
}

static int fake_new(virLockManager *man, unsigned int type, size_t nparams,
                    virLockManagerParam *params, unsigned int flags)
{
    char desc[2048];

    describe_params(desc, sizeof(desc), nparams, params);
    record("drvNew type=%u flags=%u nparams=%zu privateData=%s%s", type, flags, nparams,
           man->privateData == NULL ? "null" : "set", desc);
    if (failing("drvNew"))
        return -1;
    man->privateData = strdup("fake");
    return man->privateData != NULL ? 0 : -1;
}

static void fake_free(virLockManager *man)
{
    record("drvFree");
    free(man->privateData);
    man->privateData = NULL;
}

static int fake_add_resource(virLockManager *man, unsigned int type, const char *name,
                             size_t nparams, virLockManagerParam *params, unsigned int flags)
{
    char desc[2048];

    (void)man;
    describe_params(desc, sizeof(desc), nparams, params);
    record("drvAddResource type=%u name=%s flags=%u nparams=%zu%s", type, name, flags,
           nparams, desc);
    return failing("drvAddResource") ? -1 : 0;
}

static int fake_acquire(virLockManager *man, const char *state, unsigned int flags,
                        virDomainLockFailureAction action, int *fd)
{
    (void)man;
    record("drvAcquire state=%s flags=%u action=%d fd=%s", state != NULL ? state : "(null)",
           flags, (int)action, fd == NULL ? "null" : (*fd == -1 ? "-1" : "set"));
    if ((config.fail_flags == FAIL_ANY_FLAGS || config.fail_flags == flags) &&
        failing("drvAcquire"))
        return -1;
    if (fd != NULL && config.holder != NULL) {
        *fd = open(config.holder, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (*fd < 0)
            return -1;
    }
    return 0;
}

static int state_call(const char *callback, char **state, unsigned int flags)
{
    record("%s state=%s flags=%u", callback,
           state == NULL ? "null" : (*state == NULL ? "ptr-to-null" : "ptr-to-set"), flags);
    if (failing(callback))
        return -1;
    if (state != NULL && config.state != NULL && (*state = strdup(config.state)) == NULL)
        return -1;
    return 0;
}

static int fake_release(virLockManager *man, char **state, unsigned int flags)
{
    (void)man;
    return state_call("drvRelease", state, flags);
}

static int fake_inquire(virLockManager *man, char **state, unsigned int flags)
{
    (void)man;
    return state_call("drvInquire", state, flags);
}

#ifndef FAKE_NO_SYMBOL
/* The plugin's one exported symbol, a data object as libvirt expects. */
__attribute__((visibility("default"))) virLockDriver virLockDriverImpl = {
    .version = VIR_LOCK_MANAGER_VERSION,
    .flags = 0,
    .drvInit = fake_init,
    .drvDeinit = fake_deinit,
    .drvNew = fake_new,
    .drvFree = fake_free,
    .drvAddResource = fake_add_resource,
    .drvAcquire = fake_acquire,
    .drvRelease = fake_release,
#ifndef FAKE_NO_INQUIRE
    .drvInquire = fake_inquire,
#endif
};
#else
/* Keeps every callback referenced in the build without the symbol. */
__attribute__((visibility("default"))) void *fake_plugin_callbacks[] = {
    (void *)fake_init, (void *)fake_deinit, (void *)fake_new, (void *)fake_free,
    (void *)fake_add_resource, (void *)fake_acquire, (void *)fake_release,
    (void *)fake_inquire,
};
#endif
#ifdef FAKE_NO_INQUIRE
__attribute__((visibility("default"))) void *fake_plugin_inquire = (void *)fake_inquire;
#endif
