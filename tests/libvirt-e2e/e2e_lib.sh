# e2e_lib.sh: TAP helpers the scripts of tests/libvirt-e2e/ add to tests/lib/vml.sh (source it after vml.sh).
# shellcheck shell=bash

# skip_point DESC REASON: one test point that could not run here, reported as a TAP skip
# (never as a pass) with the reason.
skip_point() {
    VML_TAP_COUNT=$((VML_TAP_COUNT + 1))
    echo "ok $VML_TAP_COUNT - $1 # SKIP ${2:-}"
}
