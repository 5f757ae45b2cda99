/* ctl_check.c: "vmlockctl check": a domain's disks mapped to leases exactly as vmlockd.so maps them, and who holds each. */
#include "ctl_check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_admin.h"
#include "ctl_domain.h"
#include "ctl_output.h"
#include "ctl_plugin.h"
#include "vml_lease.h"

typedef enum {
    ITEM_NOT_LOCKED,    /* libvirt never hands it to the lock manager, or the plugin skips it */
    ITEM_LOCKED,        /* it has a lease: lockspace and name are set */
    ITEM_ERROR,         /* the plugin would refuse it, and with it the domain */
    ITEM_UNKNOWN,       /* cannot be judged without libvirt (a storage pool volume) */
} item_kind;

typedef enum {
    STATE_UNCHECKED,        /* the daemon could not be asked */
    STATE_FREE,
    STATE_CONFLICT,         /* held in this daemon by another domain, incompatibly */
    STATE_COMPATIBLE,       /* held shared by others; this domain wants it shared too */
    STATE_SELF,             /* held by this very domain (it is running) */
    STATE_OUTSIDE,          /* locked by a process or host other than this daemon */
} item_state;

/* One disk or lease of the domain and what the check found; strings are owned by the item. */
typedef struct check_item {
    const ctl_disk *disk;           /* exactly one of disk and lease is set; borrowed */
    const ctl_lease *lease;
    size_t index;                   /* position among the domain's disks (for disks without target) */
    item_kind kind;
    char *reason;                   /* NOT_LOCKED, ERROR, UNKNOWN: why */
    const char *how;                /* LOCKED: "direct", "indirect", "LVM", "SCSI" or "lease" */
    char *lockspace;                /* LOCKED: "" for direct */
    char *name;
    bool shared;
    bool autocreate;                /* LOCKED: the daemon creates the lease file */
    bool unsure;                    /* LOCKED: the acquire may fail for reasons not checked here */
    item_state state;
    const vml_ext_lease *holder;    /* CONFLICT, COMPATIBLE, SELF: the daemon's lease, borrowed */
    char *through;                  /* the daemon's lease met through another name of the file */
    char *note;                     /* extra information about the probe */
} check_item;

typedef struct check_report {
    const ctl_check_options *opts;
    ctl_domain *dom;
    drv_config *config;
    check_item *items;
    size_t nitems;
    char *domain_problem;           /* a refusal that concerns the whole domain */
    bool daemon_reached;
    vml_error daemon_error;
    ctl_leases leases;
    size_t nleases;
} check_report;

static void item_clear(check_item *item)
{
    free(item->reason);
    free(item->lockspace);
    free(item->name);
    free(item->through);
    free(item->note);
}

static void report_clear(check_report *rep)
{
    for (size_t i = 0; i < rep->nitems; i++)
        item_clear(&rep->items[i]);
    free(rep->items);
    free(rep->domain_problem);
    ctl_leases_clear(&rep->leases);
    drv_config_free(rep->config);
    ctl_domain_free(rep->dom);
}

static int set_text(char **field, vml_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* *field = a new formatted string owned by the item (any previous one freed). */
static int set_text(char **field, vml_error *err, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    int rc;

    va_start(ap, fmt);
    rc = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot format the report");
        return -1;
    }
    free(*field);
    *field = text;
    return 0;
}

/* ---- mapping, exactly through the plugin's own code ---- */

/* Which of the plugin's rules produced (lockspace, name) for disk path. */
static const char *classify(const drv_config *config, const char *path, const char *lockspace,
                            const char *name)
{
    if (lockspace[0] == '\0')
        return "direct";
    if (config->file_lockspace_dir != NULL && strcmp(lockspace, config->file_lockspace_dir) == 0) {
        char hash[VML_LEASE_NAME_LEN + 1];
        char *canonical = NULL;
        bool is_hash = vml_lease_canonical_path(path, &canonical, NULL) == 0 &&
                       vml_lease_hash(canonical, hash, NULL) == 0 && strcmp(hash, name) == 0;

        free(canonical);
        if (is_hash)
            return "indirect";
    }
    if (config->lvm_lockspace_dir != NULL && strcmp(lockspace, config->lvm_lockspace_dir) == 0)
        return "LVM";
    if (config->scsi_lockspace_dir != NULL && strcmp(lockspace, config->scsi_lockspace_dir) == 0)
        return "SCSI";
    return "indirect";
}

/*
 * Record one resource with the plugin's drv_resource_add/resolve and copy out its lease.
 * A refusal by the plugin makes the item an ERROR (not a failure of the check).
 */
static int map_resource(check_item *item, const drv_config *config,
                        const drv_resource_tools *tools, unsigned int type, const char *name,
                        size_t nparams, const virLockManagerParam *params, unsigned int flags,
                        vml_error *err)
{
    drv_resource_set set = { 0 };
    vml_error refusal;
    int ret = -1;

    vml_error_clear(&refusal);
    if (drv_resource_add(&set, config, type, name, nparams, params, flags, &refusal) < 0 ||
        drv_resource_set_resolve(&set, config, tools, &refusal) < 0) {
        item->kind = ITEM_ERROR;
        ret = set_text(&item->reason, err, "%s", refusal.message);
        goto out;
    }
    if (set.count != 1) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "the plugin recorded %zu resources for '%s'", set.count, name);
        goto out;
    }
    item->kind = ITEM_LOCKED;
    item->shared = (set.items[0].lock_flags & VML_LS_ACQUIRE_SHARED) != 0;
    item->autocreate = (set.items[0].lock_flags & VML_LS_ACQUIRE_AUTOCREATE) != 0;
    if (set_text(&item->lockspace, err, "%s", set.items[0].lockspace) < 0 ||
        set_text(&item->name, err, "%s", set.items[0].lock_name) < 0)
        goto out;
    item->how = type == VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE
                ? "explicit" : classify(config, name, item->lockspace, item->name);
    ret = 0;
 out:
    drv_resource_set_clear(&set);
    return ret;
}

static bool is_path_type(const char *type)
{
    return strcmp(type, "file") == 0 || strcmp(type, "block") == 0 || strcmp(type, "dir") == 0;
}

/* What libvirt and the plugin do with one <disk> (facts: only file/block/dir top images). */
static int map_disk(check_item *item, const drv_config *config, const drv_resource_tools *tools,
                    bool *rw_disk, vml_error *err)
{
    const ctl_disk *disk = item->disk;

    if (disk->path == NULL) {
        if (strcmp(disk->type, "volume") == 0) {
            item->kind = ITEM_UNKNOWN;
            return set_text(&item->reason, err,
                            "storage pool volume '%s': libvirt locks it only when the pool "
                            "resolves it to a file or block device; check with that path",
                            disk->source_text != NULL ? disk->source_text : "?");
        }
        item->kind = ITEM_NOT_LOCKED;
        if (is_path_type(disk->type))
            return set_text(&item->reason, err, "no source (an empty drive)");
        return set_text(&item->reason, err,
                        "a disk of type '%s' is never handed to the lock manager by libvirt",
                        disk->type);
    }
    if (disk->readonly) {
        item->kind = ITEM_NOT_LOCKED;
        return set_text(&item->reason, err,
                        "read-only (readers are never locked: they neither block a writer nor "
                        "are blocked by one)");
    }
    if (!config->auto_disk_leases) {
        item->kind = ITEM_NOT_LOCKED;
        if (!disk->shareable)
            *rw_disk = true;
        return set_text(&item->reason, err, "auto_disk_leases = 0: disks are not locked");
    }
    return map_resource(item, config, tools, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, disk->path,
                        0, NULL, disk->shareable ? VIR_LOCK_MANAGER_RESOURCE_SHARED : 0, err);
}

/* True when the plugin's drvInit registers lockspace with the daemon (CREATE_LOCKSPACE). */
static bool is_registered_lockspace(const drv_config *config, const char *lockspace)
{
    const char *dirs[] = {
        config->file_lockspace_dir, config->lvm_lockspace_dir, config->scsi_lockspace_dir,
    };

    if (!config->auto_disk_leases)
        return false;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (dirs[i] != NULL && strcmp(dirs[i], lockspace) == 0)
            return true;
    }
    return false;
}

/* A <lease> as libvirt hands it over: params path, offset, lockspace, in that order. */
static int map_lease(check_item *item, const drv_config *config, vml_error *err)
{
    const ctl_lease *lease = item->lease;
    virLockManagerParam params[3];
    unsigned long long offset = 0;
    char *end = NULL;

    if (lease->key == NULL || lease->target_path == NULL || lease->lockspace == NULL) {
        item->kind = ITEM_ERROR;
        return set_text(&item->reason, err,
                        "the <lease> has no %s: libvirt refuses this definition",
                        lease->key == NULL ? "<key>"
                        : lease->lockspace == NULL ? "<lockspace>" : "<target path=...>");
    }
    if (lease->offset != NULL) {
        errno = 0;
        offset = strtoull(lease->offset, &end, 10);
        if (errno != 0 || end == lease->offset || *end != '\0' || lease->offset[0] == '-') {
            item->kind = ITEM_ERROR;
            return set_text(&item->reason, err,
                            "offset '%s' is not a number: libvirt refuses this definition",
                            lease->offset);
        }
    }
    memset(params, 0, sizeof(params));
    params[0].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[0].key = "path";
    params[0].value.str = lease->target_path;
    params[1].type = VIR_LOCK_MANAGER_PARAM_TYPE_ULONG;
    params[1].key = "offset";
    params[1].value.ul = offset;
    params[2].type = VIR_LOCK_MANAGER_PARAM_TYPE_STRING;
    params[2].key = "lockspace";
    params[2].value.str = lease->lockspace;
    if (map_resource(item, config, NULL, VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE, lease->key,
                     3, params, 0, err) < 0)
        return -1;
    if (item->kind == ITEM_LOCKED && !is_registered_lockspace(config, item->lockspace)) {
        item->unsure = true;
        return set_text(&item->note, err,
                        "the plugin registers only the configured *_lockspace_dir lockspaces "
                        "with the daemon: unless something else created '%s' there, the "
                        "acquire fails with 'Lockspace for path %s does not exist'",
                        item->lockspace, item->lockspace);
    }
    return 0;
}

static int map_domain(check_report *rep, vml_error *err)
{
    const ctl_domain *dom = rep->dom;
    bool rw_disk = false;
    size_t locked = 0;

    rep->items = calloc(dom->nleases + dom->ndisks + 1, sizeof(*rep->items));
    if (rep->items == NULL) {
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot build the report");
        return -1;
    }
    /* libvirt adds the leases first, then the disks in domain order. */
    for (size_t i = 0; i < dom->nleases; i++) {
        check_item *item = &rep->items[rep->nitems++];

        item->lease = &dom->leases[i];
        item->index = i;
        if (map_lease(item, rep->config, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < dom->ndisks; i++) {
        check_item *item = &rep->items[rep->nitems++];

        item->disk = &dom->disks[i];
        item->index = i;
        if (map_disk(item, rep->config, rep->opts->tools, &rw_disk, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < rep->nitems; i++)
        locked += rep->items[i].kind == ITEM_LOCKED;
    /* The plugin's own refusal, made before QEMU is even started. */
    if (locked == 0 && rw_disk && rep->config->require_lease_for_disks &&
        set_text(&rep->domain_problem, err,
                 "Read/write, exclusive access, disks were present, but no leases specified "
                 "(auto_disk_leases = 0 and require_lease_for_disks = 1)") < 0)
        return -1;
    return 0;
}

/* ---- who holds what ---- */

static void judge_holders(check_item *item, const vml_ext_lease *lease, const ctl_domain *dom)
{
    bool self = false;
    bool others = false;

    for (u_int h = 0; h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];

        if (dom->has_uuid && memcmp(holder->owner.uuid, dom->uuid, 16) == 0)
            self = true;
        else
            others = true;
    }
    item->holder = lease;
    if (!self && !others)
        item->state = STATE_FREE;
    else if (!others)
        item->state = STATE_SELF;
    else if (item->shared && (lease->flags & VML_LS_ACQUIRE_SHARED))
        item->state = STATE_COMPATIBLE;
    else
        item->state = STATE_CONFLICT;
}

typedef struct alias_search {
    dev_t dev;
    ino_t ino;
    const vml_ext_lease *found;
} alias_search;

static int match_inode(const vml_ext_lease *lease, void *opaque)
{
    alias_search *search = opaque;
    struct stat st;

    if (lease->path == NULL || lease->path[0] == '\0' || stat(lease->path, &st) < 0)
        return 0;
    if (st.st_dev != search->dev || st.st_ino != search->ino)
        return 0;
    search->found = lease;
    return 1;
}

/*
 * Not in the daemon's list under this name: test the lock byte the daemon would take, from
 * this process.  An OFD lock test sees locks of every other process and, through NFS or
 * GlusterFS, of other hosts; a conflict that is the daemon's own lock under another name of
 * the same file (a symlink or hard link) is reported as that lease.
 */
static int probe(check_item *item, check_report *rep, vml_error *err)
{
    struct flock fl = { .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    alias_search search = { 0 };
    struct stat st;
    char *path = NULL;
    int fd = -1;
    int ret = -1;

    item->state = STATE_FREE;
    if (item->lockspace[0] == '\0') {
        if (set_text(&path, err, "%s", item->name) < 0)
            goto out;
    } else if (set_text(&path, err, "%s/%s", item->lockspace, item->name) < 0) {
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && item->autocreate) {
            ret = 0;    /* no lease file yet: nobody holds it, the daemon creates it */
        } else if (errno == ENOENT) {
            /* direct disks and explicit leases are never created: the acquire fails */
            item->kind = ITEM_ERROR;
            ret = set_text(&item->reason, err, "%s does not exist, and the daemon never creates "
                           "%s", path, item->lockspace[0] == '\0' ? "disks" : "explicit leases");
        } else {
            ret = set_text(&item->note, err, "cannot test %s for locks held outside vmlockd: %s",
                           path, strerror(errno));
        }
        goto out;
    }
    fl.l_type = item->shared ? F_RDLCK : F_WRLCK;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        ret = set_text(&item->note, err, "cannot test %s for locks held outside vmlockd: %s",
                       path, strerror(errno));
        goto out;
    }
    if (fl.l_type == F_UNLCK) {
        ret = 0;
        goto out;
    }
    if (fstat(fd, &st) == 0) {
        search.dev = st.st_dev;
        search.ino = st.st_ino;
        ctl_leases_each(&rep->leases, match_inode, &search);
    }
    if (search.found != NULL) {
        judge_holders(item, search.found, rep->dom);
        if (item->state == STATE_FREE)
            item->state = STATE_OUTSIDE;
        ret = set_text(&item->through, err, "%s", search.found->path);
        goto out;
    }
    item->state = STATE_OUTSIDE;
    ret = 0;
 out:
    if (fd >= 0)
        close(fd);
    free(path);
    return ret;
}

static int count_lease(const vml_ext_lease *lease, void *opaque)
{
    (void)lease;
    (*(size_t *)opaque)++;
    return 0;
}

static int find_holders(check_report *rep, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    int ret = -1;

    if (vml_client_connect(&client, rep->opts->admin_socket, &rep->daemon_error) < 0 ||
        ctl_leases_fetch(&client, &rep->leases, &rep->daemon_error) < 0) {
        ret = 0;    /* reported as "daemon not reachable", the mapping is still worth showing */
        goto out;
    }
    rep->daemon_reached = true;
    ctl_leases_each(&rep->leases, count_lease, &rep->nleases);
    for (size_t i = 0; i < rep->nitems; i++) {
        check_item *item = &rep->items[i];
        const vml_ext_lease *lease;

        if (item->kind != ITEM_LOCKED)
            continue;
        lease = ctl_leases_find(&rep->leases, item->lockspace, item->name);
        if (lease != NULL)
            judge_holders(item, lease, rep->dom);
        else if (probe(item, rep, err) < 0)
            goto out;
    }
    ret = 0;
 out:
    vml_client_close(&client);
    return ret;
}

/* ---- the report ---- */

static bool item_blocks(const check_item *item)
{
    return item->kind == ITEM_ERROR || item->state == STATE_CONFLICT ||
           item->state == STATE_OUTSIDE;
}

static int verdict_status(const check_report *rep)
{
    bool unknown = false;

    if (rep->domain_problem != NULL)
        return CTL_EXIT_NO;
    for (size_t i = 0; i < rep->nitems; i++) {
        if (item_blocks(&rep->items[i]))
            return CTL_EXIT_NO;
        unknown = unknown || rep->items[i].kind == ITEM_UNKNOWN || rep->items[i].unsure;
    }
    if (!rep->daemon_reached)
        return CTL_EXIT_FAILED;
    return unknown ? CTL_EXIT_UNKNOWN : CTL_EXIT_OK;
}

static const char *state_name(const check_item *item)
{
    switch (item->kind) {
    case ITEM_NOT_LOCKED: return "not-locked";
    case ITEM_ERROR: return "refused";
    case ITEM_UNKNOWN: return "unknown";
    case ITEM_LOCKED: break;
    }
    switch (item->state) {
    case STATE_UNCHECKED: return "unchecked";
    case STATE_FREE: return "free";
    case STATE_CONFLICT: return "held";
    case STATE_COMPATIBLE: return "held-shared";
    case STATE_SELF: return "held-by-self";
    case STATE_OUTSIDE: return "held-outside";
    }
    return "unknown";
}

static void print_item_label(FILE *out, const check_item *item)
{
    if (item->lease != NULL) {
        fputs("lease ", out);
        ctl_text_string(out, item->lease->key != NULL ? item->lease->key : "(no key)");
        return;
    }
    fputs("disk ", out);
    if (item->disk->target != NULL)
        ctl_text_string(out, item->disk->target);
    else
        fprintf(out, "#%zu", item->index + 1);
    if (item->disk->path != NULL) {
        fputc(' ', out);
        ctl_text_string(out, item->disk->path);
    } else if (item->disk->source_text != NULL) {
        fputc(' ', out);
        ctl_text_string(out, item->disk->source_text);
    }
}

static void print_holder_text(FILE *out, const vml_ext_lease *lease)
{
    const vml_ext_holder *first = &lease->holders.holders_val[0];
    char uuid[CTL_UUID_TEXT_LEN];

    ctl_format_uuid((const unsigned char *)first->owner.uuid, uuid);
    fputs("domain '", out);
    ctl_text_string(out, first->owner.name);
    fprintf(out, "' (uuid %s, pid %u)", uuid, first->owner.pid);
    if (lease->holders.holders_len > 1)
        fprintf(out, " and %u other(s)", lease->holders.holders_len - 1);
}

static void print_state_text(FILE *out, const check_item *item)
{
    switch (item->state) {
    case STATE_UNCHECKED:
        fputs("holders unknown (the daemon was not reached)", out);
        break;
    case STATE_FREE:
        fputs("free", out);
        break;
    case STATE_CONFLICT:
        fprintf(out, "HELD %s by ", (item->holder->flags & VML_LS_ACQUIRE_SHARED)
                ? "shared" : "exclusively");
        print_holder_text(out, item->holder);
        fputs(": conflict", out);
        break;
    case STATE_COMPATIBLE:
        fputs("held shared by ", out);
        print_holder_text(out, item->holder);
        fputs(": compatible, both shareable", out);
        break;
    case STATE_SELF:
        fputs("held by this domain itself (it is running)", out);
        break;
    case STATE_OUTSIDE:
        fputs("HELD by another process or host, outside this vmlockd: conflict", out);
        break;
    }
    if (item->through != NULL) {
        fputs(" (the same file as lease '", out);
        ctl_text_string(out, item->through);
        fputs("')", out);
    }
    if (item->note != NULL) {
        fputs(" (", out);
        ctl_text_string(out, item->note);
        fputc(')', out);
    }
}

static void print_item_text(FILE *out, const check_item *item)
{
    print_item_label(out, item);
    fputs(": ", out);
    switch (item->kind) {
    case ITEM_NOT_LOCKED:
        fputs("not locked: ", out);
        ctl_text_string(out, item->reason);
        break;
    case ITEM_ERROR:
        fputs("REFUSED by the plugin: ", out);
        ctl_text_string(out, item->reason);
        break;
    case ITEM_UNKNOWN:
        fputs("cannot tell: ", out);
        ctl_text_string(out, item->reason);
        break;
    case ITEM_LOCKED:
        fprintf(out, "%s, %s, ", item->how, item->shared ? "shared" : "exclusive");
        if (item->lockspace[0] == '\0') {
            fputs("lock on the disk itself: ", out);
        } else {
            fputs("lease file ", out);
            ctl_text_string(out, item->lockspace);
            fputc('/', out);
            ctl_text_string(out, item->name);
            fputs(": ", out);
        }
        print_state_text(out, item);
        break;
    }
    fputc('\n', out);
}

/* Why the domain would not start, for the verdict line: the first reason found. */
static void print_first_reason_text(FILE *out, const check_report *rep)
{
    size_t count = rep->domain_problem != NULL;
    const check_item *first = NULL;

    for (size_t i = 0; i < rep->nitems; i++) {
        if (item_blocks(&rep->items[i])) {
            if (first == NULL)
                first = &rep->items[i];
            count++;
        }
    }
    if (rep->domain_problem != NULL) {
        ctl_text_string(out, rep->domain_problem);
    } else if (first != NULL) {
        print_item_label(out, first);
        if (first->kind == ITEM_ERROR) {
            fputs(" is refused by the plugin", out);
        } else if (first->state == STATE_OUTSIDE) {
            fputs(" is locked by another process or host", out);
        } else {
            fputs(" is held by ", out);
            print_holder_text(out, first->holder);
        }
    }
    if (count > 1)
        fprintf(out, " (and %zu more problem(s) above)", count - 1);
}

static void print_text(const check_report *rep, int status)
{
    FILE *out = stdout;
    char uuid[CTL_UUID_TEXT_LEN];
    bool self = false;

    fputs("domain '", out);
    ctl_text_string(out, rep->dom->name);
    if (rep->dom->has_uuid) {
        ctl_format_uuid(rep->dom->uuid, uuid);
        fprintf(out, "' (uuid %s)\n", uuid);
    } else {
        fputs("' (no uuid: libvirt gives it one when it is defined)\n", out);
    }
    fputs("plugin config ", out);
    ctl_text_string(out, rep->opts->plugin_config);
    fputs(": ", out);
    ctl_plugin_describe_mode(rep->config, out);
    fputs("\ndaemon ", out);
    ctl_text_string(out, rep->opts->admin_socket);
    if (rep->daemon_reached) {
        fprintf(out, ": %zu lease(s) held\n", rep->nleases);
    } else {
        fputs(": NOT REACHED: ", out);
        ctl_text_string(out, rep->daemon_error.message);
        fputc('\n', out);
    }
    if (rep->nitems == 0)
        fputs("(the domain has no disk and no lease)\n", out);
    for (size_t i = 0; i < rep->nitems; i++) {
        print_item_text(out, &rep->items[i]);
        self = self || rep->items[i].state == STATE_SELF;
    }
    fputs("would this VM start? ", out);
    switch (status) {
    case CTL_EXIT_OK:
        fputs(self ? "yes, as far as locks go (it already holds its leases: it is running)"
                   : "yes", out);
        break;
    case CTL_EXIT_NO:
        fputs("no: ", out);
        print_first_reason_text(out, rep);
        break;
    case CTL_EXIT_UNKNOWN:
        fputs("cannot tell: no conflict found, but some disk could not be judged (see above)",
              out);
        break;
    default:
        fputs("cannot tell: the daemon was not reached", out);
        break;
    }
    fputc('\n', out);
}

static void json_key_string(FILE *out, const char *key, const char *value)
{
    fprintf(out, "\"%s\": ", key);
    if (value == NULL)
        fputs("null", out);
    else
        ctl_json_string(out, value);
}

static void print_holders_json(FILE *out, const vml_ext_lease *lease)
{
    fputs("[", out);
    for (u_int h = 0; lease != NULL && h < lease->holders.holders_len; h++) {
        const vml_ext_holder *holder = &lease->holders.holders_val[h];
        char uuid[CTL_UUID_TEXT_LEN];

        ctl_format_uuid((const unsigned char *)holder->owner.uuid, uuid);
        fputs(h == 0 ? "{" : ", {", out);
        json_key_string(out, "domain", holder->owner.name);
        fprintf(out, ", \"uuid\": \"%s\", \"id\": %u, \"pid\": %u, \"since_usec\": %" PRId64 "}",
                uuid, holder->owner.id, holder->owner.pid, (int64_t)holder->since_usec);
    }
    fputs("]", out);
}

static void print_item_json(FILE *out, const check_item *item)
{
    fputs("{", out);
    json_key_string(out, "kind", item->disk != NULL ? "disk" : "lease");
    if (item->disk != NULL) {
        fputs(", ", out);
        json_key_string(out, "target", item->disk->target);
        fputs(", ", out);
        json_key_string(out, "type", item->disk->type);
        fputs(", ", out);
        json_key_string(out, "device", item->disk->device);
        fputs(", ", out);
        json_key_string(out, "source", item->disk->path != NULL ? item->disk->path
                                                                : item->disk->source_text);
        fprintf(out, ", \"readonly\": %s, \"shareable\": %s, \"line\": %u",
                item->disk->readonly ? "true" : "false",
                item->disk->shareable ? "true" : "false", item->disk->line);
    } else {
        fputs(", ", out);
        json_key_string(out, "key", item->lease->key);
        fputs(", ", out);
        json_key_string(out, "lease_lockspace", item->lease->lockspace);
        fputs(", ", out);
        json_key_string(out, "target_path", item->lease->target_path);
        fprintf(out, ", \"line\": %u", item->lease->line);
    }
    /* A resource the plugin mapped keeps its lease even when the acquire would then fail. */
    fprintf(out, ", \"locked\": %s", item->lockspace != NULL ? "true" : "false");
    fputs(", ", out);
    json_key_string(out, "how", item->lockspace != NULL ? item->how : NULL);
    fputs(", ", out);
    json_key_string(out, "mode", item->lockspace == NULL ? NULL
                                 : item->shared ? "shared" : "exclusive");
    fputs(", ", out);
    json_key_string(out, "lockspace", item->lockspace);
    fputs(", ", out);
    json_key_string(out, "lease", item->name);
    fputs(", ", out);
    json_key_string(out, "state", state_name(item));
    fprintf(out, ", \"conflict\": %s, \"holders\": ", item_blocks(item) ? "true" : "false");
    print_holders_json(out, item->holder);
    fputs(", ", out);
    json_key_string(out, "through", item->through);
    fputs(", ", out);
    json_key_string(out, "reason", item->reason);
    fputs(", ", out);
    json_key_string(out, "note", item->note);
    fputs("}", out);
}

static void print_json(const check_report *rep, int status)
{
    FILE *out = stdout;
    const char *verdict = status == CTL_EXIT_OK ? "yes" : status == CTL_EXIT_NO ? "no" : "unknown";
    char uuid[CTL_UUID_TEXT_LEN];

    fputs("{", out);
    json_key_string(out, "domain", rep->dom->name);
    fputs(", ", out);
    if (rep->dom->has_uuid)
        ctl_format_uuid(rep->dom->uuid, uuid);
    json_key_string(out, "uuid", rep->dom->has_uuid ? uuid : NULL);
    fputs(",\n \"config\": {", out);
    json_key_string(out, "path", rep->opts->plugin_config);
    fputs(", ", out);
    json_key_string(out, "mode", ctl_plugin_mode_name(rep->config));
    fprintf(out, ", \"auto_disk_leases\": %s, \"require_lease_for_disks\": %s, ",
            rep->config->auto_disk_leases ? "true" : "false",
            rep->config->require_lease_for_disks ? "true" : "false");
    json_key_string(out, "file_lockspace_dir", rep->config->file_lockspace_dir);
    fputs(", ", out);
    json_key_string(out, "lvm_lockspace_dir", rep->config->lvm_lockspace_dir);
    fputs(", ", out);
    json_key_string(out, "scsi_lockspace_dir", rep->config->scsi_lockspace_dir);
    fputs("},\n \"daemon\": {", out);
    json_key_string(out, "socket", rep->opts->admin_socket);
    fprintf(out, ", \"reachable\": %s, ", rep->daemon_reached ? "true" : "false");
    json_key_string(out, "error", rep->daemon_reached ? NULL : rep->daemon_error.message);
    fprintf(out, ", \"leases\": %zu},\n \"items\": [", rep->nleases);
    for (size_t i = 0; i < rep->nitems; i++) {
        fputs(i == 0 ? "\n  " : ",\n  ", out);
        print_item_json(out, &rep->items[i]);
    }
    fputs(rep->nitems == 0 ? "],\n " : "\n ],\n ", out);
    json_key_string(out, "domain_problem", rep->domain_problem);
    fputs(", ", out);
    json_key_string(out, "would_start", verdict);
    fputs("}\n", out);
}

int ctl_check_run(const ctl_check_options *opts, int *status, vml_error *err)
{
    check_report rep;
    int ret = -1;

    memset(&rep, 0, sizeof(rep));
    rep.opts = opts;
    vml_error_clear(&rep.daemon_error);
    if (ctl_domain_parse_file(opts->domain_xml, &rep.dom, err) < 0 ||
        ctl_plugin_config_load(opts->plugin_config, &rep.config, err) < 0 ||
        map_domain(&rep, err) < 0 ||
        find_holders(&rep, err) < 0)
        goto out;
    *status = verdict_status(&rep);
    if (opts->json)
        print_json(&rep, *status);
    else
        print_text(&rep, *status);
    if (!rep.daemon_reached)
        *err = rep.daemon_error;
    ret = 0;
 out:
    report_clear(&rep);
    return ret;
}

int ctl_check_disk_lease(const char *plugin_config, const drv_resource_tools *tools,
                         const char *disk, char **lockspace, char **name, vml_error *err)
{
    drv_config *config = NULL;
    check_item item;
    int ret = -1;

    memset(&item, 0, sizeof(item));
    *lockspace = NULL;
    *name = NULL;
    if (ctl_plugin_config_load(plugin_config, &config, err) < 0)
        goto out;
    if (!config->auto_disk_leases) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                      "%s sets auto_disk_leases = 0: the plugin locks no disk, so disk '%s' "
                      "has no lease; ask with --lease LOCKSPACE NAME", plugin_config, disk);
        goto out;
    }
    if (map_resource(&item, config, tools, VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK, disk, 0, NULL,
                     0, err) < 0)
        goto out;
    if (item.kind != ITEM_LOCKED) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "the plugin would refuse disk '%s': %s", disk,
                      item.reason != NULL ? item.reason : "no reason given");
        goto out;
    }
    *lockspace = item.lockspace;
    *name = item.name;
    item.lockspace = NULL;
    item.name = NULL;
    ret = 0;
 out:
    item_clear(&item);
    drv_config_free(config);
    return ret;
}
