#!/bin/bash
# conform_vmlockd.sh: the conformance suite against vmlockd.so and vmlockd (direct mode); every check must pass.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
: "${VMLOCK_CONFORM:=${VML_BUILD_DIR:+$VML_BUILD_DIR/tools/vmlock-conform}}"
vml_require VMLOCKD VMLOCK_PLUGIN VMLOCK_STUB_QEMU VMLOCK_CONFORM
HERE=${VML_CONFORMANCE_DIR:-$(cd "$(dirname "$0")" && pwd)}
vml_setup

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/qemu-vmlockd.conf"
mkdir "$VML_TMP/images"

# The suite's own TAP is this test's output; the EXIT trap stops the daemon afterwards.
"$VMLOCK_CONFORM" --plugin "$VMLOCK_PLUGIN" --config "$VML_PLUGIN_CONF" \
    --stub "$VMLOCK_STUB_QEMU" --workdir "$VML_TMP/images" \
    --deviations "$HERE/vmlockd.deviations"
exit $?
