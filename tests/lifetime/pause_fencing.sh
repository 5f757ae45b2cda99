#!/bin/bash
# pause_fencing.sh: the state a pause returns carries each lease's generation; resuming with it is refused when another domain took and released a disk meanwhile, and allowed otherwise (also for the same domain's migration target).
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

U1=4c000000-0000-4000-8000-000000000301
U2=4c000000-0000-4000-8000-000000000302
LS=$VML_TMP/ls
IMG=$VML_TMP/disk.img
DIRECT=$VML_TMP/direct.img
vml_image "$IMG"
vml_image "$DIRECT"
HOST=$(hostname)

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper

# state_of: the state "vmlock-host release|inquire" printed.
state_of() { sed -n 's/^state: //p' <<<"$VML_OUT"; }

for mode in indirect direct; do
    if [ "$mode" = indirect ]; then
        vml_plugin_config "$VML_TMP/$mode.conf" "file_lockspace_dir = \"$LS\""
        DISK=$IMG
    else
        vml_plugin_config "$VML_TMP/$mode.conf"
        DISK=$DIRECT
    fi
    vml_guest_start "vm1-$mode" "$U1" --disk "$DISK" && P1=$VML_GUEST_PID || P1=none
    vml_host release --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK"
    expect_rc 0 "$mode: pausing vm1 releases its disk"
    S1=$(state_of)
    if [[ "$S1" =~ ^vmlockd:1:[0-9a-f]{16}=[0-9]+(@[0-9a-f]+)?$ ]]; then
        tap_ok "$mode: the pause returns a lock state ($S1)"
    else
        tap_not_ok "$mode: the pause returns a lock state"
        vml_show_last
    fi
    vml_host acquire --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK" --state "$S1"
    expect_rc 0 "$mode: resuming with that state, nobody having used the disk, succeeds"
    vml_host release --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK"
    S2=$(state_of)

    vml_guest_start "vm2-$mode" "$U2" --disk "$DISK" && P2=$VML_GUEST_PID || P2=none
    vml_host release --pid "$P2" --name "vm2-$mode" --uuid "$U2" --disk "$DISK"
    expect_rc 0 "$mode: vm2 used the disk and paused again (released it)"
    vml_host acquire --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK" --state "$S2"
    expect_rc 1 "$mode: resuming vm1 with its state is refused: vm2 used the disk meanwhile"
    expect_text err "error: Requested operation is not valid: disk '$DISK' was acquired by domain 'vm2-$mode' (uuid $U2, pid $P2)" \
        "$mode: ... naming the disk and who held it meanwhile"
    expect_text err "while domain 'vm1-$mode' did not hold it" "$mode: ... and the paused domain"
    expect_no_lease "$mode: the refused resume holds nothing" "pids=,$P1,"
    vml_host acquire --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK" --state "vmlockd:7:x"
    expect_rc 1 "$mode: a state of an unknown version is refused"
    expect_text err "format version" "$mode: ... saying so"
    vml_host acquire --pid "$P1" --name "vm1-$mode" --uuid "$U1" --disk "$DISK"
    expect_rc 0 "$mode: without a state (lockd's behaviour: libvirt passes NULL) the resume is granted"
    vml_guest_kill "$P1"
    vml_guest_kill "$P2"
done
if [ "$mode" = direct ]; then
    [[ "$S2" == *@* ]] && tap_ok "direct mode: the generation names its daemon's epoch (host-local)" ||
        tap_not_ok "direct mode: the generation names its daemon's epoch (got $S2)"
fi

# A re-exec (SIGUSR1) while vm5 holds the direct-mode disk: its lease carries its
# generation (5: the loop above took the disk 4 times) across, and into the table at the
# pause, so vm6 using the disk meanwhile still fences vm5's resume.
VML_PLUGIN_CONF=$VML_TMP/direct.conf
vml_guest_start vm5 "$U1" --disk "$DIRECT" && P5=$VML_GUEST_PID || P5=none
kill -USR1 "$(vml_daemon_pid)"
tap_check "the daemon re-executes with vm5's direct-mode lease held" \
    test "$(lt_status reexecs)/$(lt_status leases)" = "1/1"
vml_host release --pid "$P5" --name vm5 --uuid "$U1" --disk "$DIRECT"
S5=$(state_of)
tap_check "pausing vm5 after the re-exec reports generation 5 ($S5)" \
    test "${S5#*=}" != "$S5" -a "${S5#*=}" = "5@${S2#*@}"
vml_guest_start vm6 "$U2" --disk "$DIRECT" && P6=$VML_GUEST_PID || P6=none
vml_host release --pid "$P6" --name vm6 --uuid "$U2" --disk "$DIRECT"
vml_host acquire --pid "$P5" --name vm5 --uuid "$U1" --disk "$DIRECT" --state "$S5"
expect_rc 1 "resuming vm5 is refused: vm6 used the disk after the re-exec"
expect_text err "(generation 6, expected 5)" "... with the generations counted on across it"
vml_guest_kill "$P5"
vml_guest_kill "$P6"

# Migration on one host: inquire on the running source; the destination (the same domain,
# a new QEMU) acquires with it after the source paused; the source may even resume later
# with its pause state once the destination is gone: no OTHER domain held the disk.
VML_PLUGIN_CONF=$VML_TMP/indirect.conf
vml_guest_start src "$U1" --disk "$IMG" && PS=$VML_GUEST_PID || PS=none
vml_host inquire --pid "$PS" --name src --uuid "$U1" --disk "$IMG"
expect_rc 0 "migration: drvInquire on the running source answers"
SI=$(state_of)
tap_check "migration: it returns the state of the lease held ($SI)" test -n "$SI" -a "$SI" != none
vml_guest_start dst "$U1" --disk "$IMG" --paused && PD=$VML_GUEST_PID || PD=none
vml_host release --pid "$PS" --name src --uuid "$U1" --disk "$IMG"
SP=$(state_of)
vml_host acquire --pid "$PD" --name dst --uuid "$U1" --disk "$IMG" --state "$SI"
expect_rc 0 "migration: the destination acquires with the cookie's state"
vml_guest_kill "$PD"
vml_host acquire --pid "$PS" --name src --uuid "$U1" --disk "$IMG" --state "$SP"
expect_rc 0 "the source resumes with its pause state: only the same domain held the disk"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" who --disk "$IMG"
expect_text out "source=local state=held" "WHO shows the source holding it again"
tap_done
