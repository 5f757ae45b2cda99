/* vml_conf.c: reader for libvirt's configuration syntax and the keyword-table applier. */
#include "vml_conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vml_build_config.h"

#define CONF_FILE_MAX (1024 * 1024)

typedef struct parser {
    const char *filename;
    const char *p;
    const char *end;
    unsigned int line;
    vml_error *err;
} parser;

static int syntax_error(parser *ps, const char *what)
{
    vml_error_set(ps->err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX, "%s:%u: %s",
                  ps->filename, ps->line, what);
    return -1;
}

/* Skip blanks and comments; newlines too when cross_lines. */
static void skip_space(parser *ps, bool cross_lines)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else if (c == '\n' && cross_lines) {
            ps->line++;
            ps->p++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            ps->p++;
        } else {
            return;
        }
    }
}

static int parse_string(parser *ps, char **out)
{
    const char *start;
    size_t len;

    if (ps->end - ps->p >= 3 && memcmp(ps->p, "\"\"\"", 3) == 0) {
        ps->p += 3;
        start = ps->p;
        while (ps->p < ps->end && !(ps->end - ps->p >= 3 && memcmp(ps->p, "\"\"\"", 3) == 0)) {
            if (*ps->p == '\n')
                ps->line++;
            ps->p++;
        }
        if (ps->p >= ps->end)
            return syntax_error(ps, "unterminated \"\"\" string");
        len = (size_t)(ps->p - start);
        ps->p += 3;
    } else {
        char quote = *ps->p++;
        start = ps->p;
        while (ps->p < ps->end && *ps->p != quote && *ps->p != '\n')
            ps->p++;
        if (ps->p >= ps->end || *ps->p != quote)
            return syntax_error(ps, "unterminated string");
        len = (size_t)(ps->p - start);
        ps->p++;
    }
    if (memchr(start, '\0', len) != NULL)
        return syntax_error(ps, "NUL byte inside a string");
    *out = strndup(start, len);
    if (*out == NULL) {
        vml_error_set_errno(ps->err, VIR_FROM_CONF, ENOMEM, "%s", ps->filename);
        return -1;
    }
    return 0;
}

static int parse_int(parser *ps, long long *out)
{
    char buf[32];
    size_t n = 0;
    char *endp = NULL;

    if (ps->p < ps->end && (*ps->p == '-' || *ps->p == '+'))
        buf[n++] = *ps->p++;
    while (ps->p < ps->end && isdigit((unsigned char)*ps->p) && n < sizeof(buf) - 1)
        buf[n++] = *ps->p++;
    buf[n] = '\0';
    if (ps->p < ps->end && (isalnum((unsigned char)*ps->p) || *ps->p == '_'))
        return syntax_error(ps, "malformed number");
    errno = 0;
    *out = strtoll(buf, &endp, 10);
    if (errno != 0 || *endp != '\0' || endp == buf)
        return syntax_error(ps, "malformed or out-of-range number");
    return 0;
}

static int parse_list(parser *ps, vml_conf_entry *entry)
{
    ps->p++;    /* '[' */
    for (;;) {
        char *item = NULL;
        char **grown;

        skip_space(ps, true);
        if (ps->p >= ps->end)
            return syntax_error(ps, "unterminated list");
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (*ps->p != '"' && *ps->p != '\'')
            return syntax_error(ps, "list items must be quoted strings");
        if (parse_string(ps, &item) < 0)
            return -1;
        grown = realloc(entry->list, (entry->nlist + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(item);
            vml_error_set_errno(ps->err, VIR_FROM_CONF, ENOMEM, "%s", ps->filename);
            return -1;
        }
        entry->list = grown;
        entry->list[entry->nlist++] = item;
        skip_space(ps, true);
        if (ps->p < ps->end && *ps->p == ',')
            ps->p++;
        else if (ps->p < ps->end && *ps->p != ']')
            return syntax_error(ps, "expected ',' or ']' in list");
    }
}

static void entry_clear(vml_conf_entry *entry)
{
    free(entry->key);
    free(entry->str);
    for (size_t i = 0; i < entry->nlist; i++)
        free(entry->list[i]);
    free(entry->list);
    memset(entry, 0, sizeof(*entry));
}

void vml_conf_free(vml_conf *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i < conf->nentries; i++)
        entry_clear(&conf->entries[i]);
    free(conf->entries);
    free(conf->filename);
    free(conf);
}

/* Parse "key = value" at ps->p into entry (zeroed by the caller). */
static int parse_setting(parser *ps, vml_conf_entry *entry)
{
    const char *start = ps->p;

    if (!(isalpha((unsigned char)*ps->p) || *ps->p == '_'))
        return syntax_error(ps, "expected a setting name");
    while (ps->p < ps->end &&
           (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '.'))
        ps->p++;
    entry->key = strndup(start, (size_t)(ps->p - start));
    if (entry->key == NULL) {
        vml_error_set_errno(ps->err, VIR_FROM_CONF, ENOMEM, "%s", ps->filename);
        return -1;
    }
    entry->line = ps->line;
    skip_space(ps, false);
    if (ps->p >= ps->end || *ps->p != '=')
        return syntax_error(ps, "expected '=' after the setting name");
    ps->p++;
    skip_space(ps, false);
    if (ps->p >= ps->end || *ps->p == '\n')
        return syntax_error(ps, "expected a value after '='");
    if (*ps->p == '"' || *ps->p == '\'') {
        entry->type = VML_CONF_STRING;
        if (parse_string(ps, &entry->str) < 0)
            return -1;
    } else if (*ps->p == '[') {
        entry->type = VML_CONF_LIST;
        if (parse_list(ps, entry) < 0)
            return -1;
    } else if (isdigit((unsigned char)*ps->p) || *ps->p == '-' || *ps->p == '+') {
        entry->type = VML_CONF_INT;
        if (parse_int(ps, &entry->num) < 0)
            return -1;
    } else {
        return syntax_error(ps, "a value must be a number, a quoted string or a [list]");
    }
    skip_space(ps, false);
    if (ps->p < ps->end && *ps->p == ';') {
        ps->p++;
        skip_space(ps, false);
    }
    if (ps->p < ps->end && *ps->p != '\n')
        return syntax_error(ps, "unexpected text after the value");
    return 0;
}

int vml_conf_parse_text(const char *filename, const char *text, size_t len,
                        vml_conf **out, vml_error *err)
{
    parser ps = { .filename = filename, .p = text, .end = text + len, .line = 1, .err = err };
    vml_conf *conf = calloc(1, sizeof(*conf));
    int ret = -1;

    *out = NULL;
    if (conf == NULL || (conf->filename = strdup(filename)) == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "%s", filename);
        goto out;
    }
    for (;;) {
        vml_conf_entry entry = { 0 };
        vml_conf_entry *grown;

        skip_space(&ps, true);
        if (ps.p >= ps.end)
            break;
        if (parse_setting(&ps, &entry) < 0) {
            entry_clear(&entry);
            goto out;
        }
        for (size_t i = 0; i < conf->nentries; i++) {
            if (strcmp(conf->entries[i].key, entry.key) == 0) {
                vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                              "%s:%u: '%s' is already set at line %u", filename, entry.line,
                              entry.key, conf->entries[i].line);
                entry_clear(&entry);
                goto out;
            }
        }
        grown = realloc(conf->entries, (conf->nentries + 1) * sizeof(*grown));
        if (grown == NULL) {
            entry_clear(&entry);
            vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "%s", filename);
            goto out;
        }
        conf->entries = grown;
        conf->entries[conf->nentries++] = entry;
    }
    *out = conf;
    conf = NULL;
    ret = 0;
 out:
    vml_conf_free(conf);
    return ret;
}

int vml_conf_parse_file(const char *path, bool missing_ok, vml_conf **out, vml_error *err)
{
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int fd;
    int ret = -1;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok)
            return 0;
        vml_error_set_errno(err, VIR_FROM_CONF, errno, "cannot open configuration file '%s'",
                            path);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        vml_error_set_errno(err, VIR_FROM_CONF, errno, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONF_FILE_MAX) {
        vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                      "%s: not a regular file of at most %d bytes", path, CONF_FILE_MAX);
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "%s", path);
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vml_error_set_errno(err, VIR_FROM_CONF, errno, "cannot read '%s'", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    text[len] = '\0';    /* the parser is bounded by len; strict string checkers want a NUL too */
    ret = vml_conf_parse_text(path, text, len, out, err);
 out:
    free(text);
    close(fd);
    return ret;
}

static const char *type_name(vml_conf_type type)
{
    switch (type) {
    case VML_CONF_INT: return "a number";
    case VML_CONF_STRING: return "a string";
    case VML_CONF_LIST: return "a list";
    }
    return "?";
}

static int apply_entry(const vml_conf *conf, const vml_conf_entry *entry,
                       const vml_conf_key *key, void *target, vml_error *err)
{
    char *field = (char *)target + key->offset;

    switch (key->kind) {
    case VML_KEY_BOOL:
        if (entry->type != VML_CONF_INT || (entry->num != 0 && entry->num != 1))
            goto bad_bool;
        *(bool *)(void *)field = entry->num == 1;
        return 0;
    case VML_KEY_UINT:
        if (entry->type != VML_CONF_INT || entry->num < key->min || entry->num > key->max) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: '%s' must be a number from %u to %u", conf->filename,
                          entry->line, entry->key, key->min, key->max);
            return -1;
        }
        *(unsigned int *)(void *)field = (unsigned int)entry->num;
        return 0;
    case VML_KEY_STRING:
    case VML_KEY_PATH: {
        char **slot = (char **)(void *)field;
        char *copy;

        if (entry->type != VML_CONF_STRING) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: '%s' must be a quoted string, not %s", conf->filename,
                          entry->line, entry->key, type_name(entry->type));
            return -1;
        }
        if (key->kind == VML_KEY_PATH && entry->str[0] != '/') {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX,
                          "%s:%u: '%s' must be an absolute path, not '%s'", conf->filename,
                          entry->line, entry->key, entry->str);
            return -1;
        }
        copy = strdup(entry->str);
        if (copy == NULL) {
            vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "%s", conf->filename);
            return -1;
        }
        free(*slot);
        *slot = copy;
        return 0;
    }
    }
 bad_bool:
    vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX, "%s:%u: '%s' must be 0 or 1",
                  conf->filename, entry->line, entry->key);
    return -1;
}

int vml_conf_apply(const vml_conf *conf, const vml_conf_key *keys, size_t nkeys,
                   void *target, vml_error *err)
{
    if (conf == NULL)
        return 0;
    for (size_t i = 0; i < conf->nentries; i++) {
        const vml_conf_entry *entry = &conf->entries[i];
        const vml_conf_key *key = NULL;

        for (size_t k = 0; k < nkeys; k++) {
            if (strcmp(keys[k].name, entry->key) == 0) {
                key = &keys[k];
                break;
            }
        }
        if (key == NULL) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONF_SYNTAX, "%s:%u: unknown setting '%s'",
                          conf->filename, entry->line, entry->key);
            return -1;
        }
        if (apply_entry(conf, entry, key, target, err) < 0)
            return -1;
    }
    return 0;
}

int vml_conf_default_path(bool privileged, const char *name, char **out, vml_error *err)
{
    const char *base = getenv("XDG_CONFIG_HOME");
    const char *home;
    int rc;

    *out = NULL;
    if (privileged) {
        rc = asprintf(out, "%s/libvirt/%s", VML_SYSCONFDIR, name);
    } else if (base != NULL && base[0] == '/') {
        rc = asprintf(out, "%s/libvirt/%s", base, name);
    } else {
        home = getenv("HOME");
        if (home == NULL || home[0] != '/') {
            const struct passwd *pw = getpwuid(geteuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL) {
            vml_error_set(err, VIR_FROM_CONF, VIR_ERR_CONFIG_UNSUPPORTED,
                          "cannot find the per-user libvirt config directory: set "
                          "XDG_CONFIG_HOME or HOME, or pass --config");
            return -1;
        }
        rc = asprintf(out, "%s/.config/libvirt/%s", home, name);
    }
    if (rc < 0) {
        *out = NULL;
        vml_error_set_errno(err, VIR_FROM_CONF, ENOMEM, "cannot build the config file path");
        return -1;
    }
    return 0;
}
