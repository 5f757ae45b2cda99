#!/bin/bash
# double_start.sh: a second guest is refused a disk the first holds, in direct and indirect mode; the daemon stops only once no lease is held.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

U1=11111111-1111-4111-8111-000000000001
U2=11111111-1111-4111-8111-000000000002
U3=11111111-1111-4111-8111-000000000003
U4=11111111-1111-4111-8111-000000000004

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
tap_check "vmlockd -d returns with its socket listening" test -S "$VML_SOCK"
DAEMON_PID=$(vml_daemon_pid)

# Direct mode: the lock is on the image itself; the resource name is its path.
IMG=$VML_TMP/direct.img
vml_image "$IMG"
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
vml_guest_refused vm2 "$U2" --disk "$IMG" -- \
    "error: resource busy: Lockspace resource '$IMG'" \
    "is locked by domain 'vm1' (uuid $U1, pid $P1)"
expect_lease "direct: the lease is vm1's, exclusive, on the image path" \
    "lockspace= name=$IMG disk=$IMG mode=exclusive pids=,$P1, domains=,vm1,"
expect_no_lease "direct: the refused guest holds nothing" "domains=,vm2,"
vml_guest_refused vm2 "$U2" --disk "$IMG" -- "is locked by domain 'vm1' (uuid $U1, pid $P1)"

# Indirect mode: a lease file named by the SHA-256 of the canonical path.
LS=$VML_TMP/lockspace
IMG2=$VML_TMP/indirect.img
vml_image "$IMG2"
HASH=$(vml_lease_name "$IMG2")
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start vm3 "$U3" --disk "$IMG2" && P3=$VML_GUEST_PID || P3=none
vml_guest_refused vm4 "$U4" --disk "$IMG2" -- \
    "error: resource busy: Lockspace resource '$HASH' (disk '$IMG2')" \
    "is locked by domain 'vm3' (uuid $U3, pid $P3)"
tap_check "indirect: the lease file exists in the lockspace" test -f "$LS/$HASH"
expect_lease "indirect: the lease is vm3's, in the lockspace, naming the disk" \
    "lockspace=$LS name=$HASH disk=$IMG2 mode=exclusive pids=,$P3, domains=,vm3,"

# SIGTERM while guests hold leases is refused (stopping would leave running VMs unprotected).
# The daemon handles a signal before the requests of that poll round, so the status answered
# after it shows the outcome.
kill -TERM "$DAEMON_PID"
vml_run "$VMLOCKCTL" --socket "$VML_ADMIN_SOCK" status
expect_rc 0 "SIGTERM while leases are held is refused: the daemon still answers"
expect_lease "the daemon still holds vm1's lease after that SIGTERM" "name=$IMG disk=$IMG mode=exclusive pids=,$P1,"

# With the guests gone (the list below also makes sure their exits were handled), SIGTERM
# is an orderly stop: socket and pid file removed, the image untouched.
tap_check "vm1's stand-in QEMU is killed" vml_guest_kill "$P1"
tap_check "vm3's stand-in QEMU is killed" vml_guest_kill "$P3"
expect_no_lease "no lease is held any more" "mode="
vml_run vml_daemon_stop
expect_rc 0 "SIGTERM now stops the daemon"
tap_check "the daemon process is gone" vml_pid_gone "$DAEMON_PID"
tap_check "the daemon removed its socket" test ! -e "$VML_SOCK"
tap_check "the daemon removed its pid file" test ! -e "$VML_DAEMON_PIDFILE"
tap_check "the direct-mode image itself is untouched" test -f "$IMG"
tap_done
