#!/bin/bash
# batch.sh: a multi-disk acquire is all-or-nothing: a guest refused one disk is left holding none.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCK_HOST VMLOCKCTL VMLOCK_PLUGIN
vml_setup

uuid() { printf '88888888-8888-4888-8888-%012d' "$1"; }

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
D1=$VML_TMP/disk1.img
D2=$VML_TMP/disk2.img
D3=$VML_TMP/disk3.img
for img in "$D1" "$D2" "$D3"; do vml_image "$img"; done

# Direct mode.
vml_plugin_config "$VML_TMP/direct.conf"
vml_guest_start a "$(uuid 1)" --disk "$D2" && PA=$VML_GUEST_PID || PA=none
vml_guest_refused b "$(uuid 2)" --disk "$D1" --disk "$D2" --disk "$D3" -- \
    "error: resource busy: Lockspace resource '$D2'" "is locked by domain 'a' (uuid $(uuid 1), pid $PA)"
expect_no_lease "after the refusal disk1 is free" "name=$D1 "
expect_no_lease "after the refusal disk3 was never taken" "name=$D3 "
expect_lease "disk2 is still guest a's" "name=$D2 disk=$D2 mode=exclusive pids=,$PA, domains=,a,"
vml_guest_start c "$(uuid 3)" --disk "$D1" --disk "$D3"

# Indirect mode (autocreated lease files).
LS=$VML_TMP/lockspace
E1=$VML_TMP/indirect1.img
E2=$VML_TMP/indirect2.img
vml_image "$E1"
vml_image "$E2"
H1=$(vml_lease_name "$E1")
H2=$(vml_lease_name "$E2")
vml_plugin_config "$VML_TMP/indirect.conf" "file_lockspace_dir = \"$LS\""
vml_guest_start d "$(uuid 4)" --disk "$E2"
vml_guest_refused e "$(uuid 5)" --disk "$E1" --disk "$E2" -- \
    "error: resource busy: Lockspace resource '$H2' (disk '$E2')" "is locked by domain 'd'"
expect_no_lease "indirect: disk1's lease is not held" "name=$H1 "
vml_guest_start f "$(uuid 6)" --disk "$E1"

# Two shareable disks and a duplicate shared entry in one domain are fine.
S=$VML_TMP/shared.img
vml_image "$S"
vml_guest_start g "$(uuid 7)" --disk "$S,shared" --disk "$S,shared"
tap_done
