/* vml_error.c: formatting of libvirt-style error records. */
#include "vml_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The prefixes libvirt puts in front of a message for each code we raise; a user comparing
 * vmlockd's text with virtlockd's sees the same words. */
static const struct {
    int code;
    const char *template;
} error_templates[] = {
    { VIR_ERR_INTERNAL_ERROR, "internal error: %s" },
    { VIR_ERR_NO_SUPPORT, "this function is not supported by the connection driver: %s" },
    { VIR_ERR_INVALID_ARG, "invalid argument: %s" },
    { VIR_ERR_OPERATION_FAILED, "operation failed: %s" },
    { VIR_ERR_OPERATION_DENIED, "operation forbidden: %s" },
    { VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: %s" },
    { VIR_ERR_CONFIG_UNSUPPORTED, "unsupported configuration: %s" },
    { VIR_ERR_RESOURCE_BUSY, "resource busy: %s" },
    { VIR_ERR_CONF_SYNTAX, "configuration file syntax error: %s" },
};

const char *vml_error_template(int code)
{
    for (size_t i = 0; i < sizeof(error_templates) / sizeof(error_templates[0]); i++) {
        if (error_templates[i].code == code)
            return error_templates[i].template;
    }
    return "%s";
}

static void error_vset(vml_error *err, int domain, int code, int errnum,
                       const char *fmt, va_list ap)
{
    char detail[VML_ERROR_MESSAGE_MAX];

    vsnprintf(detail, sizeof(detail), fmt, ap);
    if (errnum != 0) {
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof(detail) - len, ": %s", strerror(errnum));
    }
    err->code = code;
    err->domain = domain;
    snprintf(err->detail, sizeof(err->detail), "%s", detail);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(err->message, sizeof(err->message), vml_error_template(code), detail);
#pragma GCC diagnostic pop
}

void vml_error_set(vml_error *err, int domain, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    error_vset(err, domain, code, 0, fmt, ap);
    va_end(ap);
}

void vml_error_set_errno(vml_error *err, int domain, int errnum, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    error_vset(err, domain, VIR_ERR_SYSTEM_ERROR, errnum, fmt, ap);
    va_end(ap);
}

void vml_error_set_raw(vml_error *err, int domain, int code, const char *message)
{
    if (err == NULL)
        return;
    err->code = code;
    err->domain = domain;
    snprintf(err->message, sizeof(err->message), "%s", message);
    snprintf(err->detail, sizeof(err->detail), "%s", message);
}

void vml_error_clear(vml_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->domain = 0;
    err->message[0] = '\0';
    err->detail[0] = '\0';
}
