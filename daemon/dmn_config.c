/* dmn_config.c: vmlockd.conf keyword table, defaults, validation, resolved paths and the --test-config dump. */
#include "dmn_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "vml_build_config.h"
#include "vml_conf.h"
#include "dmn_build_config.h"

/* Every key vmlockd.conf accepts; anything else is an error naming FILE:LINE. */
static const vml_conf_key config_keys[] = {
    { "unix_sock_path", VML_KEY_PATH, offsetof(dmn_config, unix_sock_path), 0, 0 },
    { "admin_unix_sock_path", VML_KEY_PATH, offsetof(dmn_config, admin_unix_sock_path), 0, 0 },
    { "max_clients", VML_KEY_UINT, offsetof(dmn_config, max_clients), 1, 65536 },
    { "admin_max_clients", VML_KEY_UINT, offsetof(dmn_config, admin_max_clients), 1, 1024 },
    { "log_level", VML_KEY_UINT, offsetof(dmn_config, log_level), 1, 4 },
    { "log_outputs", VML_KEY_STRING, offsetof(dmn_config, log_outputs), 0, 0 },
    { "log_filters", VML_KEY_STRING, offsetof(dmn_config, log_filters), 0, 0 },
    { "owner_kill_grace_ms", VML_KEY_UINT, offsetof(dmn_config, owner_kill_grace_ms), 0, 60000 },
    { "lease_check_interval_ms", VML_KEY_UINT, offsetof(dmn_config, lease_check_interval_ms),
      0, 3600000 },
    { "lease_check_timeout_ms", VML_KEY_UINT, offsetof(dmn_config, lease_check_timeout_ms),
      10, 3600000 },
    { "lockfailure_pause_helper", VML_KEY_PATH, offsetof(dmn_config, lockfailure_pause_helper),
      0, 0 },
    { "keeper_sock_path", VML_KEY_PATH, offsetof(dmn_config, keeper_sock_path), 0, 0 },
    { "keeper_timeout_ms", VML_KEY_UINT, offsetof(dmn_config, keeper_timeout_ms), 100, 600000 },
};

void dmn_config_init(dmn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_clients = DMN_DEFAULT_MAX_CLIENTS;
    cfg->admin_max_clients = DMN_DEFAULT_ADMIN_MAX_CLIENTS;
    cfg->log_level = DMN_DEFAULT_LOG_LEVEL;
    cfg->owner_kill_grace_ms = DMN_DEFAULT_OWNER_KILL_GRACE_MS;
    cfg->lease_check_interval_ms = DMN_DEFAULT_LEASE_CHECK_INTERVAL_MS;
    cfg->lease_check_timeout_ms = DMN_DEFAULT_LEASE_CHECK_TIMEOUT_MS;
    cfg->keeper_timeout_ms = DMN_DEFAULT_KEEPER_TIMEOUT_MS;
}

void dmn_config_clear(dmn_config *cfg)
{
    free(cfg->unix_sock_path);
    free(cfg->admin_unix_sock_path);
    free(cfg->log_outputs);
    free(cfg->log_filters);
    free(cfg->lockfailure_pause_helper);
    free(cfg->keeper_sock_path);
    free(cfg->pid_file);
    dmn_config_init(cfg);
}

int dmn_config_default_file(bool privileged, char **out, vml_error *err)
{
    return vml_conf_default_path(privileged, "vmlockd.conf", out, err);
}

static unsigned int entry_line(const vml_conf *conf, const char *key)
{
    for (size_t i = 0; i < conf->nentries; i++) {
        if (strcmp(conf->entries[i].key, key) == 0)
            return conf->entries[i].line;
    }
    return 0;
}

/* log_outputs syntax, checked without opening anything (--test-config has no side effects):
 * items "LEVEL:stderr", "LEVEL:file:/PATH", "LEVEL:syslog:IDENT", "LEVEL:journald". */
static const char *check_log_outputs(const char *spec)
{
    size_t nitems = 0;

    for (const char *p = spec; *p != '\0';) {
        size_t len;
        const char *kind;

        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        len = strcspn(p, " \t");
        if (p[0] < '1' || p[0] > '4' || p[1] != ':')
            return "each output must start with a level 1-4 and ':'";
        kind = p + 2;
        len -= 2;
        if (!((len == 6 && strncmp(kind, "stderr", 6) == 0) ||
              (len == 8 && strncmp(kind, "journald", 8) == 0) ||
              (len > 6 && strncmp(kind, "file:/", 6) == 0) ||
              (len > 7 && strncmp(kind, "syslog:", 7) == 0)))
            return "expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald after the level";
        if (++nitems > 8)
            return "at most 8 outputs are supported";
        p = kind + len;
    }
    return NULL;
}

/* Checks the keyword table cannot express; errors name FILE:LINE of the offending key. */
static int validate(const vml_conf *conf, const dmn_config *cfg, vml_error *err)
{
    const size_t sun_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    const char *problem;

    if (cfg->unix_sock_path != NULL && strlen(cfg->unix_sock_path) > sun_max) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s:%u: 'unix_sock_path' is longer than the %zu bytes a UNIX socket path may have",
                      conf->filename, entry_line(conf, "unix_sock_path"), sun_max);
        return -1;
    }
    if (cfg->admin_unix_sock_path != NULL && strlen(cfg->admin_unix_sock_path) > sun_max) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s:%u: 'admin_unix_sock_path' is longer than the %zu bytes a UNIX socket path may have",
                      conf->filename, entry_line(conf, "admin_unix_sock_path"), sun_max);
        return -1;
    }
    if (cfg->unix_sock_path != NULL && cfg->admin_unix_sock_path != NULL &&
        strcmp(cfg->unix_sock_path, cfg->admin_unix_sock_path) == 0) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s:%u: 'admin_unix_sock_path' is the same path as 'unix_sock_path'",
                      conf->filename, entry_line(conf, "admin_unix_sock_path"));
        return -1;
    }
    if (cfg->keeper_sock_path != NULL && strlen(cfg->keeper_sock_path) > sun_max) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s:%u: 'keeper_sock_path' is longer than the %zu bytes a UNIX socket path may have",
                      conf->filename, entry_line(conf, "keeper_sock_path"), sun_max);
        return -1;
    }
    if (cfg->log_outputs != NULL && (problem = check_log_outputs(cfg->log_outputs)) != NULL) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX, "%s:%u: 'log_outputs': %s",
                      conf->filename, entry_line(conf, "log_outputs"), problem);
        return -1;
    }
    return 0;
}

/* Apply conf (may be NULL) over the defaults into a scratch struct, then swap into *cfg. */
static int load_conf(dmn_config *cfg, const vml_conf *conf, vml_error *err)
{
    dmn_config scratch;
    char *pid_file = cfg->pid_file;

    dmn_config_init(&scratch);
    if (vml_conf_apply(conf, config_keys, sizeof(config_keys) / sizeof(config_keys[0]),
                       &scratch, err) < 0 ||
        (conf != NULL && validate(conf, &scratch, err) < 0)) {
        dmn_config_clear(&scratch);
        return -1;
    }
    /* The pid file comes from the command line, not from the file: keep it. */
    cfg->pid_file = NULL;
    dmn_config_clear(cfg);
    *cfg = scratch;
    cfg->pid_file = pid_file;
    return 0;
}

int dmn_config_load_file(dmn_config *cfg, const char *path, bool missing_ok, vml_error *err)
{
    vml_conf *conf = NULL;
    int ret = -1;

    if (vml_conf_parse_file(path, missing_ok, &conf, err) < 0)
        goto out;
    ret = load_conf(cfg, conf, err);
 out:
    vml_conf_free(conf);
    return ret;
}

int dmn_config_load_text(dmn_config *cfg, const char *filename, const char *text,
                         vml_error *err)
{
    vml_conf *conf = NULL;
    int ret = -1;

    if (vml_conf_parse_text(filename, text, strlen(text), &conf, err) < 0)
        goto out;
    ret = load_conf(cfg, conf, err);
 out:
    vml_conf_free(conf);
    return ret;
}

/* *slot = dir + "/" + file unless already set. */
static int default_path(char **slot, const char *dir, const char *file, vml_error *err)
{
    if (*slot != NULL)
        return 0;
    if (asprintf(slot, "%s/%s", dir, file) < 0) {
        *slot = NULL;
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the path of %s", file);
        return -1;
    }
    return 0;
}

/* The paths derived from others: the keeper socket from the pid file, the pause helper. */
static int derived_paths(dmn_config *cfg, vml_error *err)
{
    const size_t sun_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    size_t len;

    if (cfg->lockfailure_pause_helper == NULL &&
        (cfg->lockfailure_pause_helper = strdup(VML_LIBEXECDIR "/vmlockd-pause-helper")) == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the pause helper path");
        return -1;
    }
    if (cfg->keeper_sock_path != NULL)
        return 0;
    len = strlen(cfg->pid_file);
    if (len > 4 && strcmp(cfg->pid_file + len - 4, ".pid") == 0)
        len -= 4;
    if (asprintf(&cfg->keeper_sock_path, "%.*s.keeper-sock", (int)len, cfg->pid_file) < 0) {
        cfg->keeper_sock_path = NULL;
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the keeper socket path");
        return -1;
    }
    if (strlen(cfg->keeper_sock_path) > sun_max) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                      "the keeper socket path derived from the pid file (%s) is longer than "
                      "%zu bytes: set keeper_sock_path", cfg->keeper_sock_path, sun_max);
        return -1;
    }
    return 0;
}

int dmn_config_resolve_paths(dmn_config *cfg, bool privileged, vml_error *err)
{
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    char *dir = NULL;
    int ret = -1;

    if (privileged) {
        if (default_path(&cfg->unix_sock_path, "/run/vmlockd", "vmlockd-sock", err) < 0 ||
            default_path(&cfg->admin_unix_sock_path, "/run/vmlockd", "vmlockd-admin-sock",
                         err) < 0 ||
            default_path(&cfg->pid_file, "/run", "vmlockd.pid", err) < 0 ||
            derived_paths(cfg, err) < 0)
            goto out;
        ret = 0;
        goto out;
    }
    if (cfg->unix_sock_path != NULL && cfg->admin_unix_sock_path != NULL &&
        cfg->pid_file != NULL) {
        ret = derived_paths(cfg, err);
        goto out;
    }
    if (runtime == NULL || runtime[0] != '/') {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                      "XDG_RUNTIME_DIR is not set (or not an absolute path): set it, or "
                      "configure unix_sock_path and admin_unix_sock_path and pass --pid-file");
        goto out;
    }
    if (asprintf(&dir, "%s/vmlockd", runtime) < 0) {
        dir = NULL;
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the runtime directory");
        goto out;
    }
    if (default_path(&cfg->unix_sock_path, dir, "vmlockd-sock", err) < 0 ||
        default_path(&cfg->admin_unix_sock_path, dir, "vmlockd-admin-sock", err) < 0 ||
        default_path(&cfg->pid_file, dir, "vmlockd.pid", err) < 0 ||
        derived_paths(cfg, err) < 0)
        goto out;
    ret = 0;
 out:
    free(dir);
    return ret;
}

char *dmn_config_effective_log_outputs(const dmn_config *cfg, bool daemonized)
{
    char *spec = NULL;

    if (cfg->log_outputs != NULL && cfg->log_outputs[0] != '\0')
        return strdup(cfg->log_outputs);
    if (asprintf(&spec, daemonized ? "%u:syslog:vmlockd" : "%u:stderr", cfg->log_level) < 0)
        return NULL;
    return spec;
}

/* A string in config syntax: the config reader has no escapes, so pick a quote it lacks. */
static void print_string(FILE *out, const char *key, const char *value)
{
    if (value == NULL)
        value = "";
    if (strchr(value, '"') == NULL)
        fprintf(out, "%s = \"%s\"\n", key, value);
    else if (strchr(value, '\'') == NULL)
        fprintf(out, "%s = '%s'\n", key, value);
    else    /* a path given on the command line can hold both: show it, as a comment */
        fprintf(out, "# %s holds both quote characters, which config syntax cannot write: %s\n",
                key, value);
}

void dmn_config_print(const dmn_config *cfg, bool daemonized, unsigned int timeout_secs,
                      FILE *out)
{
    char *outputs = dmn_config_effective_log_outputs(cfg, daemonized);

    print_string(out, "unix_sock_path", cfg->unix_sock_path);
    print_string(out, "admin_unix_sock_path", cfg->admin_unix_sock_path);
    fprintf(out, "max_clients = %u\n", cfg->max_clients);
    fprintf(out, "admin_max_clients = %u\n", cfg->admin_max_clients);
    fprintf(out, "log_level = %u\n", cfg->log_level);
    print_string(out, "log_outputs", outputs);
    print_string(out, "log_filters", cfg->log_filters);
    fprintf(out, "owner_kill_grace_ms = %u\n", cfg->owner_kill_grace_ms);
    fprintf(out, "lease_check_interval_ms = %u\n", cfg->lease_check_interval_ms);
    fprintf(out, "lease_check_timeout_ms = %u\n", cfg->lease_check_timeout_ms);
    print_string(out, "lockfailure_pause_helper", cfg->lockfailure_pause_helper);
    print_string(out, "keeper_sock_path", cfg->keeper_sock_path);
    fprintf(out, "keeper_timeout_ms = %u\n", cfg->keeper_timeout_ms);
    /* From the command line, shown so that every path the daemon would use is visible. */
    print_string(out, "pid_file", cfg->pid_file);
    fprintf(out, "timeout = %u\n", timeout_secs);
    free(outputs);
}
