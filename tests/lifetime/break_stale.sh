#!/bin/bash
# break_stale.sh: after a host crash (daemon, keeper and QEMU all gone) the lease file's owner record still names the dead holder; WHO on another daemon calls it stale, BREAK clears exactly that record (never a live lock), refuses what there is nothing to break, and the next holder continues the generation.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

uuid() { printf '4c000000-0000-4000-8000-%012d' "$1"; }
LS=$VML_TMP/ls
IMG=$VML_TMP/disk.img
vml_image "$IMG"
NAME=$(vml_lease_name "$IMG")

# ---- host A: vm1 holds the disk, then the whole host crashes
vml_daemon_config hostA
vml_daemon_start || bail_out "daemon A starts"
lt_note_keeper
KEEPER_A=$LT_KEEPER_PID
vml_plugin_config "$VML_TMP/a.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
tap_check "host A crashes: its daemon is killed" vml_daemon_crash
tap_check "... its keeper too" kill -KILL "$KEEPER_A"
vml_wait_exit "$KEEPER_A" 30
tap_check "... and vm1's QEMU" vml_guest_kill "$P1"

# ---- host B looks at the lease
vml_daemon_config hostB
vml_daemon_start || bail_out "daemon B starts"
lt_note_keeper
B_ADMIN=$VML_ADMIN_SOCK
vml_run "$LT_ADMIN" "$B_ADMIN" who --lease "$LS" "$NAME"
expect_text out "source=record state=stale" "WHO on host B: the record still names a holder, nobody holds the lock: stale"
expect_text out "domain:vm1,pid:$P1" "... naming the dead holder"

vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" "$NAME"
expect_rc 0 "BREAK of the stale record is done"
expect_text out "result=record holders=0 generation=1" "... as a record break, at generation 1"
tap_check "... logged as a warning naming the file and the last holder" \
    grep -qF "break: clearing the stale owner record of $LS/$NAME (generation 1, last held by vm1)" \
    "$VML_DAEMON_LOG"
vml_run "$LT_ADMIN" "$B_ADMIN" who --lease "$LS" "$NAME"
expect_text out "state=free" "WHO now reports the lease free"

vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" "$NAME"
expect_rc 1 "a second BREAK is refused"
expect_text err "nothing to break: nobody holds '$LS/$NAME' and its owner record names no holder" \
    "... there is nothing to break"
vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" nosuchlease
expect_rc 1 "BREAK of a lease file that does not exist is refused"
expect_text err "Unable to open resource $LS/nosuchlease" "... naming the file"
vml_run "$LT_ADMIN" "$B_ADMIN" break "" "$IMG"
expect_rc 1 "BREAK of a direct-mode lock this daemon does not hold is refused"
expect_text err "'$IMG' is not held by this daemon; direct-mode locks carry no owner record to clear" \
    "... saying there is no record to clear"
vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" "../$NAME"
expect_rc 1 "BREAK of a name that is not one path component is refused"

# ---- the next holder continues the generation the record carried
vml_plugin_config "$VML_TMP/b.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm2 "$(uuid 2)" --disk "$IMG" && P2=$VML_GUEST_PID || P2=none
vml_run "$LT_ADMIN" "$B_ADMIN" who --lease "$LS" "$NAME"
expect_text out "source=local state=held lockspace=$LS name=$NAME generation=2" \
    "vm2 acquires the disk on host B at generation 2"
vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" "$NAME"
expect_rc 0 "BREAK of a lease this daemon holds takes it from its holder"
expect_text out "result=local holders=1 generation=2" "... one holder, generation 2"
tap_check "... and vm2's QEMU is killed (its default on_lockfailure)" vml_wait_exit "$P2" 30
tap_done
