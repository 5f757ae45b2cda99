/* dmn_admin.c: WHO (who holds a lease: this daemon's table, else the lease file's owner record and lock) and BREAK. */
#include "dmn_admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vml_lease.h"
#include "vml_log.h"
#include "dmn_record.h"

/* One (lockspace, name) WHO looks at; strings owned. */
typedef struct candidate {
    char *lockspace;
    char *name;
} candidate;

typedef struct candidates {
    candidate items[VML_EXT_WHO_MAX];
    size_t n;
} candidates;

static void candidates_clear(candidates *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].lockspace);
        free(c->items[i].name);
    }
    c->n = 0;
}

/* Add (lockspace, name) unless present or full; -1 on ENOMEM. */
static int candidates_add(candidates *c, const char *lockspace, const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].lockspace, lockspace) == 0 && strcmp(c->items[i].name, name) == 0)
            return 0;
    }
    if (c->n == VML_EXT_WHO_MAX)
        return 0;
    c->items[c->n].lockspace = strdup(lockspace);
    c->items[c->n].name = strdup(name);
    if (c->items[c->n].lockspace == NULL || c->items[c->n].name == NULL) {
        free(c->items[c->n].lockspace);
        free(c->items[c->n].name);
        return -1;
    }
    c->n++;
    return 0;
}

/* Every lease a disk path may be: itself (direct mode), and the SHA-256 of its canonical
 * and given spellings in each registered lockspace (indirect mode, lockd's naming). */
static int disk_candidates(const dmn_context *ctx, const char *disk, candidates *c,
                           vml_error *err)
{
    char *canonical = NULL;
    char hashes[2][VML_LEASE_NAME_LEN + 1];
    size_t nhashes = 0;
    int ret = -1;

    if (disk[0] != '/') {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                      "disk '%s' is not an absolute path", disk);
        goto out;
    }
    if (vml_lease_canonical_path(disk, &canonical, err) < 0 ||
        vml_lease_hash(canonical, hashes[nhashes++], err) < 0)
        goto out;
    if (strcmp(canonical, disk) != 0 && vml_lease_hash(disk, hashes[nhashes++], err) < 0)
        goto out;
    if (candidates_add(c, "", canonical) < 0 || candidates_add(c, "", disk) < 0)
        goto nomem;
    for (const dmn_lockspace *ls = ctx->lockspaces->lockspaces; ls != NULL; ls = ls->next) {
        if (ls->path[0] == '\0')
            continue;
        for (size_t i = 0; i < nhashes; i++) {
            if (candidates_add(c, ls->path, hashes[i]) < 0)
                goto nomem;
        }
    }
    ret = 0;
    goto out;
 nomem:
    vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot look up disk %s", disk);
 out:
    free(canonical);
    return ret;
}

static char *dup_or_empty(const char *text)
{
    return strdup(text != NULL ? text : "");
}

static int holder_from_record(vml_ext_who_holder *h, const dmn_record *rec)
{
    memcpy(h->owner.uuid, rec->uuid, sizeof(h->owner.uuid));
    h->owner.pid = rec->owner_pid;
    h->since_usec = rec->acquired_usec;
    h->daemon_pid = rec->daemon_pid;
    h->owner.name = dup_or_empty(rec->domain);
    h->host = dup_or_empty(rec->host);
    h->boot_id = dup_or_empty(rec->boot_id);
    return h->owner.name != NULL && h->host != NULL && h->boot_id != NULL ? 0 : -1;
}

static int entry_strings(vml_ext_who_entry *e, const char *lockspace, const char *name,
                         const char *path, const char *disk)
{
    e->lockspace = dup_or_empty(lockspace);
    e->name = dup_or_empty(name);
    e->path = dup_or_empty(path);
    e->disk = dup_or_empty(disk);
    return e->lockspace != NULL && e->name != NULL && e->path != NULL && e->disk != NULL ? 0 : -1;
}

/* The entry of a lease this daemon holds. */
static int entry_from_lease(const dmn_context *ctx, const dmn_lease *lease, vml_ext_who_entry *e)
{
    const dmn_lockspaces *reg = ctx->lockspaces;

    e->source = VML_EXT_WHO_LOCAL;
    e->state = (lease->state & VML_SNAP_LOST) ? VML_EXT_WHO_LOST : VML_EXT_WHO_HELD;
    e->flags = lease->flags;
    e->generation = lease->generation;
    e->epoch = lease->epoch;
    if (entry_strings(e, lease->lockspace->path, lease->name, lease->path, lease->disk) < 0)
        return -1;
    e->holders.holders_val = calloc(lease->nholders, sizeof(vml_ext_who_holder));
    if (e->holders.holders_val == NULL)
        return -1;
    for (size_t i = 0; i < lease->nholders && i < VML_EXT_HOLDERS_MAX; i++) {
        const dmn_holding *h = lease->holders[i];
        vml_ext_who_holder *out = &e->holders.holders_val[i];

        e->holders.holders_len = (u_int)(i + 1);
        out->since_usec = h->since_usec;
        out->daemon_pid = (u_int)getpid();
        if (dmn_identity_copy(&out->owner, &h->owner->identity, NULL) < 0 ||
            (out->host = strdup(reg->host)) == NULL || (out->boot_id = strdup(reg->boot_id)) == NULL)
            return -1;
    }
    return 0;
}

/* What a lease file says when this daemon does not hold it. */
typedef struct file_probe {
    bool exists;
    bool locked;
    bool exclusive;
    dmn_record_kind kind;
    dmn_record rec;
} file_probe;

static void probe_file(const char *path, bool direct, file_probe *probe)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    struct stat st;
    int fd;

    memset(probe, 0, sizeof(*probe));
    probe->kind = DMN_RECORD_FOREIGN;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (direct ? 0 : O_NOFOLLOW));
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || (direct && S_ISBLK(st.st_mode)))) {
        close(fd);
        return;
    }
    probe->exists = true;
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
        probe->locked = true;
        probe->exclusive = fl.l_type == F_WRLCK;
    }
    if (!direct && dmn_record_read(fd, path, true, &probe->kind, &probe->rec, NULL) < 0)
        probe->kind = DMN_RECORD_FOREIGN;
    close(fd);
}

/* The entry of a lease file nobody holds here; false when there is no such file. */
static int entry_from_file(const candidate *c, vml_ext_who_entry *e, bool *found)
{
    bool direct = c->lockspace[0] == '\0';
    char *path = NULL;
    file_probe probe;
    bool name_holder = false;
    int ret = -1;

    *found = false;
    if (direct)
        path = strdup(c->name);
    else if (asprintf(&path, "%s/%s", c->lockspace, c->name) < 0)
        path = NULL;
    if (path == NULL)
        goto out;
    probe_file(path, direct, &probe);
    /* A disk image carries no record: it only says something when somebody locks it. */
    if (!probe.exists || (direct && !probe.locked)) {
        ret = 0;
        goto out;
    }
    *found = true;
    e->source = VML_EXT_WHO_RECORD;
    e->state = probe.locked ? VML_EXT_WHO_HELD : VML_EXT_WHO_FREE;
    if (probe.kind == DMN_RECORD_VALID) {
        e->generation = probe.rec.generation;
        if (probe.rec.held && probe.locked && probe.exclusive) {
            name_holder = true;
        } else if (probe.rec.held && !probe.locked) {
            e->state = VML_EXT_WHO_STALE;   /* its host crashed, or its keeper gave up */
            name_holder = true;
        } else if (!probe.rec.held && !probe.locked) {
            name_holder = true;             /* the last holder */
        }
    }
    if (entry_strings(e, c->lockspace, c->name, path, "") < 0)
        goto out;
    if (name_holder) {
        e->holders.holders_val = calloc(1, sizeof(vml_ext_who_holder));
        if (e->holders.holders_val == NULL)
            goto out;
        e->holders.holders_len = 1;
        if (holder_from_record(&e->holders.holders_val[0], &probe.rec) < 0)
            goto out;
    }
    ret = 0;
 out:
    free(path);
    return ret;
}

int dmn_admin_who(dmn_context *ctx, const vml_ext_who_args *args, vml_ext_who_ret *ret,
                  vml_error *err)
{
    candidates c = { .n = 0 };
    int rc = -1;

    if (args->name[0] != '\0') {
        dmn_lockspace named = { .path = args->lockspace };

        if ((args->lockspace[0] != '\0' && dmn_lockspace_check_path(args->lockspace, err) < 0) ||
            dmn_lockspace_check_name(&named, args->name, err) < 0)
            goto out;
        if (candidates_add(&c, args->lockspace, args->name) < 0)
            goto nomem;
    } else if (args->disk[0] != '\0') {
        if (disk_candidates(ctx, args->disk, &c, err) < 0)
            goto out;
    } else {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INVALID_ARG,
                      "WHO needs a lease (lockspace and name) or a disk path");
        goto out;
    }
    ret->entries.entries_val = calloc(c.n, sizeof(vml_ext_who_entry));
    if (ret->entries.entries_val == NULL)
        goto nomem;
    for (size_t i = 0; i < c.n; i++) {
        const dmn_lease *lease = dmn_lockspaces_find_lease(ctx->lockspaces, c.items[i].lockspace,
                                                           c.items[i].name);
        vml_ext_who_entry *e = &ret->entries.entries_val[ret->entries.entries_len];
        bool found = true;

        ret->entries.entries_len++;     /* counted before filling: xdr_free sees it all */
        if ((lease != NULL ? entry_from_lease(ctx, lease, e)
                           : entry_from_file(&c.items[i], e, &found)) < 0)
            goto nomem;
        if (!found)
            ret->entries.entries_len--;
    }
    rc = 0;
    goto out;
 nomem:
    vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot answer WHO");
 out:
    candidates_clear(&c);
    return rc;
}

/* Clear the stale record of path: only with the write lock, which proves nobody holds it. */
static int break_record(const dmn_context *ctx, const char *lockspace, const char *name,
                        vml_ext_break_ret *ret, vml_error *err)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    const dmn_lockspace *ls = dmn_lockspaces_find(ctx->lockspaces, lockspace);
    char *path = NULL;
    dmn_record_kind kind;
    dmn_record rec;
    int fd = -1;
    int rc = -1;

    if (asprintf(&path, "%s/%s", lockspace, name) < 0) {
        path = NULL;
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot break %s", name);
        goto out;
    }
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno, "Unable to open resource %s", path);
        goto out;
    }
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        char holder[VML_ERROR_MESSAGE_MAX] = "another process or host";

        if (dmn_record_read(fd, path, true, &kind, &rec, NULL) == 0 && kind == DMN_RECORD_VALID &&
            rec.held)
            dmn_record_describe(&rec, holder, sizeof(holder));
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_RESOURCE_BUSY,
                      "Lockspace resource '%s' is locked by %s: a live lock is never broken "
                      "from another daemon; break it on its own host", name, holder);
        goto out;
    }
    if (dmn_record_read(fd, path, true, &kind, &rec, err) < 0)
        goto out;
    if (kind != DMN_RECORD_VALID || !rec.held) {
        vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                      "nothing to break: nobody holds '%s' and its owner record names no holder",
                      path);
        goto out;
    }
    VML_WARN("break: clearing the stale owner record of %s (generation %llu, %s %s)", path,
             (unsigned long long)rec.generation, "last held by", rec.domain);
    rec.held = false;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rec.released_usec = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
    if (dmn_record_write(fd, path, &rec, ls == NULL || ls->sync_records, err) < 0)
        goto out;
    ret->result = VML_EXT_BREAK_RECORD;
    ret->generation = rec.generation;
    rc = 0;
 out:
    if (fd >= 0)
        close(fd);      /* drops the write lock taken above: ours was the only one */
    free(path);
    return rc;
}

int dmn_admin_break(dmn_context *ctx, const vml_ext_break_args *args, vml_ext_break_ret *ret,
                    vml_error *err)
{
    dmn_lockspace named = { .path = args->lockspace };
    dmn_lease *lease;
    dmn_owner **owners = NULL;
    size_t nowners;

    if ((args->lockspace[0] != '\0' && dmn_lockspace_check_path(args->lockspace, err) < 0) ||
        dmn_lockspace_check_name(&named, args->name, err) < 0)
        return -1;
    lease = dmn_lockspaces_find_lease(ctx->lockspaces, args->lockspace, args->name);
    if (lease == NULL) {
        if (args->lockspace[0] == '\0') {
            vml_error_set(err, VIR_FROM_LOCKSPACE, VIR_ERR_OPERATION_INVALID,
                          "'%s' is not held by this daemon; direct-mode locks carry no owner "
                          "record to clear", args->name);
            return -1;
        }
        return break_record(ctx, args->lockspace, args->name, ret, err);
    }
    nowners = lease->nholders;
    owners = calloc(nowners, sizeof(owners[0]));
    if (owners == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot break %s", args->name);
        return -1;
    }
    for (size_t i = 0; i < nowners; i++)
        owners[i] = lease->holders[i]->owner;
    ret->result = VML_EXT_BREAK_LOCAL;
    ret->holders = (u_int)nowners;
    ret->generation = lease->generation;
    VML_WARN("break: an administrator takes '%s' in lockspace '%s' from %zu holder(s)",
             args->name, args->lockspace, nowners);
    dmn_context_lease_lost(ctx, lease, "broken by an administrator (vmlockctl break)");
    dmn_lease_drop(ctx->lockspaces, lease);
    for (size_t i = 0; i < nowners; i++)
        dmn_owners_forget_if_idle(ctx->owners, owners[i]);
    free(owners);
    return 0;
}
