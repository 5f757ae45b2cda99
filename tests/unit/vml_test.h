/* vml_test.h: a minimal TAP producer for the unit tests (meson runs them with protocol 'tap'). */
#ifndef VML_TEST_H
#define VML_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned int vml_test_count;
static unsigned int vml_test_failed;

/* Report one check; returns cond so callers can stop on a failed precondition. */
static inline bool vml_test_report(bool cond, const char *file, int line, const char *what)
{
    vml_test_count++;
    if (cond) {
        printf("ok %u - %s\n", vml_test_count, what);
    } else {
        vml_test_failed++;
        printf("not ok %u - %s (%s:%d)\n", vml_test_count, what, file, line);
    }
    fflush(stdout);
    return cond;
}

#define VML_CHECK(cond, what) vml_test_report((cond), __FILE__, __LINE__, (what))

/* Compare strings; got may be NULL (a failure).  Prints both on a mismatch. */
static inline bool vml_test_report_str(const char *got, const char *want, const char *file,
                                       int line, const char *what)
{
    bool same = got != NULL && strcmp(got, want) == 0;

    if (!vml_test_report(same, file, line, what))
        printf("#   got:  '%s'\n#   want: '%s'\n", got != NULL ? got : "(null)", want);
    return same;
}

#define VML_CHECK_STR(got, want, what) \
    vml_test_report_str((got), (want), __FILE__, __LINE__, (what))

/* Print the plan and return the process exit status. */
static inline int vml_test_done(void)
{
    printf("1..%u\n", vml_test_count);
    return vml_test_failed == 0 ? 0 : 1;
}

#endif
