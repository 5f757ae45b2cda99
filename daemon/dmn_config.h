/* dmn_config.h: vmlockd.conf (keyword table, defaults, validation), resolved paths and the --test-config dump. */
#ifndef DMN_CONFIG_H
#define DMN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "vml_error.h"

#define DMN_DEFAULT_MAX_CLIENTS 1024
#define DMN_DEFAULT_ADMIN_MAX_CLIENTS 16
#define DMN_DEFAULT_LOG_LEVEL 3
#define DMN_DEFAULT_OWNER_KILL_GRACE_MS 1600
#define DMN_DEFAULT_LEASE_CHECK_INTERVAL_MS 10000
#define DMN_DEFAULT_LEASE_CHECK_TIMEOUT_MS 20000
#define DMN_DEFAULT_KEEPER_TIMEOUT_MS 10000

/*
 * The daemon's settings.  Strings are malloc'd and owned by the struct (NULL = unset);
 * dmn_config_clear frees them.  After dmn_config_resolve_paths the three paths are set.
 */
typedef struct dmn_config {
    char *unix_sock_path;
    char *admin_unix_sock_path;
    unsigned int max_clients;
    unsigned int admin_max_clients;
    unsigned int log_level;
    char *log_outputs;
    char *log_filters;              /* accepted for virtlockd.conf compatibility, ignored */
    unsigned int owner_kill_grace_ms;
    unsigned int lease_check_interval_ms;   /* 0 = no periodic lease checks */
    unsigned int lease_check_timeout_ms;    /* a lease unverified this long is lost */
    unsigned int keeper_timeout_ms;         /* the keeper answers (and reads) within this */
    char *lockfailure_pause_helper; /* vmlockd-pause-helper; default VML_LIBEXECDIR's */
    char *keeper_sock_path;         /* the keeper's socket; default derived from pid_file */
    char *pid_file;                 /* from -p, else derived (not a config key) */
} dmn_config;

/* Fill *cfg with the defaults (no strings set). */
void dmn_config_init(dmn_config *cfg);

/* Free the strings and reset to defaults; accepts a zeroed or initialised struct. */
void dmn_config_clear(dmn_config *cfg);

/*
 * The default config file: VML_SYSCONFDIR/libvirt/vmlockd.conf when privileged, else
 * $XDG_CONFIG_HOME/libvirt/vmlockd.conf (~/.config/... without XDG_CONFIG_HOME).
 * *out is malloc'd and owned by the caller.
 */
int dmn_config_default_file(bool privileged, char **out, vml_error *err);

/*
 * Parse the file at path into *cfg: defaults, then every key of the file.  A missing file
 * is fine when missing_ok (the implicit default file).  Errors name FILE:LINE.  The file is
 * parsed into a scratch struct and swapped into *cfg only when all of it is valid, so on
 * error *cfg is unchanged.
 */
int dmn_config_load_file(dmn_config *cfg, const char *path, bool missing_ok, vml_error *err);

/* As dmn_config_load_file from text in memory, named filename in messages (for tests). */
int dmn_config_load_text(dmn_config *cfg, const char *filename, const char *text,
                         vml_error *err);

/*
 * Fill the unset paths: privileged: /run/vmlockd/vmlockd-sock, /run/vmlockd/vmlockd-admin-sock,
 * /run/vmlockd.pid; unprivileged: $XDG_RUNTIME_DIR/vmlockd/{vmlockd-sock,vmlockd-admin-sock,
 * vmlockd.pid} (an error naming what to set when XDG_RUNTIME_DIR is unset and a path is needed).
 * The keeper socket defaults to the pid file's path with ".pid" replaced by ".keeper-sock"
 * (one keeper per daemon instance, as one daemon per pid file); the pause helper to
 * VML_LIBEXECDIR/vmlockd-pause-helper.
 */
int dmn_config_resolve_paths(dmn_config *cfg, bool privileged, vml_error *err);

/* The log_outputs in effect: the configured one, else LEVEL:stderr (foreground) or
 * LEVEL:syslog:vmlockd (daemon).  Returns a malloc'd string owned by the caller or NULL. */
char *dmn_config_effective_log_outputs(const dmn_config *cfg, bool daemonized);

/* Write the effective settings one per line, "key = value" in config syntax. */
void dmn_config_print(const dmn_config *cfg, bool daemonized, unsigned int timeout_secs,
                      FILE *out);

#endif
