#!/bin/bash
# stuck_check.sh: storage that stops answering (the lease check's stat of one lockspace held in the kernel): the daemon keeps serving, every lease the check could not verify by lease_check_timeout_ms is lost and its domain powered off, CHECK_NOW is refused while the check is stuck, and once the storage answers again checks resume.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
: "${LT_HANG:=${VML_BUILD_DIR:+$VML_BUILD_DIR/tests/lifetime/lt_hang}}"
lt_require LT_HANG
lt_setup

uuid() { printf '4c000000-0000-4000-8000-%012d' "$1"; }
vml_image "$VML_TMP/ok.img"
vml_image "$VML_TMP/hung.img"
# The daemon runs under lt_hang, which can hold the stat calls on paths under hung-ls.
vml_daemon_config vmlockd "lease_check_interval_ms = 600000" "lease_check_timeout_ms = 500"
VML_DAEMON_PIDFILES+=("$VML_DAEMON_PIDFILE")
VML_DAEMON_ADMIN[$VML_DAEMON_PIDFILE]=$VML_ADMIN_SOCK
mkfifo "$VML_TMP/hang.in" "$VML_TMP/hang.out"
"$LT_HANG" hung-ls -- "$VMLOCKD" -d -f "$VML_DAEMON_CONF" -p "$VML_DAEMON_PIDFILE" \
    <"$VML_TMP/hang.in" >"$VML_TMP/hang.out" 2>"$VML_TMP/hang.err" &
HANG=$!
VML_CHILD_PIDS+=("$HANG")
exec {HIN}>"$VML_TMP/hang.in"
exec {HOUT}<"$VML_TMP/hang.out"
read -r -t 60 -u "$HOUT" line
if [ "$line" != "exit 0" ]; then
    grep -q 'not available\|not supported' "$VML_TMP/hang.err" &&
        skip_all "seccomp user notification is not available: $(cat "$VML_TMP/hang.err")"
    bail_out "vmlockd -d under lt_hang starts (got '$line': $(cat "$VML_TMP/hang.err"))"
fi
lt_note_keeper
DPID=$(vml_daemon_pid)

# vmOK's lease comes first in the check's order, vmHung's lockspace is the one that hangs.
vml_plugin_config "$VML_TMP/ok.conf" "file_lockspace_dir = \"$VML_TMP/ok-ls\""
vml_guest_start vmOK "$(uuid 1)" --disk "$VML_TMP/ok.img" && POK=$VML_GUEST_PID || POK=none
vml_plugin_config "$VML_TMP/hung.conf" "file_lockspace_dir = \"$VML_TMP/hung-ls\""
vml_guest_start vmHung "$(uuid 2)" --disk "$VML_TMP/hung.img" && PH=$VML_GUEST_PID || PH=none
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "checked=2 lost=0" "while the storage answers, a check verifies both leases"

echo "hang $DPID" >&"$HIN"
read -r -t 60 -u "$HOUT" line
tap_check "the storage of hung-ls stops answering (for everyone but the daemon itself)" \
    test "$line" = hanging
START=$(date +%s%N)
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
WAITED=$(vml_elapsed_ms "$START")
expect_rc 0 "CHECK_NOW is answered although the check is stuck"
expect_text out "checked=1 lost=1" "... once the 500 ms deadline passed: vmOK verified, vmHung's lease lost"
tap_check "... after the deadline, not long after ($WAITED ms)" test "$WAITED" -ge 450 -a "$WAITED" -lt 20000
read -r -t 10 -u "$HOUT" line
tap_check "the check's probe was indeed held on the hung lockspace ($line)" \
    test "${line%% *}" = held
tap_check "the loss is logged as an error" \
    lt_log_has "has not answered for 500 ms: the 1 lease(s) it did not verify are treated as lost"
tap_check "... with the reason given for vmHung" \
    lt_log_has "its storage did not answer the check within 500 ms"
tap_check "vmHung's QEMU is powered off (default on_lockfailure)" vml_wait_exit "$PH" 30
tap_check "vmOK keeps running" kill -0 "$POK"
expect_lease "... and keeps its lease" "pids=,$POK,"

vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_rc 1 "a CHECK_NOW while the probe is still stuck is refused"
expect_text err "a lease check is still stuck in the kernel (storage not answering)" "... saying why"
tap_check "the daemon itself keeps serving: STATUS counts the loss" test "$(lt_status lost_leases)" = 1

echo release >&"$HIN"
read -r -t 60 -u "$HOUT" line
tap_check "the storage answers again ($line)" test "${line%% *}" = released
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "checked=1 lost=0 lost_total=1" "checks resume: vmOK's lease verified, nothing new lost"

# Stop everything under lt_hang, which then ends by itself.
tap_check "vmOK is stopped" vml_guest_kill "$POK"
tap_check "the daemon stops" vml_daemon_stop
[ "${LT_KEEPER_PID:-0}" != 0 ] && vml_wait_exit "$LT_KEEPER_PID" 30
exec {HIN}>&-
tap_check "lt_hang ends once no process under it is left" vml_wait_exit "$HANG" 30
wait "$HANG" 2>/dev/null
exec {HOUT}<&-
tap_done
