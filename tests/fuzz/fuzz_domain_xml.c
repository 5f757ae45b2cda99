/* fuzz_domain_xml.c: fuzz target for vmlockctl check's domain-XML reader (ctl_domain_parse_text). */
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "ctl_domain.h"
#include "fuzz_target.h"

/*
 * Input: a domain definition.  Oracles: success gives a domain whose disk and lease arrays
 * match their counts and whose disks have the defaults the header promises (type, device);
 * failure says why and names the file.
 */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    xmlInitParser();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctl_domain *dom = NULL;
    vml_error err = { 0 };

    if (ctl_domain_parse_text("fuzz.xml", (const char *)data, size, &dom, &err) < 0) {
        if (dom != NULL)
            fuzz_invariant_failed("a refused definition returned a domain");
        if (strstr(err.message, "fuzz.xml") == NULL)
            fuzz_invariant_failed("an error about the definition does not name the file");
        return 0;
    }
    if ((dom->ndisks > 0 && dom->disks == NULL) || (dom->nleases > 0 && dom->leases == NULL))
        fuzz_invariant_failed("a count without its array");
    for (size_t i = 0; i < dom->ndisks; i++) {
        if (dom->disks[i].type == NULL || dom->disks[i].device == NULL)
            fuzz_invariant_failed("a disk without its default type or device");
    }
    ctl_domain_free(dom);
    return 0;
}
