#!/bin/bash
# host_exit.sh: the libvirtd side exiting (or restarting) changes nothing: the locks belong to the running QEMU.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

U1=66666666-6666-4666-8666-000000000001
U2=66666666-6666-4666-8666-000000000002

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
vml_plugin_config "$VML_TMP/plugin.conf"
IMG=$VML_TMP/disk.img
vml_image "$IMG"

# vmlock-host plays libvirtd: it exits right after the start, like a libvirtd restart would.
vml_guest_start vm1 "$U1" --disk "$IMG" && P1=$VML_GUEST_PID || P1=none
tap_check "vmlock-host has exited while vm1's stand-in QEMU runs" kill -0 "$P1"
expect_lease "vm1 still holds its disk" "name=$IMG disk=$IMG mode=exclusive pids=,$P1, domains=,vm1,"
vml_guest_refused vm2 "$U2" --disk "$IMG" -- \
    "error: resource busy: Lockspace resource '$IMG'" "is locked by domain 'vm1' (uuid $U1, pid $P1)"

# Another short-lived libvirtd connection for vm1 (an inquire, a failed re-acquire) closing
# changes nothing either.
vml_host inquire --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 0 "inquire for vm1 succeeds"
expect_text out "state: " "inquire reports the lock state (or none)"
vml_host acquire --pid "$P1" --name vm1 --uuid "$U1" --disk "$IMG"
expect_rc 0 "acquiring again for the same owner is granted as it stands (ARCHITECTURE invariant 7)"
expect_lease "vm1 still holds its disk, once" "name=$IMG disk=$IMG mode=exclusive pids=,$P1, domains=,vm1,"
vml_guest_refused vm2 "$U2" --disk "$IMG" -- "is locked by domain 'vm1'"
tap_done
