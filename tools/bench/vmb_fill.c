/* vmb_fill.c: fills a lock daemon with many held leases over the wire (batches with vmlockd, one call per lease with virtlockd). */
#include "vmb_fill.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vml_wire.h"

#define FILL_NAME_LEN 16        /* "fill-" + 8 digits + NUL, rounded up */

static vml_ls_owner fill_owner(pid_t owner_pid)
{
    vml_ls_owner owner;

    memset(&owner, 0, sizeof(owner));
    memcpy(owner.uuid, "vmlock-bench-fil", sizeof(owner.uuid));
    owner.name = (char *)"vmlock-bench-fill";
    owner.id = 1;
    owner.pid = (unsigned int)owner_pid;
    return owner;
}

/* True when err is a dispatcher's "Cannot find program" (a daemon without our extension). */
static bool no_extension(const vml_error *err)
{
    return err->code == VIR_ERR_RPC && strstr(err->message, "Cannot find program") != NULL;
}

/*
 * BATCH_ACQUIRE batches of up to VML_EXT_BATCH_MAX leases, in the extension program's
 * current version (what vmlockd.so sends), else its first one.  Returns 1, having taken
 * nothing, when the daemon knows neither (virtlockd): the caller falls back.
 */
static int fill_batches(vml_client *client, const char *lockspace_dir, pid_t owner_pid,
                        unsigned int count, char (*names)[FILL_NAME_LEN], bool *used_batch,
                        vml_error *err)
{
    vml_ext_resource2 *resources2 = calloc(VML_EXT_BATCH_MAX, sizeof(*resources2));
    vml_ext_resource *resources = calloc(VML_EXT_BATCH_MAX, sizeof(*resources));
    vml_ext_batch2_args args2;
    vml_ext_batch_args args;
    unsigned int version = VML_EXT_PROTOCOL_VERSION_2;
    unsigned int done = 0;
    int ret = -1;

    if (resources == NULL || resources2 == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot build a batch");
        goto out;
    }
    memset(&args, 0, sizeof(args));
    memset(&args2, 0, sizeof(args2));
    args.owner = fill_owner(owner_pid);
    args2.owner = args.owner;
    args2.uri = (char *)"";
    while (done < count) {
        unsigned int n = count - done < VML_EXT_BATCH_MAX ? count - done : VML_EXT_BATCH_MAX;
        int rc;

        for (unsigned int i = 0; i < n; i++) {
            resources[i].lockspace = (char *)lockspace_dir;
            resources[i].name = names[done + i];
            resources[i].disk = (char *)"";
            resources[i].flags = VML_LS_ACQUIRE_AUTOCREATE;
            resources2[i].lockspace = resources[i].lockspace;
            resources2[i].name = resources[i].name;
            resources2[i].disk = resources[i].disk;
            resources2[i].flags = VML_LS_ACQUIRE_AUTOCREATE;
        }
        if (version == VML_EXT_PROTOCOL_VERSION_2) {
            vml_ext_batch2_ret ret2;

            memset(&ret2, 0, sizeof(ret2));
            args2.resources.resources_len = n;
            args2.resources.resources_val = resources2;
            rc = vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2,
                                 VML_EXT_PROC_BATCH_ACQUIRE,
                                 (xdrproc_t)xdr_vml_ext_batch2_args, &args2,
                                 (xdrproc_t)xdr_vml_ext_batch2_ret, &ret2, err);
            xdr_free((xdrproc_t)xdr_vml_ext_batch2_ret, (char *)&ret2);
            if (rc < 0 && done == 0 && no_extension(err)) {
                version = VML_EXT_PROTOCOL_VERSION;     /* an older vmlockd, or virtlockd */
                continue;
            }
        } else {
            args.resources.resources_len = n;
            args.resources.resources_val = resources;
            rc = vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                                 VML_EXT_PROC_BATCH_ACQUIRE, (xdrproc_t)xdr_vml_ext_batch_args,
                                 &args, NULL, NULL, err);
            if (rc < 0 && done == 0 && no_extension(err)) {
                ret = 1;            /* not vmlockd: the caller falls back */
                goto out;
            }
        }
        if (rc < 0)
            goto out;
        done += n;
    }
    *used_batch = true;
    ret = 0;
 out:
    free(resources);
    free(resources2);
    return ret;
}

static int fill_one_by_one(vml_client *client, const char *lockspace_dir, pid_t owner_pid,
                           unsigned int count, char (*names)[FILL_NAME_LEN], vml_error *err)
{
    vml_ls_register_args reg;
    vml_ls_resource_args acquire;

    memset(&reg, 0, sizeof(reg));
    reg.owner = fill_owner(owner_pid);
    if (vml_client_call(client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION, VML_LS_PROC_REGISTER,
                        (xdrproc_t)xdr_vml_ls_register_args, &reg, NULL, NULL, err) < 0)
        return -1;
    memset(&acquire, 0, sizeof(acquire));
    acquire.path = (char *)lockspace_dir;
    acquire.flags = VML_LS_ACQUIRE_AUTOCREATE;
    for (unsigned int i = 0; i < count; i++) {
        acquire.name = names[i];
        if (vml_client_call(client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                            VML_LS_PROC_ACQUIRE_RESOURCE, (xdrproc_t)xdr_vml_ls_resource_args,
                            &acquire, NULL, NULL, err) < 0)
            return -1;
    }
    return 0;
}

int vmb_fill(const char *sock_path, const char *lockspace_dir, pid_t owner_pid,
             unsigned int count, bool *used_batch, vml_error *err)
{
    char (*names)[FILL_NAME_LEN] = NULL;
    vml_ls_create_lockspace_args create;
    vml_client client = { .fd = -1, .serial = 0 };
    int rc;
    int ret = -1;

    *used_batch = false;
    names = calloc(count > 0 ? count : 1, sizeof(*names));
    if (names == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot name %u leases", count);
        goto out;
    }
    for (unsigned int i = 0; i < count; i++)
        snprintf(names[i], sizeof(names[i]), "fill-%08u", i);
    if (vml_client_connect(&client, sock_path, err) < 0)
        goto out;
    memset(&create, 0, sizeof(create));
    create.path = (char *)lockspace_dir;
    if (vml_client_call(&client, VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION,
                        VML_LS_PROC_CREATE_LOCKSPACE,
                        (xdrproc_t)xdr_vml_ls_create_lockspace_args, &create, NULL, NULL,
                        err) < 0)
        goto out;
    rc = fill_batches(&client, lockspace_dir, owner_pid, count, names, used_batch, err);
    if (rc == 1)
        rc = fill_one_by_one(&client, lockspace_dir, owner_pid, count, names, err);
    if (rc < 0)
        goto out;
    ret = 0;
 out:
    vml_client_close(&client);
    free(names);
    return ret;
}
