/* nfssim_proto.h: the messages between a simulated host's FUSE mount and the simulated NFS server. */
#ifndef NFSSIM_PROTO_H
#define NFSSIM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vml_error.h"

/*
 * Both ends run on the same machine from the same build, so messages are native C structs
 * sent over a SOCK_SEQPACKET UNIX socket (one message per packet, boundaries kept).  This is
 * a test-harness protocol, not a stable wire format: NFSSIM_PROTO_VERSION in HELLO catches
 * a mount and a server from different builds.
 *
 * A request is an nfssim_req followed by datalen bytes: name (namelen bytes, no NUL), then
 * name2 (name2len bytes, no NUL), then write data (the rest).  A reply or a notice is an
 * nfssim_reply followed by datalen bytes of data (read data, readdir entries, a link target).
 * Replies carry the id of their request; notices (server-initiated) carry id 0.
 */
#define NFSSIM_PROTO_VERSION 1u
#define NFSSIM_MAX_DATA (128u * 1024u)          /* largest read/write payload (max_read/max_write) */
#define NFSSIM_MAX_NAME 255u                    /* one path component */
#define NFSSIM_MAX_TARGET 4095u                 /* a symlink target */
#define NFSSIM_MAX_HOSTNAME 63u
#define NFSSIM_MAX_PAYLOAD (NFSSIM_MAX_DATA + 8192u)
#define NFSSIM_ROOT_INO 1u                      /* FUSE_ROOT_ID */
#define NFSSIM_LOCK_EOF INT64_MAX               /* lk_end meaning "to end of file" */

typedef enum nfssim_op {
    NFSSIM_OP_HELLO = 1,        /* name = host name; reply: value = lease ms, flags = mode */
    NFSSIM_OP_LOOKUP,
    NFSSIM_OP_GETATTR,
    NFSSIM_OP_SETATTR,          /* flags = NFSSIM_SET_* bits */
    NFSSIM_OP_MKDIR,
    NFSSIM_OP_UNLINK,
    NFSSIM_OP_RMDIR,
    NFSSIM_OP_SYMLINK,          /* name = new entry, name2 = target */
    NFSSIM_OP_READLINK,
    NFSSIM_OP_RENAME,           /* ino/name -> ino2/name2; flags = renameat2 flags */
    NFSSIM_OP_OPEN,             /* flags = open(2) flags; reply fh */
    NFSSIM_OP_CREATE,
    NFSSIM_OP_READ,
    NFSSIM_OP_WRITE,
    NFSSIM_OP_FLUSH,            /* owner = the closing process's POSIX lock owner */
    NFSSIM_OP_RELEASE,          /* fh closed for good: drops OFD locks taken through it */
    NFSSIM_OP_FSYNC,
    NFSSIM_OP_READDIR,          /* offset = cookie, size = buffer size */
    NFSSIM_OP_STATFS,
    NFSSIM_OP_GETLK,
    NFSSIM_OP_SETLK,            /* flags & NFSSIM_LK_SLEEP: F_SETLKW */
    NFSSIM_OP_RENEW,            /* lease renewal; reply error ESTALE: the lease had expired */
    NFSSIM_OP_RECLAIM,          /* after NOTICE_REBOOT; flags & NFSSIM_RECLAIM_DECLINE: give up */
    NFSSIM_OP_CANCEL,           /* the request with this id was interrupted; no reply of its own */
    NFSSIM_OP_NOTICE_LEASE,     /* server -> host: value = lease ms, flags = mode */
    NFSSIM_OP_NOTICE_REBOOT,    /* server -> host: value = grace ms, flags = NFSSIM_REBOOT_* */
    NFSSIM_OP_MAX_
} nfssim_op;

/* Server modes (HELLO and NOTICE_LEASE flags). */
#define NFSSIM_MODE_NFS3 3u
#define NFSSIM_MODE_NFS4 4u

#define NFSSIM_LK_SLEEP 1u
#define NFSSIM_RECLAIM_DECLINE 1u
#define NFSSIM_REBOOT_RECLAIM 1u        /* the host should reclaim its locks */

/* SETATTR bits (independent of libfuse's so the server need not include fuse headers). */
#define NFSSIM_SET_MODE 0x01u
#define NFSSIM_SET_UID 0x02u
#define NFSSIM_SET_GID 0x04u
#define NFSSIM_SET_SIZE 0x08u
#define NFSSIM_SET_ATIME 0x10u
#define NFSSIM_SET_MTIME 0x20u
#define NFSSIM_SET_ATIME_NOW 0x40u
#define NFSSIM_SET_MTIME_NOW 0x80u

typedef struct nfssim_attr {
    uint64_t ino;
    uint64_t size;
    uint64_t blocks;            /* 512-byte blocks actually stored */
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
} nfssim_attr;

typedef struct nfssim_req {
    uint32_t op;
    uint32_t datalen;
    uint64_t id;
    uint64_t ino;
    uint64_t ino2;
    uint64_t fh;
    uint64_t owner;             /* fi->lock_owner */
    uint64_t offset;            /* read/write/readdir offset; SETATTR size */
    uint64_t size;              /* read/readdir size */
    int64_t lk_start;
    int64_t lk_end;             /* inclusive; NFSSIM_LOCK_EOF = to end of file */
    int64_t atime_ns;
    int64_t mtime_ns;
    uint32_t lk_type;           /* F_RDLCK, F_WRLCK, F_UNLCK */
    uint32_t lk_pid;
    uint32_t flags;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint32_t namelen;
    uint32_t name2len;
} nfssim_req;

typedef struct nfssim_reply {
    uint32_t op;
    uint32_t datalen;
    uint64_t id;
    int32_t error;              /* 0 or a positive errno */
    uint32_t flags;
    uint64_t fh;
    uint64_t value;             /* WRITE: bytes written; notices: see nfssim_op */
    nfssim_attr attr;
    int64_t lk_start;
    int64_t lk_end;
    uint32_t lk_type;
    uint32_t lk_pid;
    uint64_t fs_blocks;         /* STATFS */
    uint64_t fs_bfree;
    uint64_t fs_files;
    uint64_t fs_ffree;
} nfssim_reply;

/* One READDIR entry in a reply's data: this header, then namelen name bytes; unaligned. */
typedef struct nfssim_dirent {
    uint64_t ino;
    uint64_t next_offset;       /* cookie to resume after this entry */
    uint32_t mode;
    uint32_t namelen;
} nfssim_dirent;

/* The name of an op for logs ("SETLK"); "?" for values out of range. */
const char *nfssim_op_name(uint32_t op);

/*
 * Check a received request of len bytes: sizes add up, names are non-empty, within bounds
 * and free of NUL and '/'.  Returns 0, or -1 with err naming the problem.
 */
int nfssim_req_validate(const nfssim_req *req, size_t len, vml_error *err);

/* Pointers into a validated request's data (not NUL-terminated; see the lengths). */
const char *nfssim_req_name(const nfssim_req *req);
const char *nfssim_req_name2(const nfssim_req *req);
const unsigned char *nfssim_req_payload(const nfssim_req *req, size_t *len);

/*
 * Send one message made of a fixed header and an optional data part (gathered, one packet).
 * Returns 0, or -1 with errno set (EAGAIN on a full non-blocking socket) and err filled.
 */
int nfssim_send_msg(int fd, const void *head, size_t head_len, const void *data, size_t data_len,
                    vml_error *err);

/* True for a host name the harness accepts: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool nfssim_hostname_valid(const char *name);

/* Monotonic clock in milliseconds. */
int64_t nfssim_now_ms(void);

/* Wall clock in nanoseconds (file times). */
int64_t nfssim_wall_ns(void);

#endif
