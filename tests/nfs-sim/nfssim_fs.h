/* nfssim_fs.h: the simulated NFS server's exported tree, kept in memory (nodes, directories, sparse file data). */
#ifndef NFSSIM_FS_H
#define NFSSIM_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nfssim_locks.h"
#include "nfssim_proto.h"

/*
 * Why in memory and not a backing directory: the server alone hands out inode numbers
 * (they double as FUSE node ids and never get reused, like NFS file handles), a node and its
 * lock list are one object, and a test leaves nothing to clean up.  File data survives a
 * simulated server reboot (it models stable storage); only lock state is lost.  Data is kept
 * in 64 KiB chunks allocated on first write, so a sparse disk image costs what was written.
 *
 * Operations return an NFS-visible status, 0 or a positive errno, because that value is what
 * the simulated server sends to the host: it is data, not a failure of this program.
 */
#define NFSSIM_CHUNK_SIZE (64u * 1024u)
#define NFSSIM_MAX_FILE_SIZE (16ull * 1024 * 1024 * 1024)

struct sim_fh;      /* the server's open handles; see nfssim_server.c */

typedef struct nfssim_node {
    uint64_t ino;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint32_t nlink;
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t size;
    struct nfssim_node *parent;     /* NULL once unlinked (and for the root) */
    char *name;                     /* owned; this node's name in parent */
    struct nfssim_node **children;  /* directories: owned array of borrowed node pointers */
    size_t nchildren;
    size_t children_cap;
    unsigned char **chunks;         /* regular files: owned; NULL entries are holes */
    size_t nchunks;
    uint64_t stored_chunks;
    char *target;                   /* symlinks: owned */
    struct sim_fh *fhs;             /* open handles on this node, owned by the server */
    nfssim_lock_list locks;
} nfssim_node;

typedef struct nfssim_fs {
    nfssim_node **nodes;            /* owned; index = ino; NULL for freed inodes */
    size_t nodes_cap;
    uint64_t next_ino;
    uint64_t live_nodes;
    uint64_t stored_chunks;
} nfssim_fs;

/* Create a tree holding only the root directory (0755 root:root).  Returns NULL on ENOMEM. */
nfssim_fs *nfssim_fs_new(void);

/* Free the tree with every node, its data and its locks.  Accepts NULL. */
void nfssim_fs_free(nfssim_fs *fs);

/* The node with this inode number, or NULL (never existed, or freed: ESTALE to a client). */
nfssim_node *nfssim_fs_get(const nfssim_fs *fs, uint64_t ino);

/* The child called name (len bytes) of dir, or NULL. */
nfssim_node *nfssim_fs_lookup(const nfssim_node *dir, const char *name, size_t len);

/*
 * Create name in dir: mode carries the file type (S_IFREG, S_IFDIR, S_IFLNK); target is the
 * link text for a symlink.  On success *created is the new node (owned by fs).
 * Status: EEXIST, ENOTDIR, ENOMEM.
 */
int nfssim_fs_create(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len, uint32_t mode,
                     uint32_t uid, uint32_t gid, const char *target, size_t target_len,
                     nfssim_node **created);

/*
 * Remove name from dir (want_dir: rmdir semantics).  The node stays alive while it is open or
 * locked; call nfssim_fs_maybe_free afterwards.  Status: ENOENT, ENOTDIR, EISDIR, ENOTEMPTY.
 */
int nfssim_fs_remove(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len, bool want_dir,
                     nfssim_node **removed);

/* rename(2) within the tree; flags: RENAME_NOREPLACE only.  *replaced: an unlinked target. */
int nfssim_fs_rename(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len,
                     nfssim_node *newdir, const char *newname, size_t newlen, uint32_t flags,
                     nfssim_node **replaced);

/* Free node if it is unlinked and nothing (handle, lock, waiter: in_use) refers to it. */
void nfssim_fs_maybe_free(nfssim_fs *fs, nfssim_node *node, bool in_use);

/* Read up to len bytes at off into buf; *got = bytes read (0 at or past EOF).  Holes read 0. */
int nfssim_fs_read(const nfssim_node *node, uint64_t off, size_t len, unsigned char *buf, size_t *got);

/* Write len bytes at off, growing the file.  Status: EFBIG, ENOMEM, EISDIR. */
int nfssim_fs_write(nfssim_fs *fs, nfssim_node *node, uint64_t off, const unsigned char *data, size_t len);

/* Set the size, freeing whole chunks beyond it and zeroing the tail of the last one. */
int nfssim_fs_truncate(nfssim_fs *fs, nfssim_node *node, uint64_t size);

void nfssim_fs_attr(const nfssim_node *node, nfssim_attr *attr);

/* The node's path from the root into buf ("/a/b", or "(unlinked)/name"). */
void nfssim_fs_path(const nfssim_node *node, char *buf, size_t size);

#endif
