#!/bin/bash
# who_two_daemons.sh: two daemons (two "hosts") share one lockspace: WHO and the busy errors of one name the holder from the owner record the other wrote; BREAK never breaks a live lock.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

U1=4c000000-0000-4000-8000-000000000201
U2=4c000000-0000-4000-8000-000000000202
LS=$VML_TMP/shared-lockspace
IMG=$VML_TMP/disk.img
vml_image "$IMG"
HASH=$(vml_lease_name "$IMG")
HOST=$(hostname)

vml_daemon_config hostA
vml_daemon_start || bail_out "daemon A starts"
A_ADMIN=$VML_ADMIN_SOCK
lt_note_keeper "$A_ADMIN"
vml_plugin_config "$VML_TMP/a.conf" "file_lockspace_dir = \"$LS\""
A_CONF=$VML_PLUGIN_CONF
vml_daemon_config hostB
vml_daemon_start || bail_out "daemon B starts"
B_ADMIN=$VML_ADMIN_SOCK
lt_note_keeper "$B_ADMIN"
vml_plugin_config "$VML_TMP/b.conf" "file_lockspace_dir = \"$LS\""
B_CONF=$VML_PLUGIN_CONF

VML_PLUGIN_CONF=$A_CONF
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
APID=$(lt_status pid "$A_ADMIN")

vml_run "$LT_ADMIN" "$B_ADMIN" who --lease "$LS" "$HASH"
expect_rc 0 "WHO on daemon B (which holds nothing) answers"
expect_text out "source=record state=held lockspace=$LS name=$HASH generation=1" \
    "... from the owner record: held, generation 1"
expect_text out "holders=domain:vm1,pid:$P1,host:$HOST,daemon_pid:$APID,uuid:$U1" \
    "... naming vm1, its QEMU pid, host, daemon and uuid"
vml_run "$LT_ADMIN" "$A_ADMIN" who --lease "$LS" "$HASH"
expect_text out "source=local state=held" "WHO on daemon A answers from its own table"
expect_text out "domain:vm1,pid:$P1" "... naming vm1 too"

VML_PLUGIN_CONF=$B_CONF
vml_guest_refused vm2 "$U2" --disk "$IMG" -- \
    "is locked by domain 'vm1' (uuid $U1, pid $P1) on host $HOST since "
# B's plugin registered the lockspace with B (drvInit): WHO by disk path finds it now.
vml_run "$LT_ADMIN" "$B_ADMIN" who --disk "$IMG"
tap_check "WHO by disk path on B finds exactly the lease file A holds" \
    test "$VML_OUT" = "source=record state=held lockspace=$LS name=$HASH generation=1 holders=domain:vm1,pid:$P1,host:$HOST,daemon_pid:$APID,uuid:$U1"
vml_run "$LT_ADMIN" "$B_ADMIN" break "$LS" "$HASH"
expect_rc 1 "BREAK on B of a lease A holds is refused"
expect_text err "is locked by domain 'vm1'" "... naming the live holder"
expect_text err "a live lock is never broken from another daemon" "... and why"

tap_check "vm1's QEMU dies" vml_guest_kill "$P1"
vml_run "$LT_ADMIN" "$B_ADMIN" who --disk "$IMG"
expect_text out "source=record state=free lockspace=$LS name=$HASH generation=1" \
    "after its release B reads a free record, generation kept"
expect_text out "domain:vm1,pid:$P1" "... still naming the last holder"

vml_guest_start vm2 "$U2" --disk "$IMG" && P2=$VML_GUEST_PID || P2=none
BPID=$(lt_status pid "$B_ADMIN")
vml_run "$LT_ADMIN" "$A_ADMIN" who --disk "$IMG"
expect_text out "source=record state=held lockspace=$LS name=$HASH generation=2" \
    "now daemon A reads B's record: held, generation 2"
expect_text out "holders=domain:vm2,pid:$P2,host:$HOST,daemon_pid:$BPID" "... naming vm2 and daemon B"
VML_PLUGIN_CONF=$A_CONF
vml_guest_refused vm1b "$U1" --disk "$IMG" -- \
    "is locked by domain 'vm2' (uuid $U2, pid $P2) on host $HOST since "
vml_run "$LT_ADMIN" "$A_ADMIN" who --disk "$VML_TMP/nowhere.img"
expect_rc 0 "WHO of a disk nobody ever locked answers"
tap_check "... with no entry" test -z "$VML_OUT"
vml_run "$LT_ADMIN" "$A_ADMIN" who --disk relative.img
expect_rc 1 "WHO of a relative disk path is refused"
expect_text err "is not an absolute path" "... saying so"
tap_done
