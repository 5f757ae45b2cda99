/* vml_wire.c: message framing, error payloads and a blocking client for the vmlockd wire protocols. */
#include "vml_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vml_wire_frame_length(const unsigned char word[VML_RPC_LENGTH_WORD], size_t max,
                          size_t *total)
{
    uint32_t len = ((uint32_t)word[0] << 24) | ((uint32_t)word[1] << 16) |
                   ((uint32_t)word[2] << 8) | (uint32_t)word[3];

    if (len < VML_WIRE_MIN_MESSAGE || len > max)
        return -1;
    *total = len;
    return 0;
}

int vml_wire_encode(const vml_rpc_header *hdr, xdrproc_t payload_proc, const void *payload,
                    unsigned char **out, size_t *out_len)
{
    vml_rpc_header copy = *hdr;
    unsigned long payload_size = 0;
    size_t total;
    unsigned char *buf;
    XDR xdrs;
    int ret = -1;

    if (payload_proc != NULL)
        payload_size = xdr_sizeof(payload_proc, (void *)payload);
    total = VML_WIRE_MIN_MESSAGE + payload_size;
    if (total > VML_WIRE_MAX_MESSAGE)
        return -1;
    buf = malloc(total);
    if (buf == NULL)
        return -1;
    xdrmem_create(&xdrs, (char *)buf, (u_int)total, XDR_ENCODE);
    {
        uint32_t word = (uint32_t)total;
        if (!xdr_u_int(&xdrs, &word) || !xdr_vml_rpc_header(&xdrs, &copy))
            goto out;
    }
    /* Always run the encoder: xdr_sizeof() returns 0 when the payload cannot be encoded
     * (a string over its bound), and that must fail here, not become an empty payload. */
    if (payload_proc != NULL && !payload_proc(&xdrs, (void *)payload))
        goto out;
    if (xdr_getpos(&xdrs) != total)
        goto out;
    *out = buf;
    *out_len = total;
    buf = NULL;
    ret = 0;
 out:
    xdr_destroy(&xdrs);
    free(buf);
    return ret;
}

int vml_wire_encode_error(const vml_rpc_header *call_hdr, const vml_error *err,
                          unsigned char **out, size_t *out_len)
{
    vml_rpc_header hdr = *call_hdr;
    char *message = (char *)err->message;
    char *template = (char *)vml_error_template(err->code);
    char *detail = (char *)err->detail;
    vml_rpc_error payload = {
        .code = err->code,
        .domain = err->domain,
        .message = &message,
        .level = VIR_ERR_ERROR,
        .str1 = &template,
        .str2 = &detail,
        .int1 = -1,
        .int2 = -1,
    };

    hdr.type = VML_RPC_REPLY;
    hdr.status = VML_RPC_ERROR;
    return vml_wire_encode(&hdr, (xdrproc_t)xdr_vml_rpc_error, &payload, out, out_len);
}

int vml_wire_decode_header(const unsigned char *msg, size_t len, vml_rpc_header *hdr)
{
    XDR xdrs;
    int ret = -1;

    if (len < VML_WIRE_MIN_MESSAGE)
        return -1;
    xdrmem_create(&xdrs, (char *)msg + VML_RPC_LENGTH_WORD, VML_RPC_HEADER_SIZE, XDR_DECODE);
    if (xdr_vml_rpc_header(&xdrs, hdr))
        ret = 0;
    xdr_destroy(&xdrs);
    return ret;
}

int vml_wire_decode_payload(const unsigned char *msg, size_t len, xdrproc_t proc, void *out)
{
    size_t payload_len;
    XDR xdrs;
    int ret = -1;

    if (len < VML_WIRE_MIN_MESSAGE)
        return -1;
    payload_len = len - VML_WIRE_MIN_MESSAGE;
    xdrmem_create(&xdrs, (char *)msg + VML_WIRE_MIN_MESSAGE, (u_int)payload_len, XDR_DECODE);
    if (proc(&xdrs, out) && xdr_getpos(&xdrs) == payload_len)
        ret = 0;
    xdr_destroy(&xdrs);
    return ret;
}

void vml_wire_error_from_payload(const vml_rpc_error *payload, vml_error *err)
{
    const char *message = payload->message != NULL && *payload->message != NULL &&
                          **payload->message != '\0'
                          ? *payload->message : "unknown error reported by the lock daemon";
    /* An error reply must fail the call: code 0 (VIR_ERR_OK) from a confused daemon would
     * read as success to whoever checks the code, so it becomes an internal error. */
    int code = payload->code > 0 ? payload->code : VIR_ERR_INTERNAL_ERROR;

    vml_error_set_raw(err, payload->domain, code, message);
    if (err == NULL)
        return;
    if (payload->str2 != NULL && *payload->str2 != NULL) {
        snprintf(err->detail, sizeof(err->detail), "%s", *payload->str2);
    } else {
        /* No detail sent: recover it by removing the code's prefix, so that re-raising the
         * detail through libvirt (which adds the prefix again) does not print it twice. */
        const char *template = vml_error_template(code);
        size_t prefix_len = strlen(template) - 2;   /* every template ends in "%s" */

        if (strncmp(message, template, prefix_len) == 0)
            snprintf(err->detail, sizeof(err->detail), "%s", message + prefix_len);
    }
}

/*
 * Whether the stream still holds len bytes from its position (the position is unchanged).
 * Every decoder here runs on an xdrmem stream over a whole message, where xdr_inline()
 * succeeds exactly when that many bytes are left.
 */
static bool_t stream_holds(XDR *xdrs, uint64_t len)
{
    u_int pos = xdr_getpos(xdrs);
    bool_t holds;

    if (len > INT32_MAX)
        return FALSE;
    holds = xdr_inline(xdrs, (u_int)len) != NULL;
    return xdr_setpos(xdrs, pos) && holds;
}

/* The count word at the stream's position, the position unchanged; FALSE if none. */
static bool_t peek_count(XDR *xdrs, u_int *count)
{
    u_int pos = xdr_getpos(xdrs);

    return xdr_u_int(xdrs, count) && xdr_setpos(xdrs, pos);
}

bool_t vml_xdr_array_checked(XDR *xdrs, char **addrp, u_int *sizep, u_int maxsize,
                             u_int elsize, xdrproc_t elproc)
{
    u_int count;

    /* Every XDR item takes at least 4 bytes on the wire. */
    if (xdrs->x_op == XDR_DECODE &&
        (!peek_count(xdrs, &count) || count > maxsize ||
         !stream_holds(xdrs, 4 + (uint64_t)count * 4)))
        return FALSE;
    return xdr_array(xdrs, addrp, sizep, maxsize, elsize, elproc);
}

bool_t vml_xdr_bytes_checked(XDR *xdrs, char **bytesp, u_int *sizep, u_int maxsize)
{
    u_int count;

    if (xdrs->x_op == XDR_DECODE &&
        (!peek_count(xdrs, &count) || count > maxsize ||
         !stream_holds(xdrs, 4 + (uint64_t)count)))
        return FALSE;
    return xdr_bytes(xdrs, bytesp, sizep, maxsize);
}

bool_t vml_xdr_string_checked(XDR *xdrs, char **sp, u_int maxsize)
{
    if (xdrs->x_op != XDR_DECODE)
        return xdr_string(xdrs, sp, maxsize);

    u_int size;
    char *str;

    if (!xdr_u_int(xdrs, &size) || size > maxsize || !stream_holds(xdrs, size))
        return FALSE;
    str = *sp;
    if (str == NULL) {
        str = malloc((size_t)size + 1);
        if (str == NULL)
            return FALSE;
    }
    if (!xdr_opaque(xdrs, str, size) || memchr(str, '\0', size) != NULL) {
        if (*sp == NULL)
            free(str);
        return FALSE;
    }
    str[size] = '\0';
    *sp = str;
    return TRUE;
}

/* ---- blocking client ---- */

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes; 0 on success, -1 with errno (0 for EOF). */
static int read_all(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int vml_client_connect(vml_client *client, const char *path, vml_error *err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t path_len = strlen(path);
    socklen_t addr_len;
    int fd;

    client->fd = -1;
    client->serial = 0;
    if (path_len == 0 || path_len >= sizeof(addr.sun_path)) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR,
                      "socket path '%s' is empty or longer than %zu bytes", path,
                      sizeof(addr.sun_path) - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, path_len);
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';    /* abstract namespace */
    else
        addr_len++;                 /* include the terminating NUL */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "Failed to create socket");
        return -1;
    }
    while (connect(fd, (struct sockaddr *)&addr, addr_len) < 0) {
        int saved_errno = errno;

        if (saved_errno == EINTR)
            continue;
        vml_error_set_errno(err, VIR_FROM_RPC, saved_errno, "Failed to connect socket to '%s'",
                            path);
        close(fd);
        errno = saved_errno;
        return -1;
    }
    client->fd = fd;
    return 0;
}

int vml_client_call(vml_client *client, unsigned int prog, unsigned int vers, int proc,
                    xdrproc_t args_proc, const void *args,
                    xdrproc_t ret_proc, void *ret, vml_error *err)
{
    vml_rpc_header hdr = {
        .prog = prog, .vers = vers, .proc = proc,
        .type = VML_RPC_CALL, .serial = client->serial++, .status = VML_RPC_OK,
    };
    vml_rpc_header reply;
    unsigned char *msg = NULL;
    unsigned char word[VML_RPC_LENGTH_WORD];
    size_t len = 0;
    int rc = -1;

    if (vml_wire_encode(&hdr, args_proc, args, &msg, &len) < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "cannot encode the arguments of procedure %d", proc);
        goto out;
    }
    if (write_all(client->fd, msg, len) < 0) {
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot send to the lock daemon");
        goto out;
    }
    free(msg);
    msg = NULL;

    /* The protocol has one outstanding call per connection, so the next reply is ours. */
    if (read_all(client->fd, word, sizeof(word)) < 0) {
        if (errno == 0)
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                          "the lock daemon closed the connection");
        else
            vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot read from the lock daemon");
        goto out;
    }
    if (vml_wire_frame_length(word, VML_WIRE_MAX_MESSAGE, &len) < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "malformed reply length from the lock daemon");
        goto out;
    }
    msg = malloc(len);
    if (msg == NULL) {
        vml_error_set_errno(err, VIR_FROM_RPC, ENOMEM, "cannot read from the lock daemon");
        goto out;
    }
    memcpy(msg, word, sizeof(word));
    if (read_all(client->fd, msg + sizeof(word), len - sizeof(word)) < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "truncated reply from the lock daemon");
        goto out;
    }
    if (vml_wire_decode_header(msg, len, &reply) < 0 || reply.prog != prog ||
        reply.vers != vers || reply.proc != proc || reply.type != VML_RPC_REPLY ||
        reply.serial != hdr.serial) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC,
                      "unexpected reply header from the lock daemon (procedure %d)", proc);
        goto out;
    }
    if (reply.status == VML_RPC_ERROR) {
        vml_rpc_error payload;

        memset(&payload, 0, sizeof(payload));
        if (vml_wire_decode_payload(msg, len, (xdrproc_t)xdr_vml_rpc_error, &payload) < 0)
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "malformed error reply from the lock daemon");
        else
            vml_wire_error_from_payload(&payload, err);
        xdr_free((xdrproc_t)xdr_vml_rpc_error, (char *)&payload);
        goto out;
    }
    if (reply.status != VML_RPC_OK) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "Unexpected message status %d",
                      (int)reply.status);
        goto out;
    }
    if (ret_proc == NULL) {
        if (len != VML_WIRE_MIN_MESSAGE) {
            vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "unexpected reply payload");
            goto out;
        }
    } else if (vml_wire_decode_payload(msg, len, ret_proc, ret) < 0) {
        vml_error_set(err, VIR_FROM_RPC, VIR_ERR_RPC, "malformed reply to procedure %d", proc);
        goto out;
    }
    rc = 0;
 out:
    free(msg);
    return rc;
}

int vml_client_dup_holder(vml_client *client, vml_error *err)
{
    int fd = fcntl(client->fd, F_DUPFD, 3);   /* F_DUPFD, not F_DUPFD_CLOEXEC: QEMU keeps it */

    if (fd < 0)
        vml_error_set_errno(err, VIR_FROM_RPC, errno, "cannot duplicate the lock daemon connection");
    return fd;
}

void vml_client_close(vml_client *client)
{
    if (client == NULL || client->fd < 0)
        return;
    close(client->fd);
    client->fd = -1;
}
