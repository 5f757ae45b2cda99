#!/bin/bash
# lost_lock.sh: a lease file (or disk) replaced underneath its holder is found by the check, counted, and the domain's on_lockfailure applied: poweroff kills it, ignore only logs, pause runs the helper (a failing helper powers off).
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
# shellcheck source=lt-lib.sh
. "$(dirname "$0")/lt-lib.sh"
lt_require
lt_setup

uuid() { printf '4c000000-0000-4000-8000-%012d' "$1"; }
LS=$VML_TMP/ls
for n in 1 2 3 4 5 6; do vml_image "$VML_TMP/d$n.img"; done
lease() { echo "$LS/$(vml_lease_name "$VML_TMP/d$1.img")"; }
# replace FILE: another file takes its path (what a restore or a sloppy admin does).
replace() { cp "$1" "$1.new" && mv -f "$1.new" "$1"; }

# The pause action's helper: a stand-in for vmlockd-pause-helper reporting on a fifo;
# it fails for domain 4, so that domain must be powered off instead.
mkfifo "$VML_TMP/paused"
cat >"$VML_TMP/pause-helper" <<HELPER
#!/bin/bash
echo "pause \$1 \$2" >"$VML_TMP/paused"
[ "\$2" != "$(uuid 4)" ]
HELPER
chmod +x "$VML_TMP/pause-helper"

# The periodic rounds are far apart: every check here is an explicit CHECK_NOW.
vml_daemon_config vmlockd "lease_check_interval_ms = 600000" \
    "lockfailure_pause_helper = \"$VML_TMP/pause-helper\""
vml_daemon_start || bail_out "vmlockd -d starts"
lt_note_keeper
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm1 "$(uuid 1)" --disk "$VML_TMP/d1.img" --action poweroff && P1=$VML_GUEST_PID || P1=none
vml_guest_start vm2 "$(uuid 2)" --disk "$VML_TMP/d2.img" --action ignore && P2=$VML_GUEST_PID || P2=none
vml_guest_start vm3 "$(uuid 3)" --disk "$VML_TMP/d3.img" --action pause && P3=$VML_GUEST_PID || P3=none
vml_guest_start vm4 "$(uuid 4)" --disk "$VML_TMP/d4.img" --action pause && P4=$VML_GUEST_PID || P4=none
vml_guest_start vm6 "$(uuid 6)" --disk "$VML_TMP/d6.img" && P6=$VML_GUEST_PID || P6=none
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm5 "$(uuid 5)" --disk "$VML_TMP/d5.img" && P5=$VML_GUEST_PID || P5=none

vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "checked=6 lost=0 lost_total=0" "a check with nothing replaced finds every lease held"

# poweroff
replace "$(lease 1)"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "lost=1 lost_total=1" "the check finds vm1's replaced lease file lost"
tap_check "on_lockfailure=poweroff: vm1's QEMU is killed" vml_wait_exit "$P1" 30
tap_check "the loss is logged" grep -q "LOST LOCK: the lock of '$(lease 1)' (disk '$VML_TMP/d1.img')" \
    "$VML_DAEMON_LOG"
tap_check "STATUS counts it" test "$(lt_status lost_leases)" = 1
tap_check "STATUS counts the kill among owner_kills" test "$(lt_status owner_kills)" = 1

# ignore
replace "$(lease 2)"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "lost=1 lost_total=2" "vm2's replaced lease file is found lost"
tap_check "on_lockfailure=ignore: vm2's QEMU keeps running" kill -0 "$P2"
tap_check "... and the daemon says so in the log" \
    grep -q "domain 'vm2' keeps running without that lock (on_lockfailure=ignore)" "$VML_DAEMON_LOG"
VML_PLUGIN_CONF=$VML_TMP/indirect.conf
vml_guest_refused vm7 "$(uuid 7)" --disk "$VML_TMP/d2.img" -- "(its lock was found lost)"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" who --disk "$VML_TMP/d2.img"
expect_text out "source=local state=lost" "WHO shows the lease as lost"

# pause: the helper is run with the domain's URI and uuid
replace "$(lease 3)"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "lost=1" "vm3's replaced lease file is found lost"
read -r -t 30 line <"$VML_TMP/paused"
tap_check "on_lockfailure=pause: the pause helper runs with the URI and vm3's uuid ($line)" \
    test "$line" = "pause qemu:///system $(uuid 3)"
tap_check "... and vm3's QEMU is left to it (not killed)" kill -0 "$P3"

# pause with a failing helper: powered off instead
replace "$(lease 4)"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
read -r -t 30 line <"$VML_TMP/paused"
tap_check "the helper runs for vm4 and fails" test "$line" = "pause qemu:///system $(uuid 4)"
tap_check "a failed pause powers vm4 off instead" vml_wait_exit "$P4" 30

# default action, direct mode: the disk image itself replaced
replace "$VML_TMP/d5.img"
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "lost=1" "a replaced disk image (direct mode) is found lost"
tap_check "the default on_lockfailure powers vm5 off" vml_wait_exit "$P5" 30

tap_check "the untouched vm6 still runs" kill -0 "$P6"
expect_lease "... and still holds its lease" "pids=,$P6,"
tap_check "STATUS counts 5 losses" test "$(lt_status lost_leases)" = 5
tap_check "... and 3 owner kills (vm1, vm4, vm5; ignore and pause kill nobody)" \
    test "$(lt_status owner_kills)" = 3 || { diag "owner_kills=$(lt_status owner_kills)"; false; }
vml_run "$LT_ADMIN" "$VML_ADMIN_SOCK" check
expect_text out "lost=0 lost_total=5" "a further check finds nothing new"

# The periodic timer finds losses by itself too.
vml_daemon_config periodic "lease_check_interval_ms = 20"
vml_daemon_start || bail_out "a daemon with 20 ms checks starts"
lt_note_keeper
vml_plugin_config "$VML_TMP/periodic.conf" "file_lockspace_dir = \"$VML_TMP/ls2\""
vml_image "$VML_TMP/p.img"
vml_guest_start vmp "$(uuid 8)" --disk "$VML_TMP/p.img" && PP=$VML_GUEST_PID || PP=none
replace "$VML_TMP/ls2/$(vml_lease_name "$VML_TMP/p.img")"
tap_check "without any request, the periodic check powers off the guest whose lease was replaced" \
    vml_wait_exit "$PP" 30
tap_done
