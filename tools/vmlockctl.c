/* vmlockctl.c: admin CLI for vmlockd: lists leases, shows the daemon's status, checks a domain's disks and the host's setup. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_admin.h"
#include "ctl_check.h"
#include "ctl_doctor.h"
#include "ctl_output.h"
#include "ctl_plugin.h"
#include "vml_log.h"
#include "vml_wire.h"

#define COMMANDS "list, status, check or doctor"

typedef struct ctl_args {
    const char *socket_path;
    const char *config_path;    /* the plugin config (check, doctor) */
    bool json;
    const char *command;
    char **operands;            /* after the command: check's XML, doctor's directories */
    size_t noperands;
} ctl_args;

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlockctl [--socket PATH] [--config FILE] [--json] COMMAND [ARGS]\n"
"\n"
"Asks vmlockd, over its admin socket, what it holds; checks domains and the host.\n"
"\n"
"  --socket PATH   the admin socket (default $VMLOCKD_ADMIN_SOCK, else\n"
"                  " CTL_ADMIN_SOCKET_SYSTEM " as root,\n"
"                  $XDG_RUNTIME_DIR/vmlockd/" CTL_ADMIN_SOCKET_NAME " otherwise)\n"
"  --config FILE   the plugin's qemu-vmlockd.conf for check and doctor (default the one\n"
"                  libvirt hands vmlockd.so: SYSCONFDIR/libvirt/qemu-vmlockd.conf as root)\n"
"  --json          print JSON instead of text\n"
"\n"
"commands:\n"
"  list            one line per lease: lockspace (or '(direct)'), resource, disk, mode and\n"
"                  its holders as \"domain 'NAME' uuid UUID pid PID since TIME\"\n"
"  status          the daemon's version, pid, uptime and counters\n"
"  check XML       for every disk and lease of a libvirt domain definition (a file, or -\n"
"                  for standard input): is it locked, how, under which lease name, and is\n"
"                  that lease free or held, by whom; then: would this VM start?\n"
"  doctor [DIR...] lockspace directories exist and are writable, their filesystem and mount\n"
"                  options allow cross-host locking, OFD locks work there, the daemon\n"
"                  answers; DIRs (e.g. image directories in direct mode) are checked too\n"
"\n"
"Exit status: 0 success (check: the VM would start; doctor: nothing failed), 1 the daemon\n"
"failed or could not be reached, or an input could not be read, 2 usage error, 3 check: the\n"
"VM would not start / doctor: a check failed, 4 check: some disk could not be judged.\n");
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "vmlockctl: %s '%s'\nTry 'vmlockctl --help'.\n", what, arg);
    return -1;
}

/* 0 ok, 1 --help shown, -1 usage error (reported). */
static int parse_args(int argc, char **argv, ctl_args *args)
{
    static const struct option options[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (optarg[0] == '\0')
                return usage_error("--socket needs a path, got", optarg);
            args->socket_path = optarg;
            break;
        case 'c':
            if (optarg[0] == '\0')
                return usage_error("--config needs a file, got", optarg);
            args->config_path = optarg;
            break;
        case 'j':
            args->json = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            return usage_error("this option needs a value:", argv[optind - 1]);
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vmlockctl: no command given (" COMMANDS ")\n"
                "Try 'vmlockctl --help'.\n");
        return -1;
    }
    args->command = argv[optind++];
    args->operands = argv + optind;
    args->noperands = (size_t)(argc - optind);
    if (strcmp(args->command, "list") == 0 || strcmp(args->command, "status") == 0) {
        if (args->noperands > 0)
            return usage_error("unexpected argument", args->operands[0]);
    } else if (strcmp(args->command, "check") == 0) {
        if (args->noperands == 0) {
            fprintf(stderr, "vmlockctl: check needs a domain definition (an XML file, or - "
                    "for standard input)\nTry 'vmlockctl --help'.\n");
            return -1;
        }
        if (args->noperands > 1)
            return usage_error("check takes one domain definition; unexpected argument",
                               args->operands[1]);
        if (args->operands[0][0] == '\0')
            return usage_error("check needs a file name, got", args->operands[0]);
    } else if (strcmp(args->command, "doctor") == 0) {
        for (size_t i = 0; i < args->noperands; i++) {
            if (args->operands[i][0] == '\0')
                return usage_error("doctor needs directory names, got", args->operands[i]);
        }
    } else {
        return usage_error("unknown command (expected " COMMANDS "):", args->command);
    }
    return 0;
}

/* ---- list and status ---- */

static const char *lease_mode(const vml_ext_lease *lease)
{
    return (lease->flags & VML_LS_ACQUIRE_SHARED) ? "shared" : "exclusive";
}

static void print_lease_text(const vml_ext_lease *lease)
{
    if (lease->lockspace == NULL || lease->lockspace[0] == '\0')
        fputs("(direct)", stdout);
    else
        ctl_text_string(stdout, lease->lockspace);
    putchar(' ');
    ctl_text_string(stdout, lease->name);
    putchar(' ');
    if (lease->disk == NULL || lease->disk[0] == '\0')
        putchar('-');
    else
        ctl_text_string(stdout, lease->disk);
    printf(" %s", lease_mode(lease));
    for (u_int h = 0; h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];
        char uuid[CTL_UUID_TEXT_LEN];
        char since[64];

        ctl_format_uuid((const unsigned char *)holder->owner.uuid, uuid);
        ctl_format_time(holder->since_usec, since, sizeof(since));
        fputs(h == 0 ? " " : ", ", stdout);
        fputs("domain '", stdout);
        ctl_text_string(stdout, holder->owner.name);
        printf("' uuid %s pid %u since %s", uuid, holder->owner.pid, since);
    }
    putchar('\n');
}

static void print_lease_json(const vml_ext_lease *lease)
{
    fputs("{\"lockspace\": ", stdout);
    ctl_json_string(stdout, lease->lockspace);
    printf(", \"direct\": %s, \"resource\": ",
           lease->lockspace == NULL || lease->lockspace[0] == '\0' ? "true" : "false");
    ctl_json_string(stdout, lease->name);
    fputs(", \"path\": ", stdout);
    ctl_json_string(stdout, lease->path);
    fputs(", \"disk\": ", stdout);
    ctl_json_string(stdout, lease->disk);
    printf(", \"mode\": \"%s\", \"holders\": [", lease_mode(lease));
    for (u_int h = 0; h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];
        char uuid[CTL_UUID_TEXT_LEN];
        char since[64];

        ctl_format_uuid((const unsigned char *)holder->owner.uuid, uuid);
        ctl_format_time(holder->since_usec, since, sizeof(since));
        fputs(h == 0 ? "{\"domain\": " : ", {\"domain\": ", stdout);
        ctl_json_string(stdout, holder->owner.name);
        printf(", \"uuid\": \"%s\", \"id\": %u, \"pid\": %u, \"since\": ", uuid,
               holder->owner.id, holder->owner.pid);
        ctl_json_string(stdout, since);
        printf(", \"since_usec\": %" PRId64 "}", (int64_t)holder->since_usec);
    }
    fputs("]}", stdout);
}

typedef struct list_printer {
    bool json;
    bool first;
} list_printer;

static int print_one_lease(const vml_ext_lease *lease, void *opaque)
{
    list_printer *printer = opaque;

    if (printer->json) {
        fputs(printer->first ? "\n  " : ",\n  ", stdout);
        print_lease_json(lease);
    } else {
        print_lease_text(lease);
    }
    printer->first = false;
    return 0;
}

static int run_list(vml_client *client, bool json, vml_error *err)
{
    ctl_leases list = { NULL, 0 };
    list_printer printer = { json, true };
    int ret = -1;

    if (ctl_leases_fetch(client, &list, err) < 0)
        goto out;
    if (json)
        fputs("[", stdout);
    ctl_leases_each(&list, print_one_lease, &printer);
    if (json)
        fputs(printer.first ? "]\n" : "\n]\n", stdout);
    ret = 0;
 out:
    ctl_leases_clear(&list);
    return ret;
}

static int run_status(vml_client *client, bool json, vml_error *err)
{
    vml_ext_status_ret st;
    int ret = -1;

    memset(&st, 0, sizeof(st));
    if (vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_STATUS,
                        NULL, NULL, (xdrproc_t)xdr_vml_ext_status_ret, &st, err) < 0)
        goto out;
    if (json) {
        fputs("{\"daemon_version\": ", stdout);
        ctl_json_string(stdout, st.daemon_version);
        printf(", \"pid\": %u, \"uptime_usec\": %" PRId64 ", \"lockspaces\": %u, "
               "\"leases\": %u, \"owners\": %u, \"clients\": %u, \"acquires\": %" PRIu64
               ", \"conflicts\": %" PRIu64 ", \"owner_kills\": %" PRIu64 "}\n",
               st.pid, (int64_t)st.uptime_usec, st.lockspaces, st.leases, st.owners,
               st.clients, (uint64_t)st.acquires, (uint64_t)st.conflicts,
               (uint64_t)st.owner_kills);
    } else {
        fputs("version: ", stdout);
        ctl_text_string(stdout, st.daemon_version);
        printf("\npid: %u\nuptime: %" PRId64 ".%06" PRId64 "s\nlockspaces: %u\nleases: %u\n"
               "owners: %u\nclients: %u\nacquires: %" PRIu64 "\nconflicts: %" PRIu64
               "\nowner kills: %" PRIu64 "\n",
               st.pid, (int64_t)st.uptime_usec / 1000000,
               ((int64_t)st.uptime_usec % 1000000 + 1000000) % 1000000, st.lockspaces,
               st.leases, st.owners, st.clients, (uint64_t)st.acquires,
               (uint64_t)st.conflicts, (uint64_t)st.owner_kills);
    }
    ret = 0;
 out:
    xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&st);
    return ret;
}

/* list or status: connect, run, close; -1 with err when the daemon failed or is unreachable. */
static int run_query(const ctl_args *args, const char *admin_socket, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    int ret = -1;

    if (vml_client_connect(&client, admin_socket, err) < 0)
        goto out;
    if (strcmp(args->command, "list") == 0)
        ret = run_list(&client, args->json, err);
    else
        ret = run_status(&client, args->json, err);
 out:
    vml_client_close(&client);
    return ret;
}

/* ---- check and doctor ---- */

/* A program the plugin runs, overridable through the environment (for tests). */
static const char *tool_path(const char *env_name, const char *fallback)
{
    const char *value = getenv(env_name);

    return value != NULL && value[0] == '/' ? value : fallback;
}

/* Run check or doctor; *status is the exit status.  -1 with err when nothing was reported. */
static int run_diagnosis(const ctl_args *args, const char *admin_socket, int *status,
                         vml_error *err)
{
    drv_resource_tools tools = {
        .lvs = tool_path("VMLOCKCTL_LVS", DRV_RESOURCE_LVS),
        .scsi_id = tool_path("VMLOCKCTL_SCSI_ID", DRV_RESOURCE_SCSI_ID),
    };
    const char *config_path;
    char *owned_config = NULL;
    int ret = -1;

    if (ctl_plugin_config_path(args->config_path, &config_path, &owned_config, err) < 0)
        goto out;
    /* libvirt always names the file and a missing one means the defaults; but a file named
     * on our command line that is not there is a typo worth stopping for. */
    if (args->config_path != NULL && access(config_path, F_OK) < 0) {
        vml_error_set_errno(err, VIR_FROM_CONF, errno, "cannot read --config %s", config_path);
        goto out;
    }
    if (strcmp(args->command, "check") == 0) {
        ctl_check_options opts = {
            .domain_xml = args->operands[0],
            .plugin_config = config_path,
            .admin_socket = admin_socket,
            .json = args->json,
            .tools = &tools,
        };

        ret = ctl_check_run(&opts, status, err);
    } else {
        ctl_doctor_options opts = {
            .plugin_config = config_path,
            .admin_socket = admin_socket,
            .dirs = args->operands,
            .ndirs = args->noperands,
            .mountinfo = tool_path("VMLOCKCTL_MOUNTINFO", CTL_DOCTOR_MOUNTINFO),
            .lvs = tools.lvs,
            .scsi_id = tools.scsi_id,
            .json = args->json,
        };

        ret = ctl_doctor_run(&opts, status, err);
    }
 out:
    free(owned_config);
    return ret;
}

int main(int argc, char **argv)
{
    ctl_args args = { 0 };
    char *owned_socket = NULL;
    const char *admin_socket;
    vml_error err;
    int parsed;
    int status = CTL_EXIT_FAILED;

    vml_error_clear(&err);
    vml_log_set_program("vmlockctl");
    parsed = parse_args(argc, argv, &args);
    if (parsed != 0) {
        status = parsed > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (ctl_admin_socket_path(args.socket_path, &admin_socket, &owned_socket, &err) < 0) {
        fprintf(stderr, "error: %s\n", err.detail);
        goto out;
    }
    if (strcmp(args.command, "list") == 0 || strcmp(args.command, "status") == 0) {
        if (run_query(&args, admin_socket, &err) < 0) {
            fflush(stdout);
            fprintf(stderr, "error: %s\n", err.message);
            goto out;
        }
        status = CTL_EXIT_OK;
    } else if (run_diagnosis(&args, admin_socket, &status, &err) < 0) {
        fflush(stdout);
        fprintf(stderr, "error: %s\n", err.message);
        status = CTL_EXIT_FAILED;
    } else if (status == CTL_EXIT_FAILED && err.code != 0) {
        fflush(stdout);
        fprintf(stderr, "error: %s\n", err.message);
    }
 out:
    if (fflush(stdout) != 0 && status == CTL_EXIT_OK) {
        fprintf(stderr, "error: cannot write the output: %s\n", strerror(errno));
        status = CTL_EXIT_FAILED;
    }
    free(owned_socket);
    return status;
}
