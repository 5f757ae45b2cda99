/* nfssim_fs.c: the in-memory exported tree of the simulated NFS server. */
#include "nfssim_fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static void node_free(nfssim_node *node)
{
    if (node == NULL)
        return;
    for (size_t i = 0; i < node->nchunks; i++)
        free(node->chunks[i]);
    free(node->chunks);
    free(node->children);
    free(node->target);
    free(node->name);
    nfssim_locks_clear(&node->locks);
    free(node);
}

/* Allocate a node with the next inode number and register it; NULL on ENOMEM. */
static nfssim_node *node_new(nfssim_fs *fs, uint32_t mode, uint32_t uid, uint32_t gid)
{
    nfssim_node *node;
    int64_t now = nfssim_wall_ns();

    if (fs->next_ino >= fs->nodes_cap) {
        size_t cap = fs->nodes_cap == 0 ? 64 : fs->nodes_cap * 2;
        nfssim_node **nodes = realloc(fs->nodes, cap * sizeof(*nodes));

        if (nodes == NULL)
            return NULL;
        memset(nodes + fs->nodes_cap, 0, (cap - fs->nodes_cap) * sizeof(*nodes));
        fs->nodes = nodes;
        fs->nodes_cap = cap;
    }
    node = calloc(1, sizeof(*node));
    if (node == NULL)
        return NULL;
    node->ino = fs->next_ino++;
    node->mode = mode;
    node->uid = uid;
    node->gid = gid;
    node->nlink = S_ISDIR(mode) ? 2 : 1;
    node->atime_ns = node->mtime_ns = node->ctime_ns = now;
    fs->nodes[node->ino] = node;
    fs->live_nodes++;
    return node;
}

nfssim_fs *nfssim_fs_new(void)
{
    nfssim_fs *fs = calloc(1, sizeof(*fs));

    if (fs == NULL)
        return NULL;
    fs->next_ino = NFSSIM_ROOT_INO;
    if (node_new(fs, S_IFDIR | 0755, 0, 0) == NULL) {
        nfssim_fs_free(fs);
        return NULL;
    }
    return fs;
}

void nfssim_fs_free(nfssim_fs *fs)
{
    if (fs == NULL)
        return;
    for (size_t i = 0; i < fs->nodes_cap; i++)
        node_free(fs->nodes[i]);
    free(fs->nodes);
    free(fs);
}

nfssim_node *nfssim_fs_get(const nfssim_fs *fs, uint64_t ino)
{
    if (ino >= fs->nodes_cap)
        return NULL;
    return fs->nodes[ino];
}

static ssize_t child_index(const nfssim_node *dir, const char *name, size_t len)
{
    for (size_t i = 0; i < dir->nchildren; i++) {
        const nfssim_node *child = dir->children[i];

        if (strlen(child->name) == len && memcmp(child->name, name, len) == 0)
            return (ssize_t)i;
    }
    return -1;
}

nfssim_node *nfssim_fs_lookup(const nfssim_node *dir, const char *name, size_t len)
{
    ssize_t idx;

    if (!S_ISDIR(dir->mode))
        return NULL;
    idx = child_index(dir, name, len);
    return idx < 0 ? NULL : dir->children[idx];
}

/* Append child to dir's entries (dir takes no ownership of the node, the fs owns it). */
static int dir_add(nfssim_node *dir, nfssim_node *child)
{
    if (dir->nchildren == dir->children_cap) {
        size_t cap = dir->children_cap == 0 ? 8 : dir->children_cap * 2;
        nfssim_node **children = realloc(dir->children, cap * sizeof(*children));

        if (children == NULL)
            return ENOMEM;
        dir->children = children;
        dir->children_cap = cap;
    }
    dir->children[dir->nchildren++] = child;
    child->parent = dir;
    if (S_ISDIR(child->mode))
        dir->nlink++;
    dir->mtime_ns = dir->ctime_ns = nfssim_wall_ns();
    return 0;
}

/* Remove entry idx of dir, keeping the order of the others (readdir cookies stay meaningful). */
static void dir_remove_at(nfssim_node *dir, size_t idx)
{
    nfssim_node *child = dir->children[idx];

    memmove(dir->children + idx, dir->children + idx + 1,
            (dir->nchildren - idx - 1) * sizeof(*dir->children));
    dir->nchildren--;
    child->parent = NULL;
    if (S_ISDIR(child->mode))
        dir->nlink--;
    dir->mtime_ns = dir->ctime_ns = child->ctime_ns = nfssim_wall_ns();
}

int nfssim_fs_create(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len, uint32_t mode,
                     uint32_t uid, uint32_t gid, const char *target, size_t target_len,
                     nfssim_node **created)
{
    nfssim_node *node;
    int status;

    if (!S_ISDIR(dir->mode))
        return ENOTDIR;
    if (dir->parent == NULL && dir->ino != NFSSIM_ROOT_INO)
        return ENOENT;      /* a removed directory accepts no new entries */
    if (nfssim_fs_lookup(dir, name, len) != NULL)
        return EEXIST;
    node = node_new(fs, mode, uid, gid);
    if (node == NULL)
        return ENOMEM;
    status = ENOMEM;
    node->name = strndup(name, len);
    if (node->name == NULL)
        goto out;
    if (S_ISLNK(mode)) {
        node->target = strndup(target, target_len);
        if (node->target == NULL)
            goto out;
        node->size = target_len;
    }
    status = dir_add(dir, node);
    if (status != 0)
        goto out;
    *created = node;

out:
    if (status != 0) {
        /* Unregister and free the half-made node: the tree is as before. */
        fs->nodes[node->ino] = NULL;
        fs->live_nodes--;
        node_free(node);
    }
    return status;
}

int nfssim_fs_remove(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len, bool want_dir,
                     nfssim_node **removed)
{
    ssize_t idx;
    nfssim_node *node;

    (void)fs;
    if (!S_ISDIR(dir->mode))
        return ENOTDIR;
    idx = child_index(dir, name, len);
    if (idx < 0)
        return ENOENT;
    node = dir->children[idx];
    if (want_dir && !S_ISDIR(node->mode))
        return ENOTDIR;
    if (!want_dir && S_ISDIR(node->mode))
        return EISDIR;
    if (want_dir && node->nchildren > 0)
        return ENOTEMPTY;
    dir_remove_at(dir, (size_t)idx);
    node->nlink = 0;
    *removed = node;
    return 0;
}

static bool is_ancestor(const nfssim_node *maybe_ancestor, const nfssim_node *node)
{
    for (const nfssim_node *n = node; n != NULL; n = n->parent) {
        if (n == maybe_ancestor)
            return true;
    }
    return false;
}

int nfssim_fs_rename(nfssim_fs *fs, nfssim_node *dir, const char *name, size_t len,
                     nfssim_node *newdir, const char *newname, size_t newlen, uint32_t flags,
                     nfssim_node **replaced)
{
    ssize_t idx;
    ssize_t target_idx;
    nfssim_node *node;
    nfssim_node *target;
    char *copy;
    int status;

    *replaced = NULL;
    if ((flags & ~(uint32_t)RENAME_NOREPLACE) != 0)
        return EINVAL;
    if (!S_ISDIR(dir->mode) || !S_ISDIR(newdir->mode))
        return ENOTDIR;
    idx = child_index(dir, name, len);
    if (idx < 0)
        return ENOENT;
    node = dir->children[idx];
    if (S_ISDIR(node->mode) && is_ancestor(node, newdir))
        return EINVAL;
    target_idx = child_index(newdir, newname, newlen);
    target = target_idx < 0 ? NULL : newdir->children[target_idx];
    if (target == node)
        return 0;
    if (target != NULL) {
        if (flags & RENAME_NOREPLACE)
            return EEXIST;
        if (S_ISDIR(target->mode) && !S_ISDIR(node->mode))
            return EISDIR;
        if (!S_ISDIR(target->mode) && S_ISDIR(node->mode))
            return ENOTDIR;
        if (S_ISDIR(target->mode) && target->nchildren > 0)
            return ENOTEMPTY;
    }
    copy = strndup(newname, newlen);
    if (copy == NULL)
        return ENOMEM;
    /* Make room in newdir before changing anything, so the move itself cannot fail. */
    if (newdir->nchildren == newdir->children_cap) {
        size_t cap = newdir->children_cap == 0 ? 8 : newdir->children_cap * 2;
        nfssim_node **children = realloc(newdir->children, cap * sizeof(*children));

        if (children == NULL) {
            free(copy);
            return ENOMEM;
        }
        newdir->children = children;
        newdir->children_cap = cap;
    }
    if (target != NULL) {
        dir_remove_at(newdir, (size_t)target_idx);
        target->nlink = 0;
        *replaced = target;
        if (newdir == dir && target_idx < idx)
            idx--;
    }
    dir_remove_at(dir, (size_t)idx);
    free(node->name);
    node->name = copy;
    status = dir_add(newdir, node);
    (void)status;   /* cannot fail: room was made above */
    node->ctime_ns = nfssim_wall_ns();
    (void)fs;
    return 0;
}

void nfssim_fs_maybe_free(nfssim_fs *fs, nfssim_node *node, bool in_use)
{
    if (node == NULL || node->ino == NFSSIM_ROOT_INO || node->parent != NULL)
        return;
    if (in_use || node->fhs != NULL || node->locks.head != NULL)
        return;
    fs->nodes[node->ino] = NULL;
    fs->live_nodes--;
    fs->stored_chunks -= node->stored_chunks;
    node_free(node);
}

int nfssim_fs_read(const nfssim_node *node, uint64_t off, size_t len, unsigned char *buf, size_t *got)
{
    size_t done = 0;

    *got = 0;
    if (S_ISDIR(node->mode))
        return EISDIR;
    if (off >= node->size)
        return 0;
    if (len > node->size - off)
        len = (size_t)(node->size - off);
    while (done < len) {
        uint64_t pos = off + done;
        size_t chunk = (size_t)(pos / NFSSIM_CHUNK_SIZE);
        size_t in_chunk = (size_t)(pos % NFSSIM_CHUNK_SIZE);
        size_t n = NFSSIM_CHUNK_SIZE - in_chunk;

        if (n > len - done)
            n = len - done;
        if (chunk < node->nchunks && node->chunks[chunk] != NULL)
            memcpy(buf + done, node->chunks[chunk] + in_chunk, n);
        else
            memset(buf + done, 0, n);
        done += n;
    }
    *got = done;
    return 0;
}

/* Make the chunk array cover size bytes. */
static int ensure_chunks(nfssim_node *node, uint64_t size)
{
    size_t need = (size_t)((size + NFSSIM_CHUNK_SIZE - 1) / NFSSIM_CHUNK_SIZE);
    unsigned char **chunks;

    if (need <= node->nchunks)
        return 0;
    chunks = realloc(node->chunks, need * sizeof(*chunks));
    if (chunks == NULL)
        return ENOMEM;
    memset(chunks + node->nchunks, 0, (need - node->nchunks) * sizeof(*chunks));
    node->chunks = chunks;
    node->nchunks = need;
    return 0;
}

int nfssim_fs_write(nfssim_fs *fs, nfssim_node *node, uint64_t off, const unsigned char *data, size_t len)
{
    size_t done = 0;
    int status;

    if (S_ISDIR(node->mode))
        return EISDIR;
    if (off > NFSSIM_MAX_FILE_SIZE || len > NFSSIM_MAX_FILE_SIZE - off)
        return EFBIG;
    status = ensure_chunks(node, off + len);
    if (status != 0)
        return status;
    while (done < len) {
        uint64_t pos = off + done;
        size_t chunk = (size_t)(pos / NFSSIM_CHUNK_SIZE);
        size_t in_chunk = (size_t)(pos % NFSSIM_CHUNK_SIZE);
        size_t n = NFSSIM_CHUNK_SIZE - in_chunk;

        if (n > len - done)
            n = len - done;
        if (node->chunks[chunk] == NULL) {
            node->chunks[chunk] = calloc(1, NFSSIM_CHUNK_SIZE);
            if (node->chunks[chunk] == NULL)
                return ENOMEM;  /* what was written so far stays: a short write */
            node->stored_chunks++;
            fs->stored_chunks++;
        }
        memcpy(node->chunks[chunk] + in_chunk, data + done, n);
        done += n;
        if (off + done > node->size)
            node->size = off + done;
    }
    node->mtime_ns = node->ctime_ns = nfssim_wall_ns();
    return 0;
}

int nfssim_fs_truncate(nfssim_fs *fs, nfssim_node *node, uint64_t size)
{
    size_t keep;

    if (S_ISDIR(node->mode))
        return EISDIR;
    if (size > NFSSIM_MAX_FILE_SIZE)
        return EFBIG;
    keep = (size_t)((size + NFSSIM_CHUNK_SIZE - 1) / NFSSIM_CHUNK_SIZE);
    for (size_t i = keep; i < node->nchunks; i++) {
        if (node->chunks[i] != NULL) {
            free(node->chunks[i]);
            node->chunks[i] = NULL;
            node->stored_chunks--;
            fs->stored_chunks--;
        }
    }
    if (keep < node->nchunks)
        node->nchunks = keep;
    if (size % NFSSIM_CHUNK_SIZE != 0 && keep > 0 && keep <= node->nchunks &&
        node->chunks[keep - 1] != NULL) {
        size_t tail = (size_t)(size % NFSSIM_CHUNK_SIZE);

        memset(node->chunks[keep - 1] + tail, 0, NFSSIM_CHUNK_SIZE - tail);
    }
    node->size = size;
    node->mtime_ns = node->ctime_ns = nfssim_wall_ns();
    return 0;
}

void nfssim_fs_attr(const nfssim_node *node, nfssim_attr *attr)
{
    memset(attr, 0, sizeof(*attr));
    attr->ino = node->ino;
    attr->size = S_ISDIR(node->mode) ? 4096 : node->size;
    attr->blocks = node->stored_chunks * (NFSSIM_CHUNK_SIZE / 512);
    attr->mode = node->mode;
    attr->nlink = node->nlink;
    attr->uid = node->uid;
    attr->gid = node->gid;
    attr->atime_ns = node->atime_ns;
    attr->mtime_ns = node->mtime_ns;
    attr->ctime_ns = node->ctime_ns;
}

void nfssim_fs_path(const nfssim_node *node, char *buf, size_t size)
{
    const nfssim_node *chain[64];
    size_t depth = 0;
    size_t pos = 0;
    const nfssim_node *n;

    if (size == 0)
        return;
    buf[0] = '\0';
    if (node->ino == NFSSIM_ROOT_INO) {
        snprintf(buf, size, "/");
        return;
    }
    for (n = node; n != NULL && n->ino != NFSSIM_ROOT_INO && depth < 64; n = n->parent)
        chain[depth++] = n;
    if (n == NULL)
        pos += (size_t)snprintf(buf, size, "(unlinked)");
    while (depth > 0 && pos < size) {
        int w = snprintf(buf + pos, size - pos, "/%s", chain[--depth]->name);

        if (w < 0)
            break;
        pos += (size_t)w;
    }
}
