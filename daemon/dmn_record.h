/* dmn_record.h: the owner record at offset 0 of an indirect lease file: text format, parsing, pread/pwrite. */
#ifndef DMN_RECORD_H
#define DMN_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vml_error.h"

/*
 * An owner record names who holds (or last held) a lease, for any host sharing the
 * lockspace, and carries the lease's generation.  It is human-readable text:
 *
 *   vmlockd-owner-record 1          header: magic word and format version
 *   state held                      "held" or "free"
 *   generation 7                    exclusive acquisitions so far
 *   run_start 6                     first generation of the current run of one domain
 *   host hv1.example.com            (free records prefix every holder field with "last_")
 *   boot_id 0b1f...                 /proc/sys/kernel/random/boot_id of that host
 *   daemon_pid 812
 *   owner_pid 4242
 *   domain vm1
 *   uuid c7a5fdbd-edaf-9455-926a-d65c16db1809
 *   acquired_at 1795000000123456 2026-11-22T09:21:00Z   (microseconds, then UTC for people)
 *   released_at ...                 free records only
 *   end
 *
 * padded with newlines to exactly DMN_RECORD_SIZE bytes, so a rewrite always covers the
 * previous record whole.  Values escape bytes below 0x20, 0x7f and '\' as \xHH and are at
 * most DMN_RECORD_VALUE_MAX bytes before escaping (longer domain or host names are cut).
 * Only exclusive holders write it (they alone hold a write lock); the lock stays on byte 0.
 */
#define DMN_RECORD_MAGIC "vmlockd-owner-record"
#define DMN_RECORD_VERSION 1
#define DMN_RECORD_SIZE 4096
#define DMN_RECORD_VALUE_MAX 255
#define DMN_RECORD_BOOT_ID_MAX 63

typedef struct dmn_record {
    bool held;                          /* state held; else free (the holder fields are the last one's) */
    uint64_t generation;
    uint64_t run_start;
    char host[DMN_RECORD_VALUE_MAX + 1];
    char boot_id[DMN_RECORD_BOOT_ID_MAX + 1];
    unsigned int daemon_pid;
    unsigned int owner_pid;
    char domain[DMN_RECORD_VALUE_MAX + 1];
    unsigned char uuid[16];
    int64_t acquired_usec;              /* CLOCK_REALTIME */
    int64_t released_usec;              /* free records: when it was released; else 0 */
} dmn_record;

typedef enum {
    DMN_RECORD_EMPTY,       /* a zero-length file: no record yet, generation 0 */
    DMN_RECORD_VALID,       /* ours, parsed */
    DMN_RECORD_DAMAGED,     /* our header and version, but the body does not parse */
    DMN_RECORD_FOREIGN,     /* something else (another format, a newer version): never written */
} dmn_record_kind;

/* Render rec into exactly DMN_RECORD_SIZE bytes of buf (newline-padded). */
void dmn_record_format(const dmn_record *rec, char buf[DMN_RECORD_SIZE]);

/*
 * Parse buf[0..len) (at most DMN_RECORD_SIZE bytes are looked at).  VALID fills *rec; the
 * other kinds leave it zeroed.  why (may be NULL) gets a reason for DAMAGED and FOREIGN.
 */
dmn_record_kind dmn_record_parse(const char *buf, size_t len, dmn_record *rec, char *why,
                                 size_t why_len);

/*
 * pread the record of the lease file fd (path for messages).  drop_cache first asks the
 * kernel to drop its cached pages (posix_fadvise DONTNEED), so that on a network filesystem
 * the read reaches the server: that is what surfaces a lost NFS lease as EIO.  Read errors
 * are VIR_ERR_SYSTEM_ERROR naming path.
 */
int dmn_record_read(int fd, const char *path, bool drop_cache, dmn_record_kind *kind,
                    dmn_record *rec, vml_error *err);

/* pwrite the record at offset 0 (fdatasync'ed when sync), naming path in errors. */
int dmn_record_write(int fd, const char *path, const dmn_record *rec, bool sync,
                     vml_error *err);

/* "domain 'vm1' (uuid U, pid P) on host H since 2026-11-22T09:21:00Z" into out. */
void dmn_record_describe(const dmn_record *rec, char *out, size_t out_len);

/* UTC "YYYY-MM-DDTHH:MM:SSZ" of a CLOCK_REALTIME microsecond time into out (>= 21 bytes). */
void dmn_record_format_time(int64_t usec, char *out, size_t out_len);

/* Copy text into a record field of size DMN_RECORD_VALUE_MAX + 1, cutting what does not fit. */
void dmn_record_set_text(char *field, size_t field_size, const char *text);

#endif
