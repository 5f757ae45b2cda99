/* vml_io.h: whole-buffer read and write on blocking descriptors, restarted after EINTR. */
#ifndef VML_IO_H
#define VML_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all len bytes: 0, or -1 with errno (a short write without errno reports EIO). */
int vml_io_write_all(int fd, const void *buf, size_t len);

/* Read until len bytes or end of file: the number of bytes read (< len only at EOF), or -1. */
ssize_t vml_io_read_full(int fd, void *buf, size_t len);

#endif
