/* ctl_admin.c: locating vmlockd's admin socket and reading its whole lease list. */
#include "ctl_admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A daemon whose cursor never reaches 0 must not keep us paging forever. */
#define LIST_PAGES_MAX 65536

int ctl_admin_socket_path(const char *given, const char **path, char **owned, vml_error *err)
{
    const char *env = getenv("VMLOCKD_ADMIN_SOCK");
    const char *runtime;

    *owned = NULL;
    *path = NULL;
    if (given != NULL) {
        *path = given;
        return 0;
    }
    if (env != NULL && env[0] != '\0') {
        *path = env;
        return 0;
    }
    if (geteuid() == 0) {
        *path = CTL_ADMIN_SOCKET_SYSTEM;
        return 0;
    }
    runtime = getenv("XDG_RUNTIME_DIR");
    if (runtime == NULL || runtime[0] == '\0') {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "XDG_RUNTIME_DIR is not set, so the admin socket is unknown; "
                      "pass --socket or set VMLOCKD_ADMIN_SOCK");
        return -1;
    }
    if (asprintf(owned, "%s/vmlockd/%s", runtime, CTL_ADMIN_SOCKET_NAME) < 0) {
        *owned = NULL;
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot build the admin socket path");
        return -1;
    }
    *path = *owned;
    return 0;
}

void ctl_leases_clear(ctl_leases *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->npages; i++)
        xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&list->pages[i]);
    free(list->pages);
    list->pages = NULL;
    list->npages = 0;
}

int ctl_leases_fetch(vml_client *client, ctl_leases *list, vml_error *err)
{
    unsigned int cursor = 0;
    int ret = -1;

    for (;;) {
        vml_ext_list_args req = { .cursor = cursor, .max = VML_EXT_LIST_MAX, .flags = 0 };
        vml_ext_list_ret *grown;
        vml_ext_list_ret page;

        if (list->npages == LIST_PAGES_MAX) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "the daemon's lease list did not end after %d pages", LIST_PAGES_MAX);
            goto out;
        }
        memset(&page, 0, sizeof(page));
        if (vml_client_call(client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION,
                            VML_EXT_PROC_LIST, (xdrproc_t)xdr_vml_ext_list_args, &req,
                            (xdrproc_t)xdr_vml_ext_list_ret, &page, err) < 0) {
            xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&page);
            goto out;
        }
        grown = realloc(list->pages, (list->npages + 1) * sizeof(*grown));
        if (grown == NULL) {
            xdr_free((xdrproc_t)xdr_vml_ext_list_ret, (char *)&page);
            vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot store the lease list");
            goto out;
        }
        list->pages = grown;
        list->pages[list->npages++] = page;
        if (page.next_cursor == 0)
            break;
        if (page.next_cursor == cursor) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "the daemon's lease list did not advance past cursor %u", cursor);
            goto out;
        }
        cursor = page.next_cursor;
    }
    ret = 0;
 out:
    if (ret < 0)
        ctl_leases_clear(list);
    return ret;
}

int ctl_leases_each(const ctl_leases *list, int (*fn)(const vml_ext_lease *lease, void *opaque),
                    void *opaque)
{
    for (size_t p = 0; p < list->npages; p++) {
        for (u_int i = 0; i < list->pages[p].leases.leases_len; i++) {
            int rc = fn(&list->pages[p].leases.leases_val[i], opaque);

            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

const vml_ext_lease *ctl_leases_find(const ctl_leases *list, const char *lockspace,
                                     const char *name)
{
    for (size_t p = 0; p < list->npages; p++) {
        for (u_int i = 0; i < list->pages[p].leases.leases_len; i++) {
            const vml_ext_lease *lease = &list->pages[p].leases.leases_val[i];
            const char *ls = lease->lockspace != NULL ? lease->lockspace : "";

            if (strcmp(ls, lockspace) == 0 && lease->name != NULL &&
                strcmp(lease->name, name) == 0)
                return lease;
        }
    }
    return NULL;
}
