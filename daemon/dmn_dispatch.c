/* dmn_dispatch.c: the procedure table, the one policy check, and the handlers of programs 0x0EA7BEEF and 0x564D4C4B. */
#include "dmn_dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vml_build_config.h"
#include "vml_log.h"
#include "vml_wire.h"
#include "dmn_admin.h"

/* Keep a LIST reply well below the message limit however many holders leases have. */
#define LIST_REPLY_BUDGET (VML_RPC_MESSAGE_MAX / 2)

void dmn_session_init(dmn_session *session, dmn_socket_kind socket, pid_t peer_pid,
                      uid_t peer_uid)
{
    memset(session, 0, sizeof(*session));
    session->socket = socket;
    session->peer_pid = peer_pid;
    session->peer_uid = peer_uid;
}

void dmn_session_clear(dmn_session *session)
{
    dmn_identity_clear(&session->owner);
    session->registered = false;
}

bool dmn_session_is_holder(const dmn_session *session)
{
    return session->registered && session->peer_pid > 0 &&
           session->owner.pid == (unsigned int)session->peer_pid;
}

static int64_t monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The dispatcher-level error every handler reports for an unknown lockspace path. */
static dmn_lockspace *find_lockspace(dmn_context *ctx, const char *path, vml_error *err)
{
    dmn_lockspace *ls = dmn_lockspaces_find(ctx->lockspaces, path);

    if (ls == NULL)
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "Lockspace for path %s does not exist", path);
    return ls;
}

/* An owner identity must carry a domain id: virtlockd's test for "registered". */
static int check_identity(const vml_ls_owner *owner, vml_error *err)
{
    if (owner->id == 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "lock owner details have not been registered");
        return -1;
    }
    return 0;
}

/* ---- program 0x0EA7BEEF (virtlockd's) ---- */

static int handle_register(dmn_context *ctx, dmn_session *session, void *argp, void *ret,
                           vml_error *err)
{
    vml_ls_register_args *args = argp;
    vml_ls_owner copy = { 0 };

    (void)ret;
    if (check_identity(&args->owner, err) < 0 || dmn_identity_copy(&copy, &args->owner, err) < 0)
        return -1;
    if (dmn_owners_update_identity(ctx->owners, &args->owner, err) < 0) {
        dmn_identity_clear(&copy);
        return -1;
    }
    dmn_session_clear(session);
    session->owner = copy;
    session->registered = true;
    VML_DEBUG("client pid %d registered owner pid %u (domain '%s', id %u)",
              (int)session->peer_pid, copy.pid, copy.name, copy.id);
    return 0;
}

static int handle_restrict(dmn_context *ctx, dmn_session *session, void *argp, void *ret,
                           vml_error *err)
{
    (void)ctx; (void)argp; (void)ret; (void)err;
    session->restricted = true;
    return 0;
}

static int handle_new(dmn_context *ctx, dmn_session *session, void *argp, void *ret,
                      vml_error *err)
{
    vml_ls_new_args *args = argp;

    (void)session; (void)ret;
    if (args->path[0] == '\0') {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "the default lockspace already exists");
        return -1;
    }
    if (dmn_lockspaces_find(ctx->lockspaces, args->path) != NULL) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "Lockspace for path %s already exists", args->path);
        return -1;
    }
    return dmn_lockspaces_add(ctx->lockspaces, args->path, NULL, err);
}

static int handle_create_resource(dmn_context *ctx, dmn_session *session, void *argp,
                                  void *ret, vml_error *err)
{
    vml_ls_resource_args *args = argp;
    dmn_lockspace *ls = find_lockspace(ctx, args->path, err);

    (void)session; (void)ret;
    if (ls == NULL)
        return -1;
    return dmn_resource_create(ctx->lockspaces, ls, args->name, err);
}

static int handle_delete_resource(dmn_context *ctx, dmn_session *session, void *argp,
                                  void *ret, vml_error *err)
{
    vml_ls_resource_args *args = argp;
    dmn_lockspace *ls = find_lockspace(ctx, args->path, err);

    (void)session; (void)ret;
    if (ls == NULL)
        return -1;
    return dmn_resource_delete(ctx->lockspaces, ls, args->name, err);
}

static int handle_acquire_resource(dmn_context *ctx, dmn_session *session, void *argp,
                                   void *ret, vml_error *err)
{
    vml_ls_resource_args *args = argp;
    dmn_lockspace *ls = find_lockspace(ctx, args->path, err);
    vml_ext_resource2 res = { .lockspace = args->path, .name = args->name, .disk = (char *)"",
                              .flags = args->flags };
    dmn_owner *owner = NULL;
    dmn_holding *taken;

    (void)ret;
    if (ls == NULL || dmn_owners_get(ctx->owners, &session->owner, &owner, err) < 0)
        return -1;
    if (dmn_lease_acquire(ctx->lockspaces, ls, &res, owner, &taken, NULL, err) < 0) {
        dmn_owners_forget_if_idle(ctx->owners, owner);
        return -1;
    }
    VML_INFO("owner pid %u (domain '%s') acquired '%s' in lockspace '%s'%s", owner->pid,
             owner->identity.name, args->name, args->path,
             (args->flags & VML_LS_ACQUIRE_SHARED) ? " shared" : "");
    return 0;
}

static int handle_release_resource(dmn_context *ctx, dmn_session *session, void *argp,
                                   void *ret, vml_error *err)
{
    vml_ls_resource_args *args = argp;
    dmn_lockspace *ls = find_lockspace(ctx, args->path, err);
    int rc;

    (void)ret;
    if (ls == NULL)
        return -1;
    rc = dmn_lease_release(ctx->lockspaces, ls, args->name, session->owner.pid, NULL, err);
    dmn_owners_forget_if_idle(ctx->owners, dmn_owners_find(ctx->owners, session->owner.pid));
    if (rc == 0)
        VML_INFO("owner pid %u (domain '%s') released '%s' in lockspace '%s'",
                 session->owner.pid, session->owner.name, args->name, args->path);
    return rc;
}

static int handle_create_lockspace(dmn_context *ctx, dmn_session *session, void *argp,
                                   void *ret, vml_error *err)
{
    vml_ls_create_lockspace_args *args = argp;

    (void)session; (void)ret;
    if (dmn_lockspaces_find(ctx->lockspaces, args->path) != NULL)
        return 0;       /* idempotent: libvirt's plugin calls it at every start */
    return dmn_lockspaces_add(ctx->lockspaces, args->path, NULL, err);
}

/* ---- program 0x564D4C4B (ours) ---- */

/* Version 1 resources as version 2 ones (strings borrowed; no expected generations).
 * *out is malloc'd (NULL for n == 0), freed by the caller with free(). */
static int upgrade_resources(const vml_ext_resource *v1, size_t n, vml_ext_resource2 **out,
                             vml_error *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = calloc(n, sizeof(**out));
    if (*out == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot handle the batch");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned int v1_flags = VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE;

        /* Version 1 knows no generation flag. */
        if (v1[i].flags & ~v1_flags) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                          "unsupported flags (0x%x) in function %s", v1[i].flags & ~v1_flags,
                          "BATCH_ACQUIRE");
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i].lockspace = v1[i].lockspace;
        (*out)[i].name = v1[i].name;
        (*out)[i].disk = v1[i].disk;
        (*out)[i].flags = v1[i].flags;
    }
    return 0;
}

/* The shared part of BATCH_ACQUIRE v1 and v2. */
static int batch_acquire(dmn_context *ctx, const vml_ls_owner *identity,
                         const vml_ext_resource2 *resources, size_t n, int action,
                         const char *uri, vml_ext_generation *gens, vml_error *err)
{
    dmn_owner *owner = NULL;

    if (check_identity(identity, err) < 0)
        return -1;
    if (action < 0 || action >= DMN_LOCKFAILURE_LAST) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                      "on_lockfailure %d is not a libvirt lock failure action (0 to %d)",
                      action, DMN_LOCKFAILURE_LAST - 1);
        return -1;
    }
    if (n == 0)
        return 0;
    if (dmn_owners_get(ctx->owners, identity, &owner, err) < 0)
        return -1;
    if (dmn_lease_acquire_batch(ctx->lockspaces, resources, n, owner, gens, err) < 0) {
        dmn_owners_forget_if_idle(ctx->owners, owner);
        return -1;
    }
    /* The latest acquisition says what the domain wants done when a lock is lost; the
     * keeper's copies of its other leases follow when that changed. */
    {
        bool changed = owner->on_lockfailure != action ||
                       strcmp(owner->uri != NULL ? owner->uri : "", uri != NULL ? uri : "") != 0;

        if (dmn_owner_set_lockfailure(owner, action, uri, err) < 0)
            VML_WARN("%s", err->message);
        for (dmn_holding *h = owner->holdings; changed && h != NULL; h = h->owner_next)
            dmn_lease_journal_update(ctx->lockspaces, h->lease);
    }
    VML_INFO("owner pid %u (domain '%s') acquired %zu resource(s)", owner->pid,
             owner->identity.name, n);
    return 0;
}

static int handle_batch_acquire(dmn_context *ctx, dmn_session *session, void *argp,
                                void *ret, vml_error *err)
{
    vml_ext_batch_args *args = argp;
    vml_ext_resource2 *resources = NULL;
    int rc;

    (void)session; (void)ret;
    if (upgrade_resources(args->resources.resources_val, args->resources.resources_len,
                          &resources, err) < 0)
        return -1;
    rc = batch_acquire(ctx, &args->owner, resources, args->resources.resources_len,
                       DMN_LOCKFAILURE_DEFAULT, NULL, NULL, err);
    free(resources);
    return rc;
}

/* ret->generations gets n zeroed entries; -1 on ENOMEM. */
static int alloc_generations(vml_ext_batch2_ret *ret, size_t n, vml_error *err)
{
    if (n == 0)
        return 0;
    ret->generations.generations_val = calloc(n, sizeof(vml_ext_generation));
    if (ret->generations.generations_val == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot report generations");
        return -1;
    }
    ret->generations.generations_len = (u_int)n;
    return 0;
}

static int handle_batch2_acquire(dmn_context *ctx, dmn_session *session, void *argp,
                                 void *retp, vml_error *err)
{
    vml_ext_batch2_args *args = argp;
    vml_ext_batch2_ret *ret = retp;
    size_t n = args->resources.resources_len;

    (void)session;
    if (alloc_generations(ret, n, err) < 0)
        return -1;
    return batch_acquire(ctx, &args->owner, args->resources.resources_val, n,
                         args->on_lockfailure, args->uri, ret->generations.generations_val, err);
}

/* The shared part of BATCH_RELEASE v1 and v2. */
static int batch_release(dmn_context *ctx, const vml_ls_owner *identity,
                         const vml_ext_resource2 *resources, size_t n, vml_ext_generation *gens,
                         vml_error *err)
{
    int rc;

    if (dmn_owners_update_identity(ctx->owners, identity, err) < 0)
        return -1;
    rc = dmn_lease_release_batch(ctx->lockspaces, resources, n, identity->pid, gens, err);
    dmn_owners_forget_if_idle(ctx->owners, dmn_owners_find(ctx->owners, identity->pid));
    VML_INFO("owner pid %u (domain '%s') released %zu resource(s)%s", identity->pid,
             identity->name, n, rc < 0 ? " (some were not held)" : "");
    return rc;
}

static int handle_batch_release(dmn_context *ctx, dmn_session *session, void *argp,
                                void *ret, vml_error *err)
{
    vml_ext_batch_args *args = argp;
    vml_ext_resource2 *resources = NULL;
    int rc;

    (void)session; (void)ret;
    if (upgrade_resources(args->resources.resources_val, args->resources.resources_len,
                          &resources, err) < 0)
        return -1;
    rc = batch_release(ctx, &args->owner, resources, args->resources.resources_len, NULL, err);
    free(resources);
    return rc;
}

static int handle_batch2_release(dmn_context *ctx, dmn_session *session, void *argp,
                                 void *retp, vml_error *err)
{
    vml_ext_batch2_args *args = argp;
    vml_ext_batch2_ret *ret = retp;
    size_t n = args->resources.resources_len;

    (void)session;
    if (alloc_generations(ret, n, err) < 0)
        return -1;
    return batch_release(ctx, &args->owner, args->resources.resources_val, n,
                         ret->generations.generations_val, err);
}

static int handle_inquire(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                          vml_error *err)
{
    vml_ext_batch2_args *args = argp;
    vml_ext_batch2_ret *ret = retp;
    size_t n = args->resources.resources_len;

    (void)session;
    if (alloc_generations(ret, n, err) < 0)
        return -1;
    if (n > 0)
        dmn_lease_inquire(ctx->lockspaces, args->resources.resources_val, n, args->owner.pid,
                          ret->generations.generations_val);
    return 0;
}

/* Bytes an XDR string of len bytes takes. */
static size_t xdr_string_size(size_t len)
{
    return 4 + ((len + 3) & ~(size_t)3);
}

static int copy_holder(vml_ext_holder *out, const dmn_holding *h, vml_error *err)
{
    out->since_usec = h->since_usec;
    return dmn_identity_copy(&out->owner, &h->owner->identity, err);
}

/* Fill out from lease with at most max_holders holders (deep copies). */
static int copy_lease(vml_ext_lease *out, const dmn_lease *lease, size_t max_holders,
                      vml_error *err)
{
    size_t n = lease->nholders < max_holders ? lease->nholders : max_holders;

    out->flags = lease->flags;
    if ((out->lockspace = strdup(lease->lockspace->path)) == NULL ||
        (out->name = strdup(lease->name)) == NULL ||
        (out->path = strdup(lease->path)) == NULL ||
        (out->disk = strdup(lease->disk)) == NULL ||
        (n > 0 && (out->holders.holders_val = calloc(n, sizeof(vml_ext_holder))) == NULL)) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot list leases");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (copy_holder(&out->holders.holders_val[i], lease->holders[i], err) < 0)
            return -1;
        out->holders.holders_len = (u_int)(i + 1);
    }
    return 0;
}

/* Encoded size of one lease entry with its first nholders holders. */
static size_t lease_wire_size(const dmn_lease *lease, size_t nholders)
{
    size_t size = xdr_string_size(strlen(lease->lockspace->path)) +
                  xdr_string_size(strlen(lease->name)) + xdr_string_size(strlen(lease->path)) +
                  xdr_string_size(strlen(lease->disk)) + 4 + 4;

    for (size_t i = 0; i < nholders; i++)
        size += 16 + xdr_string_size(strlen(lease->holders[i]->owner->identity.name)) + 4 + 4 + 8;
    return size;
}

static int handle_list(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                       vml_error *err)
{
    vml_ext_list_args *args = argp;
    vml_ext_list_ret *ret = retp;
    const dmn_lease *lease = ctx->lockspaces->head;
    size_t budget = LIST_REPLY_BUDGET;
    size_t n = 0;

    (void)session;
    if (args->max < 1 || args->max > VML_EXT_LIST_MAX) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                      "LIST page size %u is out of range 1 to %d", args->max, VML_EXT_LIST_MAX);
        return -1;
    }
    ret->total = (u_int)ctx->lockspaces->nleases;
    /* Cursors are lease sequence numbers: leases released meanwhile are simply skipped. */
    while (lease != NULL && lease->seq < args->cursor)
        lease = lease->next;
    if (lease != NULL &&
        (ret->leases.leases_val = calloc(args->max, sizeof(vml_ext_lease))) == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot list leases");
        return -1;
    }
    for (; lease != NULL && n < args->max; lease = lease->next) {
        size_t holders = lease->nholders < VML_EXT_HOLDERS_MAX ? lease->nholders
                                                                : VML_EXT_HOLDERS_MAX;
        size_t size = lease_wire_size(lease, holders);

        if (size > budget) {
            if (n > 0)
                break;
            /* A single enormous lease: send it with as many holders as fit. */
            while (holders > 1 && lease_wire_size(lease, holders) > budget)
                holders--;
            size = lease_wire_size(lease, holders);
        }
        ret->leases.leases_len = (u_int)(n + 1);
        if (copy_lease(&ret->leases.leases_val[n], lease, holders, err) < 0)
            return -1;
        budget -= size < budget ? size : budget;
        n++;
    }
    ret->next_cursor = lease != NULL ? lease->seq : 0;
    return 0;
}

static int handle_status2(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                          vml_error *err)
{
    vml_ext_status2_ret *ret = retp;

    (void)session; (void)argp;
    if ((ret->daemon_version = strdup(VML_VERSION)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot report the status");
        return -1;
    }
    ret->pid = (u_int)getpid();
    ret->uptime_usec = monotonic_usec() - ctx->start_usec;
    ret->lockspaces = (u_int)ctx->lockspaces->nlockspaces;
    ret->leases = (u_int)ctx->lockspaces->nleases;
    ret->owners = (u_int)dmn_owners_active(ctx->owners);
    ret->clients = ctx->nclients;
    ret->acquires = ctx->lockspaces->acquires;
    ret->conflicts = ctx->lockspaces->conflicts;
    ret->owner_kills = ctx->owners->kills;
    ret->lost_leases = ctx->lockspaces->lost;
    ret->check_rounds = ctx->checker != NULL ? dmn_checker_rounds_done(ctx->checker) : 0;
    ret->check_interval_ms = ctx->checker != NULL ? dmn_checker_interval_ms(ctx->checker) : 0;
    ret->keeper_pid = ctx->keeper_pid;
    ret->reexecs = ctx->reexecs;
    ret->adopted = ctx->adopted;
    ret->epoch = ctx->lockspaces->epoch;
    return 0;
}

/* Version 1's STATUS: the first fields of version 2's (daemon_version moves over). */
static int handle_status(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                         vml_error *err)
{
    vml_ext_status_ret *ret = retp;
    vml_ext_status2_ret full;

    memset(&full, 0, sizeof(full));
    if (handle_status2(ctx, session, argp, &full, err) < 0)
        return -1;
    ret->daemon_version = full.daemon_version;
    ret->pid = full.pid;
    ret->uptime_usec = full.uptime_usec;
    ret->lockspaces = full.lockspaces;
    ret->leases = full.leases;
    ret->owners = full.owners;
    ret->clients = full.clients;
    ret->acquires = full.acquires;
    ret->conflicts = full.conflicts;
    ret->owner_kills = full.owner_kills;
    return 0;
}

/* Owners holding at least one lease: the "domains" of the stop messages. */
static size_t domains_holding(const dmn_context *ctx)
{
    size_t n = 0;

    for (const dmn_owner *o = ctx->owners->head; o != NULL; o = o->next) {
        if (o->nholdings > 0)
            n++;
    }
    return n;
}

bool dmn_context_refuse_stop(const dmn_context *ctx, char *why, size_t why_len)
{
    if (ctx->lockspaces->nleases == 0)
        return false;
    snprintf(why, why_len, "refusing to stop: %zu lease(s) held by %zu domain(s); use "
             "`vmlockctl shutdown --force`", ctx->lockspaces->nleases, domains_holding(ctx));
    return true;
}

static int handle_shutdown(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                           vml_error *err)
{
    vml_ext_shutdown_args *args = argp;
    vml_ext_shutdown_ret *ret = retp;
    char why[256];

    (void)session;
    if (!(args->flags & VML_EXT_SHUTDOWN_FORCE) && dmn_context_refuse_stop(ctx, why, sizeof(why))) {
        VML_WARN("SHUTDOWN without --force: %s", why);
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID, "%s", why);
        return -1;
    }
    ret->leases_dropped = (u_int)ctx->lockspaces->nleases;
    ret->owners = (u_int)domains_holding(ctx);
    if (ret->leases_dropped > 0)
        VML_WARN("shutdown --force: dropping %u lease(s) of %u domain(s); their VMs keep "
                 "running unprotected", ret->leases_dropped, ret->owners);
    else
        VML_INFO("shutdown requested over the admin socket");
    ctx->stop_requested = true;
    return 0;
}

static int handle_check_now(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                            vml_error *err)
{
    vml_ext_check_ret *ret = retp;
    struct timespec ts;

    (void)argp;
    if (ctx->checker == NULL) {
        ret->lost_total = ctx->lockspaces->lost;
        return 0;
    }
    if (dmn_checker_stuck(ctx->checker)) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_FAILED,
                      "a lease check is still stuck in the kernel (storage not answering); "
                      "the leases it could not verify were declared lost");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (dmn_checker_request(ctx->checker, ctx->lockspaces,
                            (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                            &session->deferred_round, err) < 0)
        return -1;
    session->deferred = true;
    return 0;
}

static int handle_who(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                      vml_error *err)
{
    (void)session;
    return dmn_admin_who(ctx, argp, retp, err);
}

static int handle_break(dmn_context *ctx, dmn_session *session, void *argp, void *retp,
                        vml_error *err)
{
    (void)session;
    return dmn_admin_break(ctx, argp, retp, err);
}

void dmn_context_lease_lost(dmn_context *ctx, dmn_lease *lease, const char *reason)
{
    char what[VML_ERROR_MESSAGE_MAX];

    if (!dmn_lease_mark_lost(ctx->lockspaces, lease))
        return;
    snprintf(what, sizeof(what), "the lock of '%s'%s%s%s", lease->path,
             lease->disk[0] != '\0' ? " (disk '" : "", lease->disk,
             lease->disk[0] != '\0' ? "')" : "");
    VML_ERROR("LOST LOCK: %s, held by %zu owner(s): %s", what, lease->nholders, reason);
    for (size_t i = 0; i < lease->nholders; i++)
        dmn_owner_lockfailure(ctx->owners, lease->holders[i]->owner, what);
}

/* ---- the table ---- */

/* The arguments of a procedure that takes none: nothing to code, so any byte left over
 * makes vml_wire_decode_payload refuse the message. */
static bool_t xdr_no_args(XDR *xdrs, void *unused)
{
    (void)xdrs; (void)unused;
    return TRUE;
}

#define LS_ROW(PROC, NAME, ARGS, FLAGS_FIELD, ALLOWED, HANDLER, POLICY) \
    { VML_LS_PROGRAM, VML_LS_PROTOCOL_VERSION, PROC, NAME, \
      (xdrproc_t)xdr_##ARGS, sizeof(ARGS), NULL, 0, FLAGS_FIELD, ALLOWED, HANDLER, POLICY }

#define ARGS_FLAGS(ARGS) offsetof(ARGS, flags)

/* A version 2 extension row whose flags word must be 0. */
#define EXT2_ROW(PROC, NAME, ARGS, RET, FLAGS_FIELD, HANDLER, POLICY) \
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, PROC, NAME, \
      (xdrproc_t)xdr_##ARGS, sizeof(ARGS), (xdrproc_t)xdr_##RET, sizeof(RET), \
      FLAGS_FIELD, 0, HANDLER, POLICY }

/*
 * One row per procedure.  The policy column is virtlockd's: every procedure of its program
 * is refused on a restricted connection (RESTRICT included), and every one but REGISTER and
 * CREATE_LOCKSPACE needs a registered owner.  BATCH_ACQUIRE/RELEASE carry their owner, so
 * they need no REGISTER; LIST and STATUS are the admin socket's only procedures in version
 * 1.  Version 2 repeats procedures 1-4 (BATCH_* with generations, STATUS with the lifetime
 * counters) and adds INQUIRE on the main socket and WHO, SHUTDOWN, CHECK_NOW and BREAK on
 * the admin socket.
 */
static const dmn_proc dispatch_table[] = {
    LS_ROW(VML_LS_PROC_REGISTER, "REGISTER", vml_ls_register_args,
           ARGS_FLAGS(vml_ls_register_args), 0, handle_register,
           DMN_MAIN_SOCKET),
    LS_ROW(VML_LS_PROC_RESTRICT, "RESTRICT", vml_ls_restrict_args,
           ARGS_FLAGS(vml_ls_restrict_args), 0, handle_restrict,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_NEW, "NEW", vml_ls_new_args,
           ARGS_FLAGS(vml_ls_new_args), 0, handle_new,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_CREATE_RESOURCE, "CREATE_RESOURCE", vml_ls_resource_args,
           ARGS_FLAGS(vml_ls_resource_args), 0, handle_create_resource,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_DELETE_RESOURCE, "DELETE_RESOURCE", vml_ls_resource_args,
           ARGS_FLAGS(vml_ls_resource_args), 0, handle_delete_resource,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_ACQUIRE_RESOURCE, "ACQUIRE_RESOURCE", vml_ls_resource_args,
           ARGS_FLAGS(vml_ls_resource_args),
           VML_LS_ACQUIRE_SHARED | VML_LS_ACQUIRE_AUTOCREATE, handle_acquire_resource,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_RELEASE_RESOURCE, "RELEASE_RESOURCE", vml_ls_resource_args,
           ARGS_FLAGS(vml_ls_resource_args), 0, handle_release_resource,
           DMN_MAIN_SOCKET | DMN_NEEDS_OWNER),
    LS_ROW(VML_LS_PROC_CREATE_LOCKSPACE, "CREATE_LOCKSPACE", vml_ls_create_lockspace_args,
           DMN_NO_FLAGS_FIELD, 0, handle_create_lockspace,
           DMN_MAIN_SOCKET),
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_BATCH_ACQUIRE, "BATCH_ACQUIRE",
      (xdrproc_t)xdr_vml_ext_batch_args, sizeof(vml_ext_batch_args), NULL, 0,
      ARGS_FLAGS(vml_ext_batch_args), 0, handle_batch_acquire,
      DMN_MAIN_SOCKET },
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_BATCH_RELEASE, "BATCH_RELEASE",
      (xdrproc_t)xdr_vml_ext_batch_args, sizeof(vml_ext_batch_args), NULL, 0,
      ARGS_FLAGS(vml_ext_batch_args), 0, handle_batch_release,
      DMN_MAIN_SOCKET },
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_LIST, "LIST",
      (xdrproc_t)xdr_vml_ext_list_args, sizeof(vml_ext_list_args),
      (xdrproc_t)xdr_vml_ext_list_ret, sizeof(vml_ext_list_ret),
      ARGS_FLAGS(vml_ext_list_args), 0, handle_list,
      DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED },
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_STATUS, "STATUS",
      (xdrproc_t)xdr_no_args, 0,
      (xdrproc_t)xdr_vml_ext_status_ret, sizeof(vml_ext_status_ret),
      DMN_NO_FLAGS_FIELD, 0, handle_status,
      DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED },
    /* Version 2: generations, <on_lockfailure>, the lifetime procedures. */
    EXT2_ROW(VML_EXT_PROC_BATCH_ACQUIRE, "BATCH_ACQUIRE", vml_ext_batch2_args,
             vml_ext_batch2_ret, ARGS_FLAGS(vml_ext_batch2_args), handle_batch2_acquire,
             DMN_MAIN_SOCKET),
    EXT2_ROW(VML_EXT_PROC_BATCH_RELEASE, "BATCH_RELEASE", vml_ext_batch2_args,
             vml_ext_batch2_ret, ARGS_FLAGS(vml_ext_batch2_args), handle_batch2_release,
             DMN_MAIN_SOCKET),
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, VML_EXT_PROC_LIST, "LIST",
      (xdrproc_t)xdr_vml_ext_list_args, sizeof(vml_ext_list_args),
      (xdrproc_t)xdr_vml_ext_list_ret, sizeof(vml_ext_list_ret),
      ARGS_FLAGS(vml_ext_list_args), 0, handle_list,
      DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED },
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, VML_EXT_PROC_STATUS, "STATUS",
      (xdrproc_t)xdr_no_args, 0,
      (xdrproc_t)xdr_vml_ext_status2_ret, sizeof(vml_ext_status2_ret),
      DMN_NO_FLAGS_FIELD, 0, handle_status2,
      DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED },
    EXT2_ROW(VML_EXT_PROC_INQUIRE, "INQUIRE", vml_ext_batch2_args, vml_ext_batch2_ret,
             ARGS_FLAGS(vml_ext_batch2_args), handle_inquire, DMN_MAIN_SOCKET),
    EXT2_ROW(VML_EXT_PROC_WHO, "WHO", vml_ext_who_args, vml_ext_who_ret,
             ARGS_FLAGS(vml_ext_who_args), handle_who,
             DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED),
    { VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION_2, VML_EXT_PROC_SHUTDOWN, "SHUTDOWN",
      (xdrproc_t)xdr_vml_ext_shutdown_args, sizeof(vml_ext_shutdown_args),
      (xdrproc_t)xdr_vml_ext_shutdown_ret, sizeof(vml_ext_shutdown_ret),
      ARGS_FLAGS(vml_ext_shutdown_args), VML_EXT_SHUTDOWN_FORCE, handle_shutdown,
      DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED },
    EXT2_ROW(VML_EXT_PROC_CHECK_NOW, "CHECK_NOW", vml_ext_check_args, vml_ext_check_ret,
             ARGS_FLAGS(vml_ext_check_args), handle_check_now,
             DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED),
    EXT2_ROW(VML_EXT_PROC_BREAK, "BREAK", vml_ext_break_args, vml_ext_break_ret,
             ARGS_FLAGS(vml_ext_break_args), handle_break,
             DMN_ADMIN_SOCKET | DMN_ALLOWED_WHEN_RESTRICTED),
};

const dmn_proc *dmn_dispatch_table(size_t *n)
{
    *n = sizeof(dispatch_table) / sizeof(dispatch_table[0]);
    return dispatch_table;
}

static bool program_known(unsigned int prog, unsigned int vers)
{
    for (size_t i = 0; i < sizeof(dispatch_table) / sizeof(dispatch_table[0]); i++) {
        if (dispatch_table[i].prog == prog && dispatch_table[i].vers == vers)
            return true;
    }
    return false;
}

static const dmn_proc *find_proc(unsigned int prog, unsigned int vers, int proc)
{
    for (size_t i = 0; i < sizeof(dispatch_table) / sizeof(dispatch_table[0]); i++) {
        if (dispatch_table[i].prog == prog && dispatch_table[i].vers == vers &&
            dispatch_table[i].proc == proc)
            return &dispatch_table[i];
    }
    return NULL;
}

/*
 * THE policy check, run for every call after its arguments decoded and before its handler,
 * in virtlockd's order: socket, flags, restriction, registration.
 */
static int check_policy(const dmn_proc *row, const dmn_session *session, const void *args,
                        vml_error *err)
{
    unsigned int want = session->socket == DMN_SOCKET_ADMIN ? DMN_ADMIN_SOCKET : DMN_MAIN_SOCKET;

    if (!(row->policy & want)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_DENIED,
                      "procedure %s is not allowed on the %s socket", row->name,
                      session->socket == DMN_SOCKET_ADMIN ? "admin" : "main");
        return -1;
    }
    if (row->flags_offset != DMN_NO_FLAGS_FIELD) {
        unsigned int flags;

        memcpy(&flags, (const char *)args + row->flags_offset, sizeof(flags));
        if (flags & ~row->allowed_flags) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                          "unsupported flags (0x%x) in function %s",
                          flags & ~row->allowed_flags, row->name);
            return -1;
        }
    }
    if (session->restricted && !(row->policy & DMN_ALLOWED_WHEN_RESTRICTED)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_DENIED,
                      "lock manager connection has been restricted");
        return -1;
    }
    if ((row->policy & DMN_NEEDS_OWNER) && !session->registered) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_OPERATION_INVALID,
                      "lock owner details have not been registered");
        return -1;
    }
    return 0;
}

/* Encode the error reply; -1 only when even that cannot be built (drop the client). */
static int error_reply(const vml_rpc_header *hdr, const vml_error *err, unsigned char **reply,
                       size_t *reply_len, char *why, size_t why_len)
{
    if (vml_wire_encode_error(hdr, err, reply, reply_len) < 0) {
        snprintf(why, why_len, "cannot encode an error reply (%s)", err->message);
        return -1;
    }
    return 0;
}

int dmn_dispatch_finish_deferred(dmn_context *ctx, dmn_session *session, unsigned char **reply,
                                 size_t *reply_len, char *why, size_t why_len)
{
    vml_ext_check_ret ret = { 0 };
    vml_rpc_header hdr = session->deferred_hdr;

    session->deferred = false;
    if (ctx->checker != NULL)
        dmn_checker_last_round(ctx->checker, &ret.checked, &ret.lost);
    ret.lost_total = ctx->lockspaces->lost;
    hdr.type = VML_RPC_REPLY;
    hdr.status = VML_RPC_OK;
    if (vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_ext_check_ret, &ret, reply, reply_len) < 0) {
        snprintf(why, why_len, "cannot encode the reply of CHECK_NOW");
        return -1;
    }
    return 0;
}

int dmn_dispatch_message(dmn_context *ctx, dmn_session *session, const unsigned char *msg,
                         size_t len, unsigned char **reply, size_t *reply_len,
                         char *why, size_t why_len)
{
    vml_rpc_header hdr;
    vml_error err = { 0 };
    const dmn_proc *row = NULL;
    void *args = NULL;
    void *ret = NULL;
    int rc = -1;

    *reply = NULL;
    *reply_len = 0;
    if (vml_wire_decode_header(msg, len, &hdr) < 0) {
        snprintf(why, why_len, "undecodable message header");
        return -1;
    }
    /* libvirt's order: program, then status, then type, then procedure. */
    if (!program_known(hdr.prog, hdr.vers)) {
        vml_error_set(&err, VIR_FROM_RPC, VIR_ERR_RPC, "Cannot find program %d version %d",
                      (int)hdr.prog, (int)hdr.vers);
        goto out;
    }
    if (hdr.status != VML_RPC_OK) {
        vml_error_set(&err, VIR_FROM_RPC, VIR_ERR_RPC, "Unexpected message status");
        goto out;
    }
    if (hdr.type != VML_RPC_CALL) {
        vml_error_set(&err, VIR_FROM_RPC, VIR_ERR_RPC, "unexpected message type %d",
                      (int)hdr.type);
        goto out;
    }
    row = find_proc(hdr.prog, hdr.vers, hdr.proc);
    if (row == NULL) {
        vml_error_set(&err, VIR_FROM_RPC, VIR_ERR_RPC, "unknown procedure: %d", hdr.proc);
        goto out;
    }
    if ((row->args_size > 0 && (args = calloc(1, row->args_size)) == NULL) ||
        (row->ret_size > 0 && (ret = calloc(1, row->ret_size)) == NULL)) {
        vml_error_set_errno(&err, VIR_FROM_RPC, ENOMEM, "cannot handle procedure %s", row->name);
        goto out;
    }
    if (vml_wire_decode_payload(msg, len, row->args_proc, args) < 0) {
        snprintf(why, why_len, "cannot decode the arguments of %s (serial %u)", row->name,
                 hdr.serial);
        goto out;
    }
    VML_DEBUG("client pid %d: %s (serial %u)", (int)session->peer_pid, row->name, hdr.serial);
    if (check_policy(row, session, args, &err) < 0 ||
        row->handler(ctx, session, args, ret, &err) < 0)
        goto out;
    if (session->deferred) {
        session->deferred_hdr = hdr;
        rc = 0;
        goto out;
    }
    hdr.type = VML_RPC_REPLY;
    hdr.status = VML_RPC_OK;
    /* The call is done (a lease may be granted): its reply must never turn into an error.
     * One retry for a transient shortage, then the client is dropped with the outcome
     * unknown to it, which is honest (it may ask again), unlike a false error. */
    if (vml_wire_encode(&hdr, row->ret_proc, ret, reply, reply_len) < 0 &&
        vml_wire_encode(&hdr, row->ret_proc, ret, reply, reply_len) < 0) {
        snprintf(why, why_len, "cannot encode the reply of %s (serial %u) after it succeeded",
                 row->name, hdr.serial);
        goto out;
    }
    rc = 0;
 out:
    /* A failed call is answered with an error reply; only an undecodable one (err unset,
     * rc -1) drops the client. */
    if (err.code != 0) {
        VML_DEBUG("client pid %d: call %d/%d/%d failed: %s", (int)session->peer_pid,
                  (int)hdr.prog, (int)hdr.vers, hdr.proc, err.message);
        rc = error_reply(&hdr, &err, reply, reply_len, why, why_len);
    }
    if (ret != NULL) {
        xdr_free(row->ret_proc, ret);
        free(ret);
    }
    if (args != NULL) {
        xdr_free(row->args_proc, args);
        free(args);
    }
    return rc;
}
