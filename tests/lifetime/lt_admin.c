/* lt_admin.c: a minimal client of the extension program's version 2 admin procedures (STATUS, WHO, SHUTDOWN, CHECK_NOW, BREAK) for the lifetime tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vml_wire.h"

/*
 * usage: lt_admin ADMIN_SOCKET COMMAND [ARGS]
 *   status                       key=value lines of STATUS (version 2)
 *   who --disk PATH              one line per lease the disk may be (WHO)
 *   who --lease LOCKSPACE NAME
 *   shutdown [--force]           "dropped=N owners=M"
 *   check                        "checked=N lost=M lost_total=T" once the round is done
 *   break LOCKSPACE NAME         "result=local|record holders=N generation=G"
 * A daemon error is printed as "error: MESSAGE" on stderr, exit status 1; usage errors 2.
 */

static int call(const char *sock, int proc, xdrproc_t args_proc, void *args, xdrproc_t ret_proc,
                void *ret)
{
    vml_client client = { .fd = -1 };
    vml_error err = { 0 };
    int rc = -1;

    if (vml_client_connect(&client, sock, &err) == 0 &&
        vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, proc, args_proc,
                        args, ret_proc, ret, &err) == 0)
        rc = 0;
    if (rc < 0)
        fprintf(stderr, "error: %s\n", err.message);
    vml_client_close(&client);
    return rc;
}

static bool_t no_args(XDR *xdrs, void *unused)
{
    (void)xdrs; (void)unused;
    return TRUE;
}

static int do_status(const char *sock)
{
    vml_ext_status2_ret st = { 0 };

    if (call(sock, VML_EXT_PROC_STATUS, (xdrproc_t)no_args, NULL,
             (xdrproc_t)xdr_vml_ext_status2_ret, &st) < 0)
        return 1;
    printf("pid=%u\nleases=%u\nowners=%u\nclients=%u\nlockspaces=%u\nacquires=%llu\n"
           "conflicts=%llu\nowner_kills=%llu\nlost_leases=%llu\ncheck_rounds=%llu\n"
           "check_interval_ms=%u\nkeeper_pid=%u\nreexecs=%u\nadopted=%u\n",
           st.pid, st.leases, st.owners, st.clients, st.lockspaces,
           (unsigned long long)st.acquires, (unsigned long long)st.conflicts,
           (unsigned long long)st.owner_kills, (unsigned long long)st.lost_leases,
           (unsigned long long)st.check_rounds, st.check_interval_ms, st.keeper_pid,
           st.reexecs, st.adopted);
    xdr_free((xdrproc_t)xdr_vml_ext_status2_ret, (char *)&st);
    return 0;
}

static const char *state_name(vml_ext_who_state state)
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
    return "?";
}

static void print_uuid(const char uuid[16])
{
    const unsigned char *u = (const unsigned char *)uuid;

    for (int i = 0; i < 16; i++)
        printf("%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
}

static int do_who(const char *sock, int argc, char **argv)
{
    vml_ext_who_args args = { .lockspace = (char *)"", .name = (char *)"", .disk = (char *)"" };
    vml_ext_who_ret ret = { { 0, NULL } };

    if (argc == 2 && strcmp(argv[0], "--disk") == 0) {
        args.disk = argv[1];
    } else if (argc == 3 && strcmp(argv[0], "--lease") == 0) {
        args.lockspace = argv[1];
        args.name = argv[2];
    } else {
        fprintf(stderr, "usage: lt_admin SOCKET who --disk PATH | --lease LOCKSPACE NAME\n");
        return 2;
    }
    if (call(sock, VML_EXT_PROC_WHO, (xdrproc_t)xdr_vml_ext_who_args, &args,
             (xdrproc_t)xdr_vml_ext_who_ret, &ret) < 0)
        return 1;
    for (u_int i = 0; i < ret.entries.entries_len; i++) {
        const vml_ext_who_entry *e = &ret.entries.entries_val[i];

        printf("source=%s state=%s lockspace=%s name=%s generation=%llu holders=",
               e->source == VML_EXT_WHO_LOCAL ? "local" : "record", state_name(e->state),
               e->lockspace, e->name, (unsigned long long)e->generation);
        for (u_int h = 0; h < e->holders.holders_len; h++) {
            const vml_ext_who_holder *hd = &e->holders.holders_val[h];

            printf("%sdomain:%s,pid:%u,host:%s,daemon_pid:%u,uuid:", h > 0 ? ";" : "",
                   hd->owner.name, hd->owner.pid, hd->host, hd->daemon_pid);
            print_uuid(hd->owner.uuid);
        }
        printf("\n");
    }
    xdr_free((xdrproc_t)xdr_vml_ext_who_ret, (char *)&ret);
    return 0;
}

static int do_shutdown(const char *sock, int argc, char **argv)
{
    vml_ext_shutdown_args args = { .flags = 0 };
    vml_ext_shutdown_ret ret = { 0 };

    if (argc == 1 && strcmp(argv[0], "--force") == 0) {
        args.flags = VML_EXT_SHUTDOWN_FORCE;
    } else if (argc != 0) {
        fprintf(stderr, "usage: lt_admin SOCKET shutdown [--force]\n");
        return 2;
    }
    if (call(sock, VML_EXT_PROC_SHUTDOWN, (xdrproc_t)xdr_vml_ext_shutdown_args, &args,
             (xdrproc_t)xdr_vml_ext_shutdown_ret, &ret) < 0)
        return 1;
    printf("dropped=%u owners=%u\n", ret.leases_dropped, ret.owners);
    return 0;
}

static int do_check(const char *sock)
{
    vml_ext_check_args args = { .flags = 0 };
    vml_ext_check_ret ret = { 0 };

    if (call(sock, VML_EXT_PROC_CHECK_NOW, (xdrproc_t)xdr_vml_ext_check_args, &args,
             (xdrproc_t)xdr_vml_ext_check_ret, &ret) < 0)
        return 1;
    printf("checked=%u lost=%u lost_total=%llu\n", ret.checked, ret.lost,
           (unsigned long long)ret.lost_total);
    return 0;
}

static int do_break(const char *sock, int argc, char **argv)
{
    vml_ext_break_args args = { .flags = 0 };
    vml_ext_break_ret ret = { 0 };

    if (argc != 2) {
        fprintf(stderr, "usage: lt_admin SOCKET break LOCKSPACE NAME\n");
        return 2;
    }
    args.lockspace = argv[0];
    args.name = argv[1];
    if (call(sock, VML_EXT_PROC_BREAK, (xdrproc_t)xdr_vml_ext_break_args, &args,
             (xdrproc_t)xdr_vml_ext_break_ret, &ret) < 0)
        return 1;
    printf("result=%s holders=%u generation=%llu\n",
           ret.result == VML_EXT_BREAK_LOCAL ? "local" : "record", ret.holders,
           (unsigned long long)ret.generation);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: lt_admin ADMIN_SOCKET status|who|shutdown|check|break ...\n");
        return 2;
    }
    if (strcmp(argv[2], "status") == 0 && argc == 3)
        return do_status(argv[1]);
    if (strcmp(argv[2], "who") == 0)
        return do_who(argv[1], argc - 3, argv + 3);
    if (strcmp(argv[2], "shutdown") == 0)
        return do_shutdown(argv[1], argc - 3, argv + 3);
    if (strcmp(argv[2], "check") == 0 && argc == 3)
        return do_check(argv[1]);
    if (strcmp(argv[2], "break") == 0)
        return do_break(argv[1], argc - 3, argv + 3);
    fprintf(stderr, "lt_admin: unknown command '%s'\n", argv[2]);
    return 2;
}
