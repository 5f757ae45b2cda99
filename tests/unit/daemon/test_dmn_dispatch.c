/* test_dmn_dispatch.c: unit tests of the dispatcher: the policy table row by row, and encoded messages fed to dmn_dispatch_message. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_test.h"
#include "vml_wire.h"
#include "dmn_dispatch.h"

typedef enum { CALL_OK, CALL_ERROR, CALL_DROPPED } call_result;

typedef struct fixture {
    dmn_lockspaces *lockspaces;
    dmn_owners *owners;
    dmn_context ctx;
    char dir[64];
} fixture;

/* The reply of the last call. */
static vml_rpc_header last_hdr;
static size_t last_len;
static char last_why[256];

/*
 * Encode a message with hdr fields and args, dispatch it on session, decode the reply:
 * CALL_OK (ret decoded when ret_proc), CALL_ERROR (err filled) or CALL_DROPPED.
 */
static call_result dispatch_raw(fixture *fx, dmn_session *session, const unsigned char *msg,
                                size_t len, xdrproc_t ret_proc, void *ret, vml_error *err)
{
    unsigned char *reply = NULL;
    size_t reply_len = 0;
    call_result result = CALL_DROPPED;

    vml_error_clear(err);
    last_why[0] = '\0';
    if (dmn_dispatch_message(&fx->ctx, session, msg, len, &reply, &reply_len, last_why,
                             sizeof(last_why)) < 0)
        return CALL_DROPPED;
    last_len = reply_len;
    if (vml_wire_decode_header(reply, reply_len, &last_hdr) < 0) {
        printf("#   undecodable reply header\n");
        goto out;
    }
    if (last_hdr.status == VML_RPC_ERROR) {
        vml_rpc_error payload;
        memset(&payload, 0, sizeof(payload));
        if (vml_wire_decode_payload(reply, reply_len, (xdrproc_t)xdr_vml_rpc_error, &payload) == 0)
            vml_wire_error_from_payload(&payload, err);
        xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&payload);
        result = CALL_ERROR;
        goto out;
    }
    if (ret_proc != NULL && vml_wire_decode_payload(reply, reply_len, ret_proc, ret) < 0) {
        printf("#   undecodable reply payload\n");
        goto out;
    }
    result = CALL_OK;
 out:
    free(reply);
    return result;
}

static call_result call_full(fixture *fx, dmn_session *session, unsigned int prog,
                             unsigned int vers, int proc, int type, int status,
                             unsigned int serial, xdrproc_t args_proc, const void *args,
                             xdrproc_t ret_proc, void *ret, vml_error *err)
{
    vml_rpc_header hdr = {
        .prog = prog, .vers = vers, .proc = proc, .type = type, .serial = serial,
        .status = status,
    };
    unsigned char *msg = NULL;
    size_t len = 0;
    call_result result;

    if (vml_wire_encode(&hdr, args_proc, args, &msg, &len) < 0) {
        printf("#   cannot encode the call\n");
        return CALL_DROPPED;
    }
    result = dispatch_raw(fx, session, msg, len, ret_proc, ret, err);
    free(msg);
    return result;
}

static call_result call(fixture *fx, dmn_session *session, unsigned int prog, int proc,
                        xdrproc_t args_proc, const void *args, vml_error *err)
{
    return call_full(fx, session, prog, 1, proc, VML_RPC_CALL, VML_RPC_OK, 7, args_proc, args,
                     NULL, NULL, err);
}

static bool error_is(const vml_error *err, int code, int domain, const char *message)
{
    bool ok = err->code == code && err->domain == domain && strcmp(err->message, message) == 0;

    if (!ok)
        printf("#   got %d/%d '%s'\n#   want %d/%d '%s'\n", err->code, err->domain, err->message,
               code, domain, message);
    return ok;
}

static void fixture_init(fixture *fx)
{
    vml_error err;

    memset(fx, 0, sizeof(*fx));
    dmn_lockspaces_new(&fx->lockspaces, &err);
    dmn_owners_new(1600, &fx->owners, &err);
    fx->ctx.lockspaces = fx->lockspaces;
    fx->ctx.owners = fx->owners;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_dmn_dispatch.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        fx->dir[0] = '\0';
}

static void fixture_free(fixture *fx)
{
    char cmd[128];

    dmn_lockspaces_free(fx->lockspaces);
    dmn_owners_free(fx->owners);
    if (fx->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
        if (system(cmd) != 0)
            printf("# cannot remove %s\n", fx->dir);
    }
}

/* ---- the table ---- */

typedef struct expected_row {
    unsigned int prog;
    unsigned int vers;
    int proc;
    const char *name;
    unsigned int policy;
    bool has_flags;
    unsigned int allowed_flags;
} expected_row;

/* The documented policy (task brief and facts section 5.3), independent of the table. */
static const expected_row expected[] = {
    { VML_LS_PROGRAM, 1, 1, "REGISTER", DMN_MAIN_SOCKET, true, 0 },
    { VML_LS_PROGRAM, 1, 2, "RESTRICT", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true, 0 },
    { VML_LS_PROGRAM, 1, 3, "NEW", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true, 0 },
    { VML_LS_PROGRAM, 1, 4, "CREATE_RESOURCE", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true, 0 },
    { VML_LS_PROGRAM, 1, 5, "DELETE_RESOURCE", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true, 0 },
    { VML_LS_PROGRAM, 1, 6, "ACQUIRE_RESOURCE", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true,
      VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE },
    { VML_LS_PROGRAM, 1, 7, "RELEASE_RESOURCE", DMN_MAIN_SOCKET | DMN_NEEDS_OWNER, true, 0 },
    { VML_LS_PROGRAM, 1, 8, "CREATE_LOCKSPACE", DMN_MAIN_SOCKET, false, 0 },
    { VML_EXT_PROGRAM, 1, 1, "BATCH_ACQUIRE", DMN_MAIN_SOCKET, true, 0 },
    { VML_EXT_PROGRAM, 1, 2, "BATCH_RELEASE", DMN_MAIN_SOCKET, true, 0 },
    { VML_EXT_PROGRAM, 1, 3, "LIST", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true, 0 },
    { VML_EXT_PROGRAM, 1, 4, "STATUS", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, false, 0 },
    { VML_EXT_PROGRAM, 2, 1, "BATCH_ACQUIRE", DMN_MAIN_SOCKET, true, 0 },
    { VML_EXT_PROGRAM, 2, 2, "BATCH_RELEASE", DMN_MAIN_SOCKET, true, 0 },
    { VML_EXT_PROGRAM, 2, 3, "LIST", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true, 0 },
    { VML_EXT_PROGRAM, 2, 4, "STATUS", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, false, 0 },
    { VML_EXT_PROGRAM, 2, 5, "INQUIRE", DMN_MAIN_SOCKET, true, 0 },
    { VML_EXT_PROGRAM, 2, 6, "WHO", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true, 0 },
    { VML_EXT_PROGRAM, 2, 7, "SHUTDOWN", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true,
      VML_EXT_SHUTDOWN_FORCE },
    { VML_EXT_PROGRAM, 2, 8, "CHECK_NOW", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true, 0 },
    { VML_EXT_PROGRAM, 2, 9, "BREAK", DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED, true, 0 },
};

static void test_table(void)
{
    size_t n;
    const dmn_proc *table = dmn_dispatch_table(&n);
    size_t nexpected = sizeof(expected) / sizeof(expected[0]);

    VML_CHECK(n == nexpected, "the table has one row per procedure of both programs");
    for (size_t e = 0; e < nexpected; e++) {
        const dmn_proc *row = NULL;
        char what[160];
        size_t hits = 0;

        for (size_t i = 0; i < n; i++) {
            if (table[i].prog == expected[e].prog && table[i].vers == expected[e].vers &&
                table[i].proc == expected[e].proc) {
                row = &table[i];
                hits++;
            }
        }
        snprintf(what, sizeof(what), "%s v%u: exactly one row", expected[e].name,
                 expected[e].vers);
        if (!VML_CHECK(hits == 1, what))
            continue;
        snprintf(what, sizeof(what), "%s v%u: name, handler", expected[e].name, expected[e].vers);
        VML_CHECK(strcmp(row->name, expected[e].name) == 0 && row->handler != NULL &&
                  row->args_proc != NULL, what);
        snprintf(what, sizeof(what), "%s: policy flags are the documented ones", expected[e].name);
        VML_CHECK(row->policy == expected[e].policy, what);
        snprintf(what, sizeof(what), "%s: flags argument and allowed bits", expected[e].name);
        VML_CHECK((row->flags_offset != DMN_NO_FLAGS_FIELD) == expected[e].has_flags &&
                  row->allowed_flags == expected[e].allowed_flags, what);
        snprintf(what, sizeof(what), "%s: served on exactly one socket", expected[e].name);
        VML_CHECK(((row->policy & DMN_MAIN_SOCKET) != 0) != ((row->policy & DMN_ADMIN_SOCKET) != 0),
                  what);
    }
}

/* ---- envelope handling ---- */

static void test_envelope(void)
{
    fixture fx;
    dmn_session main_s;
    vml_error err;
    vml_ls_restrict_args restrict_args = { .flags = 0 };
    vml_rpc_header hdr = { .prog = VML_LS_PROGRAM, .vers = 1, .proc = 2, .type = VML_RPC_CALL,
                           .serial = 1, .status = VML_RPC_OK };
    unsigned char *msg = NULL;
    size_t len = 0;

    fixture_init(&fx);
    dmn_session_init(&main_s, DMN_SOCKET_MAIN, 1234, 0);

    VML_CHECK(call_full(&fx, &main_s, 0x12345678, 1, 1, VML_RPC_CALL, VML_RPC_OK, 42, NULL, NULL,
                        NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Cannot find program 305419896 version 1"),
              "unknown program: VIR_ERR_RPC 'Cannot find program N version V'");
    VML_CHECK(last_hdr.prog == 0x12345678 && last_hdr.vers == 1 && last_hdr.proc == 1 &&
              last_hdr.serial == 42 && last_hdr.type == VML_RPC_REPLY &&
              last_hdr.status == VML_RPC_ERROR, "the error reply echoes prog/vers/proc/serial");
    VML_CHECK(call_full(&fx, &main_s, VML_LS_PROGRAM, 2, 1, VML_RPC_CALL, VML_RPC_OK, 1, NULL,
                        NULL, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Cannot find program 245874415 version 2"),
              "unknown version of a known program: 'Cannot find program'");
    VML_CHECK(call_full(&fx, &main_s, VML_EXT_PROGRAM, 9, 1, VML_RPC_CALL, VML_RPC_OK, 1, NULL,
                        NULL, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Cannot find program 1447906379 version 9"),
              "unknown version of the extension program");
    VML_CHECK(call(&fx, &main_s, VML_LS_PROGRAM, 9, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "unknown procedure: 9"),
              "unknown procedure: 'unknown procedure: N'");
    VML_CHECK(call(&fx, &main_s, VML_LS_PROGRAM, 0, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "unknown procedure: 0"),
              "procedure 0 is unknown");
    VML_CHECK(call(&fx, &main_s, VML_EXT_PROGRAM, 5, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "unknown procedure: 5"),
              "unknown procedure of the extension program");
    VML_CHECK(call_full(&fx, &main_s, VML_LS_PROGRAM, 1, 2, VML_RPC_REPLY, VML_RPC_OK, 3,
                        (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, NULL, NULL,
                        &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "unexpected message type 1"),
              "a REPLY sent to the daemon: 'unexpected message type 1', client kept");
    VML_CHECK(call_full(&fx, &main_s, VML_LS_PROGRAM, 1, 2, VML_RPC_CALL, VML_RPC_ERROR, 3,
                        (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, NULL, NULL,
                        &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Unexpected message status"),
              "a non-OK status: 'Unexpected message status', client kept");

    /* Malformed bodies drop the client. */
    vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, &msg, &len);
    VML_CHECK(dispatch_raw(&fx, &main_s, msg, len - 4, NULL, NULL, &err) == CALL_DROPPED &&
              strstr(last_why, "RESTRICT") != NULL, "a truncated payload drops the client, naming the procedure");
    {
        unsigned char *longer = calloc(1, len + 4);
        memcpy(longer, msg, len);
        VML_CHECK(dispatch_raw(&fx, &main_s, longer, len + 4, NULL, NULL, &err) == CALL_DROPPED,
                  "trailing bytes after the arguments drop the client");
        free(longer);
    }
    VML_CHECK(dispatch_raw(&fx, &main_s, msg, 20, NULL, NULL, &err) == CALL_DROPPED,
              "a message shorter than a header drops the client");
    free(msg);
    msg = NULL;
    {
        vml_rpc_header status_hdr = { .prog = VML_EXT_PROGRAM, .vers = 1, .proc = 4,
                                      .type = VML_RPC_CALL, .serial = 1, .status = VML_RPC_OK };
        dmn_session admin_s;
        unsigned char *longer;

        dmn_session_init(&admin_s, DMN_SOCKET_ADMIN, 1, 0);
        vml_wire_encode(&status_hdr, NULL, NULL, &msg, &len);
        longer = calloc(1, len + 4);
        memcpy(longer, msg, len);
        VML_CHECK(dispatch_raw(&fx, &admin_s, longer, len + 4, NULL, NULL, &err) == CALL_DROPPED,
                  "bytes after a call that takes no arguments drop the client");
        free(longer);
        free(msg);
        dmn_session_clear(&admin_s);
    }
    /* A string with an embedded NUL names another file than the peer meant. */
    {
        static const unsigned char acquire_nul[] = {
            0, 0, 0, 44, 0x0e, 0xa7, 0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 0,
            0, 0, 0, 0,                 /* path "" */
            0, 0, 0, 3, 'a', 0, 'b', 0, /* name "a\0b" */
            0, 0, 0, 0,                 /* flags */
        };
        VML_CHECK(dispatch_raw(&fx, &main_s, acquire_nul, sizeof(acquire_nul), NULL, NULL,
                               &err) == CALL_DROPPED, "a string with an embedded NUL drops the client");
    }
    dmn_session_clear(&main_s);
    fixture_free(&fx);
}

/* ---- the policy ---- */

static void test_policy(void)
{
    fixture fx;
    dmn_session s, admin_s;
    vml_error err;
    vml_ls_register_args reg = { .owner = { .name = "vm1", .id = 1, .pid = (u_int)getpid() } };
    vml_ls_restrict_args restrict_args = { 0 };
    vml_ls_resource_args res = { .path = "", .name = "/nonexistent/disk", .flags = 0 };
    vml_ls_create_lockspace_args cl;
    vml_ls_new_args new_args;
    char lsdir[128];
    struct stat st;

    fixture_init(&fx);
    dmn_session_init(&s, DMN_SOCKET_MAIN, getpid(), 0);
    dmn_session_init(&admin_s, DMN_SOCKET_ADMIN, getpid(), 0);
    memset(reg.owner.uuid, 0xab, sizeof(reg.owner.uuid));

    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_INVALID, VIR_FROM_RPC,
                       "Requested operation is not valid: lock owner details have not been registered"),
              "ACQUIRE before REGISTER: OPERATION_INVALID 'lock owner details have not been registered'");
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_RESTRICT,
                   (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, &err) == CALL_ERROR &&
              err.code == VIR_ERR_OPERATION_INVALID, "RESTRICT before REGISTER is refused");

    /* CREATE_LOCKSPACE needs no owner and is idempotent. */
    snprintf(lsdir, sizeof(lsdir), "%s/a/b", fx.dir);
    cl.path = lsdir;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                   (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, &err) == CALL_OK &&
              last_len == VML_WIRE_MIN_MESSAGE && last_hdr.type == VML_RPC_REPLY &&
              last_hdr.status == VML_RPC_OK && last_hdr.serial == 7,
              "CREATE_LOCKSPACE without REGISTER: a 28-byte OK reply echoing the serial");
    VML_CHECK(stat(lsdir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
              "the lockspace directory is created with its parents, mode 0700");
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                   (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, &err) == CALL_OK,
              "CREATE_LOCKSPACE again succeeds (idempotent)");
    cl.path = "";
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                   (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, &err) == CALL_OK,
              "CREATE_LOCKSPACE of the default lockspace succeeds");

    reg.owner.id = 0;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                   (xdrproc_t)xdr_vml_ls_register_args, &reg, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_INVALID, VIR_FROM_RPC,
                       "Requested operation is not valid: lock owner details have not been registered"),
              "REGISTER with id 0 is refused like an unregistered owner");
    reg.owner.id = 1;
    reg.flags = 2;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                   (xdrproc_t)xdr_vml_ls_register_args, &reg, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                       "invalid argument: unsupported flags (0x2) in function REGISTER"),
              "REGISTER with flags: INVALID_ARG naming the procedure");
    reg.flags = 0;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                   (xdrproc_t)xdr_vml_ls_register_args, &reg, &err) == CALL_OK &&
              s.registered && strcmp(s.owner.name, "vm1") == 0 && s.owner.pid == (u_int)getpid(),
              "REGISTER stores the owner on the session");
    VML_CHECK(dmn_session_is_holder(&s), "a session whose peer is the registered pid is the holder");
    res.flags = 4;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                       "invalid argument: unsupported flags (0x4) in function ACQUIRE_RESOURCE"),
              "ACQUIRE with an unknown flag bit: INVALID_ARG");
    res.flags = 0;
    res.path = "/no/such/lockspace";
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC,
                       "internal error: Lockspace for path /no/such/lockspace does not exist"),
              "ACQUIRE in an unknown lockspace: INTERNAL_ERROR 'does not exist'");
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_RELEASE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              err.code == VIR_ERR_INTERNAL_ERROR, "RELEASE in an unknown lockspace too");
    res.path = "";
    res.name = "/no/such/disk";
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_RELEASE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RESOURCE_BUSY, VIR_FROM_LOCKSPACE,
                       "resource busy: Lockspace resource '/no/such/disk' is not locked"),
              "RELEASE of a resource nobody holds: RESOURCE_BUSY 'is not locked'");

    new_args.path = "";
    new_args.flags = 0;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_NEW, (xdrproc_t)xdr_vml_ls_new_args,
                   &new_args, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_INVALID, VIR_FROM_RPC,
                       "Requested operation is not valid: the default lockspace already exists"),
              "NEW of the default lockspace: OPERATION_INVALID");
    new_args.path = lsdir;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_NEW, (xdrproc_t)xdr_vml_ls_new_args,
                   &new_args, &err) == CALL_ERROR && err.code == VIR_ERR_INTERNAL_ERROR &&
              strstr(err.message, "already exists") != NULL,
              "NEW of a registered lockspace: INTERNAL_ERROR 'already exists'");

    /* The admin socket serves LIST and STATUS only, the main socket everything else. */
    VML_CHECK(call(&fx, &admin_s, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                   (xdrproc_t)xdr_vml_ls_register_args, &reg, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_DENIED, VIR_FROM_RPC,
                       "operation forbidden: procedure REGISTER is not allowed on the admin socket"),
              "REGISTER on the admin socket: OPERATION_DENIED");
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_STATUS, NULL, NULL, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_DENIED, VIR_FROM_RPC,
                       "operation forbidden: procedure STATUS is not allowed on the main socket"),
              "STATUS on the main socket: OPERATION_DENIED");
    {
        vml_ext_status_ret status;
        memset(&status, 0, sizeof(status));
        fx.ctx.nclients = 3;
        VML_CHECK(call_full(&fx, &admin_s, VML_EXT_PROGRAM, 1, VML_EXT_PROC_STATUS, VML_RPC_CALL,
                            VML_RPC_OK, 1, NULL, NULL, (xdrproc_t)xdr_vml_ext_status_ret, &status,
                            &err) == CALL_OK &&
                  status.pid == (u_int)getpid() && status.lockspaces == 2 && status.leases == 0 &&
                  status.clients == 3 && strcmp(status.daemon_version, "0.1.0") == 0,
                  "STATUS on the admin socket reports pid, lockspaces, leases, clients, version");
        xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&status);
    }
    {
        vml_ext_list_args list_args = { .cursor = 0, .max = 0, .flags = 0 };
        vml_ext_list_ret list;
        memset(&list, 0, sizeof(list));
        VML_CHECK(call(&fx, &admin_s, VML_EXT_PROGRAM, VML_EXT_PROC_LIST,
                       (xdrproc_t)xdr_vml_ext_list_args, &list_args, &err) == CALL_ERROR &&
                  err.code == VIR_ERR_INVALID_ARG, "LIST with max 0: INVALID_ARG");
        list_args.max = VML_EXT_LIST_MAX + 1;
        VML_CHECK(call(&fx, &admin_s, VML_EXT_PROGRAM, VML_EXT_PROC_LIST,
                       (xdrproc_t)xdr_vml_ext_list_args, &list_args, &err) == CALL_ERROR &&
                  err.code == VIR_ERR_INVALID_ARG, "LIST with max over VML_EXT_LIST_MAX: INVALID_ARG");
        list_args.max = 10;
        list_args.flags = 1;
        VML_CHECK(call(&fx, &admin_s, VML_EXT_PROGRAM, VML_EXT_PROC_LIST,
                       (xdrproc_t)xdr_vml_ext_list_args, &list_args, &err) == CALL_ERROR &&
                  err.code == VIR_ERR_INVALID_ARG, "LIST with flags: INVALID_ARG");
        list_args.flags = 0;
        VML_CHECK(call_full(&fx, &admin_s, VML_EXT_PROGRAM, 1, VML_EXT_PROC_LIST, VML_RPC_CALL,
                            VML_RPC_OK, 1, (xdrproc_t)xdr_vml_ext_list_args, &list_args,
                            (xdrproc_t)xdr_vml_ext_list_ret, &list, &err) == CALL_OK &&
                  list.leases.leases_len == 0 && list.next_cursor == 0 && list.total == 0,
                  "LIST of nothing: an empty last page");
        xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&list);
    }

    /* RESTRICT: afterwards every procedure of the connection is refused, flags checked first. */
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_RESTRICT,
                   (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, &err) == CALL_OK &&
              s.restricted, "RESTRICT after REGISTER succeeds");
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_REGISTER,
                   (xdrproc_t)xdr_vml_ls_register_args, &reg, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_OPERATION_DENIED, VIR_FROM_RPC,
                       "operation forbidden: lock manager connection has been restricted"),
              "REGISTER after RESTRICT: OPERATION_DENIED 'restricted'");
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_RESTRICT,
                   (xdrproc_t)xdr_vml_ls_restrict_args, &restrict_args, &err) == CALL_ERROR &&
              err.code == VIR_ERR_OPERATION_DENIED, "RESTRICT after RESTRICT is refused (virtlockd)");
    cl.path = lsdir;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
                   (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, &err) == CALL_ERROR &&
              err.code == VIR_ERR_OPERATION_DENIED, "CREATE_LOCKSPACE after RESTRICT is refused");
    res.flags = 0;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              err.code == VIR_ERR_OPERATION_DENIED, "ACQUIRE after RESTRICT is refused");
    {
        vml_ext_batch_args batch = { .owner = reg.owner };
        VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                       (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
                  err.code == VIR_ERR_OPERATION_DENIED, "BATCH_ACQUIRE after RESTRICT is refused");
    }
    res.flags = 8;
    VML_CHECK(call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_ACQUIRE_RESOURCE,
                   (xdrproc_t)xdr_vml_ls_resource_args, &res, &err) == CALL_ERROR &&
              err.code == VIR_ERR_INVALID_ARG, "on a restricted connection bad flags are reported first");

    dmn_session_clear(&s);
    dmn_session_clear(&admin_s);
    fixture_free(&fx);
}

/* A child process that only waits: a live owner pid that is not us. */
static pid_t spawn_waiter(int *release_fd)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(fds[0]);
    *release_fd = fds[1];
    return pid;
}

static void test_batch(void)
{
    fixture fx;
    dmn_session s;
    vml_error err;
    char lsdir[128], path_a[160];
    vml_ls_create_lockspace_args cl;
    vml_ext_resource resources[3];
    vml_ext_batch_args batch;
    int waiter_fd = -1;
    pid_t waiter = spawn_waiter(&waiter_fd);

    fixture_init(&fx);
    dmn_session_init(&s, DMN_SOCKET_MAIN, getpid(), 0);
    snprintf(lsdir, sizeof(lsdir), "%s/ls", fx.dir);
    cl.path = lsdir;
    call(&fx, &s, VML_LS_PROGRAM, VML_LS_PROC_CREATE_LOCKSPACE,
         (xdrproc_t)xdr_vml_ls_create_lockspace_args, &cl, &err);
    snprintf(path_a, sizeof(path_a), "%s/a", lsdir);

    memset(&batch, 0, sizeof(batch));
    memset(batch.owner.uuid, 0x01, sizeof(batch.owner.uuid));
    batch.owner.name = "vmA";
    batch.owner.id = 0;
    batch.owner.pid = (u_int)getpid();
    batch.resources.resources_val = resources;
    resources[0] = (vml_ext_resource){ .lockspace = lsdir, .name = "a", .disk = "/img/a.qcow2",
                                       .flags = VML_LS_ACQUIRE_AUTOCREATE };
    resources[1] = (vml_ext_resource){ .lockspace = lsdir, .name = "b", .disk = "/img/b.qcow2",
                                       .flags = VML_LS_ACQUIRE_AUTOCREATE };
    batch.resources.resources_len = 2;
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                   (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
              err.code == VIR_ERR_OPERATION_INVALID, "BATCH_ACQUIRE with owner id 0 is refused");
    batch.owner.id = 1;
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                   (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_OK &&
              fx.lockspaces->nleases == 2 && access(path_a, F_OK) == 0,
              "BATCH_ACQUIRE without REGISTER takes every resource for the carried owner");
    VML_CHECK(!s.registered, "a batch does not register the connection");

    /* Another owner wants c (free) and b (held): nothing is granted, c's file is removed. */
    batch.owner.pid = (u_int)waiter;
    batch.owner.name = "vmB";
    resources[0] = (vml_ext_resource){ .lockspace = lsdir, .name = "c", .disk = "/img/c.qcow2",
                                       .flags = VML_LS_ACQUIRE_AUTOCREATE };
    {
        char path_c[160];
        snprintf(path_c, sizeof(path_c), "%s/c", lsdir);
        VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                       (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
                  err.code == VIR_ERR_RESOURCE_BUSY && err.domain == VIR_FROM_LOCKSPACE &&
                  strstr(err.message, "Lockspace resource 'b' (disk '/img/b.qcow2') is locked by domain 'vmA' (uuid 01010101-0101-0101-0101-010101010101, pid ") != NULL,
                  "a batch meeting a held resource fails busy, naming disk and holder");
        /* Owners with a pidfd are kept idle while their process lives (issue 3: no
         * pidfd_open and /proc read at every acquisition). */
        VML_CHECK(fx.lockspaces->nleases == 2 && access(path_c, F_OK) != 0 &&
                  dmn_owners_find(fx.owners, (unsigned int)waiter) != NULL &&
                  dmn_owners_find(fx.owners, (unsigned int)waiter)->nholdings == 0,
                  "all or nothing: what the failed batch took is released, its file removed, "
                  "the owner holds nothing (kept idle while it lives)");
    }
    resources[0].flags = 16;
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                   (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                       "invalid argument: unsupported flags (0x10) in function BATCH_ACQUIRE"),
              "a resource with unknown flag bits: INVALID_ARG");
    resources[0].flags = 0;
    resources[0].lockspace = "/not/registered";
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_ACQUIRE,
                   (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
              err.code == VIR_ERR_INTERNAL_ERROR && strstr(err.message, "does not exist") != NULL,
              "a resource in an unknown lockspace: 'does not exist'");

    /* BATCH_RELEASE: releases what is held, reports the first error. */
    batch.owner.pid = (u_int)getpid();
    batch.owner.name = "vmA";
    resources[0] = (vml_ext_resource){ .lockspace = lsdir, .name = "zz", .disk = "" };
    resources[1] = (vml_ext_resource){ .lockspace = lsdir, .name = "a", .disk = "" };
    resources[2] = (vml_ext_resource){ .lockspace = lsdir, .name = "b", .disk = "" };
    batch.resources.resources_len = 3;
    VML_CHECK(call(&fx, &s, VML_EXT_PROGRAM, VML_EXT_PROC_BATCH_RELEASE,
                   (xdrproc_t)xdr_vml_ext_batch_args, &batch, &err) == CALL_ERROR &&
              error_is(&err, VIR_ERR_RESOURCE_BUSY, VIR_FROM_LOCKSPACE,
                       "resource busy: Lockspace resource 'zz' is not locked") &&
              fx.lockspaces->nleases == 0 && access(path_a, F_OK) == 0 &&
              dmn_owners_active(fx.owners) == 0,
              "BATCH_RELEASE releases the held ones despite an unheld one, reports that error "
              "(lease files stay)");

    close(waiter_fd);
    waitpid(waiter, NULL, 0);
    dmn_session_clear(&s);
    fixture_free(&fx);
}

int main(void)
{
    test_table();
    test_envelope();
    test_policy();
    test_batch();
    return vml_test_done();
}
