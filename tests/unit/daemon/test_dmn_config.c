/* test_dmn_config.c: unit tests of vmlockd.conf handling: defaults, every key, bad input naming FILE:LINE, paths, the --test-config dump. */
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vml_build_config.h"
#include "vml_test.h"
#include "dmn_config.h"

/* Load text as "t.conf" into a fresh config; returns the load result, err filled. */
static int load(dmn_config *cfg, const char *text, vml_error *err)
{
    vml_error_clear(err);
    return dmn_config_load_text(cfg, "t.conf", text, err);
}

static bool contains(const char *haystack, const char *needle)
{
    bool found = strstr(haystack, needle) != NULL;

    if (!found)
        printf("#   '%s'\n#   does not contain '%s'\n", haystack, needle);
    return found;
}

static void test_defaults(void)
{
    dmn_config cfg;

    dmn_config_init(&cfg);
    VML_CHECK(cfg.max_clients == 1024 && cfg.admin_max_clients == 16 && cfg.log_level == 3 &&
              cfg.owner_kill_grace_ms == 1600, "defaults: 1024 clients, 16 admin, level 3, 1600 ms");
    VML_CHECK(cfg.unix_sock_path == NULL && cfg.admin_unix_sock_path == NULL &&
              cfg.log_outputs == NULL && cfg.log_filters == NULL && cfg.pid_file == NULL,
              "defaults: no string set");
    VML_CHECK(cfg.lease_check_interval_ms == 10000 && cfg.lease_check_timeout_ms == 20000 &&
              cfg.keeper_sock_path == NULL && cfg.lockfailure_pause_helper == NULL &&
              cfg.keeper_timeout_ms == 10000,
              "defaults: leases checked every 10 s, 20 s to answer; keeper and helper derived; "
              "10 s for the keeper");
    dmn_config_clear(&cfg);
}

static void test_every_key(void)
{
    dmn_config cfg;
    vml_error err;
    int rc;

    dmn_config_init(&cfg);
    rc = load(&cfg,
              "# every key\n"
              "unix_sock_path = \"/tmp/x/main\"\n"
              "admin_unix_sock_path = \"/tmp/x/admin\"\n"
              "max_clients = 65536\n"
              "admin_max_clients = 1\n"
              "log_level = 1\n"
              "log_outputs = \"1:file:/tmp/x/log 4:stderr 2:syslog:vml 3:journald\"\n"
              "log_filters = \"1:locking\"\n"
              "owner_kill_grace_ms = 0\n", &err);
    if (!VML_CHECK(rc == 0, "a file setting every key loads")) {
        printf("#   %s\n", err.message);
        return;
    }
    VML_CHECK_STR(cfg.unix_sock_path, "/tmp/x/main", "unix_sock_path");
    VML_CHECK_STR(cfg.admin_unix_sock_path, "/tmp/x/admin", "admin_unix_sock_path");
    VML_CHECK(cfg.max_clients == 65536, "max_clients at its maximum");
    VML_CHECK(cfg.admin_max_clients == 1, "admin_max_clients at its minimum");
    VML_CHECK(cfg.log_level == 1, "log_level");
    VML_CHECK_STR(cfg.log_outputs, "1:file:/tmp/x/log 4:stderr 2:syslog:vml 3:journald",
                  "log_outputs");
    VML_CHECK_STR(cfg.log_filters, "1:locking", "log_filters is accepted");
    VML_CHECK(cfg.owner_kill_grace_ms == 0, "owner_kill_grace_ms may be 0");

    rc = load(&cfg, "max_clients = 7\n", &err);
    VML_CHECK(rc == 0 && cfg.max_clients == 7 && cfg.unix_sock_path == NULL,
              "a reload starts from the defaults, not from the previous file");
    dmn_config_clear(&cfg);
}

/* One bad line: the load fails, names t.conf:LINE and the problem, and leaves cfg as it was. */
static void expect_error(const char *text, const char *where, const char *what, const char *label)
{
    dmn_config cfg;
    vml_error err;
    char name[256];

    dmn_config_init(&cfg);
    cfg.max_clients = 77;
    snprintf(name, sizeof(name), "%s: refused, naming %s", label, where);
    if (VML_CHECK(load(&cfg, text, &err) < 0, name)) {
        snprintf(name, sizeof(name), "%s: the message says '%s'", label, what);
        VML_CHECK(contains(err.message, where) && contains(err.message, what), name);
        VML_CHECK(err.code == VIR_ERR_CONF_SYNTAX && err.domain == VIR_FROM_CONF,
                  "config errors are VIR_ERR_CONF_SYNTAX / VIR_FROM_CONF");
    }
    snprintf(name, sizeof(name), "%s: the config is unchanged", label);
    VML_CHECK(cfg.max_clients == 77 && cfg.unix_sock_path == NULL, name);
    dmn_config_clear(&cfg);
}

static void test_bad_values(void)
{
    expect_error("max_clients = 5\nbogus = 1\n", "t.conf:2", "unknown setting 'bogus'",
                 "an unknown key");
    expect_error("max_clients = 0\n", "t.conf:1", "'max_clients' must be a number from 1 to 65536",
                 "max_clients 0");
    expect_error("\nmax_clients = 65537\n", "t.conf:2", "from 1 to 65536", "max_clients 65537");
    expect_error("admin_max_clients = 1025\n", "t.conf:1", "from 1 to 1024", "admin_max_clients 1025");
    expect_error("log_level = 0\n", "t.conf:1", "from 1 to 4", "log_level 0");
    expect_error("log_level = 5\n", "t.conf:1", "from 1 to 4", "log_level 5");
    expect_error("owner_kill_grace_ms = 60001\n", "t.conf:1", "from 0 to 60000",
                 "owner_kill_grace_ms 60001");
    expect_error("owner_kill_grace_ms = -1\n", "t.conf:1", "from 0 to 60000",
                 "a negative grace");
    expect_error("max_clients = \"many\"\n", "t.conf:1", "max_clients", "a string for a number");
    expect_error("unix_sock_path = \"relative/sock\"\n", "t.conf:1", "must be an absolute path",
                 "a relative socket path");
    expect_error("unix_sock_path = 5\n", "t.conf:1", "must be a quoted string",
                 "a number for a path");
    expect_error("# long\nadmin_unix_sock_path = \"/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
                 "t.conf:2", "longer than the 107 bytes", "a socket path too long for sun_path");
    expect_error("unix_sock_path = \"/tmp/s\"\nadmin_unix_sock_path = \"/tmp/s\"\n", "t.conf:2",
                 "same path", "the same path for both sockets");
    expect_error("log_outputs = \"3:stderr 9:stderr\"\n", "t.conf:1", "level 1-4",
                 "a log output with a bad level");
    expect_error("\n\nlog_outputs = \"3:file:relative\"\n", "t.conf:3", "file:/ABSOLUTE/PATH",
                 "a log file that is not absolute");
    expect_error("log_outputs = \"3:printer\"\n", "t.conf:1", "expected stderr",
                 "an unknown log output");
    expect_error("max_clients = 4\nmax_clients = 5\n", "t.conf", "max_clients",
                 "a key given twice");
    expect_error("lease_check_interval_ms = 3600001\n", "t.conf:1", "from 0 to 3600000",
                 "lease_check_interval_ms beyond an hour");
    expect_error("lease_check_timeout_ms = 5\n", "t.conf:1", "from 10 to 3600000",
                 "lease_check_timeout_ms below 10 ms");
    expect_error("keeper_timeout_ms = 99\n", "t.conf:1", "from 100 to 600000",
                 "keeper_timeout_ms below 100 ms");
    expect_error("keeper_timeout_ms = 600001\n", "t.conf:1", "from 100 to 600000",
                 "keeper_timeout_ms above 10 minutes");
    expect_error("keeper_sock_path = \"keeper\"\n", "t.conf:1", "must be an absolute path",
                 "a relative keeper socket path");
    expect_error("lockfailure_pause_helper = \"helper\"\n", "t.conf:1",
                 "must be an absolute path", "a relative pause helper path");
}

static void test_lifetime_keys(void)
{
    dmn_config cfg;
    vml_error err = { 0 };

    dmn_config_init(&cfg);
    VML_CHECK(load(&cfg, "lease_check_interval_ms = 0\nlease_check_timeout_ms = 10\n"
                   "keeper_sock_path = \"/tmp/k\"\nlockfailure_pause_helper = \"/bin/true\"\n"
                   "keeper_timeout_ms = 250\n",
                   &err) == 0 && cfg.lease_check_interval_ms == 0 && cfg.keeper_timeout_ms == 250 &&
              cfg.lease_check_timeout_ms == 10 && strcmp(cfg.keeper_sock_path, "/tmp/k") == 0 &&
              strcmp(cfg.lockfailure_pause_helper, "/bin/true") == 0,
              "interval 0 (checks off), a 10 ms timeout, explicit keeper and helper paths load");
    dmn_config_clear(&cfg);
    cfg.unix_sock_path = strdup("/tmp/a");
    cfg.admin_unix_sock_path = strdup("/tmp/b");
    cfg.pid_file = strdup("/tmp/run/inst.pid");
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) == 0 &&
              strcmp(cfg.keeper_sock_path, "/tmp/run/inst.keeper-sock") == 0,
              "the keeper socket is derived from the pid file (one keeper per instance)");
    VML_CHECK(cfg.lockfailure_pause_helper != NULL &&
              strstr(cfg.lockfailure_pause_helper, "/vmlockd-pause-helper") != NULL,
              "the pause helper defaults to LIBEXECDIR/vmlockd-pause-helper");
    dmn_config_clear(&cfg);
    cfg.unix_sock_path = strdup("/tmp/a");
    cfg.admin_unix_sock_path = strdup("/tmp/b");
    cfg.pid_file = strdup("/tmp/run/no-suffix");
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) == 0 &&
              strcmp(cfg.keeper_sock_path, "/tmp/run/no-suffix.keeper-sock") == 0,
              "a pid file without .pid gets .keeper-sock appended");
    dmn_config_clear(&cfg);
    cfg.unix_sock_path = strdup("/tmp/a");
    cfg.admin_unix_sock_path = strdup("/tmp/b");
    cfg.pid_file = strdup("/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.pid");
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) < 0 &&
              contains(err.message, "set keeper_sock_path"),
              "a derived keeper socket path too long for sun_path says what to set");
    dmn_config_clear(&cfg);
}

static void test_files(void)
{
    char dir[] = "/tmp/test_dmn_config.XXXXXX";
    char path[512];
    dmn_config cfg;
    vml_error err = { 0 };
    FILE *f;

    if (!VML_CHECK(mkdtemp(dir) != NULL, "a temp dir"))
        return;
    snprintf(path, sizeof(path), "%s/vmlockd.conf", dir);
    dmn_config_init(&cfg);
    VML_CHECK(dmn_config_load_file(&cfg, path, true, &err) == 0 && cfg.max_clients == 1024,
              "a missing implicit config file means the defaults");
    VML_CHECK(dmn_config_load_file(&cfg, path, false, &err) < 0 && contains(err.message, path),
              "a missing explicit config file is an error naming it");
    f = fopen(path, "w");
    fputs("admin_max_clients = 3\n\n  nope = 2\n", f);
    fclose(f);
    VML_CHECK(dmn_config_load_file(&cfg, path, true, &err) < 0 && contains(err.message, ":3:") &&
              contains(err.message, path), "a bad file names FILE:LINE");
    unlink(path);
    rmdir(dir);
    dmn_config_clear(&cfg);
}

static void test_paths(void)
{
    dmn_config cfg;
    vml_error err = { 0 };
    char *file = NULL;
    char want[512];

    dmn_config_init(&cfg);
    VML_CHECK(dmn_config_resolve_paths(&cfg, true, &err) == 0, "privileged paths resolve");
    VML_CHECK_STR(cfg.unix_sock_path, "/run/vmlockd/vmlockd-sock", "privileged main socket");
    VML_CHECK_STR(cfg.admin_unix_sock_path, "/run/vmlockd/vmlockd-admin-sock",
                  "privileged admin socket");
    VML_CHECK_STR(cfg.pid_file, "/run/vmlockd.pid", "privileged pid file");
    dmn_config_clear(&cfg);

    setenv("XDG_RUNTIME_DIR", "/tmp/rt", 1);
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) == 0, "unprivileged paths resolve");
    VML_CHECK_STR(cfg.unix_sock_path, "/tmp/rt/vmlockd/vmlockd-sock", "unprivileged main socket");
    VML_CHECK_STR(cfg.admin_unix_sock_path, "/tmp/rt/vmlockd/vmlockd-admin-sock",
                  "unprivileged admin socket");
    VML_CHECK_STR(cfg.pid_file, "/tmp/rt/vmlockd/vmlockd.pid", "unprivileged pid file");
    dmn_config_clear(&cfg);

    unsetenv("XDG_RUNTIME_DIR");
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) < 0 &&
              contains(err.message, "XDG_RUNTIME_DIR"),
              "unprivileged without XDG_RUNTIME_DIR and no paths: an error naming it");
    dmn_config_clear(&cfg);
    cfg.unix_sock_path = strdup("/tmp/a");
    cfg.admin_unix_sock_path = strdup("/tmp/b");
    cfg.pid_file = strdup("/tmp/c.pid");
    VML_CHECK(dmn_config_resolve_paths(&cfg, false, &err) == 0 &&
              strcmp(cfg.unix_sock_path, "/tmp/a") == 0,
              "with every path configured XDG_RUNTIME_DIR is not needed");
    dmn_config_clear(&cfg);

    VML_CHECK(dmn_config_default_file(true, &file, &err) == 0, "privileged default file");
    snprintf(want, sizeof(want), "%s/libvirt/vmlockd.conf", VML_SYSCONFDIR);
    VML_CHECK_STR(file, want, "privileged default file is SYSCONFDIR/libvirt/vmlockd.conf");
    free(file);
    file = NULL;
    setenv("XDG_CONFIG_HOME", "/tmp/cfg", 1);
    VML_CHECK(dmn_config_default_file(false, &file, &err) == 0, "unprivileged default file");
    VML_CHECK_STR(file, "/tmp/cfg/libvirt/vmlockd.conf", "unprivileged default file uses XDG_CONFIG_HOME");
    free(file);
    file = NULL;
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/tmp/home", 1);
    VML_CHECK(dmn_config_default_file(false, &file, &err) == 0, "unprivileged default file without XDG_CONFIG_HOME");
    VML_CHECK_STR(file, "/tmp/home/.config/libvirt/vmlockd.conf", "falls back to ~/.config");
    free(file);
}

static void test_print(void)
{
    dmn_config cfg;
    vml_error err;
    char *text = NULL;
    size_t len = 0;
    FILE *out;

    dmn_config_init(&cfg);
    load(&cfg, "unix_sock_path = \"/tmp/m\"\nadmin_unix_sock_path = \"/tmp/a\"\nlog_level = 2\n", &err);
    cfg.pid_file = strdup("/tmp/with\"quote.pid");
    out = open_memstream(&text, &len);
    dmn_config_print(&cfg, false, 120, out);
    fclose(out);
    VML_CHECK_STR(text,
                  "unix_sock_path = \"/tmp/m\"\n"
                  "admin_unix_sock_path = \"/tmp/a\"\n"
                  "max_clients = 1024\n"
                  "admin_max_clients = 16\n"
                  "log_level = 2\n"
                  "log_outputs = \"2:stderr\"\n"
                  "log_filters = \"\"\n"
                  "owner_kill_grace_ms = 1600\n"
                  "lease_check_interval_ms = 10000\n"
                  "lease_check_timeout_ms = 20000\n"
                  "lockfailure_pause_helper = \"\"\n"
                  "keeper_sock_path = \"\"\n"
                  "keeper_timeout_ms = 10000\n"
                  "pid_file = '/tmp/with\"quote.pid'\n"
                  "timeout = 120\n",
                  "--test-config prints every effective setting in config syntax");
    free(text);
    text = NULL;
    out = open_memstream(&text, &len);
    dmn_config_print(&cfg, true, 0, out);
    fclose(out);
    VML_CHECK(contains(text, "log_outputs = \"2:syslog:vmlockd\"\n"),
              "the effective log output of a daemon is syslog");
    free(text);
    text = NULL;
    free(cfg.pid_file);
    cfg.pid_file = strdup("/tmp/it's\"both.pid");
    out = open_memstream(&text, &len);
    dmn_config_print(&cfg, true, 0, out);
    fclose(out);
    VML_CHECK(contains(text, "\n# pid_file holds both quote characters, which config syntax "
                             "cannot write: /tmp/it's\"both.pid\n"),
              "a value with both quote characters is shown as a comment, not as bad syntax");
    free(text);
    dmn_config_clear(&cfg);
}

/* Unprivileged, with neither XDG_CONFIG_HOME nor HOME usable: the passwd entry's home. */
static void test_default_file_passwd(void)
{
    const struct passwd *pw = getpwuid(geteuid());
    vml_error err;
    char *file = NULL;
    char want[PATH_MAX + 64];

    setenv("XDG_CONFIG_HOME", "relative/cfg", 1);
    setenv("HOME", "relative/home", 1);
    if (pw == NULL) {
        printf("ok %u # SKIP no passwd entry for uid %u\n", ++vml_test_count,
               (unsigned int)geteuid());
    } else {
        snprintf(want, sizeof(want), "%s/.config/libvirt/vmlockd.conf", pw->pw_dir);
        VML_CHECK(dmn_config_default_file(false, &file, &err) == 0,
                  "relative XDG_CONFIG_HOME and HOME: a default file is still found");
        VML_CHECK_STR(file, want, "... below the home directory of the passwd entry");
        free(file);
    }
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
}

int main(void)
{
    test_lifetime_keys();
    test_defaults();
    test_every_key();
    test_bad_values();
    test_files();
    test_paths();
    test_print();
    test_default_file_passwd();
    return vml_test_done();
}
