#!/bin/bash
# keeper_recovery.sh: the keeper refuses another uid; a keeper that dies is replaced at once and handed every lease; one that cannot be restarted is retried while the daemon keeps serving, and a lease granted meanwhile reaches the next keeper, so a daemon crash after that loses no lock; a second daemon given the same keeper socket gets nothing.
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
vml_image "$IMG1"
vml_image "$IMG2"
LEASE1=$LS/$(vml_lease_name "$IMG1")
LEASE2=$LS/$(vml_lease_name "$IMG2")

vml_daemon_config vmlockd
KEEPER_SOCK=$VML_TMP/vmlockd.keeper-sock
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper
K1=$LT_KEEPER_PID
tap_check "the daemon has a keeper (pid $K1) on $KEEPER_SOCK" test "$K1" != 0 -a -S "$KEEPER_SOCK"
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG1" && P1=$VML_GUEST_PID || P1=none

# ---- the keeper dies: a new one is started at once and handed the lease
kill -KILL "$K1" && vml_wait_exit "$K1" 30
lt_note_keeper      # a request: the keeper's hangup is handled before it (event order)
K2=$LT_KEEPER_PID
tap_check "after the keeper was killed the daemon runs a new one (pid $K1 -> $K2)" \
    test "$K2" != 0 -a "$K2" != "$K1"
# Seen either on its hangup or on the next send to it, whichever the poll loop meets first.
tap_check "... logging the loss" lt_log_has "lost the keeper (pid $K1) at $KEEPER_SOCK: "
tap_check "... and the hand-over of the lease to the new keeper" \
    lt_log_has "keeper pid $K2 at $KEEPER_SOCK is back: handing it 1 lease(s)"
tap_check "vm1's lease stays locked throughout" lt_locked_elsewhere "$LEASE1"

# ---- the keeper dies and cannot be restarted (its socket path is taken by a directory)
rm -f "$KEEPER_SOCK"
mkdir "$KEEPER_SOCK"
kill -KILL "$K2" && vml_wait_exit "$K2" 30
tap_check "a keeper that cannot be restarted: STATUS shows no keeper" \
    test "$(lt_status keeper_pid)" = 0
tap_check "... the daemon says why, and that leases would not survive its crash" \
    lt_log_has "no keeper: cannot remove stale keeper socket $KEEPER_SOCK: Is a directory; leases would NOT survive a crash of the daemon (retrying in 5000 ms)"
tap_check "... and leaves the directory alone" test -d "$KEEPER_SOCK"
vml_guest_start vm2 "$(uuid 2)" --disk "$IMG2" && P2=$VML_GUEST_PID || P2=none
tap_check "meanwhile the daemon keeps serving: vm2's lease is locked" lt_locked_elsewhere "$LEASE2"
VML_PLUGIN_CONF=$VML_TMP/plugin.conf
vml_guest_refused vm3 "$(uuid 3)" --disk "$IMG1" -- "is locked by domain 'vm1'"

# ---- once the path is usable again the daemon's next retry (a timer, 5 s after the last
# attempt: no request needed) starts a keeper; wait for its log line (tail -F follows the
# log by inotify), bounded
exec {follow}< <(exec timeout 30 tail -n 0 -F "$VML_DAEMON_LOG" 2>/dev/null)
FOLLOW_PID=$!
rmdir "$KEEPER_SOCK"    # only lines after this can say the keeper is back
grep -m1 -qF "is back: handing it" <&"$follow"
kill "$FOLLOW_PID" 2>/dev/null
exec {follow}<&-
K3=$(lt_status keeper_pid)
[ "${K3:-0}" != 0 ] && LT_KEEPER_PIDS+=("$K3")
tap_check "after the retry delay a new keeper runs (pid ${K3:-none})" test "${K3:-0}" != 0
tap_check "... and is handed both leases, vm2's granted while there was no keeper" \
    lt_log_has "keeper pid $K3 at $KEEPER_SOCK is back: handing it 2 lease(s)"

# ---- proof: the daemon (re-executed first, so that the new keeper is handed over too)
# crashes, the keeper holds both locks, the next daemon adopts them
kill -USR1 "$(vml_daemon_pid)"
tap_check "the daemon re-executes with the new keeper" \
    test "$(lt_status reexecs)/$(lt_status keeper_pid)" = "1/$K3"
tap_check "the daemon is killed with SIGKILL" vml_daemon_crash
tap_check "vm1's lease is still locked (by the keeper)" lt_locked_elsewhere "$LEASE1"
tap_check "vm2's lease, granted while no keeper ran, is still locked too" \
    lt_locked_elsewhere "$LEASE2"
vml_daemon_start || bail_out "a new daemon starts"
tap_check "the new daemon uses that keeper (pid $K3)" test "$(lt_status keeper_pid)" = "$K3"
tap_check "... and adopted both leases" test "$(lt_status adopted)" = 2
expect_lease "vm1 still holds its lease" "pids=,$P1,"
expect_lease "vm2 still holds its lease" "pids=,$P2,"

# ---- another user reaching the keeper's socket (opened up on purpose) gets nothing from it
chmod 0711 "$VML_TMP"
chmod 0666 "$KEEPER_SOCK"
tap_check "a uid-65534 connection to the keeper is closed at once, without a message or a descriptor" \
    "$VML_PYTHON" - "$KEEPER_SOCK" <<'EOF'
import os, socket, sys
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(30)
s.connect(sys.argv[1])
try:
    s.send(b"\0\0\0\0")
except OSError:
    pass
try:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
except ConnectionResetError:
    data, anc = b"", []
sys.exit(0 if data == b"" and not anc else 1)
EOF
chmod 0600 "$KEEPER_SOCK"
chmod 0700 "$VML_TMP"
tap_check "... logged by the keeper" \
    lt_log_has "uid 65534: not our daemon's uid"
tap_check "... and the daemon keeps the same keeper" test "$(lt_status keeper_pid)" = "$K3"

# ---- a second daemon misconfigured with the same keeper socket must not take those leases
FIRST_ADMIN=$VML_ADMIN_SOCK
FIRST_LOG=$VML_DAEMON_LOG
vml_daemon_config other "keeper_sock_path = \"$KEEPER_SOCK\""
vml_daemon_start || bail_out "a second daemon starts"
tap_check "a second daemon given the same keeper socket gets no keeper" \
    test "$(lt_status keeper_pid)" = 0
tap_check "... and adopts nothing" test "$(lt_status adopted)" = 0 -a "$(lt_status leases)" = 0
tap_check "... saying its leases will not survive its crash" \
    lt_log_has "leases will NOT survive a crash of this daemon"
tap_check "the keeper refused it: the first daemon is still connected and alive" \
    grep -qF "refusing daemon pid $(vml_daemon_pid): daemon pid $(lt_status pid "$FIRST_ADMIN") is still connected and alive" "$FIRST_LOG"
tap_check "the second daemon stops (it holds nothing)" vml_daemon_stop
VML_ADMIN_SOCK=$FIRST_ADMIN
tap_check "the first daemon keeps its keeper (pid $K3)" test "$(lt_status keeper_pid)" = "$K3"
expect_lease "... and vm1's lease" "pids=,$P1,"
tap_done
