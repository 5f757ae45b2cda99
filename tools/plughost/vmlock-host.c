/* vmlock-host.c: command-line host for a lock-driver plugin, making the calls libvirtd (and QEMU's start hook) make for one domain. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmh_plughost.h"
#include "vml_lease.h"
#include "vml_log.h"

#ifndef VMH_DEFAULT_PLUGIN
#error "VMH_DEFAULT_PLUGIN (the built vmlockd.so) must be defined by the build"
#endif
#ifndef VMH_DEFAULT_STUB
#error "VMH_DEFAULT_STUB (the built vmlock-stub-qemu) must be defined by the build"
#endif

/* drvInit always gets a path, as from libvirt; without --config, one that does not exist. */
#define NO_CONFIG_PATH "/nonexistent/vmlock-host/qemu-lockd.conf"

#define EXIT_PLUGIN 1
#define EXIT_USAGE 2

enum {
    OPT_PLUGIN = 1u << 0,
    OPT_CONFIG = 1u << 1,
    OPT_NAME = 1u << 2,
    OPT_UUID = 1u << 3,
    OPT_ID = 1u << 4,
    OPT_DISK = 1u << 5,
    OPT_LEASE = 1u << 6,
    OPT_ACTION = 1u << 7,
    OPT_PAUSED = 1u << 8,
    OPT_IGNORE_SIGTERM = 1u << 9,
    OPT_PID = 1u << 10,
    OPT_STATE = 1u << 11,
    OPT_TIMEOUT = 1u << 12,
    OPT_LOG = 1u << 13,
    OPT_HELP = 1u << 14,
};

#define OPTS_GLOBAL (OPT_PLUGIN | OPT_CONFIG | OPT_HELP)
#define OPTS_DOMAIN (OPT_NAME | OPT_UUID | OPT_ID | OPT_DISK | OPT_LEASE | OPT_ACTION)

typedef enum {
    CMD_START,
    CMD_ACQUIRE,
    CMD_RELEASE,
    CMD_ATTACH,
    CMD_DETACH,
    CMD_INQUIRE,
    CMD_WAIT_EXIT,
} command_id;

static const struct {
    const char *name;
    command_id id;
    unsigned int allowed;       /* OPT_* bits valid with it, besides the global ones */
    unsigned int required;
} commands[] = {
    { "start", CMD_START, OPTS_DOMAIN | OPT_PAUSED | OPT_IGNORE_SIGTERM | OPT_LOG, OPT_NAME },
    { "acquire", CMD_ACQUIRE, OPTS_DOMAIN | OPT_PID | OPT_STATE, OPT_NAME | OPT_PID },
    { "release", CMD_RELEASE, OPTS_DOMAIN | OPT_PID, OPT_NAME | OPT_PID },
    { "attach", CMD_ATTACH, OPTS_DOMAIN | OPT_PID, OPT_NAME | OPT_PID },
    { "detach", CMD_DETACH, OPTS_DOMAIN | OPT_PID, OPT_NAME | OPT_PID },
    { "inquire", CMD_INQUIRE, OPTS_DOMAIN | OPT_PID, OPT_NAME | OPT_PID },
    { "wait-exit", CMD_WAIT_EXIT, OPT_TIMEOUT, 0 },
};

static const struct option long_options[] = {
    { "plugin", required_argument, NULL, 'P' },
    { "config", required_argument, NULL, 'C' },
    { "name", required_argument, NULL, 'n' },
    { "uuid", required_argument, NULL, 'u' },
    { "id", required_argument, NULL, 'i' },
    { "disk", required_argument, NULL, 'd' },
    { "lease", required_argument, NULL, 'l' },
    { "action", required_argument, NULL, 'a' },
    { "paused", no_argument, NULL, 'S' },
    { "ignore-sigterm", no_argument, NULL, 'T' },
    { "pid", required_argument, NULL, 'p' },
    { "state", required_argument, NULL, 's' },
    { "timeout", required_argument, NULL, 't' },
    { "log", required_argument, NULL, 'L' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Map a getopt value to its OPT_* bit and its spelling for messages. */
static const struct {
    int val;
    unsigned int bit;
    const char *spelling;
} option_bits[] = {
    { 'P', OPT_PLUGIN, "--plugin" }, { 'C', OPT_CONFIG, "--config" },
    { 'n', OPT_NAME, "--name" }, { 'u', OPT_UUID, "--uuid" }, { 'i', OPT_ID, "--id" },
    { 'd', OPT_DISK, "--disk" }, { 'l', OPT_LEASE, "--lease" },
    { 'a', OPT_ACTION, "--action" }, { 'S', OPT_PAUSED, "--paused" },
    { 'T', OPT_IGNORE_SIGTERM, "--ignore-sigterm" }, { 'p', OPT_PID, "--pid" },
    { 's', OPT_STATE, "--state" }, { 't', OPT_TIMEOUT, "--timeout" }, { 'L', OPT_LOG, "--log" },
    { 'h', OPT_HELP, "--help" },
};

static const char *const action_names[] = {
    [VIR_DOMAIN_LOCK_FAILURE_DEFAULT] = "default",
    [VIR_DOMAIN_LOCK_FAILURE_POWEROFF] = "poweroff",
    [VIR_DOMAIN_LOCK_FAILURE_RESTART] = "restart",
    [VIR_DOMAIN_LOCK_FAILURE_PAUSE] = "pause",
    [VIR_DOMAIN_LOCK_FAILURE_IGNORE] = "ignore",
};

/* Everything the command line said.  Strings in disks/leases are owned (unescaped copies). */
typedef struct host_args {
    const char *plugin;
    const char *config;
    const char *command_name;
    command_id command;
    unsigned int seen;              /* OPT_* bits given */
    const char *name;
    unsigned char uuid[VIR_UUID_BUFLEN];
    bool uuid_derived;
    unsigned int id;
    vmh_disk *disks;
    size_t ndisks;
    vmh_lease *leases;
    size_t nleases;
    virDomainLockFailureAction action;
    bool paused;
    bool ignore_sigterm;
    pid_t pid;
    const char *state;
    const char *log_path;
    int timeout_s;                  /* wait-exit; -1 = forever */
    pid_t wait_pid;
} host_args;

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlock-host [--plugin SO] [--config FILE] COMMAND [OPTIONS]\n"
"\n"
"Hosts a libvirt lock-driver plugin and makes, for one domain, the calls libvirtd makes\n"
"(and, for 'start', those of QEMU's start hook in the forked child).\n"
"\n"
"  --plugin SO     plugin to load (default $VMLOCK_PLUGIN, else the built vmlockd.so)\n"
"  --config FILE   passed to drvInit (default $VMLOCK_PLUGIN_CONFIG, else a path that\n"
"                  does not exist)\n"
"\n"
"domain options:\n"
"  --name NAME     domain name (required)\n"
"  --uuid UUID     domain UUID (default: derived from the name; 'start' prints it)\n"
"  --id N          domain id (default 1)\n"
"  --disk PATH[,shared][,readonly]    a disk; repeatable; write ',,' for a ',' in PATH\n"
"  --lease KEY,path=P,lockspace=L[,offset=N]    a lease; repeatable\n"
"  --action default|poweroff|restart|pause|ignore    <on_lockfailure>\n"
"\n"
"commands:\n"
"  start [--paused] [--ignore-sigterm] [--log FILE]\n"
"        spawn a guest (start hook in the child, then the stand-in QEMU), then unless\n"
"        --paused acquire for it as libvirtd does at CPU start.  Prints\n"
"        'started NAME pid PID' (then 'uuid UUID' when the UUID was derived) and leaves\n"
"        the guest running.  --log receives the guest's output (default /dev/null).\n"
"        On failure the guest is killed.\n"
"  acquire --pid PID [--state S]   CPU start / resume of a running guest\n"
"  release --pid PID               pause; prints 'state: STRING' or 'state: none'\n"
"  attach --pid PID                hotplug the one --disk or --lease given\n"
"  detach --pid PID                unplug the one --disk or --lease given\n"
"  inquire --pid PID               prints the state like release\n"
"  wait-exit PID [--timeout SECS]  wait until PID exits; exit 1 if the timeout passes\n"
"\n"
"Exit status: 0 success, 1 the plugin refused or failed (message on stderr), 2 usage error.\n"
"$VMLOCK_STUB_QEMU overrides the stand-in QEMU executable; $VMLOCK_HOST_LOG takes\n"
"log_outputs (e.g. '1:stderr') for vmlock-host's own debug log.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("vmlock-host: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vmlock-host --help'.\n", stderr);
    return -1;
}

/* A decimal number in [0, max], nothing else. */
static int parse_number(const char *text, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long value;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max)
        return -1;
    *out = value;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 8-4-4-4-12 hex digits, or 32 hex digits without dashes. */
static int parse_uuid(const char *text, unsigned char uuid[VIR_UUID_BUFLEN])
{
    size_t len = strlen(text);
    bool dashed = len == 36;
    size_t pos = 0;

    if (len != 36 && len != 32)
        return -1;
    for (size_t i = 0; i < VIR_UUID_BUFLEN; i++) {
        int hi, lo;

        if (dashed && (pos == 8 || pos == 13 || pos == 18 || pos == 23)) {
            if (text[pos] != '-')
                return -1;
            pos++;
        }
        hi = hex_value(text[pos]);
        lo = hex_value(text[pos + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        uuid[i] = (unsigned char)(hi << 4 | lo);
        pos += 2;
    }
    return 0;
}

static void format_uuid(const unsigned char uuid[VIR_UUID_BUFLEN], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
             uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

/*
 * The UUID a name stands for when none is given: the first 16 bytes of SHA-256(name), marked
 * as an RFC 9562 version 8 (custom) UUID.  Deterministic, so every command of one domain
 * agrees without being told.
 */
static int derive_uuid(const char *name, unsigned char uuid[VIR_UUID_BUFLEN], vml_error *err)
{
    char hex[VML_LEASE_NAME_LEN + 1];

    if (vml_lease_hash(name, hex, err) < 0)
        return -1;
    for (size_t i = 0; i < VIR_UUID_BUFLEN; i++)
        uuid[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    uuid[6] = (unsigned char)((uuid[6] & 0x0f) | 0x80);
    uuid[8] = (unsigned char)((uuid[8] & 0x3f) | 0x80);
    return 0;
}

/*
 * Split "a,b,c" at single commas; ",," stands for a literal comma.  On success *fields is a
 * malloc'd array of *nfields malloc'd strings, owned by the caller (free_fields).
 */
static int split_fields(const char *text, char ***fields, size_t *nfields)
{
    size_t len = strlen(text);
    char **list = calloc(len + 1, sizeof(*list));   /* at most len + 1 fields */
    char *buf = NULL;
    size_t n = 0;
    size_t used = 0;
    int ret = -1;

    if (list == NULL || (buf = malloc(len + 1)) == NULL)
        goto out;
    for (size_t i = 0;; i++) {
        if (i < len && text[i] == ',' && i + 1 < len && text[i + 1] == ',') {
            buf[used++] = ',';
            i++;
            continue;
        }
        if (i == len || text[i] == ',') {
            buf[used] = '\0';
            if ((list[n] = strdup(buf)) == NULL)
                goto out;
            n++;
            used = 0;
            if (i == len)
                break;
            continue;
        }
        buf[used++] = text[i];
    }
    *fields = list;
    *nfields = n;
    list = NULL;
    ret = 0;
 out:
    if (list != NULL) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
    }
    free(buf);
    return ret;
}

static void free_fields(char **fields, size_t nfields)
{
    if (fields == NULL)
        return;
    for (size_t i = 0; i < nfields; i++)
        free(fields[i]);
    free(fields);
}

/* --disk PATH[,shared][,readonly]; the path is stored in args (owned). */
static int parse_disk(host_args *args, const char *text)
{
    char **fields = NULL;
    size_t nfields = 0;
    vmh_disk disk = { NULL, 0 };
    vmh_disk *grown;
    int ret = -1;

    if (split_fields(text, &fields, &nfields) < 0) {
        usage_error("out of memory parsing --disk '%s'", text);
        goto out;
    }
    if (fields[0][0] == '\0') {
        usage_error("--disk '%s': the disk path is empty", text);
        goto out;
    }
    for (size_t i = 1; i < nfields; i++) {
        if (strcmp(fields[i], "shared") == 0) {
            disk.flags |= VIR_LOCK_MANAGER_RESOURCE_SHARED;
        } else if (strcmp(fields[i], "readonly") == 0) {
            disk.flags |= VIR_LOCK_MANAGER_RESOURCE_READONLY;
        } else {
            usage_error("--disk '%s': unknown flag '%s' (expected 'shared' or 'readonly'; "
                        "write ',,' for a comma in the path)", text, fields[i]);
            goto out;
        }
    }
    grown = realloc(args->disks, (args->ndisks + 1) * sizeof(*grown));
    if (grown == NULL) {
        usage_error("out of memory parsing --disk '%s'", text);
        goto out;
    }
    args->disks = grown;
    disk.path = fields[0];
    fields[0] = NULL;
    args->disks[args->ndisks++] = disk;
    ret = 0;
 out:
    free_fields(fields, nfields);
    return ret;
}

/* --lease KEY,path=P,lockspace=L[,offset=N]; strings stored in args (owned). */
static int parse_lease(host_args *args, const char *text)
{
    char **fields = NULL;
    size_t nfields = 0;
    char *path = NULL;
    char *lockspace = NULL;
    unsigned long long offset = 0;
    bool have_offset = false;
    vmh_lease *grown;
    int ret = -1;

    if (split_fields(text, &fields, &nfields) < 0) {
        usage_error("out of memory parsing --lease '%s'", text);
        goto out;
    }
    if (fields[0][0] == '\0' || strchr(fields[0], '=') != NULL) {
        usage_error("--lease '%s': it must start with the lease key (KEY,path=P,lockspace=L)",
                    text);
        goto out;
    }
    for (size_t i = 1; i < nfields; i++) {
        char *value = strchr(fields[i], '=');

        if (value == NULL) {
            usage_error("--lease '%s': '%s' is not FIELD=VALUE", text, fields[i]);
            goto out;
        }
        *value++ = '\0';
        if (strcmp(fields[i], "path") == 0 || strcmp(fields[i], "lockspace") == 0) {
            char **slot = fields[i][0] == 'p' ? &path : &lockspace;

            if (*slot != NULL) {
                usage_error("--lease '%s': %s is given twice", text, fields[i]);
                goto out;
            }
            if (value[0] == '\0') {
                usage_error("--lease '%s': %s is empty", text, fields[i]);
                goto out;
            }
            if ((*slot = strdup(value)) == NULL) {
                usage_error("out of memory parsing --lease '%s'", text);
                goto out;
            }
        } else if (strcmp(fields[i], "offset") == 0) {
            if (have_offset) {
                usage_error("--lease '%s': offset is given twice", text);
                goto out;
            }
            if (parse_number(value, ULLONG_MAX, &offset) < 0) {
                usage_error("--lease '%s': offset '%s' is not a non-negative number", text,
                            value);
                goto out;
            }
            have_offset = true;
        } else {
            usage_error("--lease '%s': unknown field '%s' (expected path, lockspace or offset)",
                        text, fields[i]);
            goto out;
        }
    }
    if (path == NULL || lockspace == NULL) {
        usage_error("--lease '%s': path=P and lockspace=L are both required", text);
        goto out;
    }
    grown = realloc(args->leases, (args->nleases + 1) * sizeof(*grown));
    if (grown == NULL) {
        usage_error("out of memory parsing --lease '%s'", text);
        goto out;
    }
    args->leases = grown;
    args->leases[args->nleases].key = fields[0];
    args->leases[args->nleases].path = path;
    args->leases[args->nleases].lockspace = lockspace;
    args->leases[args->nleases].offset = offset;
    args->nleases++;
    fields[0] = NULL;
    path = NULL;
    lockspace = NULL;
    ret = 0;
 out:
    free(lockspace);
    free(path);
    free_fields(fields, nfields);
    return ret;
}

static void free_args(host_args *args)
{
    for (size_t i = 0; i < args->ndisks; i++)
        free((char *)args->disks[i].path);
    free(args->disks);
    for (size_t i = 0; i < args->nleases; i++) {
        free((char *)args->leases[i].key);
        free((char *)args->leases[i].path);
        free((char *)args->leases[i].lockspace);
    }
    free(args->leases);
}

static int parse_pid(const char *what, const char *text, pid_t *pid)
{
    unsigned long long value;

    if (parse_number(text, INT_MAX, &value) < 0 || value == 0)
        return usage_error("%s '%s' is not a process id (a number from 1 to %d)", what, text,
                           INT_MAX);
    *pid = (pid_t)value;
    return 0;
}

/* One option's value into args. */
static int parse_option(host_args *args, int opt, const char *value)
{
    unsigned long long number;

    switch (opt) {
    case 'P':
        if (value[0] == '\0')
            return usage_error("--plugin needs a path");
        args->plugin = value;
        return 0;
    case 'C':
        if (value[0] == '\0')
            return usage_error("--config needs a path");
        args->config = value;
        return 0;
    case 'n':
        if (value[0] == '\0')
            return usage_error("--name must not be empty");
        args->name = value;
        return 0;
    case 'u':
        if (parse_uuid(value, args->uuid) < 0)
            return usage_error("--uuid '%s' is not a UUID (expected 8-4-4-4-12 hex digits)",
                               value);
        return 0;
    case 'i':
        if (parse_number(value, INT_MAX, &number) < 0)
            return usage_error("--id '%s' is not a domain id (a number from 0 to %d)", value,
                               INT_MAX);
        args->id = (unsigned int)number;
        return 0;
    case 'd':
        return parse_disk(args, value);
    case 'l':
        return parse_lease(args, value);
    case 'a':
        for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
            if (strcmp(value, action_names[i]) == 0) {
                args->action = (virDomainLockFailureAction)i;
                return 0;
            }
        }
        return usage_error("--action '%s' is not one of default, poweroff, restart, pause, "
                           "ignore", value);
    case 'S':
        args->paused = true;
        return 0;
    case 'T':
        args->ignore_sigterm = true;
        return 0;
    case 'p':
        return parse_pid("--pid", value, &args->pid);
    case 's':
        args->state = value;
        return 0;
    case 't':
        if (parse_number(value, INT_MAX / 1000, &number) < 0)
            return usage_error("--timeout '%s' is not a number of seconds from 0 to %d", value,
                               INT_MAX / 1000);
        args->timeout_s = (int)number;
        return 0;
    case 'L':
        if (value[0] == '\0')
            return usage_error("--log needs a path");
        args->log_path = value;
        return 0;
    case 'h':
        return 0;       /* recorded in args->seen; shown once parsing is done */
    }
    return usage_error("internal error: unhandled option %d", opt);
}

static unsigned int option_bit(int opt, const char **spelling)
{
    for (size_t i = 0; i < sizeof(option_bits) / sizeof(option_bits[0]); i++) {
        if (option_bits[i].val == opt) {
            *spelling = option_bits[i].spelling;
            return option_bits[i].bit;
        }
    }
    *spelling = "?";
    return 0;
}

/* Parse argv into args; 0 ok, 1 when --help was shown, -1 on a usage error (reported). */
static int parse_args(int argc, char **argv, host_args *args)
{
    size_t cmd_index = sizeof(commands) / sizeof(commands[0]);
    unsigned int repeatable = OPT_DISK | OPT_LEASE;
    int opt;

    args->id = 1;
    args->timeout_s = -1;
    args->action = VIR_DOMAIN_LOCK_FAILURE_DEFAULT;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        const char *spelling;
        unsigned int bit;

        if (opt == '?')
            return usage_error("unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        bit = option_bit(opt, &spelling);
        if ((args->seen & bit) != 0 && (bit & repeatable) == 0)
            return usage_error("option '%s' is given twice", spelling);
        args->seen |= bit;
        if (parse_option(args, opt, optarg) < 0)
            return -1;
    }
    if (args->seen & OPT_HELP) {
        usage(stdout);
        return 1;
    }
    if (optind >= argc)
        return usage_error("no command given");
    args->command_name = argv[optind++];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, args->command_name) == 0)
            cmd_index = i;
    }
    if (cmd_index == sizeof(commands) / sizeof(commands[0]))
        return usage_error("unknown command '%s'", args->command_name);
    args->command = commands[cmd_index].id;

    for (size_t i = 0; i < sizeof(option_bits) / sizeof(option_bits[0]); i++) {
        unsigned int bit = option_bits[i].bit;

        if ((args->seen & bit) && !((commands[cmd_index].allowed | OPTS_GLOBAL) & bit))
            return usage_error("option '%s' is not valid with '%s'", option_bits[i].spelling,
                               args->command_name);
        if (!(args->seen & bit) && (commands[cmd_index].required & bit))
            return usage_error("'%s' needs %s", args->command_name, option_bits[i].spelling);
    }
    if (args->command == CMD_WAIT_EXIT) {
        if (optind >= argc)
            return usage_error("'wait-exit' needs a PID");
        if (parse_pid("wait-exit PID", argv[optind], &args->wait_pid) < 0)
            return -1;
        optind++;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s' after '%s'", argv[optind],
                           args->command_name);
    if ((args->command == CMD_ATTACH || args->command == CMD_DETACH) &&
        args->ndisks + args->nleases != 1)
        return usage_error("'%s' needs exactly one --disk or --lease (got %zu)",
                           args->command_name, args->ndisks + args->nleases);
    if (args->command != CMD_WAIT_EXIT && !(args->seen & OPT_UUID)) {
        vml_error err;

        vml_error_clear(&err);
        if (derive_uuid(args->name, args->uuid, &err) < 0)
            return usage_error("cannot derive a UUID from --name: %s", err.message);
        args->uuid_derived = true;
    }
    return 0;
}

static const char *plugin_path(const host_args *args)
{
    const char *env = getenv("VMLOCK_PLUGIN");

    if (args->plugin != NULL)
        return args->plugin;
    return env != NULL && env[0] != '\0' ? env : VMH_DEFAULT_PLUGIN;
}

/* The config path for drvInit, or NULL after reporting why none can be used. */
static const char *config_path(const host_args *args)
{
    const char *env = getenv("VMLOCK_PLUGIN_CONFIG");

    if (args->config != NULL)
        return args->config;
    if (env != NULL && env[0] != '\0')
        return env;
    if (access(NO_CONFIG_PATH, F_OK) == 0 || errno != ENOENT) {
        fprintf(stderr, "error: %s was to stand for 'no configuration' but it exists or "
                "cannot be checked; pass --config\n", NO_CONFIG_PATH);
        return NULL;
    }
    return NO_CONFIG_PATH;
}

static void print_error(const vml_error *err)
{
    fprintf(stderr, "error: %s\n", err->message[0] != '\0' ? err->message
                                                          : "An error occurred, but the cause is unknown");
}

static void print_state(const char *state)
{
    if (state != NULL)
        printf("state: %s\n", state);
    else
        printf("state: none\n");
}

/* start: guest, then (unless paused) the CPU-start acquire; on failure kill the guest. */
static int run_start(vmh_plugin *plugin, const host_args *args, vmh_domain *dom)
{
    const char *stub = getenv("VMLOCK_STUB_QEMU");
    vmh_guest_opts opts = {
        .stub_path = stub != NULL && stub[0] != '\0' ? stub : VMH_DEFAULT_STUB,
        .ignore_sigterm = args->ignore_sigterm,
        .log_fd = -1,
    };
    vml_error err;
    pid_t pid = -1;
    int ret = EXIT_PLUGIN;

    vml_error_clear(&err);
    if (args->log_path != NULL) {
        opts.log_fd = open(args->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (opts.log_fd < 0) {
            fprintf(stderr, "error: cannot open --log '%s': %s\n", args->log_path,
                    strerror(errno));
            goto out;
        }
    }
    if (vmh_guest_spawn(plugin, dom, &opts, &pid, &err) < 0) {
        print_error(&err);
        goto out;
    }
    if (!args->paused) {
        dom->pid = pid;
        if (vmh_acquire(plugin, dom, NULL, &err) < 0) {
            vml_error kill_err;

            print_error(&err);
            vml_error_clear(&kill_err);
            if (vmh_guest_kill(pid, &kill_err) < 0)
                fprintf(stderr, "error: %s\n", kill_err.message);
            goto out;
        }
    }
    printf("started %s pid %d\n", args->name, (int)pid);
    if (args->uuid_derived) {
        char uuid[37];

        format_uuid(args->uuid, uuid);
        printf("uuid %s\n", uuid);
    }
    ret = 0;
 out:
    if (opts.log_fd >= 0)
        close(opts.log_fd);
    return ret;
}

static int run_wait_exit(const host_args *args)
{
    vml_error err;
    bool exited = false;

    vml_error_clear(&err);
    if (vmh_wait_exit(args->wait_pid, args->timeout_s >= 0 ? args->timeout_s * 1000 : -1,
                      &exited, &err) < 0) {
        print_error(&err);
        return EXIT_PLUGIN;
    }
    if (!exited) {
        fprintf(stderr, "error: process %d is still running after %d seconds\n",
                (int)args->wait_pid, args->timeout_s);
        return 1;
    }
    return 0;
}

/* Run a domain command against the loaded plugin; the process exit status. */
static int run_command(vmh_plugin *plugin, const host_args *args)
{
    vmh_domain dom = {
        .name = args->name,
        .id = args->id,
        .pid = args->pid,
        .uri = NULL,
        .action = args->action,
        .leases = args->leases,
        .nleases = args->nleases,
        .disks = args->disks,
        .ndisks = args->ndisks,
    };
    vml_error err;
    char *state = NULL;
    int rc = -1;

    memcpy(dom.uuid, args->uuid, sizeof(dom.uuid));
    vml_error_clear(&err);
    switch (args->command) {
    case CMD_START:
        return run_start(plugin, args, &dom);
    case CMD_ACQUIRE:
        rc = vmh_acquire(plugin, &dom, args->state, &err);
        break;
    case CMD_RELEASE:
        rc = vmh_release(plugin, &dom, &state, &err);
        if (rc == 0)
            print_state(state);
        break;
    case CMD_INQUIRE:
        rc = vmh_inquire(plugin, &dom, &state, &err);
        if (rc == 0)
            print_state(state);
        break;
    case CMD_ATTACH:
        rc = args->ndisks == 1 ? vmh_attach_disk(plugin, &dom, &args->disks[0], &err)
                               : vmh_attach_lease(plugin, &dom, &args->leases[0], &err);
        break;
    case CMD_DETACH:
        rc = args->ndisks == 1 ? vmh_detach_disk(plugin, &dom, &args->disks[0], &err)
                               : vmh_detach_lease(plugin, &dom, &args->leases[0], &err);
        break;
    case CMD_WAIT_EXIT:
        break;
    }
    free(state);
    if (rc < 0) {
        print_error(&err);
        return EXIT_PLUGIN;
    }
    return 0;
}

int main(int argc, char **argv)
{
    host_args args;
    vmh_plugin *plugin = NULL;
    const char *log_outputs;
    const char *config;
    vml_error err;
    int parsed;
    int ret;

    memset(&args, 0, sizeof(args));
    vml_error_clear(&err);
    vml_log_set_program("vmlock-host");
    log_outputs = getenv("VMLOCK_HOST_LOG");
    if (log_outputs != NULL && log_outputs[0] != '\0' &&
        vml_log_set_outputs(log_outputs, &err) < 0) {
        fprintf(stderr, "vmlock-host: $VMLOCK_HOST_LOG: %s\n", err.message);
        ret = EXIT_USAGE;
        goto out;
    }
    parsed = parse_args(argc, argv, &args);
    if (parsed != 0) {
        ret = parsed > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    if (args.command == CMD_WAIT_EXIT) {
        ret = run_wait_exit(&args);
        goto out;
    }
    config = config_path(&args);
    if (config == NULL) {
        ret = EXIT_PLUGIN;
        goto out;
    }
    if (vmh_plugin_open(plugin_path(&args), config, &plugin, &err) < 0) {
        print_error(&err);
        ret = EXIT_PLUGIN;
        goto out;
    }
    ret = run_command(plugin, &args);
 out:
    fflush(stdout);
    vmh_plugin_close(plugin);
    free_args(&args);
    return ret;
}
