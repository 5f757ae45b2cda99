#!/bin/bash
# kill9_under_load.sh: kill -9 of the daemon while other processes try the held locks: nobody gets one, the restart adopts every lease from the keeper, and a guest that died while the daemon was down has its lease released.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

uuid() { printf '4c000000-0000-4000-8000-%012d' "$1"; }
LS=$VML_TMP/ls
IMG1=$VML_TMP/one.img
IMG2=$VML_TMP/two.img
IMG3=$VML_TMP/three.img
for img in "$IMG1" "$IMG2" "$IMG3"; do vml_image "$img"; done
HASH1=$(vml_lease_name "$IMG1")
HASH3=$(vml_lease_name "$IMG3")

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper
KEEPER=$LT_KEEPER_PID
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG1" && P1=$VML_GUEST_PID || P1=none
vml_guest_start vm3 "$(uuid 3)" --disk "$IMG3" && P3=$VML_GUEST_PID || P3=none
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm2 "$(uuid 2)" --disk "$IMG2,shared" && P2=$VML_GUEST_PID || P2=none
BEFORE=$(vml_leases | grep -v "pids=,$P3," | sort)

lt_hammer_start files file "$LS/$HASH1" "$IMG2" || bail_out "the file hammer starts"

tap_check "the daemon is killed with SIGKILL" vml_daemon_crash
lt_hammer_mark files ||
    tap_not_ok "the hammer made a full round while no daemon ran"
tap_check "the keeper outlived the daemon" kill -0 "$KEEPER"
tap_check "vm3's QEMU dies while no daemon runs" vml_guest_kill "$P3"
lt_hammer_mark files ||
    tap_not_ok "the hammer made a full round after vm3 died"

vml_daemon_start || bail_out "a new daemon starts"
lt_hammer_mark files ||
    tap_not_ok "the hammer made a full round after the restart"
lt_hammer_stop files
lt_hammer_never_granted files "no other process could lock a held lease at any moment of the crash and restart"

tap_check "the new daemon uses the same keeper (pid $KEEPER)" test "$(lt_status keeper_pid)" = "$KEEPER"
ADOPTED=$(lt_status adopted)
tap_check "it adopted the kept leases (adopted=$ADOPTED)" test "${ADOPTED:-0}" -ge 2
AFTER=$(vml_leases | sort)
tap_check "it holds the same leases for the same guests as before the crash" \
    test "$BEFORE" = "$AFTER"
if [ "$BEFORE" != "$AFTER" ]; then diag "before: $BEFORE"; diag "after: $AFTER"; fi
expect_no_lease "vm3, dead while no daemon ran, holds nothing" "pids=,$P3,"
tap_check "its lease file is free: another process can lock it" \
    "$VML_PYTHON" -c 'import fcntl,os,struct,sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 1, 0))' "$LS/$HASH3"

VML_PLUGIN_CONF=$VML_TMP/indirect.conf
vml_guest_refused vm4 "$(uuid 4)" --disk "$IMG1" -- "is locked by domain 'vm1'"
vml_guest_start vm4 "$(uuid 4)" --disk "$IMG3"
VML_PLUGIN_CONF=$VML_TMP/direct.conf
vml_guest_refused vm5 "$(uuid 5)" --disk "$IMG2" -- "is locked by domain 'vm2'"

# The adopted owners are watched again (pidfd, start time checked).
tap_check "vm1's QEMU dies after the restart" vml_guest_kill "$P1"
expect_no_lease "its lease is released by the new daemon" "pids=,$P1,"
VML_PLUGIN_CONF=$VML_TMP/indirect.conf
vml_guest_start vm5 "$(uuid 5)" --disk "$IMG1"
tap_done
