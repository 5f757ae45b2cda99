/* ctl_doctor.c: "vmlockctl doctor": lockspace directories, their filesystems and mount options, OFD locks there, the daemon. */
#include "ctl_doctor.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_check.h"
#include "ctl_output.h"
#include "ctl_plugin.h"
#include "vml_wire.h"

typedef enum {
    RESULT_OK,
    RESULT_WARN,
    RESULT_FAIL,
} result_status;

/* One finding; strings owned by the result. */
typedef struct doctor_result {
    char *subject;          /* what was examined: a path, a socket, the config */
    const char *check;      /* short name of the check, e.g. "filesystem" */
    result_status status;
    char *detail;
} doctor_result;

typedef struct doctor {
    const ctl_doctor_options *opts;
    doctor_result *results;
    size_t nresults;
    size_t capacity;
} doctor;

static void doctor_clear(doctor *doc)
{
    for (size_t i = 0; i < doc->nresults; i++) {
        free(doc->results[i].subject);
        free(doc->results[i].detail);
    }
    free(doc->results);
}

static int add_result(doctor *doc, const char *subject, const char *check, result_status status,
                      vml_error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Append one finding (subject copied, detail formatted); -1 only when out of memory. */
static int add_result(doctor *doc, const char *subject, const char *check, result_status status,
                      vml_error *err, const char *fmt, ...)
{
    doctor_result res = { .check = check, .status = status };
    va_list ap;
    int ret = -1;

    if (doc->nresults == doc->capacity) {
        size_t capacity = doc->capacity == 0 ? 16 : doc->capacity * 2;
        doctor_result *grown = realloc(doc->results, capacity * sizeof(*grown));

        if (grown == NULL)
            goto out;
        doc->results = grown;
        doc->capacity = capacity;
    }
    res.subject = strdup(subject);
    va_start(ap, fmt);
    if (vasprintf(&res.detail, fmt, ap) < 0)
        res.detail = NULL;
    va_end(ap);
    if (res.subject == NULL || res.detail == NULL)
        goto out;
    doc->results[doc->nresults++] = res;
    res.subject = res.detail = NULL;    /* now owned by doc */
    ret = 0;
 out:
    if (ret < 0)
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot record a finding");
    free(res.subject);
    free(res.detail);
    return ret;
}

/* ---- the mount table ---- */

/* One line of mountinfo, fields pointing into a line buffer owned by the caller. */
typedef struct mount_entry {
    char *mount_point;      /* unescaped */
    char *fstype;
    char *source;
    char *options;          /* per-mount options, then the superblock's, comma-separated */
} mount_entry;

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *out = s;

    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* Split one mountinfo line (modified in place); -1 when it is not one. */
static int parse_mount_line(char *line, char *options_buf, size_t options_size, mount_entry *entry)
{
    char *fields[64];
    size_t n = 0;
    size_t dash = 0;
    char *save = NULL;

    for (char *tok = strtok_r(line, " \n", &save); tok != NULL && n < 64;
         tok = strtok_r(NULL, " \n", &save))
        fields[n++] = tok;
    for (size_t i = 6; i < n; i++) {
        if (strcmp(fields[i], "-") == 0) {
            dash = i;
            break;
        }
    }
    /* id parent maj:min root mount-point mount-options [optional...] - fstype source super */
    if (dash == 0 || dash + 2 >= n)
        return -1;
    entry->mount_point = fields[4];
    unescape(entry->mount_point);
    entry->fstype = fields[dash + 1];
    entry->source = fields[dash + 2];
    unescape(entry->source);
    snprintf(options_buf, options_size, "%s,%s", fields[5], dash + 3 < n ? fields[dash + 3] : "");
    entry->options = options_buf;
    return 0;
}

/* True when mount point mp contains path (both canonical). */
static bool covers(const char *mp, const char *path)
{
    size_t len = strlen(mp);

    if (strcmp(mp, "/") == 0)
        return true;
    return strncmp(mp, path, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* The mount holding path: the longest covering mount point, the last of equals (overmounts). */
typedef struct mount_info {
    char mount_point[PATH_MAX];
    char fstype[128];
    char source[PATH_MAX];
    char options[4096];
    bool found;
} mount_info;

static void find_mount(const char *mountinfo, const char *path, mount_info *info)
{
    FILE *fp = fopen(mountinfo, "re");
    char *line = NULL;
    size_t cap = 0;
    size_t best = 0;

    info->found = false;
    if (fp == NULL)
        return;
    while (getline(&line, &cap, fp) > 0) {
        char options[4096];
        mount_entry entry;
        size_t len;

        if (parse_mount_line(line, options, sizeof(options), &entry) < 0 ||
            !covers(entry.mount_point, path))
            continue;
        len = strlen(entry.mount_point);
        if (info->found && len < best)
            continue;
        best = len;
        info->found = true;
        snprintf(info->mount_point, sizeof(info->mount_point), "%s", entry.mount_point);
        snprintf(info->fstype, sizeof(info->fstype), "%s", entry.fstype);
        snprintf(info->source, sizeof(info->source), "%s", entry.source);
        snprintf(info->options, sizeof(info->options), "%s", entry.options);
    }
    free(line);
    fclose(fp);
}

/* The value of option name in a comma-separated list: "" for a flag, NULL when absent. */
static const char *option_value(const char *options, const char *name, char *buf, size_t size)
{
    size_t len = strlen(name);
    const char *found = NULL;

    for (const char *p = options; *p != '\0';) {
        size_t item = strcspn(p, ",");

        if (item >= len && strncmp(p, name, len) == 0 && (item == len || p[len] == '=')) {
            size_t vlen = item == len ? 0 : item - len - 1;

            if (vlen >= size)
                vlen = size - 1;
            memcpy(buf, p + len + (item == len ? 0 : 1), vlen);
            buf[vlen] = '\0';
            found = buf;    /* the last occurrence wins, as for mount(8) */
        }
        p += item;
        if (*p == ',')
            p++;
    }
    return found;
}

/* ---- filesystems ---- */

static const char *statfs_name(unsigned long type)
{
    static const struct { unsigned long magic; const char *name; } names[] = {
        { 0xEF53, "ext2/3/4" }, { 0x58465342, "xfs" }, { 0x9123683E, "btrfs" },
        { 0x01021994, "tmpfs" }, { 0x6969, "nfs" }, { 0x65735546, "fuse" },
        { 0xFF534D42, "cifs" }, { 0xFE534D42, "smb2" }, { 0x794c7630, "overlayfs" },
        { 0x00c36400, "ceph" }, { 0x01021997, "9p" }, { 0x01161970, "gfs2" },
        { 0x7461636f, "ocfs2" }, { 0x2fc12fc1, "zfs" }, { 0x858458f6, "ramfs" },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].magic == type)
            return names[i].name;
    }
    return NULL;
}

/* Judge the mount holding dir for locking: one result. */
static int check_filesystem(doctor *doc, const char *dir, const char *canonical, vml_error *err)
{
    mount_info info;
    struct statfs sfs;
    char type_text[64] = "unknown";
    char value[256];
    const char *fstype;
    const char *name;

    if (statfs(canonical, &sfs) == 0) {
        name = statfs_name((unsigned long)sfs.f_type);
        if (name != NULL)
            snprintf(type_text, sizeof(type_text), "%s", name);
        else
            snprintf(type_text, sizeof(type_text), "0x%lx", (unsigned long)sfs.f_type);
    }
    find_mount(doc->opts->mountinfo, canonical, &info);
    if (!info.found)
        return add_result(doc, dir, "filesystem", RESULT_WARN, err,
                          "statfs says %s; no entry in %s covers it, so its mount options are "
                          "unknown", type_text, doc->opts->mountinfo);
    fstype = info.fstype;

    if (strcmp(fstype, "nfs") == 0 || strcmp(fstype, "nfs4") == 0) {
        const char *vers = option_value(info.options, "vers", value, sizeof(value));
        bool v3 = vers != NULL && strncmp(vers, "3", 1) == 0;
        char lock_value[64];
        const char *local_lock = option_value(info.options, "local_lock", lock_value,
                                              sizeof(lock_value));

        if (vers == NULL && strcmp(fstype, "nfs") == 0)
            v3 = option_value(info.options, "nfsvers", value, sizeof(value)) != NULL &&
                 strncmp(value, "3", 1) == 0;
        if (option_value(info.options, "nolock", value, sizeof(value)) != NULL)
            return add_result(doc, dir, "mount options", RESULT_FAIL, err,
                              "%s from %s is mounted with 'nolock': fcntl locks stay on this "
                              "host and other hosts never see them; remount without nolock",
                              fstype, info.source);
        if (local_lock != NULL && (strcmp(local_lock, "posix") == 0 ||
                                   strcmp(local_lock, "all") == 0))
            return add_result(doc, dir, "mount options", RESULT_FAIL, err,
                              "%s from %s is mounted with 'local_lock=%s': fcntl locks stay on "
                              "this host and other hosts never see them; use local_lock=none",
                              fstype, info.source, local_lock);
        if (v3)
            return add_result(doc, dir, "mount options", RESULT_WARN, err,
                              "NFSv3 from %s: locks go through NLM (rpc.statd must run on every "
                              "host), and a crashed host's locks stay until it reboots; NFSv4.1+ "
                              "releases them when its lease expires", info.source);
        return add_result(doc, dir, "filesystem", RESULT_OK, err,
                          "%s from %s (%s): locks are shared with every host that mounts it",
                          fstype, info.source, vers != NULL ? vers : "version not shown");
    }
    if (strcmp(fstype, "fuse.glusterfs") == 0)
        return add_result(doc, dir, "filesystem", RESULT_WARN, err,
                          "GlusterFS volume %s: locks are shared between hosts, but they are "
                          "not reclaimed after a brick or server restart; set the volume option "
                          "client.strict-locks on so a lost lock is an error, not silent",
                          info.source);
    if (strcmp(fstype, "cifs") == 0 || strcmp(fstype, "smb3") == 0) {
        if (option_value(info.options, "nobrl", value, sizeof(value)) != NULL)
            return add_result(doc, dir, "mount options", RESULT_FAIL, err,
                              "%s from %s is mounted with 'nobrl': byte-range locks are not "
                              "sent to the server", fstype, info.source);
        return add_result(doc, dir, "filesystem", RESULT_WARN, err,
                          "%s from %s: byte-range locks reach the server, but are mandatory on "
                          "Windows servers; NFS or GlusterFS are the tested choices",
                          fstype, info.source);
    }
    if (strcmp(fstype, "fuse.sshfs") == 0)
        return add_result(doc, dir, "filesystem", RESULT_FAIL, err,
                          "sshfs does not forward locks: every host locks only its own view");
    if (strncmp(fstype, "fuse", 4) == 0)
        return add_result(doc, dir, "filesystem", RESULT_WARN, err,
                          "%s (%s): whether it shares fcntl locks between hosts depends on the "
                          "filesystem; the OFD check below only tests this host", fstype,
                          info.source);
    return add_result(doc, dir, "filesystem", RESULT_OK, err,
                      "%s on %s (local to this host, statfs: %s): leases protect disks against "
                      "other VMs of this host only", fstype, info.mount_point, type_text);
}

/* ---- OFD locks, across two processes ---- */

static ssize_t read_full(int fd, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* The child: lock byte 0, report errno (0 = locked), then hold until the parent closes. */
__attribute__((noreturn))
static void ofd_child(int fd, int report_fd, int hold_fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    int result = 0;
    char byte;

    if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        result = errno;
    if (write(report_fd, &result, sizeof(result)) != (ssize_t)sizeof(result))
        _exit(1);
    /* EOF on hold_fd: the parent has finished testing. */
    while (read(hold_fd, &byte, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/*
 * Take an OFD lock in a forked child, see it and be refused from this process, then see it
 * released when the child exits: the three things vmlockd relies on.
 */
static int check_ofd(doctor *doc, const char *dir, vml_error *err)
{
    struct flock fl = { .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    int report[2] = { -1, -1 };
    int hold[2] = { -1, -1 };
    char *path = NULL;
    int child_errno = 0;
    int fd = -1;
    pid_t pid = -1;
    int reopened;
    int ret = -1;
    int rc;

    if (asprintf(&path, "%s/.vmlockctl-doctor.%ld", dir, (long)getpid()) < 0) {
        path = NULL;
        vml_error_set_errno(err, VIR_FROM_NONE, ENOMEM, "cannot name the test file");
        goto out;
    }
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ret = add_result(doc, dir, "writable", RESULT_FAIL, err,
                         "cannot create a file there (%s)%s", strerror(errno),
                         errno == EACCES || errno == EPERM
                         ? ": on NFS, root_squash maps root to nobody; vmlockd runs as root" : "");
        goto out;
    }
    if (add_result(doc, dir, "writable", RESULT_OK, err, "files can be created there") < 0)
        goto out;
    if (pipe2(report, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot create a pipe");
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot fork the lock test");
        goto out;
    }
    if (pid == 0) {
        close(report[0]);
        close(hold[1]);
        ofd_child(fd, report[1], hold[0]);
    }
    close(report[1]);
    report[1] = -1;
    close(hold[0]);
    hold[0] = -1;

    if (read_full(report[0], &child_errno, sizeof(child_errno)) != (ssize_t)sizeof(child_errno)) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err,
                         "the test process died before reporting its lock");
        goto out;
    }
    if (child_errno != 0) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err,
                         "cannot take an OFD lock (F_OFD_SETLK: %s)%s", strerror(child_errno),
                         child_errno == ENOLCK ? ": the filesystem has no lock service" : "");
        goto out;
    }
    /* Opened in the parent before the fork, the child's lock belongs to that open file
     * description: a second open is needed to be another OFD. */
    reopened = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (reopened < 0) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err, "cannot reopen %s: %s", path,
                         strerror(errno));
        goto out;
    }
    close(fd);
    fd = reopened;
    fl.l_type = F_WRLCK;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err,
                         "a lock held by another process is not visible (F_OFD_GETLK%s%s)",
                         fl.l_type == F_UNLCK ? " says unlocked" : ": ",
                         fl.l_type == F_UNLCK ? "" : strerror(errno));
        goto out;
    }
    fl.l_type = F_RDLCK;
    fl.l_pid = 0;
    rc = fcntl(fd, F_OFD_SETLK, &fl);
    if (rc == 0 || (errno != EAGAIN && errno != EACCES)) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err,
                         "a lock held by another process does not refuse a second one (%s)",
                         rc == 0 ? "it was granted" : strerror(errno));
        goto out;
    }
    close(hold[1]);
    hold[1] = -1;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    fl.l_type = F_WRLCK;
    fl.l_pid = 0;
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        ret = add_result(doc, dir, "OFD locks", RESULT_FAIL, err,
                         "a lock is not released when its holder exits (%s)", strerror(errno));
        goto out;
    }
    ret = add_result(doc, dir, "OFD locks", RESULT_OK, err,
                     "a lock taken in one process is seen and refused in another, and released "
                     "when that process exits");
 out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (report[i] >= 0)
            close(report[i]);
        if (hold[i] >= 0)
            close(hold[i]);
    }
    if (fd >= 0)
        close(fd);
    if (path != NULL)
        unlink(path);
    free(path);
    return ret;
}

/* The nearest existing ancestor of path, canonical, in a malloc'd string (NULL when none). */
static char *existing_ancestor(const char *path)
{
    char *copy = strdup(path);
    char *resolved = NULL;

    while (copy != NULL && resolved == NULL) {
        char *slash = strrchr(copy, '/');

        resolved = realpath(copy[0] != '\0' ? copy : "/", NULL);
        if (resolved != NULL || slash == NULL)
            break;
        *slash = '\0';
    }
    free(copy);
    return resolved;
}

/* Everything about one lockspace (or given) directory. */
static int check_directory(doctor *doc, const char *dir, const char *role, vml_error *err)
{
    struct stat st;
    char *canonical = NULL;
    int ret = -1;

    if (stat(dir, &st) < 0) {
        int errnum = errno;

        if (add_result(doc, dir, "exists", errnum == ENOENT ? RESULT_WARN : RESULT_FAIL, err,
                       "%s: %s%s", role, strerror(errnum),
                       errnum == ENOENT ? "; vmlockd creates it (mode 0700) when libvirtd "
                       "loads the plugin, on whatever is mounted there then: if it belongs on "
                       "shared storage, mount that first" : "") < 0)
            goto out;
        canonical = existing_ancestor(dir);
        ret = canonical != NULL ? check_filesystem(doc, dir, canonical, err) : 0;
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        ret = add_result(doc, dir, "exists", RESULT_FAIL, err, "%s: not a directory", role);
        goto out;
    }
    if (add_result(doc, dir, "exists", RESULT_OK, err, "%s: a directory (mode %04o, owner uid %u)",
                   role, (unsigned int)(st.st_mode & 07777), (unsigned int)st.st_uid) < 0)
        goto out;
    canonical = realpath(dir, NULL);
    if (check_filesystem(doc, dir, canonical != NULL ? canonical : dir, err) < 0 ||
        check_ofd(doc, dir, err) < 0)
        goto out;
    ret = 0;
 out:
    free(canonical);
    return ret;
}

/* ---- the daemon ---- */

static int check_main_socket(doctor *doc, const char *path, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    vml_error conn_err;
    int errnum;
    int ret;

    vml_error_clear(&conn_err);
    if (vml_client_connect(&client, path, &conn_err) == 0) {
        vml_client_close(&client);
        return add_result(doc, path, "main socket", RESULT_OK, err,
                          "accepts connections (the plugin's unix_sock_path)");
    }
    errnum = errno;
    ret = add_result(doc, path, "main socket", RESULT_FAIL, err, "%s%s", conn_err.message,
                     errnum == ENOENT ? ": nothing listens there; start vmlockd (systemctl "
                     "start vmlockd.socket) or fix unix_sock_path"
                     : errnum == ECONNREFUSED ? ": a stale socket, vmlockd is not running" : "");
    return ret;
}

static int check_admin_socket(doctor *doc, const char *path, vml_error *err)
{
    vml_client client = { .fd = -1, .serial = 0 };
    vml_ext_status_ret st;
    vml_error call_err;
    int ret;

    memset(&st, 0, sizeof(st));
    vml_error_clear(&call_err);
    if (vml_client_connect(&client, path, &call_err) < 0 ||
        vml_client_call(&client, VML_EXT_PROGRAM, VML_EXT_PROTOCOL_VERSION, VML_EXT_PROC_STATUS,
                        NULL, NULL, (xdrproc_t)xdr_vml_ext_status_ret, &st, &call_err) < 0)
        ret = add_result(doc, path, "admin socket", RESULT_FAIL, err, "%s", call_err.message);
    else
        ret = add_result(doc, path, "admin socket", RESULT_OK, err,
                         "vmlockd %s (pid %u, up %" PRId64 " s): %u lease(s), %u owner(s), "
                         "%u client(s)", st.daemon_version != NULL ? st.daemon_version : "?",
                         st.pid, (int64_t)st.uptime_usec / 1000000, st.leases, st.owners,
                         st.clients);
    xdr_free((xdrproc_t)xdr_vml_ext_status_ret, (char *)&st);
    vml_client_close(&client);
    return ret;
}

static int check_tool(doctor *doc, const char *setting, const char *tool, vml_error *err)
{
    if (access(tool, X_OK) == 0)
        return add_result(doc, tool, "program", RESULT_OK, err, "present (needed by %s)", setting);
    return add_result(doc, tool, "program", RESULT_FAIL, err,
                      "%s is set but %s cannot be run (%s): every disk under /dev/ will fail to "
                      "lock", setting, tool, strerror(errno));
}

/* ---- output ---- */

static const char *status_word(result_status status)
{
    return status == RESULT_OK ? "ok" : status == RESULT_WARN ? "warn" : "FAIL";
}

static void print_results(const doctor *doc, bool json, size_t failed, size_t warned)
{
    FILE *out = stdout;

    if (json)
        fputs("{\"checks\": [", out);
    for (size_t i = 0; i < doc->nresults; i++) {
        const doctor_result *res = &doc->results[i];

        if (json) {
            fputs(i == 0 ? "\n  {\"subject\": " : ",\n  {\"subject\": ", out);
            ctl_json_string(out, res->subject);
            fprintf(out, ", \"check\": \"%s\", \"status\": \"%s\", \"detail\": ", res->check,
                    res->status == RESULT_OK ? "ok" : res->status == RESULT_WARN ? "warn" : "fail");
            ctl_json_string(out, res->detail);
            fputs("}", out);
        } else {
            fprintf(out, "%-4s %s: ", status_word(res->status), res->check);
            ctl_text_string(out, res->subject);
            fputs(": ", out);
            ctl_text_string(out, res->detail);
            fputc('\n', out);
        }
    }
    if (json)
        fprintf(out, "%s], \"failed\": %zu, \"warnings\": %zu, \"ok\": %s}\n",
                doc->nresults > 0 ? "\n " : "", failed, warned, failed == 0 ? "true" : "false");
    else
        fprintf(out, "%zu check(s): %zu failed, %zu warning(s)\n", doc->nresults, failed, warned);
}

int ctl_doctor_run(const ctl_doctor_options *opts, int *status, vml_error *err)
{
    doctor doc = { .opts = opts };
    drv_config *config = NULL;
    vml_error load_err;
    size_t failed = 0, warned = 0;
    int ret = -1;

    vml_error_clear(&load_err);
    if (ctl_plugin_config_load(opts->plugin_config, &config, &load_err) < 0) {
        if (add_result(&doc, opts->plugin_config, "plugin config", RESULT_FAIL, err, "%s",
                       load_err.message) < 0)
            goto out;
    } else {
        char *mode = NULL;
        size_t mode_len = 0;
        FILE *mem = open_memstream(&mode, &mode_len);

        if (mem == NULL) {
            vml_error_set_errno(err, VIR_FROM_NONE, errno, "cannot describe the mode");
            goto out;
        }
        ctl_plugin_describe_mode(config, mem);
        fclose(mem);
        if (add_result(&doc, opts->plugin_config, "plugin config", RESULT_OK, err, "%s%s",
                       access(opts->plugin_config, F_OK) == 0 ? "" : "(absent: the defaults) ",
                       mode != NULL ? mode : "") < 0) {
            free(mode);
            goto out;
        }
        free(mode);
        if (config->auto_disk_leases && config->file_lockspace_dir == NULL && opts->ndirs == 0 &&
            add_result(&doc, opts->plugin_config, "direct mode", RESULT_OK, err,
                       "locks are taken on the images themselves; name the image directories "
                       "(vmlockctl doctor DIR...) to check the storage they are on") < 0)
            goto out;
        if (config->file_lockspace_dir != NULL &&
            check_directory(&doc, config->file_lockspace_dir, "file_lockspace_dir", err) < 0)
            goto out;
        if (config->lvm_lockspace_dir != NULL &&
            (check_directory(&doc, config->lvm_lockspace_dir, "lvm_lockspace_dir", err) < 0 ||
             check_tool(&doc, "lvm_lockspace_dir", opts->lvs, err) < 0))
            goto out;
        if (config->scsi_lockspace_dir != NULL &&
            (check_directory(&doc, config->scsi_lockspace_dir, "scsi_lockspace_dir", err) < 0 ||
             check_tool(&doc, "scsi_lockspace_dir", opts->scsi_id, err) < 0))
            goto out;
    }
    for (size_t i = 0; i < opts->ndirs; i++) {
        if (check_directory(&doc, opts->dirs[i], "given on the command line", err) < 0)
            goto out;
    }
    if (config != NULL && check_main_socket(&doc, config->unix_sock_path, err) < 0)
        goto out;
    if (check_admin_socket(&doc, opts->admin_socket, err) < 0)
        goto out;

    for (size_t i = 0; i < doc.nresults; i++) {
        failed += doc.results[i].status == RESULT_FAIL;
        warned += doc.results[i].status == RESULT_WARN;
    }
    print_results(&doc, opts->json, failed, warned);
    *status = failed > 0 ? CTL_EXIT_NO : CTL_EXIT_OK;
    ret = 0;
 out:
    drv_config_free(config);
    doctor_clear(&doc);
    return ret;
}
