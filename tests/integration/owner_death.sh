#!/bin/bash
# owner_death.sh: when a guest's QEMU dies (SIGKILL), its leases are released and the next guest may start at once.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

uuid() { printf '44444444-4444-4444-8444-%012d' "$1"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
IMG=$VML_TMP/disk.img
SHARED=$VML_TMP/shared.img
LS=$VML_TMP/lockspace
IMG2=$VML_TMP/indirect.img
for img in "$IMG" "$SHARED" "$IMG2"; do vml_image "$img"; done

# Direct mode.  No sleeps: wait-exit returns once the process is gone, and the daemon handles
# an owner's exit before any request of a connection made after it (ARCHITECTURE.md, daemon
# invariant 2), so the next start must succeed straight away.
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
vml_guest_refused vm2 "$(uuid 2)" --disk "$IMG" -- "is locked by domain 'vm1'"
tap_check "vm1's stand-in QEMU is killed with SIGKILL and is gone" vml_guest_kill "$P1"
vml_guest_start vm2 "$(uuid 2)" --disk "$IMG" && P2=$VML_GUEST_PID || P2=none
expect_lease "the lease now belongs to vm2" "name=$IMG disk=$IMG mode=exclusive pids=,$P2, domains=,vm2,"

# Shared lease: it survives one holder's death and is freed by the last one's.
vml_guest_start s1 "$(uuid 3)" --disk "$SHARED,shared" && PS1=$VML_GUEST_PID || PS1=none
vml_guest_start s2 "$(uuid 4)" --disk "$SHARED,shared" && PS2=$VML_GUEST_PID || PS2=none
tap_check "s1's stand-in QEMU is killed" vml_guest_kill "$PS1"
expect_lease "the shared lease keeps only s2" "name=$SHARED disk=$SHARED mode=shared pids=,$PS2, domains=,s2,"
vml_guest_refused x1 "$(uuid 5)" --disk "$SHARED" -- "is locked by domain 's2'"
tap_check "s2's stand-in QEMU is killed" vml_guest_kill "$PS2"
vml_guest_start x1 "$(uuid 5)" --disk "$SHARED"

# Indirect mode.
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
HASH=$(vml_lease_name "$IMG2")
vml_guest_start vm3 "$(uuid 6)" --disk "$IMG2" && P3=$VML_GUEST_PID || P3=none
tap_check "the lease file exists while vm3 runs" test -f "$LS/$HASH"
tap_check "vm3's stand-in QEMU is killed" vml_guest_kill "$P3"
expect_no_lease "vm3's lease is released" "name=$HASH "
vml_guest_start vm4 "$(uuid 7)" --disk "$IMG2"
tap_done
