/* dmn_record.c: the owner record of indirect lease files: rendering, strict bounded parsing, pread/pwrite at offset 0. */
#include "dmn_record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmn_owner.h"

/* Append "key value\n" (value escaped) to buf at *pos; stops quietly at the end of buf. */
static void put_line(char *buf, size_t size, size_t *pos, const char *prefix, const char *key,
                     const char *value)
{
    int n = snprintf(buf + *pos, size - *pos, "%s%s ", prefix, key);

    if (n < 0 || (size_t)n >= size - *pos) {
        *pos = size;
        return;
    }
    *pos += (size_t)n;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') {
            if (size - *pos < 5) {
                *pos = size;
                return;
            }
            snprintf(buf + *pos, 5, "\\x%02x", *p);
            *pos += 4;
        } else {
            if (size - *pos < 2) {
                *pos = size;
                return;
            }
            buf[(*pos)++] = (char)*p;
        }
    }
    if (size - *pos < 2) {
        *pos = size;
        return;
    }
    buf[(*pos)++] = '\n';
}

static void put_number(char *buf, size_t size, size_t *pos, const char *prefix, const char *key,
                       uint64_t value)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRIu64, value);
    put_line(buf, size, pos, prefix, key, text);
}

void dmn_record_format_time(int64_t usec, char *out, size_t out_len)
{
    time_t secs = (time_t)(usec / 1000000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, out_len, "?");
}

static void put_time(char *buf, size_t size, size_t *pos, const char *prefix, const char *key,
                     int64_t usec)
{
    char text[64], when[32];

    dmn_record_format_time(usec, when, sizeof(when));
    snprintf(text, sizeof(text), "%" PRId64 " %s", usec, when);
    put_line(buf, size, pos, prefix, key, text);
}

void dmn_record_format(const dmn_record *rec, char buf[DMN_RECORD_SIZE])
{
    /* Leave room for "end\n" whatever the fields took. */
    const size_t body = DMN_RECORD_SIZE - 8;
    const char *prefix = rec->held ? "" : "last_";
    char uuid[37];
    size_t pos = 0;

    memset(buf, '\n', DMN_RECORD_SIZE);
    pos = (size_t)snprintf(buf, body, "%s %d\n", DMN_RECORD_MAGIC, DMN_RECORD_VERSION);
    put_line(buf, body, &pos, "", "state", rec->held ? "held" : "free");
    put_number(buf, body, &pos, "", "generation", rec->generation);
    put_number(buf, body, &pos, "", "run_start", rec->run_start);
    put_line(buf, body, &pos, prefix, "host", rec->host);
    put_line(buf, body, &pos, prefix, "boot_id", rec->boot_id);
    put_number(buf, body, &pos, prefix, "daemon_pid", rec->daemon_pid);
    put_number(buf, body, &pos, prefix, "owner_pid", rec->owner_pid);
    put_line(buf, body, &pos, prefix, "domain", rec->domain);
    dmn_owner_format_uuid((const char *)rec->uuid, uuid);
    put_line(buf, body, &pos, prefix, "uuid", uuid);
    put_time(buf, body, &pos, prefix, "acquired_at", rec->acquired_usec);
    if (!rec->held)
        put_time(buf, body, &pos, "", "released_at", rec->released_usec);
    if (pos > body)
        pos = body;
    memcpy(buf + pos, "end\n", 4);
    /* snprintf's terminators inside the body became text or padding: restore the padding. */
    for (size_t i = pos + 4; i < DMN_RECORD_SIZE; i++)
        buf[i] = '\n';
}

/* Undo put_line's escaping into out (size out_size); false on a bad escape or overflow. */
static bool unescape(const char *value, size_t len, char *out, size_t out_size)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned int byte;
        char hex[3];

        if (n + 1 >= out_size)
            return false;
        if (value[i] != '\\') {
            out[n++] = value[i];
            continue;
        }
        if (i + 3 >= len || value[i + 1] != 'x')
            return false;
        hex[0] = value[i + 2];
        hex[1] = value[i + 3];
        hex[2] = '\0';
        if (sscanf(hex, "%2x", &byte) != 1 || byte == 0)
            return false;
        out[n++] = (char)byte;
        i += 3;
    }
    out[n] = '\0';
    return true;
}

static bool parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;

    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    *out = strtoull(text, &end, 10);
    return errno == 0 && (*end == '\0' || *end == ' ');
}

static bool parse_uuid(const char *text, unsigned char uuid[16])
{
    size_t n = 0;

    for (const char *p = text; *p != '\0'; p++) {
        unsigned int byte;
        char hex[3] = { p[0], p[1], '\0' };

        if (*p == '-')
            continue;
        if (n == 16 || p[1] == '\0' || sscanf(hex, "%2x", &byte) != 1)
            return false;
        uuid[n++] = (unsigned char)byte;
        p++;
    }
    return n == 16;
}

/* Store one "key value" line into rec; the holder keys may carry the "last_" prefix. */
static bool parse_field(dmn_record *rec, const char *key, const char *value, unsigned int *seen)
{
    uint64_t number;

    if (strncmp(key, "last_", 5) == 0)
        key += 5;
    if (strcmp(key, "state") == 0) {
        if (strcmp(value, "held") != 0 && strcmp(value, "free") != 0)
            return false;
        rec->held = strcmp(value, "held") == 0;
        *seen |= 1;
    } else if (strcmp(key, "generation") == 0) {
        if (!parse_u64(value, &rec->generation))
            return false;
        *seen |= 2;
    } else if (strcmp(key, "run_start") == 0) {
        return parse_u64(value, &rec->run_start);
    } else if (strcmp(key, "host") == 0) {
        return unescape(value, strlen(value), rec->host, sizeof(rec->host));
    } else if (strcmp(key, "boot_id") == 0) {
        return unescape(value, strlen(value), rec->boot_id, sizeof(rec->boot_id));
    } else if (strcmp(key, "daemon_pid") == 0 || strcmp(key, "owner_pid") == 0) {
        if (!parse_u64(value, &number) || number > UINT32_MAX)
            return false;
        if (key[0] == 'd')
            rec->daemon_pid = (unsigned int)number;
        else
            rec->owner_pid = (unsigned int)number;
    } else if (strcmp(key, "domain") == 0) {
        return unescape(value, strlen(value), rec->domain, sizeof(rec->domain));
    } else if (strcmp(key, "uuid") == 0) {
        return parse_uuid(value, rec->uuid);
    } else if (strcmp(key, "acquired_at") == 0 || strcmp(key, "released_at") == 0) {
        if (!parse_u64(value, &number) || number > INT64_MAX)
            return false;
        if (key[0] == 'a')
            rec->acquired_usec = (int64_t)number;
        else
            rec->released_usec = (int64_t)number;
    }
    /* Unknown keys of version 1 are ignored: a later 1.x may add fields. */
    return true;
}

static dmn_record_kind reject(dmn_record_kind kind, dmn_record *rec, char *why, size_t why_len,
                              const char *reason)
{
    memset(rec, 0, sizeof(*rec));
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", reason);
    return kind;
}

dmn_record_kind dmn_record_parse(const char *buf, size_t len, dmn_record *rec, char *why,
                                 size_t why_len)
{
    const size_t magic_len = strlen(DMN_RECORD_MAGIC);
    unsigned int seen = 0;
    bool ended = false;
    size_t pos;

    memset(rec, 0, sizeof(*rec));
    if (len > DMN_RECORD_SIZE)
        len = DMN_RECORD_SIZE;
    if (len == 0)
        return DMN_RECORD_EMPTY;
    if (len < magic_len + 3 || memcmp(buf, DMN_RECORD_MAGIC " ", magic_len + 1) != 0)
        return reject(DMN_RECORD_FOREIGN, rec, why, why_len,
                      "the file does not start with a vmlockd owner record");
    if (memcmp(buf + magic_len + 1, "1\n", 2) != 0)
        return reject(DMN_RECORD_FOREIGN, rec, why, why_len,
                      "the owner record has a format version this daemon does not know");
    pos = magic_len + 3;
    while (pos < len && !ended) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        char text[DMN_RECORD_SIZE];
        size_t line_len;
        char *space;

        if (nl == NULL)
            break;
        line_len = (size_t)(nl - line);
        pos += line_len + 1;
        if (line_len == 0)
            continue;
        memcpy(text, line, line_len);
        text[line_len] = '\0';
        if (memchr(text, '\0', line_len) != NULL)
            return reject(DMN_RECORD_DAMAGED, rec, why, why_len, "a NUL byte inside the record");
        if (strcmp(text, "end") == 0) {
            ended = true;
            break;
        }
        space = strchr(text, ' ');
        if (space == NULL)
            return reject(DMN_RECORD_DAMAGED, rec, why, why_len, "a line without a value");
        *space = '\0';
        if (!parse_field(rec, text, space + 1, &seen)) {
            char reason[128];
            snprintf(reason, sizeof(reason), "a bad value for '%.32s'", text);
            return reject(DMN_RECORD_DAMAGED, rec, why, why_len, reason);
        }
    }
    if (!ended)
        return reject(DMN_RECORD_DAMAGED, rec, why, why_len, "no 'end' line (a torn write?)");
    if (seen != 3)
        return reject(DMN_RECORD_DAMAGED, rec, why, why_len, "'state' or 'generation' is missing");
    return DMN_RECORD_VALID;
}

int dmn_record_read(int fd, const char *path, bool drop_cache, dmn_record_kind *kind,
                    dmn_record *rec, vml_error *err)
{
    char buf[DMN_RECORD_SIZE];
    char why[128];
    size_t got = 0;

    if (drop_cache)
        (void)posix_fadvise(fd, 0, DMN_RECORD_SIZE, POSIX_FADV_DONTNEED);
    while (got < sizeof(buf)) {
        ssize_t n = pread(fd, buf + got, sizeof(buf) - got, (off_t)got);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno,
                                "Unable to read the owner record of %s", path);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *kind = dmn_record_parse(buf, got, rec, why, sizeof(why));
    return 0;
}

int dmn_record_write(int fd, const char *path, const dmn_record *rec, bool sync, vml_error *err)
{
    char buf[DMN_RECORD_SIZE];
    size_t done = 0;

    dmn_record_format(rec, buf);
    while (done < sizeof(buf)) {
        ssize_t n = pwrite(fd, buf + done, sizeof(buf) - done, (off_t)done);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno,
                                "Unable to write the owner record of %s", path);
            return -1;
        }
        done += (size_t)n;
    }
    if (sync && fdatasync(fd) < 0) {
        vml_error_set_errno(err, VIR_FROM_LOCKSPACE, errno,
                            "Unable to write the owner record of %s", path);
        return -1;
    }
    return 0;
}

void dmn_record_describe(const dmn_record *rec, char *out, size_t out_len)
{
    char uuid[37], when[32];

    dmn_owner_format_uuid((const char *)rec->uuid, uuid);
    dmn_record_format_time(rec->acquired_usec, when, sizeof(when));
    snprintf(out, out_len, "domain '%s' (uuid %s, pid %u) on host %s since %s", rec->domain,
             uuid, rec->owner_pid, rec->host[0] != '\0' ? rec->host : "?", when);
}

void dmn_record_set_text(char *field, size_t field_size, const char *text)
{
    snprintf(field, field_size, "%s", text != NULL ? text : "");
}
