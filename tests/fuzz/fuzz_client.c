/* fuzz_client.c: fuzz target for the blocking client's reply reading and decoding (vml_client_call), as the plugin in libvirtd and vmlockctl meet a daemon's answers. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vml_wire.h"
#include "fuzz_target.h"

/*
 * Input: byte 0 picks the call (and so the reply type expected), the rest is everything the
 * "daemon" sends back on the connection, then EOF:
 *   0 ACQUIRE_RESOURCE (0x0EA7BEEF v1 proc 6, void)   1 LIST (0x564D4C4B v1 proc 3)
 *   2 STATUS v2 (proc 4)   3 BATCH_ACQUIRE v2 (proc 1)   4 WHO v2 (proc 6)
 * The call goes out with serial 0 through a socketpair whose other end holds the reply.
 * The plugin runs inside libvirtd, so a confused or impostor daemon must never crash it.
 *
 * Oracles: success means the reply answered the call and decoded exactly; a failure has a
 * code and a message; the sanitizers do the rest.
 */

#define REPLY_MAX (64 * 1024)   /* stays within the socket buffer: the writes never block */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vml_client client = { .fd = -1, .serial = 0 };
    vml_error err = { 0 };
    vml_ls_resource_args ls_args = { .path = (char *)"/var/lib/ls", .name = (char *)"a" };
    vml_ext_list_args list_args = { .cursor = 0, .max = 16, .flags = 0 };
    vml_ext_batch2_args batch_args;
    vml_ext_who_args who_args = { .lockspace = (char *)"", .name = (char *)"",
                                  .disk = (char *)"/images/a.img", .flags = 0 };
    vml_ext_resource2 res = { .lockspace = (char *)"/var/lib/ls", .name = (char *)"a",
                              .disk = (char *)"/images/a.img", .flags = 2 };
    union {
        vml_ext_list_ret list;
        vml_ext_status2_ret status;
        vml_ext_batch2_ret batch;
        vml_ext_who_ret who;
    } ret;
    xdrproc_t ret_proc = NULL;
    int sv[2];
    int rc = -1;

    if (size == 0 || size - 1 > REPLY_MAX)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        fuzz_invariant_failed("socketpair failed");
    if (size > 1 && write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1))
        fuzz_invariant_failed("cannot queue the reply");
    shutdown(sv[1], SHUT_WR);
    client.fd = sv[0];
    memset(&ret, 0, sizeof(ret));
    memset(&batch_args, 0, sizeof(batch_args));
    batch_args.owner.name = (char *)"vm1";
    batch_args.owner.id = 1;
    batch_args.owner.pid = 4242;
    batch_args.resources.resources_len = 1;
    batch_args.resources.resources_val = &res;
    batch_args.uri = (char *)"";

    switch (data[0] % 5) {
    case 0:
        rc = vml_client_call(&client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                             VML_LS_PROC_ACQUIRE_RESOURCE, (xdrproc_t)xdr_vml_ls_resource_args,
                             &ls_args, NULL, NULL, &err);
        break;
    case 1:
        ret_proc = (xdrproc_t)xdr_vml_ext_list_ret;
        rc = vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                             VML_EXT_PROC_LIST, (xdrproc_t)xdr_vml_ext_list_args, &list_args,
                             ret_proc, &ret.list, &err);
        break;
    case 2:
        ret_proc = (xdrproc_t)xdr_vml_ext_status2_ret;
        rc = vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                             VML_EXT_PROC_STATUS, NULL, NULL, ret_proc, &ret.status, &err);
        break;
    case 3:
        ret_proc = (xdrproc_t)xdr_vml_ext_batch2_ret;
        rc = vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                             VML_EXT_PROC_BATCH_ACQUIRE, (xdrproc_t)xdr_vml_ext_batch2_args,
                             &batch_args, ret_proc, &ret.batch, &err);
        break;
    default:
        ret_proc = (xdrproc_t)xdr_vml_ext_who_ret;
        rc = vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                             VML_EXT_PROC_WHO, (xdrproc_t)xdr_vml_ext_who_args, &who_args,
                             ret_proc, &ret.who, &err);
        break;
    }
    if (getenv("VMLFUZZ_TRACE") != NULL)
        fprintf(stderr, "call %d: %s\n", data[0] % 5, rc == 0 ? "ok" : err.message);
    if (rc < 0 && (err.code == 0 || err.message[0] == '\0'))
        fuzz_invariant_failed("a failed call has no error code or message");
    if (ret_proc != NULL)
        xdr_free(ret_proc, (char *)&ret);
    vml_client_close(&client);
    close(sv[1]);
    return 0;
}
