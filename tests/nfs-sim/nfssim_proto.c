/* nfssim_proto.c: validation and framing of the mount <-> simulated NFS server messages. */
#include "nfssim_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

static const char *const op_names[NFSSIM_OP_MAX_] = {
    [NFSSIM_OP_HELLO] = "HELLO",
    [NFSSIM_OP_LOOKUP] = "LOOKUP",
    [NFSSIM_OP_GETATTR] = "GETATTR",
    [NFSSIM_OP_SETATTR] = "SETATTR",
    [NFSSIM_OP_MKDIR] = "MKDIR",
    [NFSSIM_OP_UNLINK] = "UNLINK",
    [NFSSIM_OP_RMDIR] = "RMDIR",
    [NFSSIM_OP_SYMLINK] = "SYMLINK",
    [NFSSIM_OP_READLINK] = "READLINK",
    [NFSSIM_OP_RENAME] = "RENAME",
    [NFSSIM_OP_OPEN] = "OPEN",
    [NFSSIM_OP_CREATE] = "CREATE",
    [NFSSIM_OP_READ] = "READ",
    [NFSSIM_OP_WRITE] = "WRITE",
    [NFSSIM_OP_FLUSH] = "FLUSH",
    [NFSSIM_OP_RELEASE] = "RELEASE",
    [NFSSIM_OP_FSYNC] = "FSYNC",
    [NFSSIM_OP_READDIR] = "READDIR",
    [NFSSIM_OP_STATFS] = "STATFS",
    [NFSSIM_OP_GETLK] = "GETLK",
    [NFSSIM_OP_SETLK] = "SETLK",
    [NFSSIM_OP_RENEW] = "RENEW",
    [NFSSIM_OP_RECLAIM] = "RECLAIM",
    [NFSSIM_OP_CANCEL] = "CANCEL",
    [NFSSIM_OP_NOTICE_LEASE] = "NOTICE_LEASE",
    [NFSSIM_OP_NOTICE_REBOOT] = "NOTICE_REBOOT",
};

const char *nfssim_op_name(uint32_t op)
{
    if (op >= NFSSIM_OP_MAX_ || op_names[op] == NULL)
        return "?";
    return op_names[op];
}

/* A path component: 1..NAME_MAX bytes, no NUL or '/', not "." or "..". */
static bool component_valid(const char *name, uint32_t len)
{
    if (len == 0 || len > NFSSIM_MAX_NAME)
        return false;
    if (memchr(name, '\0', len) != NULL || memchr(name, '/', len) != NULL)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    return true;
}

static bool op_has_name(uint32_t op)
{
    switch (op) {
    case NFSSIM_OP_HELLO:
    case NFSSIM_OP_LOOKUP:
    case NFSSIM_OP_MKDIR:
    case NFSSIM_OP_UNLINK:
    case NFSSIM_OP_RMDIR:
    case NFSSIM_OP_SYMLINK:
    case NFSSIM_OP_RENAME:
    case NFSSIM_OP_CREATE:
        return true;
    default:
        return false;
    }
}

int nfssim_req_validate(const nfssim_req *req, size_t len, vml_error *err)
{
    const char *name;
    const char *name2;

    if (len < sizeof(*req)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "request of %zu bytes is shorter than its header", len);
        return -1;
    }
    if (req->op == 0 || req->op >= NFSSIM_OP_NOTICE_LEASE) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "unknown request op %u", req->op);
        return -1;
    }
    if (req->datalen > NFSSIM_MAX_PAYLOAD || len != sizeof(*req) + req->datalen) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "%s request length %zu does not match its data length %u",
                      nfssim_op_name(req->op), len, req->datalen);
        return -1;
    }
    if ((uint64_t)req->namelen + req->name2len > req->datalen) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "%s request names overrun its data",
                      nfssim_op_name(req->op));
        return -1;
    }
    name = nfssim_req_name(req);
    name2 = nfssim_req_name2(req);
    if (req->op == NFSSIM_OP_HELLO) {
        char host[NFSSIM_MAX_HOSTNAME + 1];

        if (req->namelen == 0 || req->namelen > NFSSIM_MAX_HOSTNAME) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "HELLO host name length %u is not 1..%u",
                          req->namelen, NFSSIM_MAX_HOSTNAME);
            return -1;
        }
        memcpy(host, name, req->namelen);
        host[req->namelen] = '\0';
        if (!nfssim_hostname_valid(host) || strlen(host) != req->namelen) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "HELLO host name is not valid");
            return -1;
        }
        return 0;
    }
    if (op_has_name(req->op) && !component_valid(name, req->namelen)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "%s request name is not a valid path component", nfssim_op_name(req->op));
        return -1;
    }
    if (!op_has_name(req->op) && req->namelen != 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "%s request carries an unexpected name",
                      nfssim_op_name(req->op));
        return -1;
    }
    if (req->op == NFSSIM_OP_RENAME && !component_valid(name2, req->name2len)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "RENAME new name is not a valid path component");
        return -1;
    }
    if (req->op == NFSSIM_OP_SYMLINK &&
        (req->name2len == 0 || req->name2len > NFSSIM_MAX_TARGET ||
         memchr(name2, '\0', req->name2len) != NULL)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "SYMLINK target is empty, too long or has a NUL");
        return -1;
    }
    if (req->op != NFSSIM_OP_RENAME && req->op != NFSSIM_OP_SYMLINK && req->name2len != 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "%s request carries an unexpected second name",
                      nfssim_op_name(req->op));
        return -1;
    }
    if (req->op == NFSSIM_OP_WRITE && req->datalen - req->namelen - req->name2len > NFSSIM_MAX_DATA) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "WRITE of more than %u bytes", NFSSIM_MAX_DATA);
        return -1;
    }
    if (req->op == NFSSIM_OP_GETLK || req->op == NFSSIM_OP_SETLK) {
        bool type_ok = req->lk_type == F_RDLCK || req->lk_type == F_WRLCK || req->lk_type == F_UNLCK;

        if (!type_ok || req->lk_start < 0 || req->lk_end < req->lk_start ||
            (req->op == NFSSIM_OP_GETLK && req->lk_type == F_UNLCK)) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "%s request has an invalid lock (type %u, range %lld-%lld)",
                          nfssim_op_name(req->op), req->lk_type, (long long)req->lk_start,
                          (long long)req->lk_end);
            return -1;
        }
    }
    return 0;
}

const char *nfssim_req_name(const nfssim_req *req)
{
    return (const char *)(req + 1);
}

const char *nfssim_req_name2(const nfssim_req *req)
{
    return (const char *)(req + 1) + req->namelen;
}

const unsigned char *nfssim_req_payload(const nfssim_req *req, size_t *len)
{
    *len = req->datalen - req->namelen - req->name2len;
    return (const unsigned char *)(req + 1) + req->namelen + req->name2len;
}

int nfssim_send_msg(int fd, const void *head, size_t head_len, const void *data, size_t data_len,
                    vml_error *err)
{
    struct iovec iov[2] = {
        { .iov_base = (void *)head, .iov_len = head_len },
        { .iov_base = (void *)data, .iov_len = data_len },
    };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = data_len > 0 ? 2 : 1 };
    ssize_t sent;

    do {
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        int saved = errno;

        vml_error_set_errno(err, VIR_FROM_RPC, saved, "cannot send a %zu-byte message",
                            head_len + data_len);
        errno = saved;
        return -1;
    }
    return 0;
}

bool nfssim_hostname_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > NFSSIM_MAX_HOSTNAME || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';

        if (!ok)
            return false;
    }
    return true;
}

int64_t nfssim_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t nfssim_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
