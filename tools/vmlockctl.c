/* vmlockctl.c: admin CLI for vmlockd: lists the leases held and shows the daemon's status over its admin socket. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vml_wire.h"

#define EXIT_DAEMON 1
#define EXIT_USAGE 2

#define ADMIN_SOCKET_NAME "vmlockd-admin-sock"
#define ADMIN_SOCKET_SYSTEM "/run/vmlockd/" ADMIN_SOCKET_NAME

/* A daemon whose cursor never reaches 0 must not keep us paging forever. */
#define LIST_PAGES_MAX 65536

typedef struct ctl_args {
    const char *socket_path;
    bool json;
    const char *command;
} ctl_args;

/* All pages of one LIST, kept until printed so that output is all or nothing. */
typedef struct lease_pages {
    vml_ext_list_ret *pages;
    size_t npages;
} lease_pages;

static void usage(FILE *out)
{
    fprintf(out,
"usage: vmlockctl [--socket PATH] [--json] COMMAND\n"
"\n"
"Asks vmlockd, over its admin socket, what it holds.\n"
"\n"
"  --socket PATH   the admin socket (default $VMLOCKD_ADMIN_SOCK, else\n"
"                  " ADMIN_SOCKET_SYSTEM " as root,\n"
"                  $XDG_RUNTIME_DIR/vmlockd/" ADMIN_SOCKET_NAME " otherwise)\n"
"  --json          print JSON instead of text\n"
"\n"
"commands:\n"
"  list      one line per lease: lockspace (or '(direct)'), resource, disk, mode and\n"
"            its holders as \"domain 'NAME' uuid UUID pid PID since TIME\"\n"
"  status    the daemon's version, pid, uptime and counters\n"
"\n"
"Exit status: 0 success, 1 the daemon failed or could not be reached, 2 usage error.\n");
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
        fprintf(stderr, "vmlockctl: no command given (list or status)\nTry 'vmlockctl --help'.\n");
        return -1;
    }
    args->command = argv[optind++];
    if (strcmp(args->command, "list") != 0 && strcmp(args->command, "status") != 0)
        return usage_error("unknown command (expected list or status):", args->command);
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    return 0;
}

/* The admin socket to use; *owned is set when the path was allocated (caller frees). */
static const char *socket_path(const ctl_args *args, char **owned)
{
    const char *env = getenv("VMLOCKD_ADMIN_SOCK");
    const char *runtime;

    *owned = NULL;
    if (args->socket_path != NULL)
        return args->socket_path;
    if (env != NULL && env[0] != '\0')
        return env;
    if (geteuid() == 0)
        return ADMIN_SOCKET_SYSTEM;
    runtime = getenv("XDG_RUNTIME_DIR");
    if (runtime == NULL || runtime[0] == '\0') {
        fprintf(stderr, "error: XDG_RUNTIME_DIR is not set, so the admin socket is unknown; "
                "pass --socket or set VMLOCKD_ADMIN_SOCK\n");
        return NULL;
    }
    if (asprintf(owned, "%s/vmlockd/%s", runtime, ADMIN_SOCKET_NAME) < 0) {
        *owned = NULL;
        fprintf(stderr, "error: out of memory\n");
        return NULL;
    }
    return *owned;
}

/* ---- output helpers ---- */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*
 * Print text as a JSON string literal.  Quotes, backslashes and control characters are
 * escaped; bytes that are not UTF-8 (paths need not be) become U+FFFD, since JSON text must
 * be UTF-8.
 */
static void json_string(FILE *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)(text != NULL ? text : "");
    size_t n = strlen((const char *)s);

    fputc('"', out);
    for (size_t i = 0; i < n;) {
        size_t len;

        switch (s[i]) {
        case '"': fputs("\\\"", out); i++; continue;
        case '\\': fputs("\\\\", out); i++; continue;
        case '\b': fputs("\\b", out); i++; continue;
        case '\f': fputs("\\f", out); i++; continue;
        case '\n': fputs("\\n", out); i++; continue;
        case '\r': fputs("\\r", out); i++; continue;
        case '\t': fputs("\\t", out); i++; continue;
        default: break;
        }
        if (s[i] < 0x20 || s[i] == 0x7f) {
            fprintf(out, "\\u%04x", s[i]);
            i++;
            continue;
        }
        len = utf8_sequence(s + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        fwrite(s + i, 1, len, out);
        i += len;
    }
    fputc('"', out);
}

/* Print text for a terminal: control characters and backslashes escaped, so one lease stays one line. */
static void text_string(FILE *out, const char *text)
{
    for (const unsigned char *s = (const unsigned char *)(text != NULL ? text : ""); *s; s++) {
        if (*s < 0x20 || *s == 0x7f)
            fprintf(out, "\\x%02x", *s);
        else if (*s == '\\')
            fputs("\\\\", out);
        else
            fputc(*s, out);
    }
}

static void format_uuid(const char *uuid, char out[37])
{
    const unsigned char *u = (const unsigned char *)uuid;

    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* ISO 8601 UTC with microseconds, e.g. 2025-01-31T12:00:00.000123Z */
static void format_time(int64_t usec, char *out, size_t len)
{
    time_t secs = (time_t)(usec / 1000000);
    long frac = (long)(usec % 1000000);
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, len, "@%" PRId64 "us", usec);
        return;
    }
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static const char *lease_mode(const vml_ext_lease *lease)
{
    return (lease->flags & VML_LS_ACQUIRE_SHARED) ? "shared" : "exclusive";
}

static void print_lease_text(const vml_ext_lease *lease)
{
    if (lease->lockspace == NULL || lease->lockspace[0] == '\0')
        fputs("(direct)", stdout);
    else
        text_string(stdout, lease->lockspace);
    putchar(' ');
    text_string(stdout, lease->name);
    putchar(' ');
    if (lease->disk == NULL || lease->disk[0] == '\0')
        putchar('-');
    else
        text_string(stdout, lease->disk);
    printf(" %s", lease_mode(lease));
    for (u_int h = 0; h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];
        char uuid[37];
        char since[64];

        format_uuid(holder->owner.uuid, uuid);
        format_time(holder->since_usec, since, sizeof(since));
        fputs(h == 0 ? " " : ", ", stdout);
        fputs("domain '", stdout);
        text_string(stdout, holder->owner.name);
        printf("' uuid %s pid %u since %s", uuid, holder->owner.pid, since);
    }
    putchar('\n');
}

static void print_lease_json(const vml_ext_lease *lease)
{
    fputs("{\"lockspace\": ", stdout);
    json_string(stdout, lease->lockspace);
    printf(", \"direct\": %s, \"resource\": ",
           lease->lockspace == NULL || lease->lockspace[0] == '\0' ? "true" : "false");
    json_string(stdout, lease->name);
    fputs(", \"path\": ", stdout);
    json_string(stdout, lease->path);
    fputs(", \"disk\": ", stdout);
    json_string(stdout, lease->disk);
    printf(", \"mode\": \"%s\", \"holders\": [", lease_mode(lease));
    for (u_int h = 0; h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];
        char uuid[37];
        char since[64];

        format_uuid(holder->owner.uuid, uuid);
        format_time(holder->since_usec, since, sizeof(since));
        fputs(h == 0 ? "{\"domain\": " : ", {\"domain\": ", stdout);
        json_string(stdout, holder->owner.name);
        printf(", \"uuid\": \"%s\", \"id\": %u, \"pid\": %u, \"since\": ", uuid,
               holder->owner.id, holder->owner.pid);
        json_string(stdout, since);
        printf(", \"since_usec\": %" PRId64 "}", (int64_t)holder->since_usec);
    }
    fputs("]}", stdout);
}

/* ---- commands ---- */

static void free_pages(lease_pages *list)
{
    for (size_t i = 0; i < list->npages; i++)
        xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&list->pages[i]);
    free(list->pages);
    list->pages = NULL;
    list->npages = 0;
}

/* Page through LIST until next_cursor is 0; on success list holds every page (caller frees). */
static int fetch_leases(vml_client *client, lease_pages *list, vml_error *err)
{
    unsigned int cursor = 0;

    for (;;) {
        vml_ext_list_args req = { .cursor = cursor, .max = VML_EXT_LIST_MAX, .flags = 0 };
        vml_ext_list_ret *grown;
        vml_ext_list_ret page;

        if (list->npages == LIST_PAGES_MAX) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "the daemon's lease list did not end after %d pages", LIST_PAGES_MAX);
            return -1;
        }
        memset(&page, 0, sizeof(page));
        if (vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                            VML_EXT_PROC_LIST, (xdrproc_t)xdr_vml_ext_list_args, &req,
                            (xdrproc_t)xdr_vml_ext_list_ret, &page, err) < 0) {
            xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&page);
            return -1;
        }
        grown = realloc(list->pages, (list->npages + 1) * sizeof(*grown));
        if (grown == NULL) {
            xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&page);
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot store the lease list");
            return -1;
        }
        list->pages = grown;
        list->pages[list->npages++] = page;
        if (page.next_cursor == 0)
            return 0;
        if (page.next_cursor == cursor) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "the daemon's lease list did not advance past cursor %u", cursor);
            return -1;
        }
        cursor = page.next_cursor;
    }
}

static int run_list(vml_client *client, bool json, vml_error *err)
{
    lease_pages list = { NULL, 0 };
    bool first = true;
    int ret = -1;

    if (fetch_leases(client, &list, err) < 0)
        goto out;
    if (json)
        fputs("[", stdout);
    for (size_t p = 0; p < list.npages; p++) {
        for (u_int i = 0; i < list.pages[p].leases.leases_len; i++) {
            const vml_ext_lease *lease = &list.pages[p].leases.leases_val[i];

            if (json) {
                fputs(first ? "\n  " : ",\n  ", stdout);
                print_lease_json(lease);
            } else {
                print_lease_text(lease);
            }
            first = false;
        }
    }
    if (json)
        fputs(first ? "]\n" : "\n]\n", stdout);
    ret = 0;
 out:
    free_pages(&list);
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
        json_string(stdout, st.daemon_version);
        printf(", \"pid\": %u, \"uptime_usec\": %" PRId64 ", \"lockspaces\": %u, "
               "\"leases\": %u, \"owners\": %u, \"clients\": %u, \"acquires\": %" PRIu64
               ", \"conflicts\": %" PRIu64 ", \"owner_kills\": %" PRIu64 "}\n",
               st.pid, (int64_t)st.uptime_usec, st.lockspaces, st.leases, st.owners,
               st.clients, (uint64_t)st.acquires, (uint64_t)st.conflicts,
               (uint64_t)st.owner_kills);
    } else {
        fputs("version: ", stdout);
        text_string(stdout, st.daemon_version);
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

/* Connect and run the command; -1 with err when the daemon failed or could not be reached. */
static int run(const ctl_args *args, const char *path, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    int ret = -1;

    if (vml_client_connect(&client, path, err) < 0)
        goto out;
    if (strcmp(args->command, "list") == 0)
        ret = run_list(&client, args->json, err);
    else
        ret = run_status(&client, args->json, err);
 out:
    vml_client_close(&client);
    return ret;
}

int main(int argc, char **argv)
{
    ctl_args args = { NULL, false, NULL };
    char *owned_path = NULL;
    const char *path;
    vml_error err;
    int parsed;
    int ret = EXIT_DAEMON;

    vml_error_clear(&err);
    parsed = parse_args(argc, argv, &args);
    if (parsed != 0) {
        ret = parsed > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    path = socket_path(&args, &owned_path);
    if (path == NULL)
        goto out;
    if (run(&args, path, &err) < 0) {
        fflush(stdout);
        fprintf(stderr, "error: %s\n", err.message);
        goto out;
    }
    ret = 0;
 out:
    if (fflush(stdout) != 0 && ret == 0) {
        fprintf(stderr, "error: cannot write the output: %s\n", strerror(errno));
        ret = EXIT_DAEMON;
    }
    free(owned_path);
    return ret;
}
