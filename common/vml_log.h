/* vml_log.h: leveled logging to stderr, files and syslog, configured with libvirt's log_outputs syntax. */
#ifndef VML_LOG_H
#define VML_LOG_H

#include <stdbool.h>

#include "vml_error.h"

/* libvirt's priorities: a message is written when its level >= the output's level. */
typedef enum {
    VML_LOG_DEBUG = 1,
    VML_LOG_INFO = 2,
    VML_LOG_WARN = 3,
    VML_LOG_ERROR = 4,
} vml_log_level;

/* Name shown in every line and used as the syslog ident; the string must outlive logging. */
void vml_log_set_program(const char *program);

/* The default level for outputs that do not name one (log_level); 1..4. */
int vml_log_set_level(unsigned int level, vml_error *err);

/*
 * Replace the outputs with "LEVEL:stderr", "LEVEL:file:PATH", "LEVEL:syslog:IDENT" or
 * "LEVEL:journald" items separated by spaces.  On error nothing changes.  journald is
 * served through syslog(3), which journald collects.
 */
int vml_log_set_outputs(const char *spec, vml_error *err);

/* Close file outputs; later messages go to stderr at the default level. */
void vml_log_reset(void);

/* True when some output would write a message of this level: check before costly formatting. */
bool vml_log_enabled(vml_log_level level);

/*
 * Write one line.  Safe in a child forked from a multi-threaded process: the line is built
 * in a stack buffer and written with one write(2) per output (no stdio, no locks), except
 * for syslog outputs.
 */
void vml_log_message(vml_log_level level, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define VML_LOG_AT(level, ...) \
    do { \
        if (vml_log_enabled(level)) \
            vml_log_message(level, __func__, __LINE__, __VA_ARGS__); \
    } while (0)

#define VML_DEBUG(...) VML_LOG_AT(VML_LOG_DEBUG, __VA_ARGS__)
#define VML_INFO(...) VML_LOG_AT(VML_LOG_INFO, __VA_ARGS__)
#define VML_WARN(...) VML_LOG_AT(VML_LOG_WARN, __VA_ARGS__)
#define VML_ERROR(...) VML_LOG_AT(VML_LOG_ERROR, __VA_ARGS__)

#endif
