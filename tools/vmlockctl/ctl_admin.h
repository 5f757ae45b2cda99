/* ctl_admin.h: vmlockctl's side of the admin socket: where it is, and the whole lease list (every LIST page). */
#ifndef CTL_ADMIN_H
#define CTL_ADMIN_H

#include <stddef.h>

#include "vml_wire.h"

#define CTL_ADMIN_SOCKET_NAME "vmlockd-admin-sock"
#define CTL_ADMIN_SOCKET_SYSTEM "/run/vmlockd/" CTL_ADMIN_SOCKET_NAME

/*
 * The admin socket to use: given (--socket) when not NULL, else $VMLOCKD_ADMIN_SOCK, else
 * CTL_ADMIN_SOCKET_SYSTEM as root, else $XDG_RUNTIME_DIR/vmlockd/CTL_ADMIN_SOCKET_NAME.
 * *path is borrowed from given or the environment, or points into *owned (malloc'd, owned
 * by the caller, NULL when nothing was allocated).
 */
int ctl_admin_socket_path(const char *given, const char **path, char **owned, vml_error *err);

/* All pages of one LIST, kept together so that output is all or nothing. */
typedef struct ctl_leases {
    vml_ext_list_ret *pages;
    size_t npages;
} ctl_leases;

/*
 * Page through LIST until next_cursor is 0 (bounded, and refusing a cursor that does not
 * advance).  On success *list (empty on entry) holds every page; on failure it is left empty.
 * Either way the caller clears it with ctl_leases_clear().
 */
int ctl_leases_fetch(vml_client *client, ctl_leases *list, vml_error *err);

/* Free every page; list itself (caller-owned) becomes empty.  Accepts NULL. */
void ctl_leases_clear(ctl_leases *list);

/* The held lease (lockspace, name) of list, or NULL; borrowed from list. */
const vml_ext_lease *ctl_leases_find(const ctl_leases *list, const char *lockspace,
                                     const char *name);

/* Visit every lease in list order: fn returns 0 to go on, anything else stops and is returned. */
int ctl_leases_each(const ctl_leases *list, int (*fn)(const vml_ext_lease *lease, void *opaque),
                    void *opaque);

#endif
