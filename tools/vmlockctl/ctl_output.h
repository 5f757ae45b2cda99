/* ctl_output.h: how vmlockctl prints untrusted strings, UUIDs and times, as JSON or as one-line text. */
#ifndef CTL_OUTPUT_H
#define CTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_UUID_TEXT_LEN 37    /* 36 characters and the terminator */

/*
 * Print text (NULL prints as "") as a JSON string literal, quotes included.  Quotes,
 * backslashes and control characters are escaped; bytes that are not UTF-8 (paths and domain
 * names need not be) become U+FFFD, since JSON text must be UTF-8.
 */
void ctl_json_string(FILE *out, const char *text);

/* Print text for a terminal: control characters and backslashes escaped, so one item stays one line. */
void ctl_text_string(FILE *out, const char *text);

/* The canonical 8-4-4-4-12 lowercase form of 16 raw UUID bytes. */
void ctl_format_uuid(const unsigned char uuid[16], char out[CTL_UUID_TEXT_LEN]);

/* ISO 8601 UTC with microseconds (2025-01-31T12:00:00.000123Z), "@Nus" when out of range. */
void ctl_format_time(int64_t usec, char *out, size_t len);

#endif
