#!/bin/bash
# lockd_vs_vmlockd.sh: libvirt's own lockd.so, unchanged, against vmlockd serving /run/libvirt/virtlockd-sock.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL
LOCKD_SO=${VML_LOCKD_SO:-$(vml_find_lockd_so)}
[ -n "$LOCKD_SO" ] && [ -f "$LOCKD_SO" ] ||
    skip_all "libvirt's lockd.so${LOCKD_SO:+ ($LOCKD_SO)} is not installed (package libvirt-daemon)"
# As root lockd.so always connects to /run/libvirt/virtlockd-sock: serve it in a private namespace.
vml_private_run_libvirt "$@"
vml_setup

uuid() { printf 'bbbbbbbb-bbbb-4bbb-8bbb-%012d' "$1"; }
VML_SIDE="lockd.so -> vmlockd"
VML_HOST_PLUGIN=$LOCKD_SO
diag "plugin $LOCKD_SO, daemon $VMLOCKD"

VML_SOCK_OVERRIDE=/run/libvirt/virtlockd-sock
vml_daemon_config vmlockd
START=$(date +%s%N)
vml_daemon_start || bail_out "vmlockd -d starts on /run/libvirt/virtlockd-sock"
diag "$VML_SIDE: vmlockd -d took $(vml_elapsed_ms "$START") ms"
D1=$VML_TMP/excl.img
D2=$VML_TMP/shared.img
D3=$VML_TMP/readonly.img
D4=$VML_TMP/indirect.img
for img in "$D1" "$D2" "$D3" "$D4"; do vml_image "$img"; done

# lockd's own config keys only (it has no unix_sock_path).
echo "# direct mode: the lock is on the image" >"$VML_TMP/qemu-lockd.conf"
VML_PLUGIN_CONF=$VML_TMP/qemu-lockd.conf

# 1. exclusive vs exclusive
vml_guest_start vm1 "$(uuid 1)" --disk "$D1" && P1=$VML_GUEST_PID || P1=none
vml_guest_refused vm2 "$(uuid 2)" --disk "$D1" -- \
    "error: resource busy: Lockspace resource '$D1' is locked"
expect_lease "vmlockd holds vm1's disk for lockd.so's owner" \
    "lockspace= name=$D1 disk= mode=exclusive pids=,$P1, domains=,vm1,"

# 2. shared vs shared
vml_guest_start s1 "$(uuid 3)" --disk "$D2,shared" && PS1=$VML_GUEST_PID || PS1=none
vml_guest_start s2 "$(uuid 4)" --disk "$D2,shared" && PS2=$VML_GUEST_PID || PS2=none
expect_lease "the shared lease lists both" "name=$D2 disk= mode=shared pids=,$PS1,$PS2,"
vml_guest_refused x1 "$(uuid 5)" --disk "$D2" -- "error: resource busy: Lockspace resource '$D2' is locked"

# 3. readonly ignored
vml_guest_start r1 "$(uuid 6)" --disk "$D3,readonly"
vml_guest_start w1 "$(uuid 7)" --disk "$D3"
vml_guest_start r2 "$(uuid 8)" --disk "$D3,readonly"

# 4. released when the owner dies
tap_check "vm1's stand-in QEMU is killed" vml_guest_kill "$P1"
vml_guest_start vm2 "$(uuid 2)" --disk "$D1"

# Indirect mode: lockd.so registers the lockspace at drvInit (CREATE_LOCKSPACE) and names
# leases by the SHA-256 of the path as given.
LS=$VML_TMP/lockspace
echo "file_lockspace_dir = \"$LS\"" >"$VML_TMP/qemu-lockd-indirect.conf"
VML_PLUGIN_CONF=$VML_TMP/qemu-lockd-indirect.conf
HASH=$(printf %s "$D4" | sha256sum | cut -d' ' -f1)
vml_guest_start i1 "$(uuid 9)" --disk "$D4" && PI1=$VML_GUEST_PID || PI1=none
tap_check "lockd.so's CREATE_LOCKSPACE made the lockspace directory" test -d "$LS"
tap_check "the lease file is in the lockspace" test -f "$LS/$HASH"
vml_guest_refused i2 "$(uuid 10)" --disk "$D4" -- \
    "error: resource busy: Lockspace resource '$HASH' is locked"
tap_check "i1's stand-in QEMU is killed" vml_guest_kill "$PI1"
vml_guest_start i2 "$(uuid 10)" --disk "$D4"
tap_done
