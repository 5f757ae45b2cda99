/* fuzz_dmn_config.c: fuzz target for the daemon's vmlockd.conf parser (dmn_config_load_text and the shared vml_conf reader beneath it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmn_config.h"
#include "vml_conf.h"
#include "fuzz_target.h"

/*
 * Input: the text of a vmlockd.conf.  It goes to the generic reader as is (length given,
 * embedded NUL bytes included), then through the daemon's loader (as the NUL-terminated
 * text dmn_config_load_text takes), and a config that loads is resolved (privileged and
 * not) and printed as --test-config does, so every path that consumes parsed values runs.
 *
 * Oracles: a refused config leaves *cfg as it was (the documented swap-on-success) and
 * names the file in its message; the sanitizers do the rest.
 */

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    sink = fopen("/dev/null", "we");
    if (sink == NULL)
        fuzz_cannot_run("cannot open /dev/null");
    /* resolve_paths needs these for the unprivileged defaults: fixed, so runs repeat. */
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vml_conf *conf = NULL;
    vml_error err = { 0 };
    dmn_config cfg;
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (vml_conf_parse_text("fuzz.conf", (const char *)data, size, &conf, &err) < 0 &&
        strncmp(err.message, "fuzz.conf", 9) != 0 && strstr(err.message, "fuzz.conf") == NULL)
        fuzz_invariant_failed("a syntax error does not name the file");
    vml_conf_free(conf);

    dmn_config_init(&cfg);
    vml_error_clear(&err);
    if (dmn_config_load_text(&cfg, "fuzz.conf", text, &err) < 0) {
        if (cfg.unix_sock_path != NULL || cfg.max_clients != DMN_DEFAULT_MAX_CLIENTS ||
            cfg.log_outputs != NULL)
            fuzz_invariant_failed("a refused config changed the settings");
        if (err.message[0] == '\0')
            fuzz_invariant_failed("a refused config has no error message");
    } else {
        for (int privileged = 0; privileged < 2; privileged++) {
            dmn_config copy;
            char *outputs;

            dmn_config_init(&copy);
            vml_error_clear(&err);
            if (dmn_config_load_text(&copy, "fuzz.conf", text, &err) < 0)
                fuzz_invariant_failed("a config that loaded once is refused the second time");
            if (dmn_config_resolve_paths(&copy, privileged, &err) == 0) {
                outputs = dmn_config_effective_log_outputs(&copy, privileged);
                free(outputs);
                dmn_config_print(&copy, privileged, 30, sink);
            }
            dmn_config_clear(&copy);
        }
    }
    dmn_config_clear(&cfg);
    free(text);
    return 0;
}
