#!/bin/bash
# stop_refused.sh: SIGTERM/SIGINT with leases held are refused (logged), SHUTDOWN without --force too; SHUTDOWN --force stops and says how many leases it dropped.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

U1=4c000000-0000-4000-8000-000000000001
LS=$VML_TMP/ls
IMG=$VML_TMP/disk.img
vml_image "$IMG"
HASH=$(vml_lease_name "$IMG")

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
DPID=$(vml_daemon_pid)
lt_note_keeper
tap_check "the daemon has a keeper process (pid $LT_KEEPER_PID)" test "$LT_KEEPER_PID" -gt 0
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none

# A signal sent before a client connects is handled before that client's request
# (ARCHITECTURE daemon invariant 2), so the STATUS below sees its outcome.
kill -TERM "$DPID"
tap_check "SIGTERM with a lease held: the daemon is still running and answering" \
    test "$(lt_status pid)" = "$DPID"
expect_lease "... and still holds vm1's lease" "name=$HASH disk=$IMG mode=exclusive pids=,$P1,"
tap_check "the refusal is logged with the way out" grep -qF \
    'refusing to stop: 1 lease(s) held by 1 domain(s); use `vmlockctl shutdown --force`' \
    "$VML_DAEMON_LOG"
kill -INT "$DPID"
tap_check "SIGINT is refused the same way" test "$(lt_status leases)" = 1

vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" shutdown
expect_rc 1 "SHUTDOWN without --force is refused"
expect_text err "refusing to stop: 1 lease(s) held by 1 domain(s)" "... naming what is held"
tap_check "... and the daemon serves on" test "$(lt_status leases)" = 1

vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" shutdown --force
expect_rc 0 "SHUTDOWN --force is accepted"
expect_text out "dropped=1 owners=1" "... and reports the 1 lease of 1 domain it dropped"
tap_check "the daemon is gone" vml_wait_exit "$DPID" 30
tap_check "its keeper is gone too (told to exit)" vml_wait_exit "$LT_KEEPER_PID" 30
tap_check "the guest is not killed by the stop" kill -0 "$P1"
tap_check "the lease file stays, its owner record says free" \
    grep -q '^state free$' "$LS/$HASH"
tap_check "another process can lock the lease file now" \
    "$VML_PYTHON" -c 'import fcntl,os,struct,sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 1, 0))' "$LS/$HASH"

# Without leases a plain SIGTERM stops at once.
vml_daemon_start || bail_out "vmlockd -d starts again"
DPID=$(vml_daemon_pid)
lt_note_keeper
kill -TERM "$DPID"
tap_check "SIGTERM with no lease held stops the daemon" vml_wait_exit "$DPID" 30
tap_check "... and its keeper" vml_wait_exit "$LT_KEEPER_PID" 30
tap_done
