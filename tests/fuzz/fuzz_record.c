/* fuzz_record.c: fuzz target for the owner-record parser (dmn_record_parse): lease files are shared with every host of a lockspace, so their content is untrusted input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmn_record.h"
#include "fuzz_target.h"

/*
 * Input: the first bytes of a lease file.  Oracles: the kind is one of the four; a VALID
 * record's text fields are NUL-terminated within their arrays; formatting a VALID record and
 * parsing the result gives the same record (the format round-trips; a held record's
 * released_at is not part of its format), and describing it fits its buffer.
 */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dmn_record rec, again;
    char why[256] = "";
    char text[1024];
    char *buf;
    dmn_record_kind kind;

    memset(&rec, 0x5a, sizeof(rec));
    kind = dmn_record_parse((const char *)data, size, &rec, why, sizeof(why));
    if (kind != DMN_RECORD_VALID) {
        static const dmn_record zero;

        if (kind != DMN_RECORD_EMPTY && kind != DMN_RECORD_DAMAGED && kind != DMN_RECORD_FOREIGN)
            fuzz_invariant_failed("dmn_record_parse returned no known kind");
        if (memcmp(&rec, &zero, sizeof(rec)) != 0)
            fuzz_invariant_failed("a record that is not VALID was not left zeroed");
        return 0;
    }
    if (memchr(rec.host, '\0', sizeof(rec.host)) == NULL ||
        memchr(rec.boot_id, '\0', sizeof(rec.boot_id)) == NULL ||
        memchr(rec.domain, '\0', sizeof(rec.domain)) == NULL)
        fuzz_invariant_failed("a parsed text field is not NUL-terminated");
    buf = malloc(DMN_RECORD_SIZE);
    if (buf == NULL)
        return 0;
    dmn_record_format(&rec, buf);
    memset(&again, 0, sizeof(again));
    if (dmn_record_parse(buf, DMN_RECORD_SIZE, &again, why, sizeof(why)) != DMN_RECORD_VALID)
        fuzz_invariant_failed("a formatted record does not parse back");
    if (again.held != rec.held || again.generation != rec.generation ||
        again.run_start != rec.run_start || again.owner_pid != rec.owner_pid ||
        again.daemon_pid != rec.daemon_pid || strcmp(again.host, rec.host) != 0 ||
        strcmp(again.domain, rec.domain) != 0 || strcmp(again.boot_id, rec.boot_id) != 0 ||
        memcmp(again.uuid, rec.uuid, sizeof(rec.uuid)) != 0 ||
        again.acquired_usec != rec.acquired_usec ||
        (!rec.held && again.released_usec != rec.released_usec))
        fuzz_invariant_failed("a record does not round-trip through format and parse");
    dmn_record_describe(&rec, text, sizeof(text));
    free(buf);
    return 0;
}
