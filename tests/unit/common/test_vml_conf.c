/* test_vml_conf.c: TAP tests of vml_conf: every syntax element, every syntax error with its FILE:LINE, the keyword-table applier and file loading. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vml_conf.h"
#include "vml_test.h"

static vml_conf *parse(const char *text, vml_error *err)
{
    vml_conf *conf = NULL;

    vml_error_clear(err);
    if (vml_conf_parse_text("test.conf", text, strlen(text), &conf, err) < 0)
        return NULL;
    return conf;
}

static const vml_conf_entry *find(const vml_conf *conf, const char *key)
{
    for (size_t i = 0; conf != NULL && i < conf->nentries; i++) {
        if (strcmp(conf->entries[i].key, key) == 0)
            return &conf->entries[i];
    }
    return NULL;
}

/* The entry's string, or NULL; out of line so the compiler sees no constant NULL argument. */
static __attribute__((noinline)) const char *str_of(const vml_conf_entry *e)
{
    return e != NULL ? e->str : NULL;
}

static void test_values(void)
{
    static const char text[] =
        "# a comment line\n"
        "\n"
        "positive = 42\n"
        "negative = -17   # trailing comment\n"
        "plus = +5\n"
        "zero = 0\n"
        "big = 9223372036854775807\n"
        "dq = \"double quoted # not a comment\"\n"
        "sq = 'single \"quoted\"'\n"
        "empty = \"\"\n"
        "semi = 7;\n"
        "semi_comment = \"x\" ; # comment after ';'\n"
        "dotted.key_2 = 1\n"
        "   indented\t=\t3\r\n"
        "triple = \"\"\"first line\n"
        "second 'line' with \"quotes\" inside\"\"\"\n"
        "after_triple = 1\n"
        "list = [ \"a\", 'b',\n"
        "         # a comment inside the list\n"
        "         \"c\", ]\n"
        "empty_list = []\n"
        "one_line_list = [\"x\"]\n"
        "last = 9";
    vml_error err;
    vml_conf *conf = parse(text, &err);
    const vml_conf_entry *e;

    if (!VML_CHECK(conf != NULL, "a file using every syntax element parses")) {
        printf("#   error: %s\n", err.message);
        return;
    }
    VML_CHECK(conf->nentries == 18, "every setting is an entry");
    VML_CHECK_STR(conf->filename, "test.conf", "the file name is kept for messages");

    e = find(conf, "positive");
    VML_CHECK(e && e->type == VML_CONF_INT && e->num == 42 && e->line == 3, "integer, line 3");
    e = find(conf, "negative");
    VML_CHECK(e && e->type == VML_CONF_INT && e->num == -17, "negative integer");
    e = find(conf, "plus");
    VML_CHECK(e && e->type == VML_CONF_INT && e->num == 5, "integer with '+'");
    e = find(conf, "zero");
    VML_CHECK(e && e->type == VML_CONF_INT && e->num == 0, "zero");
    e = find(conf, "big");
    VML_CHECK(e && e->num == LLONG_MAX, "largest integer");
    e = find(conf, "dq");
    VML_CHECK(e && e->type == VML_CONF_STRING, "double-quoted string");
    VML_CHECK_STR(str_of(e), "double quoted # not a comment", "'#' inside quotes is text");
    e = find(conf, "sq");
    VML_CHECK_STR(str_of(e), "single \"quoted\"", "single-quoted string keeps '\"'");
    e = find(conf, "empty");
    VML_CHECK_STR(str_of(e), "", "empty string");
    e = find(conf, "semi");
    VML_CHECK(e && e->num == 7, "';' may end a setting");
    e = find(conf, "semi_comment");
    VML_CHECK_STR(str_of(e), "x", "';' then a comment");
    e = find(conf, "dotted.key_2");
    VML_CHECK(e && e->num == 1, "keys may contain '.', '_' and digits");
    e = find(conf, "indented");
    VML_CHECK(e && e->num == 3 && e->line == 14, "leading blanks, tabs and CRLF are blanks");
    e = find(conf, "triple");
    VML_CHECK(e && e->type == VML_CONF_STRING && e->line == 15, "triple-quoted string, line 15");
    VML_CHECK_STR(str_of(e), "first line\nsecond 'line' with \"quotes\" inside",
                  "a triple-quoted string spans lines and holds quotes");
    e = find(conf, "after_triple");
    VML_CHECK(e && e->line == 17, "lines are counted inside triple-quoted strings");
    e = find(conf, "list");
    VML_CHECK(e && e->type == VML_CONF_LIST && e->nlist == 3 && e->line == 18,
              "a list across lines with a comment and a trailing comma");
    if (e && e->nlist == 3) {
        VML_CHECK_STR(e->list[0], "a", "list item 1");
        VML_CHECK_STR(e->list[1], "b", "list item 2 (single quotes)");
        VML_CHECK_STR(e->list[2], "c", "list item 3");
    }
    e = find(conf, "empty_list");
    VML_CHECK(e && e->type == VML_CONF_LIST && e->nlist == 0 && e->line == 21,
              "empty list; lines counted inside lists");
    e = find(conf, "one_line_list");
    VML_CHECK(e && e->nlist == 1, "one-item list");
    e = find(conf, "last");
    VML_CHECK(e && e->num == 9 && e->line == 23, "the last line needs no newline");
    vml_conf_free(conf);

    conf = parse("", &err);
    VML_CHECK(conf != NULL && conf->nentries == 0, "empty text is an empty config");
    vml_conf_free(conf);
    conf = parse("# only\n  # comments\n\n", &err);
    VML_CHECK(conf != NULL && conf->nentries == 0, "only comments is an empty config");
    vml_conf_free(conf);
    conf = parse("a = \"\"\"\"\"\"", &err);
    e = find(conf, "a");
    VML_CHECK_STR(str_of(e), "", "empty triple-quoted string");
    vml_conf_free(conf);
}

/* Each bad text must fail with VIR_ERR_CONF_SYNTAX and exactly this message. */
static void test_syntax_errors(void)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        { "a = 1\nb 2\n", "test.conf:2: expected '=' after the setting name" },
        { "a =\n", "test.conf:1: expected a value after '='" },
        { "a = # nothing\n", "test.conf:1: expected a value after '='" },
        { "\n\na = yes\n", "test.conf:3: a value must be a number, a quoted string or a [list]" },
        { "a = \"open\n", "test.conf:1: unterminated string" },
        { "a = 'open", "test.conf:1: unterminated string" },
        { "x = 1\na = \"\"\"never\nclosed\n", "test.conf:4: unterminated \"\"\" string" },
        { "a = 12ab\n", "test.conf:1: malformed number" },
        { "a = 1_000\n", "test.conf:1: malformed number" },
        { "a = 99999999999999999999\n", "test.conf:1: malformed or out-of-range number" },
        { "a = -\n", "test.conf:1: malformed or out-of-range number" },
        { "a = 1.5\n", "test.conf:1: unexpected text after the value" },
        { "a = 1 2\n", "test.conf:1: unexpected text after the value" },
        { "a = \"x\" \"y\"\n", "test.conf:1: unexpected text after the value" },
        { "a = 1;;\n", "test.conf:1: unexpected text after the value" },
        { "a = [1, 2]\n", "test.conf:1: list items must be quoted strings" },
        { "a = [\"x\"\n \"y\"]\n", "test.conf:2: expected ',' or ']' in list" },
        { "a = [\"x\",\n", "test.conf:2: unterminated list" },
        { "a = [\"x\", [\"y\"]]\n", "test.conf:1: list items must be quoted strings" },
        { "1a = 2\n", "test.conf:1: expected a setting name" },
        { "-a = 2\n", "test.conf:1: expected a setting name" },
        { "= 2\n", "test.conf:1: expected a setting name" },
        { "a-b = 2\n", "test.conf:1: expected '=' after the setting name" },
        { "a = 1\nb = 2\na = 3\n", "test.conf:3: 'a' is already set at line 1" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[160];
        char want[256];
        vml_error err;
        vml_conf *conf = parse(cases[i].text, &err);

        snprintf(what, sizeof(what), "syntax error %zu is refused: %s", i + 1, cases[i].message);
        VML_CHECK(conf == NULL && err.code == VIR_ERR_CONF_SYNTAX && err.domain == VIR_FROM_CONF,
                  what);
        snprintf(want, sizeof(want), "configuration file syntax error: %s", cases[i].message);
        VML_CHECK_STR(err.message, want, "  ... with its FILE:LINE message");
        vml_conf_free(conf);
    }

    {
        static const char with_nul[] = "a = \"x\0y\"\n";
        vml_conf *conf = NULL;
        vml_error err;

        vml_error_clear(&err);
        VML_CHECK(vml_conf_parse_text("test.conf", with_nul, sizeof(with_nul) - 1, &conf,
                                      &err) < 0 && conf == NULL,
                  "a NUL byte inside a string is refused");
        VML_CHECK_STR(err.message,
                      "configuration file syntax error: test.conf:1: NUL byte inside a string",
                      "  ... naming the line");
    }
    {
        /* len bounds the text: what follows it is never read */
        static const char text[] = "a = 1\nb = oops";
        vml_conf *conf = NULL;
        vml_error err;

        vml_error_clear(&err);
        VML_CHECK(vml_conf_parse_text("test.conf", text, 6, &conf, &err) == 0 &&
                  conf != NULL && conf->nentries == 1,
                  "the text ends at len, not at a NUL");
        vml_conf_free(conf);
    }
}

typedef struct settings {
    bool flag;
    unsigned int count;
    unsigned int full_range;
    char *label;
    char *dir;
} settings;

static const vml_conf_key keys[] = {
    { "flag", VML_KEY_BOOL, offsetof(settings, flag), 0, 0 },
    { "count", VML_KEY_UINT, offsetof(settings, count), 1, 100 },
    { "full_range", VML_KEY_UINT, offsetof(settings, full_range), 0, UINT_MAX },
    { "label", VML_KEY_STRING, offsetof(settings, label), 0, 0 },
    { "dir", VML_KEY_PATH, offsetof(settings, dir), 0, 0 },
};

static int apply_text(const char *text, settings *target, vml_error *err)
{
    vml_conf *conf = parse(text, err);
    int rc;

    if (conf == NULL)
        return -2;
    rc = vml_conf_apply(conf, keys, sizeof(keys) / sizeof(keys[0]), target, err);
    vml_conf_free(conf);
    return rc;
}

static void test_apply(void)
{
    settings s = { false, 0, 0, NULL, NULL };
    vml_error err;

    VML_CHECK(apply_text("flag = 1\ncount = 100\nfull_range = 4294967295\n"
                         "label = \"hello\"\ndir = '/var/lib/x'\n", &s, &err) == 0,
              "good values apply");
    VML_CHECK(s.flag == true && s.count == 100 && s.full_range == UINT_MAX,
              "bool and uint land in their fields (range ends included)");
    VML_CHECK_STR(s.label, "hello", "string lands in its field");
    VML_CHECK_STR(s.dir, "/var/lib/x", "path lands in its field");
    VML_CHECK(apply_text("flag = 0\nlabel = \"again\"\n", &s, &err) == 0 && s.flag == false,
              "bool 0 is false");
    VML_CHECK_STR(s.label, "again", "a string set twice replaces the old value");
    VML_CHECK(vml_conf_apply(NULL, keys, 5, &s, &err) == 0, "a NULL config applies nothing");

    static const struct {
        const char *text;
        const char *message;
    } bad[] = {
        { "\nflag = 2\n", "test.conf:2: 'flag' must be 0 or 1" },
        { "flag = -1\n", "test.conf:1: 'flag' must be 0 or 1" },
        { "flag = \"yes\"\n", "test.conf:1: 'flag' must be 0 or 1" },
        { "count = 0\n", "test.conf:1: 'count' must be a number from 1 to 100" },
        { "count = 101\n", "test.conf:1: 'count' must be a number from 1 to 100" },
        { "count = -5\n", "test.conf:1: 'count' must be a number from 1 to 100" },
        { "count = \"5\"\n", "test.conf:1: 'count' must be a number from 1 to 100" },
        { "full_range = 4294967296\n", "test.conf:1: 'full_range' must be a number from 0 to 4294967295" },
        { "label = 5\n", "test.conf:1: 'label' must be a quoted string, not a number" },
        { "label = [\"a\"]\n", "test.conf:1: 'label' must be a quoted string, not a list" },
        { "dir = \"relative/path\"\n", "test.conf:1: 'dir' must be an absolute path, not 'relative/path'" },
        { "dir = \"\"\n", "test.conf:1: 'dir' must be an absolute path, not ''" },
        { "count = 5\nunknown_key = 1\n", "test.conf:2: unknown setting 'unknown_key'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[160];
        char want[256];

        snprintf(what, sizeof(what), "applier refuses: %s", bad[i].message);
        VML_CHECK(apply_text(bad[i].text, &s, &err) == -1 && err.code == VIR_ERR_CONF_SYNTAX &&
                  err.domain == VIR_FROM_CONF, what);
        snprintf(want, sizeof(want), "configuration file syntax error: %s", bad[i].message);
        VML_CHECK_STR(err.message, want, "  ... naming FILE:LINE and the key");
    }
    VML_CHECK(s.count == 5, "fields before the failing entry stay stored (documented)");
    free(s.label);
    free(s.dir);
}

static void test_files(void)
{
    char dir[] = "/tmp/vml-conf-test-XXXXXX";
    char path[256];
    char missing[256];
    vml_conf *conf = NULL;
    vml_error err;
    int fd;

    if (!VML_CHECK(mkdtemp(dir) != NULL, "temp dir"))
        return;
    snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
    vml_error_clear(&err);
    VML_CHECK(vml_conf_parse_file(missing, true, &conf, &err) == 0 && conf == NULL &&
              err.code == 0, "a missing file with missing_ok is no config and no error");
    VML_CHECK(vml_conf_parse_file(missing, false, &conf, &err) == -1 && conf == NULL &&
              err.code == VIR_ERR_SYSTEM_ERROR, "a missing file without missing_ok is an error");
    VML_CHECK(strstr(err.message, missing) != NULL &&
              strstr(err.message, "No such file or directory") != NULL,
              "  ... naming the file and the reason");

    snprintf(path, sizeof(path), "%s/good.conf", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    VML_CHECK(fd >= 0 && write(fd, "a = 1\nb = \"two\"\n", 16) == 16, "write a config file");
    close(fd);
    VML_CHECK(vml_conf_parse_file(path, false, &conf, &err) == 0 && conf != NULL &&
              conf->nentries == 2, "a file parses");
    if (conf != NULL)
        VML_CHECK_STR(conf->filename, path, "  ... and messages will name its path");
    vml_conf_free(conf);
    conf = NULL;

    fd = open(path, O_WRONLY | O_TRUNC);
    VML_CHECK(fd >= 0 && write(fd, "a = 1\nb = two\n", 14) == 14, "write a bad config file");
    close(fd);
    VML_CHECK(vml_conf_parse_file(path, true, &conf, &err) == -1 && conf == NULL,
              "a bad file is an error even with missing_ok");
    VML_CHECK(strstr(err.message, ":2: a value must be") != NULL &&
              strncmp(strstr(err.message, dir), dir, strlen(dir)) == 0,
              "  ... the message is PATH:LINE");

    VML_CHECK(vml_conf_parse_file(dir, true, &conf, &err) == -1 && conf == NULL,
              "a directory is refused");
    VML_CHECK(strstr(err.message, "not a regular file") != NULL, "  ... as not a regular file");

    fd = open(path, O_WRONLY | O_TRUNC);
    VML_CHECK(fd >= 0 && ftruncate(fd, 1024 * 1024 + 1) == 0, "make a file over 1 MiB");
    close(fd);
    VML_CHECK(vml_conf_parse_file(path, false, &conf, &err) == -1 && conf == NULL,
              "a file over 1 MiB is refused");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_values();
    test_syntax_errors();
    test_apply();
    test_files();
    return vml_test_done();
}
