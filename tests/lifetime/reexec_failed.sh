#!/bin/bash
# reexec_failed.sh: a SIGUSR1 whose exec fails (the binary was removed, or replaced by something that cannot run) leaves the running daemon serving with every lease held and says why; once the binary is back the next SIGUSR1 re-executes; a new image that exits at once leaves the locks to the keeper for a plain restart; bad handover descriptors are refused loudly.
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
# The daemon runs from a copy of the binary, which the test may take away (a package
# upgrade gone wrong) without touching the build.
IMAGE=$VML_TMP/vmlockd-image
cp "$VMLOCKD" "$IMAGE" || bail_out "cannot copy $VMLOCKD"

lease() { echo "$LS/$(vml_lease_name "$IMG")"; }
vml_daemon_config vmlockd
VMLOCKD=$IMAGE vml_daemon_start || bail_out "vmlockd -d starts from $IMAGE"
lt_note_keeper
PID=$(vml_daemon_pid)
vml_plugin_config "$VML_TMP/plugin.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$(uuid 1)" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none

# ---- the binary is gone
mv "$IMAGE" "$IMAGE.away"
kill -USR1 "$PID"
# Signals are handled before the requests of a later connection (event order).
tap_check "SIGUSR1 with the binary gone: the same daemon still answers" \
    test "$(lt_status pid)" = "$PID"
tap_check "... it did not re-execute" test "$(lt_status reexecs)" = 0
tap_check "... and logged why, carrying on" \
    lt_log_has "re-exec failed, carrying on in the running image: cannot execute $IMAGE: No such file or directory"
expect_lease "vm1 still holds its lease" "pids=,$P1,"
vml_guest_refused vm2 "$(uuid 2)" --disk "$IMG" -- "is locked by domain 'vm1'"

# ---- the binary is replaced by a file that cannot be executed
printf 'not a program\n' >"$IMAGE"
chmod 0644 "$IMAGE"
kill -USR1 "$PID"
tap_check "SIGUSR1 with a binary that cannot run: the same daemon still answers" \
    test "$(lt_status pid)" = "$PID"
tap_check "... and logged the exec error" \
    lt_log_has "re-exec failed, carrying on in the running image: cannot execute $IMAGE: Permission denied"
expect_lease "vm1 still holds its lease" "pids=,$P1,"

# ---- the binary is back: the next SIGUSR1 re-executes
mv -f "$IMAGE.away" "$IMAGE"
kill -USR1 "$PID"
tap_check "with the binary back, SIGUSR1 re-executes (reexecs=1)" test "$(lt_status reexecs)" = 1
tap_check "... in place (same pid)" test "$(lt_status pid)" = "$PID"
expect_lease "vm1 still holds its lease after the re-exec" "pids=,$P1,"
vml_guest_refused vm3 "$(uuid 3)" --disk "$IMG" -- "is locked by domain 'vm1'"

# ---- the new image is a program that exits at once: the keeper keeps the lock, and a
# plain restart adopts it
printf '#!/bin/sh\nexit 3\n' >"$IMAGE.new"
chmod 0755 "$IMAGE.new"
mv -f "$IMAGE.new" "$IMAGE"     # the running image is busy: replaced, as a package manager does
kill -USR1 "$PID"
tap_check "SIGUSR1 into an image that exits at once: the daemon is gone" vml_wait_exit "$PID" 30
[ -n "${VML_DAEMON_KILLED_LOG:-}" ] && echo "$PID" >>"$VML_DAEMON_KILLED_LOG"
tap_check "... vm1 still runs" kill -0 "$P1"
tap_check "... and its lease is still locked (by the keeper)" lt_locked_elsewhere "$(lease)"
vml_daemon_start || bail_out "a plain restart of vmlockd"
tap_check "the restarted daemon adopted vm1's lease" test "$(lt_status adopted)" = 1
expect_lease "vm1 holds its lease" "pids=,$P1,"

# ---- handover descriptors that cannot be right (kind, size) are refused loudly
PIDFILE=$VML_TMP/handover.pid
VML_DAEMON_PIDFILES+=("$PIDFILE")
: >"$VML_TMP/empty"
vml_run "$VMLOCKD" -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 7 7<"$VML_TMP/empty"
expect_rc 1 "an empty handover: exit 1"
expect_text err "the handover is 0 bytes (expected 1 to " "... naming its size and the bounds"
truncate -s 300M "$VML_TMP/huge"     # sparse: no disk space used
vml_run "$VMLOCKD" -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 7 7</dev/null
expect_rc 1 "a handover descriptor that is not a file: exit 1"
expect_text err "handover descriptor 7 is not a memfd or regular file" "... saying so"
vml_run "$VMLOCKD" -f "$VML_DAEMON_CONF" -p "$PIDFILE" --handover-fd 7 7<"$VML_TMP/huge"
expect_rc 1 "a handover larger than the limit: exit 1"
expect_text err "the handover is 314572800 bytes" "... naming its size"
tap_check "the running daemon was not disturbed" test "$(lt_status adopted)" = 1
tap_done
