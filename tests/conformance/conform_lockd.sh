#!/bin/bash
# conform_lockd.sh: the conformance suite against libvirt's lockd.so and virtlockd (Debian's), in a private /run/libvirt; lockd's deviations are listed, not hidden.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
: "${VMLOCK_CONFORM:=${VML_BUILD_DIR:+$VML_BUILD_DIR/tools/vmlock-conform}}"
vml_require VMLOCK_STUB_QEMU VMLOCK_CONFORM
HERE=${VML_CONFORMANCE_DIR:-$(cd "$(dirname "$0")" && pwd)}
LOCKD_SO=${VML_LOCKD_SO:-$(vml_find_lockd_so)}
VIRTLOCKD=${VML_VIRTLOCKD:-/usr/sbin/virtlockd}
[ -n "$LOCKD_SO" ] || skip_all "libvirt's lockd.so is not installed (package libvirt-daemon)"
[ -x "$VIRTLOCKD" ] || skip_all "$VIRTLOCKD is not installed (package libvirt-daemon)"
# As root lockd.so and virtlockd always use /run/libvirt/virtlockd-sock: a private one.
vml_private_run_libvirt "$@"
vml_setup

VIRTLOCKD_PIDFILE=$VML_TMP/virtlockd.pid
echo "log_outputs = \"3:file:$VML_TMP/virtlockd.log\"" >"$VML_TMP/virtlockd.conf"
VML_DAEMON_PIDFILES+=("$VIRTLOCKD_PIDFILE")
if ! "$VIRTLOCKD" -d -f "$VML_TMP/virtlockd.conf" -p "$VIRTLOCKD_PIDFILE" \
        >"$VML_TMP/virtlockd.out" 2>&1 </dev/null; then
    diag "$(cat "$VML_TMP/virtlockd.out")"
    bail_out "virtlockd -d starts"
fi
[ -S /run/libvirt/virtlockd-sock ] || bail_out "virtlockd listens on /run/libvirt/virtlockd-sock"

# lockd's own keys only; direct mode (the lock is on the image itself).
echo "# direct mode" >"$VML_TMP/qemu-lockd.conf"
mkdir "$VML_TMP/images"
"$VMLOCK_CONFORM" --plugin "$LOCKD_SO" --config "$VML_TMP/qemu-lockd.conf" \
    --stub "$VMLOCK_STUB_QEMU" --workdir "$VML_TMP/images" \
    --deviations "$HERE/lockd.deviations"
exit $?
