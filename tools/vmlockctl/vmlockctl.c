/* vmlockctl.c: admin CLI for vmlockd: lists leases, status, who holds a lease, breaks a dead host's lease, stops the daemon, checks domains and the host. */
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

#define COMMANDS "list, status, who, break, check-leases, shutdown, check or doctor"

typedef struct ctl_args {
    const char *socket_path;
    const char *config_path;    /* the plugin config (check, doctor) */
    bool json;
    const char *command;
    char **operands;            /* after the command: check's XML, doctor's directories, ... */
    size_t noperands;
    bool lease_form;            /* who --lease LOCKSPACE NAME (instead of who DISK) */
    bool force;                 /* shutdown --force */
    const char *dead_host;      /* break --dead-host HOST */
} ctl_args;

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlockctl [--socket PATH] [--config FILE] [--json] COMMAND [ARGS]\n"
"\n"
"Asks vmlockd, over its admin socket, what it holds, and manages it; checks domains and\n"
"the host.\n"
"\n"
"  --socket PATH   the admin socket (default $VMLOCKD_ADMIN_SOCK, else\n"
"                  " CTL_ADMIN_SOCKET_SYSTEM " as root,\n"
"                  $XDG_RUNTIME_DIR/vmlockd/" CTL_ADMIN_SOCKET_NAME " otherwise)\n"
"  --config FILE   the plugin's qemu-vmlockd.conf for check, doctor and who DISK (default the one\n"
"                  libvirt hands vmlockd.so: SYSCONFDIR/libvirt/qemu-vmlockd.conf as root)\n"
"  --json          print JSON instead of text\n"
"\n"
"commands:\n"
"  list            one line per lease: lockspace (or '(direct)'), resource, disk, mode and\n"
"                  its holders as \"domain 'NAME' uuid UUID pid PID since TIME\"\n"
"  status          the daemon's version, pid, uptime and counters\n"
"  who DISK        who holds the lease the plugin takes for DISK (computed from --config):\n"
"                  this daemon's table, else the owner record another host wrote; prints\n"
"                  state, generation and each holder's domain, uuid, pid, host and since\n"
"  who --lease LOCKSPACE NAME\n"
"                  the same for one lease ('' as LOCKSPACE: direct mode, NAME the disk)\n"
"  break LOCKSPACE NAME --dead-host HOST\n"
"                  take a lease from a holder known dead: refused unless who names its\n"
"                  holder on HOST; the daemon itself never breaks a lock held elsewhere\n"
"  check-leases    verify every held lease now (the periodic lost-lock check) and report\n"
"  shutdown [--force]\n"
"                  stop the daemon; refused while it holds leases unless --force (the\n"
"                  VMs then run unprotected)\n"
"  check XML       for every disk and lease of a libvirt domain definition (a file, or -\n"
"                  for standard input): is it locked, how, under which lease name, and is\n"
"                  that lease free or held, by whom; then: would this VM start?\n"
"  doctor [DIR...] lockspace directories exist and are writable, their filesystem and mount\n"
"                  options allow cross-host locking, OFD locks work there, the daemon\n"
"                  answers; DIRs (e.g. image directories in direct mode) are checked too\n"
"\n"
"Exit status: 0 success (check: the VM would start; doctor: nothing failed), 1 the daemon\n"
"failed, refused or could not be reached, or an input could not be read, 2 usage error (and\n"
"break refused: no or the wrong --dead-host), 3 check: the VM would not start / doctor: a\n"
"check failed, 4 check: some disk could not be judged.\n");
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
        { "lease", no_argument, NULL, 'l' },
        { "force", no_argument, NULL, 'f' },
        { "dead-host", required_argument, NULL, 'd' },
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
        case 'l':
            args->lease_form = true;
            break;
        case 'f':
            args->force = true;
            break;
        case 'd':
            if (optarg[0] == '\0')
                return usage_error("--dead-host needs a host name, got", optarg);
            args->dead_host = optarg;
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
    if (args->lease_form && strcmp(args->command, "who") != 0)
        return usage_error("--lease is an option of who, not of", args->command);
    if (args->force && strcmp(args->command, "shutdown") != 0)
        return usage_error("--force is an option of shutdown, not of", args->command);
    if (args->dead_host != NULL && strcmp(args->command, "break") != 0)
        return usage_error("--dead-host is an option of break, not of", args->command);
    if (strcmp(args->command, "list") == 0 || strcmp(args->command, "status") == 0 ||
        strcmp(args->command, "check-leases") == 0 || strcmp(args->command, "shutdown") == 0) {
        if (args->noperands > 0)
            return usage_error("unexpected argument", args->operands[0]);
    } else if (strcmp(args->command, "who") == 0) {
        if (args->lease_form && args->noperands != 2) {
            fprintf(stderr, "vmlockctl: who --lease needs a LOCKSPACE and a NAME, got %zu "
                    "argument(s)\nTry 'vmlockctl --help'.\n", args->noperands);
            return -1;
        }
        if (!args->lease_form && args->noperands != 1) {
            fprintf(stderr, "vmlockctl: who needs one DISK path (or --lease LOCKSPACE NAME), "
                    "got %zu argument(s)\nTry 'vmlockctl --help'.\n", args->noperands);
            return -1;
        }
        if (args->operands[args->noperands - 1][0] == '\0')
            return usage_error(args->lease_form ? "who --lease needs a lease name, got"
                                                : "who needs a disk path, got", "");
    } else if (strcmp(args->command, "break") == 0) {
        if (args->noperands != 2) {
            fprintf(stderr, "vmlockctl: break needs a LOCKSPACE and a NAME, got %zu "
                    "argument(s)\nTry 'vmlockctl --help'.\n", args->noperands);
            return -1;
        }
        if (args->operands[1][0] == '\0')
            return usage_error("break needs a lease name, got", "");
        if (args->dead_host == NULL) {
            fprintf(stderr, "vmlockctl: break needs --dead-host HOST, the host its holder ran "
                    "on and that you know is dead (who names it)\n"
                    "Try 'vmlockctl --help'.\n");
            return -1;
        }
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

/* The start of holder number index of a JSON "holders" array: its domain, uuid, id, pid;
 * the caller adds fields and ends it with json_holder_close. */
static void json_holder_open(u_int index, const vml_ls_owner *owner)
{
    char uuid[CTL_UUID_TEXT_LEN];

    ctl_format_uuid((const unsigned char *)owner->uuid, uuid);
    fputs(index == 0 ? "{\"domain\": " : ", {\"domain\": ", stdout);
    ctl_json_string(stdout, owner->name);
    printf(", \"uuid\": \"%s\", \"id\": %u, \"pid\": %u", uuid, owner->id, owner->pid);
}

/* Since when the holder holds it (text and microseconds), and the end of the holder. */
static void json_holder_close(int64_t since_usec)
{
    char since[64];

    ctl_format_time(since_usec, since, sizeof(since));
    fputs(", \"since\": ", stdout);
    ctl_json_string(stdout, since);
    printf(", \"since_usec\": %" PRId64 "}", since_usec);
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

        json_holder_open(h, &holder->owner);
        json_holder_close(holder->since_usec);
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

/* The fields STATUS version 2 adds, as text or JSON (after the version 1 fields). */
static void print_status2_extra(const vml_ext_status2_ret *st, bool json)
{
    if (json) {
        printf(", \"lost_leases\": %" PRIu64 ", \"check_rounds\": %" PRIu64
               ", \"check_interval_ms\": %u, \"keeper_pid\": %u, \"reexecs\": %u"
               ", \"adopted\": %u, \"epoch\": %" PRIu64,
               (uint64_t)st->lost_leases, (uint64_t)st->check_rounds, st->check_interval_ms,
               st->keeper_pid, st->reexecs, st->adopted, (uint64_t)st->epoch);
        return;
    }
    printf("lost leases: %" PRIu64 "\n", (uint64_t)st->lost_leases);
    if (st->check_interval_ms == 0)
        printf("lease checks: off\n");
    else
        printf("lease checks: every %u ms, %" PRIu64 " round(s) done\n", st->check_interval_ms,
               (uint64_t)st->check_rounds);
    if (st->keeper_pid == 0)
        printf("keeper: none (a crash of the daemon would drop every lock)\n");
    else
        printf("keeper: pid %u\n", st->keeper_pid);
    printf("re-execs: %u\nadopted at start: %u\nepoch: %" PRIu64 "\n", st->reexecs,
           st->adopted, (uint64_t)st->epoch);
}

/*
 * STATUS, version 2 when the daemon has it (vmlockd since the keeper), else version 1.
 * Both replies begin with the same fields, printed from the version 1 layout.
 */
static int run_status(vml_client *client, bool json, vml_error *err)
{
    vml_ext_status2_ret st2;
    vml_ext_status_ret st;
    bool have_v2;
    int ret = -1;

    memset(&st, 0, sizeof(st));
    memset(&st2, 0, sizeof(st2));
    have_v2 = vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                              VML_EXT_PROC_STATUS, NULL, NULL,
                              (xdrproc_t)xdr_vml_ext_status2_ret, &st2, err) == 0;
    if (have_v2) {
        st.daemon_version = st2.daemon_version;
        st.pid = st2.pid;
        st.uptime_usec = st2.uptime_usec;
        st.lockspaces = st2.lockspaces;
        st.leases = st2.leases;
        st.owners = st2.owners;
        st.clients = st2.clients;
        st.acquires = st2.acquires;
        st.conflicts = st2.conflicts;
        st.owner_kills = st2.owner_kills;
    } else if (err->code != VIR_ERR_RPC ||
               strstr(err->message, "Cannot find program") == NULL ||
               vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                               VML_EXT_PROC_STATUS, NULL, NULL,
                               (xdrproc_t)xdr_vml_ext_status_ret, &st, err) < 0) {
        /* Only "no such version" falls back; anything else is the answer. */
        goto out;
    }
    vml_error_clear(err);
    if (json) {
        fputs("{\"daemon_version\": ", stdout);
        ctl_json_string(stdout, st.daemon_version);
        printf(", \"pid\": %u, \"uptime_usec\": %" PRId64 ", \"lockspaces\": %u, "
               "\"leases\": %u, \"owners\": %u, \"clients\": %u, \"acquires\": %" PRIu64
               ", \"conflicts\": %" PRIu64 ", \"owner_kills\": %" PRIu64,
               st.pid, (int64_t)st.uptime_usec, st.lockspaces, st.leases, st.owners,
               st.clients, (uint64_t)st.acquires, (uint64_t)st.conflicts,
               (uint64_t)st.owner_kills);
        if (have_v2)
            print_status2_extra(&st2, true);
        fputs("}\n", stdout);
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
        if (have_v2)
            print_status2_extra(&st2, false);
    }
    ret = 0;
 out:
    if (have_v2)
        xdr_free((xdrproc_t)xdr_vml_ext_status2_ret, (char *)&st2);   /* st borrowed from it */
    else
        xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&st);
    return ret;
}

/* ---- who, break, check-leases, shutdown (extension program version 2) ---- */

/* One call of procedure proc of the extension program, version 2; ret is filled on success. */
static int call_v2(vml_client *client, int proc, xdrproc_t args_proc, void *args,
                   xdrproc_t ret_proc, void *ret, vml_error *err)
{
    return vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, proc, args_proc,
                           args, ret_proc, ret, err);
}

/* WHO for (lockspace, name); on success *ret (zeroed on entry) is the caller's to xdr_free. */
static int who_lease(vml_client *client, const char *lockspace, const char *name,
                     vml_ext_who_ret *ret, vml_error *err)
{
    vml_ext_who_args req = {
        .lockspace = (char *)lockspace, .name = (char *)name, .disk = (char *)"", .flags = 0,
    };

    return call_v2(client, VML_EXT_PROC_WHO, (xdrproc_t)xdr_vml_ext_who_args, &req,
                   (xdrproc_t)xdr_vml_ext_who_ret, ret, err);
}

static const char *who_state_name(vml_ext_who_state state)
{
    switch (state) {
    case VML_EXT_WHO_HELD:
        return "held";
    case VML_EXT_WHO_FREE:
        return "free";
    case VML_EXT_WHO_STALE:
        return "stale";
    case VML_EXT_WHO_LOST:
        return "lost";
    }
    return "unknown";
}

static const char *who_source_name(vml_ext_who_source source)
{
    return source == VML_EXT_WHO_LOCAL ? "local" : "record";
}

static void print_lockspace_text(const char *lockspace)
{
    if (lockspace == NULL || lockspace[0] == '\0')
        fputs("(direct)", stdout);
    else
        ctl_text_string(stdout, lockspace);
}

static void print_who_entry_text(const vml_ext_who_entry *e)
{
    /* A free or stale record names the last holder: say so, it holds nothing now. */
    const char *role = e->state == VML_EXT_WHO_HELD || e->state == VML_EXT_WHO_LOST
                       ? "holder" : "last holder";

    print_lockspace_text(e->lockspace);
    putchar(' ');
    ctl_text_string(stdout, e->name);
    printf(": %s (%s), %s, generation %" PRIu64, who_state_name(e->state),
           e->source == VML_EXT_WHO_LOCAL ? "this daemon's table" : "owner record",
           (e->flags & VML_LS_ACQUIRE_SHARED) ? "shared" : "exclusive", (uint64_t)e->generation);
    if (e->epoch != 0)
        printf(" (epoch %" PRIu64 ")", (uint64_t)e->epoch);
    putchar('\n');
    for (u_int h = 0; h < e->holders.holders_len; h++) {
        const vml_ext_who_holder *holder = &e->holders.holders_val[h];
        char uuid[CTL_UUID_TEXT_LEN];
        char since[64];

        ctl_format_uuid((const unsigned char *)holder->owner.uuid, uuid);
        ctl_format_time(holder->since_usec, since, sizeof(since));
        printf("  %s: domain '", role);
        ctl_text_string(stdout, holder->owner.name);
        printf("' uuid %s pid %u host ", uuid, holder->owner.pid);
        ctl_text_string(stdout, holder->host);
        printf(" since %s (daemon pid %u)\n", since, holder->daemon_pid);
    }
}

static void print_who_entry_json(const vml_ext_who_entry *e)
{
    fputs("{\"lockspace\": ", stdout);
    ctl_json_string(stdout, e->lockspace);
    fputs(", \"name\": ", stdout);
    ctl_json_string(stdout, e->name);
    fputs(", \"path\": ", stdout);
    ctl_json_string(stdout, e->path);
    fputs(", \"disk\": ", stdout);
    ctl_json_string(stdout, e->disk);
    printf(", \"source\": \"%s\", \"state\": \"%s\", \"mode\": \"%s\", \"generation\": %" PRIu64
           ", \"epoch\": %" PRIu64 ", \"holders\": [", who_source_name(e->source),
           who_state_name(e->state), (e->flags & VML_LS_ACQUIRE_SHARED) ? "shared" : "exclusive",
           (uint64_t)e->generation, (uint64_t)e->epoch);
    for (u_int h = 0; h < e->holders.holders_len; h++) {
        const vml_ext_who_holder *holder = &e->holders.holders_val[h];

        json_holder_open(h, &holder->owner);
        fputs(", \"host\": ", stdout);
        ctl_json_string(stdout, holder->host);
        fputs(", \"boot_id\": ", stdout);
        ctl_json_string(stdout, holder->boot_id);
        printf(", \"daemon_pid\": %u", holder->daemon_pid);
        json_holder_close(holder->since_usec);
    }
    fputs("]}", stdout);
}

/* who: disk is NULL for who --lease; lockspace and name are the lease asked about. */
static int run_who(vml_client *client, bool json, const char *disk, const char *lockspace,
                   const char *name, vml_error *err)
{
    vml_ext_who_ret who;
    int ret = -1;

    memset(&who, 0, sizeof(who));
    if (who_lease(client, lockspace, name, &who, err) < 0)
        goto out;
    if (json) {
        fputs("{\"disk\": ", stdout);
        if (disk != NULL)
            ctl_json_string(stdout, disk);
        else
            fputs("null", stdout);
        fputs(", \"lockspace\": ", stdout);
        ctl_json_string(stdout, lockspace);
        fputs(", \"name\": ", stdout);
        ctl_json_string(stdout, name);
        fputs(", \"entries\": [", stdout);
        for (u_int i = 0; i < who.entries.entries_len; i++) {
            fputs(i == 0 ? "\n  " : ",\n  ", stdout);
            print_who_entry_json(&who.entries.entries_val[i]);
        }
        fputs(who.entries.entries_len == 0 ? "]}\n" : "\n]}\n", stdout);
    } else {
        if (disk != NULL) {
            fputs("disk ", stdout);
            ctl_text_string(stdout, disk);
            fputs(" -> lease ", stdout);
            print_lockspace_text(lockspace);
            putchar(' ');
            ctl_text_string(stdout, name);
            putchar('\n');
        }
        for (u_int i = 0; i < who.entries.entries_len; i++)
            print_who_entry_text(&who.entries.entries_val[i]);
        if (who.entries.entries_len == 0) {
            print_lockspace_text(lockspace);
            putchar(' ');
            ctl_text_string(stdout, name);
            fputs(": not held (this daemon does not hold it and no owner record names a "
                  "holder)\n", stdout);
        }
    }
    ret = 0;
 out:
    xdr_free((xdrproc_t)xdr_vml_ext_who_ret, (char *)&who);
    return ret;
}

/*
 * break: the daemon refuses to break a lock held elsewhere, but a lease it holds locally or a
 * stale record it would take on our word alone; so first make sure the operator's dead host
 * is the one WHO names.  *status is CTL_EXIT_USAGE when we refused (reported on stderr).
 */
static int run_break(vml_client *client, const ctl_args *args, int *status, vml_error *err)
{
    const char *lockspace = args->operands[0];
    const char *name = args->operands[1];
    vml_ext_break_args req = { .lockspace = (char *)lockspace, .name = (char *)name, .flags = 0 };
    vml_ext_break_ret broke;
    vml_ext_who_ret who;
    u_int nholders = 0;
    int ret = -1;

    memset(&who, 0, sizeof(who));
    memset(&broke, 0, sizeof(broke));
    if (who_lease(client, lockspace, name, &who, err) < 0)
        goto out;
    for (u_int i = 0; i < who.entries.entries_len; i++) {
        const vml_ext_who_entry *e = &who.entries.entries_val[i];

        for (u_int h = 0; h < e->holders.holders_len; h++) {
            const char *host = e->holders.holders_val[h].host;

            nholders++;
            if (host == NULL || strcmp(host, args->dead_host) != 0) {
                fflush(stdout);
                fputs("vmlockctl: refusing to break ", stderr);
                ctl_text_string(stderr, lockspace);
                putc(' ', stderr);
                ctl_text_string(stderr, name);
                fputs(": --dead-host is '", stderr);
                ctl_text_string(stderr, args->dead_host);
                fputs("' but who names its holder domain '", stderr);
                ctl_text_string(stderr, e->holders.holders_val[h].owner.name);
                fputs("' on host '", stderr);
                ctl_text_string(stderr, host);
                fputs("'\n", stderr);
                *status = CTL_EXIT_USAGE;
                ret = 0;
                goto out;
            }
        }
    }
    if (nholders == 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_OPERATION_INVALID,
                      "nothing to break: who names no holder of lease '%s' in lockspace '%s'",
                      name, lockspace);
        goto out;
    }
    if (call_v2(client, VML_EXT_PROC_BREAK, (xdrproc_t)xdr_vml_ext_break_args, &req,
                (xdrproc_t)xdr_vml_ext_break_ret, &broke, err) < 0)
        goto out;
    if (args->json) {
        fputs("{\"lockspace\": ", stdout);
        ctl_json_string(stdout, lockspace);
        fputs(", \"name\": ", stdout);
        ctl_json_string(stdout, name);
        fputs(", \"dead_host\": ", stdout);
        ctl_json_string(stdout, args->dead_host);
        printf(", \"result\": \"%s\", \"holders\": %u, \"generation\": %" PRIu64 "}\n",
               broke.result == VML_EXT_BREAK_LOCAL ? "local" : "record", broke.holders,
               (uint64_t)broke.generation);
    } else {
        fputs("broke ", stdout);
        print_lockspace_text(lockspace);
        putchar(' ');
        ctl_text_string(stdout, name);
        if (broke.result == VML_EXT_BREAK_LOCAL) {
            printf(": this daemon's lease taken from its %u holder(s) (their <on_lockfailure> "
                   "applied)", broke.holders);
        } else {
            fputs(": the stale owner record of host ", stdout);
            ctl_text_string(stdout, args->dead_host);
            fputs(" cleared", stdout);
        }
        printf(", generation %" PRIu64 "\n", (uint64_t)broke.generation);
    }
    *status = CTL_EXIT_OK;
    ret = 0;
 out:
    xdr_free((xdrproc_t)xdr_vml_ext_break_ret, (char *)&broke);
    xdr_free((xdrproc_t)xdr_vml_ext_who_ret, (char *)&who);
    return ret;
}

static int run_check_leases(vml_client *client, bool json, vml_error *err)
{
    vml_ext_check_args req = { .flags = 0 };
    vml_ext_check_ret checked;

    memset(&checked, 0, sizeof(checked));
    if (call_v2(client, VML_EXT_PROC_CHECK_NOW, (xdrproc_t)xdr_vml_ext_check_args, &req,
                (xdrproc_t)xdr_vml_ext_check_ret, &checked, err) < 0)
        return -1;
    if (json)
        printf("{\"checked\": %u, \"lost\": %u, \"lost_total\": %" PRIu64 "}\n", checked.checked,
               checked.lost, (uint64_t)checked.lost_total);
    else
        printf("checked %u lease(s): %u found lost (%" PRIu64 " since the daemon started)\n",
               checked.checked, checked.lost, (uint64_t)checked.lost_total);
    return 0;
}

static int run_shutdown(vml_client *client, bool json, bool force, vml_error *err)
{
    vml_ext_shutdown_args req = { .flags = force ? VML_EXT_SHUTDOWN_FORCE : 0 };
    vml_ext_shutdown_ret stopped;

    memset(&stopped, 0, sizeof(stopped));
    if (call_v2(client, VML_EXT_PROC_SHUTDOWN, (xdrproc_t)xdr_vml_ext_shutdown_args, &req,
                (xdrproc_t)xdr_vml_ext_shutdown_ret, &stopped, err) < 0)
        return -1;
    if (json)
        printf("{\"leases_dropped\": %u, \"owners\": %u}\n", stopped.leases_dropped,
               stopped.owners);
    else if (stopped.leases_dropped == 0)
        fputs("vmlockd is stopping (it held no lease)\n", stdout);
    else
        printf("vmlockd is stopping: %u lease(s) of %u domain(s) dropped; those VMs keep "
               "running unprotected\n", stopped.leases_dropped, stopped.owners);
    return 0;
}

/* ---- plugin configuration (check, doctor, who DISK) ---- */

/* A program the plugin runs, overridable through the environment (for tests). */
static const char *tool_path(const char *env_name, const char *fallback)
{
    const char *value = getenv(env_name);

    return value != NULL && value[0] == '/' ? value : fallback;
}

/* The plugin configuration to read: as ctl_plugin_config_path, and a --config that is missing is an error. */
static int resolve_plugin_config(const ctl_args *args, const char **path, char **owned,
                                 vml_error *err)
{
    if (ctl_plugin_config_path(args->config_path, path, owned, err) < 0)
        return -1;
    /* libvirt always names the file and a missing one means the defaults; but a file named
     * on our command line that is not there is a typo worth stopping for. */
    if (args->config_path != NULL && access(*path, F_OK) < 0) {
        vml_error_set_errno(err, VIR_FROM_CONF, errno, "cannot read --config %s", *path);
        return -1;
    }
    return 0;
}

/*
 * Every command that only talks to the daemon: connect, run, close.  *status is the exit
 * status when 0 is returned; -1 with err when the daemon failed, refused or is unreachable,
 * or who DISK could not compute the disk's lease.
 */
static int run_query(const ctl_args *args, const char *admin_socket, int *status, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    drv_resource_tools tools = {
        .lvs = tool_path("VMLOCKCTL_LVS", DRV_RESOURCE_LVS),
        .scsi_id = tool_path("VMLOCKCTL_SCSI_ID", DRV_RESOURCE_SCSI_ID),
    };
    const char *config_path;
    char *owned_config = NULL;
    char *lockspace = NULL;
    char *name = NULL;
    int ret = -1;

    *status = CTL_EXIT_OK;
    /* Computed before connecting: a configuration problem is not the daemon's. */
    if (strcmp(args->command, "who") == 0 && !args->lease_form &&
        (resolve_plugin_config(args, &config_path, &owned_config, err) < 0 ||
         ctl_check_disk_lease(config_path, &tools, args->operands[0], &lockspace, &name,
                              err) < 0))
        goto out;
    if (vml_client_connect(&client, admin_socket, err) < 0)
        goto out;
    if (strcmp(args->command, "list") == 0)
        ret = run_list(&client, args->json, err);
    else if (strcmp(args->command, "status") == 0)
        ret = run_status(&client, args->json, err);
    else if (strcmp(args->command, "who") == 0 && args->lease_form)
        ret = run_who(&client, args->json, NULL, args->operands[0], args->operands[1], err);
    else if (strcmp(args->command, "who") == 0)
        ret = run_who(&client, args->json, args->operands[0], lockspace, name, err);
    else if (strcmp(args->command, "break") == 0)
        ret = run_break(&client, args, status, err);
    else if (strcmp(args->command, "check-leases") == 0)
        ret = run_check_leases(&client, args->json, err);
    else
        ret = run_shutdown(&client, args->json, args->force, err);
 out:
    vml_client_close(&client);
    free(name);
    free(lockspace);
    free(owned_config);
    return ret;
}

/* ---- check and doctor ---- */

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

    if (resolve_plugin_config(args, &config_path, &owned_config, err) < 0)
        goto out;
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
    if (strcmp(args.command, "check") != 0 && strcmp(args.command, "doctor") != 0) {
        if (run_query(&args, admin_socket, &status, &err) < 0) {
            fflush(stdout);
            fprintf(stderr, "error: %s\n", err.message);
            status = CTL_EXIT_FAILED;
        }
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
