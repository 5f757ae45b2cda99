/* vml_error.h: one error record (libvirt code, domain, message) carried from where a failure happens to the wire or the user. */
#ifndef VML_ERROR_H
#define VML_ERROR_H

#include <stddef.h>
#include <libvirt/virterror.h>

#define VML_ERROR_MESSAGE_MAX 1024

/*
 * An error as libvirt's clients see it.  code/domain are libvirt's virErrorNumber and
 * virErrorDomain; message is the complete user-facing text, already prefixed the way libvirt
 * prefixes that code ("resource busy: ...").  detail is the text without the prefix (what
 * libvirt calls str2).  A zero code means "no error".
 */
typedef struct vml_error {
    int code;
    int domain;
    char message[VML_ERROR_MESSAGE_MAX];
    char detail[VML_ERROR_MESSAGE_MAX];
} vml_error;

/* Record an error; err may be NULL (the error is then dropped).  Overwrites any earlier one. */
void vml_error_set(vml_error *err, int domain, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As vml_error_set with code VIR_ERR_SYSTEM_ERROR, appending ": strerror(errnum)". */
void vml_error_set_errno(vml_error *err, int domain, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record an error whose full message is already formed (e.g. received from a peer). */
void vml_error_set_raw(vml_error *err, int domain, int code, const char *message);

void vml_error_clear(vml_error *err);

/* libvirt's printf template for a code, e.g. "resource busy: %s"; "%s" for unknown codes. */
const char *vml_error_template(int code);

#endif
