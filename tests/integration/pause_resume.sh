#!/bin/bash
# pause_resume.sh: pausing releases a guest's disks, another guest may use them meanwhile, and resuming takes them back.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

U1=99999999-9999-4999-8999-000000000001
U2=99999999-9999-4999-8999-000000000002

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/plugin.conf"
IMG=$VML_TMP/disk.img
vml_image "$IMG"

vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
vml_host release --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 0 "pausing vm1 releases its disk"
expect_text out "state: " "release reports the lock state (or none)"
expect_no_lease "vm1's lease is gone while it is paused" "name=$IMG "

vml_guest_start vm2 "$U2" --disk "$IMG" && P2=$VML_GUEST_PID || P2=none
vml_host acquire --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 1 "resuming vm1 while vm2 holds the disk fails"
expect_text err "is locked by domain 'vm2' (uuid $U2, pid $P2)" "the resume error names vm2"
vml_host release --pid "$P2" --name vm2 --uuid "$U2" --disk "$IMG"
expect_rc 0 "pausing vm2 releases the disk"

vml_host acquire --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 0 "resuming vm1 takes its disk back"
expect_lease "vm1 holds its disk again" "name=$IMG disk=$IMG mode=exclusive pids=,$P1, domains=,vm1,"

vml_host release --pid "$P2" --name vm2 --uuid "$U2" --disk "$IMG"
expect_rc 1 "releasing a lease vm2 does not hold fails"
expect_text err "error: internal error: owner $P2 does not hold the resource lock" \
    "the error says vm2 does not hold it"
vml_host release --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 0 "pausing vm1 again"
vml_host release --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 1 "a second pause (double release) fails"
expect_text err "error: resource busy: Lockspace resource '$IMG' is not locked" \
    "the error says the lease is not locked"
tap_done
