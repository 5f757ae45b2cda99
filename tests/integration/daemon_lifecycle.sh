#!/bin/bash
# daemon_lifecycle.sh: one daemon per pid file and socket, stale files after a crash are reclaimed, -t exits when idle.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

U1=dddddddd-dddd-4ddd-8ddd-000000000001
U2=dddddddd-dddd-4ddd-8ddd-000000000002

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
FIRST_PID=$(vml_daemon_pid)
FIRST_CONF=$VML_DAEMON_CONF
FIRST_PIDFILE=$VML_DAEMON_PIDFILE
vml_plugin_config "$VML_TMP/plugin.conf"
IMG=$VML_TMP/disk.img
IMG2=$VML_TMP/disk2.img
vml_image "$IMG"
vml_image "$IMG2"

vml_run "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" status
expect_rc 0 "vmlockctl status answers"
expect_text out "$FIRST_PID" "status reports the daemon's pid"

# A second daemon on the same pid file is refused and changes nothing.
vml_daemon_run -d -f "$FIRST_CONF" -p "$FIRST_PIDFILE"
expect_rc 1 "a second daemon with the same pid file is refused"
expect_text err "already running" "the refusal says a daemon is already running"
tap_check "the pid file still names the first daemon" test "$(cat "$FIRST_PIDFILE")" = "$FIRST_PID"

# A second daemon on the same socket (another pid file) must not steal it.
VML_DAEMON_PIDFILES+=("$VML_TMP/second.pid")
vml_daemon_run -d -f "$FIRST_CONF" -p "$VML_TMP/second.pid"
expect_rc 1 "a second daemon on a socket that is being served is refused"
expect_text err "$VML_SOCK" "the refusal names the socket"
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
expect_lease "the first daemon still serves and holds vm1's lease" "name=$IMG disk=$IMG mode=exclusive pids=,$P1,"

# A crash (SIGKILL) leaves the socket and pid files behind; a new daemon reclaims them and
# serves.  (Whether vm1's lease survives the crash is tests/lifetime's subject.)
tap_check "the first daemon is gone after SIGKILL" vml_daemon_crash
tap_check "its socket file is left behind" test -S "$VML_SOCK"
tap_check "a new daemon starts over the stale socket and pid file" vml_daemon_start
tap_check "the new daemon wrote its own pid" test "$(vml_daemon_pid)" != "$FIRST_PID"
vml_guest_start vm2 "$U2" --disk "$IMG2" && P2=$VML_GUEST_PID || P2=none
vml_guest_refused vm3 dddddddd-dddd-4ddd-8ddd-000000000003 --disk "$IMG2" -- "is locked by domain 'vm2'"
tap_check "vm1's stand-in QEMU is killed" vml_guest_kill "$P1"
tap_check "vm2's stand-in QEMU is killed" vml_guest_kill "$P2"
expect_no_lease "the new daemon holds nothing once the guests are gone" "mode="
vml_run vml_daemon_stop
expect_rc 0 "SIGTERM stops the new daemon"

# -t: with no client and no lease the daemon exits by itself.
vml_daemon_config idle
tap_check "vmlockd -d -t 1 starts" vml_daemon_start -t 1
IDLE_PID=$(vml_daemon_pid)
tap_check "an idle daemon started with -t 1 exits by itself" vml_wait_exit "$IDLE_PID" 60
tap_check "it removed its socket on the way out" test ! -e "$VML_SOCK"

# A quiet connection (vmlockd.so keeps one open between calls, as libvirtd's plugin does)
# does not keep a -t daemon alive: without that, -t would never fire under libvirtd.
tap_check "vmlockd -d -t 1 starts again" vml_daemon_start -t 1
IDLE_PID=$(vml_daemon_pid)
coproc QUIET {
    exec "$VML_PYTHON" "$VML_LIB_DIR/vml_rawclient.py" --socket "$VML_SOCK" \
        create-lockspace "$VML_TMP" hold
}
VML_CHILD_PIDS+=("$QUIET_PID")
QUIET_OUT=${QUIET[0]}
read -r -t 30 -u "$QUIET_OUT" QUIET_LINE1
read -r -t 30 -u "$QUIET_OUT" QUIET_LINE2
tap_check "the quiet client made its call and holds the connection" \
    test "$QUIET_LINE1 $QUIET_LINE2" = "ok ready"
tap_check "the daemon exits by itself with that connection open" vml_wait_exit "$IDLE_PID" 60
tap_check "its log says it closed the quiet connection" \
    grep -q "1 quiet connection(s) closed" "$VML_DAEMON_LOG"
tap_done
