/* drv_resource.c: recording a domain's disks and leases, and mapping them lazily to daemon leases. */
#include "drv_resource.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vml_lease.h"
#include "vml_log.h"
#include "vml_child.h"

/* Output beyond this from lvs or scsi_id means something is badly wrong: stop it. */
#define TOOL_OUTPUT_LIMIT (1024 * 1024)

static const drv_resource_tools default_tools = {
    .lvs = DRV_RESOURCE_LVS,
    .scsi_id = DRV_RESOURCE_SCSI_ID,
};

static void resource_clear(drv_resource *res)
{
    free(res->name);
    free(res->lease_path);
    free(res->lease_lockspace);
    free(res->lockspace);
    free(res->lock_name);
    memset(res, 0, sizeof(*res));
}

void drv_resource_set_clear(drv_resource_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++)
        resource_clear(&set->items[i]);
    free(set->items);
    memset(set, 0, sizeof(*set));
}

static int copy_string(const char *text, char **out, vml_error *err)
{
    *out = strdup(text);
    if (*out == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot copy '%s'", text);
        return -1;
    }
    return 0;
}

/* A string the daemon accepts: it has to fit the wire's string bound. */
static int check_wire_length(const char *what, const char *text, vml_error *err)
{
    if (strlen(text) > VML_LS_STRING_MAX) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "%s is longer than %d bytes", what, VML_LS_STRING_MAX);
        return -1;
    }
    return 0;
}

/* Read a lease's params (borrowed) into res (lease_path, lease_lockspace owned by res). */
static int parse_lease_params(drv_resource *res, size_t nparams,
                              const virLockManagerParam *params, vml_error *err)
{
    const char *path = NULL;
    const char *lockspace = NULL;

    for (size_t i = 0; i < nparams; i++) {
        const virLockManagerParam *param = &params[i];
        const char *key = param->key != NULL ? param->key : "(null)";

        if (strcmp(key, "path") == 0 && param->type == VIR_LOCK_MANAGER_PARAM_TYPE_STRING) {
            path = param->value.str;
        } else if (strcmp(key, "lockspace") == 0 &&
                   param->type == VIR_LOCK_MANAGER_PARAM_TYPE_STRING) {
            lockspace = param->value.str;
        } else if (strcmp(key, "offset") == 0 &&
                   param->type == VIR_LOCK_MANAGER_PARAM_TYPE_ULONG) {
            if (param->value.ul != 0) {
                vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                              "Offset must be zero for this lock manager (lease '%s' has "
                              "offset %llu)", res->name, param->value.ul);
                return -1;
            }
        } else if (strcmp(key, "path") == 0 || strcmp(key, "lockspace") == 0 ||
                   strcmp(key, "offset") == 0) {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                          "parameter '%s' of lease '%s' has the wrong type %d", key,
                          res->name, param->type);
            return -1;
        } else {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                          "Unexpected parameter '%s' for lease resource '%s'", key, res->name);
            return -1;
        }
    }
    if (path == NULL || path[0] == '\0' || lockspace == NULL || lockspace[0] == '\0') {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Missing path or lockspace for lease resource '%s'", res->name);
        return -1;
    }
    if (path[0] != '/') {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                      "lease '%s': target path '%s' is not absolute", res->name, path);
        return -1;
    }
    if (strchr(lockspace, '/') != NULL || strcmp(lockspace, ".") == 0 ||
        strcmp(lockspace, "..") == 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                      "lease '%s': lockspace '%s' must be a single directory name",
                      res->name, lockspace);
        return -1;
    }
    if (check_wire_length("lease target path", path, err) < 0 ||
        check_wire_length("lease lockspace", lockspace, err) < 0 ||
        copy_string(path, &res->lease_path, err) < 0 ||
        copy_string(lockspace, &res->lease_lockspace, err) < 0)
        return -1;
    return 0;
}

static int set_append(drv_resource_set *set, drv_resource *res, vml_error *err)
{
    if (set->count == set->capacity) {
        size_t capacity = set->capacity == 0 ? 8 : set->capacity * 2;
        drv_resource *items = realloc(set->items, capacity * sizeof(*items));

        if (items == NULL) {
            vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot record resource '%s'",
                                res->name);
            return -1;
        }
        set->items = items;
        set->capacity = capacity;
    }
    set->items[set->count++] = *res;
    memset(res, 0, sizeof(*res));
    set->resolved = false;
    return 0;
}

int drv_resource_add(drv_resource_set *set, const drv_config *config, unsigned int type,
                     const char *name, size_t nparams, const virLockManagerParam *params,
                     unsigned int flags, vml_error *err)
{
    const unsigned int known = VIR_LOCK_MANAGER_RESOURCE_READONLY |
                               VIR_LOCK_MANAGER_RESOURCE_SHARED;
    drv_resource res = { .type = type };
    int ret = -1;

    if (flags & ~known) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "unsupported flags (0x%x) in function %s", flags & ~known,
                      "drvAddResource");
        goto out;
    }
    if (type != VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK &&
        type != VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Unknown lock manager resource type %u", type);
        goto out;
    }
    if (name == NULL || name[0] == '\0') {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "missing name for %s resource",
                      type == VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK ? "disk" : "lease");
        goto out;
    }
    if (nparams > 0 && params == NULL) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INVALID_ARG,
                      "resource '%s': %zu parameters but no parameter array", name, nparams);
        goto out;
    }
    if (copy_string(name, &res.name, err) < 0)
        goto out;
    res.shared = (flags & VIR_LOCK_MANAGER_RESOURCE_SHARED) != 0;

    if (type == VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE) {
        if (parse_lease_params(&res, nparams, params, err) < 0 ||
            check_wire_length("lease key", name, err) < 0)
            goto out;
    } else if (nparams > 0) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "Unexpected parameter '%s' for disk resource '%s'",
                      params[0].key != NULL ? params[0].key : "(null)", name);
        goto out;
    }

    /* A read-only user neither blocks a writer nor is blocked by one (as lockd). */
    if (flags & VIR_LOCK_MANAGER_RESOURCE_READONLY) {
        ret = 0;
        goto out;
    }
    if (type == VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK) {
        if (!config->auto_disk_leases) {
            if (!res.shared)
                set->has_rw_disks = true;
            ret = 0;
            goto out;
        }
        if (name[0] != '/') {
            vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_CONFIG_UNSUPPORTED,
                          "disk path '%s' is not absolute: it cannot be locked", name);
            goto out;
        }
        if (check_wire_length("disk path", name, err) < 0)
            goto out;
    }
    if (set_append(set, &res, err) < 0)
        goto out;
    ret = 0;
 out:
    resource_clear(&res);
    return ret;
}

/* ---- running lvs and scsi_id ---- */

/* Read fd to EOF, keeping the first buf_size bytes; -1 (errno set) on error or over the limit. */
static int read_tool_output(int fd, char *buf, size_t buf_size, size_t *kept)
{
    char scratch[4096];
    size_t total = 0;

    *kept = 0;
    for (;;) {
        ssize_t n;

        if (*kept < buf_size)
            n = read(fd, buf + *kept, buf_size - *kept);
        else
            n = read(fd, scratch, sizeof(scratch));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (*kept < buf_size)
            *kept += (size_t)n;
        total += (size_t)n;
        if (total > TOOL_OUTPUT_LIMIT) {
            errno = EFBIG;
            return -1;
        }
    }
}

/* The first line of text[0..len) with leading blanks removed, or NULL when that is empty. */
static int first_line(const char *text, size_t len, char **line, vml_error *err)
{
    const char *start = text;
    const char *end = text + len;
    const char *nul = memchr(text, '\0', len);
    const char *newline;

    if (nul != NULL)
        end = nul;
    while (start < end && isspace((unsigned char)*start))
        start++;
    newline = memchr(start, '\n', (size_t)(end - start));
    if (newline != NULL)
        end = newline;
    *line = NULL;
    if (end == start)
        return 0;
    *line = strndup(start, (size_t)(end - start));
    if (*line == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot copy a tool's output");
        return -1;
    }
    return 0;
}

int drv_resource_run_tool(const char *const argv[], char **line, vml_error *err)
{
    vml_child child = { .pid = -1, .out_fd = -1, .errno_fd = -1 };
    char *output = NULL;
    size_t kept = 0;
    int exec_errno = 0;
    int status = 0;
    int ret = -1;

    *line = NULL;
    output = malloc(DRV_RESOURCE_TOOL_OUTPUT_MAX);
    if (output == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot run '%s'", argv[0]);
        goto out;
    }
    if (vml_child_spawn(argv, true, &child) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot start '%s'", argv[0]);
        goto out;
    }
    if (read_tool_output(child.out_fd, output, DRV_RESOURCE_TOOL_OUTPUT_MAX, &kept) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot read the output of '%s'",
                            argv[0]);
        kill(child.pid, SIGKILL);
        goto out;
    }
    if (vml_child_finish(&child, &exec_errno, &status) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, errno, "cannot wait for '%s'", argv[0]);
        goto out;
    }
    if (exec_errno != 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, exec_errno, "cannot run '%s'", argv[0]);
        goto out;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ret = first_line(output, kept, line, err);
        goto out;
    }
    /* A tool that fails does not know the device: *line stays NULL. */
    VML_DEBUG("'%s' failed (wait status 0x%x)", argv[0], (unsigned int)status);
    ret = 0;
 out:
    if (child.pid > 0)
        vml_child_finish(&child, &exec_errno, &status);
    free(output);
    return ret;
}

/* ---- resolution ---- */

/* A tool's answer becomes a file name in a lockspace: it must be one path component. */
static int check_identifier(const char *tool, const char *disk, const char *id,
                            vml_error *err)
{
    if (strchr(id, '/') != NULL || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 ||
        strlen(id) > 255) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "'%s' printed '%s' for disk '%s', which cannot name a lease file",
                      tool, id, disk);
        return -1;
    }
    return 0;
}

/* Ask a tool for the identifier of block device disk; *id NULL when it does not know it. */
static int identify_device(const char *tool, const char *const argv[], const char *disk,
                           char **id, vml_error *err)
{
    if (drv_resource_run_tool(argv, id, err) < 0)
        return -1;
    if (*id != NULL && check_identifier(tool, disk, *id, err) < 0) {
        free(*id);
        *id = NULL;
        return -1;
    }
    VML_DEBUG("'%s' identifies '%s' as '%s'", tool, disk, *id != NULL ? *id : "(nothing)");
    return 0;
}

/* The (lockspace, name, flags) of one disk (facts 4.2 order: LVM, SCSI, indirect, direct). */
static int resolve_disk(drv_resource *res, const drv_config *config,
                        const drv_resource_tools *tools, vml_error *err)
{
    bool is_device = strncmp(res->name, "/dev/", 5) == 0;
    char lease_hash[VML_LEASE_NAME_LEN + 1];
    const char *lockspace = "";
    char *canonical = NULL;
    char *id = NULL;
    unsigned int flags = 0;
    int ret = -1;

    if (is_device && config->lvm_lockspace_dir != NULL) {
        const char *const argv[] = { tools->lvs, "--noheadings", "--unbuffered", "--nosuffix",
                                     "--options", "uuid", res->name, NULL };

        if (identify_device(tools->lvs, argv, res->name, &id, err) < 0)
            goto out;
        lockspace = config->lvm_lockspace_dir;
    }
    if (id == NULL && is_device && config->scsi_lockspace_dir != NULL) {
        const char *const argv[] = { tools->scsi_id, "--replace-whitespace", "--whitelisted",
                                     "--device", res->name, NULL };

        if (identify_device(tools->scsi_id, argv, res->name, &id, err) < 0)
            goto out;
        lockspace = config->scsi_lockspace_dir;
    }
    if (id != NULL) {
        flags = VML_LS_ACQUIRE_AUTOCREATE;
    } else if (config->file_lockspace_dir != NULL) {
        /* One file reached through a symlink or another spelling gets one lease. */
        if (vml_lease_canonical_path(res->name, &canonical, err) < 0 ||
            vml_lease_hash(canonical, lease_hash, err) < 0 ||
            copy_string(lease_hash, &id, err) < 0)
            goto out;
        lockspace = config->file_lockspace_dir;
        flags = VML_LS_ACQUIRE_AUTOCREATE;
    } else {
        if (copy_string(res->name, &id, err) < 0)
            goto out;
        lockspace = "";
    }
    if (copy_string(lockspace, &res->lockspace, err) < 0)
        goto out;
    res->lock_name = id;
    id = NULL;
    res->lock_flags = flags | (res->shared ? VML_LS_ACQUIRE_SHARED : 0);
    ret = 0;
 out:
    free(id);
    free(canonical);
    return ret;
}

/* An explicit <lease>: lockspace "<target path>/<lockspace>", never autocreated (as lockd). */
static int resolve_lease(drv_resource *res, vml_error *err)
{
    if (asprintf(&res->lockspace, "%s/%s", res->lease_path, res->lease_lockspace) < 0) {
        res->lockspace = NULL;
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot name the lockspace of '%s'",
                            res->name);
        return -1;
    }
    if (copy_string(res->name, &res->lock_name, err) < 0)
        return -1;
    res->lock_flags = res->shared ? VML_LS_ACQUIRE_SHARED : 0;
    return 0;
}

int drv_resource_set_resolve(drv_resource_set *set, const drv_config *config,
                             const drv_resource_tools *tools, vml_error *err)
{
    if (set->resolved)
        return 0;
    if (tools == NULL)
        tools = &default_tools;
    for (size_t i = 0; i < set->count; i++) {
        drv_resource *res = &set->items[i];
        int rc;

        if (res->lock_name != NULL)
            continue;
        free(res->lockspace);
        res->lockspace = NULL;
        if (res->type == VIR_LOCK_MANAGER_RESOURCE_TYPE_LEASE)
            rc = resolve_lease(res, err);
        else
            rc = resolve_disk(res, config, tools, err);
        if (rc < 0) {
            free(res->lockspace);
            free(res->lock_name);
            res->lockspace = NULL;
            res->lock_name = NULL;
            return -1;
        }
        VML_DEBUG("resource '%s' -> lockspace '%s' name '%s' flags 0x%x", res->name,
                  res->lockspace, res->lock_name, res->lock_flags);
    }
    set->resolved = true;
    return 0;
}

int drv_resource_set_to_wire(const drv_resource_set *set, vml_ext_resource **out,
                             vml_error *err)
{
    vml_ext_resource *wire;

    *out = NULL;
    if (!set->resolved) {
        vml_error_set(err, VIR_FROM_LOCKING, VIR_ERR_INTERNAL_ERROR,
                      "resources are used before their leases were computed");
        return -1;
    }
    if (set->count == 0)
        return 0;
    wire = calloc(set->count, sizeof(*wire));
    if (wire == NULL) {
        vml_error_set_errno(err, VIR_FROM_LOCKING, ENOMEM, "cannot build a lock request");
        return -1;
    }
    for (size_t i = 0; i < set->count; i++) {
        const drv_resource *res = &set->items[i];

        wire[i].lockspace = res->lockspace;
        wire[i].name = res->lock_name;
        wire[i].disk = res->type == VIR_LOCK_MANAGER_RESOURCE_TYPE_DISK ? res->name : (char *)"";
        wire[i].flags = res->lock_flags;
    }
    *out = wire;
    return 0;
}
