#!/bin/bash
# vmlockd_so_vs_virtlockd.sh: vmlockd.so against libvirt's own virtlockd (the plugin falls back to per-resource calls).
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCK_HOST VMLOCK_PLUGIN
VIRTLOCKD=${VML_VIRTLOCKD:-/usr/sbin/virtlockd}
[ -x "$VIRTLOCKD" ] || skip_all "$VIRTLOCKD is not installed (package libvirt-daemon)"
# As root virtlockd always serves /run/libvirt/virtlockd-sock: run it in a private namespace.
vml_private_run_libvirt "$@"
vml_setup

uuid() { printf 'cccccccc-cccc-4ccc-8ccc-%012d' "$1"; }
VML_SIDE="vmlockd.so -> virtlockd"
diag "plugin $VMLOCK_PLUGIN, daemon $VIRTLOCKD ($("$VIRTLOCKD" -V 2>&1))"

# virtlockd with a private config and pid file; its sockets land in the private /run/libvirt.
VML_SOCK=/run/libvirt/virtlockd-sock
VIRTLOCKD_PIDFILE=$VML_TMP/virtlockd.pid
echo "log_outputs = \"3:file:$VML_TMP/virtlockd.log\"" >"$VML_TMP/virtlockd.conf"
VML_DAEMON_PIDFILES+=("$VIRTLOCKD_PIDFILE")
START=$(date +%s%N)
vml_run "$VIRTLOCKD" -d -f "$VML_TMP/virtlockd.conf" -p "$VIRTLOCKD_PIDFILE"
expect_rc 0 "virtlockd -d starts" || bail_out "virtlockd does not start"
diag "$VML_SIDE: virtlockd -d took $(vml_elapsed_ms "$START") ms"
VIRTLOCKD_PID=$(cat "$VIRTLOCKD_PIDFILE")
tap_check "virtlockd listens on the private /run/libvirt/virtlockd-sock" test -S "$VML_SOCK"

vml_plugin_config "$VML_TMP/qemu-vmlockd.conf"
D1=$VML_TMP/excl.img
D2=$VML_TMP/shared.img
D3=$VML_TMP/readonly.img
D4=$VML_TMP/indirect.img
D5=$VML_TMP/second.img
for img in "$D1" "$D2" "$D3" "$D4" "$D5"; do vml_image "$img"; done

# expect_posix_lock DESC TYPE FILE: virtlockd holds a POSIX lock of TYPE (READ/WRITE) on FILE.
expect_posix_lock() {
    local ino
    ino=$(stat -c %i "$3")
    if grep -Eq "POSIX +ADVISORY +$2 +$VIRTLOCKD_PID +[0-9a-f]+:[0-9a-f]+:$ino +0 +0" /proc/locks; then
        tap_ok "$1"
    else
        tap_not_ok "$1"
        diag "no POSIX $2 lock by pid $VIRTLOCKD_PID on inode $ino in /proc/locks"
        return 1
    fi
}

# 1. exclusive vs exclusive
vml_guest_start vm1 "$(uuid 1)" --disk "$D1" && P1=$VML_GUEST_PID || P1=none
expect_posix_lock "virtlockd holds a write lock on vm1's image" WRITE "$D1"
vml_guest_refused vm2 "$(uuid 2)" --disk "$D1" -- \
    "error: resource busy: Lockspace resource '$D1' is locked"

# 2. shared vs shared
vml_guest_start s1 "$(uuid 3)" --disk "$D2,shared"
vml_guest_start s2 "$(uuid 4)" --disk "$D2,shared"
expect_posix_lock "virtlockd holds a read lock on the shared image" READ "$D2"
vml_guest_refused x1 "$(uuid 5)" --disk "$D2" -- "error: resource busy: Lockspace resource '$D2' is locked"

# 3. readonly ignored
vml_guest_start r1 "$(uuid 6)" --disk "$D3,readonly"
vml_guest_start w1 "$(uuid 7)" --disk "$D3"
vml_guest_start r2 "$(uuid 8)" --disk "$D3,readonly"

# 4. released when the owner dies
tap_check "vm1's stand-in QEMU is killed" vml_guest_kill "$P1"
vml_guest_start vm2 "$(uuid 2)" --disk "$D1"

# The fallback rolls back: a refused two-disk start leaves the first disk free (lockd would not).
vml_guest_refused b1 "$(uuid 11)" --disk "$D5" --disk "$D1" -- \
    "error: resource busy: Lockspace resource '$D1' is locked"
vml_guest_start b2 "$(uuid 12)" --disk "$D5"

# Indirect mode: the plugin's CREATE_LOCKSPACE at drvInit, hashed lease names, and the disk
# path added to virtlockd's busy message.
LS=$VML_TMP/lockspace
vml_plugin_config "$VML_TMP/qemu-vmlockd-indirect.conf" "file_lockspace_dir = \"$LS\""
HASH=$(vml_lease_name "$D4")
vml_guest_start i1 "$(uuid 9)" --disk "$D4" && PI1=$VML_GUEST_PID || PI1=none
tap_check "the lease file is in the lockspace" test -f "$LS/$HASH"
vml_guest_refused i2 "$(uuid 10)" --disk "$D4" -- \
    "error: resource busy: Lockspace resource '$HASH' is locked" "$D4"
tap_check "i1's stand-in QEMU is killed" vml_guest_kill "$PI1"
vml_guest_start i2 "$(uuid 10)" --disk "$D4"
tap_done
