#!/bin/bash
# keeper_stuck.sh: a keeper that listens but does not answer (SIGSTOP: stuck on a hung mount) costs the daemon keeper_timeout_ms per try, not forever: it keeps serving, says its leases would not survive its crash, tries the stuck keeper less and less often, and hands everything over once the keeper answers again.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

uuid() { printf '4c000000-0000-4000-8000-%012d' "$((700 + $1))"; }

vml_daemon_config vmlockd "keeper_timeout_ms = 1000"
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper
KEEPER=$LT_KEEPER_PID
vml_plugin_config "$VML_TMP/plugin.conf"
tap_check "a keeper runs (pid $KEEPER)" test "${KEEPER:-0}" != 0

# follow_log: from now on, the daemon's new log lines on descriptor $FOLLOW (tail -F follows
# the file by inotify; the 60 s bound keeps a missing line from hanging the test).
follow_log() {
    exec {FOLLOW}< <(exec timeout 60 tail -n 0 -F "$VML_DAEMON_LOG" 2>/dev/null)
    FOLLOW_PID=$!
}
# await_line TEXT: the next log line containing TEXT (false when the bound passed first).
await_line() {
    grep -m1 -qF "$1" <&"$FOLLOW"
}

vml_image "$VML_TMP/held.img"
vml_image "$VML_TMP/free.img"
vml_guest_start vm1 "$(uuid 1)" --disk "$VML_TMP/held.img"

follow_log
kill -STOP "$KEEPER"
# A hammer acquires and releases a free disk in a tight loop: each grant sends the keeper
# one message, and its queue fills (a few hundred messages here); then a send waits
# keeper_timeout_ms and fails, and so does the hello of the reconnection.
lt_hammer_start hammer daemon "$VML_SOCK" "" "$VML_TMP/free.img"
tap_check "the daemon gives up on the stuck keeper after its timeout" \
    await_line "lost the keeper (pid $KEEPER) at "
tap_check "... says why and that leases would not survive its crash" \
    await_line "did not answer within 1000 ms; leases would NOT survive a crash of the daemon (retrying in 5000 ms)"
lt_hammer_mark hammer
lt_hammer_stop hammer
tap_check "... and keeps serving: the hammer's acquisitions are granted ($LT_HAMMER_RESULT)" \
    test "$(sed -n 's/.*granted=\([0-9]*\).*/\1/p' <<<"$LT_HAMMER_RESULT")" -gt 0
tap_check "vm1's disk stays locked" lt_locked_elsewhere "$VML_TMP/held.img"
vml_guest_refused intruder "$(uuid 99)" --disk "$VML_TMP/held.img" -- "is locked by domain 'vm1'"

# The next try (a timer, 5 s later) finds the keeper still stuck: the one after waits twice
# as long, since every such try makes every client wait for the timeout.
tap_check "the next try finds it stuck again and backs off (retrying in 10000 ms)" \
    await_line "(retrying in 10000 ms)"
tap_check "STATUS shows no keeper meanwhile" test "$(lt_status keeper_pid)" = 0

# The keeper answers again: the next try hands it every lease.
kill -CONT "$KEEPER"
tap_check "once it answers again the daemon hands it its lease (vm1's)" \
    await_line "is back: handing it 1 lease(s)"
kill "$FOLLOW_PID" 2>/dev/null
exec {FOLLOW}<&-
K2=$(lt_status keeper_pid)
[ "${K2:-0}" != 0 ] && LT_KEEPER_PIDS+=("$K2")
tap_check "STATUS shows a keeper again (pid ${K2:-none})" test "${K2:-0}" != 0
tap_done
