/* test_vml_log.c: TAP tests of vml_log: log_outputs parsing (good and bad specs) and level filtering, read back from file outputs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vml_log.h"
#include "vml_test.h"

static char dir[] = "/tmp/vml-log-test-XXXXXX";
static char file_a[128];
static char file_b[128];
static char file_stderr[128];

/* The whole content of path (malloc'd, caller frees), "" when it does not exist. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 16);
    size_t n = 0;

    if (buf == NULL)
        abort();
    if (f != NULL) {
        n = fread(buf, 1, (1 << 16) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static bool file_has(const char *path, const char *needle)
{
    char *text = slurp(path);
    bool found = strstr(text, needle) != NULL;

    free(text);
    return found;
}

static void empty_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd >= 0)
        close(fd);
}

static int set_outputs(const char *spec, vml_error *err)
{
    vml_error_clear(err);
    return vml_log_set_outputs(spec, err);
}

static void test_levels(void)
{
    char spec[300];
    char prefix[64];
    char *text;
    vml_error err;

    snprintf(spec, sizeof(spec), "2:file:%s", file_a);
    VML_CHECK(set_outputs(spec, &err) == 0, "one file output at level 2 (info)");
    VML_CHECK(!vml_log_enabled(VML_LOG_DEBUG) && vml_log_enabled(VML_LOG_INFO) &&
              vml_log_enabled(VML_LOG_ERROR), "enabled() follows the output's level");
    VML_DEBUG("message d1");
    VML_INFO("message i1 %d", 42);
    VML_WARN("message w1");
    VML_ERROR("message e1");
    text = slurp(file_a);
    VML_CHECK(count_lines(text) == 3, "info, warning and error are written, debug is not");
    VML_CHECK(strstr(text, "message d1") == NULL, "  ... no debug line");
    VML_CHECK(strstr(text, ": message i1 42\n") != NULL, "  ... the info line, formatted");
    snprintf(prefix, sizeof(prefix), "vml-log-test[%ld]: info : test_levels:", (long)getpid());
    VML_CHECK(strstr(text, prefix) != NULL, "  ... 'PROGRAM[PID]: LEVEL : FUNC:LINE : TEXT'");
    VML_CHECK(strstr(text, "]: warning : ") != NULL && strstr(text, "]: error : ") != NULL,
              "  ... level names 'warning' and 'error'");
    VML_CHECK(strlen(text) > 24 && text[4] == '-' && text[10] == ' ' && text[13] == ':' &&
              strncmp(text + 23, "+0000: ", 7) == 0,
              "  ... lines start with 'YYYY-MM-DD HH:MM:SS.mmm+0000: '");
    free(text);

    empty_file(file_a);
    snprintf(spec, sizeof(spec), "1:file:%s\t 3:file:%s", file_a, file_b);
    VML_CHECK(set_outputs(spec, &err) == 0, "two file outputs (debug, warning), tab and spaces");
    VML_CHECK(vml_log_enabled(VML_LOG_DEBUG), "enabled(debug) with a debug output");
    VML_DEBUG("message d2");
    VML_WARN("message w2");
    VML_CHECK(file_has(file_a, "message d2") && file_has(file_a, "message w2"),
              "the debug output gets debug and warning");
    VML_CHECK(!file_has(file_b, "message d2") && file_has(file_b, "message w2"),
              "the warning output gets only the warning");

    errno = EBADF;
    VML_ERROR("errno is kept");
    VML_CHECK(errno == EBADF, "logging preserves errno");

    {
        char long_text[6000];
        char *line;

        memset(long_text, 'x', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        empty_file(file_a);
        VML_ERROR("%s", long_text);
        line = slurp(file_a);
        VML_CHECK(count_lines(line) == 1 && line[strlen(line) - 1] == '\n',
                  "an over-long message is cut to one complete line");
        free(line);
    }
}

static void test_bad_specs(void)
{
    static const struct {
        const char *spec;
        const char *message;
    } bad[] = {
        { "stderr", "log output 'stderr' must start with a level 1-4 and ':'" },
        { "0:stderr", "log output '0:stderr' must start with a level 1-4 and ':'" },
        { "5:stderr", "log output '5:stderr' must start with a level 1-4 and ':'" },
        { "x:stderr", "log output 'x:stderr' must start with a level 1-4 and ':'" },
        { "1stderr", "log output '1stderr' must start with a level 1-4 and ':'" },
        { "-1:stderr", "log output '-1:stderr' must start with a level 1-4 and ':'" },
        { "1:", "log output '1:': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:bogus", "log output '1:bogus': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:file:", "log output '1:file:': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:file:relative.log", "log output '1:file:relative.log': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:stderr:extra", "log output '1:stderr:extra': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:stderr 2:nope", "log output '2:nope': expected stderr, file:/ABSOLUTE/PATH, syslog:IDENT or journald" },
        { "1:stderr 1:stderr 1:stderr 1:stderr 1:stderr 1:stderr 1:stderr 1:stderr 1:stderr",
          "at most 8 log outputs are supported" },
    };
    char spec[300];
    vml_error err;

    snprintf(spec, sizeof(spec), "1:file:%s", file_a);
    VML_CHECK(set_outputs(spec, &err) == 0, "a known-good output to compare against");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[200];

        snprintf(what, sizeof(what), "refused: '%s'", bad[i].spec);
        VML_CHECK(set_outputs(bad[i].spec, &err) == -1 &&
                  err.code == VIR_ERR_CONFIG_UNSUPPORTED && err.domain == VIR_FROM_CONF, what);
        VML_CHECK(strstr(err.message, bad[i].message) != NULL, "  ... with a message naming it");
        if (strstr(err.message, bad[i].message) == NULL)
            printf("#   got: %s\n", err.message);
    }

    snprintf(spec, sizeof(spec), "1:file:%s/no-such-dir/log", dir);
    VML_CHECK(set_outputs(spec, &err) == -1 && err.code == VIR_ERR_SYSTEM_ERROR,
              "an unopenable log file is refused");
    VML_CHECK(strstr(err.message, "cannot open log file") != NULL &&
              strstr(err.message, "No such file or directory") != NULL,
              "  ... naming the file and the reason");

    empty_file(file_a);
    VML_DEBUG("still here");
    VML_CHECK(file_has(file_a, "still here"), "after refused specs the old output is unchanged");

    VML_CHECK(set_outputs("1:stderr 4:syslog:vml-log-test 4:journald", &err) == 0,
              "stderr, syslog:IDENT and journald are accepted");
    VML_CHECK(set_outputs("", &err) == 0, "an empty spec means no outputs (stderr by default)");

    vml_error_clear(&err);
    VML_CHECK(vml_log_set_level(0, &err) == -1 && err.code == VIR_ERR_CONFIG_UNSUPPORTED,
              "log level 0 is refused");
    VML_CHECK(strstr(err.message, "log level 0 is out of range 1 (debug) to 4 (error)") != NULL,
              "  ... saying the range");
    VML_CHECK(vml_log_set_level(5, &err) == -1, "log level 5 is refused");
}

/* With no outputs configured, messages go to stderr at the default level. */
static void test_default_stderr(void)
{
    int saved = dup(STDERR_FILENO);
    int fd = open(file_stderr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char spec[300];
    vml_error err;

    if (!VML_CHECK(saved >= 0 && fd >= 0 && dup2(fd, STDERR_FILENO) >= 0, "capture stderr"))
        return;
    close(fd);
    vml_error_clear(&err);
    VML_CHECK(set_outputs("", &err) == 0 && vml_log_set_level(VML_LOG_WARN, &err) == 0,
              "no outputs, default level warning");
    VML_INFO("default info");
    VML_WARN("default warning");
    VML_CHECK(vml_log_set_level(VML_LOG_DEBUG, &err) == 0, "default level debug");
    VML_DEBUG("default debug");

    snprintf(spec, sizeof(spec), "1:file:%s", file_a);
    empty_file(file_a);
    VML_CHECK(set_outputs(spec, &err) == 0, "a file output");
    vml_log_reset();
    VML_ERROR("after reset");

    fflush(stdout);
    dup2(saved, STDERR_FILENO);
    close(saved);
    VML_CHECK(!file_has(file_stderr, "default info"), "info is below the default level");
    VML_CHECK(file_has(file_stderr, "default warning"), "warning reaches stderr");
    VML_CHECK(file_has(file_stderr, "default debug"), "a lowered default level lets debug through");
    VML_CHECK(file_has(file_stderr, "after reset") && !file_has(file_a, "after reset"),
              "after vml_log_reset messages go to stderr, not the closed file");
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        printf("Bail out! cannot create a temp dir\n");
        return 1;
    }
    snprintf(file_a, sizeof(file_a), "%s/a.log", dir);
    snprintf(file_b, sizeof(file_b), "%s/b.log", dir);
    snprintf(file_stderr, sizeof(file_stderr), "%s/stderr.log", dir);
    vml_log_set_program("vml-log-test");

    test_levels();
    test_bad_specs();
    test_default_stderr();

    vml_log_reset();
    unlink(file_a);
    unlink(file_b);
    unlink(file_stderr);
    rmdir(dir);
    return vml_test_done();
}
