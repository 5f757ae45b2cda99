/* vml_conf.h: reader for libvirt's configuration syntax, applied through per-program keyword tables. */
#ifndef VML_CONF_H
#define VML_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "vml_error.h"

/*
 * The syntax (what libvirt's virConf accepts, minus what no lock config uses):
 *   # comment to end of line
 *   key = 42            integer (optionally negative)
 *   key = "text"        string in double or single quotes, no escapes
 *   key = """text"""    string that may span lines
 *   key = [ "a", "b" ]  list of strings, may span lines, trailing comma allowed
 * Keys are [A-Za-z_][A-Za-z0-9_.]*; one setting per line; ';' may end a setting.
 */

typedef enum {
    VML_CONF_INT,
    VML_CONF_STRING,
    VML_CONF_LIST,
} vml_conf_type;

typedef struct vml_conf_entry {
    char *key;
    vml_conf_type type;
    long long num;          /* VML_CONF_INT */
    char *str;              /* VML_CONF_STRING */
    char **list;            /* VML_CONF_LIST: nlist strings */
    size_t nlist;
    unsigned int line;
} vml_conf_entry;

typedef struct vml_conf {
    char *filename;         /* for messages: "FILE:LINE: ..." */
    vml_conf_entry *entries;
    size_t nentries;
} vml_conf;

/*
 * The default path of a libvirt-side config file name (e.g. "vmlockd.conf"): under the system
 * config directory when privileged, else $XDG_CONFIG_HOME/libvirt, else ~/.config/libvirt
 * (HOME, else the passwd entry), as libvirt looks for its own.  *out is malloc'd, the
 * caller's; -1 with err naming what to set when no home is known.
 */
int vml_conf_default_path(bool privileged, const char *name, char **out, vml_error *err);

/*
 * Parse text (len bytes, need not be NUL-terminated) named filename in messages.
 * On success *out is a new vml_conf owned by the caller.  Errors are VIR_ERR_CONF_SYNTAX
 * naming FILE:LINE.  A key given twice is an error naming both lines.
 */
int vml_conf_parse_text(const char *filename, const char *text, size_t len,
                        vml_conf **out, vml_error *err);

/*
 * Parse a file.  A missing file is not an error when missing_ok: *out is then NULL and 0
 * is returned.  Files over 1 MiB are refused.
 */
int vml_conf_parse_file(const char *path, bool missing_ok, vml_conf **out, vml_error *err);

void vml_conf_free(vml_conf *conf);

typedef enum {
    VML_KEY_BOOL,           /* int 0 or 1 -> bool */
    VML_KEY_UINT,           /* int in [min, max] -> unsigned int */
    VML_KEY_STRING,         /* string -> char * (owned by the target; replaced, old freed) */
    VML_KEY_PATH,           /* as STRING, but must be an absolute path */
} vml_key_kind;

/* One row of a program's keyword table: where and how a key lands in its config struct. */
typedef struct vml_conf_key {
    const char *name;
    vml_key_kind kind;
    size_t offset;          /* offsetof(target struct, field) */
    unsigned int min;       /* VML_KEY_UINT bounds */
    unsigned int max;
} vml_conf_key;

/*
 * Store every entry of conf (may be NULL) into target through the table.  An unknown key or a
 * value of the wrong type or range is an error naming FILE:LINE and the key.  On error the
 * fields already stored stay stored: callers parse into a scratch struct and swap it in.
 */
int vml_conf_apply(const vml_conf *conf, const vml_conf_key *keys, size_t nkeys,
                   void *target, vml_error *err);

#endif
