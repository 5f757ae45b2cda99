#!/bin/bash
# keeper_bulk.sh: what the keeper must carry beyond one message survives a daemon crash: a domain with 130 disks (more leases and descriptors than one keeper message holds) and a domain whose name and disk path are longer than the keeper's copy of a string; the restart adopts them all and the owners' deaths release them.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

LS=$VML_TMP/ls
NDISKS=130
DISKS=()
for i in $(seq 1 "$NDISKS"); do
    vml_image "$VML_TMP/m$i.img"
    DISKS+=(--disk "$VML_TMP/m$i.img")
done
# A disk path of more than 1024 bytes (five nested 200-byte directory names).
DEEP=$VML_TMP
for _ in 1 2 3 4 5; do DEEP=$DEEP/$(printf 'd%.0s' $(seq 1 200)); done
mkdir -p "$DEEP"
LONG_DISK=$DEEP/long.img
vml_image "$LONG_DISK"
LONG_NAME=vm-$(printf 'n%.0s' $(seq 1 1100))

unlocked() { ! lt_locked_elsewhere "$1"; }
lease() { echo "$LS/$(vml_lease_name "$1")"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper
KEEPER=$LT_KEEPER_PID
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vmMany 4c000000-0000-4000-8000-000000000501 "${DISKS[@]}" && PM=$VML_GUEST_PID || PM=none
vml_guest_start "$LONG_NAME" 4c000000-0000-4000-8000-000000000502 --disk "$LONG_DISK" &&
    PL=$VML_GUEST_PID || PL=none
tap_check "the daemon holds $((NDISKS + 1)) leases" test "$(lt_status leases)" = $((NDISKS + 1))

kill -USR1 "$(vml_daemon_pid)"
tap_check "the daemon re-executes with all of them" \
    test "$(lt_status reexecs)/$(lt_status leases)" = "1/$((NDISKS + 1))"
tap_check "the daemon is killed with SIGKILL" vml_daemon_crash
ok=1
for i in 1 60 61 120 121 "$NDISKS"; do
    lt_locked_elsewhere "$(lease "$VML_TMP/m$i.img")" || { ok=0; diag "m$i.img is not locked"; }
done
tap_check "the keeper holds vmMany's disks, in the first message and after it" test "$ok" = 1
tap_check "... and the long-named domain's long disk path" lt_locked_elsewhere "$(lease "$LONG_DISK")"

vml_daemon_start || bail_out "a new daemon starts"
tap_check "the new daemon uses the same keeper (pid $KEEPER)" test "$(lt_status keeper_pid)" = "$KEEPER"
tap_check "... and adopted all $((NDISKS + 1)) leases" test "$(lt_status adopted)" = $((NDISKS + 1))
tap_check "vmMany holds its $NDISKS leases again" test "$(vml_leases | grep -c "pids=,$PM,")" = "$NDISKS"
expect_lease "the long-named domain holds its lease again" "pids=,$PL,"
VML_PLUGIN_CONF=$VML_TMP/plugin.conf
vml_guest_refused vmOther 4c000000-0000-4000-8000-000000000503 --disk "$VML_TMP/m130.img" -- \
    "is locked by domain 'vmMany'"

tap_check "vmMany dies" vml_guest_kill "$PM"
tap_check "the long-named domain dies" vml_guest_kill "$PL"
tap_check "their adopted leases are all released" test "$(lt_status leases)" = 0
tap_check "... and unlocked" unlocked "$(lease "$VML_TMP/m130.img")"
tap_done
