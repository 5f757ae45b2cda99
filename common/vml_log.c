/* vml_log.c: leveled logging to stderr, files and syslog. */
#include "vml_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_OUTPUTS_MAX 8
#define LOG_LINE_MAX 4096

typedef enum { OUTPUT_STDERR, OUTPUT_FILE, OUTPUT_SYSLOG } output_kind;

typedef struct log_output {
    output_kind kind;
    unsigned int level;     /* 0: use the default level */
    int fd;                 /* OUTPUT_FILE: owned, O_APPEND|O_CLOEXEC */
} log_output;

/* Invariant: outputs[0..noutputs) are valid; with none configured, stderr at default_level. */
static log_output outputs[LOG_OUTPUTS_MAX];
static size_t noutputs;
static unsigned int default_level = VML_LOG_WARN;
static unsigned int min_level = VML_LOG_WARN;   /* lowest level any output writes */
static const char *program_name = "vmlockd";
static bool syslog_open;

static const char *const level_names[] = { "?", "debug", "info", "warning", "error" };

static unsigned int output_level(const log_output *out)
{
    return out->level != 0 ? out->level : default_level;
}

static void recompute_min_level(void)
{
    min_level = noutputs == 0 ? default_level : VML_LOG_ERROR;
    for (size_t i = 0; i < noutputs; i++) {
        if (output_level(&outputs[i]) < min_level)
            min_level = output_level(&outputs[i]);
    }
}

void vml_log_set_program(const char *program)
{
    program_name = program;
}

int vml_log_set_level(unsigned int level, vml_error *err)
{
    if (level < VML_LOG_DEBUG || level > VML_LOG_ERROR) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                      "log level %u is out of range 1 (debug) to 4 (error)", level);
        return -1;
    }
    default_level = level;
    recompute_min_level();
    return 0;
}

static void close_outputs(log_output *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].kind == OUTPUT_FILE && list[i].fd >= 0)
            close(list[i].fd);
    }
}

/* Parse one "LEVEL:KIND[:ARG]" item into *out; on success the output owns any fd opened. */
static int parse_output(const char *item, log_output *out, vml_error *err)
{
    char *end = NULL;
    unsigned long level;
    const char *kind;

    errno = 0;
    level = strtoul(item, &end, 10);
    if (errno != 0 || end == item || *end != ':' || level < 1 || level > 4) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                      "log output '%s' must start with a level 1-4 and ':'", item);
        return -1;
    }
    kind = end + 1;
    out->level = (unsigned int)level;
    out->fd = -1;
    if (strcmp(kind, "stderr") == 0) {
        out->kind = OUTPUT_STDERR;
    } else if (strncmp(kind, "file:", 5) == 0 && kind[5] == '/') {
        out->kind = OUTPUT_FILE;
        out->fd = open(kind + 5, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out->fd < 0) {
            vml_error_set_errno(err, VIR_FROM_CONF, errno,
                                "cannot open log file '%s'", kind + 5);
            return -1;
        }
    } else if (strncmp(kind, "syslog:", 7) == 0 || strcmp(kind, "journald") == 0) {
        out->kind = OUTPUT_SYSLOG;
    } else {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                      "log output '%s': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald",
                      item);
        return -1;
    }
    return 0;
}

int vml_log_set_outputs(const char *spec, vml_error *err)
{
    log_output parsed[LOG_OUTPUTS_MAX];
    size_t nparsed = 0;
    char *copy = strdup(spec);
    char *save = NULL;
    int ret = -1;

    if (copy == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot parse log outputs");
        return -1;
    }
    for (char *item = strtok_r(copy, " \t", &save); item != NULL;
         item = strtok_r(NULL, " \t", &save)) {
        if (nparsed == LOG_OUTPUTS_MAX) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                          "at most %d log outputs are supported", LOG_OUTPUTS_MAX);
            goto out;
        }
        if (parse_output(item, &parsed[nparsed], err) < 0)
            goto out;
        nparsed++;
    }
    close_outputs(outputs, noutputs);
    memcpy(outputs, parsed, nparsed * sizeof(parsed[0]));
    noutputs = nparsed;
    nparsed = 0;
    for (size_t i = 0; i < noutputs; i++) {
        if (outputs[i].kind == OUTPUT_SYSLOG && !syslog_open) {
            openlog(program_name, LOG_PID, LOG_DAEMON);
            syslog_open = true;
        }
    }
    recompute_min_level();
    ret = 0;
 out:
    close_outputs(parsed, nparsed);
    free(copy);
    return ret;
}

void vml_log_reset(void)
{
    close_outputs(outputs, noutputs);
    noutputs = 0;
    if (syslog_open) {
        closelog();
        syslog_open = false;
    }
    recompute_min_level();
}

bool vml_log_enabled(vml_log_level level)
{
    return (unsigned int)level >= min_level;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;     /* a broken log output must never break locking */
        buf += n;
        len -= (size_t)n;
    }
}

void vml_log_message(vml_log_level level, const char *func, int line, const char *fmt, ...)
{
    char text[LOG_LINE_MAX];
    char buf[LOG_LINE_MAX + 160];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int saved_errno = errno;
    int len;
    unsigned int lvl = (unsigned int)level;

    if (lvl < VML_LOG_DEBUG || lvl > VML_LOG_ERROR)
        lvl = VML_LOG_ERROR;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);     /* gmtime_r takes no lock: safe after fork */
    len = snprintf(buf, sizeof(buf),
                   "%04d-%02d-%02d %02d:%02d:%02d.%03ld+0000: %s[%ld]: %s : %s:%d : %s\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, now.tv_nsec / 1000000, program_name, (long)getpid(),
                   level_names[lvl], func, line, text);
    if (len < 0)
        goto out;
    if ((size_t)len >= sizeof(buf))
        len = (int)sizeof(buf) - 1;

    if (noutputs == 0) {
        if (lvl >= default_level)
            write_all(STDERR_FILENO, buf, (size_t)len);
        goto out;
    }
    for (size_t i = 0; i < noutputs; i++) {
        if (lvl < output_level(&outputs[i]))
            continue;
        switch (outputs[i].kind) {
        case OUTPUT_STDERR:
            write_all(STDERR_FILENO, buf, (size_t)len);
            break;
        case OUTPUT_FILE:
            write_all(outputs[i].fd, buf, (size_t)len);
            break;
        case OUTPUT_SYSLOG: {
            static const int prio[] = { LOG_ERR, LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
            syslog(prio[lvl], "%s: %s", func, text);
            break;
        }
        }
    }
 out:
    errno = saved_errno;
}
