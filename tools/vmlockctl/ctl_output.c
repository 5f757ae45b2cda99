/* ctl_output.c: JSON and terminal-safe printing of untrusted strings, UUIDs and times for vmlockctl. */
#include "ctl_output.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void ctl_json_string(FILE *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)(text != NULL ? text : "");
    size_t n = strlen((const char *)s);

    fputc('"', out);
    for (size_t i = 0; i < n;) {
        size_t len;

        switch (s[i]) {
        case '"': fputs("\\\"", out); i++; continue;
        case '\\': fputs("\\\\", out); i++; continue;
        case '\b': fputs("\\b", out); i++; continue;
        case '\f': fputs("\\f", out); i++; continue;
        case '\n': fputs("\\n", out); i++; continue;
        case '\r': fputs("\\r", out); i++; continue;
        case '\t': fputs("\\t", out); i++; continue;
        default: break;
        }
        if (s[i] < 0x20 || s[i] == 0x7f) {
            fprintf(out, "\\u%04x", s[i]);
            i++;
            continue;
        }
        len = utf8_sequence(s + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        fwrite(s + i, 1, len, out);
        i += len;
    }
    fputc('"', out);
}

void ctl_text_string(FILE *out, const char *text)
{
    for (const unsigned char *s = (const unsigned char *)(text != NULL ? text : ""); *s; s++) {
        if (*s < 0x20 || *s == 0x7f)
            fprintf(out, "\\x%02x", *s);
        else if (*s == '\\')
            fputs("\\\\", out);
        else
            fputc(*s, out);
    }
}

void ctl_format_uuid(const unsigned char uuid[16], char out[CTL_UUID_TEXT_LEN])
{
    snprintf(out, CTL_UUID_TEXT_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
             uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

void ctl_format_time(int64_t usec, char *out, size_t len)
{
    time_t secs = (time_t)(usec / 1000000);
    long frac = (long)(usec % 1000000);
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, len, "@%" PRId64 "us", usec);
        return;
    }
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}
